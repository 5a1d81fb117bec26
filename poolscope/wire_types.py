"""The two bulk record kinds as msgspec types, made from :mod:`poolscope.wire`'s schema.

Nearly every record of a large log is a ``run_message`` or a ``wake``.  A load
reads them first with these types (:data:`MESSAGE`, :data:`WAKE`): msgspec
checks, while it parses, every type serde checks -- required fields, strings,
``u64`` and ``u32`` counts, statuses, booleans, filter sets -- and makes no
dict for an object.  Writing a decoded record back (:data:`encode`) gives
exactly serde's bytes, so a record whose stored text equals that has no
repeated key, no unknown field, nothing serde would write differently; and
since every part is typed (the SDK's refs too: a reordered ref, a ``null``
option or an empty ``correlation`` is not serde's bytes) it cannot nest past
serde's limit.

These types only ever *accept* less than the general path
(:meth:`poolscope.index.PoolIndex.decode`'s second tier and
:func:`poolscope.fold.extract`): anything they refuse, or whose bytes differ
from theirs, is read there, which says what serde refuses.  They are never
used to write.

Example::

    >>> record = MESSAGE.decode(
    ...     b'{"type":"run_message","stored":{"message":{"message_id":"m","from":"r",'
    ...     b'"to":{"target":{"type":"run","run_id":"s"},"destination_ref":{"kind":"agent","id":"s","privacy":"internal",'
    ...     b'"retention":"host_policy"}},'
    ...     b'"content_ref":"c","correlation":{},"idempotency_key":"i"},'
    ...     b'"receipt":{"message_id":"m","status":"accepted"}}}')
    >>> record.stored.message.to.target.run_id, record.stored.receipt.status
    ('s', 'accepted')
    >>> encode(record).endswith(b'"receipt":{"message_id":"m","status":"accepted"}}}')
    True
"""

from __future__ import annotations

import functools
import keyword
import operator
import re
from typing import Annotated, Any, Literal

import msgspec

from . import wire

#: A ``u64``, read here only up to 2**63 - 1 (msgspec bounds no integer past an int64): a larger one
#: takes the general path, which reads the full range.
U64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
U32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
#: A ``NonZeroUsize`` (a filter queue's counts: serde refuses 0), read here only up to 2**63 - 1.
NONZERO = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
#: Options of every struct: serde's omissions (``omit_defaults``), no unknown
#: field, no dict per instance, not tracked by the garbage collector (no cycles).
_OPTIONS: dict[str, Any] = {"kw_only": True, "omit_defaults": True, "forbid_unknown_fields": True, "gc": False}


def _struct(name: str, fields: list[tuple], **options: Any) -> Any:
    return msgspec.defstruct(name, fields, module=__name__, **_OPTIONS, **options)


