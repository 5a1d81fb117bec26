"""The SDK's wire format: record kinds, statuses and serde-exact JSON.

The Rust SDK serializes with ``serde_json``: fields in declaration order,
compact separators, raw UTF-8, empty lists (``skip_serializing_if =
"Vec::is_empty"``) and absent options omitted.  :func:`dumps` writes exactly
those bytes for a dict whose keys are already in declaration order, and the
``canonical_*`` functions put a plain dict given by a user into that order,
dropping what serde would omit and filling what serde would default.

Example::

    >>> from poolscope import wire
    >>> wire.dumps(wire.canonical_member({"topics": [], "agent_id": "a", "run_id": "r"}))
    '{"run_id":"r","agent_id":"a"}'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from .errors import InvalidInputError

#: Record kinds in the order the SDK's enum declares them.
KINDS: tuple[str, ...] = (
    "pool_opened",
    "pool_created",
    "member_joined",
    "member_left",
    "run_message",
    "wake",
)
#: Message receipt statuses (``MessageStatus``), in declaration order.
MESSAGE_STATUSES: tuple[str, ...] = (
    "accepted",
    "delivered",
    "responded",
    "failed",
    "timed_out",
    "expired",
    "cancelled",
)
#: Wake registration statuses (``WakeRegistrationStatus``), in declaration order.
WAKE_STATUSES: tuple[str, ...] = ("registered", "triggered", "timed_out", "cancelled", "failed")
#: Message statuses after which the coordinator sends nothing more by itself.
MESSAGE_TERMINAL: frozenset[str] = frozenset(MESSAGE_STATUSES) - {"accepted"}
#: Wake statuses that end a registration.
WAKE_TERMINAL: frozenset[str] = frozenset(WAKE_STATUSES) - {"registered"}
TARGET_TYPES: tuple[str, ...] = ("run", "agent", "topic", "pool")
#: The field of a ``RunTarget`` (tagged by ``type``) that holds its id, per target type.
TARGET_ID_FIELD: dict[str, str] = {kind: f"{kind}_id" for kind in TARGET_TYPES}
RESUME_POLICIES: tuple[str, ...] = ("matching_event_refs", "redacted_summary", "none")
#: ``PolicyRef.kind`` (``PolicyKind``), in declaration order.
POLICY_KINDS: tuple[str, ...] = (
    "approval",
    "permission",
    "sandbox",
    "context",
    "privacy",
    "retention",
    "redaction",
    "runtime_package",
    "host",
)
#: ``payload_access`` of a filter and a compiled filter (``PayloadAccessMode``), in declaration order.
PAYLOAD_ACCESS_MODES: tuple[str, ...] = (
    "envelope_only",
    "redacted_summary",
    "payload_refs",
    "full_payload_if_policy_allows",
)
#: A filter queue's ``overflow`` (``SubscriberOverflowPolicy``), in declaration order.
OVERFLOW_POLICIES: tuple[str, ...] = (
    "drop_non_terminal",
    "drop_progress",
    "summarize_and_continue",
    "backpressure_caller",
    "fail_subscriber",
)
#: A compiled filter's ``indexed_fields`` items (``EventIndexField``), in declaration order, and
#: ``session_id``: a later SDK source declares it (whether this release writes it is not known, so a
#: stored one is not taken for damage; :func:`compile_filter` never lists it).
INDEX_FIELDS: tuple[str, ...] = (
    "run_id",
    "agent_id",
    "turn_id",
    "event_family",
    "event_kind",
    "source",
    "destination",
    "subject_kind",
    "related_entity_kind",
    "correlation_key",
    "tag",
    "privacy",
    "delivery_semantics",
    "session_id",
)


_msgspec_encode = msgspec.json.Encoder().encode


def dumps(value: Any) -> str:
    """Serialize like ``serde_json::to_string``: compact, raw UTF-8, keys in dict order.

    >>> dumps({"b": 1, "a": "é"})
    '{"b":1,"a":"é"}'
    """
    return dumpb(value).decode("utf-8")


def dumpb(value: Any) -> bytes:
    """Like :func:`dumps` but returns UTF-8 bytes.  A float with a positive
    exponent is written as serde_json writes it (``1e16``; orjson writes
    ``1e+16``, and otherwise the same bytes).

    >>> dumpb([1, 2, 1e16, 1.5e-7])
    b'[1,2,1e16,1.5e-7]'
    """
    out = orjson.dumps(value)
    if b"e+" in out:  # in a float, or in a string: msgspec writes both as serde_json does
        out = _msgspec_encode(value)
    return out


def loads(text: str | bytes) -> Any:
    """Parse JSON text (``str`` or UTF-8 ``bytes``), keeping key order.

    >>> loads('{"z": 1, "a": 2}')
    {'z': 1, 'a': 2}
    """
    return orjson.loads(text)


#: serde_json's recursion limit: its ``remaining_depth`` starts at 128 and every
#: array or object takes one before its contents are read, failing when it
#: reaches 0 -- so a payload nests at most 127 arrays and objects (its own
#: object included); the SDK cannot read one more.
MAX_DEPTH = 127
#: The bytes that open a level of nesting: a text with no more than MAX_DEPTH of
#: them cannot nest too deep (counted in one pass: ``len(t) - len(t.translate(None, OPENING))``).
OPENING = b"{["


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def depth(value: Any) -> int:
    """How many arrays and objects nest in ``value`` (0 for a scalar), without recursion.

    >>> depth({"a": [1, {"b": []}]}), depth("x")
    (4, 0)
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children: Any
        if item.__class__ is dict:
            children = item.values()
        elif item.__class__ is list:
            children = item
        else:
            continue
        if level > deepest:
            deepest = level
        stack.extend((child, level + 1) for child in children if child.__class__ in (dict, list))
    return deepest


