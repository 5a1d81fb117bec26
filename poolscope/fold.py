"""The one fold of a pool's log.

Everything in poolscope that needs the state of a pool -- snapshots at any
cursor, DataFrames, diffs, timelines, the explorer and :class:`PoolStore`'s
checks before an append -- is derived from :class:`PoolFold`, a port of the
SDK's ``PoolReplay::apply``:

* ``pool_opened`` sets the config (a different config than the stored one is
  a conflict: the SDK's replay fails from there on);
* ``pool_created`` sets ``created``;
* ``member_joined`` inserts or replaces the member keyed by ``run_id``;
  ``member_left`` removes that ``run_id`` (a no-op for a non-member);
* ``run_message`` replaces the message keyed by ``message_id`` and the
  dedupe entry keyed by its idempotency key;
* ``wake`` replaces the wake keyed by ``condition_id`` and its dedupe entry.

The fold keeps *pointers* (the position of the latest record for each key),
not payloads, so its size is the size of the state, and it is applied to
:class:`Entry` tuples that :func:`extract` makes from a decoded payload.

Example::

    >>> fold = PoolFold()
    >>> entry = extract("pool_created", {"type": "pool_created"})
    >>> fold.apply(0, 1, entry)
    -1
    >>> fold.created_seq
    1
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from . import wire
from .errors import CorruptRecordError, InvalidInputError, UnknownRecordKindError

POOL_OPENED, POOL_CREATED, MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE = range(6)
DAMAGED = -1
KIND_CODE = {name: code for code, name in enumerate(wire.KINDS)}
_MESSAGE_STATUS = frozenset(wire.MESSAGE_STATUSES)
_WAKE_STATUS = frozenset(wire.WAKE_STATUSES)


class Entry(NamedTuple):
    """One record, flattened to what the fold and the frames need.

    ``key`` is the run id (members), message id (messages) or condition id
    (wakes); ``status`` the receipt or registration status; ``extra`` the
    member dict, the config, or kind-specific details.
    """

    kind: int
    key: str | None = None
    status: str | None = None
    idem: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    sender: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    delivered_to: tuple = ()
    reply_to: str | None = None
    journal_cursor: str | None = None
    extra: Any = None


_TARGET_ID_FIELD = wire.TARGET_ID_FIELD
_U64 = 2**64 - 1
#: ``MessageResponseContract.expected_responses`` is a ``u32`` in the SDK.
_U32 = 2**32 - 1
_RESUME = frozenset(wire.RESUME_POLICIES)
id_fine = wire.id_fine
#: A filter's sets, each with whether its items are the SDK's identifiers (checked as its id newtypes check them).
_FILTER_SETS = tuple((name, name in wire.ID_FILTER_SETS) for name in wire.FILTER_SETS)
_POLICY_KINDS = frozenset(wire.POLICY_KINDS)
_PAYLOAD_ACCESS = frozenset(wire.PAYLOAD_ACCESS_MODES)
_OVERFLOW = frozenset(wire.OVERFLOW_POLICIES)
_INDEX_FIELDS = frozenset(wire.INDEX_FIELDS)


def _text(value: Any, field: str, *, optional: bool = False) -> Any:
    """``value`` if it is a string (or None when ``optional``), else :class:`CorruptRecordError`."""
    if value.__class__ is str or (optional and value is None):
        return value
    raise CorruptRecordError(f"{field} is JSON {_json_type(value)}, not a string (the SDK cannot read this record)")


def _ident(value: Any, field: str, *, optional: bool = False) -> Any:
    """``value`` if it is one of the SDK's identifiers (:func:`wire.identifier_problem`;
    or None when ``optional``), else :class:`CorruptRecordError`."""
    if (optional and value is None) or wire.id_fine(value):
        return value
    _text(value, field)
    raise CorruptRecordError(
        f"{field}: {wire.identifier_problem(value)} ({wire.shown_id(value)}; the SDK cannot read this record)"
    )


def _count(value: Any, field: str, *, optional: bool = True, bits: int = 64) -> Any:
    """``value`` if it is an integer in serde's u64 (``bits=32``: u32) range (or None when ``optional``)."""
    top = _U64 if bits == 64 else _U32
    if (optional and value is None) or (value.__class__ is int and 0 <= value <= top):
        return value
    if value.__class__ is int:
        raise CorruptRecordError(f"{field} is {value!r}, outside 0..2^{bits}-1 (the SDK's u{bits})")
    if value.__class__ is float:  # serde_json reads -0, 5.0, 1e3 (and integers past u64) as floats
        raise CorruptRecordError(
            f"{field} is the number {value!r}, which serde_json reads as a float, not the SDK's u{bits}"
        )
    raise CorruptRecordError(f"{field} is JSON {_json_type(value)}, not an integer (the SDK cannot read this record)")


