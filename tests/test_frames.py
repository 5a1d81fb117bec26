"""Frames agree with the SDK's own snapshots at every cursor, and have the documented dtypes."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from helpers import load_jsonl, raw_snapshot_lines

import poolscope
from poolscope import load as load_module
from poolscope.frames import COLUMNS, describe_columns


def _sdk_snapshots(oracle):
    return [(pool_id, cursor, json.loads(text)) for pool_id, cursor, text in raw_snapshot_lines(oracle)]


def _lists(series):
    return [None if v is None or v is pd.NA else list(v) for v in series]


@pytest.mark.slow
def test_members_df_agrees_with_the_sdk_at_every_cursor(oracle):
    db = poolscope.open(oracle / "pool.db")
    for pool_id, cursor, snap in _sdk_snapshots(oracle):
        frame = db.pool(pool_id).members_df(upto=cursor)
        current = frame[frame["left_at"].isna()].sort_values("run_id", key=lambda s: s.astype(str))
        expected = snap["members"]
        assert current["run_id"].astype(str).tolist() == [m["run_id"] for m in expected], (pool_id, cursor)
        assert current["agent_id"].astype(str).tolist() == [m["agent_id"] for m in expected]
        assert _lists(current["topics"]) == [m.get("topics", []) for m in expected]
        assert (frame["joined_at"] <= cursor).all()
        assert (frame["left_at"].dropna() <= cursor).all()


@pytest.mark.slow
def test_messages_and_wakes_df_agree_with_the_sdk_at_every_cursor(oracle):
    db = poolscope.open(oracle / "pool.db")
    for pool_id, cursor, snap in _sdk_snapshots(oracle):
        pool = db.pool(pool_id)
        messages = pool.messages_df(upto=cursor)
        got = {
            m: (str(status), list(recipients), str(sender))
            for m, status, recipients, sender in zip(
                messages["message_id"], messages["status"], messages["recipients"], messages["sender"]
            )
        }
        expected = {
            m["message"]["message_id"]: (
                m["receipt"]["status"],
                m["receipt"].get("delivered_to", []),
                m["message"]["from"],
            )
            for m in snap.get("messages", [])
        }
        assert got == expected, (pool_id, cursor)
        assert (messages["last_seq"] <= cursor).all()
        wakes = pool.wakes_df(upto=cursor)
        got_wakes = {w: (str(s), str(r)) for w, s, r in zip(wakes["condition_id"], wakes["status"], wakes["run_id"])}
        expected_wakes = {
            w["condition"]["condition_id"]: (w["registration"]["status"], w["condition"]["run_id"])
            for w in snap.get("wakes", [])
        }
        assert got_wakes == expected_wakes, (pool_id, cursor)


def test_records_df_flattens_every_record(oracle):
    expected = load_jsonl(oracle / "records.jsonl")
    frame = poolscope.open(oracle / "pool.db").records_df()
    assert len(frame) == len(expected)
    for row, record in zip(frame.itertuples(index=False), expected):
        payload = record["payload"]
        assert row.pool_id == record["pool_id"]
        assert row.seq == record["cursor"]["sequence"]
        assert row.kind == payload["type"]
        if payload["type"] == "run_message":
            message, receipt = payload["stored"]["message"], payload["stored"]["receipt"]
            assert row.message_id == message["message_id"]
            assert row.message_status == receipt["status"]
            assert row.sender == message["from"]
            assert row.target_type == message["to"]["target"]["type"]
            assert list(row.delivered_to) == receipt.get("delivered_to", [])
            assert row.idempotency_key == message["idempotency_key"]
            assert (row.reply_to if row.reply_to is not pd.NA else None) == message.get("reply_to")
        elif payload["type"] == "wake":
            stored = payload["stored"]
            assert row.condition_id == stored["condition"]["condition_id"]
            assert row.wake_status == stored["registration"]["status"]
            assert row.run_id == stored["condition"]["run_id"]
        elif payload["type"] in ("member_joined", "member_left"):
            assert row.run_id == payload["member"]["run_id"]
            assert row.agent_id == payload["member"]["agent_id"]
            assert row.message_id is pd.NA


def test_status_cursors_are_the_first_time_each_status_was_reached(oracle):
    expected: dict = {}
    for record in load_jsonl(oracle / "records.jsonl"):
        payload = record["payload"]
        if payload["type"] == "run_message":
            key = (record["pool_id"], payload["stored"]["message"]["message_id"])
            expected.setdefault(key, {}).setdefault(
                payload["stored"]["receipt"]["status"], record["cursor"]["sequence"]
            )
    frame = poolscope.open(oracle / "pool.db").messages_df()
    for row in frame.itertuples(index=False):
        reached = expected[(row.pool_id, row.message_id)]
        for status in poolscope.wire.MESSAGE_STATUSES:
            value = getattr(row, f"{status}_at")
            assert (None if value is pd.NA else value) == reached.get(status)
        assert row.records == sum(1 for _ in reached) or row.records >= len(reached)


def _dtype_kind(dtype) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.ArrowDtype):
        return "list<string>" if "list" in str(dtype.pyarrow_dtype) else "string"
    if str(dtype) == "Int64":
        return "Int64"
    return str(dtype)


@pytest.fixture(scope="module")
def no_pool_db(tmp_path_factory):
    """The SDK's tables and not one record (a host whose store is new)."""
    path = tmp_path_factory.mktemp("empty") / "empty.db"
    poolscope.PoolStore(path).close()
    return path