#: One of the SDK's identifiers, as this tier reads it: not empty, and at most 128 characters (so at
#: most :data:`wire.MAX_ID_BYTES` UTF-8 bytes, whatever the characters); a longer one takes the general
#: path, which counts its bytes.  Control characters are looked for in the record's bytes before it
#: is read here (:func:`may_hold_control`).
ID = Annotated[str, msgspec.Meta(min_length=1, max_length=wire.MAX_ID_BYTES // 4)]

#: ``RunAddress.target``: the SDK's ``RunTarget`` enum, tagged by ``type``.
TARGETS = tuple(
    _struct(f"{kind.title()}Target", [(field, ID)], tag_field="type", tag=kind)
    for kind, field in wire.TARGET_ID_FIELD.items()
)
Target = functools.reduce(operator.or_, TARGETS)
_INCLUDE = _struct("Include", [("include", list[str])])
_INCLUDE_IDS = _struct("IncludeIds", [("include", list[ID])])
#: A filter set: ``"any"`` or ``{"include": [...]}``.
FilterSet = Literal["any"] | _INCLUDE
IdFilterSet = Literal["any"] | _INCLUDE_IDS

#: Where serde's bytes of a control character begin: an escape (``\n``, ``\u0001``; a false alarm on
#: ``\\n`` only sends the record the general way), DEL, or a C1 character (U+0080..U+009F in UTF-8).
CONTROL_BYTES = re.compile(rb"\\[btnfru]|\x7f|\xc2[\x80-\x9f]")


def control_suspect(raw: bytes) -> bool:
    r"""Whether ``raw`` holds a byte where serde's bytes of a control character
    could begin: a backslash, DEL, or (in text that is not ASCII) 0xC2.  Three
    byte searches, no pattern: asked of a whole batch first.

    >>> control_suspect(b'{"run_id":"r.1"}'), control_suspect(b'{"note":"a \\"quote\\""}')
    (False, True)
    """
    return b"\\" in raw or b"\x7f" in raw or not raw.isascii() and b"\xc2" in raw


def may_hold_control(raw: bytes) -> bool:
    r"""Whether serde's bytes ``raw`` may hold a control character anywhere (then
    the general path, which checks each identifier, reads the record).

    >>> may_hold_control(b'{"run_id":"r.1"}'), may_hold_control(b'{"run_id":"r\\n1"}')
    (False, True)
    >>> may_hold_control(b'{"note":"a \\"quote\\""}')
    False
    """
    return control_suspect(raw) and CONTROL_BYTES.search(raw) is not None


_made: dict[str, Any] = {}


def attribute(name: str) -> str:
    """The attribute a field of the schema has on these types (``from`` -> ``from_``)."""
    return name + "_" if keyword.iskeyword(name) else name


def _type_of(typ: Any, where: str) -> Any:
    if isinstance(typ, wire._Struct):
        return struct_of(typ)
    if typ is str or typ is bool:
        return typ
    if typ is int:
        return U64
    if typ is wire._u32:
        return U32
    if typ is wire._nonzero_usize:
        return NONZERO
    if typ is wire._filter_set:
        return FilterSet
    if typ is wire._id_filter_set:
        return IdFilterSet
    if typ is wire._id:
        return ID
    if typ is wire._run_target:
        return Target
    options = getattr(typ, "options", None)
    if options is not None:
        return Literal[options]
    item = getattr(typ, "item", None)
    if item is not None:
        return list[_type_of(item, where)]  # type: ignore[misc]
    raise TypeError(f"no msgspec type for {where}")  # pragma: no cover - a schema this module does not know


def struct_of(schema: Any) -> Any:
    """The msgspec struct of one of :mod:`wire`'s structs (made once): its fields
    in declaration order, required ones required (serde's defaults are for what
    a user writes, not for what the SDK stored), ``Option`` fields None and
    ``Vec`` fields empty by default and then omitted when written."""
    if schema.name not in _made:
        fields: list[tuple] = []
        for name, typ, rule in schema.fields:
            kind = _type_of(typ, f"{schema.name}.{name}")
            spec: tuple
            if rule == wire.SKIP_NONE:
                spec = (kind | None, msgspec.field(default=None, name=name))
            elif rule == wire.SKIP_EMPTY:
                spec = (kind, msgspec.field(default_factory=list, name=name))
            else:
                spec = (kind, msgspec.field(name=name))
            fields.append((attribute(name), *spec))
        _made[schema.name] = _struct(schema.name, fields)
    return _made[schema.name]


_STORED_MESSAGE = _struct(
    "StoredRunMessage", [("message", struct_of(wire.RUN_MESSAGE)), ("receipt", struct_of(wire.RECEIPT))]
)
_STORED_WAKE = _struct(
    "StoredWake",
    [
        ("condition", struct_of(wire.WAKE_CONDITION)),
        ("compiled_filter", struct_of(wire.COMPILED_FILTER)),
        ("registration", struct_of(wire.REGISTRATION)),
    ],
)
#: A ``run_message`` record: ``{"type":"run_message","stored":{"message":..,"receipt":..}}``.
MessageRecord = _struct("RunMessageRecord", [("stored", _STORED_MESSAGE)], tag_field="type", tag="run_message")
#: A ``wake`` record: ``{"type":"wake","stored":{"condition":..,"compiled_filter":..,"registration":..}}``.
WakeRecord = _struct("WakeRecord", [("stored", _STORED_WAKE)], tag_field="type", tag="wake")

MESSAGE = msgspec.json.Decoder(MessageRecord)
WAKE = msgspec.json.Decoder(WakeRecord)
#: serde's bytes of a decoded record.
encode = msgspec.json.Encoder().encode

#: How serde's bytes of a wake begin, up to the text of its condition id.
WAKE_HEAD = b'{"type":"wake","stored":{"condition":{"condition_id":"'
#: A wake's last part, read alone: a wake's later records (triggered, timed
#: out, ...) repeat its first record's bytes up to ``,"registration":`` (see
#: :meth:`poolscope.index.PoolIndex.decode`).  No other part of a wake holds an
#: object with that key, and a string cannot hold it (its quotes would be
#: escaped), so in serde's bytes its last occurrence is where the registration
#: begins.
#:
#: >>> text = b'{"condition_id":"w","run_id":"r","status":"triggered"}'
#: >>> registration = REGISTRATION.decode(text)
#: >>> registration.status, encode(registration) == text
#: ('triggered', True)
REGISTRATION_KEY = b',"registration":'
REGISTRATION = msgspec.json.Decoder(struct_of(wire.REGISTRATION))
#: What a decoder raises for a text these types do not read.
Refused = msgspec.DecodeError


def _reader(name: str, fields: list[tuple]) -> Any:
    """A struct that reads only ``fields`` of an object and skips the rest unread."""
    return msgspec.defstruct(name, fields, module=__name__, gc=False)


_WakeFilterPart = _reader(
    "WakeFilterPart",
    [("filter_fingerprint", Any), ("filter_id", Any), ("criteria", msgspec.Raw)],
)
_WakeFilterStored = _reader("WakeFilterStored", [("compiled_filter", _WakeFilterPart)])
#: What ``doctor`` reads of a wake again: its compiled filter's fingerprint and
#: id, and its criteria's text (``msgspec.Raw``: bytes, not parsed); every other
#: part is skipped without making objects.
#:
#: >>> part = WAKE_FILTER.decode(b'{"stored":{"compiled_filter":{"filter_id":"f",'
#: ...     b'"filter_fingerprint":"sha256:x","criteria":{"run_ids":"any"}}}}').stored.compiled_filter
#: >>> part.filter_id, bytes(part.criteria)
#: ('f', b'{"run_ids":"any"}')
WAKE_FILTER = msgspec.json.Decoder(_reader("WakeFilterRecord", [("stored", _WakeFilterStored)]))


_TYPED = {"run_message": MESSAGE.decode, "wake": WAKE.decode}


def as_sdk_writes(kind: str, payload: Any, raw: bytes) -> Any:
    """``payload``, read from ``raw`` (a record of ``kind`` the fold reads), as
    the SDK writes it back (its snapshot, the records its ``watch`` returns):
    itself when ``raw`` is serde's own bytes, else rebuilt by
    :func:`wire.canonical_payload` (keys in serde's order, unknown fields,
    ``null`` options and empty lists left out).

    >>> as_sdk_writes("member_left", {"member": {"agent_id": "a", "run_id": "r"}, "type": "member_left"}, b"")
    {'type': 'member_left', 'member': {'run_id': 'r', 'agent_id': 'a'}}
    """
    return payload if serde_bytes(kind, raw) else wire.canonical_payload(kind, payload)


def serde_bytes(kind: str, raw: bytes) -> bool:
    """True when ``raw``, the stored text of a ``kind`` record, is serde's own
    bytes for what it holds, as these types read and write it (every bulk
    record the SDK wrote); False for any other kind, whose few records are
    written back by :func:`wire.canonical_payload`.

    >>> serde_bytes("wake", b'{"type":"wake"}'), serde_bytes("member_left", b'{}')
    (False, False)
    """
    reader = _TYPED.get(kind)
    if reader is None:
        return False
    try:
        return encode(reader(raw)) == raw
    except Refused:
        return False
