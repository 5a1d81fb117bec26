"""PoolStore against rules of the file's own: triggers that drop, refuse or roll back a row, views.

README ("Damaged or live databases"): a rule of the file's own that refuses a row
is a ``WriteRefusedError``, and writing never makes a file worse.  Each test
checks the typed error, that the file's rows are exactly what they were, and
that the store's own view of the pool is the reader's afterwards (an append
must never be folded that the file does not hold).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import poolscope

OK = {"run_id": "run.ok", "agent_id": "agent.x"}
BAD = {"run_id": "run.bad", "agent_id": "agent.x"}
NEXT = {"run_id": "run.next", "agent_id": "agent.x"}


def _rows(path: Path) -> list[tuple]:
    """Every row of the file's tables (records, then event numbering), read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT * FROM agent_pool_records ORDER BY pool_id, seq").fetchall()
        rows += conn.execute("SELECT 'event_seq', * FROM agent_pool_event_seq ORDER BY pool_id").fetchall()
    finally:
        conn.close()
    return rows


def _sql(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def _created(path: Path) -> Path:
    """A file with pool 'p' opened and created (seqs 1 and 2), as the SDK writes it."""
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        store.record_pool_created("p")
    return path


def _same_as_the_reader(store: poolscope.PoolStore, pool_id: str = "p") -> None:
    """The store's snapshot is the one a fresh reader of the file rebuilds."""
    with poolscope.open(store.path, cache=False) as db:
        assert store.snapshot(pool_id).to_dict() == db.pool(pool_id).snapshot().to_dict()


VIEW = (
    "ALTER TABLE agent_pool_records RENAME TO rows_;"
    "CREATE VIEW agent_pool_records AS SELECT * FROM rows_;"
    "CREATE TRIGGER ins INSTEAD OF INSERT ON agent_pool_records BEGIN SELECT 1; END;"
)


def test_a_view_in_place_of_the_records_table_is_a_schema_error(tmp_path):
    """A view named agent_pool_records can be read but not appended to: PoolStore
    refuses the file when it opens it, and writes nothing."""
    path = _created(tmp_path / "view.db")
    _sql(path, VIEW)
    before = _rows(path)
    with pytest.raises(poolscope.SchemaError, match="agent_pool_records is a view") as raised:
        poolscope.PoolStore(path)
    assert raised.value.code == "schema"
    assert _rows(path) == before


@pytest.mark.parametrize(
    "script",
    [
        "ALTER TABLE agent_pool_records DROP COLUMN kind",
        "ALTER TABLE agent_pool_records RENAME TO rows_; CREATE VIEW agent_pool_records AS SELECT pool_id FROM rows_",
    ],
    ids=["no kind column", "view of other columns"],
)
def test_a_records_table_without_the_sdks_columns_is_the_readers_schema_error(tmp_path, script):
    """PoolStore refuses such a file with the reader's SchemaError (not "not a database")."""
    path = _created(tmp_path / "schema.db")
    _sql(path, script)
    conn = sqlite3.connect(path)
    before = conn.execute("SELECT * FROM agent_pool_records").fetchall()
    conn.close()
    with pytest.raises(poolscope.SchemaError) as reader:
        poolscope.open(path, cache=False)
    with pytest.raises(poolscope.SchemaError) as writer:
        poolscope.PoolStore(path)
    assert writer.value.code == reader.value.code == "schema"
    assert writer.value.problem == reader.value.problem
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT * FROM agent_pool_records").fetchall() == before
    conn.close()
