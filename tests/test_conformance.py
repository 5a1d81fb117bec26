"""poolscope against the real SDK's own output (../shared/oracle/*)."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict

import pytest
from helpers import load_jsonl, raw_snapshot_lines, tree_state

import poolscope


def test_every_record_matches_the_sdk_serialization(oracle):
    expected = load_jsonl(oracle / "records.jsonl")
    raw_lines = (oracle / "records.jsonl").read_text(encoding="utf-8").splitlines()
    db = poolscope.open(oracle / "pool.db")
    got = [r for pool_id in db.pool_ids for r in db.pool(pool_id).records()]
    assert [r.to_dict() for r in got] == expected
    assert [r.to_json() for r in got] == raw_lines
    assert db.pool_ids == sorted({r["pool_id"] for r in expected})


def test_heads_and_kinds_agree_with_the_log(oracle):
    expected = load_jsonl(oracle / "records.jsonl")
    db = poolscope.open(oracle / "pool.db")
    by_pool = defaultdict(list)
    for record in expected:
        by_pool[record["pool_id"]].append(record)
    for pool_id, records in by_pool.items():
        history = db.pool(pool_id)
        assert history.head == records[-1]["cursor"]["sequence"]
        assert [r.kind for r in history.records()] == [r["payload"]["type"] for r in records]
        middle = records[len(records) // 2]["cursor"]["sequence"]
        assert [r.cursor for r in history.records(after=middle)] == [
            r["cursor"]["sequence"] for r in records if r["cursor"]["sequence"] > middle
        ]
        assert [r.cursor for r in history.records(upto=middle)] == [
            r["cursor"]["sequence"] for r in records if r["cursor"]["sequence"] <= middle
        ]


def test_payloads_by_seq_are_the_sdk_records_however_the_seqs_are_given(oracle):
    """``payloads`` takes the seqs a frame gives (numpy integers) as it takes ints."""
    import numpy as np

    expected = load_jsonl(oracle / "records.jsonl")
    db = poolscope.open(oracle / "pool.db")
    try:
        for pool_id in db.pool_ids:
            history = db.pool(pool_id)
            truth = {r["cursor"]["sequence"]: r["payload"] for r in expected if r["pool_id"] == pool_id}
            seqs = history.records_df()["seq"].to_numpy()
            assert seqs.dtype.kind == "i" and len(seqs) == len(truth)
            assert history.payloads(seqs) == truth
            some = sorted(truth)[:: max(1, len(truth) // 7)]
            for kind in (np.int64, np.uint64, np.int32, int):
                assert history.payloads([kind(s) for s in some]) == {s: truth[s] for s in some}
    finally:
        db.close()


def test_tables_and_columns_named_in_another_case_read_as_the_sdk_reads_them(oracle, tmp_path):
    """SQLite's names are case-blind (ASCII letters): the SDK's own queries read a table
    ``Agent_Pool_Records(POOL_ID, Seq, KIND, Payload_Json)``, and so does poolscope."""
    path = tmp_path / "cased.db"
    source = sqlite3.connect(f"file:{oracle / 'pool.db'}?immutable=1", uri=True)
    rows = source.execute("SELECT pool_id, seq, kind, payload_json FROM agent_pool_records").fetchall()
    events = source.execute("SELECT pool_id, seq FROM agent_pool_event_seq").fetchall()
    source.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE Agent_Pool_Records (POOL_ID TEXT NOT NULL, Seq INTEGER NOT NULL, KIND TEXT NOT NULL, "
        "Payload_Json TEXT NOT NULL, PRIMARY KEY (POOL_ID, Seq));"
        "CREATE TABLE AGENT_POOL_EVENT_SEQ (Pool_Id TEXT PRIMARY KEY, SEQ INTEGER NOT NULL);"
    )
    conn.executemany("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO agent_pool_event_seq VALUES (?, ?)", events)
    conn.commit()
    conn.close()
    db = poolscope.open(path, cache=False)
    try:
        assert db.check() == []
        for pool_id, cursor, text in raw_snapshot_lines(oracle):
            assert db.pool(pool_id).snapshot(cursor).to_json() == text
    finally:
        db.close()


def test_every_snapshot_is_byte_identical_to_the_sdk(oracle):
    db = poolscope.open(oracle / "pool.db")
    count = 0
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        snap = db.pool(pool_id).snapshot(cursor)
        assert snap.to_json() == text, (pool_id, cursor)
        assert snap.to_dict() == json.loads(text)
        expected = json.loads(text)
        assert len(snap.members) == len(expected["members"])
        assert len(snap.messages) == len(expected.get("messages", []))
        assert len(snap.wakes) == len(expected.get("wakes", []))
        assert snap.cursor == cursor
        count += 1
    summary = json.loads((oracle / "summary.json").read_text()) if (oracle / "summary.json").exists() else None
    if summary is not None:
        assert count == summary["totals"]["records"]


def test_snapshot_at_head_is_the_default(oracle):
    db = poolscope.open(oracle / "pool.db")
    for history in db.pools():
        assert history.snapshot().to_json() == history.snapshot(history.head).to_json()


def test_opening_the_oracle_changes_nothing(oracle):
    before = tree_state(oracle)
    listing = sorted(p.name for p in oracle.iterdir())
    db = poolscope.open(oracle / "pool.db")
    for history in db.pools():
        history.snapshot().to_json()
        list(history.records())
    db.close()
    assert sorted(p.name for p in oracle.iterdir()) == listing
    assert tree_state(oracle) == before


def _sdk_rows(path):
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        records = conn.execute(
            "SELECT pool_id, seq, kind, payload_json FROM agent_pool_records ORDER BY rowid"
        ).fetchall()
        event_seq = conn.execute("SELECT pool_id, seq FROM agent_pool_event_seq ORDER BY pool_id").fetchall()
    finally:
        conn.close()
    return records, event_seq


def replay_through_store(store: poolscope.PoolStore, rows) -> None:
    """Call the store trait method that produced each SDK row, in the SDK's order."""
    for pool_id, _seq, kind, payload_json in rows:
        payload = json.loads(payload_json)
        if kind == "pool_opened":
            store.open_pool(pool_id, payload["config"])
            store.open_pool(pool_id, payload["config"])  # an equal config appends nothing
        elif kind == "pool_created":
            store.record_pool_created(pool_id)
        elif kind == "member_joined":
            store.join_member(pool_id, payload["member"])
        elif kind == "member_left":
            member, _ = store.leave_member(pool_id, payload["member"]["run_id"])
            assert member == payload["member"]
        elif kind == "run_message":
            stored = payload["stored"]
            store.record_message(pool_id, stored["message"], stored["receipt"])
        elif kind == "wake":
            store.record_wake(pool_id, **payload["stored"])
        else:  # pragma: no cover
            raise AssertionError(kind)