def _texts(value: Any, field: str, item_check: Any = _text) -> tuple:
    """``value`` as a tuple if it is a list of strings (``item_check=_ident``: of
    the SDK's identifiers), else :class:`CorruptRecordError`."""
    if not isinstance(value, list):
        raise CorruptRecordError(f"{field} is JSON {_json_type(value)}, not a list of strings")
    for item in value:
        item_check(item, f"{field} item")
    return tuple(value)


def _idents(value: Any, field: str) -> tuple:
    return _texts(value, field, _ident)


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def extract(kind: str, payload: Any) -> Entry:
    """Flatten one decoded payload into an :class:`Entry`.

    Raises :class:`CorruptRecordError` for a payload of the wrong shape and
    :class:`UnknownRecordKindError` for a kind or status this SDK does not write.
    """
    if not isinstance(payload, dict):
        raise CorruptRecordError(f"payload is JSON {type(payload).__name__}, not an object")
    ptype = payload.get("type")
    if ptype != kind:
        if not isinstance(ptype, (str, type(None))):  # an array, an object, a number: no record type at all
            raise CorruptRecordError(f"the payload's type is JSON {_json_type(ptype)}, not a string naming the kind")
        if ptype not in KIND_CODE:
            raise UnknownRecordKindError(
                f"unknown record type {ptype if ptype is not None else kind!r} (written by a newer SDK?)"
            )
        # the SDK reads only payload_json (its replay never selects the kind column): a record filed
        # under another kind, or under none, is folded as its payload says (see oddities())
        kind = ptype
    try:
        if kind == "run_message":
            check_unread(kind, payload)
            stored = payload["stored"]
            message = stored["message"]
            receipt = stored["receipt"]
            status = receipt["status"]
            if status not in _MESSAGE_STATUS:
                raise UnknownRecordKindError(f"unknown message status {status!r}", code="unknown_status")
            target = message["to"]["target"]
            ttype = target["type"]
            message_id = _ident(message["message_id"], "message.message_id")
            _ident(receipt["message_id"], "receipt.message_id")  # another one is folded as the SDK does (oddities())
            if ttype not in _TARGET_ID_FIELD:
                raise CorruptRecordError(
                    f"message.to.target.type is {ttype!r}, not one of {', '.join(_TARGET_ID_FIELD)}"
                )
            contract = message.get("response_contract")
            return Entry(
                RUN_MESSAGE,
                message_id,
                status,
                _ident(message["idempotency_key"], "message.idempotency_key"),
                None,
                None,
                _ident(message["from"], "message.from"),
                ttype,
                # every RunAddressTarget variant has its id, and serde has no default for it
                _ident(target.get(_TARGET_ID_FIELD[ttype]), f"message.to.target.{_TARGET_ID_FIELD[ttype]}"),
                _idents(receipt.get("delivered_to", []), "receipt.delivered_to"),
                _ident(message.get("reply_to"), "message.reply_to", optional=True),
                _ident(receipt.get("journal_cursor"), "receipt.journal_cursor", optional=True),
                (
                    _count(message.get("expires_at_millis"), "message.expires_at_millis"),
                    None
                    if contract is None
                    else _count(
                        contract["expected_responses"], "response_contract.expected_responses", optional=False, bits=32
                    ),
                    None
                    if contract is None
                    else _count(contract.get("timeout_millis"), "response_contract.timeout_millis"),
                    _ident(message["content_ref"], "message.content_ref"),
                ),
            )
        if kind == "wake":
            check_unread(kind, payload)
            stored = payload["stored"]
            condition = stored["condition"]
            registration = stored["registration"]
            status = registration["status"]
            if status not in _WAKE_STATUS:
                raise UnknownRecordKindError(f"unknown wake status {status!r}", code="unknown_status")
            condition_id = _ident(condition["condition_id"], "condition.condition_id")
            _ident(registration["condition_id"], "registration.condition_id")  # see oddities()
            criteria = stored["compiled_filter"]["criteria"]
            resume = condition["resume_with"]
            if resume not in _RESUME:
                raise CorruptRecordError(
                    f"condition.resume_with is {resume!r}, not one of {', '.join(sorted(_RESUME))}"
                )
            return Entry(
                WAKE,
                condition_id,
                status,
                _ident(condition["idempotency_key"], "condition.idempotency_key"),
                _ident(condition["run_id"], "condition.run_id"),
                None,
                None,
                None,
                None,
                (),
                None,
                _ident(registration.get("journal_cursor"), "registration.journal_cursor", optional=True),
                (
                    _count(condition.get("timeout_millis"), "condition.timeout_millis"),
                    resume,
                    _included(criteria.get("families"), "families"),
                    _included(criteria.get("kinds"), "kinds"),
                    _included(criteria.get("run_ids"), "run_ids", ids=True),
                ),
            )
        if kind == "member_joined" or kind == "member_left":
            member = payload["member"]
            run_id = member["run_id"]
            if not isinstance(run_id, str):
                raise CorruptRecordError("member.run_id is not a string")
            _ident(run_id, "member.run_id")
            _check_member(member)  # the SDK's AgentPoolMember: strings, lists of strings, policy refs
            return Entry(
                MEMBER_JOINED if kind == "member_joined" else MEMBER_LEFT,
                run_id,
                None,
                None,
                run_id,
                member["agent_id"],
                extra=wire.canonical_member(member),  # as the SDK's snapshot writes it back
            )
        if kind == "pool_opened":
            config = payload["config"]
            if not isinstance(config, dict):
                raise CorruptRecordError("config is not an object")
            # serde has no default for the policies nor for their flags (AgentPoolStoreConfig,
            # AgentPoolMessagePolicy, AgentPoolWakePolicy): config {} is a record the SDK cannot read
            for name, flag in (
                ("message_policy", "include_sender_in_pool_broadcast"),
                ("wake_policy", "envelope_only"),
            ):
                policy = config.get(name)
                if policy.__class__ is not dict:
                    shown = "missing" if policy is None else f"JSON {_json_type(policy)}, not an object"
                    raise CorruptRecordError(f"config.{name} is {shown} (the SDK cannot read this record)")
                if flag not in policy:
                    raise CorruptRecordError(f"config.{name}.{flag} is missing (the SDK cannot read this record)")
            try:
                config = wire.canonical_config(config)  # in serde's order, types checked
            except InvalidInputError as error:
                raise CorruptRecordError(f"{error.problem} (the SDK cannot read this record)") from None
            return Entry(POOL_OPENED, extra=config)
        if kind == "pool_created":
            return Entry(POOL_CREATED)
    except (KeyError, TypeError, AttributeError) as error:
        raise CorruptRecordError(
            f"{kind} payload has the wrong shape ({_shape_problem(kind, payload, error)})"
        ) from None
    raise UnknownRecordKindError(f"unknown record kind {kind!r} (written by a newer SDK?)")


