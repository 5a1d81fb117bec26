"""Errors: one boundary for SQLite's, codes set where errors are raised, typed refusals."""

from __future__ import annotations

import ast
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE_DB

import poolscope
from poolscope import errors
from poolscope import load as load_module
from poolscope.check import CODES
from poolscope.sqlite_errors import sqlite_errors, translate

PACKAGE = Path(poolscope.__file__).parent
SAMPLE = str(SAMPLE_DB)


def _sqlite_error(cls: type[sqlite3.Error], message: str, name: str | None) -> sqlite3.Error:
    error = cls(message)
    if name is not None:
        error.sqlite_errorname = name  # as sqlite3 sets it (Python 3.11+)
    return error


@pytest.mark.parametrize(
    ("name", "expected", "code"),
    [
        ("SQLITE_BUSY", errors.DatabaseLockedError, "locked"),
        ("SQLITE_BUSY_SNAPSHOT", errors.DatabaseLockedError, "locked"),
        ("SQLITE_LOCKED_SHAREDCACHE", errors.DatabaseLockedError, "locked"),
        ("SQLITE_NOTADB", errors.NotADatabaseError, "not_a_database"),
        ("SQLITE_CORRUPT", errors.NotADatabaseError, "damaged"),
        ("SQLITE_CORRUPT_INDEX", errors.NotADatabaseError, "damaged"),
        ("SQLITE_IOERR_SHORT_READ", errors.NotADatabaseError, "io_error"),
        ("SQLITE_READONLY_DBMOVED", errors.DatabaseAccessError, "read_only"),
        ("SQLITE_FULL", errors.DatabaseAccessError, "disk_full"),
        ("SQLITE_PERM", errors.DatabaseAccessError, "access"),
        ("SQLITE_ERROR", errors.NotADatabaseError, "sqlite_error"),
        (None, errors.NotADatabaseError, "sqlite_error"),
    ],
)
def test_sqlite_errors_are_typed_by_result_code_not_by_message(name, expected, code, tmp_path):
    """The message says "locked" and "malformed" on purpose: only the result code counts."""
    error = _sqlite_error(sqlite3.OperationalError, "database is locked; disk image is malformed", name)
    typed = translate(error, tmp_path / "a.db", "pool.a", 7)
    assert type(typed) is expected and typed.code == code
    assert (typed.path, typed.pool_id, typed.seq) == (str(tmp_path / "a.db"), "pool.a", 7)
    assert "database is locked; disk image is malformed" in str(typed)  # SQLite's own words are kept
    with pytest.raises(expected) as raised, sqlite_errors(tmp_path / "a.db", "pool.a"):
        raise error
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_cannot_open_a_file_that_is_gone_is_a_changed_database(tmp_path):
    error = _sqlite_error(sqlite3.OperationalError, "unable to open database file", "SQLITE_CANTOPEN")
    assert type(translate(error, tmp_path / "gone.db")) is errors.DatabaseChangedError
    (tmp_path / "here.db").write_bytes(b"")
    assert translate(error, tmp_path / "here.db").code == "cannot_open"


@pytest.mark.parametrize("name", ["SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"])
def test_corruption_read_while_a_writer_wrote_is_a_changed_file_not_damage(name, small_db, tmp_path, open_db):
    """A WAL file with no writer is read without locks (``immutable``); a writer that comes later and
    checkpoints can hand that reader half-written pages, which SQLite reports as corruption (found
    in 15-20% of loads racing an append).  The file is not damaged: it changed while it was read."""
    import shutil

    path = tmp_path / "live.db"
    shutil.copy(small_db, path)
    db = open_db(path)
    assert db.conn.source.mode == "immutable"
    error = _sqlite_error(sqlite3.DatabaseError, "database disk image is malformed", name)
    assert type(translate(error, path, "pool.a")) is errors.NotADatabaseError  # nothing wrote: damage it is
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("UPDATE agent_pool_event_seq SET seq = seq + 1")
        assert type(translate(error, path, "pool.a")) is errors.DatabaseChangedError  # a writer at work
    finally:
        writer.close()  # checkpointed: no -wal left, but the file's mtime and size say it was written
    typed = translate(error, path, "pool.a", 3)
    assert type(typed) is errors.DatabaseChangedError and typed.code == "changed" and typed.seq == 3
    assert "half-written" in str(typed) and "malformed" in str(typed)


