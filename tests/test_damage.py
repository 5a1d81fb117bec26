"""A catalogue of damaged databases: every public read call answers or raises a
typed :class:`poolscope.PoolscopeError` naming the file (and pool and seq), the
records around the damage stay readable, ``doctor`` names the damage, and
nothing on disk changes.

Each case is one :class:`Case` in :data:`CASES`: a base database (a generated
one, the SDK oracle's, or none), a ``damage`` function that changes the copy in
place and records where it put the damage, and what to expect.  To add a case,
write a damage function and append one ``Case(...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import tree_state
from reference import reference_snapshot

import poolscope
from poolscope import load as load_module
from poolscope import wire
from poolscope.check import CODES
from poolscope.cli import cli

#: A call that takes longer than this has hung (the lock cases use a 0.5 s timeout).
HANG = 30.0
TIMEOUT = 0.5
RECORD_CODES = {
    "bad_json",
    "invalid_utf8",
    "blob_payload",
    "null_payload",
    "bad_shape",
    "unknown_kind",
    "unknown_status",
    "duplicate_key",
    "too_deep",
}


# ------------------------------------------------------------------ the table
@dataclass
class Built:
    """A damaged file, and where its damage is (filled in by a damage function)."""

    path: Path
    pool_id: str | None = None
    seq: int | None = None
    #: seq the located anomaly is reported at (default: ``seq``)
    anomaly_seq: int | None = None
    #: the base's rows before the damage: pool -> seq -> payload text
    original: dict[str, dict[int, str]] = field(default_factory=dict)
    #: the rows after the damage (those that are still text)
    current: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    #: "generated" (a copy of the ``small_db`` fixture), "oracle" (the SDK's pool.db) or "none"
    base: str
    damage: Callable[[Built], None]
    #: exception class ``poolscope.open`` raises (None: it opens)
    opens: type | None = None
    #: exactly the anomaly codes ``check``/``doctor`` report
    codes: frozenset = frozenset()
    #: the code that must be reported at (pool_id, anomaly_seq)
    at: str | None = None
    #: what ``snapshot(seq, strict=True)`` raises at the damage (None: answers)
    strict: type | None = None
    #: a context manager (given the path) held while reading: another process's lock
    hold: Callable[[Path], Any] | None = None
    #: hold the lock only after the database was opened and loaded
    hold_after_open: bool = False
    #: change the file after it was opened and loaded (replace, delete)
    after_open: Callable[[Built], None] | None = None


# ------------------------------------------------------------- damage helpers
def rows_of(path: Path) -> dict[str, dict[int, str]]:
    """pool -> seq -> payload text, read with plain sqlite3 (rows that are not text are left out)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        out: dict[str, dict[int, str]] = {}
        for pool_raw, seq, raw in conn.execute(
            "SELECT CAST(pool_id AS BLOB), seq, CAST(payload_json AS BLOB) FROM agent_pool_records "
            "WHERE typeof(payload_json) = 'text' AND typeof(seq) = 'integer' AND typeof(pool_id) = 'text' "
            "ORDER BY pool_id, seq"
        ):
            try:
                pool_id = pool_raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # no pool's id (the SDK reads ids as UTF-8 strings)
            out.setdefault(pool_id, {}).setdefault(seq, raw.decode("utf-8", "replace"))
        return out
    finally:
        conn.close()