#: The part of a message (wake) that repeats its id, the field, the oddity when it differs, and the noun.
_ECHOES = {
    RUN_MESSAGE: ("receipt", "message_id", "receipt_mismatch", "message"),
    WAKE: ("registration", "condition_id", "registration_mismatch", "condition"),
}


def oddities(kind_column: Any, entry: Entry, payload: Any) -> list[tuple[str, str]]:
    """What the SDK reads without complaint but never writes, in a record
    :func:`extract` read as ``entry`` (``(code, message)`` pairs, empty for a
    record as the SDK writes it): a kind column that does not name the
    payload's type (``kind_mismatch``: the SDK's replay reads only
    ``payload_json``, so the record is folded as its payload says), a receipt
    for another message id than its message's, a registration for another
    condition id than its condition's (``receipt_mismatch``,
    ``registration_mismatch``: the SDK keys the record by the message's or the
    condition's id, as the fold does).

    >>> payload = {"type": "pool_created"}
    >>> oddities("pool_created", extract("pool_created", payload), payload)
    []
    >>> [code for code, _ in oddities(None, extract(None, payload), payload)]
    ['kind_mismatch']
    """
    found = []
    name = wire.KINDS[entry.kind] if entry.kind >= 0 else None
    if kind_column != name:
        if kind_column is None:
            shown = "NULL"
        else:
            shown = wire.shown_id(kind_column) if isinstance(kind_column, str) else repr(kind_column)[:40]
        found.append(
            (
                "kind_mismatch",
                f"the kind column is {shown}, but the payload is a {name} record (the SDK reads the payload: "
                "it is folded as one; a query selecting by the kind column misses it)",
            )
        )
    echo = _ECHOES.get(entry.kind)
    if echo is not None:
        part, field, code, noun = echo
        other = payload["stored"][part][field]
        if other != entry.key:
            found.append(
                (
                    code,
                    f"the {part} is for {noun} {wire.shown_id(other)}, the {noun} is {wire.shown_id(str(entry.key))} "
                    f"(the SDK keys the record by the {noun}'s id, as poolscope does)",
                )
            )
    return found