def payload_problem(raw: str | bytes, value: Any) -> tuple[str, str] | None:
    """Why serde_json cannot read ``raw`` (see :func:`serde_read`), or None.

    >>> payload_problem('{"type":"pool_created"}', {"type": "pool_created"}) is None
    True
    >>> payload_problem('{"type":"a","type":"a"}', {"type": "a"})
    ('duplicate_key', "the key 'type' appears twice in one object (serde_json rejects a repeated field)")
    >>> payload_problem("[" * 128 + "]" * 128, loads("[" * 128 + "]" * 128))[0]
    'too_deep'
    """
    return serde_read(raw, value)[0]


class _NegativeZero:
    """``parse_int`` for the standard library's reader: integers read as
    serde_json reads them -- ``-0`` as the float -0.0 (its number parser makes
    a float of a negative zero), one past i64/u64 as a float (as orjson does
    too), the others as integers; remembers whether it met a ``-0``.

    >>> read = _NegativeZero()
    >>> read("-0"), read("7"), read(str(2**64)), read.found
    (-0.0, 7, 1.8446744073709552e+19, True)
    """

    def __init__(self) -> None:
        self.found = False

    def __call__(self, text: str) -> Any:
        if text == "-0":
            self.found = True
            return -0.0
        number = int(text)
        return number if -(2**63) <= number <= 2**64 - 1 else float(text)


def serde_read(raw: str | bytes, value: Any) -> tuple[tuple[str, str] | None, Any]:
    """``(problem, value)``: why serde_json cannot read the JSON text ``raw``
    that orjson read as ``value`` (``(code, message)``, or None), and the value
    as serde_json reads it -- ``value`` itself, unless the text holds the
    integer ``-0``, which serde_json reads as the float -0.0 (written back
    ``-0.0``; refused where the SDK wants an integer) and orjson as 0.
    orjson is also more lenient in two ways: it keeps the last of repeated
    keys (serde rejects a repeated field: ``duplicate_key``), and it reads up
    to 1024 levels of nesting (serde :data:`MAX_DEPTH`: ``too_deep``).

    Cheap for the SDK's own payloads: the nesting is only measured when the text
    has more brackets than the limit, and the text is only read again when it
    is not exactly what serde would write back.

    >>> serde_read('{"n":-0,"m":"-0"}', {"n": 0, "m": "-0"})
    (None, {'n': -0.0, 'm': '-0'})
    >>> serde_read('{"type":"a","type":"a"}', {"type": "a"})[0][0]
    'duplicate_key'
    """
    if isinstance(raw, str):
        try:
            data = raw.encode()
        except UnicodeEncodeError:
            data = raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
    # 128 levels take 256 brackets: a shorter text, or one with fewer opening ones, is within the limit
    if len(data) > 2 * MAX_DEPTH and len(data) - len(data.translate(None, OPENING)) > MAX_DEPTH:
        nesting = depth(value)
        if nesting > MAX_DEPTH:
            return (
                "too_deep",
                f"the payload nests {nesting} levels of arrays and objects; serde_json reads at most {MAX_DEPTH}",
            ), value
    if dumpb(value) != data:  # not serde's own bytes: look for a repeated key, a -0
        import json

        integers = _NegativeZero()
        try:
            again = json.loads(data, object_pairs_hook=_no_duplicates, parse_int=integers)
        except _DuplicateKey as error:
            return (
                "duplicate_key",
                f"the key {error.args[0]!r} appears twice in one object (serde_json rejects a repeated field)",
            ), value
        except (ValueError, RecursionError):
            pass  # orjson read it; a difference of dialect is not this check's business
        else:
            if integers.found:
                return None, again
    return None, value


# --------------------------------------------------------------------------
# Declarative schema of the SDK's pool types (declaration order, serde rules)
# --------------------------------------------------------------------------

