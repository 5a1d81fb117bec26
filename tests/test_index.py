"""The columnar index: the batch fold, incremental and two-process loads, and the inlined flattening agree."""

from __future__ import annotations

import sqlite3

from helpers import assert_same_arrays

import poolscope
from poolscope import load as load_module
from poolscope.fold import PoolFold
from poolscope.index import PoolIndex


def _load(path, pool_id):
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    index = PoolIndex(path, pool_id)
    index.load(conn, progress=False)
    return index


def test_two_process_load_equals_the_one_process_load(small_db, monkeypatch):
    """Large loads decode their second half in a forked child: same index, to the entry."""
    db = poolscope.open(small_db)
    started = []
    original = load_module._OtherHalf.start.__func__

    def spy(cls, *args, **kwargs):
        helper = original(cls, *args, **kwargs)
        started.append(helper)
        return helper

    monkeypatch.setattr(load_module._OtherHalf, "start", classmethod(spy))
    monkeypatch.setattr(load_module, "LOAD_CHUNK", 37)  # the child hands over many chunks
    for pool_id in db.pool_ids:
        monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 0)
        alone = _load(small_db, pool_id)
        monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
        halves = _load(small_db, pool_id)
        assert halves.seqs == alone.seqs
        assert halves.entries == alone.entries
        assert halves.next_seq == alone.next_seq
        assert halves.fold.members == alone.fold.members
        assert halves.fold.message_dedupe == alone.fold.message_dedupe
    assert len(started) == len(db.pool_ids) and all(h is not None for h in started)


def test_a_damaged_record_in_the_childs_half_is_reported_the_same(sample_copy, monkeypatch):
    conn = sqlite3.connect(sample_copy)
    pool_id, seq = conn.execute("SELECT pool_id, max(seq) FROM agent_pool_records GROUP BY pool_id LIMIT 1").fetchone()
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = '{not json' WHERE pool_id = ? AND seq = ?", (pool_id, seq - 3)
    )
    conn.commit()
    conn.close()
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 0)
    alone = _load(sample_copy, pool_id)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(load_module, "LOAD_CHUNK", 2)  # the damaged record in a chunk of its own or not
    halves = _load(sample_copy, pool_id)
    assert list(halves.problems) == list(alone.problems) == [seq - 3]
    assert type(halves.problems[seq - 3]) is type(alone.problems[seq - 3])
    assert str(halves.problems[seq - 3]) == str(alone.problems[seq - 3])
    assert halves.entries == alone.entries


def test_oddities_in_the_childs_half_are_handed_over(sample_copy, monkeypatch):
    """A record filed under another kind, and a receipt for another message, in the
    half a forked child decodes: folded and reported as in a one-process load."""
    conn = sqlite3.connect(sample_copy)
    pool_id, head = conn.execute("SELECT pool_id, max(seq) FROM agent_pool_records GROUP BY pool_id LIMIT 1").fetchone()
    wake, message = (
        conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
            (pool_id, kind),
        ).fetchone()
        for kind in ("wake", "run_message")
    )
    with conn:
        conn.execute(
            "UPDATE agent_pool_records SET kind = 'member_left' WHERE pool_id = ? AND seq = ?", (pool_id, wake[0])
        )
        other = message[1].replace('"receipt":{"message_id":"', '"receipt":{"message_id":"x', 1)
        assert other != message[1]
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (other, pool_id, message[0])
        )
    conn.close()
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 0)
    alone = _load(sample_copy, pool_id)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(load_module, "LOAD_CHUNK", 3)
    halves = _load(sample_copy, pool_id)
    assert {seq: [code for code, _ in found] for seq, found in alone.oddities.items()} == {
        wake[0]: ["kind_mismatch"],
        message[0]: ["receipt_mismatch"],
    }
    assert halves.oddities == alone.oddities and not halves.problems
    assert halves.entries == alone.entries and halves.next_seq == alone.next_seq