#: The parts of each kind's payload, and the SDK type each must have (``stored.`` parts for the two bulk kinds).
_PARTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "run_message": (("stored.message", wire.RUN_MESSAGE), ("stored.receipt", wire.RECEIPT)),
    "wake": (
        ("stored.condition", wire.WAKE_CONDITION),
        ("stored.compiled_filter", wire.COMPILED_FILTER),
        ("stored.registration", wire.REGISTRATION),
    ),
    "member_joined": (("member", wire.MEMBER),),
    "member_left": (("member", wire.MEMBER),),
}


def _shape_problem(kind: str, payload: dict, error: Exception) -> str:
    """What is wrong with a payload :func:`extract` could not read, in the
    payload's own terms (the first part that is not the SDK's type), never
    Python's message.

    >>> _shape_problem("run_message", {"type": "run_message", "stored": {"message": {}, "receipt": None}}, TypeError())
    "stored.message: RunMessage needs field 'message_id'"
    """
    for where, struct in _PARTS.get(kind, ()):
        holder: Any = payload
        path: list[str] = []
        for step in where.split("."):
            if holder.__class__ is not dict:
                return f"{'.'.join(path)} is JSON {_json_type(holder)}, not an object"
            path.append(step)
            if step not in holder:
                return f"{'.'.join(path)} is missing"
            holder = holder[step]
        try:
            struct(holder, where)
        except InvalidInputError as found:
            return found.problem
    if isinstance(error, KeyError):
        return f"field {error} is missing"
    return "a field is null or not of the JSON type the SDK's type needs"


def check_unread(kind: Any, payload: Any) -> None:
    """:class:`CorruptRecordError` if a message or a wake has, in a part the
    index does not keep, what serde cannot read: a required field missing
    (``correlation``, ``to.destination_ref``, a wake condition's ``filter``, a
    compiled filter's fields) or a value of the wrong type or spelling (policy
    refs and their kinds, ``correlation.entries``, ``to.destination_ref`` and
    ``to.related_refs`` -- the SDK's ``DestinationRef`` and ``EntityRef``: kinds
    and classes from their enums, ids that are identifiers --,
    ``registration.run_id``, the compiled filter's fields and its indexed
    fields; a filter -- the condition's and the compiled criteria -- must be an
    object whose sets are ``"any"`` or ``{"include": [...]}`` of strings (of
    identifiers for the id sets: no bare list), ``terminal_only`` a boolean,
    ``payload_access`` a ``PayloadAccessMode`` and whose queue counts are
    ``NonZeroUsize``).  Optional fields may be absent or null; a filter's
    absent fields are not looked for (the items of its enum sets are not
    looked into).

    >>> check_unread("wake", {"type": "wake", "stored": {"condition": {"condition_id": "w", "filter": {"kinds": "Any"}}}})
    Traceback (most recent call last):
    ...
    poolscope.errors.CorruptRecordError: stored.condition.filter.kinds: a filter set is "any" or {"include": [...]}, got 'Any' (the SDK cannot read this record)

    >>> check_unread("wake", {"type": "wake", "stored": {"condition": {"condition_id": "w"}}})
    Traceback (most recent call last):
    ...
    poolscope.errors.CorruptRecordError: stored.condition.filter is missing (the SDK cannot read this record)
    """
    if not _unread_fine(kind, payload):  # the usual case in one expression; else say what is wrong
        _explain_unread(kind, payload)


#: What an absent ``Vec`` field reads as (serde's ``#[serde(default)]``); never changed.
_NO_LIST: list = []


def _policy_refs_fine(refs: Any) -> bool:
    if refs.__class__ is not list:
        return False
    for ref in refs:
        if ref.__class__ is not dict or ref.get("kind") not in _POLICY_KINDS or not id_fine(ref.get("id")):
            return False
        version = ref.get("version")
        if version is not None and version.__class__ is not str:
            return False
    return True


#: What an absent queue reads as (``SubscriberQueueConfig::default()``): fine.
_DEFAULT_QUEUE: dict = {"capacity": 64, "terminal_reserve": 1, "overflow": "drop_non_terminal"}
#: A filter's queue: its counts (``usize``) and its overflow policy.
_QUEUE_COUNTS = ("capacity", "terminal_reserve")


