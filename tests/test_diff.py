"""pool.diff(a, b) agrees with the difference of the SDK's two snapshots."""

from __future__ import annotations

import json
import random

import pytest
from helpers import raw_snapshot_lines

import poolscope


def _sdk(oracle):
    snaps = {}
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        snaps[(pool_id, cursor)] = json.loads(text)
    return snaps


def _state(snap):
    if snap is None:
        return {}, {}, {}
    members = {m["run_id"]: m for m in snap["members"]}
    messages = {m["message"]["message_id"]: m["receipt"]["status"] for m in snap.get("messages", [])}
    wakes = {w["condition"]["condition_id"]: w["registration"]["status"] for w in snap.get("wakes", [])}
    return members, messages, wakes


@pytest.mark.slow
def test_diffs_between_random_cursor_pairs_match_the_sdk(oracle):
    snaps = _sdk(oracle)
    db = poolscope.open(oracle / "pool.db")
    rng = random.Random(5)
    for pool_id in db.pool_ids:
        pool = db.pool(pool_id)
        for _ in range(60):
            a, b = rng.randint(0, pool.head), rng.randint(0, pool.head)
            ma, msa, wa = _state(snaps.get((pool_id, a)))
            mb, msb, wb = _state(snaps.get((pool_id, b)))
            d = pool.diff(a, b)
            assert [m["run_id"] for m in d.joined] == sorted(set(mb) - set(ma)), (pool_id, a, b)
            assert [m["run_id"] for m in d.left] == sorted(set(ma) - set(mb))
            assert sorted(m["run_id"] for m in d.updated) == sorted(k for k in set(ma) & set(mb) if ma[k] != mb[k])
            assert {c.id: c.after for c in d.messages_added} == {k: v for k, v in msb.items() if k not in msa}
            assert {c.id: (c.before, c.after) for c in d.messages_changed} == {
                k: (msa[k], v) for k, v in msb.items() if k in msa and msa[k] != v
            }
            assert {c.id for c in d.messages_removed} == set(msa) - set(msb)
            assert {c.id: c.after for c in d.wakes_added} == {k: v for k, v in wb.items() if k not in wa}
            assert {c.id: (c.before, c.after) for c in d.wakes_changed} == {
                k: (wa[k], v) for k, v in wb.items() if k in wa and wa[k] != v
            }
            assert {c.id for c in d.wakes_removed} == set(wa) - set(wb)
            assert bool(d) == (
                ma != mb or msa != msb or wa != wb or d.created_changed or bool(d.topics_added or d.topics_removed)
            )


def test_diff_renders_and_serializes(sample_copy):
    pool = poolscope.open(sample_copy).pool("pool.alpha")
    d = pool.diff(10, 60)
    data = d.to_dict()
    assert data["a"] == 10 and data["b"] == 60
    assert len(data["messages"]["added"]) == len(d.messages_added) > 0
    html = d._repr_html_()
    assert "cursor 10 → 60" in html and d.messages_added[0].id in html
    assert not pool.diff(30, 30)
    assert pool.diff(30, 30).summary() == "no change"


def test_diff_rejects_cursors_out_of_range(sample_copy):
    pool = poolscope.open(sample_copy).pool("pool.alpha")
    with pytest.raises(poolscope.CursorError, match="outside"):
        pool.diff(0, pool.head + 1)