def execute(path: Path, *statements: tuple) -> None:
    """Run SQL on the file with a plain read-write connection (WAL checkpointed on close)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(*statement)
    finally:
        conn.close()


def target(built: Built, kind: str | None = None, status: str | None = None, pool: int = 1) -> tuple[str, int, dict]:
    """A record of ``kind`` (and status) in the second half of the ``pool``-th pool; sets built.pool_id/seq."""
    pool_id = sorted(built.original)[pool % len(built.original)]
    rows = built.original[pool_id]
    head = max(rows)
    for seq in sorted(rows):
        payload = json.loads(rows[seq])
        if seq < head // 2 or (kind and payload["type"] != kind):
            continue
        if status and kind == "run_message" and payload["stored"]["receipt"]["status"] != status:
            continue
        if status and kind == "wake" and payload["stored"]["registration"]["status"] != status:
            continue
        built.pool_id, built.seq = pool_id, seq
        return pool_id, seq, payload
    raise AssertionError(f"no {kind} {status} record in {pool_id}")


def set_payload(built: Built, value: Any, kind: str | None = None) -> None:
    sql = (
        "UPDATE agent_pool_records SET payload_json = ?"
        + (", kind = ?" if kind else "")
        + " WHERE pool_id = ? AND seq = ?"
    )
    params = (value, kind) if kind else (value,)
    execute(built.path, (sql, (*params, built.pool_id, built.seq)))


def append(built: Built, pool_id: str, kind: str, payload: dict) -> None:
    seq = max(built.original[pool_id]) + 1
    execute(
        built.path, ("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (pool_id, seq, kind, wire.dumps(payload)))
    )
    built.pool_id, built.seq = pool_id, seq


def rebuild_without_constraints(built: Built) -> None:
    """Recreate agent_pool_records with no NOT NULL and no primary key (as a damaged copy might be)."""
    execute(
        built.path,
        ("CREATE TABLE loose (pool_id, seq, kind, payload_json)",),
        ("INSERT INTO loose SELECT * FROM agent_pool_records ORDER BY pool_id, seq",),
        ("DROP TABLE agent_pool_records",),
        ("ALTER TABLE loose RENAME TO agent_pool_records",),
    )


def stored_message(message_id: str, status: str, sender: str = "run.ghost.sender") -> dict:
    message = wire.canonical_message(
        {
            "message_id": message_id,
            "from": sender,
            "to": {
                "target": {"type": "run", "run_id": "run.ghost"},
                "destination_ref": {
                    "kind": "agent",
                    "id": "run.ghost",
                    "privacy": "content_refs_only",
                    "retention": "host_policy",
                },
            },
            "content_ref": "content.ghost",
            "idempotency_key": f"idem.{message_id}",
        }
    )
    return {
        "type": "run_message",
        "stored": {"message": message, "receipt": wire.canonical_receipt({"message_id": message_id, "status": status})},
    }


# ------------------------------------------------------------ damage functions
def missing_path(built: Built) -> None:
    built.path = built.path.parent / "does-not-exist.db"


def folder(built: Built) -> None:
    built.path = built.path.parent / "a-folder.db"
    built.path.mkdir()


def not_sqlite(built: Built) -> None:
    built.path.write_text("pool_id,seq,kind\npool.a,1,pool_opened\n" * 50)


def empty_file(built: Built) -> None:
    built.path.write_bytes(b"")


def truncated(built: Built) -> None:
    size = built.path.stat().st_size
    os.truncate(built.path, size // 2)


def truncated_header(built: Built) -> None:
    os.truncate(built.path, 40)


def garbage_pages(built: Built) -> None:
    """Overwrite the second half of the file (table and index pages) with garbage."""
    size = built.path.stat().st_size
    with open(built.path, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(bytes(range(256)) * ((size - size // 2) // 256))


def garbage_table_page(built: Built) -> None:
    """Overwrite one leaf page of the records table (the key index stays intact, so the file opens)."""
    conn = sqlite3.connect(f"file:{built.path}?immutable=1", uri=True)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'agent_pool_records' AND pagetype = 'leaf' ORDER BY pageno"
            )
        ]
    finally:
        conn.close()
    with open(built.path, "r+b") as handle:
        handle.seek((leaves[len(leaves) // 2] - 1) * page_size)
        handle.write(b"\xff" * page_size)


def no_records_table(built: Built) -> None:
    execute(built.path, ("DROP TABLE agent_pool_records",))


def wrong_columns(built: Built) -> None:
    execute(
        built.path,
        ("DROP TABLE agent_pool_records",),
        ("CREATE TABLE agent_pool_records (pool TEXT, position INTEGER, type TEXT, body TEXT)",),
        ("INSERT INTO agent_pool_records VALUES ('pool.a', 1, 'pool_opened', '{}')",),
    )


# Record damage hits records whose loss has no knock-on effect (a message's
# "delivered" follows its "accepted"; a member_left), so each case has one anomaly.
def not_json(built: Built) -> None:
    target(built, "member_left")
    set_payload(built, '{"type":"member_left","member":{"run_id":')


def wrong_shape(built: Built) -> None:
    _, _, payload = target(built, "run_message", "delivered")
    del payload["stored"]["receipt"]["status"]
    set_payload(built, wire.dumps(payload))


def unknown_kind(built: Built) -> None:
    target(built, "run_message", "delivered")
    set_payload(built, '{"type":"pool_archived","reason":"newer SDK"}', kind="pool_archived")


def unknown_status(built: Built) -> None:
    _, _, payload = target(built, "run_message", "delivered")
    payload["stored"]["receipt"]["status"] = "bounced"
    set_payload(built, wire.dumps(payload))


def blob_payload(built: Built) -> None:
    pool_id, seq, _ = target(built, "run_message", "delivered")
    set_payload(built, built.original[pool_id][seq].encode("utf-8"))


def invalid_utf8(built: Built) -> None:
    target(built, "run_message", "delivered")
    execute(
        built.path,
        (
            "UPDATE agent_pool_records SET payload_json = CAST(X'7B2274797065223A2272756E5F6D657373616765FF227D' AS TEXT) "
            "WHERE pool_id = ? AND seq = ?",
            (built.pool_id, built.seq),
        ),
    )


def null_payload(built: Built) -> None:
    rebuild_without_constraints(built)
    target(built, "wake", "triggered")
    set_payload(built, None)


def huge_payload(built: Built) -> None:
    """A well-formed message with 20 MB of text in its destination ref's redacted summary (a plain
    String in the SDK: an identifier, such as content_ref, is at most 512 bytes): slow, but not damage."""
    _, _, payload = target(built, "run_message", "accepted")
    payload["stored"]["message"]["to"]["destination_ref"]["redacted_summary"] = "x" * (20 * 1024 * 1024)
    set_payload(built, wire.dumps(payload))
    built.original[built.pool_id][built.seq] = wire.dumps(payload)


def seq_gap(built: Built) -> None:
    pool_id, seq, _ = target(built, "run_message", "delivered")
    execute(built.path, ("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq)))
    del built.original[pool_id][seq]
    built.anomaly_seq = seq + 1


def duplicate_seq(built: Built) -> None:
    rebuild_without_constraints(built)
    pool_id, seq, _ = target(built, "member_joined")
    execute(
        built.path,
        ("INSERT INTO agent_pool_records VALUES (?, ?, 'pool_created', '{\"type\":\"pool_created\"}')", (pool_id, seq)),
    )


def config_conflict(built: Built) -> None:
    pool_id = sorted(built.original)[1]
    config = {"message_policy": {"include_sender_in_pool_broadcast": True}, "wake_policy": {"envelope_only": False}}
    first = json.loads(built.original[pool_id][1])["config"]
    assert wire.canonical_config(config) != first
    append(built, pool_id, "pool_opened", {"type": "pool_opened", "config": wire.canonical_config(config)})


def repeated_open(built: Built) -> None:
    pool_id = sorted(built.original)[0]
    append(built, pool_id, "pool_opened", json.loads(built.original[pool_id][1]))


def pool_not_opened(built: Built) -> None:
    pool_id = sorted(built.original)[2]
    execute(built.path, ("DELETE FROM agent_pool_records WHERE pool_id = ? AND kind = 'pool_opened'", (pool_id,)))
    del built.original[pool_id][1]
    built.pool_id, built.seq, built.anomaly_seq = pool_id, 1, 2


def record_before_open(built: Built) -> None:
    """A new pool whose pool_created comes before its pool_opened."""
    pool_id = "pool.early"
    execute(
        built.path,
        ("INSERT INTO agent_pool_records VALUES (?, 1, 'pool_created', '{\"type\":\"pool_created\"}')", (pool_id,)),
        (
            "INSERT INTO agent_pool_records VALUES (?, 2, 'pool_opened', ?)",
            (pool_id, wire.dumps({"type": "pool_opened", "config": wire.canonical_config({})})),
        ),
    )
    built.original[pool_id] = {
        1: '{"type":"pool_created"}',
        2: wire.dumps({"type": "pool_opened", "config": wire.canonical_config({})}),
    }
    built.pool_id, built.seq = pool_id, 1


def leave_non_member(built: Built) -> None:
    pool_id = sorted(built.original)[0]
    append(
        built,
        pool_id,
        "member_left",
        {"type": "member_left", "member": {"run_id": "run.ghost", "agent_id": "agent.ghost"}},
    )


def message_never_sent(built: Built) -> None:
    pool_id = sorted(built.original)[1]
    append(built, pool_id, "run_message", stored_message("msg.ghost", "responded"))


def delivered_without_accepted(built: Built) -> None:
    pool_id = sorted(built.original)[1]
    append(built, pool_id, "run_message", stored_message("msg.ghost", "delivered"))


def wake_never_registered(built: Built) -> None:
    _, _, payload = target(built, "wake", "registered", pool=2)
    stored = payload["stored"]
    stored["condition"]["condition_id"] = stored["registration"]["condition_id"] = "wake.ghost"
    stored["registration"]["status"] = "triggered"
    append(built, built.pool_id, "wake", payload)


def wake_filter_mismatch(built: Built) -> None:
    _, _, payload = target(built, "wake", "registered")
    criteria = payload["stored"]["compiled_filter"]["criteria"]
    criteria["tags"] = {"include": ["tampered"]}
    set_payload(built, wire.dumps(payload))


def wake_filter_item_not_text(built: Built) -> None:
    """A number among a wake's filter-set items (serde wants strings): read alike decoded straight
    from the file (no filter kept) and into the index (filters kept).  The latest such wake record
    is the last of its condition (a condition's records repeat its filter): nothing after it relies on it."""
    for pool_id in sorted(built.original):
        for seq, text in sorted(built.original[pool_id].items(), reverse=True):
            payload = json.loads(text)
            if payload["type"] != "wake":
                continue
            criteria = payload["stored"]["compiled_filter"]["criteria"]
            name = next((n for n, v in criteria.items() if isinstance(v, dict) and v.get("include")), None)
            if name is not None:
                criteria[name]["include"][0] = 7
                built.pool_id, built.seq = pool_id, seq
                set_payload(built, wire.dumps(payload))
                return
    raise AssertionError("no wake with an include set")


def no_event_seq_table(built: Built) -> None:
    execute(built.path, ("DROP TABLE agent_pool_event_seq",))


def junk_event_seq(built: Built) -> None:
    pools = sorted(built.original)
    execute(
        built.path,
        ("UPDATE agent_pool_event_seq SET seq = 'twelve' WHERE pool_id = ?", (pools[0],)),
        ("UPDATE agent_pool_event_seq SET seq = -1 WHERE pool_id = ?", (pools[1],)),
        ("INSERT INTO agent_pool_event_seq VALUES (X'706f6f6c', 3)",),
    )


def event_seq_without_key(built: Built) -> None:
    pool_id = sorted(built.original)[0]
    execute(
        built.path,
        ("CREATE TABLE loose (pool_id, seq)",),
        ("INSERT INTO loose SELECT * FROM agent_pool_event_seq",),
        ("INSERT INTO loose VALUES (?, 7)", (pool_id,)),
        ("DROP TABLE agent_pool_event_seq",),
        ("ALTER TABLE loose RENAME TO agent_pool_event_seq",),
    )


def event_seq_without_columns(built: Built) -> None:
    execute(
        built.path,
        ("DROP TABLE agent_pool_event_seq",),
        ("CREATE TABLE agent_pool_event_seq (pool TEXT, next INTEGER)",),
    )


def null_kind(built: Built) -> None:
    rebuild_without_constraints(built)
    target(built, "member_left")
    execute(
        built.path,
        ("UPDATE agent_pool_records SET kind = NULL WHERE pool_id = ? AND seq = ?", (built.pool_id, built.seq)),
    )


def text_seq(built: Built) -> None:
    rebuild_without_constraints(built)
    pool_id = sorted(built.original)[0]
    execute(
        built.path,
        (
            "INSERT INTO agent_pool_records VALUES (?, 'eleventh', 'pool_created', '{\"type\":\"pool_created\"}')",
            (pool_id,),
        ),
        ("INSERT INTO agent_pool_records VALUES (NULL, 3, 'pool_created', '{\"type\":\"pool_created\"}')",),
    )


def undecodable_pool_ids(built: Built) -> None:
    """Rows whose pool_id is TEXT that is not UTF-8, and a BLOB with a real pool's bytes."""
    pool_id = sorted(built.original)[0]
    first = built.original[pool_id][1]
    execute(
        built.path,
        ("INSERT INTO agent_pool_records VALUES (CAST(X'70FF' AS TEXT), 1, 'pool_created', ?)", (first,)),
        ("INSERT INTO agent_pool_records VALUES (CAST(X'70FF' AS TEXT), 2, 'pool_created', ?)", (first,)),
        ("INSERT INTO agent_pool_records VALUES (CAST(? AS BLOB), 999999, 'pool_created', ?)", (pool_id, first)),
    )


# Values of the wrong type or range (issue 10, item 4): the SDK's serde would not read them,
# so each is one damaged record (bad_shape) and never reaches the fold.
def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def set_field(
    kind: str, status: str | None, path: tuple, value: Any, raw: str | None = None
) -> Callable[[Built], None]:
    """Set ``payload[path...] = value`` in a record of ``kind`` (``raw``: JSON text put in its place)."""

    def damage(built: Built) -> None:
        _, _, payload = target(built, kind, status)
        holder = payload
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = "@@RAW@@" if raw is not None else value
        # json, not orjson: orjson refuses to write more than 255 levels
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        set_payload(built, text.replace('"@@RAW@@"', raw) if raw is not None else text)

    damage.__name__ = f"{kind}_{'_'.join(map(str, path))}"
    return damage


def set_fields(kind: str, status: str | None, paths: list[tuple], value: Any) -> Callable[[Built], None]:
    """Set ``payload[path...] = value`` for each of ``paths`` in a record of ``kind`` (written as
    serde does: control characters below U+0020 escaped, DEL and C1 characters as they are)."""

    def damage(built: Built) -> None:
        _, _, payload = target(built, kind, status)
        for path in paths:
            holder = payload
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = value
        set_payload(built, wire.dumps(payload))

    damage.__name__ = f"{kind}_{'_'.join(map(str, paths[0]))}"
    return damage


MESSAGE = ("stored", "message")
#: Identifiers the SDK refuses (every id newtype's Deserialize checks: not empty, at most 512 UTF-8
#: bytes, no char::is_control), each where the SDK reads one: (case, kind, status, paths, value).
BAD_IDENTIFIERS = [
    (
        "an empty message id",
        "run_message",
        "delivered",
        [(*MESSAGE, "message_id"), ("stored", "receipt", "message_id")],
        "",
    ),
    ("a sender with a C1 control character (U+0085)", "run_message", "delivered", [(*MESSAGE, "from")], "run.\x85x"),
    ("an idempotency key of 513 bytes", "run_message", "delivered", [(*MESSAGE, "idempotency_key")], "k" * 513),
    ("a content ref with a newline", "run_message", "delivered", [(*MESSAGE, "content_ref")], "content\n1"),
    (
        "a recipient of 514 bytes in 257 characters",
        "run_message",
        "delivered",
        [("stored", "receipt", "delivered_to")],
        ["é" * 257],
    ),
    (
        "a correlation entry with an empty value",
        "run_message",
        "delivered",
        [(*MESSAGE, "correlation")],
        {"entries": [{"key": "trace", "value": ""}]},
    ),
    (
        "a destination ref's id that is empty",
        "run_message",
        "delivered",
        [(*MESSAGE, "to", "destination_ref", "id")],
        "",
    ),
    (
        "a related ref's id with a newline",
        "run_message",
        "delivered",
        [(*MESSAGE, "to", "related_refs")],
        [{"kind": "agent", "id": "agent\nx", "privacy": "content_refs_only"}],
    ),
    (
        "a related ref's source id of 513 bytes",
        "run_message",
        "delivered",
        [(*MESSAGE, "to", "related_refs")],
        [
            {
                "kind": "agent",
                "id": "agent.x",
                "source": {"kind": "host", "id": "s" * 513, "trust": "host_provided", "privacy": "internal"},
                "privacy": "content_refs_only",
            }
        ],
    ),
    ("a wake's run id with a tab", "wake", "registered", [("stored", "condition", "run_id")], "run\tx"),
    (
        "a registration's journal cursor with DEL",
        "wake",
        "registered",
        [("stored", "registration", "journal_cursor")],
        "j\x7f",
    ),
    ("a registration's run id that is empty", "wake", "registered", [("stored", "registration", "run_id")], ""),
    # a wake's later record repeats its first one up to the registration, which is read alone
    (
        "a later wake record's journal cursor with a newline",
        "wake",
        "cancelled",
        [("stored", "registration", "journal_cursor")],
        "journal\n1",
    ),
    (
        "a later wake record's empty registration run id",
        "wake",
        "cancelled",
        [("stored", "registration", "run_id")],
        "",
    ),
    (
        "an empty agent id in a wake's filter",
        "wake",
        "registered",
        [("stored", "condition", "filter", "agent_ids"), ("stored", "compiled_filter", "criteria", "agent_ids")],
        {"include": [""]},
    ),
    ("a member's topic with a NUL", "member_joined", None, [("member", "topics")], ["topic\x00"]),
    ("a member's empty agent id", "member_joined", None, [("member", "agent_id")], ""),
    (
        "a member's policy ref with an empty id",
        "member_joined",
        None,
        [("member", "policy_refs")],
        [{"kind": "permission", "id": ""}],
    ),
]
QUEUE = ("stored", "compiled_filter", "queue")
FILTER = ("stored", "condition", "filter")
CRITERIA = ("stored", "compiled_filter", "criteria")
GOOD_QUEUE = {"capacity": 64, "terminal_reserve": 1, "overflow": "drop_non_terminal"}
BAD_VALUES = [
    # serde_json reads the integer -0 as the float -0.0, which no u64 takes (orjson reads 0)
    ("a u64 stored as -0", "run_message", "delivered", (*MESSAGE, "expires_at_millis"), None, "-0"),
    ("a wake timeout stored as -0", "wake", "triggered", ("stored", "condition", "timeout_millis"), None, "-0"),
    # a filter's queue counts (usize): the load did not look into the queue (found by fuzzing)
    ("a queue capacity that is a float", "wake", None, (*QUEUE, "capacity"), None, "64.0"),
    ("a queue capacity of 2^64", "wake", None, (*QUEUE, "capacity"), None, str(2**64)),
    ("a criteria queue reserve below 0", "wake", None, (*QUEUE[:2], "criteria", "queue", "terminal_reserve"), -1, None),
    ("a condition filter queue that is a list", "wake", None, ("stored", "condition", "filter", "queue"), [], None),
    ("a queue without overflow", "wake", None, (*QUEUE, "overflow"), None, "null"),
    ("idempotency key that is a list", "run_message", "delivered", (*MESSAGE, "idempotency_key"), ["a", "b"], None),
    (
        "wake idempotency key that is an object",
        "wake",
        "triggered",
        ("stored", "condition", "idempotency_key"),
        {"k": 1},
        None,
    ),
    ("agent_id that is a number", "member_left", None, ("member", "agent_id"), 42, None),
    ("agent_id that is a list", "member_left", None, ("member", "agent_id"), ["agent"], None),
    ("topics that are objects", "member_left", None, ("member", "topics"), [{"topic": "t"}], None),
    # a Vec field may be absent (serde's default) but never null ("expected a sequence")
    ("topics that are null", "member_joined", None, ("member", "topics"), None, None),
    ("a member's policy_refs that are null", "member_joined", None, ("member", "policy_refs"), None, None),
    ("delivered_to that is null", "run_message", "delivered", ("stored", "receipt", "delivered_to"), None, None),
    ("sender that is a number", "run_message", "delivered", (*MESSAGE, "from"), 7, None),
    ("wake run_id that is an object", "wake", "triggered", ("stored", "condition", "run_id"), {"r": 1}, None),
    ("reply_to that is a number", "run_message", "delivered", (*MESSAGE, "reply_to"), 3, None),
    ("delivered_to holding numbers", "run_message", "delivered", ("stored", "receipt", "delivered_to"), [1, 2], None),
    ("journal_cursor that is an object", "wake", "triggered", ("stored", "registration", "journal_cursor"), {}, None),
    ("expires_at_millis = 2^200", "run_message", "delivered", (*MESSAGE, "expires_at_millis"), None, str(2**200)),
    ("expires_at_millis negative", "run_message", "delivered", (*MESSAGE, "expires_at_millis"), -5, None),
    ("expires_at_millis = 2^64", "run_message", "delivered", (*MESSAGE, "expires_at_millis"), None, str(2**64)),
    (
        "expected_responses = 2^32 (the SDK's u32)",
        "run_message",
        "delivered",
        (*MESSAGE, "response_contract"),
        {"expected_responses": 2**32},
        None,
    ),
    ('timeout_millis = "soon"', "wake", "triggered", ("stored", "condition", "timeout_millis"), "soon", None),
    (
        "resume_with that is not a policy",
        "wake",
        "triggered",
        ("stored", "condition", "resume_with"),
        "everything",
        None,
    ),
    ("content_ref that is null", "run_message", "delivered", (*MESSAGE, "content_ref"), None, "null"),
    # a stored filter (the condition's, the compiled criteria) as serde reads it: EventFilterSet is
    # "any" or {"include": [...]} (no bare list, no other spelling), terminal_only a bool; each used
    # to be folded and then made snapshot().to_json() raise InvalidInputError
    ('a condition filter set "Any"', "wake", None, (*FILTER, "kinds"), "Any", None),
    ("a condition filter set that is a number", "wake", None, (*FILTER, "tags"), 5, None),
    ("a condition filter set stored as a bare list", "wake", None, (*FILTER, "kinds"), ["run_completed"], None),
    ('a condition filter\'s terminal_only "no"', "wake", None, (*FILTER, "terminal_only"), "no", None),
    ("criteria tags including a string", "wake", None, (*CRITERIA, "tags"), {"include": "x"}, None),
    ("a criteria set with a second key", "wake", None, (*CRITERIA, "families"), {"include": [], "any": None}, None),
    ("a criteria run_ids item that is empty", "wake", None, (*CRITERIA, "run_ids"), {"include": [""]}, None),
    # NonZeroUsize queue counts
    ("a queue capacity of 0", "wake", None, (*QUEUE, "capacity"), 0, None),
    (
        "a condition filter queue reserve of 0",
        "wake",
        None,
        (*FILTER, "queue"),
        {**GOOD_QUEUE, "terminal_reserve": 0},
        None,
    ),
    # closed enums: serde answers "unknown variant"
    (
        "a member's policy kind not a PolicyKind",
        "member_joined",
        None,
        ("member", "policy_refs"),
        [{"kind": "superuser", "id": "p"}],
        None,
    ),
    (
        "a message's policy kind not a PolicyKind",
        "run_message",
        "delivered",
        (*MESSAGE, "policy_refs"),
        [{"kind": "root", "id": "p"}],
        None,
    ),
    ("a condition filter's payload_access not a mode", "wake", None, (*FILTER, "payload_access"), "everything", None),
    (
        "a compiled filter's payload_access not a mode",
        "wake",
        None,
        ("stored", "compiled_filter", "payload_access"),
        "all",
        None,
    ),
    ("a queue overflow not a policy", "wake", None, (*QUEUE, "overflow"), "drop_all", None),
    (
        "an indexed field not an EventIndexField",
        "wake",
        None,
        ("stored", "compiled_filter", "indexed_fields"),
        ["session"],
        None,
    ),
]


def raw_edit(kind: str, edit: Callable[[str], str], status: str | None = None) -> Callable[[Built], None]:
    """Rewrite the stored JSON text of a record of ``kind`` (and status) with ``edit`` (for what a dict cannot hold)."""

    def damage(built: Built) -> None:
        target(built, kind, status)
        before = built.original[built.pool_id][built.seq]
        after = edit(before)
        assert after != before
        set_payload(built, after)

    return damage


def deep_extra(levels: int) -> Callable[[str], str]:
    """Add a field serde ignores to a member_left's member, nesting the payload ``levels`` deep in all."""
    # the payload's object and its member are two levels; the field's arrays the rest
    return lambda text: text.replace(
        '"member":{', '"member":{"note":' + "[" * (levels - 2) + "]" * (levels - 2) + ",", 1
    )


def drop_field(kind: str, status: str | None, path: tuple) -> Callable[[Built], None]:
    """Remove ``payload[path...]`` from a record of ``kind`` (and status)."""

    def damage(built: Built) -> None:
        _, _, payload = target(built, kind, status)
        holder = payload
        for step in path[:-1]:
            holder = holder[step]
        del holder[path[-1]]
        set_payload(built, wire.dumps(payload))

    damage.__name__ = f"{kind}_without_{'_'.join(path)}"
    return damage


# Repeated keys, nesting past serde_json's limit and required fields missing where the index
# keeps nothing (issue 10, item 4): serde cannot read the record, so every load keeps it out of
# the fold -- messages and wakes (nearly all of a log) included.
SERDE_REFUSES = [
    (
        "the key type twice, equal values (member_left)",
        raw_edit(
            "member_left", lambda t: t.replace('{"type":"member_left"', '{"type":"member_left","type":"member_left"', 1)
        ),
        "duplicate_key",
    ),
    (
        "run_id twice inside member, different values",
        raw_edit("member_left", lambda t: t.replace('"member":{', '"member":{"run_id":"run.someone.else",', 1)),
        "duplicate_key",
    ),
    (
        "nesting 128 levels (one past serde's limit) in a field serde ignores",
        raw_edit("member_left", deep_extra(128)),
        "too_deep",
    ),
    ("nesting 1100 levels (past orjson's own limit too)", raw_edit("member_left", deep_extra(1100)), "too_deep"),
    # a wrong shape too, but serde reads the whole payload before its types: the depth is what it refuses
    (
        "a policy ref nested 129 levels deep (the payload 132)",
        set_field("member_left", None, ("member", "policy_refs"), [nested(129)]),
        "too_deep",
    ),
    (
        "message_id twice inside a message, different values",
        raw_edit(
            "run_message", lambda t: t.replace('"message":{', '"message":{"message_id":"msg.other",', 1), "delivered"
        ),
        "duplicate_key",
    ),
    (
        "run_id twice inside a wake's condition",
        raw_edit("wake", lambda t: t.replace('"condition":{', '"condition":{"run_id":"run.other",', 1)),
        "duplicate_key",
    ),
    (
        "a message's correlation entries nesting 128 levels (the payload's object is level 1)",
        set_field("run_message", "delivered", ("stored", "message", "correlation"), {"entries": [nested(123)]}),
        "too_deep",
    ),
    (
        "a wake's compiled filter nesting 128 levels in a field serde ignores",
        set_field("wake", None, ("stored", "compiled_filter", "note"), nested(125)),
        "too_deep",
    ),
    (
        "a message without to.destination_ref",
        drop_field("run_message", "delivered", ("stored", "message", "to", "destination_ref")),
        "bad_shape",
    ),
    (
        "a message without correlation",
        drop_field("run_message", "delivered", ("stored", "message", "correlation")),
        "bad_shape",
    ),
    ("a wake condition without filter", drop_field("wake", None, ("stored", "condition", "filter")), "bad_shape"),
    # types serde refuses in the parts the index does not keep
    (
        "a message's policy ref whose kind is a number",
        set_field("run_message", "delivered", (*MESSAGE, "policy_refs"), [{"kind": 7, "id": "p"}]),
        "bad_shape",
    ),
    (
        "a message's correlation that is a list",
        set_field("run_message", "delivered", (*MESSAGE, "correlation"), ["c"]),
        "bad_shape",
    ),
    (
        "a message's related_refs that is an object",
        set_field("run_message", "delivered", (*MESSAGE, "to", "related_refs"), {"kind": "run"}),
        "bad_shape",
    ),
    # a run address's refs are the SDK's DestinationRef and EntityRef (domain/refs.rs): no field but
    # correlation defaulted, kinds and classes closed enums
    (
        "a destination ref without privacy",
        drop_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "privacy")),
        "bad_shape",
    ),
    (
        "a destination ref without retention",
        drop_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "retention")),
        "bad_shape",
    ),
    (
        "a destination ref that is a string",
        set_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref"), "agent.x"),
        "bad_shape",
    ),
    (
        "a destination ref whose kind is no DestinationKind ('run' is an EntityKind)",
        set_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "kind"), "run"),
        "bad_shape",
    ),
    (
        "a destination ref whose retention is no RetentionClass",
        set_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "retention"), "forever"),
        "bad_shape",
    ),
    (
        "a destination ref whose correlation is null",
        set_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "correlation"), None),
        "bad_shape",
    ),
    (
        "a destination ref whose redacted summary is a number",
        set_field("run_message", "delivered", (*MESSAGE, "to", "destination_ref", "redacted_summary"), 7),
        "bad_shape",
    ),
    (
        "a related ref without privacy",
        set_field("run_message", "delivered", (*MESSAGE, "to", "related_refs"), [{"kind": "agent", "id": "a"}]),
        "bad_shape",
    ),
    (
        "a related ref whose kind is no EntityKind",
        set_field(
            "run_message",
            "delivered",
            (*MESSAGE, "to", "related_refs"),
            [{"kind": "robot", "id": "a", "privacy": "internal"}],
        ),
        "bad_shape",
    ),
    (
        "a related ref whose privacy is no PrivacyClass",
        set_field(
            "run_message",
            "delivered",
            (*MESSAGE, "to", "related_refs"),
            [{"kind": "agent", "id": "a", "privacy": "private"}],
        ),
        "bad_shape",
    ),
    (
        "a related ref whose source has no TrustClass",
        set_field(
            "run_message",
            "delivered",
            (*MESSAGE, "to", "related_refs"),
            [
                {
                    "kind": "agent",
                    "id": "a",
                    "source": {"kind": "host", "id": "s", "privacy": "internal"},
                    "privacy": "internal",
                }
            ],
        ),
        "bad_shape",
    ),
    (
        "a related ref that is a list",
        set_field("run_message", "delivered", (*MESSAGE, "to", "related_refs"), [["agent", "a"]]),
        "bad_shape",
    ),
    # valid UTF-8 bytes, but a \u escape of half a character: serde_json refuses the string
    (
        "a message id escaping a lone surrogate",
        set_field("run_message", "delivered", (*MESSAGE, "message_id"), None, raw='"msg.\\udc80"'),
        "bad_json",
    ),
    (
        "a member's agent id escaping a lone high surrogate",
        set_field("member_joined", None, ("member", "agent_id"), None, raw='"agent.\\ud800x"'),
        "bad_json",
    ),
    (
        "a message's related_refs that is null",
        set_field("run_message", "delivered", (*MESSAGE, "to", "related_refs"), None),
        "bad_shape",
    ),
    (
        "a message's correlation entries that are null",
        set_field("run_message", "delivered", (*MESSAGE, "correlation", "entries"), None),
        "bad_shape",
    ),
    (
        "a message's policy_refs that are null",
        set_field("run_message", "delivered", (*MESSAGE, "policy_refs"), None),
        "bad_shape",
    ),
    (
        "a wake condition's policy_refs that are null",
        set_field("wake", None, ("stored", "condition", "policy_refs"), None),
        "bad_shape",
    ),
    (
        "a compiled filter's indexed_fields that are null",
        set_field("wake", None, ("stored", "compiled_filter", "indexed_fields"), None),
        "bad_shape",
    ),
    (
        "a wake registration's run_id that is a number",
        set_field("wake", None, ("stored", "registration", "run_id"), 5),
        "bad_shape",
    ),
    (
        "a wake's condition filter that is a string",
        set_field("wake", None, ("stored", "condition", "filter"), "any"),
        "bad_shape",
    ),
    (
        "a compiled filter without filter_id",
        drop_field("wake", None, ("stored", "compiled_filter", "filter_id")),
        "bad_shape",
    ),
    (
        "a compiled filter's indexed_fields holding a number",
        set_field("wake", None, ("stored", "compiled_filter", "indexed_fields"), ["run_id", 3]),
        "bad_shape",
    ),
    (
        "a wake condition's policy ref without id",
        set_field("wake", None, ("stored", "condition", "policy_refs"), [{"kind": "permission"}]),
        "bad_shape",
    ),
]