def test_a_helper_that_dies_midway_leaves_the_parent_to_finish(small_db, monkeypatch):
    """The child has handed over one chunk and dies: the parent decodes the rest itself."""
    import os

    pool_id = poolscope.open(small_db).pool_ids[0]
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 0)
    alone = _load(small_db, pool_id)
    real = load_module._decode_in_child

    def dies_after_one_chunk(path, pool_id, split, sender, upper, verify, out):
        class Once:
            def send_bytes(self, blob):
                sender.send_bytes(blob)
                os._exit(1)

            def close(self):
                sender.close()

        real(path, pool_id, split, Once(), upper, verify, out)

    monkeypatch.setattr(load_module, "_decode_in_child", dies_after_one_chunk)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(load_module, "LOAD_CHUNK", 25)
    monkeypatch.setattr(load_module, "BATCH", 5)  # rows per fetch: chunks of exactly 25
    folded = []
    original = PoolIndex.extend
    monkeypatch.setattr(PoolIndex, "extend", lambda self, s, b: folded.append(len(s)) or original(self, s, b))
    halves = _load(small_db, pool_id)
    assert folded.count(25) == 1  # the one chunk the child handed over was used, the rest decoded here
    assert halves.seqs == alone.seqs and halves.entries == alone.entries and halves.next_seq == alone.next_seq


def test_batch_fold_equals_record_by_record_fold(small_db):
    db = poolscope.open(small_db)
    for history in db.pools():
        index = history.index
        one = PoolFold()
        prevs_one = [one.apply(pos, seq, entry) for pos, (seq, entry) in enumerate(zip(index.seqs, index.entries))]
        many = PoolFold()
        prevs_many = many.apply_many(0, index.seqs, index.entries)
        assert prevs_one == prevs_many
        for name in PoolFold.__slots__:
            assert getattr(one, name) == getattr(many, name), name


def test_incremental_loads_equal_a_full_load(small_db):
    db = poolscope.open(small_db)
    pool_id = db.pool_ids[0]
    full = db.pool(pool_id).index
    conn = sqlite3.connect(f"file:{small_db}?immutable=1", uri=True)
    grown = PoolIndex(small_db, pool_id)
    # load in slices, as follow() and PoolStore do while a log grows
    for upto in range(50, full.head + 50, 50):
        rows = conn.execute(
            load_module.SCAN_SQL + " AND seq <= ?" + load_module.ORDER, (pool_id, grown.head, upto)
        ).fetchall()
        grown.append_rows(rows)
    assert grown.seqs == full.seqs and grown.entries == full.entries and grown.next_seq == full.next_seq


def test_columns_read_while_a_log_grows_catch_up_with_only_the_new_records(small_db):
    """The numpy columns made before records were appended take in only the
    new ones (follow() on a large pool must not redo the whole pool), and
    equal the columns of an index loaded at once, whatever was read between."""
    db = poolscope.open(small_db)
    conn = sqlite3.connect(f"file:{small_db}?immutable=1", uri=True)
    for pool_id in db.pool_ids:
        full = db.pool(pool_id).index
        grown = PoolIndex(small_db, pool_id)
        for step, upto in enumerate(range(37, full.head + 37, 37)):
            rows = conn.execute(
                load_module.SCAN_SQL + " AND seq <= ?" + load_module.ORDER, (pool_id, grown.head, upto)
            ).fetchall()
            made = grown._arrays is not None
            grown.append_rows(rows)
            if made:  # kept, to be caught up with the batch: not dropped and rebuilt from every record
                assert grown._arrays is not None and grown._behind
            if step % 3 == 0:
                grown.arrays()  # columns made now: the next batches are caught up, not rebuilt
            if step % 5 == 1:
                grown.status_codes()
            if step % 7 == 2:
                grown.live_positions("messages", grown.head)  # ranks, dropped by the next batch
        assert grown.next_seq == full.next_seq
        assert_same_arrays(grown, full)
    conn.close()
    db.close()