def _entries_fine(entries: Any) -> bool:
    """Whether correlation entries are what serde reads: a list of objects whose
    ``key`` and ``value`` are the SDK's identifiers."""
    if entries.__class__ is not list:
        return False
    for entry in entries:
        if entry.__class__ is not dict or not (id_fine(entry.get("key")) and id_fine(entry.get("value"))):
            return False
    return True


def _filter_fine(event_filter: Any) -> bool:
    """Whether a stored ``EventFilter`` is what serde reads (see :func:`check_unread`): an
    object whose sets are ``"any"`` or ``{"include": [strings]}`` (identifiers for the id sets),
    ``terminal_only`` a boolean, ``payload_access`` a mode and its queue fine.  Absent fields pass."""
    if event_filter.__class__ is not dict:
        return False
    get = event_filter.get
    for name, ids in _FILTER_SETS:
        selector = get(name, "any")
        if selector == "any":
            continue
        if selector.__class__ is not dict or len(selector) != 1:
            return False
        items = selector.get("include")
        if items.__class__ is not list:
            return False
        for item in items:
            if not (id_fine(item) if ids else item.__class__ is str):
                return False
    return (
        get("terminal_only", False).__class__ is bool
        and get("payload_access", "envelope_only") in _PAYLOAD_ACCESS
        and _queue_fine(get("queue", _DEFAULT_QUEUE))
    )


_PRIVACY = frozenset(wire.PRIVACY_CLASSES)
_RETENTION = frozenset(wire.RETENTION_CLASSES)
_TRUST = frozenset(wire.TRUST_CLASSES)
_DESTINATION_KINDS = frozenset(wire.DESTINATION_KINDS)
_ENTITY_KINDS = frozenset(wire.ENTITY_KINDS)
_SOURCE_KINDS = frozenset(wire.SOURCE_KINDS)


def _ref_fine(ref: Any, kinds: frozenset[str], classes: tuple[tuple[str, frozenset[str]], ...]) -> bool:
    """Whether ``ref`` is a ``DestinationRef`` or ``SourceRef`` serde reads: its kind and ``classes``
    (field, spellings) from their enums, its id an identifier, its correlation entries fine, its
    summary a string or null (a key it has no field for is ignored, as serde ignores it)."""
    if ref.__class__ is not dict:
        return False
    summary = ref.get("redacted_summary")
    return (
        ref.get("kind") in kinds
        and id_fine(ref.get("id"))
        and all(ref.get(name) in spellings for name, spellings in classes)
        and _entries_fine(ref.get("correlation", _NO_LIST))
        and (summary is None or summary.__class__ is str)
    )


def _destination_fine(ref: Any) -> bool:
    """Whether ``to.destination_ref`` is a ``DestinationRef`` serde reads (:data:`wire.DESTINATION_REF`)."""
    return _ref_fine(ref, _DESTINATION_KINDS, (("privacy", _PRIVACY), ("retention", _RETENTION)))


def _source_fine(source: Any) -> bool:
    """Whether an ``EntityRef``'s ``source`` is absent, null or a ``SourceRef`` serde reads."""
    return source is None or _ref_fine(source, _SOURCE_KINDS, (("trust", _TRUST), ("privacy", _PRIVACY)))


def _related_fine(refs: Any) -> bool:
    """Whether ``to.related_refs`` is a list of ``EntityRef`` serde reads (:data:`wire.ENTITY_REF`)."""
    if refs.__class__ is not list:
        return False
    for ref in refs:
        if not (
            ref.__class__ is dict
            and ref.get("kind") in _ENTITY_KINDS
            and id_fine(ref.get("id"))
            and ref.get("privacy") in _PRIVACY
            and _source_fine(ref.get("source"))
            and (ref.get("redacted_summary") is None or ref["redacted_summary"].__class__ is str)
        ):
            return False
    return True


def _explain_ref(struct: Any, ref: Any, field: str) -> None:
    """Raise, as :class:`CorruptRecordError`, what the schema's ``struct`` (one of the SDK's refs)
    refuses in ``ref``."""
    try:
        struct(ref, field)
    except InvalidInputError as found:
        raise CorruptRecordError(f"{found.problem} (the SDK cannot read this record)") from None