def first_config(text: str | None) -> Callable[[Built], None]:
    """The second pool's pool_opened (seq 1) with ``"config":`` ``text`` (None: no config at all)."""

    def damage(built: Built) -> None:
        built.pool_id, built.seq = sorted(built.original)[1], 1
        set_payload(built, '{"type":"pool_opened"' + ("" if text is None else ',"config":' + text) + "}")

    return damage


def target_id_list(built: Built) -> None:
    """The id of a message's target (run_id, agent_id, topic_id or pool_id, by its type) is a list."""
    _, _, payload = target(built, "run_message", "delivered")
    address = payload["stored"]["message"]["to"]["target"]
    field_name = {"run": "run_id", "agent": "agent_id", "topic": "topic_id", "pool": "pool_id"}[address["type"]]
    address[field_name] = ["r"]
    set_payload(built, wire.dumps(payload))


def target_id_missing(built: Built) -> None:
    """A message's target without its id (serde has no default for it)."""
    _, _, payload = target(built, "run_message", "delivered")
    address = payload["stored"]["message"]["to"]["target"]
    for name in ("run_id", "agent_id", "topic_id", "pool_id"):
        address.pop(name, None)
    set_payload(built, wire.dumps(payload))


def bad_second_config(built: Built) -> None:
    pool_id = sorted(built.original)[1]
    payload = {"type": "pool_opened", "config": {"message_policy": 5}}
    append(built, pool_id, "pool_opened", payload)
    built.seq = max(built.original[pool_id]) + 1
    built.original[pool_id][built.seq] = wire.dumps(payload)