def test_pool_store_writes_rows_byte_identical_to_the_sdk(oracle, tmp_path):
    rows, event_seq = _sdk_rows(oracle / "pool.db")
    path = tmp_path / "replayed.db"
    with poolscope.PoolStore(path) as store:
        replay_through_store(store, rows)
        for pool_id, seq in event_seq:
            for _ in range(seq):
                store.next_event_sequence(pool_id)
    got_rows, got_event_seq = _sdk_rows(path)
    assert got_rows == rows
    assert got_event_seq == event_seq
    assert path.read_bytes()[18:20] == b"\x02\x02"  # WAL mode, like the SDK's file


def test_pool_store_snapshot_matches_the_sdk_at_every_step(oracle, tmp_path):
    rows, _ = _sdk_rows(oracle / "pool.db")
    expected = {(p, c): text for p, c, text in raw_snapshot_lines(oracle)}
    with poolscope.PoolStore(tmp_path / "step.db") as store:
        for row in rows:
            replay_through_store(store, [row])
            assert store.snapshot(row[0]).to_json() == expected[(row[0], row[1])]


def test_dedupe_lookups_match_the_log(oracle, tmp_path):
    rows, _ = _sdk_rows(oracle / "pool.db")
    with poolscope.PoolStore(tmp_path / "dedupe.db") as store:
        replay_through_store(store, rows)
        latest_receipt, latest_registration, latest_wake = {}, {}, {}
        for pool_id, _seq, kind, payload_json in rows:
            stored = json.loads(payload_json).get("stored")
            if kind == "run_message":
                latest_receipt[(pool_id, stored["message"]["idempotency_key"])] = stored["receipt"]
            elif kind == "wake":
                latest_registration[(pool_id, stored["condition"]["idempotency_key"])] = stored["registration"]
                latest_wake[(pool_id, stored["condition"]["condition_id"])] = stored
        for (pool_id, key), receipt in latest_receipt.items():
            assert store.message_receipt(pool_id, key) == receipt
        for (pool_id, key), registration in latest_registration.items():
            assert store.wake_registration(pool_id, key) == registration
        for (pool_id, condition_id), stored in latest_wake.items():
            assert store.wake(pool_id, condition_id) == stored
        pool_id = rows[0][0]
        assert store.message_receipt(pool_id, "idem.never.used") is None
        assert store.wake(pool_id, "wake.never.registered") is None


