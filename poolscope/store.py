"""Writing: :class:`PoolStore`, a port of the SDK's ``SqliteAgentPoolStore`` on sqlite-utils.

Same tables, same SQL, same method names as the SDK's ``AgentPoolStore``
trait, and byte-identical rows for the same calls, so the SDK and poolscope
can share one file.  Two things are better than the SDK:

* the SDK replays the whole log before every append; ``PoolStore`` keeps the
  fold (:class:`~poolscope.fold.PoolFold`) in memory and only reads the records
  other writers appended since its last call, so an append costs the same at
  1M records as at 1k;
* every call runs in a ``BEGIN IMMEDIATE`` transaction, so several processes
  appending to one pool at once all succeed with contiguous seqs.

Example::

    >>> from poolscope import PoolStore
    >>> store = PoolStore("example.db")
    >>> store.open_pool("pool.a", {})
    <Snapshot 'pool.a' @ 1: 0 members, 0 topics, 0 messages, 0 wakes>
    >>> store.record_pool_created("pool.a")
    2
    >>> store.join_member("pool.a", {"run_id": "run.1", "agent_id": "agent.x"})
    3
    >>> store.close()
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from . import wire
from .arguments import path_argument, seconds_argument, shown_value
from .errors import (
    ConfigConflictError,
    CorruptRecordError,
    DatabaseAccessError,
    DatabaseClosedError,
    DatabaseError,
    InvalidInputError,
    NotADatabaseError,
    NotAMemberError,
    OutputError,
    PoolscopeError,
    SchemaError,
    WriteRefusedError,
)
from .fold import configs_equal
from .history import Record, check_as_loaded, read_records
from .index import MAX_SEQ, PoolIndex
from .load import fetch_payloads
from .output import never_a_database
from .snapshot import Snapshot, copied_member, snapshot_at
from .source import SQLITE_MAGIC, check_schema, check_side_files, read_start, resolve
from .sqlite_errors import is_busy, sqlite_errors

#: The SDK's DDL, verbatim (``SqliteAgentPoolStore::open``).
SCHEMA_SQL = """PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS agent_pool_records (
                     pool_id TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     kind TEXT NOT NULL,
                     payload_json TEXT NOT NULL,
                     PRIMARY KEY (pool_id, seq)
                 );
                 CREATE TABLE IF NOT EXISTS agent_pool_event_seq (
                     pool_id TEXT PRIMARY KEY,
                     seq INTEGER NOT NULL
                 );"""
#: The SDK's INSERT, with ``OR ABORT``: a conflict rule of the file's own (``ON CONFLICT REPLACE``)
#: would otherwise delete an older row to make room, without an error; the statement's OR overrides it.
INSERT_SQL = """INSERT OR ABORT INTO agent_pool_records (pool_id, seq, kind, payload_json)
                 VALUES (?1, ?2, ?3, ?4)"""
#: The row an append wrote, read back by its primary key (a trigger may have dropped or changed it).
WRITTEN_SQL = "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ?1 AND seq = ?2"
#: The tables PoolStore writes (a view of the same name cannot be appended to).
STORE_TABLES = ("agent_pool_records", "agent_pool_event_seq")


#: The SDK's next-seq query without its ``+ 1``: the top seq by SQLite's own order, in which
#: TEXT and BLOB sort above every number, so one such row at any place makes it the top.
NEXT_SEQ_SQL = "SELECT MAX(seq) FROM agent_pool_records WHERE pool_id = ?1"


def _next_seq(top: Any, path: Path, pool_id: str) -> int:
    """The seq the next record of a pool gets, from the pool's top seq.

    The SDK adds one to ``MAX(seq)``; on a damaged log that would write a REAL
    seq (``5.5 + 1``), a seq SQLite already holds (``'x' + 1`` is 1), or one no
    record can have (2^63-1 is the index's "still current" mark), and every
    later append of the pool would fail or leave a gap.  Those are refused
    here, with the row named, before anything is written:

    >>> _next_seq(None, Path("a.db"), "p"), _next_seq(7, Path("a.db"), "p")
    (1, 8)
    >>> _next_seq(5.5, Path("a.db"), "p")
    Traceback (most recent call last):
    ...
    poolscope.errors.CorruptRecordError: file a.db, pool 'p': the pool's top seq is REAL 5.5, not an integer, so no next seq follows it (nothing was written); `poolscope doctor` lists the pool's bad seqs
    """
    if top is None:
        return 1
    if type(top) is not int:
        kind = {float: "REAL", str: "TEXT", bytes: "BLOB"}.get(type(top), type(top).__name__)
        shown = top if len(repr(top)) <= 40 else repr(top)[:40] + "…"
        raise CorruptRecordError(
            f"the pool's top seq is {kind} {shown!r}, not an integer, so no next seq follows it "
            "(nothing was written); `poolscope doctor` lists the pool's bad seqs",
            path=path,
            pool_id=pool_id,
            code="bad_seq",
        )
    if top >= MAX_SEQ:
        raise CorruptRecordError(
            f"the pool's top seq is {top}: no record can follow it (seqs end at {MAX_SEQ})",
            path=path,
            pool_id=pool_id,
            seq=top,
            code="bad_seq",
        )
    return max(top, 0) + 1


def _check_pool_id(pool_id: Any, path: Path) -> None:
    """A pool id is one of the SDK's identifiers (``AgentPoolId``: not empty, at
    most 512 bytes, no control character) that SQLite can store as UTF-8 text."""
    if not isinstance(pool_id, str) or not pool_id:
        raise InvalidInputError(f"pool_id must be a non-empty string, not {shown_value(pool_id)}", path=path)
    wire.check_text(pool_id, "pool_id")
    problem = wire.identifier_problem(pool_id)
    if problem is not None:
        raise InvalidInputError(f"pool_id: {problem} ({wire.shown_id(pool_id)})", path=path)


def _checked_before_writing(error: BaseException) -> bool:
    """Whether ``error`` is one of poolscope's own refusals, raised before a
    call writes (bad input, not a member, a config conflict, a damaged pool),
    rather than the file's (a :class:`~poolscope.errors.DatabaseError`) or a
    bug's or an interrupt's, after which the transaction's state is unknown."""
    return isinstance(error, PoolscopeError) and not isinstance(error, DatabaseError)


