"""Reading: :func:`open` a database, get a pool's history, its records and snapshots.

Example::

    >>> import poolscope
    >>> db = poolscope.open("sample_data/demo.db")
    >>> db.pool_ids
    ['pool.alpha', 'pool.bravo', 'pool.charlie']
    >>> pool = db.pool("pool.alpha")
    >>> pool.head, pool.snapshot(10).counts()
    (1201, {'members': 2, 'topics': 2, 'messages': 1, 'wakes': 3})
"""

from __future__ import annotations

import os
import sqlite3
import warnings
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import wire, wire_types
from .arguments import (
    byte_limit_argument,
    flag_argument,
    names_argument,
    path_argument,
    seconds_argument,
    shown_value,
    upto_argument,
    whole_number,
)
from .errors import (
    CorruptRecordError,
    CursorError,
    DatabaseChangedError,
    DatabaseClosedError,
    InvalidInputError,
    NotADatabaseError,
    PoolNotFoundError,
    PoolscopeError,
    RecordError,
)
from .fold import extract
from .index import MAX_SEQ, TOO_LARGE, PoolIndex, decode_row, too_big
from .load import fetch_payloads
from .snapshot import Snapshot, snapshot_at

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .cache import IndexCache
    from .diff import Diff
    from .whatif import WhatIf
    from .why import Explanation
from .source import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_TIMEOUT,
    SQLITE_MAGIC,
    FileIdentity,
    Source,
    change_mark,
    connect_readonly,
    keepalive,
    pool_id_text,
    read_start,
    resolve,
    stored_pool_ids,
)
from .sqlite_errors import sqlite_errors

#: Gaps below the head searched for the record written into one (:meth:`PoolHistory.refresh`).
GAPS_SEARCHED = 1000
#: Characters of a payload shown by ``repr(record)`` (the rest is counted).
REPR_PAYLOAD_CHARS = 160