def integer_kind(built: Built) -> None:
    """kind = 5: stored as the text '5' by the SDK's TEXT column."""
    target(built, "member_left")
    execute(
        built.path,
        ("UPDATE agent_pool_records SET kind = 5 WHERE pool_id = ? AND seq = ?", (built.pool_id, built.seq)),
    )


def set_kind(kind: str, value: Any) -> Callable[[Built], None]:
    """File a record of ``kind`` under the kind column ``value`` (bytes: a BLOB cast to TEXT, as it is)."""

    def damage(built: Built) -> None:
        target(built, kind)
        column = "CAST(? AS TEXT)" if isinstance(value, bytes) else "?"
        execute(
            built.path,
            (
                f"UPDATE agent_pool_records SET kind = {column} WHERE pool_id = ? AND seq = ?",
                (value, built.pool_id, built.seq),
            ),
        )

    damage.__name__ = f"{kind}_filed_as_{value!r}"
    return damage


def integer_kind_without_affinity(built: Built) -> None:
    """kind = 5 stored as an INTEGER (a table without column types)."""
    rebuild_without_constraints(built)
    integer_kind(built)


def unplaceable_seq(seq: int) -> Callable[[Built], None]:
    def damage(built: Built) -> None:
        pool_id = sorted(built.original)[1]
        execute(
            built.path,
            (
                "INSERT INTO agent_pool_records VALUES (?, ?, 'pool_created', '{\"type\":\"pool_created\"}')",
                (pool_id, seq),
            ),
        )
        built.pool_id, built.anomaly_seq = pool_id, seq

    damage.__name__ = f"seq_{seq}"
    return damage


