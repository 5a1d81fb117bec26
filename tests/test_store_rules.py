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


def test_a_trigger_that_silently_drops_a_row_is_a_write_refused_error(tmp_path):
    """RAISE(IGNORE) drops the row without an error: the call must not hand out
    its seq, fold a member the file lacks, nor write a member_left for it later."""
    path = _created(tmp_path / "ignore.db")
    _sql(
        path,
        "CREATE TRIGGER no_joins BEFORE INSERT ON agent_pool_records WHEN new.kind = 'member_joined' "
        "BEGIN SELECT RAISE(IGNORE); END",
    )
    before = _rows(path)
    with poolscope.PoolStore(path) as store:
        for member in (OK, NEXT):  # and again: the same seq is not handed out twice
            with pytest.raises(poolscope.WriteRefusedError, match="did not keep the member_joined record") as raised:
                store.join_member("p", member)
            assert raised.value.code == "write_refused" and raised.value.pool_id == "p" and raised.value.seq == 3
            assert str(path) in str(raised.value)
        assert _rows(path) == before
        _same_as_the_reader(store)
        assert store.snapshot("p").members == []
        with pytest.raises(poolscope.NotAMemberError):
            store.leave_member("p", "run.ok")
        assert _rows(path) == before
        # what the rule lets through is still appended where the SDK appends it
        assert store.record_pool_created("p") == 3
        _same_as_the_reader(store)


