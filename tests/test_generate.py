"""Generated histories follow the SDK's semantics; the index agrees with a naive replay."""

from __future__ import annotations

import random
from collections import defaultdict

from reference import reference_snapshot

import poolscope
from poolscope import wire
from poolscope.generate import generate


def _records(db, pool_id):
    return [r.to_dict() for r in db.pool(pool_id).records()]


def test_snapshots_agree_with_a_naive_replay_at_random_cursors(small_db):
    db = poolscope.open(small_db)
    rng = random.Random(3)
    for pool_id in db.pool_ids:
        records = _records(db, pool_id)
        pool = db.pool(pool_id)
        for cursor in [1, 2, pool.head] + [rng.randint(1, pool.head) for _ in range(40)]:
            assert pool.snapshot(cursor).to_dict() == reference_snapshot(pool_id, records, cursor)


def test_generated_histories_follow_the_sdk(small_db):
    db = poolscope.open(small_db)
    assert len(db.pool_ids) == 3
    for pool_id in db.pool_ids:
        records = _records(db, pool_id)
        kinds = [r["payload"]["type"] for r in records]
        assert kinds[0] == "pool_opened" and kinds.count("pool_opened") == 1
        assert kinds.count("pool_created") == 1
        assert kinds.index("pool_created") < kinds.index("member_joined")
        statuses = defaultdict(list)
        keys = {}
        for r in records:
            p = r["payload"]
            if p["type"] == "run_message":
                m = p["stored"]["message"]
                statuses[m["message_id"]].append(p["stored"]["receipt"]["status"])
                # one idempotency key, one message: re-sends were deduped
                assert keys.setdefault(m["idempotency_key"], m["message_id"]) == m["message_id"]
            if p["type"] == "wake":
                compiled = p["stored"]["compiled_filter"]
                assert wire.compile_filter(compiled["criteria"]) == compiled
        for sequence in statuses.values():
            first = sequence[0]
            assert first in ("accepted", "failed", "expired")
            if first == "accepted":
                assert sequence[1] == "delivered"
                assert all(s in ("responded", "timed_out", "cancelled") for s in sequence[2:])
            else:
                assert len(sequence) == 1
        seen = {s for seq in statuses.values() for s in seq}
        assert {"accepted", "delivered", "failed", "responded"} <= seen


def test_generation_is_deterministic_and_sized(tmp_path):
    a = generate(tmp_path / "a.db", pools=2, records=150, seed=4)
    b = generate(tmp_path / "b.db", pools=2, records=150, seed=4)
    assert a["records"] == b["records"]
    ra = [r.to_json() for p in poolscope.open(tmp_path / "a.db").pools() for r in p.records()]
    rb = [r.to_json() for p in poolscope.open(tmp_path / "b.db").pools() for r in p.records()]
    assert ra == rb
    for pool in poolscope.open(tmp_path / "a.db").pools():
        assert 150 <= len(pool) <= 152


def test_members_cap_keeps_a_steady_pool(tmp_path):
    generate(tmp_path / "capped.db", pools=1, records=600, seed=2, members_cap=8)
    pool = poolscope.open(tmp_path / "capped.db").pools().__next__()
    frame = pool.members_df()
    for cursor in range(1, pool.head + 1, 25):
        assert len(pool.snapshot(cursor).members) <= 9
    assert (frame["left_at"].notna()).sum() > 0


def test_numpy_integers_are_counts_and_other_values_are_refused(tmp_path):
    import numpy as np
    import pytest

    from poolscope.errors import InvalidInputError

    a = generate(tmp_path / "a.db", pools=np.int64(2), records=np.int32(60), seed=np.uint8(4), members_cap=np.int16(5))
    b = generate(tmp_path / "b.db", pools=2, records=60, seed=4, members_cap=5)
    assert a["records"] == b["records"]
    ra = [r.to_json() for p in poolscope.open(tmp_path / "a.db", cache=False).pools() for r in p.records()]
    rb = [r.to_json() for p in poolscope.open(tmp_path / "b.db", cache=False).pools() for r in p.records()]
    assert ra == rb
    for bad in (
        {"pools": 2.0},
        {"pools": True},
        {"records": "60"},
        {"records": 0},
        {"members_cap": 0},
        {"members_cap": np.array([1, 2])},
        {"seed": 1.5},
        {"batch": -1},
    ):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            generate(tmp_path / "bad.db", **{"pools": 1, "records": 10, **bad})
    assert not (tmp_path / "bad.db").exists()  # refused before anything is written


def test_generate_says_how_many_records_it_wrote(tmp_path):
    """Run again on its own output (same seed, same pools): every record is already there and
    nothing is written; it said "wrote 50 records" all the same."""
    import hashlib
    import sqlite3

    from click.testing import CliRunner

    from poolscope.cli import cli

    path = tmp_path / "g.db"
    first = generate(path, pools=1, records=50, seed=9)
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM agent_pool_records").fetchone()[0]
    assert first["written"] == first["records"] == rows
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["generate", str(path), "--pools", "1", "--records", "50", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote 0 records to {path} ({rows} in its 1 pools)")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
