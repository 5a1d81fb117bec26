"""Activity windows, the database summary, and export round-trips."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from helpers import load_jsonl

import poolscope
from poolscope.export import export


def test_activity_counts_every_record_and_transition(oracle):
    records = load_jsonl(oracle / "records.jsonl")
    db = poolscope.open(oracle / "pool.db")
    for pool in db.pools():
        frame = pool.activity(window=25)
        expected = Counter()
        for r in records:
            if r["pool_id"] != pool.pool_id:
                continue
            start = (r["cursor"]["sequence"] - 1) // 25 * 25 + 1
            p = r["payload"]
            expected[(start, "record", p["type"])] += 1
            if p["type"] == "run_message":
                expected[(start, "message", p["stored"]["receipt"]["status"])] += 1
            if p["type"] == "wake":
                expected[(start, "wake", p["stored"]["registration"]["status"])] += 1
        got = {(row.window_start, row.series, row.name): row.count for row in frame.itertuples(index=False)}
        assert got == dict(expected)
        assert (frame["window_end"] - frame["window_start"] == 24).all()


def test_summary_matches_the_sdk_final_snapshots(oracle):
    from helpers import raw_snapshot_lines

    final = {}
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        final[pool_id] = (cursor, json.loads(text))
    summary = poolscope.open(oracle / "pool.db").summary().set_index("pool_id")
    for pool_id, (head, snap) in final.items():
        row = summary.loc[pool_id]
        assert row["head"] == head
        assert row["members"] == len(snap["members"])
        assert row["messages"] == len(snap.get("messages", []))
        assert row["wakes"] == len(snap.get("wakes", []))
        statuses = Counter(m["receipt"]["status"] for m in snap.get("messages", []))
        for status in poolscope.wire.MESSAGE_STATUSES:
            assert row[f"messages_{status}"] == statuses.get(status, 0)
        wake_statuses = Counter(w["registration"]["status"] for w in snap.get("wakes", []))
        for status in poolscope.wire.WAKE_STATUSES:
            assert row[f"wakes_{status}"] == wake_statuses.get(status, 0)


def _comparable(frame: pd.DataFrame) -> list[list]:
    rows = []
    for row in frame.astype(object).itertuples(index=False):
        rows.append(
            [
                None
                if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v))
                else (list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
                for v in row
            ]
        )
    return rows


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_export_round_trips(small_db, tmp_path, fmt):
    db = poolscope.open(small_db)
    paths = export(db, tmp_path / "out", format=fmt)
    assert sorted(p.stem for p in paths) == ["members", "messages", "records", "summary", "wakes"]
    for name in ("records", "members", "messages", "wakes"):
        original = getattr(db, f"{name}_df")()
        path = tmp_path / "out" / f"{name}.{'jsonl' if fmt == 'json' else fmt}"
        if fmt == "parquet":
            back = pd.read_parquet(path)
            for column in original.columns:
                if isinstance(original[column].dtype, pd.CategoricalDtype):
                    assert isinstance(back[column].dtype, pd.CategoricalDtype), column
                if str(original[column].dtype) == "Int64":
                    assert str(back[column].dtype) == "Int64", column
        elif fmt == "csv":
            back = pd.read_csv(path, keep_default_na=False, na_values=[""])
            for column in original.columns:
                if "list" in str(original[column].dtype):
                    back[column] = [None if pd.isna(v) else json.loads(v) for v in back[column]]
        else:
            back = pd.read_json(path, lines=True, dtype=False)
        assert list(back.columns) == list(original.columns)
        assert len(back) == len(original)
        assert _comparable(back) == _comparable(original), name


def test_export_takes_one_pool_id_or_several_and_refuses_anything_else(small_db, tmp_path):
    """``pools`` goes through arguments.names_argument, as every other selection does: one id as a
    string is that pool (it was read as its characters: PoolNotFoundError for pool 'p'), a pool
    named twice is exported once, and a value that is no pool id is an InvalidInputError naming
    ``pools`` (``pools=5`` was a bare TypeError), refused before anything is written."""
    from poolscope.errors import InvalidInputError

    with poolscope.open(small_db) as db:
        expected = db.pool("pool.bravo").records_df()
        for pools, out in (("pool.bravo", "one"), (["pool.bravo", "pool.bravo"], "twice")):
            export(db, tmp_path / out, format="csv", pools=pools)
            summary = pd.read_csv(tmp_path / out / "summary.csv")
            records = pd.read_csv(tmp_path / out / "records.csv")
            assert list(summary["pool_id"]) == ["pool.bravo"]
            assert list(records["seq"]) == list(expected["seq"])
            assert set(records["pool_id"]) == {"pool.bravo"}
        for bad in (5, [5], ["pool.bravo", None], b"pool.bravo"):
            with pytest.raises(InvalidInputError, match=r"^pools must "):
                export(db, tmp_path / "bad", format="csv", pools=bad)
        assert not (tmp_path / "bad").exists()


def test_snapshot_json_export_is_the_sdk_json(small_db, tmp_path):
    snap = poolscope.open(small_db).pool("pool.alpha").snapshot(100)
    path = tmp_path / "snap.json"
    path.write_text(snap.to_json(), encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == snap.to_dict()


def test_one_export_is_of_one_head_while_a_writer_appends(small_db, tmp_path, monkeypatch):
    """A writer appends to every pool while the frames are being written (here: right after the
    first frame is made).  Every file of the export is of the heads the export began with: records
    used to be read from the file before the other frames loaded the pools (found exporting a live
    log: records up to seq 141, the summary at 142)."""
    import shutil

    from poolscope import export as export_module

    path = tmp_path / "live.db"
    shutil.copy(small_db, path)
    made = []
    original = export_module.frame_for
    store = poolscope.PoolStore(path)  # a live writer: read through SQLite's locks, its commits seen

    def frame_then_append(db, name, pools=None, upto=None):
        frame = original(db, name, pools, upto)
        if not made:
            for pool_id in db.pool_ids:
                store.record_pool_created(pool_id)
        made.append(name)
        return frame

    monkeypatch.setattr(export_module, "frame_for", frame_then_append)
    import sqlite3

    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    heads = dict(reader.execute("SELECT pool_id, MAX(seq) FROM agent_pool_records GROUP BY pool_id").fetchall())
    reader.close()
    try:
        with poolscope.open(path, cache=False) as db:  # (no pool asked for before the export)
            assert db.conn.source.mode == "ro"
            export(db, tmp_path / "out")
    finally:
        store.close()
    assert made[0] == "records" and len(made) == 4
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert records.groupby("pool_id", observed=True)["seq"].max().to_dict() == heads
    assert dict(zip(summary["pool_id"], summary["head"])) == heads
    with poolscope.open(path, cache=False) as db:  # the writer's records are there, for the next export
        assert {pool_id: db.pool(pool_id).head for pool_id in db.pool_ids} == {p: h + 1 for p, h in heads.items()}
