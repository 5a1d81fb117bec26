"""Live writers: following a growing log, concurrent appends, a writer killed
mid-stream, reading while another process writes hard.

Writers are separate processes (``multiprocessing``, spawn) appending through
:class:`poolscope.PoolStore`.  They set ``PRAGMA synchronous = NORMAL`` (WAL's
usual setting; safe against a process crash, which is what these tests are
about) so that the tests measure poolscope and SQLite's locking rather than
the disk's fsync.  Timings are written to ``tests/artifacts/live_timings.json``;
only generous bounds are asserted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import statistics
import time
from pathlib import Path

import pytest

import poolscope
from poolscope.fold import extract

pytestmark = pytest.mark.slow  # other processes writing and reading for seconds

CTX = multiprocessing.get_context("spawn")
POOL = "pool.live"
#: Generous bounds (seconds): a failure means something hung, not that a machine was slow.
JOIN = 120
LATENCY_BOUND = 10.0


# -------------------------------------------------------------- the writers
def open_store(path: str) -> poolscope.PoolStore:
    store = poolscope.PoolStore(path)
    store.conn.execute("PRAGMA synchronous = NORMAL")
    return store


def append_one(store: poolscope.PoolStore, n: int, tag: str = "w") -> int:
    """The n-th append of a small, valid coordinator-like history; returns its seq."""
    k = n // 4
    step = n % 4
    if step == 0:
        return store.join_member(POOL, {"run_id": f"run.{tag}.{k % 64}", "agent_id": f"agent.{tag}", "topics": ["t"]})
    if step in (1, 2):
        message = {
            "message_id": f"msg.{tag}.{k}",
            "from": f"run.{tag}.{k % 64}",
            "to": {
                "target": {"type": "topic", "topic_id": "t"},
                "destination_ref": {
                    "kind": "topic",
                    "id": "t",
                    "privacy": "content_refs_only",
                    "retention": "host_policy",
                },
            },
            "content_ref": f"content.{tag}.{k}",
            "idempotency_key": f"idem.{tag}.{k}",
        }
        status = "accepted" if step == 1 else "delivered"
        receipt = {"message_id": message["message_id"], "status": status}
        if status == "delivered":
            receipt["delivered_to"] = [f"run.{tag}.{k % 64}"]
        return store.record_message(POOL, message, receipt)
    return store.record_pool_created(POOL)


def follow_writer(path: str, count: int, times_path: str, ready) -> None:
    store = open_store(path)
    store.open_pool(POOL, {})
    written = [(1, time.time())]
    ready.set()
    for n in range(count - 1):
        seq = append_one(store, n)
        written.append((seq, time.time()))
    store.close()
    Path(times_path).write_text(json.dumps(written))


def concurrent_writer(path: str, k: int, count: int, barrier, out_path: str) -> None:
    barrier.wait()  # all writers create the file and open the pool at the same moment
    try:
        store = open_store(path)
        store.open_pool(POOL, {})
        seqs = [append_one(store, n, tag=f"p{k}") for n in range(count)]
        store.close()
    except BaseException:
        import traceback

        Path(out_path).write_text(json.dumps({"error": traceback.format_exc()}))
        raise
    Path(out_path).write_text(json.dumps(seqs))


def endless_writer(path: str, batch: int, progress) -> None:
    store = open_store(path)
    store.open_pool(POOL, {})
    n = 0
    while True:
        if batch > 1:
            with store.batch():
                for _ in range(batch):
                    append_one(store, n)
                    n += 1
        else:
            append_one(store, n)
            n += 1
        progress.value = n


def timed_writer(path: str, count: int, out_path: str, ready) -> None:
    store = open_store(path)
    store.open_pool(POOL, {})
    ready.set()
    latencies = []
    for n in range(count):
        start = time.perf_counter()
        append_one(store, n)
        latencies.append(time.perf_counter() - start)
    store.close()
    Path(out_path).write_text(json.dumps(latencies))


# ----------------------------------------------------------------- helpers
def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 3),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 3),
        "max_ms": round(1000 * ordered[-1], 3),
    }


def record_timings(artifacts: Path, name: str, values: dict) -> None:
    target = artifacts / "live_timings.json"
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = values
    target.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(name, values)


def plain_seqs(path: Path) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            row[0] for row in conn.execute("SELECT seq FROM agent_pool_records WHERE pool_id = ? ORDER BY seq", (POOL,))
        ]
    finally:
        conn.close()


# ------------------------------------------------------------------- tests
def test_follow_sees_every_record_once_in_order(tmp_path, artifacts):
    count = 10_000
    path = tmp_path / "live.db"
    times_path = tmp_path / "written.json"
    ready = CTX.Event()
    writer = CTX.Process(target=follow_writer, args=(str(path), count, str(times_path), ready))
    writer.start()
    try:
        assert ready.wait(JOIN), "writer did not start"
        db = poolscope.open(path)
        pool = db.pool(POOL)
        seen: list[tuple[int, float]] = []
        problems = []
        for record in pool.follow(after=0, poll=0.05, idle_timeout=30, limit=count):
            seen.append((record.cursor, time.time()))
            if record.problem is not None:
                problems.append(record.problem)
            else:
                extract(record.kind, record.payload)
        writer.join(JOIN)
    finally:
        if writer.is_alive():
            writer.kill()
    assert writer.exitcode == 0
    assert problems == []
    seqs = [seq for seq, _ in seen]
    assert seqs == list(range(1, count + 1))  # each exactly once, in order, none missing
    written = dict(json.loads(times_path.read_text()))
    assert sorted(written) == seqs
    latencies = [max(0.0, at - written[seq]) for seq, at in seen]
    record_timings(artifacts, "follow_latency", stats(latencies))
    assert max(latencies) < LATENCY_BOUND
    # the followed pool's index kept up: its snapshot is the head's
    assert pool.head == count
    assert pool.snapshot().cursor == count
    assert [a for a in db.check() if a.severity != "info"] == []


def test_what_follow_yields_is_always_in_the_index(tmp_path, monkeypatch):
    """A record appended between follow()'s refresh and its read waits for the
    next refresh, so snapshot() and the frames cover every record yielded."""
    path = tmp_path / "race.db"
    store = open_store(str(path))
    store.open_pool(POOL, {})
    pool = poolscope.open(path).pool(POOL)
    refresh = poolscope.PoolHistory.refresh
    appended = []

    def refresh_then_a_writer_sneaks_in(self, **kwargs):
        added = refresh(self, **kwargs)
        appended.append(append_one(store, len(appended)))
        return added

    monkeypatch.setattr(poolscope.PoolHistory, "refresh", refresh_then_a_writer_sneaks_in)
    for record in pool.follow(after=0, poll=0.01, limit=20):
        assert record.cursor <= pool.head
        assert pool.snapshot(record.cursor).cursor == record.cursor
    assert record.cursor == 20 and pool.head >= 20 and len(appended) >= 19


def test_concurrent_writers_get_contiguous_seqs(tmp_path, artifacts):
    writers, each = 4, 1000
    path = tmp_path / "shared.db"
    barrier = CTX.Barrier(writers)
    outs = [tmp_path / f"seqs{k}.json" for k in range(writers)]
    processes = [
        CTX.Process(target=concurrent_writer, args=(str(path), k, each, barrier, str(outs[k]))) for k in range(writers)
    ]
    start = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join(JOIN)
    elapsed = time.perf_counter() - start
    for process in processes:
        if process.is_alive():
            process.kill()
    failures = [out.read_text() for out in outs if out.exists() and out.read_text().startswith('{"error"')]
    assert [p.exitcode for p in processes] == [0] * writers, failures
    returned = [seq for out in outs for seq in json.loads(out.read_text())]
    total = writers * each + 1  # one pool_opened, whoever won the race
    assert len(returned) == len(set(returned)) == writers * each
    assert sorted(returned) == list(range(2, total + 1))
    for out in outs:  # each writer saw its own seqs increase
        mine = json.loads(out.read_text())
        assert mine == sorted(mine)
    assert plain_seqs(path) == list(range(1, total + 1))
    db = poolscope.open(path)
    pool = db.pool(POOL)
    assert pool.head == total
    assert [r.kind for r in pool.records(upto=1)] == ["pool_opened"]
    assert [a for a in db.check() if a.severity != "info"] == []
    record_timings(
        artifacts, "concurrent_writers", {"writers": writers, "appends": writers * each, "seconds": round(elapsed, 2)}
    )


@pytest.mark.parametrize("batch", [1, 50], ids=["single appends", "batches of 50"])
def test_a_killed_writer_leaves_only_whole_records(tmp_path, batch):
    path = tmp_path / "killed.db"
    progress = CTX.RawValue("q", 0)
    writer = CTX.Process(target=endless_writer, args=(str(path), batch, progress))
    writer.start()
    deadline = time.monotonic() + JOIN
    while progress.value < 1500 and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(JOIN)
    assert writer.exitcode == -signal.SIGKILL
    listing = sorted(p.name for p in tmp_path.iterdir())
    db = poolscope.open(path)
    pool = db.pool(POOL)
    head = pool.head
    assert head >= 1500
    assert plain_seqs(path) == list(range(1, head + 1))
    if batch > 1:
        assert (head - 1) % batch == 0, "a transaction was cut in half"
    records = pool.records()
    assert [r.cursor for r in records] == list(range(1, head + 1))
    for record in records:
        assert record.problem is None
        extract(record.kind, record.payload)
    assert [a for a in db.check() if a.severity != "info"] == []
    pool.snapshot().to_json()
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # poolscope created nothing
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def test_reading_does_not_stall_a_heavy_writer(tmp_path, artifacts):
    count = 3000
    path = tmp_path / "busy.db"
    out = tmp_path / "latencies.json"
    ready = CTX.Event()
    writer = CTX.Process(target=timed_writer, args=(str(path), count, str(out), ready))
    writer.start()
    reads, heads = 0, []
    try:
        assert ready.wait(JOIN)
        db = poolscope.open(path)
        while writer.is_alive():
            db.refresh()
            pool = db.pool(POOL)
            snap = pool.snapshot()
            assert snap.cursor == pool.head
            snap.to_json()
            start = max(0, pool.head - 20)
            tail = pool.records(after=start, upto=pool.head)
            assert [r.cursor for r in tail] == list(range(start + 1, pool.head + 1))
            heads.append(pool.head)
            reads += 1
            if reads % 25 == 0:  # now and then, a fresh open as well
                with poolscope.open(path) as fresh:
                    assert fresh.pool(POOL).head >= heads[-1]
        writer.join(JOIN)
    finally:
        if writer.is_alive():
            writer.kill()
    assert writer.exitcode == 0
    assert heads == sorted(heads) and reads > 0
    db.refresh()
    assert db.pool(POOL).head == count + 1
    latencies = json.loads(out.read_text())
    summary = stats(latencies)
    summary["reader_loops"] = reads
    record_timings(artifacts, "append_latency_while_reading", summary)
    assert max(latencies) < LATENCY_BOUND


def _rewritable(tmp_path: Path) -> Path:
    from poolscope.generate import generate

    path = tmp_path / "live.db"
    generate(path, pools=1, records=120, seed=4)
    return path


@pytest.mark.parametrize("change", ["head rewritten", "first rewritten", "truncated and regrown", "head deleted"])
def test_refresh_notices_a_log_rewritten_below_its_head(tmp_path, change):
    """An append-only log changed at or below the head (a row updated in place,
    the log cut and written again) would make the records after the head
    continue another history: refresh() and follow() raise
    DatabaseChangedError, and what was loaded stays usable."""
    path = _rewritable(tmp_path)
    with poolscope.open(path, cache=False) as db:
        pool_id = db.pool_ids[0]
        pool = db.pool(pool_id)
        head, members = pool.head, pool.members_df()
        conn = sqlite3.connect(path)
        other = conn.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'run_message' "
            "ORDER BY seq LIMIT 1",
            (pool_id,),
        ).fetchone()[0]
        if change == "head rewritten":
            payload = json.loads(other)
            payload["stored"]["message"]["message_id"] = "msg.elsewhere"
            conn.execute(
                "UPDATE agent_pool_records SET kind = 'run_message', payload_json = ? WHERE pool_id = ? AND seq = ?",
                (json.dumps(payload, separators=(",", ":")), pool_id, head),
            )
        elif change == "first rewritten":
            conn.execute(
                "UPDATE agent_pool_records SET kind = 'pool_created', payload_json = '{\"type\":\"pool_created\"}' "
                "WHERE pool_id = ? AND seq = 1",
                (pool_id,),
            )
        elif change == "truncated and regrown":
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > 10", (pool_id,))
            for seq in range(11, head + 6):
                conn.execute(
                    "INSERT INTO agent_pool_records VALUES (?, ?, 'pool_created', '{\"type\":\"pool_created\"}')",
                    (pool_id, seq),
                )
        else:
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, head))
        conn.commit()
        conn.close()
        with pytest.raises(poolscope.DatabaseChangedError, match="rewritten") as raised:
            pool.refresh()
        assert raised.value.seq in (1, head)
        with pytest.raises(poolscope.DatabaseChangedError):
            db.refresh()
        with pytest.raises(poolscope.DatabaseChangedError):
            next(pool.follow(idle_timeout=0.1))
        # the index stays as it was loaded; what needs a payload read again says the file changed
        assert pool.head == head and len(pool.records_df()) == head
        assert len(pool.members_df()) == len(members)


@pytest.mark.parametrize("where", ["middle", "head"])
def test_a_status_rewritten_under_a_loaded_pool_is_a_changed_file_not_two_stories(tmp_path, where):
    """A message's receipt status rewritten in place after the pool loaded (same message id): the
    frames hold the status loaded, the file another.  A snapshot whose payloads are read again, and
    refresh() when it is the head, raise DatabaseChangedError instead of telling both stories (the
    snapshot JSON said 'failed' where its own ``statuses`` and the frames said 'delivered')."""
    path = _rewritable(tmp_path)
    with poolscope.open(path, cache=False) as db:
        pool = db.pool(db.pool_ids[0]).load()
        records = pool.records_df()
        messages = records[records["kind"] == "run_message"]
        seq = int(messages["seq"].iloc[len(messages) // 2] if where == "middle" else messages["seq"].iloc[-1])
        conn = sqlite3.connect(path)
        (text,) = conn.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool.pool_id, seq)
        ).fetchone()
        payload = json.loads(text)
        status = payload["stored"]["receipt"]["status"]
        payload["stored"]["receipt"]["status"] = "cancelled" if status != "cancelled" else "failed"
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
            (json.dumps(payload, separators=(",", ":")), pool.pool_id, seq),
        )
        conn.commit()
        conn.close()
        if seq == pool.head:  # refresh() compares the head's record with the file's
            with pytest.raises(poolscope.DatabaseChangedError):
                pool.refresh()
        else:  # (it reads the file as it is now: the rewrite is seen)
            assert pool.refresh() == 0
        with pytest.raises(poolscope.DatabaseChangedError) as raised:
            pool.payloads([seq])
        assert raised.value.seq == seq
        snapshot = pool.snapshot(seq)
        with pytest.raises(poolscope.DatabaseChangedError):
            snapshot.to_json()
        assert pool.records_df().equals(records)  # what was loaded stays as it was


def test_a_gap_filled_after_the_load_is_not_yielded_past_the_index(tmp_path):
    """A record written into a gap below the head after the pool loaded (the SDK only appends at
    MAX(seq) + 1: a hand edit) is not in the index: follow() raises DatabaseChangedError instead of
    yielding a record that snapshot() and the frames do not cover (it did)."""
    path = _rewritable(tmp_path)
    conn = sqlite3.connect(path)
    pool_id, seq = conn.execute("SELECT pool_id, seq FROM agent_pool_records WHERE seq = 60").fetchone()
    row = conn.execute("SELECT * FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq)).fetchone()
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq))
    conn.commit()
    with poolscope.open(path, cache=False) as db:
        pool = db.pool(pool_id).load()
        assert seq not in pool.records_df()["seq"].tolist()
        assert [r.cursor for r in pool.follow(after=seq - 3, idle_timeout=0.1, limit=4)] == [58, 59, 61, 62]
        conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", row)
        conn.commit()
        conn.close()
        # the refresh of follow()'s first poll counts the rows below the head (the pool has a gap)
        records = pool.follow(after=seq - 3, idle_timeout=0.1)
        with pytest.raises(poolscope.DatabaseChangedError) as raised:
            next(records)
        assert raised.value.seq == seq


def test_a_refresh_raises_for_a_gap_filled_after_the_load_and_reads_appends_past_gaps(tmp_path):
    """refresh() reads after the head, so a record written into a gap below it since the load (a
    hand edit: the SDK only appends at MAX(seq) + 1) would be missed while the SDK's replay folds
    it: DatabaseChangedError, and what was loaded stays as it was.  Records appended past a gap
    are read as usual (no false alarm, whatever unplaceable rows the pool has)."""
    path = _rewritable(tmp_path)
    conn = sqlite3.connect(path)
    pool_id = conn.execute("SELECT pool_id FROM agent_pool_records WHERE seq = 60").fetchone()[0]
    row = conn.execute("SELECT * FROM agent_pool_records WHERE pool_id = ? AND seq = 60", (pool_id,)).fetchone()
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = 60", (pool_id,))
    # rows no load places (a seq below 1, not an integer, text): never taken for a filled gap
    for odd in (0, -1, 60.5, "sixty"):
        conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (pool_id, odd, row[2], row[3]))
    head, kind, last = conn.execute(
        "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ? AND typeof(seq) = 'integer' "
        "ORDER BY seq DESC LIMIT 1",
        (pool_id,),
    ).fetchone()
    conn.commit()
    try:
        with poolscope.open(path, cache=False) as db:
            pool = db.pool(pool_id).load()
            # an append past the gap (the last record's payload again, at MAX(seq) + 1)
            conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (pool_id, head + 1, kind, last))
            conn.commit()
            assert pool.refresh() == 1 and pool.head == head + 1
            records = pool.records_df()
            conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", row)
            conn.commit()
            with pytest.raises(poolscope.DatabaseChangedError, match="below the head") as raised:
                pool.refresh()
            assert raised.value.seq == 60
            with pytest.raises(poolscope.DatabaseChangedError, match="below the head"):
                db.refresh()
            assert pool.head == head + 1 and pool.records_df().equals(records)
    finally:
        conn.close()


def test_a_refresh_that_cannot_open_the_file_leaves_what_was_loaded_readable(tmp_path):
    """The file's header overwritten for a moment (a copy in progress, a restore): refresh() fails
    with a typed error, and the snapshot's payloads are still read through the connection it had
    (every later call said 'Cannot operate on a closed database'); once the header is back, refresh
    reads on."""
    path = _rewritable(tmp_path)
    with poolscope.open(path, cache=False) as db:
        pool = db.pool(db.pool_ids[0]).load()
        expected = pool.snapshot(100).to_json()
        with open(path, "r+b") as handle:
            header = handle.read(16)
            handle.seek(0)
            handle.write(b"X" * 16)
        with pytest.raises(poolscope.NotADatabaseError):
            pool.refresh()
        assert pool.snapshot(100).to_json() == expected
        with open(path, "r+b") as handle:
            handle.write(header)
        assert pool.refresh() == 0 and pool.snapshot(100).to_json() == expected


def test_refresh_after_appends_is_not_a_rewrite(tmp_path):
    path = _rewritable(tmp_path)
    with poolscope.open(path, cache=False) as db:
        pool = db.pool(db.pool_ids[0])
        head = pool.head
        with poolscope.PoolStore(path) as store:
            for _ in range(3):
                store.record_pool_created(pool.pool_id)
        assert pool.refresh() == 3 and pool.head == head + 3
        assert pool.refresh() == 0


def test_a_file_truncated_under_a_live_writer_is_no_database_on_refresh(tmp_path):
    """Read through SQLite's shared memory (a live writer holds the -wal), a file truncated
    to nothing went on answering from its cached pages and -wal: refresh() said nothing was
    appended and the explorer stayed live.  Its header says it is no database any more."""
    import subprocess
    import sys

    path = _rewritable(tmp_path)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, poolscope\n"
            f"store = poolscope.PoolStore({str(path)!r})\n"
            "store.record_pool_created(poolscope.open(store.path).pool_ids[0])\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        with poolscope.open(path, cache=False) as db:
            assert db.source.mode == "ro"
            pool = db.pool(db.pool_ids[0]).load()
            assert pool.refresh() == 0
            with open(path, "r+b") as handle:
                handle.truncate(0)
            with pytest.raises(poolscope.NotADatabaseError, match="no longer starts as an SQLite database"):
                db.refresh()
            with pytest.raises(poolscope.NotADatabaseError):
                pool.refresh()
    finally:
        writer.stdin.close()
        writer.wait(30)