@pytest.mark.parametrize("which", ["pools", "no pool"])
@pytest.mark.parametrize("name", list(COLUMNS))
def test_frames_have_the_documented_columns_and_dtypes(name, which, small_db, no_pool_db):
    """A database with no pool included: its frames were all ``object`` columns."""
    db = poolscope.open(small_db if which == "pools" else no_pool_db)
    frame = getattr(db, name)()
    assert (len(frame) == 0) == (which == "no pool")
    assert list(frame.columns) == list(COLUMNS[name])
    for column, (dtype, _meaning) in COLUMNS[name].items():
        assert _dtype_kind(frame[column].dtype) == dtype, (name, column, frame[column].dtype)
    assert not any(frame[c].dtype == object for c in frame.columns)
    assert set(describe_columns(name)["column"]) == set(COLUMNS[name])


def test_describe_columns_is_a_top_level_function_that_describes_what_the_frames_have(small_db):
    """README documents ``poolscope.describe_columns()``: it exists there, and every row names a real column."""
    assert "describe_columns" in poolscope.__all__ and poolscope.describe_columns is describe_columns
    every = poolscope.describe_columns()
    assert list(every.columns) == ["frame", "column", "dtype", "meaning"]
    assert sorted(set(every["frame"])) == sorted(COLUMNS)
    db = poolscope.open(small_db)
    for name, rows in every.groupby("frame"):
        frame = getattr(db, name)()
        assert list(rows["column"]) == list(frame.columns)
        assert rows["meaning"].str.len().min() > 0
    wakes = poolscope.describe_columns("wakes_df")
    assert set(wakes["frame"]) == {"wakes_df"} and len(wakes) == len(COLUMNS["wakes_df"])


def test_database_frames_stack_every_pool(small_db):
    db = poolscope.open(small_db)
    frame = db.records_df()
    assert list(frame["pool_id"].cat.categories) == db.pool_ids
    assert frame.groupby("pool_id", observed=True).size().to_dict() == {p: len(db.pool(p)) for p in db.pool_ids}
    upto = poolscope.records_df(db, upto=50)
    assert (upto["seq"] <= 50).all() and len(upto) == 50 * len(db.pool_ids)


def test_a_run_that_leaves_and_rejoins_has_two_rows(tmp_path):
    store = poolscope.PoolStore(tmp_path / "r.db")
    store.open_pool("p", {})
    store.record_pool_created("p")
    store.join_member("p", {"run_id": "run.a", "agent_id": "agent.x", "topics": ["t1"]})
    store.join_member("p", {"run_id": "run.a", "agent_id": "agent.x", "topics": ["t2"]})  # update, same interval
    store.leave_member("p", "run.a")
    store.join_member("p", {"run_id": "run.a", "agent_id": "agent.x"})
    frame = poolscope.open(tmp_path / "r.db").pool("p").members_df()
    assert frame["joined_at"].tolist() == [3, 6]
    assert frame["updated_at"].tolist() == [4, 6]
    assert frame["left_at"].tolist() == [5, pd.NA]
    assert frame["joins"].tolist() == [2, 1]
    assert _lists(frame["topics"]) == [["t2"], []]
    earlier = poolscope.open(tmp_path / "r.db").pool("p").members_df(upto=3)
    assert _lists(earlier["topics"]) == [["t1"]] and earlier["left_at"].isna().all()