def test_the_inlined_hot_path_flattens_exactly_like_extract(small_db, oracle):
    """PoolIndex.decode inlines extract() for messages and wakes: they must never drift apart."""
    from poolscope import wire
    from poolscope.fold import RUN_MESSAGE, WAKE, extract

    for path in (small_db, oracle / "pool.db"):
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        for (pool_id,) in conn.execute("SELECT DISTINCT pool_id FROM agent_pool_records"):
            rows = conn.execute(load_module.SCAN_SQL + load_module.ORDER, (pool_id, 0)).fetchall()
            seqs, entries = PoolIndex(path, pool_id).decode(rows, 0)
            assert seqs == [r[0] for r in rows]
            for (seq, kind, _typ, payload), entry in zip(rows, entries):
                assert entry == extract(kind.decode(), wire.loads(payload)), seq
            # what a scan decodes: the same but for the details it does not read
            _, dropped = PoolIndex(path, pool_id).decode(rows, 0, keep=False)
            for entry, kept in zip(dropped, entries):
                assert entry[:12] == kept[:12]
                if kept.kind in (RUN_MESSAGE, WAKE):
                    assert entry.extra is None or entry.extra == kept.extra  # None on the inlined path
                else:
                    assert entry.extra == kept.extra


def test_key_codes_ranks_and_status_codes_equal_computing_them_from_the_keys(small_db, oracle):
    """key_codes and rank follow the fold's replacement chains for messages and
    wakes: the same as factorizing and sorting the keys themselves."""
    import numpy as np
    import pandas as pd

    from poolscope import wire
    from poolscope.fold import RUN_MESSAGE, WAKE

    for path in (small_db, oracle / "pool.db"):
        db = poolscope.open(path)
        for history in db.pools():
            index = history.index
            for namespace in ("messages", "wakes", "members"):
                keys = [index.entries[p].key for p in index.arrays()[namespace]]
                expected = pd.factorize(np.array(keys, dtype=object))[0] if keys else np.zeros(0, np.int64)
                assert index.key_codes(namespace).tolist() == list(expected), (history.pool_id, namespace)
                # rank: the byte-wise order of the keys (the SDK's BTreeMap order)
                order = {key: i for i, key in enumerate(sorted(set(keys), key=lambda k: k.encode("utf-8")))}
                assert index.rank(namespace).tolist() == [order[k] for k in keys], (history.pool_id, namespace)
            codes = [
                wire.MESSAGE_STATUSES.index(e.status)
                if e.kind == RUN_MESSAGE
                else wire.WAKE_STATUSES.index(e.status)
                if e.kind == WAKE
                else -1
                for e in index.entries
            ]
            assert index.status_codes().tolist() == codes


def test_gc_paused_restores_the_collector_and_decorates():
    import gc

    from poolscope.index import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()

    @gc_paused()
    def fails():
        assert not gc.isenabled()
        raise ValueError("boom")

    try:
        fails()
    except ValueError:
        pass
    assert gc.isenabled()