@dataclass
class Record:
    """One stored record: ``cursor`` (seq), ``kind``, ``payload`` (dict).

    A record that cannot be decoded has ``payload = None`` and ``problem`` set.
    """

    pool_id: str
    cursor: int
    kind: str
    payload: Any
    problem: PoolscopeError | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        """The record with its payload and pool id shortened (a payload can be megabytes).

        >>> Record("p", 2, "run_message", {"text": "x" * 1000})   # doctest: +ELLIPSIS
        Record(pool_id='p', cursor=2, kind='run_message', payload={'text': 'xxx...… (1,012 chars))
        """
        from .render import shorten

        payload = repr(self.payload)
        if len(payload) > REPR_PAYLOAD_CHARS:
            payload = f"{payload[:REPR_PAYLOAD_CHARS]}… ({len(payload):,} chars)"
        problem = f", problem={str(self.problem)[:REPR_PAYLOAD_CHARS]!r}" if self.problem is not None else ""
        return (
            f"Record(pool_id={shorten(self.pool_id, 80)!r}, cursor={self.cursor}, kind={shorten(self.kind, 80)!r}, "
            f"payload={payload}{problem})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The SDK's ``AgentPoolStoreRecord`` JSON shape.

        >>> Record("p", 2, "pool_created", {"type": "pool_created"}).to_dict()
        {'pool_id': 'p', 'cursor': {'sequence': 2}, 'payload': {'type': 'pool_created'}}
        """
        if self.problem is not None:
            raise self.problem
        return {"pool_id": self.pool_id, "cursor": {"sequence": self.cursor}, "payload": self.payload}

    def to_json(self) -> str:
        """The record as ``serde_json`` writes it (:class:`CorruptRecordError`
        for a value nested too deeply to be written)."""
        try:
            return wire.dumps(self.to_dict())
        except TypeError:
            raise CorruptRecordError(
                "a value in this record nests too deeply to be written as JSON", pool_id=self.pool_id, seq=self.cursor
            ) from None


def read_records(
    conn: sqlite3.Connection,
    path: Path,
    pool_id: str,
    after: int | None = None,
    upto: int | None = None,
    *,
    kinds: str | list[str] | None = None,
    limit: int | None = None,
) -> Iterator[Record]:
    """Records of one pool with ``after < seq <= upto``, in seq order, decoded.

    A record that cannot be decoded comes back with ``problem`` set instead of
    stopping the iteration.
    """
    sql = (
        "SELECT seq, CAST(kind AS BLOB), typeof(payload_json), CAST(payload_json AS BLOB) "
        "FROM agent_pool_records WHERE pool_id = ? AND seq > ? AND typeof(seq) = 'integer'"
    )
    after = upto_argument(after, "after", path=path, pool_id=pool_id)
    upto = upto_argument(upto, "upto", path=path, pool_id=pool_id)
    upto = MAX_SEQ if upto is None else upto  # seqs the index cannot place are left out
    tail = ""
    extra: list[Any] = []
    if upto is not None:
        tail += " AND seq <= ?"
        extra.append(upto)
    kinds = names_argument(kinds, "kinds", "kind")
    if kinds is not None:
        for kind in kinds:
            wire.check_text(kind, "kinds")
            if kind not in wire.KINDS:  # a typo, or the kind of a newer SDK's records: both read as asked
                warnings.warn(
                    f"kinds: {shown_value(kind)} is not a record kind of the SDK ({', '.join(wire.KINDS)}); "
                    "only records stored with exactly that kind are read",
                    UserWarning,
                    stacklevel=2,
                )
        tail += f" AND kind IN ({','.join('?' * len(kinds))})"
        extra.extend(kinds)
    tail += " ORDER BY seq"
    last = after or 0
    left = _limit(limit)
    while left is None or left > 0:
        refused: tuple | None = None
        with sqlite_errors(path, pool_id):
            try:
                rows = conn.execute(
                    sql + tail + ("" if left is None else " LIMIT ?"),
                    [pool_id, last, *extra] + ([] if left is None else [left]),
                )
                for seq, kind_raw, typ, payload_raw in rows:
                    keepalive(conn)  # the bound is on SQLite's time to the next row, not on the reader's
                    yield _record(path, pool_id, seq, kind_raw, typ, payload_raw)
                    if type(seq) is int:
                        last = seq
                    if left is not None:
                        left -= 1
                return
            except sqlite3.DataError as error:
                # a value larger than max_payload: that record alone is damaged, the rest are read
                refused = _next_row_alone(conn, sql + tail, [pool_id, last, *extra]) if too_big(error) else None
                if refused is None or type(refused[0]) is not int:
                    raise
        yield _record(path, pool_id, *refused)
        last = refused[0]
        if left is not None:
            left -= 1


def _next_row_alone(conn: sqlite3.Connection, sql: str, params: list) -> tuple | None:
    """The next row of ``sql`` read alone (SQLite reads a row ahead: the row it
    refused may be the one after): as stored, or ``(seq, kind, TOO_LARGE, None)``
    if it is the one too large."""
    try:
        return conn.execute(sql + " LIMIT 1", params).fetchone()
    except sqlite3.DataError as error:
        if not too_big(error):
            raise
    where = sql[sql.index(" FROM ") :]
    row = conn.execute("SELECT seq, CAST(kind AS BLOB)" + where + " LIMIT 1", params).fetchone()
    return None if row is None else (row[0], row[1], TOO_LARGE, None)


def _limit(value: Any) -> int | None:
    """A ``limit`` of records: None (no limit) or a whole number, 0 or more."""
    if value is None:
        return None
    number = whole_number(value)
    if number is None or number < 0:
        raise InvalidInputError(f"limit must be a whole number of records (0 or more), not {shown_value(value)}")
    return min(number, 2**63 - 1)


def _record(path: Path, pool_id: str, seq: Any, kind_raw: Any, typ: str, payload_raw: Any) -> Record:
    """One row as a :class:`Record` (with ``problem`` set when it cannot be decoded)."""
    try:
        column, payload = decode_row(kind_raw, typ, payload_raw)
        # wrong shape, missing field, unknown kind or status: the SDK cannot read it either; the kind
        # is the payload's (the SDK never reads the kind column: fold.oddities)
        kind = wire.KINDS[extract(column, payload).kind]
        raw = payload_raw if payload_raw.__class__ is bytes else str(payload_raw).encode("utf-8", "surrogatepass")
        # the SDK's watch() writes back what it read, in its own form
        return Record(pool_id, seq, kind, wire_types.as_sdk_writes(kind, payload, raw))
    except RecordError as error:
        error.path, error.pool_id, error.seq = str(path), pool_id, seq
        error.args = (error._format(),)
        kind = kind_raw.decode("utf-8", "replace") if isinstance(kind_raw, bytes) else str(kind_raw)
        return Record(pool_id, seq, kind, None, problem=error)


def _loaded_key(payload: Any, code: int) -> tuple[Any, Any, Any]:
    """A payload read again as ``(type, key, status)`` to compare with what the
    index holds for its seq: its message or condition id and its receipt's or
    registration's status for the two bulk kinds (a seq stored twice, or a row
    rewritten, must not pass for another message or another status: the
    frames and the snapshot would tell two stories), the index's own key for
    the others."""
    from .fold import RUN_MESSAGE, WAKE

    if payload.__class__ is not dict:
        return None, None, None
    kind = payload.get("type")
    try:
        if code == RUN_MESSAGE:
            stored = payload["stored"]
            return kind, stored["message"]["message_id"], stored["receipt"]["status"]
        if code == WAKE:
            stored = payload["stored"]
            return kind, stored["condition"]["condition_id"], stored["registration"]["status"]
        return kind, extract(str(kind), payload).key, None
    except (KeyError, TypeError, RecordError):
        return kind, None, None


def check_as_loaded(
    payloads: dict[int, Any],
    loaded: Iterable[tuple[int, int, Any, Any]],
    *,
    path: str | os.PathLike,
    pool_id: str,
    why: str,
    holder: str = "the pool was loaded with",
) -> None:
    """:class:`DatabaseChangedError` unless each payload read again is the
    record an index holds for its seq (``loaded``: seq, kind code, key,
    status): the same kind and message, condition or run id, and the same
    status for a message or wake.  A seq missing from ``payloads`` fails too;
    damaged records are not compared (they have no key).  The one check both
    readers (:meth:`PoolHistory.payloads`) and the store's writer use."""
    from .fold import DAMAGED

    for seq, code, key, status in loaded:
        if code != DAMAGED and _loaded_key(payloads.get(seq), code) != (wire.KINDS[code], key, status):
            raise DatabaseChangedError(
                f"the record at seq {seq} is not the {wire.KINDS[code]} {holder}: {why}",
                path=path,
                pool_id=pool_id,
                seq=seq,
            )