REQUIRED = "required"  # always written, must be present
SKIP_EMPTY = "skip_empty"  # #[serde(default, skip_serializing_if = "Vec::is_empty")]
SKIP_NONE = "skip_none"  # #[serde(skip_serializing_if = "Option::is_none")]


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages.

    >>> json_type(None), json_type([1]), json_type({}), json_type(True), json_type(1.5)
    ('null', 'array', 'object', 'boolean', 'number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for types, name in (((dict,), "object"), ((list, tuple), "array"), ((str,), "string"), ((int, float), "number")):
        if isinstance(value, types):
            return name
    return type(value).__name__


class _Struct:
    def __init__(self, name: str, fields: list[tuple[str, Any, str]], defaults: dict | None = None):
        self.name = name
        self.fields = fields
        self.defaults = defaults or {}

    def __call__(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where}: {self.name} must be an object, not {json_type(value)}")
        out: dict[str, Any] = {}
        for key, typ, rule in self.fields:
            # null is an absent Option (serde reads it as None), but never an absent Vec: serde's
            # #[serde(default)] fills a missing list, and refuses null ("expected a sequence")
            present = key in value and not (rule == SKIP_NONE and value[key] is None)
            if not present:
                if key in self.defaults:
                    item = self.defaults[key]() if callable(self.defaults[key]) else self.defaults[key]
                    out[key] = _check(typ, item, f"{where}.{key}")
                    continue
                if rule == REQUIRED:
                    raise InvalidInputError(f"{where}: {self.name} needs field {key!r}")
                continue
            item = _check(typ, value[key], f"{where}.{key}")
            if rule == SKIP_EMPTY and item == []:
                continue
            out[key] = item
        return out

    def reject_unknown(self, value: Any, where: str) -> None:
        """Raise :class:`InvalidInputError` for a key the SDK's type has no field
        for (here or in a nested struct): serde would drop it, so a value given
        to be written with it would silently lose it."""
        if not isinstance(value, dict):
            return  # __call__ says what is wrong
        names = [key for key, _, _ in self.fields]
        unknown = [key for key in value if key not in names]
        if unknown:
            listed = ", ".join(repr(k) for k in unknown)
            raise InvalidInputError(
                f"{where}: {self.name} has no field {listed} (its fields: {', '.join(names)}); "
                "the SDK's type cannot carry it"
            )
        for key, typ, _ in self.fields:
            item = value.get(key)
            if item is None:
                continue
            if typ is _run_target and isinstance(item, dict):
                kind = item.get("type")
                field = TARGET_ID_FIELD.get(kind) if isinstance(kind, str) else None
                extra = [k for k in item if k not in ("type", field)]
                if field is not None and extra:
                    raise InvalidInputError(
                        f"{where}.{key}: a {kind} target has no field "
                        f"{', '.join(repr(k) for k in extra)} (its fields: type, {field}); the SDK's type cannot carry it"
                    )
            if isinstance(typ, _Struct):
                typ.reject_unknown(item, f"{where}.{key}")
            elif isinstance(getattr(typ, "item", None), _Struct) and isinstance(item, (list, tuple)):
                for i, element in enumerate(item):
                    typ.item.reject_unknown(element, f"{where}.{key}[{i}]")


def _check(typ: Any, value: Any, where: str) -> Any:
    if isinstance(typ, _Struct) or callable(typ) and not isinstance(typ, type):
        return typ(value, where)
    if typ is bool:
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where}: expected true or false, got {value!r}")
        return value
    if typ is int:  # the SDK's u64
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**64 - 1:
            raise InvalidInputError(f"{where}: expected an integer in 0..2^64-1, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise InvalidInputError(f"{where}: expected a string, got {value!r}")
        return check_text(value, where)
    raise TypeError(typ)  # pragma: no cover - schema bug


def check_text(value: str, where: str) -> str:
    """``value`` when it can be stored as UTF-8 (SQLite's text, serde's strings);
    a lone surrogate (``"\\udc80"``, from a mis-decoded file name) cannot.

    >>> check_text("run.1", "run_id")
    'run.1'
    >>> check_text("run\\udc80", "run_id")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: run_id: 'run\\udc80' is not valid Unicode text (a lone surrogate at index 3), so it cannot be stored as UTF-8
    """
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(
                f"{where}: {value[:40]!r} is not valid Unicode text (a lone surrogate at index {error.start}), "
                "so it cannot be stored as UTF-8"
            ) from None
    return value


def _list_of(typ: Any) -> Callable[[Any, str], list]:
    def check(value: Any, where: str) -> list:
        if not isinstance(value, (list, tuple)):
            raise InvalidInputError(f"{where}: expected a list, got {json_type(value)}")
        return [_check(typ, item, f"{where}[{i}]") for i, item in enumerate(value)]

    check.item = typ  # type: ignore[attr-defined]  # for _Struct.reject_unknown and poolscope.wire_types
    return check


def _one_of(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if value not in options:
            raise InvalidInputError(f"{where}: {value!r} is not one of {', '.join(options)}")
        return value

    check.options = options  # type: ignore[attr-defined]  # for poolscope.wire_types
    return check


#: The longest identifier the SDK reads, in UTF-8 bytes (``MAX_ID_LEN``).
MAX_ID_BYTES = 512
#: What Rust's ``char::is_control`` is true for (Unicode's Cc: C0, DEL and C1).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def identifier_problem(value: str) -> str | None:
    r"""Why the SDK refuses ``value`` as one of its identifiers (``RunId``,
    ``MessageId``, ``IdempotencyKey``, ``JournalCursor``, ... : every id
    newtype checks it when read), in its own words; None when it reads it.
    An identifier is not empty, at most :data:`MAX_ID_BYTES` UTF-8 bytes, and
    holds no control character.

    >>> identifier_problem("run.1") is None
    True
    >>> identifier_problem(""), identifier_problem("é" * 257), identifier_problem("run\n1")
    ('identifier is empty', 'identifier length 514 exceeds max 512', 'identifier contains control character at byte 3')
    """
    if not value:
        return "identifier is empty"
    if len(value) > MAX_ID_BYTES // 4 or not value.isascii():
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_ID_BYTES:
            return f"identifier length {size} exceeds max {MAX_ID_BYTES}"
    if not value.isprintable():  # every control character is unprintable: the usual id is answered here
        found = _CONTROL.search(value)
        if found is not None:
            at = len(value[: found.start()].encode("utf-8", "surrogatepass"))
            return f"identifier contains control character at byte {at}"
    return None


def id_fine(value: Any) -> bool:
    """Whether ``value`` is a string the SDK reads as an identifier (the usual
    short, printable id is answered without :func:`identifier_problem`).

    >>> id_fine("run.1"), id_fine("run\u00a01"), id_fine(""), id_fine(7)
    (True, True, False, False)
    """
    return value.__class__ is str and (
        (0 < len(value) <= MAX_ID_BYTES // 4 and value.isprintable()) or identifier_problem(value) is None
    )


def _id(value: Any, where: str) -> str:
    """One of the SDK's identifiers: a string :func:`identifier_problem` has nothing against."""
    if value.__class__ is str and 0 < len(value) <= MAX_ID_BYTES // 4 and value.isprintable():
        return value  # the usual short, printable id (a lone surrogate is not printable: checked below)
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: expected a string, got {value!r}")
    check_text(value, where)
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{where}: {problem} ({shown_id(value)})")
    return value


def shown_id(value: str) -> str:
    r"""An identifier quoted for a message: escaped, at most 40 characters.

    >>> shown_id("a\tb"), shown_id("x" * 50)[-6:]
    ("'a\\tb'", "xx'...")
    """
    return repr(value[:40]) + ("..." if len(value) > 40 else "")


def _run_target(value: Any, where: str) -> dict:
    """A ``RunAddressTarget`` (tagged by ``type``): its tag, then the variant's
    id, as serde writes it back (other keys dropped)."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: RunAddressTarget must be an object, not {json_type(value)}")
    kind = value.get("type")
    field = TARGET_ID_FIELD.get(kind) if isinstance(kind, str) else None
    if field is None:
        raise InvalidInputError(f"{where}.type: {kind!r} is not one of {', '.join(TARGET_TYPES)}")
    if field not in value:
        raise InvalidInputError(f"{where}: a {kind} target needs field {field!r}")
    return {"type": kind, field: _id(value[field], f"{where}.{field}")}


def _u32(value: Any, where: str) -> int:
    """An integer in 0..2^32-1 (a ``u32`` of the SDK)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**32 - 1:
        raise InvalidInputError(f"{where}: expected an integer in 0..2^32-1, got {value!r}")
    return value


def _nonzero_usize(value: Any, where: str) -> int:
    """An integer in 1..2^64-1 (a ``NonZeroUsize`` of the SDK: serde refuses 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**64 - 1:
        raise InvalidInputError(f"{where}: expected an integer in 1..2^64-1 (the SDK's NonZeroUsize), got {value!r}")
    return value


def _filter_set(value: Any, where: str, item: Any = str) -> Any:
    if value == "any":
        return "any"
    if isinstance(value, dict) and set(value) == {"include"}:
        return {"include": _check(_list_of(item), value["include"], f"{where}.include")}
    if isinstance(value, (list, tuple)):  # convenience: a bare list means include
        return {"include": _check(_list_of(item), value, where)}
    raise InvalidInputError(f'{where}: a filter set is "any" or {{"include": [...]}}, got {value!r}')


def _id_filter_set(value: Any, where: str) -> Any:
    """A filter set of the SDK's identifiers (run, session, agent, turn ids; correlation keys)."""
    return _filter_set(value, where, _id)


def _stored_filter_set(value: Any, where: str, item: Any = str) -> Any:
    """A filter set as serde reads it from a stored record (``EventFilterSet``, an externally
    tagged enum): ``"any"`` or ``{"include": [...]}`` exactly -- not the bare list
    :func:`_filter_set` takes from a user.

    >>> _stored_filter_set(["run_completed"], "filter.kinds")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: filter.kinds: a filter set is "any" or {"include": [...]}, got ['run_completed']
    """
    if value.__class__ is list or not (value == "any" or value.__class__ is dict):
        raise InvalidInputError(f'{where}: a filter set is "any" or {{"include": [...]}}, got {value!r}')
    return _filter_set(value, where, item)


def _stored_id_filter_set(value: Any, where: str) -> Any:
    """:func:`_stored_filter_set` of the SDK's identifiers."""
    return _stored_filter_set(value, where, _id)


POLICY_REF = _Struct(
    "PolicyRef", [("kind", _one_of(POLICY_KINDS), REQUIRED), ("id", _id, REQUIRED), ("version", str, SKIP_NONE)]
)
MEMBER = _Struct(
    "AgentPoolMember",
    [
        ("run_id", _id, REQUIRED),
        ("agent_id", _id, REQUIRED),
        ("policy_refs", _list_of(POLICY_REF), SKIP_EMPTY),
        ("topics", _list_of(_id), SKIP_EMPTY),
    ],
)
MESSAGE_POLICY = _Struct(
    "AgentPoolMessagePolicy",
    [
        ("required_policy_refs", _list_of(POLICY_REF), SKIP_EMPTY),
        ("include_sender_in_pool_broadcast", bool, REQUIRED),
    ],
    defaults={"include_sender_in_pool_broadcast": False},
)
WAKE_POLICY = _Struct("AgentPoolWakePolicy", [("envelope_only", bool, REQUIRED)], defaults={"envelope_only": True})
CONFIG = _Struct(
    "AgentPoolStoreConfig",
    [
        ("message_policy", MESSAGE_POLICY, REQUIRED),
        ("wake_policy", WAKE_POLICY, REQUIRED),
        ("policy_refs", _list_of(POLICY_REF), SKIP_EMPTY),
    ],
    defaults={"message_policy": lambda: {}, "wake_policy": lambda: {}},
)
RESPONSE_CONTRACT = _Struct(
    "MessageResponseContract", [("expected_responses", _u32, REQUIRED), ("timeout_millis", int, SKIP_NONE)]
)
CORRELATION_ENTRY = _Struct("CorrelationEntry", [("key", _id, REQUIRED), ("value", _id, REQUIRED)])
CORRELATION = _Struct("EventCorrelation", [("entries", _list_of(CORRELATION_ENTRY), SKIP_EMPTY)])
#: ``PrivacyClass``, ``RetentionClass`` and ``TrustClass`` (serde's snake_case names, in declaration order).
PRIVACY_CLASSES: tuple[str, ...] = ("public", "internal", "content_refs_only", "sensitive", "secret")
RETENTION_CLASSES: tuple[str, ...] = (
    "ephemeral",
    "run_scoped",
    "session_scoped",
    "durable",
    "persistent",
    "host_policy",
)
TRUST_CLASSES: tuple[str, ...] = (
    "trusted",
    "sdk_generated",
    "host_provided",
    "user_provided",
    "external",
    "untrusted",
)
#: ``DestinationKind``: what a message's ``to.destination_ref`` names.
DESTINATION_KINDS: tuple[str, ...] = (
    "agent",
    "agent_pool",
    "topic",
    "provider",
    "context_projection",
    "journal",
    "event_stream",
    "telemetry",
    "output_sink",
    "host",
    "user",
    "remote_channel",
    "tool",
    "extension",
    "subagent",
    "external_runtime",
)
#: ``EntityKind``: what an item of ``to.related_refs`` names.
ENTITY_KINDS: tuple[str, ...] = (
    "run",
    "turn",
    "attempt",
    "agent",
    "agent_pool",
    "topic",
    "event",
    "message",
    "wake_condition",
    "context_contribution",
    "context_item",
    "context_projection",
    "content",
    "artifact",
    "capability",
    "package_sidecar",
    "runtime_package",
    "policy_decision",
    "effect",
    "effect_intent",
    "effect_result",
    "tool_call",
    "approval_request",
    "stream_rule",
    "realtime_session",
    "hook",
    "execution_environment",
    "child_artifact",
    "subagent_run",
    "extension_action",
    "output_delivery",
)
#: ``SourceKind``: where an ``EntityRef``'s ``source`` comes from.
SOURCE_KINDS: tuple[str, ...] = (
    "sdk",
    "host",
    "user",
    "system",
    "developer",
    "memory",
    "compaction",
    "hook",
    "extension",
    "tool",
    "remote_channel",
    "scheduled_task",
    "subagent",
    "external_runtime",
    "replay",
)
#: The SDK's refs (``domain/refs.rs``): their ids are identifiers (``DestinationId``,
#: ``EntityId``, ``SourceId`` check them as the other id newtypes do), their
#: classes closed enums, none of them defaulted but ``correlation``.
SOURCE_REF = _Struct(
    "SourceRef",
    [
        ("kind", _one_of(SOURCE_KINDS), REQUIRED),
        ("id", _id, REQUIRED),
        ("trust", _one_of(TRUST_CLASSES), REQUIRED),
        ("privacy", _one_of(PRIVACY_CLASSES), REQUIRED),
        ("correlation", _list_of(CORRELATION_ENTRY), SKIP_EMPTY),
        ("redacted_summary", str, SKIP_NONE),
    ],
)
DESTINATION_REF = _Struct(
    "DestinationRef",
    [
        ("kind", _one_of(DESTINATION_KINDS), REQUIRED),
        ("id", _id, REQUIRED),
        ("privacy", _one_of(PRIVACY_CLASSES), REQUIRED),
        ("retention", _one_of(RETENTION_CLASSES), REQUIRED),
        ("correlation", _list_of(CORRELATION_ENTRY), SKIP_EMPTY),
        ("redacted_summary", str, SKIP_NONE),
    ],
)
ENTITY_REF = _Struct(
    "EntityRef",
    [
        ("kind", _one_of(ENTITY_KINDS), REQUIRED),
        ("id", _id, REQUIRED),
        ("source", SOURCE_REF, SKIP_NONE),
        ("privacy", _one_of(PRIVACY_CLASSES), REQUIRED),
        ("redacted_summary", str, SKIP_NONE),
    ],
)
RUN_ADDRESS = _Struct(
    "RunAddress",
    [
        ("target", _run_target, REQUIRED),
        ("destination_ref", DESTINATION_REF, REQUIRED),
        ("related_refs", _list_of(ENTITY_REF), SKIP_EMPTY),
    ],
)
RUN_MESSAGE = _Struct(
    "RunMessage",
    [
        ("message_id", _id, REQUIRED),
        ("from", _id, REQUIRED),
        ("to", RUN_ADDRESS, REQUIRED),
        ("content_ref", _id, REQUIRED),
        ("correlation", CORRELATION, REQUIRED),
        ("reply_to", _id, SKIP_NONE),
        ("response_contract", RESPONSE_CONTRACT, SKIP_NONE),
        ("expires_at_millis", int, SKIP_NONE),
        ("idempotency_key", _id, REQUIRED),
        ("policy_refs", _list_of(POLICY_REF), SKIP_EMPTY),
    ],
    defaults={"correlation": lambda: {}},
)
RECEIPT = _Struct(
    "MessageReceipt",
    [
        ("message_id", _id, REQUIRED),
        ("status", _one_of(MESSAGE_STATUSES), REQUIRED),
        ("delivered_to", _list_of(_id), SKIP_EMPTY),
        ("journal_cursor", _id, SKIP_NONE),
    ],
)
QUEUE = _Struct(
    "SubscriberQueueConfig",
    [
        ("capacity", _nonzero_usize, REQUIRED),
        ("terminal_reserve", _nonzero_usize, REQUIRED),
        ("overflow", _one_of(OVERFLOW_POLICIES), REQUIRED),
    ],
    defaults={"capacity": 64, "terminal_reserve": 1, "overflow": "drop_non_terminal"},
)
#: ``EventFilter`` fields as this SDK release writes them; omitted ones take
#: ``EventFilter::default()`` (``"any"``, not terminal-only, envelope only).
FILTER_SETS: tuple[str, ...] = (
    "run_ids",
    "session_ids",
    "agent_ids",
    "turn_ids",
    "families",
    "kinds",
    "source_kinds",
    "destination_kinds",
    "subject_kinds",
    "related_entity_kinds",
    "correlation_keys",
    "tags",
    "privacy_classes",
    "delivery_semantics",
)
#: The filter sets whose items are the SDK's identifiers (checked as :func:`identifier_problem` says).
ID_FILTER_SETS = frozenset({"run_ids", "session_ids", "agent_ids", "turn_ids", "correlation_keys"})
EVENT_FILTER = _Struct(
    "EventFilter",
    [(name, _id_filter_set if name in ID_FILTER_SETS else _filter_set, REQUIRED) for name in FILTER_SETS]
    + [
        ("terminal_only", bool, REQUIRED),
        ("payload_access", _one_of(PAYLOAD_ACCESS_MODES), REQUIRED),
        ("queue", QUEUE, REQUIRED),
    ],
    defaults={
        **dict.fromkeys(FILTER_SETS, "any"),
        "terminal_only": False,
        "payload_access": "envelope_only",
        "queue": lambda: {},
    },
)
#: How serde reads each field of a *stored* ``EventFilter`` (:func:`poolscope.fold.check_unread`):
#: as :data:`EVENT_FILTER`, but a filter set only as serde spells it (no bare list).
STORED_FILTER_FIELDS: tuple[tuple[str, Any], ...] = tuple(
    (name, _stored_id_filter_set if name in ID_FILTER_SETS else _stored_filter_set) for name in FILTER_SETS
) + (("terminal_only", bool), ("payload_access", _one_of(PAYLOAD_ACCESS_MODES)))
WAKE_CONDITION = _Struct(
    "WakeCondition",
    [
        ("condition_id", _id, REQUIRED),
        ("run_id", _id, REQUIRED),
        ("filter", EVENT_FILTER, REQUIRED),
        ("timeout_millis", int, SKIP_NONE),
        ("resume_with", _one_of(RESUME_POLICIES), REQUIRED),
        ("idempotency_key", _id, REQUIRED),
        ("policy_refs", _list_of(POLICY_REF), SKIP_EMPTY),
    ],
    defaults={"filter": lambda: {}, "resume_with": "matching_event_refs"},
)
COMPILED_FILTER = _Struct(
    "CompiledEventFilter",
    [
        ("filter_id", str, REQUIRED),
        ("filter_fingerprint", str, REQUIRED),
        ("indexed_fields", _list_of(_one_of(INDEX_FIELDS)), REQUIRED),
        ("payload_access", _one_of(PAYLOAD_ACCESS_MODES), REQUIRED),
        ("queue", QUEUE, REQUIRED),
        ("criteria", EVENT_FILTER, REQUIRED),
    ],
)
REGISTRATION = _Struct(
    "WakeRegistration",
    [
        ("condition_id", _id, REQUIRED),
        ("run_id", _id, REQUIRED),
        ("status", _one_of(WAKE_STATUSES), REQUIRED),
        ("journal_cursor", _id, SKIP_NONE),
    ],
)


def canonical_member(member: dict, *, strict: bool = False) -> dict:
    """An ``AgentPoolMember`` dict in serde order (empty lists dropped).

    >>> canonical_member({"agent_id": "a", "run_id": "r", "topics": ["t"]})
    {'run_id': 'r', 'agent_id': 'a', 'topics': ['t']}
    """
    if strict:
        MEMBER.reject_unknown(member, "member")
    return MEMBER(member, "member")


def canonical_config(config: dict | None, *, strict: bool = False) -> dict:
    """An ``AgentPoolStoreConfig`` in serde order; omitted policies take the
    builder's defaults (``include_sender_in_pool_broadcast: false``,
    ``envelope_only: true``).  A key the SDK's type has no field for is
    dropped, as serde drops it when it reads one -- or, with ``strict`` (what
    :class:`~poolscope.PoolStore` writes), refused.

    >>> canonical_config({})
    {'message_policy': {'include_sender_in_pool_broadcast': False}, 'wake_policy': {'envelope_only': True}}
    >>> canonical_config({"max_members": 3}, strict=True)
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: config: AgentPoolStoreConfig has no field 'max_members' (its fields: message_policy, wake_policy, policy_refs); the SDK's type cannot carry it
    """
    config = {} if config is None else config
    if strict:
        CONFIG.reject_unknown(config, "config")
    return CONFIG(config, "config")


def canonical_message(message: dict, *, strict: bool = False) -> dict:
    """A ``RunMessage`` dict in serde order.

    >>> message = canonical_message({"message_id": "m", "from": "r", "to": {"target": {"type": "run", "run_id": "x"},
    ...     "destination_ref": {"id": "x", "kind": "agent", "retention": "host_policy", "privacy": "internal",
    ...     "correlation": [], "redacted_summary": None}}, "content_ref": "c", "idempotency_key": "k"})
    >>> message["correlation"], message["to"]["destination_ref"]
    ({}, {'kind': 'agent', 'id': 'x', 'privacy': 'internal', 'retention': 'host_policy'})
    >>> canonical_message({"message_id": "m", "from": "r", "to": {"target": {"type": "run", "run_id": "x"},
    ...     "destination_ref": {"kind": "robot", "id": "x"}}, "content_ref": "c", "idempotency_key": "k"})
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: message.to.destination_ref.kind: 'robot' is not one of agent, agent_pool, topic, provider, context_projection, journal, event_stream, telemetry, output_sink, host, user, remote_channel, tool, extension, subagent, external_runtime
    """
    if strict:
        RUN_MESSAGE.reject_unknown(message, "message")
    return RUN_MESSAGE(message, "message")


def canonical_receipt(receipt: dict, *, strict: bool = False) -> dict:
    """A ``MessageReceipt`` dict in serde order.

    >>> canonical_receipt({"status": "failed", "message_id": "m", "delivered_to": []})
    {'message_id': 'm', 'status': 'failed'}
    """
    if strict:
        RECEIPT.reject_unknown(receipt, "receipt")
    return RECEIPT(receipt, "receipt")


def canonical_condition(condition: dict, *, strict: bool = False) -> dict:
    """A ``WakeCondition`` dict in serde order; an omitted filter field takes
    ``EventFilter::default()``.

    >>> canonical_condition({"condition_id": "w", "run_id": "r", "idempotency_key": "k"})["filter"]["run_ids"]
    'any'
    """
    if strict:
        WAKE_CONDITION.reject_unknown(condition, "condition")
    return WAKE_CONDITION(condition, "condition")


def canonical_event_filter(event_filter: dict) -> dict:
    """An ``EventFilter`` dict in serde order.

    >>> canonical_event_filter({"kinds": ["run_completed"]})["kinds"]
    {'include': ['run_completed']}
    """
    return EVENT_FILTER(event_filter, "filter")


def canonical_compiled_filter(compiled: dict, *, strict: bool = False) -> dict:
    """A ``CompiledEventFilter`` dict in serde order."""
    if strict:
        COMPILED_FILTER.reject_unknown(compiled, "compiled_filter")
    return COMPILED_FILTER(compiled, "compiled_filter")


def canonical_registration(registration: dict, *, strict: bool = False) -> dict:
    """A ``WakeRegistration`` dict in serde order.

    >>> canonical_registration({"status": "registered", "run_id": "r", "condition_id": "w"})
    {'condition_id': 'w', 'run_id': 'r', 'status': 'registered'}
    """
    if strict:
        REGISTRATION.reject_unknown(registration, "registration")
    return REGISTRATION(registration, "registration")


def canonical_payload(kind: str, payload: dict) -> dict:
    """A record's payload as the SDK writes it back after reading it (the
    snapshot it computes, the records its ``watch`` returns): each part in
    serde's order, unknown fields dropped, ``None`` options and empty lists
    left out.  ``payload`` is one the fold reads (a damaged one is never
    passed here).

    >>> canonical_payload("member_left", {"member": {"agent_id": "a", "topics": [], "run_id": "r"}, "type": "member_left"})
    {'type': 'member_left', 'member': {'run_id': 'r', 'agent_id': 'a'}}
    """
    if kind == "run_message":
        stored = payload["stored"]
        message = canonical_message(stored["message"])
        return {"type": kind, "stored": {"message": message, "receipt": canonical_receipt(stored["receipt"])}}
    if kind == "wake":
        stored = payload["stored"]
        return {
            "type": kind,
            "stored": {
                "condition": canonical_condition(stored["condition"]),
                "compiled_filter": canonical_compiled_filter(stored["compiled_filter"]),
                "registration": canonical_registration(stored["registration"]),
            },
        }
    if kind in ("member_joined", "member_left"):
        return {"type": kind, "member": canonical_member(payload["member"])}
    if kind == "pool_opened":
        return {"type": kind, "config": canonical_config(payload["config"])}
    return {"type": kind}


_INDEXED = (
    ("run_ids", "run_id"),
    ("agent_ids", "agent_id"),
    ("turn_ids", "turn_id"),
    ("families", "event_family"),
    ("kinds", "event_kind"),
    ("source_kinds", "source"),
    ("destination_kinds", "destination"),
    ("subject_kinds", "subject_kind"),
    ("related_entity_kinds", "related_entity_kind"),
    ("correlation_keys", "correlation_key"),
    ("tags", "tag"),
    ("privacy_classes", "privacy"),
    ("delivery_semantics", "delivery_semantics"),
)


def filter_fingerprint(criteria: dict) -> str:
    """``"sha256:"`` + hex SHA-256 of the compact JSON of ``criteria``, as the SDK computes it.

    >>> filter_fingerprint({"a": 1})
    'sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862'
    """
    return fingerprint_of(dumpb(criteria))


def fingerprint_of(compact: bytes) -> str:
    """The fingerprint of criteria already written as compact JSON bytes.

    >>> fingerprint_of(b'{"a":1}') == filter_fingerprint({"a": 1})
    True
    """
    return "sha256:" + hashlib.sha256(compact).hexdigest()


def filter_id(fingerprint: str) -> str:
    """``"filter."`` + hex SHA-256 of the fingerprint string, as the SDK computes it.

    >>> filter_id("sha256:x")[:14]
    'filter.fe8eb9a'
    """
    return "filter." + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()


def compile_filter(event_filter: dict) -> dict:
    """Compile an ``EventFilter`` the way ``CompiledEventFilter::new`` does.

    The criteria are the canonical filter; ``indexed_fields`` lists the
    selectors that are not ``"any"`` (``session_ids`` is not indexed).

    >>> compiled = compile_filter({"run_ids": {"include": ["run.a"]}})
    >>> compiled["indexed_fields"], compiled["filter_id"].startswith("filter.")
    (['run_id'], True)
    """
    criteria = canonical_event_filter(event_filter)
    fingerprint = filter_fingerprint(criteria)
    return {
        "filter_id": filter_id(fingerprint),
        "filter_fingerprint": fingerprint,
        "indexed_fields": [field for name, field in _INDEXED if criteria[name] != "any"],
        "payload_access": criteria["payload_access"],
        "queue": dict(criteria["queue"]),
        "criteria": criteria,
    }