def test_gc_paused_across_threads_resumes_when_the_last_pauser_leaves():
    """A Dask worker runs partitions in threads: the first to leave must not switch the collector
    back on under another still inside, and the last one out restores it."""
    import gc
    import threading

    from poolscope.index import gc_paused

    entered, release_first, first_left, release_second = (threading.Event() for _ in range(4))
    seen: dict[str, bool] = {}

    def first():
        with gc_paused():
            entered.set()
            release_first.wait(10)
        first_left.set()

    def second():
        entered.wait(10)
        with gc_paused():
            release_first.set()
            first_left.wait(10)
            seen["after the first left"] = gc.isenabled()
            release_second.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_left.wait(10)
    release_second.set()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first left": False}
    assert gc.isenabled()

    gc.disable()  # off before anyone paused: stays off after
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_status_counts_masks_and_kinds_agree_with_the_entries(small_db, oracle):
    """The index's one place for status codes, counts and masks, against counting the entries by hand."""
    from collections import Counter

    from poolscope import wire
    from poolscope.fold import DAMAGED, RUN_MESSAGE, WAKE

    for path in (small_db, oracle / "pool.db"):
        for history in poolscope.open(path).pools():
            index = history.index
            entries = index.entries
            for namespace, kind, names in (
                ("messages", RUN_MESSAGE, wire.MESSAGE_STATUSES),
                ("wakes", WAKE, wire.WAKE_STATUSES),
            ):
                by_record = Counter(e.status for e in entries if e.kind == kind)
                assert index.status_counts(namespace) == {s: by_record[s] for s in names}
                assert index.status_counts(namespace.removesuffix("s")) == index.status_counts(namespace)
                for cursor in (0, index.head // 3, index.head):
                    current = Counter(
                        entries[p].status for p in index.live_positions(namespace, cursor, ordered=False).tolist()
                    )
                    assert index.current_status_counts(namespace, cursor) == {s: current[s] for s in names}
            for status in dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES):
                expected = [e.kind in (RUN_MESSAGE, WAKE) and e.status == status for e in entries]
                assert index.status_mask(status).tolist() == expected, status
                only_wakes = [e.kind == WAKE and e.status == status for e in entries]
                assert index.status_mask(status, "wakes").tolist() == only_wakes
            for code, kind in enumerate(wire.KINDS):
                assert index.kind_mask(kind).tolist() == [e.kind == code for e in entries]
            assert index.kind_mask("damaged").tolist() == [e.kind == DAMAGED for e in entries]
    index = poolscope.open(small_db).pool(poolscope.open(small_db).pool_ids[0]).index
    for bad in (
        lambda: index.status_mask("waiting"),
        lambda: index.kind_mask("wakes"),
        lambda: index.status_counts("x"),
    ):
        try:
            bad()
        except ValueError as error:
            assert "waiting" in str(error) or "wakes" in str(error) or "'x'" in str(error)
        else:
            raise AssertionError("no ValueError")


def test_cursor_and_replay_checks_fail_where_the_sdk_does(small_db):
    import pytest

    from poolscope.errors import ConfigConflictError, CursorError, PoolNotOpenedError

    pool = poolscope.open(small_db).pool(poolscope.open(small_db).pool_ids[0])
    index = pool.index
    assert index.check_cursor(index.head) == index.head and index.check_cursor(0) == 0
    for bad, message in (
        (-1, "cursor -1 is outside"),
        (index.head + 1, "is outside"),
        ("3", "not str"),
        (True, "bool"),
    ):
        with pytest.raises(CursorError, match=message):
            index.check_cursor(bad)
        with pytest.raises(CursorError, match=message):
            pool.snapshot(bad)
    with pytest.raises(CursorError, match=r"cursor b=-2 is outside"):
        pool.diff(0, -2)
    with pytest.raises(PoolNotOpenedError, match="has not opened this pool"):
        index.check_replay(0)
    index.check_replay(0, opened=False)
    index.check_replay(index.head)
    # a second pool_opened with another config: the SDK refuses the log from there on
    grown = PoolIndex(small_db, "p")
    opened = '{"type":"pool_opened","config":{"message_policy":{"include_sender_in_pool_broadcast":%s},"wake_policy":{"envelope_only":true}}}'
    grown.append_rows([(1, "pool_opened", "text", opened % "false"), (2, "pool_opened", "text", opened % "true")])
    assert not grown.problems
    grown.check_replay(1)
    with pytest.raises(ConfigConflictError, match="conflicting pool_opened"):
        grown.check_replay(2)
    grown.check_replay(2, strict=False)
    grown.append_rows([(3, "wake", "text", "{not json")])
    with pytest.raises(poolscope.RecordError):
        grown.check_replay(3)  # the damaged record comes first in the check, as before