#: Rules that refuse the row of run.bad: two roll the whole transaction back, two refuse the statement only.
RULES = {
    "RAISE(ROLLBACK) trigger": (
        "CREATE TRIGGER no_bad BEFORE INSERT ON agent_pool_records "
        "WHEN json_extract(new.payload_json, '$.member.run_id') = 'run.bad' "
        "BEGIN SELECT RAISE(ROLLBACK, 'run.bad may not join'); END"
    ),
    "ON CONFLICT ROLLBACK": (
        # the same table with one more rule: a second member_joined of the pool breaks it
        "ALTER TABLE agent_pool_records RENAME TO old_records;"
        "CREATE TABLE agent_pool_records (pool_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,"
        " payload_json TEXT NOT NULL, PRIMARY KEY (pool_id, seq),"
        " UNIQUE (pool_id, kind) ON CONFLICT ROLLBACK);"
        "INSERT INTO agent_pool_records SELECT * FROM old_records; DROP TABLE old_records;"
    ),
    "RAISE(ABORT) trigger": (
        "CREATE TRIGGER no_bad BEFORE INSERT ON agent_pool_records "
        "WHEN json_extract(new.payload_json, '$.member.run_id') = 'run.bad' "
        "BEGIN SELECT RAISE(ABORT, 'run.bad may not join'); END"
    ),
    "RAISE(IGNORE) trigger": (
        "CREATE TRIGGER no_bad BEFORE INSERT ON agent_pool_records "
        "WHEN json_extract(new.payload_json, '$.member.run_id') = 'run.bad' "
        "BEGIN SELECT RAISE(IGNORE); END"
    ),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_a_refused_call_rolls_its_whole_batch_back(tmp_path, rule):
    """A batch is all or nothing: the refusal is a WriteRefusedError (not SQLite's
    "cannot rollback - no transaction is active"), run.ok's earlier write is
    rolled back with it, and the store does not keep run.ok in its fold."""
    path = _created(tmp_path / "batch.db")
    _sql(path, rule)
    before = _rows(path)
    with poolscope.PoolStore(path) as store:
        with pytest.raises(poolscope.WriteRefusedError) as raised, store.batch():
            assert store.join_member("p", OK) == 3
            store.join_member("p", BAD)
        assert raised.value.code == "write_refused" and raised.value.pool_id == "p"
        assert _rows(path) == before
        _same_as_the_reader(store)
        with pytest.raises(poolscope.NotAMemberError):
            store.leave_member("p", "run.ok")  # no member_left for a run the file never saw join
        assert _rows(path) == before
        # and the store appends on as the SDK would
        with store.batch():
            assert store.join_member("p", OK) == 3
        _same_as_the_reader(store)


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_a_batch_whose_refusal_was_caught_takes_no_more_calls(tmp_path, rule):
    """After a refusal caught inside the batch, the later calls do not commit one
    by one: each, and the batch's end, raise WriteRefusedError (batch_rolled_back)."""
    path = _created(tmp_path / "caught.db")
    _sql(path, rule)
    before = _rows(path)
    with poolscope.PoolStore(path) as store:
        with pytest.raises(poolscope.WriteRefusedError, match="batch.* was rolled back") as ended, store.batch():
            store.join_member("p", OK)
            with pytest.raises(poolscope.WriteRefusedError) as refused:
                store.join_member("p", BAD)
            assert refused.value.code == "write_refused"
            for later in (
                lambda: store.join_member("p", NEXT),
                lambda: store.record_pool_created("p"),
                lambda: store.next_event_sequence("p"),
                lambda: store.snapshot("p"),
                lambda: store.watch("p"),
            ):
                with pytest.raises(poolscope.WriteRefusedError, match="batch.* was rolled back") as later_error:
                    later()
                assert later_error.value.code == "batch_rolled_back"
        assert ended.value.code == "batch_rolled_back"
        assert _rows(path) == before
        _same_as_the_reader(store)
        assert store.join_member("p", NEXT) == 3  # outside the batch: as the SDK appends
        _same_as_the_reader(store)


def test_a_call_refused_by_poolscopes_own_checks_leaves_the_batch_as_it_was(tmp_path):
    """Only a failure on the file (or after a write) ends a batch: a NotAMemberError or an
    InvalidInputError, raised before the call touched the file, does not."""
    path = _created(tmp_path / "checks.db")
    with poolscope.PoolStore(path) as store:
        with store.batch():
            assert store.join_member("p", OK) == 3
            with pytest.raises(poolscope.NotAMemberError):
                store.leave_member("p", "run.never")
            with pytest.raises(poolscope.InvalidInputError):
                store.join_member("p", {"run_id": "", "agent_id": "agent.x"})
            assert store.join_member("p", NEXT) == 4
        assert [row[1] for row in _rows(path)] == [1, 2, 3, 4]
        _same_as_the_reader(store)


EVENT_RULES = {
    "IGNORE": "RAISE(IGNORE)",
    "ROLLBACK": "RAISE(ROLLBACK, 'no more')",
    "ABORT": "RAISE(ABORT, 'no more')",
}


@pytest.mark.parametrize("action", EVENT_RULES.values(), ids=EVENT_RULES.keys())
def test_next_event_sequence_never_hands_out_a_number_it_did_not_store(tmp_path, action):
    path = _created(tmp_path / "events.db")
    _sql(
        path,
        f"CREATE TRIGGER t BEFORE UPDATE ON agent_pool_event_seq WHEN new.seq > 2 BEGIN SELECT {action}; END",
    )
    with poolscope.PoolStore(path) as store:
        assert [store.next_event_sequence("p") for _ in range(2)] == [1, 2]
        before = _rows(path)
        for _ in range(2):
            with pytest.raises(poolscope.WriteRefusedError) as raised:
                store.next_event_sequence("p")
            assert raised.value.code == "write_refused" and raised.value.pool_id == "p"
        assert _rows(path) == before
        _same_as_the_reader(store)
        # in a batch, the refusal rolls back the batch's appends too
        with pytest.raises(poolscope.WriteRefusedError), store.batch():
            store.join_member("p", OK)
            store.next_event_sequence("p")
        assert _rows(path) == before
        _same_as_the_reader(store)


def test_next_event_sequence_whose_counter_row_is_dropped_is_refused(tmp_path):
    path = _created(tmp_path / "no_counter.db")
    _sql(path, "CREATE TRIGGER t BEFORE INSERT ON agent_pool_event_seq BEGIN SELECT RAISE(IGNORE); END")
    before = _rows(path)
    with poolscope.PoolStore(path) as store:
        for _ in range(2):
            with pytest.raises(poolscope.WriteRefusedError, match="counter row") as raised:
                store.next_event_sequence("p")
            assert raised.value.code == "write_refused"
        assert _rows(path) == before
        _same_as_the_reader(store)


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


def test_an_instead_of_trigger_that_writes_nothing_is_a_write_refused_error(tmp_path):
    """The same view made while a store has the file open: the append is read back, found missing, refused."""
    path = _created(tmp_path / "view_later.db")
    with poolscope.PoolStore(path) as store:
        assert store.snapshot("p").cursor == 2  # the store's fold is loaded before the view appears
        _sql(path, VIEW)
        before = _rows(path)
        with pytest.raises(poolscope.WriteRefusedError, match="did not keep") as raised:
            store.join_member("p", OK)
        assert raised.value.code == "write_refused"
        assert _rows(path) == before
        _same_as_the_reader(store)
        assert store.snapshot("p").members == []


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


#: The SDK's records table again, with a rule of the file's own that resolves a conflict by deleting the
#: older row: one member_joined per pool, one counter at each value.
REPLACING = """
    ALTER TABLE agent_pool_records RENAME TO old_records;
    CREATE TABLE agent_pool_records (
        pool_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload_json TEXT NOT NULL,
        PRIMARY KEY (pool_id, seq), UNIQUE (pool_id, kind) ON CONFLICT REPLACE);
    INSERT INTO agent_pool_records SELECT * FROM old_records;
    DROP TABLE old_records;
    DROP TABLE agent_pool_event_seq;
    CREATE TABLE agent_pool_event_seq (pool_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE ON CONFLICT REPLACE);
    INSERT INTO agent_pool_event_seq VALUES ('other', 1);
"""


def test_a_rule_that_replaces_an_older_row_is_a_write_refused_error(tmp_path):
    """ON CONFLICT REPLACE deletes the row in the way without an error, and a read-back of the
    new row cannot see it: PoolStore's writes say OR ABORT, so the rule refuses instead."""
    path = _created(tmp_path / "replace.db")
    _sql(path, REPLACING)
    with poolscope.PoolStore(path) as store:
        assert store.join_member("p", OK) == 3
        before = _rows(path)
        with pytest.raises(poolscope.WriteRefusedError) as raised:
            store.join_member("p", NEXT)  # a second member_joined: REPLACE would delete run.ok's
        assert raised.value.code == "write_refused" and raised.value.pool_id == "p"
        assert _rows(path) == before
        _same_as_the_reader(store)
        assert [member["run_id"] for member in store.snapshot("p").members] == ["run.ok"]
        # the counter: 'other' holds 1, so p's step from 0 to 1 would delete 'other''s row
        with pytest.raises(poolscope.WriteRefusedError):
            store.next_event_sequence("p")
        assert _rows(path) == before


def test_a_batch_inside_a_batch_is_all_or_nothing(tmp_path):
    """A nested batch is a SAVEPOINT: the calls of one whose block raised are not
    written (and not folded), the outer batch's other calls are."""
    path = tmp_path / "nested.db"

    def chunk(store: poolscope.PoolStore, runs: list[str], fail: bool = False) -> None:
        with store.batch():
            for run in runs:
                store.join_member("p", {"run_id": run, "agent_id": "agent.x"})
            if fail:
                raise ValueError("a bad chunk")

    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        with store.batch():
            chunk(store, ["r1"])
            with pytest.raises(ValueError):
                chunk(store, ["r2", "r3"], fail=True)
            with pytest.raises(poolscope.NotAMemberError):  # the fold forgot r2 too
                store.leave_member("p", "r2")
            with pytest.raises(ValueError), store.batch():
                chunk(store, ["r4"])  # released into the middle batch, which then fails
                raise ValueError("the middle batch fails")
            chunk(store, ["r5"])
            assert store.join_member("p", NEXT) == 4
        _same_as_the_reader(store)
    written = [(seq, kind, payload) for _, seq, kind, payload in _rows(path)]
    assert [(seq, kind) for seq, kind, _ in written] == [
        (1, "pool_opened"),
        (2, "member_joined"),
        (3, "member_joined"),
        (4, "member_joined"),
    ]
    assert [payload.split('"run_id":"')[1].split('"')[0] for _, _, payload in written[1:]] == ["r1", "r5", "run.next"]


def test_a_call_failing_on_the_file_in_a_nested_batch_still_rolls_the_whole_batch_back(tmp_path):
    path = _created(tmp_path / "nested_rule.db")
    _sql(
        path,
        "CREATE TRIGGER no_bad BEFORE INSERT ON agent_pool_records "
        "WHEN NEW.payload_json LIKE '%run.bad%' BEGIN SELECT RAISE(ABORT, 'no'); END;",
    )
    before = _rows(path)
    with poolscope.PoolStore(path) as store:
        with pytest.raises(poolscope.WriteRefusedError) as ended, store.batch():
            store.join_member("p", NEXT)
            with store.batch(), pytest.raises(poolscope.DatabaseError):
                store.join_member("p", BAD)
        assert ended.value.code == "batch_rolled_back"
    assert _rows(path) == before


def test_closing_the_store_inside_a_batch_is_a_database_closed_error(tmp_path):
    path = _created(tmp_path / "closed.db")
    before = _rows(path)
    for depth in (1, 2):
        store = poolscope.PoolStore(path)
        with pytest.raises(poolscope.DatabaseClosedError, match="closed inside store.batch"), store.batch():
            store.join_member("p", NEXT)
            if depth == 2:
                with store.batch():
                    store.join_member("p", BAD)
                    store.close()
            else:
                store.close()
        with pytest.raises(poolscope.DatabaseClosedError):
            store.snapshot("p")
    assert _rows(path) == before