def open(
    path: str | os.PathLike,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    cache: bool | str | os.PathLike = True,
) -> Database:
    """Open an SDK pool database read-only.  Nothing is changed or created in
    the file or its folder.

    ``timeout`` (seconds) bounds the wait for another process's lock and the
    time any one query may run before handing back rows
    (:class:`~poolscope.errors.QueryTimeoutError`); ``max_payload`` (bytes)
    the size of a single stored value read (a larger one is a damaged record,
    :class:`~poolscope.errors.PayloadTooLargeError`); ``progress`` shows a
    ``tqdm`` bar while a large pool loads (``None``: only when large).
    ``cache``: the persistent index cache (:mod:`poolscope.cache`) that makes
    a second open of a pool instant -- True (the default folder,
    ``$POOLSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/poolscope``, else
    ``~/.cache/poolscope``), a folder, or False to neither read nor write one.

    A symlink is followed to the real file; a WAL database whose ``-wal`` no
    live process holds is read through a private copy in a temporary folder
    (see :mod:`poolscope.source`).

    >>> db = open("sample_data/demo.db")
    >>> db
    <poolscope.Database 'sample_data/demo.db': 3 pools>
    >>> open("sample_data/demo.db", cache=False).cache is None
    True
    """
    return Database(path, timeout=timeout, progress=progress, max_payload=max_payload, cache=cache)


class _Frames:
    """The four frames as methods, on a pool (its rows) and on a database (all pools)."""

    def records_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per record; see :func:`poolscope.frames.records_df`."""
        from .frames import records_df

        return records_df(self, upto)  # type: ignore[arg-type]

    def members_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per membership interval; see :func:`poolscope.frames.members_df`."""
        from .frames import members_df

        return members_df(self, upto)  # type: ignore[arg-type]

    def messages_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per message id; see :func:`poolscope.frames.messages_df`."""
        from .frames import messages_df

        return messages_df(self, upto)  # type: ignore[arg-type]

    def wakes_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per wake condition; see :func:`poolscope.frames.wakes_df`."""
        from .frames import wakes_df

        return wakes_df(self, upto)  # type: ignore[arg-type]


