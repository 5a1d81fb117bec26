"""The load's first tier (msgspec's types of the bulk kinds, :mod:`poolscope.wire_types`)
gives exactly what the general path gives, on every payload it takes.

The reference is the same :meth:`PoolIndex.decode` with the first tier turned
off (its second tier reads with orjson and checks by hand, and the careful path
behind it says what serde refuses).  Both read the SDK's own records and
thousands of mutations of the richest of them: every field dropped, set to a
value of every JSON type, repeated, an unknown field added, keys reordered,
the text pretty-printed, nested past serde's limit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import ORACLES, SAMPLE_DB

from poolscope import wire_types
from poolscope.index import PoolIndex

KINDS = ("run_message", "wake")
#: Values every field is set to in turn (one of each JSON type, and the edges of the SDK's types).
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**32,
    2**63,
    2**64,
    "",
    "any",
    "accepted",
    "registered",
    [],
    ["x"],
    [1],
    {},
    {"include": ["x"]},
    {"include": "x"},
    {"type": "run", "run_id": "r"},
    {"a": "b"},
    {"a": 1},
]
DEEP: Any = "x"
for _ in range(130):
    DEEP = [DEEP]


def _payloads(path: Path) -> list[tuple[str, bytes]]:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute(
            "SELECT kind, CAST(payload_json AS BLOB) FROM agent_pool_records "
            "WHERE kind IN ('run_message', 'wake') ORDER BY pool_id, seq"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sdk_payloads(tmp_path_factory) -> list[tuple[str, bytes]]:
    """Every message and wake of the SDK histories, the sample and a generated database."""
    from poolscope.generate import generate

    generated = tmp_path_factory.mktemp("wire_types") / "gen.db"
    generate(generated, pools=2, records=600, seed=5)
    found: list[tuple[str, bytes]] = []
    for path in [*(folder / "pool.db" for folder in ORACLES), SAMPLE_DB, generated]:
        found.extend(_payloads(path))
    return found


def _paths(value: Any, at: tuple = ()) -> Iterator[tuple]:
    """Every path to a member of an object or an item of a list inside ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*at, key)
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*at, i)
            yield from _paths(item, (*at, i))


def _objects(value: Any, at: tuple = ()) -> Iterator[tuple]:
    """The path of every object inside ``value`` (itself included)."""
    if isinstance(value, dict):
        yield at
        for key, item in value.items():
            yield from _objects(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _objects(item, (*at, i))


def _copy_with(value: Any, path: tuple, change: Any) -> Any:
    """A copy of ``value`` with ``change(parent, key)`` applied at ``path``."""
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_copy_with(v, rest, change) if k == head else v) for k, v in value.items()}
    return [(_copy_with(v, rest, change) if i == head else v) for i, v in enumerate(value)]


def _dump(value: Any, repeat: tuple | None = None, at: tuple = ()) -> str:
    """Compact JSON, with the member at path ``repeat`` written twice (serde refuses that)."""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            text = orjson.dumps(key).decode() + ":" + _dump(item, repeat, (*at, key))
            parts.append(text)
            if repeat == (*at, key):
                parts.append(text)
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(item, repeat, (*at, i)) for i, item in enumerate(value)) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # orjson writes no integer past 64 bits
    return orjson.dumps(value).decode()


def mutations(payload: dict) -> Iterator[bytes]:
    """Texts made from one SDK payload, each differing from it in one way."""
    yield orjson.dumps(payload)
    yield orjson.dumps(payload, option=orjson.OPT_INDENT_2)
    for path in _paths(payload):
        parent, key = path[:-1], path[-1]

        def drop(container: Any, key: Any = key) -> Any:
            if isinstance(container, dict):
                return {k: v for k, v in container.items() if k != key}
            return [v for i, v in enumerate(container) if i != key]

        yield _dump(_copy_with(payload, parent, drop)).encode()
        for value in [*VALUES, DEEP]:
            yield _dump(_copy_with(payload, path, lambda _, value=value: value)).encode()
        if isinstance(key, str):
            yield _dump(payload, repeat=path).encode()
    for at in _objects(payload):
        yield _dump(_copy_with(payload, at, lambda obj: {**obj, "unknown_field": "x"})).encode()
        yield _dump(_copy_with(payload, at, lambda obj: dict(reversed(list(obj.items()))))).encode()


def _richest(payloads: list[tuple[str, bytes]], kind: str, count: int = 3) -> list[dict]:
    """The ``count`` payloads of ``kind`` with the most distinct paths (optional fields present)."""
    chosen: dict[frozenset, dict] = {}
    for k, raw in payloads:
        if k == kind:
            value = orjson.loads(raw)
            shape = frozenset(tuple(str(p) for p in path if isinstance(p, str)) for path in _paths(value))
            chosen.setdefault(shape, value)
    return sorted(chosen.values(), key=lambda v: -len(list(_paths(v))))[:count]


class _Off:
    """A decoder that reads nothing: the first tier turned off."""

    @staticmethod
    def decode(_text: Any) -> Any:
        raise wire_types.Refused("first tier off")