def _explain_filter(event_filter: Any, field: str) -> None:
    """Raise what :func:`_filter_fine` finds wrong, in serde's terms (:data:`wire.STORED_FILTER_FIELDS`)."""
    if event_filter.__class__ is not dict:
        raise _wrong(field, event_filter, "an object")
    for name, check in wire.STORED_FILTER_FIELDS:
        if name in event_filter:
            try:
                wire._check(check, event_filter[name], f"{field}.{name}")
            except InvalidInputError as error:
                raise CorruptRecordError(f"{error.problem} (the SDK cannot read this record)") from None
    if "queue" in event_filter:
        _explain_queue(event_filter["queue"], f"{field}.queue")


def _queue_fine(queue: Any) -> bool:
    """Whether a filter's ``queue`` is what serde reads: an object whose counts
    are ``NonZeroUsize``, integers in 1..2^64-1 (not 0, 64.0, -1 or 2^64), and
    whose overflow is a ``SubscriberOverflowPolicy``."""
    if queue.__class__ is not dict or queue.get("overflow") not in _OVERFLOW:
        return False
    for name in _QUEUE_COUNTS:
        value = queue.get(name)
        if value.__class__ is not int or not 1 <= value <= _U64:
            return False
    return True


def _explain_queue(queue: Any, field: str) -> None:
    """Raise what is wrong with a filter's ``queue`` (see :func:`_queue_fine`)."""
    if queue.__class__ is not dict:
        raise _wrong(field, queue, "an object")
    for name in _QUEUE_COUNTS:
        if name not in queue:
            raise _missing(f"{field}.{name}")
        _count(queue[name], f"{field}.{name}", optional=False)
        if queue[name] == 0:
            raise CorruptRecordError(f"{field}.{name} is 0, which the SDK's NonZeroUsize refuses")
    if "overflow" not in queue:
        raise _missing(f"{field}.overflow")
    _one_of(queue["overflow"], f"{field}.overflow", _OVERFLOW)


def _unread_fine(kind: Any, payload: Any) -> bool:
    """Whether :func:`check_unread` has nothing to say (False: it looks closer)."""
    try:
        stored = payload["stored"]
        if kind == "run_message":
            message = stored["message"]
            to = message["to"]
            # a Vec field may be absent (serde's default), never null
            return (
                _destination_fine(to["destination_ref"])
                and _related_fine(to.get("related_refs", _NO_LIST))
                and _entries_fine(message["correlation"].get("entries", _NO_LIST))
                and _policy_refs_fine(message.get("policy_refs", _NO_LIST))
            )
        if kind == "wake":
            condition = stored["condition"]
            compiled = stored["compiled_filter"]
            refs = condition.get("policy_refs", _NO_LIST)
            fields = compiled["indexed_fields"]
            if not (
                id_fine(stored["registration"]["run_id"])
                and compiled["filter_id"].__class__ is str
                and compiled["filter_fingerprint"].__class__ is str
                and compiled["payload_access"] in _PAYLOAD_ACCESS
                and _queue_fine(compiled["queue"])
                and fields.__class__ is list
                and _policy_refs_fine(refs)
                and _filter_fine(condition["filter"])
                and _filter_fine(compiled["criteria"])
            ):
                return False
            for field in fields:
                if field not in _INDEX_FIELDS:
                    return False
        return True
    except (KeyError, TypeError, AttributeError):
        return False