class Database(_Frames):
    """A read-only view of one SQLite file written by ``SqliteAgentPoolStore``.

    Its frames (``records_df`` …) stack every pool with a ``pool_id`` column."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        progress: bool | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        cache: bool | str | os.PathLike | IndexCache = True,
    ):
        from .cache import resolve as resolve_cache

        self.path = path_argument(path)
        timeout = seconds_argument(timeout, "timeout")
        max_payload = byte_limit_argument(max_payload, "max_payload")
        self.timeout = timeout
        self.progress = None if progress is None else flag_argument(progress, "progress")
        self.max_payload = max_payload
        # an index built under another size limit judges other records damaged: not shared through the cache
        self.cache = resolve_cache(cache if max_payload == DEFAULT_MAX_PAYLOAD else False)
        self._conn = connect_readonly(self.path, timeout=timeout, max_payload=max_payload)
        self._closed = False
        self._identity = self.source.identity
        self._wal_seen = self.source.wal.exists()
        self._signature = self._file_signature()
        # The histories handed out, held weakly, and the indexes loaded, held strongly: a history
        # holds its database, and a database that held its histories too would make a reference
        # cycle, which only the cyclic collector frees -- and never once a large load froze it
        # (``gc.freeze``): a notebook reopening a large pool would keep every earlier index.  So
        # dropping the database and its histories frees their indexes at once, and
        # ``db.pool(pid)`` asked again, while the database lives, finds the index loaded.
        self._pools: weakref.WeakValueDictionary[str, PoolHistory] = weakref.WeakValueDictionary()
        self._indexes: dict[str, PoolIndex] = {}
        self._undecodable_pool_ids: list[bytes] = []
        self._pool_ids = self._read_pool_ids()

    # ------------------------------------------------------------ plumbing
    def _read_pool_ids(self) -> list[str]:
        """The ids a pool can be read by (UTF-8 text), sorted; a text id that is
        not UTF-8 is kept aside for doctor (``bad_pool_id``)."""
        with sqlite_errors(self.path):
            stored = stored_pool_ids(self.conn)
        ids = []
        self._undecodable_pool_ids = []
        for kind, raw in stored:
            pool_id = pool_id_text(kind, raw)
            if pool_id is not None:
                ids.append(pool_id)
            elif kind == "text":
                self._undecodable_pool_ids.append(raw)
        return sorted(set(ids))

    @property
    def source(self) -> Source:
        """What the connection reads: the real file behind the path, its
        identity, and how it is read (``immutable``, ``ro`` or a ``private`` copy)."""
        return self._conn.source  # type: ignore[attr-defined]

    @property
    def conn(self) -> sqlite3.Connection:
        """The read-only ``sqlite3`` connection (``PRAGMA query_only`` is on);
        :class:`DatabaseClosedError` once the database is closed."""
        if self._closed:
            raise DatabaseClosedError(
                "the database was closed: nothing more is read from it (poolscope.open it again)",
                path=self.path,
            )
        return self._conn

    def _reconnect_if_needed(self) -> None:
        self.conn  # noqa: B018 -- DatabaseClosedError once closed (a reconnection would open the file again)
        source = self.source
        if not source.real.exists() or not os.path.exists(self.path):
            raise DatabaseChangedError("the file was deleted or moved while open", path=self.path)
        if FileIdentity.of(source.real) != self._identity or resolve(self.path) != source.real:
            raise DatabaseChangedError(
                "the file was replaced by another file while open; open it again to read the new one",
                path=self.path,
            )
        if source.mode == "ro":
            # read through SQLite's shared memory, a file truncated or overwritten under a live writer can go
            # on answering from the pages cached and in the -wal: the header says whether it is still one
            try:
                start = read_start(source.real)
            except OSError:
                start = b""
            if len(start) < 100 or not start.startswith(SQLITE_MAGIC):
                raise NotADatabaseError(
                    "the file no longer starts as an SQLite database (truncated or overwritten while open): "
                    "what was loaded stays usable; open it again once it is whole",
                    path=self.path,
                )
        wal = source.wal.exists()
        signature = self._file_signature()
        if wal != self._wal_seen or (source.mode != "ro" and signature != self._signature):
            # a writer started, stopped, or changed the file while we held an
            # immutable view or a private copy: reopen so that its records are seen (the old connection
            # is closed only once the new one is open: a file that cannot be opened now -- its header
            # overwritten for a moment -- leaves what was loaded readable, not a closed connection)
            fresh = connect_readonly(
                self.path, timeout=self.timeout, max_payload=self.max_payload, expect=self._identity
            )
            self._conn.close()
            self._conn = fresh
            self._wal_seen = wal
        self._signature = signature

    def _file_signature(self) -> list:
        """The file's :func:`~poolscope.source.change_mark`: an immutable view
        or a private copy is opened again when it moved (its change time too,
        because a writer can set the modification time back, and a record
        appended into a page's free space leaves the size)."""
        return change_mark(self.source.real)

    def refresh(self) -> dict[str, int]:
        """Read records appended since the last load; return new-record counts per pool.

        Raises :class:`DatabaseChangedError` if the file was replaced or deleted
        (what was already loaded stays usable).
        """
        self._reconnect_if_needed()
        self._pool_ids = self._read_pool_ids()
        opened = dict.fromkeys([*self._pools.keys(), *self._indexes])
        return {pool_id: self._history(pool_id).refresh(reconnect=False) for pool_id in opened}

    def cache_entries(self) -> list:
        """This database's entries in the index cache (:class:`poolscope.cache.EntryInfo`)."""
        from .cache import real_path

        if self.cache is None:
            return []
        mine = real_path(self.path)
        return [e for e in self.cache.entries() if e.db == mine]

    def clear_cache(self) -> int:
        """Remove this database's entries from the index cache; return how many."""
        return 0 if self.cache is None else self.cache.clear(self.path)

    def close(self) -> None:
        """Close the connection; a call that reads the file afterwards (a
        snapshot's payloads too) raises :class:`DatabaseClosedError`."""
        self._closed = True
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- pools
    @property
    def pool_ids(self) -> list[str]:
        """Pool ids present in the database, sorted byte-wise."""
        return list(self._pool_ids)

    def pool(self, pool_id: str) -> PoolHistory:
        """The history of one pool.  Cheap: nothing is decoded until it is
        used.  Its index is built on first use (a snapshot, ``head``, most
        frames): restored from the index cache when that holds a valid entry
        (then only the records appended since are decoded), else by folding
        the log.  Its ``records_df()`` before that reads the rows straight
        from the file (or the cache), without folding.  Other pools are not read.

        Raises :class:`PoolNotFoundError` for a pool with no record.
        """
        if not isinstance(pool_id, str):
            raise PoolNotFoundError(
                f"no records for pool {repr(pool_id)[:60]}: a pool id is a string, not {type(pool_id).__name__}",
                path=self.path,
            )
        if pool_id not in self._pools and pool_id not in self._pool_ids:
            from .terminal import shorten

            # ids as stored may hold newlines or escape sequences: shown escaped, cut, on one line
            known = ", ".join(repr(shorten(p, 60)) for p in self._pool_ids[:10]) or "none"
            if len(self._pool_ids) > 10:
                known += f", … ({len(self._pool_ids) - 10} more)"
            raise PoolNotFoundError(f"no records for this pool (pools: {known})", path=self.path, pool_id=pool_id)
        return self._history(pool_id)

    def _history(self, pool_id: str) -> PoolHistory:
        """The history of ``pool_id`` handed out (made if none is held)."""
        history = self._pools.get(pool_id)
        if history is None:
            history = PoolHistory(self, pool_id)
            self._pools[pool_id] = history
        return history

    def _forget(self, pool_id: str) -> None:
        """Let go of a pool's index (its history, if still held elsewhere, keeps it)."""
        self._indexes.pop(pool_id, None)
        self._pools.pop(pool_id, None)

    def heads(self) -> dict[str, int]:
        """The head (largest seq) of every pool, read from the file without loading any pool.

        >>> db.heads()
        {'pool.alpha': 1201, 'pool.bravo': 1200, 'pool.charlie': 1201}
        """
        return self._per_pool("max(seq)")

    def record_counts(self) -> dict[str, int]:
        """How many records every pool has (those a load places: integer seqs
        from 1), read from the file without loading any pool -- the head is no
        count where seqs have gaps or start late.

        >>> db.record_counts()
        {'pool.alpha': 1201, 'pool.bravo': 1200, 'pool.charlie': 1201}
        """
        return self._per_pool("count(*)")

    def _per_pool(self, aggregate: str) -> dict[str, int]:
        with sqlite_errors(self.path):
            # the seqs a pool's records can have (as its head counts them), ids as pool_ids reads them
            rows = self.conn.execute(
                f"SELECT CAST(pool_id AS BLOB), {aggregate} FROM agent_pool_records WHERE typeof(pool_id) = 'text' "
                "AND typeof(seq) = 'integer' AND seq BETWEEN 1 AND ? GROUP BY pool_id COLLATE BINARY",
                (MAX_SEQ,),
            ).fetchall()
        found = {}
        for raw, value in rows:
            pool_id = pool_id_text("text", raw)
            if pool_id is not None:  # (a text id that is not UTF-8 is no pool's)
                found[pool_id] = int(value)
        return found

    def pools(self) -> Iterator[PoolHistory]:
        """Every pool's history, in pool-id order."""
        for pool_id in self._pool_ids:
            yield self.pool(pool_id)

    def check(self):
        """Anomalies in this database: damaged records, gaps, histories the SDK
        would not write (a list of :class:`poolscope.check.Anomaly`; see
        :func:`poolscope.check.check`).

        >>> [a.code for a in db.check() if a.severity == "error"]
        []
        """
        from .check import check

        return check(self)

    def summary(self) -> pd.DataFrame:
        """One row per pool: head, records, members now, messages and wakes now and by current status."""
        from .activity import summary

        return summary(self)

    def __repr__(self) -> str:
        return f"<poolscope.Database {str(self.path)!r}: {len(self._pool_ids)} pools>"

    def _repr_html_(self) -> str:
        from .render import database_html

        return database_html(self)


class PoolHistory(_Frames):
    """The append-only log of one pool and everything derived from it."""

    _index: PoolIndex | None = None

    def __init__(self, db: Database, pool_id: str) -> None:
        self.db = db
        self.pool_id = pool_id
        self._index: PoolIndex | None = db._indexes.get(pool_id)  # loaded through an earlier history
        # the index is built (or restored from the index cache) when first used; the pool's
        # head is read now, through the primary key, so that an unreadable or locked pool
        # fails here, where it is asked for
        with sqlite_errors(db.path, pool_id):
            # (numbers only: a text seq that is not UTF-8 could not be handed over, and is no record's)
            db.conn.execute(
                "SELECT max(seq) FROM agent_pool_records WHERE pool_id = ? AND seq <= ?", (pool_id, MAX_SEQ)
            ).fetchone()

    @property
    def index(self) -> PoolIndex:
        """The pool's columnar index (:class:`poolscope.index.PoolIndex`): restored
        from the index cache when it holds a valid entry (then only records
        appended since are folded), else built by folding the log (and saved)."""
        if self._index is None:
            self._keep(self._build_index())
        return self._index  # type: ignore[return-value]

    @index.setter
    def index(self, index: PoolIndex) -> None:  # a view made from another history's index (what-if)
        self._index = index

    def load(self, *, verify_filters: bool = False) -> PoolHistory:
        """Build the index now (or restore it from the index cache) instead of
        on first use, and return the pool: ``pool = db.pool(pid).load()``
        pays the load up front, e.g. before scrubbing a slider.

        ``verify_filters``: also check each wake's compiled filter against its
        criteria as the records are decoded
        (:meth:`~poolscope.index.PoolIndex.verify_filters`), so that
        :meth:`Database.check` need not read the wakes again -- what
        ``doctor`` does.  No effect on a pool already loaded.

        >>> db.pool("pool.bravo").load().loaded
        True
        """
        verify_filters = flag_argument(verify_filters, "verify_filters")
        if self._index is None:
            self._keep(self._build_index(verify_filters))
        return self

    def _keep(self, index: PoolIndex | None) -> None:
        """Hold ``index`` as this history's, and as its database's for the pool
        (a history asked for again finds it)."""
        self._index = index
        if index is not None and self.db._pools.get(self.pool_id) is self:
            self.db._indexes[self.pool_id] = index

    @property
    def loaded(self) -> bool:
        """Whether the index is in memory (built or restored) yet."""
        return self._index is not None

    def _cached_index(self, verify_filters: bool = False) -> PoolIndex | None:
        """The index restored from the cache, with the records appended since
        folded on top (and the extended entry saved); None without a valid entry."""
        cache = self.db.cache
        if cache is None:
            return None
        index = PoolIndex(self.db.path, self.pool_id)
        try:
            if not cache.restore(index, self.db.conn):
                return None
        except PoolscopeError:
            return None
        if verify_filters:  # the appended records' wakes (doctor reads the restored ones)
            index.verify_filters()
        if index.load(self.db.conn, progress=self.db.progress):
            cache.save(index, self.db.conn)
        return index

    def _build_index(self, verify_filters: bool = False) -> PoolIndex:
        index = self._cached_index(verify_filters)
        if index is None:
            index = PoolIndex(self.db.path, self.pool_id)
            if verify_filters:
                index.verify_filters()
            index.load(self.db.conn, progress=self.db.progress)
            if self.db.cache is not None:
                self.db.cache.save(index, self.db.conn)
        return index

    def _try_cache(self) -> bool:
        """Restore the index from the cache if it has a valid entry (nothing is decoded otherwise)."""
        if self._index is None:
            self._keep(self._cached_index())
        return self._index is not None

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def head(self) -> int:
        """The latest cursor (seq of the last record; 0 if none)."""
        return self.index.head

    def __len__(self) -> int:
        return len(self.index)

    def refresh(self, *, reconnect: bool = True) -> int:
        """Load records appended since the last load (only those are decoded and
        folded); return how many.  A pool whose index is not built yet reads
        everything when first used, so this returns 0 for it."""
        reconnect = flag_argument(reconnect, "reconnect")
        if reconnect:
            self.db._reconnect_if_needed()
        if self._index is None:
            return 0
        self._check_ends()
        self._check_gaps()
        return self._index.load(self.db.conn, progress=False)

    def _check_gaps(self) -> None:
        """Raise :class:`DatabaseChangedError` when a record was written into a
        gap below the head since the load (the SDK only appends at
        ``MAX(seq) + 1``: a hand edit, or a restore): a refresh reads after the
        head, so the index would go on without it while the SDK's replay folds
        it.  Only a pool whose seqs have gaps pays for this (one count of its
        rows up to the head); a log the SDK wrote has none."""
        index = self._index
        if index is None or index.head <= len(index):
            return
        # the rows the index holds one entry each for: integer seqs 1..head (a seq stored twice is one
        # entry plus a duplicate; a seq below 1, or not an integer, is never placed)
        expected = len(index) + sum(1 for seq in index.duplicates if seq >= 1)
        with sqlite_errors(self.path, self.pool_id):
            count = self.db.conn.execute(
                "SELECT count(*) FROM agent_pool_records WHERE pool_id = ? AND seq >= 1 AND seq <= ? "
                "AND typeof(seq) = 'integer'",
                (self.pool_id, index.head),
            ).fetchone()[0]
        if count > expected:
            raise DatabaseChangedError(
                f"{count - expected} record(s) were written below the head loaded ({index.head}) since "
                "the pool was loaded: the log was rewritten (open it again to read it as it is now)",
                path=self.path,
                pool_id=self.pool_id,
                seq=self._first_in_gaps(),
            )

    def _first_in_gaps(self) -> int | None:
        """The lowest seq in the file that falls into a gap of the index's seqs
        below its head (None if none is found among the first
        :data:`GAPS_SEARCHED` gaps)."""
        import numpy as np

        seqs = np.asarray(self.index.seqs, dtype=np.int64)
        bounds = np.concatenate([[0], seqs])
        gaps = np.flatnonzero(np.diff(bounds) > 1)[:GAPS_SEARCHED]
        for lower, upper in zip(bounds[gaps].tolist(), bounds[gaps + 1].tolist()):
            with sqlite_errors(self.path, self.pool_id):
                found = self.db.conn.execute(
                    "SELECT min(seq) FROM agent_pool_records WHERE pool_id = ? AND seq > ? AND seq < ? "
                    "AND typeof(seq) = 'integer'",
                    (self.pool_id, lower, upper),
                ).fetchone()[0]
            if found is not None:
                return int(found)
        return None

    def _check_ends(self) -> None:
        """Raise :class:`DatabaseChangedError` when the first or the last record
        loaded is no longer in the file as it was (same kind, same message,
        condition or run id): the log was truncated or rewritten in place, so
        the records after the head would not continue what was loaded.  Two
        rows read by their primary key, so that a refresh (and each poll of
        :meth:`follow`) stays as cheap as what was appended."""
        from .fold import DAMAGED

        index = self._index
        if index is None or not len(index):
            return
        ends = sorted({0, len(index) - 1})
        entries = index.entries_at(ends)
        seqs = [int(index.seqs[position]) for position in ends]
        wanted = [(seq, entry) for seq, entry in zip(seqs, entries) if entry.kind != DAMAGED]
        if not wanted:
            return
        try:
            out = fetch_payloads(self.db.conn, self.path, self.pool_id, [seq for seq, _ in wanted])
        except RecordError as error:  # a row that decoded when loaded and no longer does
            raise DatabaseChangedError(
                f"a record loaded earlier no longer reads as it did ({error.problem}): "
                "the file was rewritten while open",
                path=self.path,
                pool_id=self.pool_id,
                seq=error.seq,
            ) from None
        check_as_loaded(
            out,
            [(seq, entry.kind, entry.key, entry.status) for seq, entry in wanted],
            path=self.path,
            pool_id=self.pool_id,
            why="the file was rewritten while open (open it again to read it as it is now)",
        )

    def follow(
        self,
        after: int | None = None,
        *,
        poll: float = 0.2,
        idle_timeout: float | None = None,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """Yield records as they are appended by another process (the SDK or a
        :class:`PoolStore`), in seq order, never missing or repeating one.

        Starts after ``after`` (default: the current head, so only new
        records).  Stops after ``limit`` records, or when nothing new arrived
        for ``idle_timeout`` seconds (default: never).  The pool's index (and
        so ``snapshot()`` and the frames) follows along; a record that appears
        below the head loaded (written into a gap: the log was rewritten) is a
        :class:`DatabaseChangedError`, not a record the index does not hold.

        >>> for record in pool.follow(after=pool.head - 2, idle_timeout=0.2):
        ...     print(record.cursor, record.kind)
        1200 run_message
        1201 run_message
        """
        import time
        from bisect import bisect_left

        poll = seconds_argument(poll, "poll")
        if idle_timeout is not None:
            idle_timeout = seconds_argument(idle_timeout, "idle_timeout")
        limit = _limit(limit)
        if limit == 0:
            return
        bound = upto_argument(after, "after", path=self.path, pool_id=self.pool_id)
        last = self.head if bound is None else bound
        yielded = 0
        idle_since = time.monotonic()
        while True:
            self.refresh()
            fresh = False
            # only what the index has loaded: a record appended since the refresh waits for the next one,
            # so that snapshot() and the frames always cover every record yielded
            seqs = self.index.seqs
            for record in read_records(self.db.conn, self.path, self.pool_id, last, self.head):
                if record.cursor <= last:  # pragma: no cover - ORDER BY seq makes this impossible
                    continue
                at = bisect_left(seqs, record.cursor)
                if at == len(seqs) or seqs[at] != record.cursor:  # written into a gap since the load
                    raise DatabaseChangedError(
                        f"a record at seq {record.cursor}, below the head loaded ({self.head}), was written "
                        "after the pool was loaded: the log was rewritten (open it again to read it as it is now)",
                        path=self.path,
                        pool_id=self.pool_id,
                        seq=record.cursor,
                    )
                last = record.cursor
                fresh = True
                yield record
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            now = time.monotonic()
            if fresh:
                idle_since = now
            elif idle_timeout is not None and now - idle_since >= idle_timeout:
                return
            time.sleep(poll)

    # -------------------------------------------------------------- records
    def records(
        self,
        after: int | None = None,
        upto: int | None = None,
        *,
        kinds: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        """Records with ``after < seq <= upto`` in seq order (what the SDK's
        ``watch(pool, Some(after))`` returns, cut at ``upto``).

        >>> [r.kind for r in pool.records(upto=2)]
        ['pool_opened', 'pool_created']
        """
        return list(self.iter_records(after, upto, kinds=kinds, limit=limit))

    def iter_records(
        self,
        after: int | None = None,
        upto: int | None = None,
        *,
        kinds: str | list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """Like :meth:`records`, lazily."""
        return read_records(self.db.conn, self.path, self.pool_id, after, upto, kinds=kinds, limit=limit)

    def payloads(self, seqs: list[int]) -> dict[int, Any]:
        """The decoded payloads of the records with these seqs (seq -> payload), read from the file.

        Each must be a record of the pool as loaded (:class:`CursorError`
        otherwise), and each is checked against it: a payload of another kind
        than the record the index holds means the file changed since the load
        (:class:`DatabaseChangedError`); a payload that no longer decodes is a
        :class:`CorruptRecordError` naming its seq.

        >>> pool.payloads([1])[1]["type"]
        'pool_opened'
        >>> pool.payloads([pool.head + 1])
        Traceback (most recent call last):
        ...
        poolscope.errors.CursorError: file ...demo.db, pool 'pool.alpha', seq 1202: no record of the pool has this seq
        """
        import numpy as np

        index = self.index
        arrays = index.arrays()
        known, kinds = arrays["seq"], arrays["kind"]
        wanted = list(seqs)
        if not wanted:
            return {}
        if any(s is None for s in wanted):
            raise CursorError("a seq must be an integer, not None", path=self.path, pool_id=self.pool_id)
        asked = np.asarray(
            [upto_argument(s, "seq", path=self.path, pool_id=self.pool_id) for s in wanted], dtype=np.int64
        )
        at = np.searchsorted(known, asked)
        inside = at < len(known)
        found = np.zeros(len(asked), dtype=bool)
        found[inside] = known[at[inside]] == asked[inside]
        if not found.all():
            missing = int(asked[int(np.flatnonzero(~found)[0])])
            raise CursorError("no record of the pool has this seq", path=self.path, pool_id=self.pool_id, seq=missing)
        # plain ints from here (a numpy integer is no SQLite integer: bound as bytes, it matches no row)
        out = fetch_payloads(
            self.db.conn,
            self.path,
            self.pool_id,
            asked.tolist(),
            uncertain=set(index.uncertain) if index.uncertain else (),
        )
        check_as_loaded(
            out,
            zip(asked.tolist(), kinds[at].tolist(), index.field("key", at), index.field("status", at)),
            path=self.path,
            pool_id=self.pool_id,
            why="the file changed since",
        )
        return out

    # ------------------------------------------------------------ snapshots
    def snapshot(self, cursor: int | None = None, *, strict: bool = True) -> Snapshot:
        """The pool's snapshot as the SDK's ``snapshot()`` returned it when the
        log ended at ``cursor`` (default: the head).

        With ``strict=True`` (the default) this fails where the SDK fails: no
        ``pool_opened`` yet (:class:`PoolNotOpenedError`), a conflicting second
        ``pool_opened`` (:class:`ConfigConflictError`), or a damaged record at or
        before the cursor (:class:`RecordError`).  ``strict=False`` skips damaged
        records and keeps the first config, for exploring damaged files; the
        snapshot's cursor is then still ``cursor`` (the place in the log), even
        when the record there was skipped.

        >>> pool.snapshot(3).members
        [{'run_id': 'run.alpha.reviewer-1', 'agent_id': 'agent.alpha.reviewer', 'topics': ['topic.alpha.plan', 'topic.alpha.build']}]
        """
        return snapshot_at(self, cursor, strict=strict)

    # ------------------------------------------------------------- changes
    def activity(self, window: int | None = None, *, upto: int | None = None) -> pd.DataFrame:
        """Records by kind and status transitions per window of cursors; see :func:`poolscope.activity.activity`."""
        from .activity import activity

        return activity(self, window, upto=upto)

    def diff(self, a: int, b: int) -> Diff:
        """What changed from cursor ``a`` to cursor ``b``; see :func:`poolscope.diff.diff`."""
        from .diff import diff

        return diff(self, a, b)

    # ------------------------------------------------------- why, what if
    def history_of(self, key: str, upto: int | None = None, *, key_type: str | None = None) -> pd.DataFrame:
        """Every record that touched a message, wake, run or idempotency key; see :func:`poolscope.why.history_of`."""
        from .why import history_of

        return history_of(self, key, upto, key_type=key_type)

    def explain(self, key: str, at: int | None = None, *, key_type: str | None = None) -> Explanation:
        """What happened to a message, wake, run or idempotency key, in sentences backed by cursors; see
        :func:`poolscope.why.explain`."""
        from .why import explain

        return explain(self, key, at, key_type=key_type)

    def flows_df(self, upto: int | None = None, by: str = "run") -> pd.DataFrame:
        """Who messages whom, by final status; see :func:`poolscope.flows.flows_df`."""
        from .flows import flows_df

        return flows_df(self, upto, by=by)

    def latency_df(self, upto: int | None = None) -> pd.DataFrame:
        """Cursors between the statuses of every message and wake; see :func:`poolscope.flows.latency_df`."""
        from .flows import latency_df

        return latency_df(self, upto)

    def without(self, runs: Any = (), agents: Any = (), records: Any = ()) -> WhatIf:
        """This history with some runs, agents or records taken out, folded again; see
        :func:`poolscope.whatif.without`."""
        from .whatif import without

        return without(self, runs=runs, agents=agents, records=records)

    def __repr__(self) -> str:
        if self._index is None:
            return f"<PoolHistory {self.pool_id!r}: not loaded yet>"
        return f"<PoolHistory {self.pool_id!r}: {len(self._index)} records, head {self._index.head}>"