def _decode(rows: list[tuple], keep: bool, *, first_tier: bool, monkeypatch: Any) -> tuple[list, dict]:
    with monkeypatch.context() as patched:
        if not first_tier:
            patched.setattr(wire_types, "MESSAGE", _Off)
            patched.setattr(wire_types, "WAKE", _Off)
        index = PoolIndex(Path("t.db"), "p")
        seqs, entries = index.decode(rows, 0, keep=keep)
    problems = {seq: (type(e).__name__, e.code, str(e)) for seq, e in index.problems.items()}
    return list(zip(seqs, entries)), problems


def _taken(rows: list[tuple]) -> int:
    """How many rows the first tier reads and writes back byte for byte."""
    taken = 0
    for _, kind, _, raw in rows:
        decoder = wire_types.MESSAGE if kind == "run_message" else wire_types.WAKE
        try:
            taken += wire_types.encode(decoder.decode(raw)) == raw
        except wire_types.Refused:
            pass
    return taken


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "scan"])
def test_first_tier_equals_the_general_path_on_the_sdk_records(sdk_payloads, keep, monkeypatch):
    rows = [(seq, kind, "text", raw) for seq, (kind, raw) in enumerate(sdk_payloads, start=1)]
    assert _taken(rows) == len(rows) > 500  # the SDK's own records all take the first tier
    assert _decode(rows, keep, first_tier=True, monkeypatch=monkeypatch) == _decode(
        rows, keep, first_tier=False, monkeypatch=monkeypatch
    )


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "scan"])
@pytest.mark.parametrize("kind", KINDS)
def test_first_tier_equals_the_general_path_on_mutated_records(sdk_payloads, kind, keep, monkeypatch):
    texts: list[bytes] = []
    for payload in _richest(sdk_payloads, kind):
        texts.extend(mutations(payload))
    texts = list(dict.fromkeys(texts))
    for as_text in (False, True):  # payloads as SQLite hands over TEXT (str) and as bytes
        rows = [(seq, kind, "text", raw.decode() if as_text else raw) for seq, raw in enumerate(texts, start=1)]
        taken = _taken([(s, k, t, raw) for (s, k, t, _), raw in zip(rows, texts)])
        new = _decode(rows, keep, first_tier=True, monkeypatch=monkeypatch)
        reference = _decode(rows, keep, first_tier=False, monkeypatch=monkeypatch)
        assert new[1] == reference[1]  # the same records damaged, for the same reason
        assert new[0] == reference[0]
        # both tiers had work: the first took many of the texts, the general path refused many
        assert 50 < taken < len(texts) - 50
        assert len(reference[1]) > 200


def test_the_types_follow_the_schema():
    """Field order, names and omissions come from wire's schema, not a second list."""
    from poolscope import wire

    message = wire_types.struct_of(wire.RUN_MESSAGE)
    assert message.__struct_encode_fields__ == tuple(name for name, _, _ in wire.RUN_MESSAGE.fields)
    condition = wire_types.struct_of(wire.WAKE_CONDITION)
    assert condition.__struct_encode_fields__ == tuple(name for name, _, _ in wire.WAKE_CONDITION.fields)
    # Option fields are omitted when None, Vec fields when empty, as serde writes them
    minimal = {
        "message_id": "m",
        "from": "r",
        "to": {
            "target": {"type": "agent", "agent_id": "a"},
            "destination_ref": {"kind": "agent", "id": "a", "privacy": "content_refs_only", "retention": "host_policy"},
        },
        "content_ref": "c",
        "correlation": {},
        "idempotency_key": "i",
    }
    decoded = wire_types.msgspec.json.decode(orjson.dumps(minimal), type=message)
    assert decoded.reply_to is None and decoded.policy_refs == []
    assert wire_types.encode(decoded) == orjson.dumps(minimal)


@pytest.mark.parametrize("kind", KINDS)
def test_both_fast_tiers_agree_with_the_careful_path(sdk_payloads, kind, monkeypatch):
    """The careful path (decode_row + extract, one record at a time) is the specification:
    on every mutated text, each fast tier takes a record exactly when the careful path
    does, and makes the same entry."""
    texts: list[bytes] = []
    for payload in _richest(sdk_payloads, kind):
        texts.extend(mutations(payload))
    rows = [(seq, kind, "text", raw) for seq, raw in enumerate(dict.fromkeys(texts), start=1)]
    careful_index = PoolIndex(Path("t.db"), "p")
    careful = [(seq, careful_index._slow_entry(seq, k, t, raw)) for seq, k, t, raw in rows]
    careful_problems = {seq: (type(e).__name__, e.code, str(e)) for seq, e in careful_index.problems.items()}
    for first_tier in (True, False):
        assert _decode(rows, True, first_tier=first_tier, monkeypatch=monkeypatch) == (careful, careful_problems)