def test_a_writer_locked_out_gets_a_locked_error_with_its_code(tmp_path):
    path = tmp_path / "pool.db"
    poolscope.PoolStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with poolscope.PoolStore(path, timeout=0.05) as store, pytest.raises(poolscope.DatabaseLockedError) as raised:
            store.open_pool("pool.a", {})
        assert raised.value.code == "locked" and raised.value.pool_id == "pool.a"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_file_that_is_not_sqlite_past_its_header_is_not_a_database(tmp_path):
    path = tmp_path / "fake.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    with pytest.raises(poolscope.NotADatabaseError) as raised:
        poolscope.open(path)
    assert raised.value.code in ("not_a_database", "damaged")


def _loose_copy(source: Path, target: Path) -> None:
    """``source``'s records in a table with no NOT NULL (so that any damage can be stored)."""
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE agent_pool_records (pool_id, seq, kind, payload_json, PRIMARY KEY (pool_id, seq))")
    conn.execute("CREATE TABLE agent_pool_event_seq (pool_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
    conn.execute("ATTACH ? AS src", (str(source),))
    conn.execute("INSERT INTO agent_pool_records SELECT * FROM src.agent_pool_records")
    conn.commit()
    conn.execute("DETACH src")
    conn.close()


#: (how the payload is damaged, the code every reader of it reports)
DAMAGE = [
    ("NULL", "null_payload"),
    ("X'7b7d'", "blob_payload"),
    ("CAST(X'7b2274797065223a22ff227d' AS TEXT)", "invalid_utf8"),
    ("'{not json'", "bad_json"),
    ("'[1, 2]'", "bad_shape"),
    ("""'{"type":"run_message","stored":{}}'""", "bad_shape"),
]


@pytest.mark.parametrize("threshold", [0, 1], ids=["one process", "forked helper"])
def test_damaged_records_carry_the_code_check_reports(small_db, tmp_path, monkeypatch, threshold):
    """The code is set where the record's error is raised (also in the forked
    helper of a load) and is the anomaly code ``check`` reports."""
    path = tmp_path / "damaged.db"
    _loose_copy(small_db, path)
    conn = sqlite3.connect(path)
    pool_id = conn.execute("SELECT min(pool_id) FROM agent_pool_records").fetchone()[0]
    expected: dict[int, str] = {}
    seqs = [
        row[0]
        for row in conn.execute(
            "SELECT seq FROM agent_pool_records WHERE pool_id = ? AND kind = 'run_message' ORDER BY seq", (pool_id,)
        )
    ]
    for (value, code), seq in zip(DAMAGE, seqs[-len(DAMAGE) :]):  # late: in the helper's half
        conn.execute(
            f"UPDATE agent_pool_records SET payload_json = {value} WHERE pool_id = ? AND seq = ?", (pool_id, seq)
        )
        expected[seq] = code
    unknown_status = seqs[-len(DAMAGE) - 1]
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = json_set(payload_json, '$.stored.receipt.status', 'lost') "
        "WHERE pool_id = ? AND seq = ?",
        (pool_id, unknown_status),
    )
    expected[unknown_status] = "unknown_status"
    unknown_kind = seqs[-len(DAMAGE) - 2]
    conn.execute(
        "UPDATE agent_pool_records SET kind = 'moved', payload_json = '{\"type\":\"moved\"}' WHERE pool_id = ? AND seq = ?",
        (pool_id, unknown_kind),
    )
    expected[unknown_kind] = "unknown_kind"
    conn.commit()
    conn.close()
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", threshold)
    db = poolscope.open(path)
    problems = db.pool(pool_id).index.problems
    assert {seq: error.code for seq, error in problems.items()} == expected
    assert all(code in CODES for code in expected.values())
    anomalies = {(a.seq, a.code) for a in db.check() if a.pool_id == pool_id and a.seq in expected}
    assert anomalies == set(expected.items())
    records = {r.cursor: r.problem.code for r in db.pool(pool_id).records() if r.problem is not None}
    assert records == expected


def test_every_error_class_has_its_own_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.PoolscopeError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), codes
    assert (
        errors.CursorError("x", code="elsewhere").code == "elsewhere" and errors.CursorError("x").code == "bad_cursor"
    )


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_click_lives_only_in_the_command_line_module():
    importers = set()
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "click" for a in node.names):
                importers.add(name)
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "click":
                importers.add(name)
    assert importers <= {"cli.py"} or all(n == "cli.py" or n.startswith("cli/") for n in importers), importers