def _check_key(value: Any, name: str, path: Path) -> None:
    """A key looked up in the fold (a run id, an idempotency key, a condition id) is a string."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, not {shown_value(value)}", path=path)


def _check_compiled(compiled: dict, path: Path, pool_id: str) -> None:
    """The SDK writes only what ``CompiledEventFilter::new`` made from the
    criteria (fingerprint, id, indexed fields, payload access, queue): any
    other compiled filter is what ``doctor`` reports as
    ``wake_filter_mismatch``, so it is refused before it is written.  Criteria
    given with a bare list (``{"run_ids": ["run.a"]}``) are written as serde
    writes them (``{"include": [...]}``), and the fingerprint must be that
    text's."""
    expected = wire.compile_filter(compiled["criteria"])
    wrong = [name for name in expected if expected[name] != compiled[name]]
    if wrong:
        shown = "; ".join(
            f"{name} is {shown_value(compiled[name])}, compiled: {shown_value(expected[name])}" for name in wrong
        )
        raise InvalidInputError(
            f"compiled_filter is not what the SDK compiles from its criteria ({shown}); "
            "poolscope.wire.compile_filter(criteria) makes the SDK's",
            path=path,
            pool_id=pool_id,
        )


def _check_store_file(path: Path) -> None:
    """Refuse, before SQLite opens it, a path ``PoolStore`` must not write to:
    a folder, a FIFO or device (opening it would block), a symlink to nothing
    (SQLite would create a file behind it), a file that is not SQLite (it would
    be overwritten) or one this process may not write -- nor one beside which
    SQLite's journal, WAL or shared-memory file is not a regular file (a FIFO
    there would block the write for ever)."""
    if os.path.exists(path) or not os.path.lexists(path):
        check_side_files(path, resolve(path))
    if not os.path.lexists(path):
        # not at the name of a database's side file (pool.db-wal): the next writer of pool.db would take
        # the new database for its WAL (or journal) and delete it
        never_a_database(path)
        folder = path.parent if str(path.parent) else Path(os.curdir)
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise DatabaseAccessError(
                f"cannot create a database here: the folder {str(folder)!r} is not writable",
                path=path,
                code="read_only",
            )
        return
    if not os.path.exists(path):
        raise OutputError(
            f"is a symlink to {os.readlink(path)!r}, which does not exist: "
            "PoolStore does not create a database behind a symlink",
            path=path,
        )
    if path.is_dir():
        raise InvalidInputError("is a folder, not a database file", path=path)
    try:
        header = read_start(path, len(SQLITE_MAGIC))
    except PermissionError:
        raise DatabaseAccessError("cannot be read (permission denied)", path=path, code="access") from None
    except OSError as error:
        raise NotADatabaseError(
            f"{error.strerror}: PoolStore writes only to SQLite database files", path=path, code="not_a_database"
        ) from None
    if header and header != SQLITE_MAGIC:  # an empty file is a new database, as for SQLite
        raise NotADatabaseError(
            "is not an SQLite database (wrong file header): PoolStore would overwrite it, so it does not open it",
            path=path,
            code="not_a_database",
        )
    if not os.access(path, os.W_OK):
        raise DatabaseAccessError(
            "is read-only: PoolStore appends records (poolscope.open reads without writing)",
            path=path,
            code="read_only",
        )
    folder = path.parent if str(path.parent) else Path(os.curdir)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseAccessError(
            f"is in a folder this process cannot write ({str(folder)!r}), where SQLite keeps the database's "
            "-wal and -shm (or -journal) while writing; poolscope.open reads without writing",
            path=path,
            code="read_only",
        )