def generated_payload_column(built: Built) -> None:
    """payload_json as a generated column over the stored text (a view-like schema some tools write)."""
    execute(
        built.path,
        (
            "CREATE TABLE generated (pool_id TEXT, seq INTEGER, kind TEXT, raw TEXT, "
            "payload_json TEXT GENERATED ALWAYS AS (raw) VIRTUAL, PRIMARY KEY (pool_id, seq))",
        ),
        (
            "INSERT INTO generated (pool_id, seq, kind, raw) SELECT pool_id, seq, kind, payload_json FROM agent_pool_records",
        ),
        ("DROP TABLE agent_pool_records",),
        ("ALTER TABLE generated RENAME TO agent_pool_records",),
    )


def rollback_journal(built: Built) -> None:
    execute(built.path, ("PRAGMA journal_mode = DELETE",))


def replaced(built: Built) -> None:
    other = built.path.parent / "other.db"
    execute(other, ("CREATE TABLE agent_pool_records (pool_id TEXT, seq INTEGER, kind TEXT, payload_json TEXT)",))
    os.replace(other, built.path)


def deleted(built: Built) -> None:
    built.path.unlink()


LOCKER = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
for statement in sys.argv[2:]:
    conn.execute(statement)
print("locked", flush=True)
sys.stdin.read()
"""


def locker(*statements: str) -> Callable[[Path], Any]:
    """Another process holding a lock on the file until the block ends."""

    @contextmanager
    def hold(path: Path) -> Iterator[None]:
        process = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path), *statements],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout.readline().strip() == "locked"
            yield
        finally:
            process.stdin.close()
            process.wait(timeout=HANG)

    return hold


def rollback_then(damage: Callable[[Built], None]) -> Callable[[Built], None]:
    def both(built: Built) -> None:
        rollback_journal(built)
        damage(built)

    return both


CASES: list[Case] = [
    Case("missing path", "none", missing_path, opens=poolscope.DatabaseNotFoundError),
    Case("a folder", "none", folder, opens=poolscope.NotADatabaseError),
    Case("not an SQLite file", "none", not_sqlite, opens=poolscope.NotADatabaseError),
    Case("empty file", "none", empty_file, opens=poolscope.NotADatabaseError),
    Case("truncated file", "generated", truncated, opens=poolscope.NotADatabaseError),
    Case("truncated inside the header", "generated", truncated_header, opens=poolscope.NotADatabaseError),
    Case("garbage pages", "generated", garbage_pages, opens=poolscope.NotADatabaseError),
    Case("a garbage page inside the records table", "generated", garbage_table_page, codes=frozenset({"unreadable"})),
    Case("no agent_pool_records table", "generated", no_records_table, opens=poolscope.SchemaError),
    Case("wrong columns", "generated", wrong_columns, opens=poolscope.SchemaError),
    Case(
        "payload is not JSON",
        "generated",
        not_json,
        codes=frozenset({"bad_json"}),
        at="bad_json",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "JSON of the wrong shape",
        "generated",
        wrong_shape,
        codes=frozenset({"bad_shape"}),
        at="bad_shape",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "unknown record type (newer SDK)",
        "generated",
        unknown_kind,
        codes=frozenset({"unknown_kind"}),
        at="unknown_kind",
        strict=poolscope.UnknownRecordKindError,
    ),
    Case(
        "unknown status value",
        "oracle",
        unknown_status,
        codes=frozenset({"unknown_status"}),
        at="unknown_status",
        strict=poolscope.UnknownRecordKindError,
    ),
    Case(
        "payload stored as BLOB",
        "generated",
        blob_payload,
        codes=frozenset({"blob_payload"}),
        at="blob_payload",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "invalid UTF-8 in payload_json",
        "generated",
        invalid_utf8,
        codes=frozenset({"invalid_utf8"}),
        at="invalid_utf8",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "NULL payload",
        "generated",
        null_payload,
        codes=frozenset({"null_payload"}),
        at="null_payload",
        strict=poolscope.CorruptRecordError,
    ),
    Case("NULL kind", "generated", null_kind, codes=frozenset({"kind_mismatch"}), at="kind_mismatch"),
    Case("a 20 MB payload", "generated", huge_payload),
    Case("gap in seq", "generated", seq_gap, codes=frozenset({"seq_gap"}), at="seq_gap"),
    Case("duplicate seq", "generated", duplicate_seq, codes=frozenset({"duplicate_seq"}), at="duplicate_seq"),
    Case("non-integer seq and NULL pool_id", "generated", text_seq, codes=frozenset({"bad_seq", "bad_pool_id"})),
    Case("pool_id not UTF-8 text", "generated", undecodable_pool_ids, codes=frozenset({"bad_pool_id"})),
    Case(
        "second pool_opened with a different config",
        "generated",
        config_conflict,
        codes=frozenset({"config_conflict"}),
        at="config_conflict",
        strict=poolscope.ConfigConflictError,
    ),
    Case(
        "second pool_opened with the same config",
        "oracle",
        repeated_open,
        codes=frozenset({"repeated_pool_opened"}),
        at="repeated_pool_opened",
    ),
    Case(
        "pool never opened",
        "generated",
        pool_not_opened,
        codes=frozenset({"pool_not_opened", "seq_gap"}),
        at="pool_not_opened",
        strict=poolscope.PoolNotOpenedError,
    ),
    Case(
        "records before pool_opened",
        "generated",
        record_before_open,
        codes=frozenset({"record_before_open"}),
        at="record_before_open",
        strict=poolscope.PoolNotOpenedError,
    ),
    Case(
        "member_left for a run that is not a member",
        "generated",
        leave_non_member,
        codes=frozenset({"member_left_not_member"}),
        at="member_left_not_member",
    ),
    Case(
        "status change for a message never sent",
        "generated",
        message_never_sent,
        codes=frozenset({"message_never_sent"}),
        at="message_never_sent",
    ),
    Case(
        "message delivered without accepted",
        "oracle",
        delivered_without_accepted,
        codes=frozenset({"delivered_without_accepted"}),
        at="delivered_without_accepted",
    ),
    Case(
        "status change for a wake never registered",
        "generated",
        wake_never_registered,
        codes=frozenset({"wake_never_registered"}),
        at="wake_never_registered",
    ),
    Case(
        "wake filter fingerprint does not match",
        "oracle",
        wake_filter_mismatch,
        codes=frozenset({"wake_filter_mismatch"}),
        at="wake_filter_mismatch",
    ),
    Case(
        "wake filter item not text",
        "oracle",
        wake_filter_item_not_text,
        codes=frozenset({"bad_shape"}),
        at="bad_shape",
        strict=poolscope.CorruptRecordError,
    ),
    Case("no agent_pool_event_seq table", "generated", no_event_seq_table, codes=frozenset({"no_event_seq_table"})),
    Case("junk in agent_pool_event_seq", "generated", junk_event_seq, codes=frozenset({"bad_event_seq"})),
    Case("two event_seq rows for one pool", "oracle", event_seq_without_key, codes=frozenset({"bad_event_seq"})),
    Case(
        "event_seq table of other columns", "generated", event_seq_without_columns, codes=frozenset({"bad_event_seq"})
    ),
    Case(
        "locked by another process (rollback journal)",
        "generated",
        rollback_journal,
        opens=poolscope.DatabaseLockedError,
        hold=locker("BEGIN EXCLUSIVE"),
    ),
    Case(
        "locked by another process after open",
        "generated",
        rollback_then(not_json),
        codes=frozenset({"bad_json"}),
        at="bad_json",
        strict=poolscope.CorruptRecordError,
        hold=locker("BEGIN EXCLUSIVE"),
        hold_after_open=True,
    ),
    Case(
        "locked in exclusive WAL mode",
        "oracle",
        lambda built: None,
        opens=poolscope.DatabaseLockedError,
        hold=locker("PRAGMA locking_mode = EXCLUSIVE", "BEGIN EXCLUSIVE", "UPDATE agent_pool_event_seq SET seq = seq"),
    ),
    Case(
        "a WAL writer mid-transaction (readers go on)",
        "oracle",
        lambda built: None,
        hold=locker("BEGIN IMMEDIATE", "UPDATE agent_pool_event_seq SET seq = seq + 1"),
    ),
    *[
        Case(
            name,
            "generated",
            set_field(kind, status, path, value, raw),
            codes=frozenset({"bad_shape"}),
            at="bad_shape",
            strict=poolscope.CorruptRecordError,
        )
        for name, kind, status, path, value, raw in BAD_VALUES
    ],
    *[
        Case(name, "generated", damage, codes=frozenset({code}), at=code, strict=poolscope.CorruptRecordError)
        for name, damage, code in SERDE_REFUSES
    ],
    # u64 values serde reads but an Int64 column cannot hold: exact in records and snapshots,
    # missing in the frames (not an overflow), a warning in doctor
    Case(
        "expires_at_millis = 2^64-1 (the largest u64)",
        "generated",
        set_field("run_message", "delivered", (*MESSAGE, "expires_at_millis"), None, str(2**64 - 1)),
        codes=frozenset({"out_of_range"}),
        at="out_of_range",
    ),
    Case(
        "a wake's timeout_millis = 2^63",
        "generated",
        set_field("wake", "triggered", ("stored", "condition", "timeout_millis"), None, str(2**63)),
        codes=frozenset({"out_of_range"}),
        at="out_of_range",
    ),
    # configs serde cannot read: it has no default for the policies nor their flags (issue 10, item 4)
    *[
        Case(
            f"pool_opened with config {shown}",
            "generated",
            first_config(text),
            codes=frozenset({"bad_shape", "pool_not_opened"}),
            at="bad_shape",
            strict=poolscope.CorruptRecordError,
        )
        for shown, text in (
            ("{}", "{}"),
            ("null", "null"),
            ("[]", "[]"),
            ("missing", None),
            ("without wake_policy", '{"message_policy":{"include_sender_in_pool_broadcast":false}}'),
            (
                "without include_sender_in_pool_broadcast",
                '{"message_policy":{},"wake_policy":{"envelope_only":true}}',
            ),
            (
                'envelope_only "yes"',
                '{"message_policy":{"include_sender_in_pool_broadcast":false},"wake_policy":{"envelope_only":"yes"}}',
            ),
        )
    ],
    # exactly at serde's limit: read, and clean
    Case(
        "nesting 127 levels (serde's limit) in a field serde ignores",
        "generated",
        raw_edit("member_left", deep_extra(127)),
    ),
    Case(
        "target id that is a list",
        "generated",
        target_id_list,
        codes=frozenset({"bad_shape"}),
        at="bad_shape",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "target without its id",
        "generated",
        target_id_missing,
        codes=frozenset({"bad_shape"}),
        at="bad_shape",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "second pool_opened whose config has the wrong type",
        "generated",
        bad_second_config,
        codes=frozenset({"bad_shape"}),
        at="bad_shape",
        strict=poolscope.CorruptRecordError,
    ),
    Case(
        "an integer in the kind column",
        "generated",
        integer_kind,
        codes=frozenset({"kind_mismatch"}),
        at="kind_mismatch",
    ),
    Case(
        "an INTEGER kind in a table without column types",
        "generated",
        integer_kind_without_affinity,
        codes=frozenset({"kind_mismatch"}),
        at="kind_mismatch",
    ),
    # the SDK's replay reads only payload_json: a record filed under another kind, or one whose receipt
    # (registration) names another message (condition), is folded as it says -- and reported
    *[
        Case(
            f"a {kind} filed as {shown}",
            base,
            set_kind(kind, value),
            codes=frozenset({"kind_mismatch"}),
            at="kind_mismatch",
        )
        for kind, value, shown, base in (
            ("member_left", "wake", "a wake", "generated"),
            ("wake", "run_message", "a message", "oracle"),
            ("run_message", "wake", "a wake", "oracle"),
            ("wake", b"\xffwake", "bytes that are not UTF-8", "oracle"),
        )
    ],
    Case(
        "a receipt for another message",
        "oracle",
        set_fields("run_message", "delivered", [("stored", "receipt", "message_id")], "msg.someone-else"),
        codes=frozenset({"receipt_mismatch"}),
        at="receipt_mismatch",
    ),
    Case(
        "a registration for another condition",
        "oracle",
        set_fields("wake", None, [("stored", "registration", "condition_id")], "wake.someone-else"),
        codes=frozenset({"registration_mismatch"}),
        at="registration_mismatch",
    ),
    *[
        Case(
            f"identifier the SDK refuses: {name}",
            "oracle",
            set_fields(kind, status, paths, value),
            codes=frozenset({"bad_shape"}),
            at="bad_shape",
            strict=poolscope.CorruptRecordError,
        )
        for name, kind, status, paths, value in BAD_IDENTIFIERS
    ],
    # at the SDK's limits: read, and clean (512 bytes in 256 characters; 512 ASCII characters)
    Case(
        "an idempotency key of exactly 512 bytes",
        "oracle",
        set_fields("run_message", "delivered", [(*MESSAGE, "idempotency_key")], "é" * 256),
    ),
    Case(
        "a recipient of exactly 512 bytes",
        "oracle",
        set_fields("run_message", "delivered", [("stored", "receipt", "delivered_to")], ["é" * 256]),
    ),
    Case(
        "a journal cursor of 512 ASCII characters",
        "oracle",
        set_fields("wake", "registered", [("stored", "registration", "journal_cursor")], "j" * 512),
    ),
    Case("seq 0", "generated", unplaceable_seq(0), codes=frozenset({"bad_seq"}), at="bad_seq"),
    Case("a negative seq", "generated", unplaceable_seq(-3), codes=frozenset({"bad_seq"}), at="bad_seq"),
    Case("seq 2^63-1", "generated", unplaceable_seq(2**63 - 1), codes=frozenset({"bad_seq"}), at="bad_seq"),
    Case("payload_json as a generated column", "generated", generated_payload_column),
    Case("replaced while open", "generated", lambda built: None, after_open=replaced),
    Case("deleted while open", "oracle", lambda built: None, after_open=deleted),
]


# ---------------------------------------------------------------- the harness
def bounded(call: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run ``call`` in a thread; fail the test if it does not return within HANG seconds."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"call hung for more than {HANG} s"
    return box.get("value"), box.get("error"), elapsed


class Judge:
    """Runs calls and checks that each answers or raises a well-formed PoolscopeError."""

    def __init__(self, built: Built, case: Case) -> None:
        self.built, self.case = built, case
        self.errors: list[tuple[str, BaseException]] = []

    def __call__(
        self, label: str, call: Callable[[], Any], *, pool_id: str | None = None
    ) -> tuple[Any, BaseException | None]:
        value, error, _ = bounded(call)
        if error is None:
            return value, None
        assert isinstance(error, poolscope.PoolscopeError), f"{label}: raw {type(error).__name__}: {error}"
        text = str(error)
        assert str(self.built.path) in text, f"{label}: message does not name the file: {text}"
        if error.pool_id is not None:
            assert repr(error.pool_id) in text
        if error.seq is not None:
            assert f"seq {error.seq}" in text
        if isinstance(error, (poolscope.RecordError, poolscope.ConfigConflictError)):
            assert error.pool_id is not None and error.seq is not None, f"{label}: {text}"
        if pool_id is not None and not isinstance(error, poolscope.DatabaseError):
            assert error.pool_id == pool_id, f"{label}: {text}"
        self.errors.append((label, error))
        return None, error


def base_copy(case: Case, folder_: Path, small_db: Path, oracle: Path | None) -> Built:
    path = folder_ / "pool.db"
    if case.base == "generated":
        shutil.copy(small_db, path)
    elif case.base == "oracle":
        shutil.copy(oracle / "pool.db", path)
    else:
        path.write_bytes(b"")  # replaced by the damage function
    built = Built(path)
    if case.base != "none":
        built.original = rows_of(path)
    return built


def listing(folder_: Path) -> tuple[list[str], dict[str, bytes]]:
    return sorted(p.name for p in folder_.iterdir()), tree_state(folder_)


def expected_snapshot(built: Built, pool_id: str, cursor: int) -> dict | type:
    """The reference replay (tests/reference.py) of the file as damaged, to ``cursor``."""
    rows = built.current[pool_id]
    records = [{"cursor": {"sequence": s}, "payload": json.loads(rows[s])} for s in sorted(rows) if s <= cursor]
    try:
        return reference_snapshot(pool_id, records, cursor)
    except LookupError:
        return poolscope.PoolNotOpenedError
    except ValueError:
        return poolscope.ConfigConflictError


def run_cli(judge: Judge, args: list[str]) -> Any:
    runner = CliRunner()
    result, error, _ = bounded(lambda: runner.invoke(cli, args, catch_exceptions=True))
    assert error is None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"poolscope {' '.join(args)} crashed: {result.exception!r}") from result.exception
    assert result.exit_code in (0, 1, 2), (args, result.exit_code)
    if result.exit_code == 2:
        assert "Error:" in result.stderr and str(judge.built.path) in result.stderr, (args, result.stderr)
    return result


def exercise(case: Case, built: Built, judge: Judge, db: Any, light: bool = False) -> dict[str, Any]:
    """Every public read call on an opened database; returns what check() and refresh() said.

    ``light``: one pool, fewer cursors (under a lock each call waits the timeout).
    """
    out: dict[str, Any] = {}
    pool_ids, error = judge("pool_ids", lambda: db.pool_ids)
    assert error is None
    for pool_id in pool_ids[:1] if light else pool_ids:
        history, error = judge("pool()", lambda: db.pool(pool_id), pool_id=pool_id)
        if history is None:
            continue
        # pool() reads nothing but the head: a pool that cannot be loaded fails on first use
        head, error = judge("head", lambda: history.head, pool_id=pool_id)
        if head is None:
            continue
        assert isinstance(head, int)
        records, _ = judge("records()", history.records, pool_id=pool_id)
        if records is not None:
            for record in records:
                if record.problem is None:
                    record.to_json()
                else:
                    judge("to_dict()", record.to_dict, pool_id=pool_id)
        cursors = {0, 1, head, head // 2}
        if light:
            cursors = {head}
        elif built.pool_id == pool_id and built.seq is not None:
            cursors |= {built.seq - 1, built.seq, min(built.seq + 1, head)}
        for cursor in sorted(c for c in cursors if c >= 0):
            for strict in (True,) if light else (True, False):
                snap, _ = judge(
                    f"snapshot({cursor}, strict={strict})",
                    lambda: history.snapshot(cursor, strict=strict),
                    pool_id=pool_id,
                )
                if snap is not None:
                    judge("snapshot.to_json()", snap.to_json, pool_id=pool_id)
                    judge("snapshot.counts()", snap.counts, pool_id=pool_id)
        judge(
            "iter_records(kinds=)", lambda: list(history.iter_records(kinds=["wake", "run_message"])), pool_id=pool_id
        )
    out["check"], out["check_error"] = judge("check()", db.check)
    out["refresh"], out["refresh_error"] = judge("refresh()", db.refresh)
    return out


def verify_around_damage(case: Case, built: Built, db: Any) -> None:
    """Records before and after the damage read back exactly; the snapshot just before it is the SDK's."""
    pool_id, seq = built.pool_id, built.seq
    history = db.pool(pool_id)
    rows = built.original[pool_id]
    before = history.records(upto=seq - 1)
    assert [r.cursor for r in before] == [s for s in sorted(rows) if s < seq]
    for record in before:
        assert record.problem is None and wire.dumps(record.payload) == rows[record.cursor]
    after = [r for r in history.records(after=seq) if r.cursor in rows]
    assert [r.cursor for r in after] == [s for s in sorted(rows) if s > seq]
    for record in after:
        if record.cursor != seq:
            assert record.problem is None and wire.dumps(record.payload) == rows[record.cursor]
    if seq > 1:
        expected = expected_snapshot(built, pool_id, seq - 1)
        if isinstance(expected, dict):
            assert history.snapshot(seq - 1).to_dict() == expected
        else:
            with pytest.raises(expected):
                history.snapshot(seq - 1)
    if seq <= history.head:
        if case.strict is None:
            expected = expected_snapshot(built, pool_id, seq)
            assert history.snapshot(seq).to_dict() == expected
        else:
            with pytest.raises(case.strict) as raised:
                history.snapshot(seq)
            assert raised.value.pool_id == pool_id
            assert str(built.path) in str(raised.value)
        if history.index.fold.config is None:
            with pytest.raises(poolscope.PoolNotOpenedError):
                history.snapshot(history.head, strict=False)
        else:
            lenient = history.snapshot(history.head, strict=False)
            assert lenient.cursor == history.head
            lenient.to_json()