def test_sqlite_errors_are_translated_in_one_place():
    """No module catches ``sqlite3.Error`` to raise ``translate(...)`` itself: they use ``sqlite_errors``."""
    offenders = []
    for name, tree in _modules():
        if name == "sqlite_errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if getattr(func, "id", getattr(func, "attr", None)) == "translate":
                    offenders.append(f"{name}:{node.lineno}")
    assert not offenders


# ----------------------------------------------------- arguments at the door
BAD_PATHS = [5, None, 1.5, ["a.db"], "a\x00b", ""]


@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_a_path_that_is_not_one_is_an_invalid_input_error(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for call in (poolscope.open, poolscope.PoolStore, lambda p: poolscope.fleet([p], workers=1)):
        with pytest.raises(poolscope.InvalidInputError, match="path|source"):
            call(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("timeout", ["1", -1, float("nan"), float("inf"), True, None])
def test_a_timeout_is_a_number_of_seconds(timeout, tmp_path):
    for call in (
        lambda: poolscope.open(SAMPLE, timeout=timeout),
        lambda: poolscope.PoolStore(tmp_path / "s.db", timeout=timeout),
        lambda: poolscope.fleet(SAMPLE, timeout=timeout, workers=1),
    ):
        with pytest.raises(poolscope.InvalidInputError, match="timeout must be a number of seconds"):
            call()
    assert not (tmp_path / "s.db").exists()


def test_max_payload_is_a_positive_size_and_one_above_sqlites_limit_is_lowered(sample_db):
    for bad in (0, -5, "9", 1.5, True):
        with pytest.raises(poolscope.InvalidInputError, match="max_payload"):
            poolscope.open(SAMPLE, max_payload=bad)
    with poolscope.open(SAMPLE, max_payload=2**40) as db:  # SQLite's limits are C ints
        assert db.max_payload == 2**31 - 1
        assert db.pool("pool.alpha").snapshot().to_json() == sample_db.pool("pool.alpha").snapshot().to_json()


@pytest.mark.parametrize("sources", [None, 5, {"a.db": 1}, ["sample_data/demo.db", 5]], ids=repr)
def test_fleet_sources_of_another_kind_are_refused_whole(sources):
    with pytest.raises(poolscope.InvalidInputError, match="source"):
        poolscope.fleet(sources, workers=1)


@pytest.mark.parametrize("workers", [0, -1, "2", 1.5])
def test_fleet_workers_is_a_count(workers):
    with pytest.raises(poolscope.InvalidInputError, match="workers"):
        poolscope.fleet(SAMPLE, workers=workers)


@pytest.mark.parametrize("upto", ["5", 5.0, True, -1, None, 2**70, "array", "NA"])
def test_upto_is_a_cursor_everywhere_frames_are_made(upto, sample_db):
    """``upto`` is None or an integer from 0: one beyond every head is the head
    (pools differ in head), anything else is a CursorError, never an empty frame."""
    import numpy as np
    import pandas as pd

    upto = {"array": np.array([1, 2]), "NA": pd.NA}.get(upto, upto) if isinstance(upto, str) else upto
    pool = sample_db.pool("pool.alpha")
    with poolscope.fleet(SAMPLE, workers=1) as hosts:
        for name in ("records_df", "members_df", "messages_df", "wakes_df"):
            for owner in (sample_db, pool, hosts):
                if upto is None or (type(upto) is int and upto == 2**70):
                    expected = getattr(pool if owner is pool else sample_db, name)()
                    assert len(getattr(owner, name)(upto=upto)) == len(expected)
                else:
                    with pytest.raises(poolscope.CursorError, match="upto"):
                        getattr(owner, name)(upto=upto)


@pytest.mark.parametrize("bound", ["after", "upto"])
@pytest.mark.parametrize("cursor", [-1, -(2**70), "3", 2.0])
def test_record_bounds_are_cursors_as_the_frames_take_them(sample_db, bound, cursor):
    """``records(after=-1)`` read every record and ``records(upto=-1)`` none,
    where a frame or a diff said CursorError: the SDK's cursors are unsigned."""
    pool = sample_db.pool("pool.alpha")
    with pytest.raises(poolscope.CursorError, match=bound):
        pool.records(**{bound: cursor})
    with pytest.raises(poolscope.CursorError, match=bound):
        list(pool.iter_records(**{bound: cursor}))
    assert len(pool.records(**{bound: 0})) == (pool.head if bound == "after" else 0)


def test_a_non_string_pool_id_is_no_pool(sample_db):
    for pool_id in (["pool.alpha"], {"a": 1}, 5, None):
        with pytest.raises(poolscope.PoolNotFoundError, match="a pool id is a string"):
            sample_db.pool(pool_id)


def test_a_closed_database_reads_nothing_more_and_says_so(sample_copy, open_db):
    db = open_db(sample_copy)
    pool = db.pool("pool.alpha")
    assert pool.snapshot(7).messages  # loaded, and its payloads read
    db.close()
    db.close()  # closing twice is harmless
    assert db.pool_ids == ["pool.alpha", "pool.bravo", "pool.charlie"]  # listed at the open
    for call in (
        lambda: pool.snapshot(7).to_json(),  # a snapshot reads its payloads from the file
        lambda: db.pool("pool.bravo"),
        db.heads,
        db.refresh,
        db.check,
        db.records_df,
        lambda: pool.records(upto=3),
        lambda: pool.payloads([3]),
    ):
        with pytest.raises(poolscope.DatabaseClosedError) as raised:
            call()
        assert raised.value.code == "closed" and str(sample_copy) in str(raised.value)


def test_a_closed_store_writes_nothing_more_and_says_so(sample_copy):
    def rows() -> int:
        with closing(sqlite3.connect(sample_copy)) as conn:
            return conn.execute("SELECT count(*) FROM agent_pool_records").fetchone()[0]

    before = rows()
    store = poolscope.PoolStore(sample_copy)
    store.close()
    store.close()
    for call in (
        lambda: store.snapshot("pool.alpha"),
        lambda: store.join_member("pool.alpha", {"run_id": "run.late", "agent_id": "agent.late"}),
        lambda: store.next_event_sequence("pool.alpha"),
    ):
        with pytest.raises(poolscope.DatabaseClosedError) as raised:
            call()
        assert raised.value.code == "closed" and str(sample_copy) in str(raised.value)
    assert rows() == before


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"pools": 2**63}, "pools must be"),
        ({"pools": 0}, "pools must be"),
        ({"records": 2**40}, "records must be"),
        ({"pools": 100_000, "records": 100_000}, "pools × records"),
        ({"members_cap": 0}, "members_cap"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_generate_refuses_what_it_could_never_finish(options, says, tmp_path):
    from poolscope.generate import generate

    with pytest.raises(poolscope.InvalidInputError, match=says):
        generate(tmp_path / "g.db", **options)
    assert list(tmp_path.iterdir()) == []


def test_a_rule_of_the_files_own_refusing_a_write_is_a_write_refused_error(tmp_path):
    """A trigger (or CHECK, or UNIQUE index) the SDK's schema does not have:
    SQLite's constraint error becomes WriteRefusedError, not "not a database"."""
    path = tmp_path / "pool.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        store.conn.execute(
            "CREATE TRIGGER no_more BEFORE INSERT ON agent_pool_records BEGIN SELECT RAISE(ABORT, 'frozen'); END"
        )
        with pytest.raises(poolscope.WriteRefusedError, match="frozen") as raised:
            store.record_pool_created("p")
        assert raised.value.code == "write_refused" and isinstance(raised.value, poolscope.DatabaseError)
        assert len(store.watch("p")) == 1