def _explain_unread(kind: Any, payload: Any) -> None:
    """Raise what :func:`check_unread` finds wrong (nothing for a payload whose
    shape :func:`extract` refuses first)."""
    if payload.__class__ is not dict:
        return  # extract() says what is wrong
    stored = payload.get("stored")
    if stored.__class__ is not dict:
        return
    if kind == "run_message":
        message = stored.get("message")
        if message.__class__ is not dict:
            return
        to = message.get("to")
        if to.__class__ is dict:
            if "destination_ref" not in to:
                raise _missing("stored.message.to.destination_ref")
            _explain_ref(wire.DESTINATION_REF, to["destination_ref"], "stored.message.to.destination_ref")
            related = to.get("related_refs", _NO_LIST)
            if related.__class__ is not list:
                raise _wrong("stored.message.to.related_refs", related, "a list")
            for i, ref in enumerate(related):
                _explain_ref(wire.ENTITY_REF, ref, f"stored.message.to.related_refs[{i}]")
        if "correlation" not in message:
            raise _missing("stored.message.correlation")
        correlation = message["correlation"]
        if correlation.__class__ is not dict:
            raise _wrong("stored.message.correlation", correlation, "an object")
        entries = correlation.get("entries", _NO_LIST)
        if entries.__class__ is not list:
            raise _wrong("stored.message.correlation.entries", entries, "a list")
        for entry in entries:
            if entry.__class__ is not dict:
                raise _wrong("stored.message.correlation.entries item", entry, "an object")
            for name in ("key", "value"):
                if name not in entry:
                    raise _missing(f"stored.message.correlation.entries item's {name}")
                _ident(entry[name], f"stored.message.correlation.entries item's {name}")
        if "policy_refs" in message:
            _check_policy_refs(message["policy_refs"], "stored.message.policy_refs")
    elif kind == "wake":
        condition = stored.get("condition")
        if condition.__class__ is dict:
            if "filter" not in condition:
                raise _missing("stored.condition.filter")
            _explain_filter(condition["filter"], "stored.condition.filter")
            if "policy_refs" in condition:
                _check_policy_refs(condition["policy_refs"], "stored.condition.policy_refs")
        registration = stored.get("registration")
        if registration.__class__ is dict:
            _ident(registration.get("run_id"), "stored.registration.run_id")
        compiled = stored.get("compiled_filter")
        if compiled.__class__ is dict:
            for name in _COMPILED_TEXTS:
                if name not in compiled:
                    raise _missing(f"stored.compiled_filter.{name}")
                if compiled[name].__class__ is not str:
                    _text(compiled[name], f"stored.compiled_filter.{name}")
            _one_of(compiled["payload_access"], "stored.compiled_filter.payload_access", _PAYLOAD_ACCESS)
            for name in _COMPILED_OBJECTS:
                if name not in compiled:
                    raise _missing(f"stored.compiled_filter.{name}")
                if compiled[name].__class__ is not dict:
                    raise _wrong(f"stored.compiled_filter.{name}", compiled[name], "an object")
            if "indexed_fields" not in compiled:
                raise _missing("stored.compiled_filter.indexed_fields")
            for item in _texts(compiled["indexed_fields"], "stored.compiled_filter.indexed_fields"):
                _one_of(item, "stored.compiled_filter.indexed_fields item", _INDEX_FIELDS)
            _explain_queue(compiled["queue"], "stored.compiled_filter.queue")
            _explain_filter(compiled["criteria"], "stored.compiled_filter.criteria")


def _one_of(value: Any, field: str, options: frozenset) -> None:
    """:class:`CorruptRecordError` unless ``value`` is one of an SDK enum's spellings ``options``."""
    _text(value, field)
    if value not in options:
        raise CorruptRecordError(
            f"{field} is {wire.shown_id(value)}, not one of {', '.join(sorted(options))} "
            "(serde: unknown variant; the SDK cannot read this record)"
        )


def _missing(field: str) -> CorruptRecordError:
    return CorruptRecordError(f"{field} is missing (the SDK cannot read this record)")


def _wrong(field: str, value: Any, expected: str) -> CorruptRecordError:
    return CorruptRecordError(f"{field} is JSON {_json_type(value)}, not {expected} (the SDK cannot read this record)")


#: A compiled filter's fields (all required): its strings and its objects.  That
#: the criteria compile to the rest is not checked here: doctor compiles each
#: wake's criteria again (``wake_filter_mismatch``).
_COMPILED_TEXTS = ("filter_id", "filter_fingerprint", "payload_access")
_COMPILED_OBJECTS = ("queue", "criteria")


def _check_member(member: dict) -> None:
    """:class:`CorruptRecordError` unless ``member`` has the SDK's ``AgentPoolMember``
    types (checked by hand: members are loaded one by one through :func:`extract`)."""
    _ident(member["agent_id"], "member.agent_id")
    # a Vec field may be absent (serde's default), never null
    if "topics" in member:
        _idents(member["topics"], "member.topics")
    if "policy_refs" in member:
        _check_policy_refs(member["policy_refs"], "member.policy_refs")


def _check_policy_refs(refs: Any, field: str) -> None:
    if refs.__class__ is not list:
        raise CorruptRecordError(f"{field} is JSON {_json_type(refs)}, not a list of policy refs")
    for ref in refs:
        if ref.__class__ is not dict:
            raise CorruptRecordError(f"{field} holds JSON {_json_type(ref)}, not a policy ref object")
        _one_of(ref.get("kind"), f"{field}[].kind", _POLICY_KINDS)
        _ident(ref.get("id"), f"{field}[].id")
        _text(ref.get("version"), f"{field}[].version", optional=True)