def records_df_from_the_file(built: Built, judge: Judge, monkeypatch) -> list:
    """``records_df()`` of a database whose pools are not loaded (decoded straight
    from the file), in one process and with a forked helper for every pool."""
    frames = []
    default = load_module.PARALLEL_THRESHOLD
    for threshold in (0, 1):
        monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", threshold)
        frame, error = judge(
            "records_df() from the file", lambda: poolscope.open(built.path, timeout=TIMEOUT).records_df()
        )
        frames.append(frame if error is None else error)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", default)
    return frames


def verify_records_df(case: Case, built: Built, judge: Judge, db: Any, scanned: list) -> None:
    """records_df from the file equals the one from the loaded pools; a damaged
    record is a row of kind 'damaged' with its problem."""
    indexed, error = judge("records_df() from the index", db.records_df)
    for frame in scanned:
        if error is not None or isinstance(frame, BaseException):
            assert type(frame) is type(error), (frame, error)
            continue
        pd.testing.assert_frame_equal(frame, indexed)
    if error is None and case.at in RECORD_CODES:
        row = indexed[(indexed["pool_id"] == built.pool_id) & (indexed["seq"] == built.seq)]
        assert row["kind"].tolist() == ["damaged"] and row["problem"].notna().all(), row
        assert indexed["problem"].notna().sum() == sum(len(h.index.problems) for h in db.pools())