def test_the_first_tier_gives_up_on_a_log_it_never_reads(sdk_payloads, monkeypatch):
    """A log whose messages all carry a field these types do not know (a newer SDK, say)
    is read by the general path; after TYPED_TRIAL refusals without a record taken, the
    first tier is not tried again for that index, and the entries are the same."""
    from poolscope import index as index_module

    message = next(orjson.loads(raw) for kind, raw in sdk_payloads if kind == "run_message")
    message["stored"]["message"]["newer_field"] = "x"
    rows = [(seq, "run_message", "text", orjson.dumps(message)) for seq in range(1, 5001)]
    reference = PoolIndex(Path("t.db"), "p")
    with monkeypatch.context() as patched:
        patched.setattr(wire_types, "MESSAGE", _Off)
        expected = reference.decode(rows, 0)
    tries = []
    real = wire_types.MESSAGE

    class Counting:
        @staticmethod
        def decode(text: Any) -> Any:
            tries.append(1)
            return real.decode(text)

    monkeypatch.setattr(index_module, "TYPED_TRIAL", 2048)
    monkeypatch.setattr(wire_types, "MESSAGE", Counting)
    index = PoolIndex(Path("t.db"), "p")
    got: tuple[list, list] = ([], [])
    for start in range(0, len(rows), 1000):  # batches, as a load decodes them
        seqs, entries = index.decode(rows[start : start + 1000], got[0][-1] if got[0] else 0)
        got[0].extend(seqs)
        got[1].extend(entries)
    monkeypatch.setattr(wire_types, "MESSAGE", real)
    assert got == expected and not index.problems
    assert len(tries) == 3000  # tried in the batches that began below TYPED_TRIAL, then no more
    # an ordinary log keeps the first tier on, however long
    sdk = [(seq, kind, "text", raw) for seq, (kind, raw) in enumerate(sdk_payloads, start=1)]
    ordinary = PoolIndex(Path("t.db"), "p")
    ordinary.decode(sdk, 0)
    assert ordinary._typed[0] == ordinary._typed[1] == len(sdk)


class _Counting:
    """A decoder that counts the texts it reads."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def decode(self, text: Any) -> Any:
        self.calls += 1
        return self.real.decode(text)


@pytest.mark.parametrize("verify", [False, True], ids=["plain", "verify_filters"])
def test_a_wake_repeating_an_earlier_one_is_read_from_its_registration(sdk_payloads, verify, monkeypatch):
    """A wake's later records repeat its first record's bytes up to the registration;
    the first tier then reads only the registration.  The entries, the damaged
    records and the wakes whose filter doctor need not read again are the same as
    when every wake is read whole -- on the SDK's records, and on mutations of the
    richest wakes, most of which keep the first part and change the registration
    (the first text of the mutations is the wake itself, so each one repeats it)."""
    texts: list[bytes] = []
    for payload in _richest(sdk_payloads, "wake"):
        texts.extend(mutations(payload))
    sdk = [(kind, raw) for kind, raw in sdk_payloads]
    cases = {"sdk": sdk, "mutated": [("wake", raw) for raw in dict.fromkeys(texts)]}
    for name, payloads in cases.items():
        rows = [(seq, kind, "text", raw) for seq, (kind, raw) in enumerate(payloads, start=1)]
        results = []
        for repeats in (True, False):
            with monkeypatch.context() as patched:
                counting = _Counting(wire_types.REGISTRATION)
                patched.setattr(wire_types, "REGISTRATION", counting)
                if not repeats:  # no wake begins so: each is read whole
                    patched.setattr(wire_types, "WAKE_HEAD", b"\0")
                index = PoolIndex(Path("t.db"), "p")
                if verify:
                    index.verify_filters()
                seqs, entries = index.decode(rows, 0)
            problems = {seq: (type(e).__name__, e.code, str(e)) for seq, e in index.problems.items()}
            results.append((seqs, entries, problems, index.verified_filters))
            if repeats:
                wakes = sum(kind == "wake" for kind, _ in payloads)
                assert counting.calls > (wakes // 3 if name == "sdk" else 100), name  # the registration read alone
            else:
                assert counting.calls == 0
        assert results[0] == results[1], name
        if verify and name == "sdk":  # every SDK wake's filter checked while it was read
            assert len(results[0][3]) == sum(kind == "wake" for kind, _ in sdk)


def test_the_wakes_remembered_while_loading_are_not_kept_with_the_index():
    """The wakes the first tier remembers (about 2 KB each) serve one load; an
    index kept for hours holds none of them."""
    from poolscope.source import connect_readonly

    conn = connect_readonly(SAMPLE_DB)
    try:
        rows = conn.execute(
            "SELECT seq, kind, typeof(payload_json), CAST(payload_json AS BLOB) FROM agent_pool_records "
            "WHERE pool_id = 'pool.alpha' ORDER BY seq"
        ).fetchall()
        decoding = PoolIndex(Path(SAMPLE_DB), "pool.alpha")
        decoding.decode(rows, 0)
        assert decoding._repeats  # remembered while decoding
        loaded = PoolIndex(Path(SAMPLE_DB), "pool.alpha")
        assert loaded.load(conn, progress=False) == len(rows)
        assert not loaded._repeats
    finally:
        conn.close()