def test_a_dangling_symlink_is_named_as_one(tmp_path):
    error = _sqlite_error(sqlite3.OperationalError, "unable to open database file", "SQLITE_CANTOPEN")
    (tmp_path / "link.db").symlink_to(tmp_path / "gone.db")
    typed = translate(error, tmp_path / "link.db")
    assert type(typed) is errors.DatabaseChangedError and "symlink to" in str(typed) and "gone.db" in str(typed)


@pytest.fixture
def opened_only(tmp_path) -> poolscope.PoolHistory:
    """A pool whose log is one ``pool_opened``: no member, message or wake."""
    path = tmp_path / "opened.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
    with poolscope.open(path, cache=False) as db:
        yield db.pool("p")


def test_the_analysis_layer_answers_on_a_pool_with_nothing_to_analyse(opened_only):
    import matplotlib

    matplotlib.use("Agg")
    from poolscope import plot

    latency = opened_only.latency_df()
    assert len(latency) == 0 and str(latency["to_status"].dtype) == "category"  # the dtypes of a full frame
    for kind in ("message", "wake"):
        ax = plot.latency(opened_only, kind=kind)
        assert [t.get_text() for t in ax.texts] == [f"no {kind} reached two statuses"]
    nothing = opened_only.without(records=[1])
    assert nothing.head == 1 and len(nothing) == 0  # the log's head: cursors keep their values
    with pytest.raises(poolscope.PoolNotOpenedError):  # as the SDK on a copy with no record left
        nothing.snapshot()
    with pytest.raises(poolscope.InvalidInputError, match="no record with seq 1 in this pool"):
        nothing.without(records=[1])