def verify_anomalies(case: Case, built: Built, anomalies: list) -> None:
    for anomaly in anomalies:
        assert anomaly.code in CODES and anomaly.severity == CODES[anomaly.code][0]
        assert anomaly.message
    assert {a.code for a in anomalies} == set(case.codes), [str(a) for a in anomalies]
    if case.at is not None:
        seq = built.anomaly_seq if built.anomaly_seq is not None else built.seq
        assert any(a.code == case.at and a.pool_id == built.pool_id and a.seq == seq for a in anomalies), [
            str(a) for a in anomalies
        ]


def verify_cli(case: Case, built: Built, judge: Judge, opened: bool) -> None:
    path = str(built.path)
    errors = any(CODES[c][0] == "error" for c in case.codes)
    pool_id = built.pool_id or (sorted(built.original)[0] if built.original else "pool.none")
    expect_exit = 2 if (not opened or not built.path.exists()) else None
    normal = opened and case.after_open is None

    info = run_cli(judge, ["info", path, "--json"])
    if expect_exit is not None:
        assert info.exit_code == expect_exit
    elif "unreadable" in case.codes:
        assert info.exit_code == 2
    elif normal:
        assert info.exit_code == 0
        shown = json.loads(info.stdout)
        assert [p["pool_id"] for p in shown["pools"]] == sorted(p for p in built.original if p is not None)
    run_cli(judge, ["info", path])
    records = run_cli(judge, ["records", path, "--pool", pool_id])
    if expect_exit is not None:
        assert records.exit_code == expect_exit
    elif case.at in RECORD_CODES and normal:
        assert records.exit_code == 1
        assert f"seq {built.seq}" in records.stderr and path in records.stderr
        lines = [json.loads(line) for line in records.stdout.splitlines()]
        assert built.seq not in [line["cursor"]["sequence"] for line in lines]
        assert len(lines) == len(built.original[pool_id]) - 1
    args = ["snapshot", path, "--pool", pool_id]
    run_cli(judge, args)
    run_cli(judge, args + ["--lenient"])
    if built.seq:
        run_cli(judge, args + ["--cursor", str(max(built.seq - 1, 0))])
    doctor = run_cli(judge, ["doctor", path])
    doctor_json = run_cli(judge, ["doctor", path, "--json"])
    if expect_exit is not None:
        assert doctor.exit_code == doctor_json.exit_code == expect_exit
    elif normal:
        assert doctor.exit_code == doctor_json.exit_code == (1 if errors else 0)
        reported = json.loads(doctor_json.stdout)
        assert {a["code"] for a in reported["anomalies"]} == set(case.codes)
        assert reported["counts"]["error"] == sum(a["severity"] == "error" for a in reported["anomalies"])


