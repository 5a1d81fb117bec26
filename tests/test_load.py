"""The loader (poolscope.load): where it may fork a helper and where it must not."""

from __future__ import annotations

import multiprocessing
import pickle

import pandas as pd
import pytest

import poolscope
from poolscope import load as load_module


@pytest.fixture(scope="module")
def pool_20k(tmp_path_factory):
    """One pool of 21,000 records: above the loader's fork threshold."""
    from poolscope.generate import generate

    path = tmp_path_factory.mktemp("load") / "20k.db"
    summary = generate(path, pools=1, records=21_000, seed=3)
    assert summary["records"] >= load_module.PARALLEL_THRESHOLD
    return path, summary["pools"][0]


def _frames_in_a_daemon(path, pool_id, sender) -> None:
    """Target of a daemonic process: the frames a user asks for there, pickled back."""
    try:
        result = (
            "ok",
            load_module._can_fork(),
            poolscope.open(path).pool(pool_id).records_df(),
            poolscope.open(path).records_df(),  # a pool not loaded: read by scan
        )
    except BaseException as error:  # the parent reports it
        result = ("error", repr(error), None, None)
    sender.send_bytes(pickle.dumps(result))
    sender.close()


def _run_in_a_daemon(path, pool_id):
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_frames_in_a_daemon, args=(str(path), pool_id, sender), daemon=True)
    process.start()
    sender.close()
    try:
        return pickle.loads(receiver.recv_bytes())
    finally:
        receiver.close()
        process.join(30)


@pytest.mark.slow
def test_a_daemonic_process_loads_in_one_process_and_gets_the_same_frames(pool_20k, monkeypatch):
    """A daemonic multiprocessing process (a Dask worker, a Pool worker) may not
    start children: the loader reads everything itself there, same frames."""
    path, pool_id = pool_20k
    started = []
    original = load_module._OtherHalf.start.__func__

    def spy(cls, *args, **kwargs):
        helper = original(cls, *args, **kwargs)
        started.append(helper is not None)
        return helper

    monkeypatch.setattr(load_module._OtherHalf, "start", classmethod(spy))
    pool_frame = poolscope.open(path).pool(pool_id).records_df()
    db_frame = poolscope.open(path).records_df()
    assert started == [True, True]  # here (not a daemon) both a load and a scan fork a helper

    status, could_fork, daemon_pool_frame, daemon_db_frame = _run_in_a_daemon(path, pool_id)
    assert status == "ok", could_fork  # the error the daemon met, if any
    assert could_fork is False
    assert len(daemon_pool_frame) == 21_000
    pd.testing.assert_frame_equal(daemon_pool_frame, pool_frame)
    pd.testing.assert_frame_equal(daemon_db_frame, db_frame)


def test_the_fork_check_follows_the_current_process(monkeypatch):
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    assert load_module._can_fork() is True
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert load_module._can_fork() is False
    monkeypatch.undo()
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 0)
    assert load_module._can_fork() is False


@pytest.mark.parametrize(
    "schema",
    [
        "pool_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload_json TEXT NOT NULL, "
        "PRIMARY KEY (pool_id, seq)",  # the SDK's: pools listed through its index
        "pool_id, seq, kind, payload_json",  # no index: read whole
        "pool_id TEXT COLLATE NOCASE, seq INTEGER, kind TEXT, payload_json TEXT, PRIMARY KEY (pool_id, seq)",
        "seq INTEGER, pool_id TEXT, kind TEXT, payload_json TEXT, PRIMARY KEY (seq, pool_id)",
    ],
    ids=["sdk", "no-index", "nocase-index", "seq-first-index"],
)
def test_pool_ids_are_every_distinct_id_whatever_the_table_looks_like(tmp_path, schema):
    """Pool ids of any case and byte content, listed the same whether the table
    has the SDK's primary key (one index hop per pool) or not.  Only text ids are
    pools (the SDK reads a pool by its UTF-8 ``String`` id): an id stored as an
    integer (a column without TEXT affinity) or a BLOB -- even one with a text
    id's bytes -- is no pool's, and doctor reports it (``bad_pool_id``)."""
    import sqlite3

    path = tmp_path / "pools.db"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE agent_pool_records ({schema})")
    ids = ["b", "a", "A", 5, b"a", "a\x00z", "é", "pool.alpha", b"\xff"]
    for seq, pool_id in enumerate(ids * 3):
        conn.execute(
            "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, 'pool_created', ?)",
            (pool_id, seq, '{"type":"pool_created"}'),
        )
    conn.commit()
    stored = dict(conn.execute("SELECT DISTINCT pool_id, typeof(pool_id) FROM agent_pool_records").fetchall())
    conn.close()
    text_affinity = "pool_id TEXT" in schema  # stores the integer 5 as the text '5'
    assert stored.get("5") == ("text" if text_affinity else None) and stored[b"\xff"] == "blob"
    with poolscope.open(path, cache=False) as db:
        expected = {"b", "a", "A", "a\x00z", "é", "pool.alpha"} | ({"5"} if text_affinity else set())
        assert db.pool_ids == sorted(expected)
        assert set(db.heads()) == expected
        bad = [a for a in db.check() if a.code == "bad_pool_id"]
        # a row each (3 of every id): the BLOBs b"a" and b"\xff", and the integer 5 where it stays one;
        # and once the pool "a\x00z", an id the SDK's PoolId refuses (a control character)
        assert len(bad) == 3 * (2 if text_affinity else 3) + 1
        assert [a.pool_id for a in bad if "PoolId" in a.message] == ["a\x00z"]