@pytest.mark.parametrize("records", [[2**70], [-3], [0], 1.5, "12"], ids=repr)
def test_without_takes_seqs_only(sample_db, records):
    with pytest.raises(poolscope.InvalidInputError, match="records must be|no record with seq"):
        sample_db.pool("pool.alpha").without(records=records)


@pytest.mark.parametrize("window", [[1], float("nan"), 2.5, True, 0, -4, "50"], ids=repr)
def test_an_activity_window_is_a_count_of_cursors(sample_db, window):
    with pytest.raises(poolscope.InvalidInputError, match="window"):
        sample_db.pool("pool.alpha").activity(window=window)


def test_an_activity_window_wider_than_any_log_is_one_window(sample_db):
    import numpy as np

    pool = sample_db.pool("pool.alpha")
    one = pool.activity(window=2**70)
    assert set(one["window_start"]) == {1} and one.query("series == 'record'")["count"].sum() == pool.head
    assert pool.activity(window=np.int64(50)).equals(pool.activity(window=50))


def test_selections_and_filters_of_the_wrong_type_are_invalid_input(sample_db):
    import matplotlib

    matplotlib.use("Agg")
    from poolscope import plot

    pool = sample_db.pool("pool.alpha")
    for runs, says in ((5, "an id or a list of ids"), ([5], "ids \\(strings\\)"), ({"a": 1}, "an id or a list")):
        with pytest.raises(poolscope.InvalidInputError, match=says):
            plot.members(pool, runs=runs)
    explorer = poolscope.explore(sample_db, "pool.alpha")
    with pytest.raises(poolscope.InvalidInputError, match="unknown status 'bogus'"):
        explorer.jump(status="bogus")
    with pytest.raises(poolscope.InvalidInputError, match="unknown kind"):
        explorer.jump(kind="bogus")
    with pytest.raises(poolscope.InvalidInputError, match="direction"):
        explorer.jump("sideways")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"idle_timeout": float("nan")}, poolscope.InvalidInputError),  # hung: NaN never compares as reached
        ({"poll": -1}, poolscope.InvalidInputError),
        ({"poll": None}, poolscope.InvalidInputError),
        ({"limit": -1}, poolscope.InvalidInputError),
        ({"limit": 1.5}, poolscope.InvalidInputError),
        ({"after": [1]}, poolscope.CursorError),
        ({"after": "5"}, poolscope.CursorError),
    ],
    ids=repr,
)
@pytest.mark.timeout(30, method="thread")
def test_follow_checks_its_arguments_before_it_waits(sample_db, options, error):
    with pytest.raises(error):
        next(sample_db.pool("pool.alpha").follow(**{"idle_timeout": 0.1, **options}))


def test_follow_with_limit_zero_yields_nothing(sample_db):
    assert list(sample_db.pool("pool.alpha").follow(after=0, limit=0, idle_timeout=0.1)) == []


@pytest.mark.parametrize(
    "options",
    [{"limit": -1}, {"limit": float("inf")}, {"limit": "3"}, {"kinds": 1.5}, {"kinds": [2**70]}, {"kinds": ["\udc80"]}],
    ids=repr,
)
def test_records_checks_limit_and_kinds(sample_db, options):
    with pytest.raises(poolscope.InvalidInputError):
        sample_db.pool("pool.alpha").records(**options)


def test_records_takes_a_limit_past_64_bits_as_no_limit(sample_db):
    pool = sample_db.pool("pool.alpha")
    assert len(pool.records(limit=2**70)) == pool.head == len(pool.records(limit=2**63))


def test_a_name_no_file_system_takes_is_invalid_input_not_an_os_error(tmp_path):
    long = tmp_path / ("x" * 300 + ".db")
    for call in (poolscope.open, poolscope.PoolStore):
        with pytest.raises(poolscope.InvalidInputError, match="a name of 303 bytes"):
            call(long)
    assert list(tmp_path.iterdir()) == []