def run_case(case: Case, tmp_path: Path, small_db: Path, oracle: Path | None, monkeypatch) -> None:
    if case.hold is not None:
        # the CLI has no --timeout: give its opens the same bounded wait as the API calls
        monkeypatch.setitem(poolscope.history.open.__kwdefaults__, "timeout", TIMEOUT)
    folder_ = tmp_path / "case"
    folder_.mkdir()
    built = base_copy(case, folder_, small_db, oracle)
    case.damage(built)
    if case.opens is None:
        try:
            built.current = rows_of(built.path)
        except sqlite3.DatabaseError:  # unreadable for plain sqlite3 too
            built.current = {}
    judge = Judge(built, case)
    hold = case.hold(built.path) if case.hold is not None and not case.hold_after_open else None
    with hold if hold is not None else _nothing():
        names, state = listing(folder_)
        db, error = judge("open()", lambda: poolscope.open(built.path, timeout=TIMEOUT))
        if case.opens is not None:
            assert isinstance(error, case.opens), f"open() gave {error!r}, expected {case.opens.__name__}"
            verify_cli(case, built, judge, opened=False)
            assert not (case.name == "missing path" and built.path.exists()), "poolscope created the file"
        else:
            assert error is None, f"open() failed: {error!r}"
            if case.hold is not None and case.hold_after_open:
                for history in db.pools():
                    history.records()
                with case.hold(built.path):
                    names, state = listing(folder_)
                    result = exercise(case, built, judge, db, light=True)
                    allowed = (poolscope.DatabaseLockedError, poolscope.RecordError, poolscope.ReplayError)
                    assert all(isinstance(e, allowed) for _, e in judge.errors), judge.errors
                    assert isinstance(result["check_error"], poolscope.DatabaseLockedError)
                    assert isinstance(result["refresh_error"], poolscope.DatabaseLockedError)
                    assert listing(folder_) == (names, state)
                # once the lock is gone, the same objects answer again
                judge.errors.clear()
                names, state = listing(folder_)
                result = exercise(case, built, judge, db)
                verify_anomalies(case, built, result["check"])
                verify_around_damage(case, built, db)
            elif case.after_open is not None:
                loaded = {h.pool_id: [r.to_json() for r in h.records()] for h in db.pools()}
                case.after_open(built)
                names, state = listing(folder_)
                with pytest.raises(poolscope.DatabaseChangedError) as changed:
                    db.refresh()
                assert str(built.path) in str(changed.value)
                for pool_id, texts in loaded.items():
                    history = db.pool(pool_id)
                    assert [r.to_json() for r in history.records()] == texts  # already loaded data stays usable
                    assert history.snapshot().to_dict() == expected_snapshot(built, pool_id, history.head)
                result = exercise(case, built, judge, db)
                assert isinstance(result["refresh_error"], poolscope.DatabaseChangedError)
                assert result["check"] is not None and not [a for a in result["check"] if a.severity == "error"]
            else:
                scanned = records_df_from_the_file(built, judge, monkeypatch)
                result = exercise(case, built, judge, db)
                assert result["check_error"] is None and result["refresh_error"] is None
                verify_anomalies(case, built, result["check"])
                if built.seq is not None:
                    verify_around_damage(case, built, db)
                verify_records_df(case, built, judge, db, scanned)
            verify_cli(case, built, judge, opened=True)
            db.close()
        assert listing(folder_) == (names, state), "poolscope changed the folder"


@contextmanager
def _nothing() -> Iterator[None]:
    yield


#: Cases that take seconds (waiting out a lock, a 20 MB payload): marked slow.
SLOW_CASES = {
    "locked by another process (rollback journal)",
    "locked by another process after open",
    "locked in exclusive WAL mode",
    "a 20 MB payload",
}


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.name in SLOW_CASES else []) for c in cases]


GENERATED = [c for c in CASES if c.base != "oracle"]
#: a hang fails the test (the whole run stops with every thread's stack) instead of stalling CI
pytestmark = pytest.mark.timeout(600, method="thread")
ORACLE_BASED = [c for c in CASES if c.base == "oracle"]


def test_the_catalogue_is_big_enough():
    assert len(CASES) >= 20
    assert {c.name for c in CASES} >= SLOW_CASES
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(CODES[c.at] for c in CASES if c.at)


@pytest.mark.parametrize("case", _params(GENERATED))
def test_damaged_database(case, tmp_path, small_db, monkeypatch):
    run_case(case, tmp_path, small_db, None, monkeypatch)


@pytest.mark.parametrize("case", _params(ORACLE_BASED))
def test_damaged_oracle_database(case, tmp_path, small_db, oracle, monkeypatch):
    run_case(case, tmp_path, small_db, oracle, monkeypatch)


def test_pool_ids_the_sdk_refuses_are_read_and_reported(tmp_path, small_db, open_db):
    """Text pool ids no SDK PoolId takes (empty, over 512 bytes, a control character): no SDK call
    can name such a pool, so doctor reports each (``bad_pool_id``, an error, with the SDK's reason);
    poolscope still lists and reads them, as the rows are."""
    path = Path(shutil.copy(small_db, tmp_path / "pool.db"))
    conn = sqlite3.connect(path)
    real = conn.execute("SELECT pool_id FROM agent_pool_records ORDER BY pool_id LIMIT 1").fetchone()[0]
    odd = {"": "identifier is empty", "p\nnl": "control character at byte 1", "p" * 600: "length 600 exceeds max 512"}
    for pool_id in odd:
        conn.execute(
            "INSERT INTO agent_pool_records SELECT ?, seq, kind, payload_json FROM agent_pool_records "
            "WHERE pool_id = ? AND seq <= 5",
            (pool_id, real),
        )
    conn.commit()
    conn.close()
    db = open_db(path, cache=False)
    found = {a.pool_id: a for a in db.check() if a.code == "bad_pool_id"}
    assert set(found) == set(odd)
    for pool_id, reason in odd.items():
        assert found[pool_id].severity == "error" and reason in found[pool_id].message
        assert db.pool(pool_id).snapshot(5).to_dict() == db.pool(real).snapshot(5).to_dict() | {"pool_id": pool_id}
    assert (poolscope.fleet([str(path)], workers=1).check()["code"] == "bad_pool_id").sum() == len(odd)


def test_rows_no_pool_can_read_are_in_no_listing_and_reported(tmp_path, small_db, open_db):
    """A TEXT pool_id that is not UTF-8, and a BLOB with a real pool's bytes: the SDK looks a pool up
    by its UTF-8 ``String`` id, which neither equals.  No listing shows them as a pool (the text one
    used to be listed as ``'p\\ufffd'`` with head 0, and made the Dask path fail the whole database);
    doctor reports each id as ``bad_pool_id``; the real pool is read as before."""
    built = Built(tmp_path / "pool.db")
    shutil.copy(small_db, built.path)
    built.original = rows_of(built.path)
    undecodable_pool_ids(built)
    pools = sorted(built.original)
    db = open_db(built.path, cache=False)
    assert db.pool_ids == pools
    assert db.heads() == {p: max(built.original[p]) for p in pools}
    assert db.summary()["pool_id"].tolist() == pools
    assert set(db.records_df()["pool_id"]) == set(pools)
    found = [a for a in db.check() if a.code == "bad_pool_id"]
    assert sorted(a.message.split(":")[0].split(",")[0] for a in found) == [
        "a pool_id is TEXT that is not UTF-8 (b'p\\xff')",
        "a row's pool_id is BLOB",
    ]
    fleet = poolscope.fleet([str(built.path)], workers=1)
    assert fleet.pools["pool_id"].tolist() == pools
    assert (fleet.check()["code"] == "bad_pool_id").sum() == 2
    assert not fleet.errors
    from poolscope.fleet.dask import plan

    assert sorted({part.pool_id for part in plan(fleet, "records_df", None, 10**9)}) == pools
    assert not fleet.errors