def test_a_dropped_database_frees_its_pools_even_after_a_large_load_froze_them(sample_copy, monkeypatch):
    """A history holds its database.  A database that held its histories too made a
    reference cycle, which only the cyclic collector frees -- and never once a large
    load had frozen it (``gc.freeze``): a notebook opening a large pool again and
    again kept every earlier index in memory.  Now dropping the database and its
    histories frees their indexes; while the database lives, a pool asked for again
    finds its index loaded."""
    import gc
    import weakref

    monkeypatch.setattr(load_module, "FREEZE_THRESHOLD", 1)  # every load freezes, as a large one does
    try:
        db = poolscope.open(sample_copy, cache=False)
        history = db.pool("pool.alpha")
        head = history.snapshot().to_json()
        index = weakref.ref(history.index)
        assert gc.get_freeze_count() > 0
        assert db.pool("pool.alpha") is history and db.pool("pool.alpha").index is history.index
        del history
        again = db.pool("pool.alpha")
        assert again.loaded and again.index is index() and again.snapshot().to_json() == head
        assert db.refresh() == {"pool.alpha": 0}
        del again, db
        gc.collect()
        assert index() is None
        only = poolscope.open(sample_copy, cache=False).pool("pool.bravo")  # a history alone keeps its database
        assert (
            only.snapshot().to_json()
            == poolscope.open(sample_copy, cache=False).pool("pool.bravo").snapshot().to_json()
        )
    finally:
        gc.unfreeze()


#: A forked helper whose first SQLite call never returns, as when another thread of the parent held
#: one of SQLite's global mutexes at the fork (the child inherits it held, for ever): the script
#: makes every child's connection wait for an hour, and prints what the parent then got.
STUCK_CHILD = r"""
import json, os, sys, time
import poolscope, poolscope.cache, poolscope.load, poolscope.source as source
parent = os.getpid()
source.CHILD_START_SECONDS = 0.5
poolscope.load.PARALLEL_THRESHOLD = 100  # the sample's pools are split in two processes
poolscope.cache.BACKGROUND_THRESHOLD = 1  # and their entries written by a helper
for name in ("connect_readonly", "reconnect"):
    real = getattr(source, name)
    def stuck(*args, _real=real, **kwargs):
        if os.getpid() != parent:
            time.sleep(3600)
        return _real(*args, **kwargs)
    setattr(source, name, stuck)
path, cache = sys.argv[1], sys.argv[2]
started = time.monotonic()
db = poolscope.open(path, cache=cache)
snapshots = {p: db.pool(p).snapshot().to_json() for p in db.pool_ids}
poolscope.cache.wait()  # returns: the helpers were ended
print(json.dumps({"snapshots": snapshots, "seconds": time.monotonic() - started,
                  "entries": len(poolscope.cache.entries(cache))}))
"""


def test_a_forked_helper_stuck_in_its_first_sqlite_call_is_ended_and_its_work_done_here(sample_copy, tmp_path):
    """Without a bound, a load waited for ever for its other half, and `cache.wait()` for a
    writer that never wrote (found with two threads using sqlite3 while poolscope forked)."""
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", STUCK_CHILD, str(sample_copy), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    with poolscope.open(sample_copy, cache=False) as db:
        assert out["snapshots"] == {p: db.pool(p).snapshot().to_json() for p in db.pool_ids}
    assert out["entries"] == 0  # no entry from an ended writer; a later open saves it
    assert out["seconds"] < 60