def _check_store_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file whose tables PoolStore cannot append to, as the reader
    refuses it (:func:`~poolscope.source.check_schema`: ``agent_pool_records``
    lacks a column of the SDK's) -- or whose ``agent_pool_records`` or
    ``agent_pool_event_seq`` is a view, which a reader may read but no
    append can write (:class:`~poolscope.errors.SchemaError`)."""
    check_schema(conn, path)
    with sqlite_errors(path):
        kinds = dict(
            conn.execute(
                "SELECT lower(name), type FROM sqlite_master WHERE lower(name) IN (?1, ?2)", STORE_TABLES
            ).fetchall()
        )
    for table in STORE_TABLES:
        if kinds.get(table, "table") != "table":
            raise SchemaError(
                f"{table} is a {kinds[table]}, not a table: PoolStore appends only to the SDK's tables "
                "(poolscope.open reads it)",
                path=path,
            )


def _create_schema(conn: sqlite3.Connection, timeout: float) -> None:
    """Run the SDK's DDL, retrying while another process creates the same file.

    Switching a new file to WAL and ``CREATE TABLE IF NOT EXISTS`` can fail with
    "database is locked" at once (SQLite skips the busy handler when waiting
    could deadlock, or when the reader's snapshot went stale), so several
    processes opening one new file at the same moment must retry.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.executescript(SCHEMA_SQL)
            return
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class _PoolLog:
    """The writer's view of one pool: the shared index plus payload access."""

    def __init__(self, store: PoolStore, pool_id: str) -> None:
        self.pool_id = pool_id
        self.path = store.path
        self._store = store
        self.index = PoolIndex(store.path, pool_id)

    def payloads(self, seqs: list[int]) -> dict[int, Any]:
        """The payloads of these seqs, each checked against the record the index holds for it:
        a snapshot made in a batch that was rolled back since holds records the file no longer
        has (another may have been written at the same seq), a :class:`DatabaseChangedError`."""
        out = fetch_payloads(self._store.conn, self.path, self.pool_id, seqs)
        index = self.index
        known = index.arrays()["seq"]
        asked = np.asarray(seqs, dtype=np.int64)
        at = np.minimum(np.searchsorted(known, asked), max(len(known) - 1, 0))
        held = known[at] == asked if len(known) else np.zeros(len(asked), dtype=bool)
        entries = index.entries_at(at[held])
        check_as_loaded(
            out,
            [(seq, entry.kind, entry.key, entry.status) for seq, entry in zip(asked[held].tolist(), entries)],
            path=self.path,
            pool_id=self.pool_id,
            holder="this store folded",
            why="it was rolled back since (a store.batch() that failed) or the file was rewritten",
        )
        return out

    def payload_at(self, position: int) -> Any:
        seq = self.index.seqs[position]
        return self.payloads([seq])[seq]


class PoolStore:
    """A read-write pool store over one SQLite file, compatible with the SDK's.

    ``timeout`` is how long a call waits for another writer's lock (seconds).
    Values are the SDK's JSON shapes as plain dicts; they are validated and put
    in serde order (see :mod:`poolscope.wire`), so a dict with keys in any order,
    or with empty lists spelled out, writes the bytes the SDK writes.  A
    missing folder on the way to ``path`` is created (as ``export`` and
    ``report`` create theirs); a file in its place is an
    :class:`~poolscope.errors.OutputError`.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0) -> None:
        self.path = path_argument(path)
        timeout = seconds_argument(timeout, "timeout")
        _check_store_file(self.path)
        if not self.path.parent.is_dir():
            # missing folders are created, as every writer creates them (export, report: poolscope.output);
            # a file or a dangling link on the way is an OutputError naming it
            from .output import make_folder

            make_folder(self.path.parent)
        with sqlite_errors(self.path):
            conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            with sqlite_errors(self.path):
                self.db = sqlite_utils.Database(conn)
                _create_schema(conn, timeout)
            _check_store_schema(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._logs: dict[str, _PoolLog] = {}
        self._batch = False
        #: The pools written since each open ``SAVEPOINT`` of a batch inside a batch (innermost last).
        self._savepoints: list[set[str]] = []
        self._closed = False
        #: The error that ended the current batch (its transaction is rolled back), if one did.
        self._spoiled: BaseException | None = None

    @contextmanager
    def batch(self) -> Iterator[PoolStore]:
        """Run many calls in one transaction (a bulk import): one lock, one commit.

        >>> store = PoolStore("batch.db")
        >>> store.open_pool("pool.a", {})
        <Snapshot 'pool.a' @ 1: 0 members, 0 topics, 0 messages, 0 wakes>
        >>> members = [{"run_id": f"run.{k}", "agent_id": "agent.x"} for k in range(100)]
        >>> with store.batch():
        ...     for member in members:
        ...         _ = store.join_member("pool.a", member)
        >>> len(store.snapshot("pool.a").members)
        100

        A batch is all or nothing.  A call in it that fails on the file (a
        rule of the file's own refuses its row: :class:`~poolscope.errors.WriteRefusedError`;
        the disk is full; any other :class:`~poolscope.errors.DatabaseError`),
        or fails after it wrote, ends the batch: the transaction is rolled back
        (if a rule of the file's did not already roll it back), so none of the
        batch's calls are written, and the store forgets what it folded from
        them.  Every later call in the same ``with`` block, and the block's
        end, then raise :class:`~poolscope.errors.WriteRefusedError` with code
        ``batch_rolled_back`` -- nothing is written call by call outside the
        batch's transaction.  A call refused by poolscope's own checks before it
        touched the file (an :class:`~poolscope.errors.InvalidInputError`,
        ``NotAMemberError``, ``ConfigConflictError``, a damaged pool's
        ``CorruptRecordError``) leaves the batch as it was:

        >>> with store.batch():
        ...     _ = store.join_member("pool.a", {"run_id": "run.new", "agent_id": "agent.x"})
        ...     try:
        ...         _ = store.leave_member("pool.a", "run.never")
        ...     except NotAMemberError:
        ...         pass
        >>> store.snapshot("pool.a").cursor
        102

        A batch opened inside another one is all or nothing too (an SQLite
        ``SAVEPOINT``): when its block ends with an exception, its calls are
        rolled back and the store forgets what it folded from them, while the
        outer batch goes on as it was before the inner one began; when it ends
        normally its calls are written with the outer batch's (or not at all,
        if that one fails).  A call that fails on the file still ends the
        outermost batch, as above:

        >>> def add(runs, fail=False):
        ...     with store.batch():
        ...         for run in runs:
        ...             _ = store.join_member("pool.a", {"run_id": run, "agent_id": "agent.x"})
        ...         if fail:
        ...             raise ValueError("a bad chunk")
        >>> with store.batch():
        ...     add(["run.ok"])
        ...     try:
        ...         add(["run.bad.1", "run.bad.2"], fail=True)
        ...     except ValueError:
        ...         pass
        >>> [run for run in store.snapshot("pool.a").member_ids if run.startswith("run.ok") or run.startswith("run.bad")]
        ['run.ok']

        Closing the store inside a batch rolls the batch back; the block's end
        then raises :class:`~poolscope.errors.DatabaseClosedError`.

        >>> store.close()
        """
        if self._batch:
            with self._savepoint():
                yield self
            return
        conn = self.conn
        with sqlite_errors(self.path):
            conn.execute("BEGIN IMMEDIATE")
        self._batch, self._spoiled = True, None
        try:
            try:
                yield self
            except BaseException:
                if not self._closed:  # closing rolled it back
                    self._roll_back()
                raise
            self._end_block("COMMIT")
        finally:
            self._batch, self._spoiled, self._savepoints = False, None, []

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A batch inside a batch: a ``SAVEPOINT``, rolled back to (and the folds of the pools
        written since forgotten) when its block raises, released when it ends."""
        self._refuse_if_spoiled()
        conn = self.conn
        name = f"poolscope_batch_{len(self._savepoints) + 1}"
        with sqlite_errors(self.path):
            conn.execute(f"SAVEPOINT {name}")
        self._savepoints.append(set())
        try:
            yield
        except BaseException:
            written = self._savepoints.pop()
            if self._spoiled is None and not self._closed:  # else the whole batch is rolled back already
                if not conn.in_transaction:  # ended behind the store's back: what it holds is unknown
                    self._logs.clear()
                    raise
                try:
                    with sqlite_errors(self.path):
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                except BaseException as error:
                    self._spoiled = error
                    self._roll_back()
                    raise
                for pool_id in written:
                    self._logs.pop(pool_id, None)
            raise
        written = self._savepoints.pop()
        if self._savepoints:
            self._savepoints[-1].update(written)
        self._end_block(f"RELEASE {name}")

    def _end_block(self, statement: str) -> None:
        """A batch's (or nested batch's) block ended without raising: refuse a store closed or a
        batch spoiled in it, then ``statement`` (COMMIT, RELEASE); if that fails, the whole batch is
        rolled back."""
        self._refuse_if_closed_in_batch()
        self._refuse_if_spoiled()
        conn = self.conn
        if not conn.in_transaction:
            # ended behind the store's back (store.conn used for a COMMIT or ROLLBACK): what it holds is unknown
            self._logs.clear()
            return
        try:
            with sqlite_errors(self.path):
                conn.execute(statement)
        except BaseException as error:
            self._spoiled = error
            self._roll_back()
            raise

    def _refuse_if_closed_in_batch(self) -> None:
        """At a batch's end: :class:`~poolscope.errors.DatabaseClosedError` if the store was closed in it."""
        if self._closed:
            raise DatabaseClosedError(
                "the store was closed inside store.batch(): the batch was rolled back, none of its calls were written",
                path=self.path,
            )

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's ``sqlite3`` connection; :class:`~poolscope.errors.DatabaseClosedError`
        once the store is closed."""
        if self._closed:
            raise DatabaseClosedError(
                "the store was closed: nothing more is read or written through it", path=self.path
            )
        return self.db.conn

    def close(self) -> None:
        """Close the connection; a call afterwards raises :class:`~poolscope.errors.DatabaseClosedError`."""
        self._closed = True
        self.db.conn.close()

    def __enter__(self) -> PoolStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing
    @contextmanager
    def _call(self, pool_id: str, immediate: bool = True) -> Iterator[None]:
        """One call's transaction: a ``BEGIN`` .. ``COMMIT`` of its own, or its part of the batch.

        A failed call leaves the file and the store's folds as they were:
        its transaction is rolled back (unless SQLite already did: a rule of
        the file's own may roll back) and every fold that may hold a row the
        rollback took away is dropped, to be read again from the file.  Only
        a failure of poolscope's own checks before the call wrote anything
        keeps the fold (and, in a batch, the batch: see :meth:`batch`).
        """
        conn = self.conn
        if self._batch:
            self._refuse_if_spoiled(pool_id)
            if not conn.in_transaction:
                self._spoiled = WriteRefusedError(
                    "the batch's transaction was ended outside the store (store.conn used for a COMMIT or ROLLBACK?)",
                    path=self.path,
                    pool_id=pool_id,
                )
                self._roll_back()
                self._refuse_if_spoiled(pool_id)
            changes = conn.total_changes
            try:
                yield
            except BaseException as error:
                if not (_checked_before_writing(error) and conn.in_transaction and conn.total_changes == changes):
                    self._spoiled = error
                    self._roll_back()
                raise
            return
        with sqlite_errors(self.path, pool_id):
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        changes = conn.total_changes
        try:
            yield
        except BaseException as error:
            self._roll_back(None if _checked_before_writing(error) and conn.total_changes == changes else pool_id)
            raise
        try:
            with sqlite_errors(self.path, pool_id):
                conn.execute("COMMIT")
        except BaseException:
            self._roll_back(pool_id)
            raise

    def _roll_back(self, forget: str | None = "") -> None:
        """Roll back the open transaction, if SQLite has not already, and forget
        the folds it made wrong: ``forget`` names the pool whose fold to drop,
        ``None`` none, and by default (a batch) every pool's."""
        conn = self.conn
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error that made the call fail is the one to raise
        if forget is None:
            return
        if forget:
            self._logs.pop(forget, None)
        else:
            self._logs.clear()

    def _refuse_if_spoiled(self, pool_id: str | None = None) -> None:
        """In a batch that a failed call ended, refuse every later call (see :meth:`batch`)."""
        if self._batch and self._spoiled is not None:
            cause = self._spoiled
            said = cause.problem if isinstance(cause, PoolscopeError) else str(cause)
            shown = said if len(said) <= 300 else said[:300] + "…"
            raise WriteRefusedError(
                f"this store.batch() was rolled back when a call in it failed ({type(cause).__name__}: {shown}): "
                "none of its calls were written, and no call is taken before the batch ends; start a new batch",
                path=self.path,
                pool_id=pool_id,
                code="batch_rolled_back",
            )

    @contextmanager
    def _transaction(self, pool_id: str, immediate: bool = True) -> Iterator[_PoolLog]:
        """Lock (for writes), catch the fold up with other writers, yield the log."""
        _check_pool_id(pool_id, self.path)
        with self._call(pool_id, immediate):
            log = self._logs.get(pool_id)
            if log is None:
                log = self._logs[pool_id] = _PoolLog(self, pool_id)
            log.index.load(self.conn, progress=False)
            yield log

    def _replay_checks(self, log: _PoolLog) -> None:
        """Fail where the SDK's ``replay`` fails: damaged records, conflicting opens."""
        log.index.check_replay(log.index.head, opened=False)

    def _snapshot_checks(self, log: _PoolLog) -> None:
        """Fail where the SDK's ``snapshot`` fails (as ``_replay_checks``, plus an unopened pool)."""
        log.index.check_replay(log.index.head)

    def _append(self, log: _PoolLog, kind: str, payload: dict) -> int:
        """Write one record after the pool's top seq and fold it; return its seq.

        The row is read back by its primary key: a rule of the file's own that
        drops it without an error (a trigger's ``RAISE(IGNORE)``) or changes it
        (an ``AFTER INSERT`` trigger, a column whose type turns the seq into a
        REAL) is a :class:`~poolscope.errors.WriteRefusedError`, and the call is
        rolled back, so the fold only ever holds what the file holds.
        """
        conn = self.conn
        pool_id = log.pool_id
        with sqlite_errors(self.path, pool_id):
            seq = _next_seq(conn.execute(NEXT_SEQ_SQL, (pool_id,)).fetchone()[0], self.path, pool_id)
            text = wire.dumps(payload)
            conn.execute(INSERT_SQL, (pool_id, seq, kind, text))
            rows = conn.execute(WRITTEN_SQL, (pool_id, seq)).fetchall()
        if len(rows) != 1 or type(rows[0][0]) is not int or rows[0] != (seq, kind, text):
            raise WriteRefusedError(
                f"the database did not keep the {kind} record as written (a rule of its own, such as a trigger "
                "or a column's type, dropped or changed it): the call was rolled back, nothing was written",
                path=self.path,
                pool_id=pool_id,
                seq=seq,
            )
        log.index.append_rows([(seq, kind, "text", text)])
        if self._savepoints:
            self._savepoints[-1].add(pool_id)
        return seq

    # --------------------------------------------------------- trait methods
    def open_pool(self, pool_id: str, config: dict | None = None) -> Snapshot:
        """Create or open a pool; return its snapshot.

        A config that differs from the stored one (compared after the SDK's
        defaults) raises :class:`ConfigConflictError`; an equal one appends nothing.
        """
        config = wire.canonical_config(config, strict=True)
        with self._transaction(pool_id) as log:
            self._replay_checks(log)
            existing = log.index.fold.config
            if existing is not None:
                if not configs_equal(existing, config):
                    raise ConfigConflictError(
                        "sqlite agent pool store config conflicts with existing pool",
                        path=self.path,
                        pool_id=pool_id,
                        seq=log.index.fold.config_seq,
                    )
            else:
                self._append(log, "pool_opened", {"type": "pool_opened", "config": config})
            return snapshot_at(log, None)

    def snapshot(self, pool_id: str) -> Snapshot:
        """Rehydrate the pool's current snapshot (the SDK's ``snapshot``)."""
        with self._transaction(pool_id, immediate=False) as log:
            self._snapshot_checks(log)
            return snapshot_at(log, None)

    def record_pool_created(self, pool_id: str) -> int:
        """Append ``pool_created`` (on every call, as the SDK does); return its cursor."""
        with self._transaction(pool_id) as log:
            return self._append(log, "pool_created", {"type": "pool_created"})

    def join_member(self, pool_id: str, member: dict) -> int:
        """Append ``member_joined`` (a member that is already in is replaced); return its cursor."""
        member = wire.canonical_member(member, strict=True)
        with self._transaction(pool_id) as log:
            self._snapshot_checks(log)
            return self._append(log, "member_joined", {"type": "member_joined", "member": member})

    def leave_member(self, pool_id: str, run_id: str) -> tuple[dict, int]:
        """Append ``member_left`` for ``run_id``; return ``(member, cursor)`` (the member is a copy:
        editing it changes nothing the store writes).

        Raises :class:`NotAMemberError` when the run is not a member.
        """
        _check_key(run_id, "run_id", self.path)
        with self._transaction(pool_id) as log:
            self._replay_checks(log)
            position = log.index.fold.members.get(run_id)
            if position is None:
                raise NotAMemberError(
                    f"run {run_id!r} is not a member of this agent pool", path=self.path, pool_id=pool_id
                )
            stored = log.index.entries[position].extra  # the fold's own: written as it is, never handed out
            cursor = self._append(log, "member_left", {"type": "member_left", "member": stored})
            return copied_member(stored), cursor

    def message_receipt(self, pool_id: str, idempotency_key: str) -> dict | None:
        """The latest receipt stored under an idempotency key, or ``None`` (dedupe)."""
        _check_key(idempotency_key, "idempotency_key", self.path)
        with self._transaction(pool_id, immediate=False) as log:
            self._replay_checks(log)
            position = log.index.fold.message_dedupe.get(idempotency_key)
            return None if position is None else log.payload_at(position)["stored"]["receipt"]

    def record_message(self, pool_id: str, message: dict, receipt: dict) -> int:
        """Append one ``run_message`` status transition; return its cursor."""
        stored = {
            "message": wire.canonical_message(message, strict=True),
            "receipt": wire.canonical_receipt(receipt, strict=True),
        }
        if stored["receipt"]["message_id"] != stored["message"]["message_id"]:
            raise InvalidInputError("receipt.message_id must equal message.message_id", path=self.path, pool_id=pool_id)
        with self._transaction(pool_id) as log:
            self._snapshot_checks(log)
            return self._append(log, "run_message", {"type": "run_message", "stored": stored})

    def wake_registration(self, pool_id: str, idempotency_key: str) -> dict | None:
        """The latest wake registration stored under an idempotency key, or ``None``."""
        _check_key(idempotency_key, "idempotency_key", self.path)
        with self._transaction(pool_id, immediate=False) as log:
            self._replay_checks(log)
            position = log.index.fold.wake_dedupe.get(idempotency_key)
            return None if position is None else log.payload_at(position)["stored"]["registration"]

    def wake(self, pool_id: str, condition_id: str) -> dict | None:
        """The stored wake (condition, compiled filter, registration) for a condition id, or ``None``."""
        _check_key(condition_id, "condition_id", self.path)
        with self._transaction(pool_id, immediate=False) as log:
            self._replay_checks(log)
            position = log.index.fold.wakes.get(condition_id)
            return None if position is None else log.payload_at(position)["stored"]

    def record_wake(self, pool_id: str, condition: dict, compiled_filter: dict, registration: dict) -> int:
        """Append one ``wake`` status transition; return its cursor."""
        stored = {
            "condition": wire.canonical_condition(condition, strict=True),
            "compiled_filter": wire.canonical_compiled_filter(compiled_filter, strict=True),
            "registration": wire.canonical_registration(registration, strict=True),
        }
        if stored["registration"]["condition_id"] != stored["condition"]["condition_id"]:
            raise InvalidInputError(
                "registration.condition_id must equal condition.condition_id", path=self.path, pool_id=pool_id
            )
        _check_compiled(stored["compiled_filter"], self.path, pool_id)
        with self._transaction(pool_id) as log:
            self._snapshot_checks(log)
            return self._append(log, "wake", {"type": "wake", "stored": stored})

    def watch(self, pool_id: str, cursor: int | None = None) -> list[Record]:
        """Records after ``cursor`` (all when ``None``), in seq order."""
        _check_pool_id(pool_id, self.path)
        self._refuse_if_spoiled(pool_id)
        return list(read_records(self.conn, self.path, pool_id, cursor))

    def next_event_sequence(self, pool_id: str) -> int:
        """Allocate the next pool event sequence number (1, 2, …).

        The number handed out is the one stored: a rule of the file's own that
        drops or changes the counter's row is a :class:`~poolscope.errors.WriteRefusedError`
        (and nothing is written), never a number handed out twice.
        """
        _check_pool_id(pool_id, self.path)
        conn = self.conn
        with self._call(pool_id), sqlite_errors(self.path, pool_id):
            # the SDK's INSERT OR IGNORE + UPDATE seq = seq + 1, with the stored value checked first:
            # a REAL, TEXT or maximal one would turn into a REAL or repeat a number already handed out
            conn.execute("INSERT OR IGNORE INTO agent_pool_event_seq (pool_id, seq) VALUES (?1, 0)", (pool_id,))
            rows = conn.execute("SELECT seq FROM agent_pool_event_seq WHERE pool_id = ?1", (pool_id,)).fetchall()
            if not rows:
                raise WriteRefusedError(
                    "agent_pool_event_seq did not keep the pool's counter row (a rule of its own dropped it): "
                    "no event sequence was handed out, nothing was written",
                    path=self.path,
                    pool_id=pool_id,
                )
            if len(rows) != 1 or type(rows[0][0]) is not int or not 0 <= rows[0][0] < MAX_SEQ:
                found = ", ".join(repr(row[0])[:40] for row in rows[:3])
                raise CorruptRecordError(
                    f"agent_pool_event_seq holds {found} for this pool, not one integer below {MAX_SEQ}: "
                    "no next event sequence follows it (nothing was written)",
                    path=self.path,
                    pool_id=pool_id,
                    code="bad_event_seq",
                )
            seq = rows[0][0] + 1
            # OR ABORT: as INSERT_SQL, never another pool's counter deleted by a REPLACE rule
            conn.execute("UPDATE OR ABORT agent_pool_event_seq SET seq = ?2 WHERE pool_id = ?1", (pool_id, seq))
            stored = conn.execute("SELECT seq FROM agent_pool_event_seq WHERE pool_id = ?1", (pool_id,)).fetchall()
            if stored != [(seq,)] or type(stored[0][0]) is not int:
                raise WriteRefusedError(
                    f"agent_pool_event_seq did not keep the pool's next event sequence {seq} (a rule of its own "
                    "dropped or changed it): it was not handed out, nothing was written",
                    path=self.path,
                    pool_id=pool_id,
                )
            return seq

    def __repr__(self) -> str:
        return f"<PoolStore {str(self.path)!r}>"


__all__ = ["PoolStore"]