def _included(selector: Any, name: str = "selector", *, ids: bool = False) -> tuple | None:
    """``{"include": [..]}`` -> tuple of strings (``ids``: of the SDK's
    identifiers); ``"any"`` (or absent) -> None."""
    if isinstance(selector, dict):
        return (_idents if ids else _texts)(selector.get("include", []), f"compiled_filter.criteria.{name}.include")
    return None


def configs_equal(left: dict, right: dict) -> bool:
    """Compare two configs as the SDK does: after its defaults, so an omitted
    list equals an empty one.

    >>> configs_equal({"message_policy": {"include_sender_in_pool_broadcast": False,
    ...     "required_policy_refs": []}, "wake_policy": {"envelope_only": True}, "policy_refs": []}, {})
    True
    """
    try:
        return wire.canonical_config(left) == wire.canonical_config(right)
    except Exception:  # a malformed stored config never equals a well-formed one
        return left == right


class PoolFold:
    """Pointer state of one pool, advanced one record at a time.

    Dicts map keys to the *position* (0-based index in seq order) of the latest
    record for that key.  ``apply`` returns the position of the record it
    replaces for the same key (``-1`` if none), which is what the columnar
    index needs to answer "which records are live at cursor k".
    """

    __slots__ = (
        "config",
        "config_seq",
        "conflict_seq",
        "created_seq",
        "members",
        "messages",
        "wakes",
        "message_dedupe",
        "wake_dedupe",
        "cursor",
        "count",
    )

    def __init__(self) -> None:
        self.config: dict | None = None
        self.config_seq: int | None = None
        self.conflict_seq: int | None = None
        self.created_seq: int | None = None
        self.members: dict[str | None, int] = {}
        self.messages: dict[str | None, int] = {}
        self.wakes: dict[str | None, int] = {}
        self.message_dedupe: dict[str | None, int] = {}
        self.wake_dedupe: dict[str | None, int] = {}
        self.cursor: int | None = None
        self.count = 0

    def apply_many(self, start: int, seqs: list[int], entries: list[Entry]) -> list[int]:
        """Apply a batch of records at positions ``start, start+1, …``; return
        the replaced position for each (``-1`` if none).

        Exactly :meth:`apply` record by record, with the two bulk kinds
        (messages and wakes) inlined: this loop is what a million-record load spends
        its time in.
        """
        prevs: list[int] = []
        add = prevs.append
        # keyed by the entries' str fields (typed Optional: only these kinds always set them)
        messages: dict[Any, int] = self.messages
        wakes: dict[Any, int] = self.wakes
        message_dedupe: dict[Any, int] = self.message_dedupe
        wake_dedupe: dict[Any, int] = self.wake_dedupe
        apply = self.apply
        applied = 0
        for pos, seq, entry in zip(range(start, start + len(seqs)), seqs, entries):
            kind = entry[0]
            if kind == RUN_MESSAGE:
                message_dedupe[entry[3]] = pos
                add(messages.get(entry[1], -1))
                messages[entry[1]] = pos
                applied += 1
            elif kind == WAKE:
                wake_dedupe[entry[3]] = pos
                add(wakes.get(entry[1], -1))
                wakes[entry[1]] = pos
                applied += 1
            elif kind == DAMAGED:
                add(-1)
            else:
                add(apply(pos, seq, entry))
                self.cursor = seq
                continue
            self.cursor = seq
        self.count += applied
        return prevs

    def apply(self, pos: int, seq: int, entry: Entry) -> int:
        """Apply the record at ``pos`` (seq ``seq``); return the replaced position or -1."""
        self.cursor = seq
        self.count += 1
        kind = entry.kind
        key = cast(str, entry.key)  # str for every kind that has a key (extract checks it)
        if kind == RUN_MESSAGE:
            self.message_dedupe[cast(str, entry.idem)] = pos
            prev = self.messages.get(key, -1)
            self.messages[key] = pos
            return prev
        if kind == WAKE:
            self.wake_dedupe[cast(str, entry.idem)] = pos
            prev = self.wakes.get(key, -1)
            self.wakes[key] = pos
            return prev
        if kind == MEMBER_JOINED:
            prev = self.members.get(key, -1)
            self.members[key] = pos
            return prev
        if kind == MEMBER_LEFT:
            return self.members.pop(key, -1)
        if kind == POOL_OPENED:
            if self.config is None:
                self.config = entry.extra
                self.config_seq = seq
            elif self.conflict_seq is None and not configs_equal(self.config, entry.extra):
                self.conflict_seq = seq
            return -1
        if kind == POOL_CREATED:
            if self.created_seq is None:
                self.created_seq = seq
            return -1
        return -1
