"""The columnar index: the batch fold, incremental loads and the inlined flattening agree."""

from __future__ import annotations

import sqlite3

import poolscope
from poolscope import index as index_module
from poolscope.fold import PoolFold
from poolscope.index import PoolIndex


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
            index_module.SCAN_SQL + " AND seq <= ?" + index_module.ORDER, (pool_id, grown.head, upto)
        ).fetchall()
        grown._ingest(rows)
    assert grown.seqs == full.seqs and grown.entries == full.entries and grown.next_seq == full.next_seq


def test_the_inlined_hot_path_flattens_exactly_like_extract(small_db, oracle):
    """index._decode inlines extract() for messages and wakes: they must never drift apart."""
    from poolscope import wire
    from poolscope.fold import extract

    for path in (small_db, oracle / "pool.db"):
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        for (pool_id,) in conn.execute("SELECT DISTINCT pool_id FROM agent_pool_records"):
            rows = conn.execute(index_module.SCAN_SQL + index_module.ORDER, (pool_id, 0)).fetchall()
            seqs, entries = PoolIndex(path, pool_id)._decode(rows, 0)
            assert seqs == [r[0] for r in rows]
            for (seq, kind, _typ, payload), entry in zip(rows, entries):
                assert entry == extract(kind.decode(), wire.loads(payload)), seq