@pytest.mark.parametrize("field", ["filter_fingerprint", "filter_id"])
def test_compiled_filters_are_computed_like_the_sdk(oracle, field):
    from poolscope import wire

    for record in load_jsonl(oracle / "records.jsonl"):
        payload = record["payload"]
        if payload["type"] != "wake":
            continue
        compiled = payload["stored"]["compiled_filter"]
        assert wire.compile_filter(compiled["criteria"])[field] == compiled[field]


def _unlike_serde(payload: dict, seq: int) -> dict:
    """The same value as serde reads it, written otherwise: every object's keys in reverse order, an
    unknown field, ``null`` for options that are absent and ``[]`` for lists that are absent (serde
    reads each as the default and writes it back left out), the run address's refs (the SDK's
    DestinationRef and EntityRef) included."""

    def reverse(obj: dict) -> dict:
        return dict(reversed(list(obj.items())))

    out = dict(payload)
    kind = payload["type"]
    if kind == "run_message":
        message, receipt = dict(payload["stored"]["message"]), dict(payload["stored"]["receipt"])
        message.setdefault("reply_to", None)
        message.setdefault("expires_at_millis", None)
        message.setdefault("policy_refs", [])
        message["note_from_a_newer_sdk"] = {"x": [1, 2]}
        target = message["to"]["target"]
        destination = {
            "correlation": [],
            "redacted_summary": None,
            "note": {"from": "a newer sdk"},
            **message["to"]["destination_ref"],
        }
        related = [
            reverse({"source": None, "redacted_summary": None, "unknown": [seq], **ref})
            for ref in message["to"].get("related_refs", [])
        ]
        message["to"] = reverse(
            {
                **message["to"],
                "target": reverse(target),
                "destination_ref": reverse(destination),
                "related_refs": related,
            }
        )
        receipt.setdefault("delivered_to", [])
        receipt.setdefault("journal_cursor", None)
        out["stored"] = {"receipt": reverse(receipt), "message": reverse(message)}
    elif kind == "wake":
        stored = {name: reverse(dict(value)) for name, value in payload["stored"].items()}
        stored["registration"].setdefault("journal_cursor", None)
        stored["condition"]["unknown"] = seq
        out["stored"] = reverse(stored)
    elif kind in ("member_joined", "member_left"):
        member = dict(payload["member"])
        member.setdefault("topics", [])
        member.setdefault("policy_refs", [])
        out["member"] = reverse(member)
    return reverse(out)


def test_records_written_otherwise_read_back_as_the_sdk_writes_them(oracle, tmp_path, monkeypatch):
    """Records serde reads as the same values, stored in another form (key order, unknown fields, null
    options, empty lists, whitespace): the snapshots at every cursor and the records are still the
    SDK's bytes -- its store writes back what it read, in its own form (they were the stored dicts,
    echoed as they were)."""
    path = tmp_path / "otherwise.db"
    conn = sqlite3.connect(f"file:{oracle / 'pool.db'}?immutable=1", uri=True)
    conn.backup(target := sqlite3.connect(path))
    conn.close()
    rows = target.execute("SELECT pool_id, seq, payload_json FROM agent_pool_records").fetchall()
    for pool_id, seq, text in rows:
        written = json.dumps(_unlike_serde(json.loads(text), seq), indent=1 if seq % 3 == 0 else None)
        target.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (written, pool_id, seq)
        )
    target.commit()
    target.close()
    db = poolscope.open(path, cache=False)
    assert db.check() == []
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        assert db.pool(pool_id).snapshot(cursor).to_json() == text, (pool_id, cursor)
    raw_lines = (oracle / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert [r.to_json() for pool_id in db.pool_ids for r in db.pool(pool_id).records()] == raw_lines
    db.close()
    # the same from indexes saved to the cache and restored (which records need writing back is saved too)
    from poolscope import cache as cache_module

    monkeypatch.setenv("POOLSCOPE_CACHE_MIN_RECORDS", "0")
    saving = poolscope.open(path, cache=tmp_path / "cache")
    for pool_id in saving.pool_ids:
        saving.pool(pool_id).load()
    cache_module.wait()
    saving.close()
    restored = poolscope.open(path, cache=tmp_path / "cache")
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        history = restored.pool(pool_id)
        assert history.index.restored, history.db.cache.last_miss
        assert history.snapshot(cursor).to_json() == text, (pool_id, cursor)
    restored.close()