def _loaded(path):
    db = poolscope.open(path)
    for pool_id in db.pool_ids:
        db.pool(pool_id).load()  # loaded: its frames come from the index
    return db


@pytest.mark.parametrize(
    "threshold", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["one process", "forked helper"]
)
def test_records_df_from_the_file_equals_records_df_from_the_index(small_db, oracle, monkeypatch, threshold):
    """A database's records_df decodes pools not loaded straight from the file
    (a large pool with a forked helper); loaded pools come from their index."""
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", threshold)
    read = []
    original = load_module._OtherHalf.read_tables
    monkeypatch.setattr(load_module._OtherHalf, "read_tables", lambda self: read.append(1) or original(self))
    for path in (small_db, oracle / "pool.db"):
        for upto in (None, 1, 37):
            scanned = poolscope.open(path).records_df(upto=upto)
            indexed = _loaded(path).records_df(upto=upto)
            pd.testing.assert_frame_equal(scanned, indexed)
            assert len(scanned) == sum(min(len(h), upto or len(h)) for h in _loaded(path).pools())
    # with the threshold at 1 every pool's second half came from the helper, not from a fallback
    assert bool(read) == bool(threshold)


def test_a_failed_helper_is_replaced_by_the_parent(small_db, monkeypatch):
    def broken(path, pool_id, split, sender, upper, collect, out):
        sender.send_bytes(__import__("pickle").dumps(("error", "boom")))

    expected = poolscope.open(small_db).records_df()
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(load_module, "_columns_in_child", broken)
    pd.testing.assert_frame_equal(poolscope.open(small_db).records_df(), expected)


# a hostile input (issue 10): a hang (or the 88 s drawing of long ids coming back) fails instead of stalling
@pytest.mark.timeout(30, method="thread")
def test_records_df_keeps_a_record_with_an_id_of_an_unexpected_json_type_as_damaged(sample_copy):
    """The SDK only writes strings there, and its serde refuses anything else: a
    hand-edited file with an object as agent_id reads, that record as a damaged
    one naming the field (issue 10), the same from the file and from the index."""
    conn = sqlite3.connect(sample_copy)
    pool_id, seq, payload = conn.execute(
        "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = 'member_joined' LIMIT 1"
    ).fetchone()
    edited = json.loads(payload)
    edited["member"]["agent_id"] = {"n": 5}
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (json.dumps(edited), pool_id, seq),
    )
    conn.commit()
    conn.close()
    scanned = poolscope.open(sample_copy).records_df()
    row = scanned[(scanned["pool_id"] == pool_id) & (scanned["seq"] == seq)]
    assert row["kind"].astype(str).tolist() == ["damaged"]
    assert "member.agent_id" in row["problem"].iloc[0] and "not a string" in row["problem"].iloc[0]
    pd.testing.assert_frame_equal(scanned, _loaded(sample_copy).records_df())


@pytest.mark.parametrize("how", ["pool load", "records_df from the file"])
def test_large_loads_show_a_progress_bar_unless_asked_not_to(small_db, monkeypatch, capsys, how):
    monkeypatch.setattr(load_module, "PROGRESS_THRESHOLD", 100)
    pool_id = poolscope.open(small_db).pool_ids[0]

    def run(progress):
        # no index cache: a pool restored from it decodes nothing and shows no bar
        db = poolscope.open(small_db, progress=progress, cache=False)
        return db.pool(pool_id).index if how == "pool load" else db.records_df()

    run(None)
    shown = capsys.readouterr().err
    assert f"loading {pool_id}" in shown and "rec" in shown
    run(False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(load_module, "PROGRESS_THRESHOLD", 10**9)
    run(None)
    assert capsys.readouterr().err == ""