def test_compare_takes_a_cursor_of_ascii_digits_only(tmp_path):
    from click.testing import CliRunner

    from poolscope.cli import cli

    result = CliRunner().invoke(cli, ["compare", f"{SAMPLE}::pool.alpha@²", f"{SAMPLE}::pool.alpha"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "pool.alpha@²" in result.stderr  # taken as part of the pool id: no such pool


def _hostile_calls(db: poolscope.Database, tmp: Path) -> dict[str, tuple[Any, type]]:
    """Calls with arguments of the wrong type or range, and the typed error each must raise."""
    from poolscope import cache, plot
    from poolscope.export import export, frame_for
    from poolscope.report import report
    from poolscope.why import recent_failures

    pool = db.pool("pool.alpha")
    explorer = poolscope.explore(db, "pool.alpha")
    bad, cursor = poolscope.InvalidInputError, poolscope.CursorError
    calls = {
        "open cache=0": (lambda: poolscope.open(SAMPLE, cache=0), bad),
        "open cache=[]": (lambda: poolscope.open(SAMPLE, cache=[]), bad),
        "cache.entries(root=[])": (lambda: cache.entries(root=[]), bad),
        "cache.clear(NUL)": (lambda: cache.clear("a\x00b", root=tmp / "c"), bad),
        "export to None": (lambda: export(db, None), bad),
        "report to a NUL name": (lambda: report(db, str(tmp / "r\x00.html")), bad),
        "frame_for(None)": (lambda: frame_for(db, None), bad),
        "payloads([None])": (lambda: pool.payloads([None]), cursor),
        "latest(None)": (lambda: pool.snapshot().messages.latest(None), bad),
        "recent_failures(upto=inf)": (lambda: recent_failures(pool, upto=float("inf")), cursor),
        "recent_failures(limit=-1)": (lambda: recent_failures(pool, limit=-1), bad),
        "plot.compare(window='5')": (lambda: plot.compare(pool, pool, window="5"), bad),
        "explorer interval=0": (lambda: poolscope.explore(db, "pool.alpha", interval=0), bad),
        "explorer interval=None": (lambda: poolscope.explore(db, "pool.alpha", interval=None), bad),
        "explore(db, [1])": (lambda: poolscope.explore(db, [1]), poolscope.PoolNotFoundError),
        "remove_panel('bogus')": (lambda: explorer.remove_panel("bogus"), bad),
        "step(0.0)": (lambda: explorer.step(0.0), bad),
        "jump(kind=[1])": (lambda: explorer.jump(kind=[1]), bad),
    }
    for name in ("members", "messages", "wakes", "activity", "dashboard"):
        draw = getattr(plot, name)
        calls[f"plot.{name}(upto=inf)"] = (lambda draw=draw: draw(pool, upto=float("inf")), cursor)
        calls[f"plot.{name}(upto=-1)"] = (lambda draw=draw: draw(pool, upto=-1), cursor)
        calls[f"plot.{name}(cursor=b'x')"] = (lambda draw=draw: draw(pool, cursor=b"x"), cursor)
    for name in ("messages", "wakes"):
        draw = getattr(plot, name)
        calls[f"plot.{name}(max_marks=nan)"] = (lambda draw=draw: draw(pool, max_marks=float("nan")), bad)
        calls[f"plot.{name}(max_lanes=None)"] = (lambda draw=draw: draw(pool, max_lanes=None), bad)
    return calls


def test_arguments_of_the_wrong_type_or_range_are_typed_errors(sample_db, tmp_path):
    """Found by fuzzing every public call: each raised a TypeError, ValueError,
    KeyError, IndexError or OverflowError from deep inside (one hung)."""
    import matplotlib

    matplotlib.use("Agg")
    failures = {}
    for name, (call, expected) in _hostile_calls(sample_db, tmp_path).items():
        try:
            call()
        except expected:
            continue
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {error}"
        else:
            failures[name] = "no error"
    assert failures == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_plots_take_a_cursor_past_the_head_as_the_head(sample_db):
    import matplotlib

    matplotlib.use("Agg")
    from poolscope import plot

    pool = sample_db.pool("pool.alpha")
    far, head = plot.members(pool, upto=2**70, cursor=2**70), plot.members(pool, upto=pool.head, cursor=pool.head)
    assert far.get_xlim() == head.get_xlim() and far.get_title(loc="left") == head.get_title(loc="left")


def test_outputs_with_a_name_that_is_not_utf8_are_written(sample_db, tmp_path):
    from poolscope.export import export
    from poolscope.generate import generate

    folder = tmp_path / os.fsdecode(b"exp\xe9")
    written = export(sample_db, folder, format="parquet")
    assert len(written) == 5 and all(Path(p).is_file() for p in written)
    summary = generate(os.fsencode(tmp_path / "bytes.db"), pools=1, records=20)
    assert summary["path"] == str(tmp_path / "bytes.db")
