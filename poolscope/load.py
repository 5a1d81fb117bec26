"""Reading a pool's log out of SQLite into a :class:`~poolscope.index.PoolIndex`.

:func:`load` reads the records after an index's head and hands them to the
index (:meth:`PoolIndex.decode`, :meth:`PoolIndex.extend`); :func:`scan`
decodes records for a frame without folding them; :func:`fetch_payloads`
reads single payloads back.  A large load or scan decodes its second half in
a forked child process meanwhile (both cores work) -- except where a process
may not have children (a daemonic :mod:`multiprocessing` worker, such as a
Dask worker's): there everything is read in this process.

Example::

    >>> import poolscope
    >>> from poolscope.index import PoolIndex
    >>> from poolscope.load import load
    >>> db = poolscope.open("sample_data/demo.db")
    >>> index = PoolIndex(db.path, "pool.alpha")
    >>> load(index, db.conn, progress=False) == len(index) > 0
    True
    >>> db.close()
"""

from __future__ import annotations

import gc
import os
import sqlite3
from collections.abc import Callable, Container, Iterable
from pathlib import Path
from typing import Any

from . import wire, wire_types
from .errors import CorruptRecordError, RecordError
from .fold import Entry, check_unread, extract
from .index import MAX_SEQ, TOO_LARGE, PoolIndex, gc_paused, loads_payload, too_big, transpose
from .source import keepalive
from .sqlite_errors import is_text_decode_error, sqlite_errors

#: Rows fetched per ``fetchmany`` call during a scan.
BATCH = 4096
#: Show a progress bar when a pool has at least this many records to load.
PROGRESS_THRESHOLD = 100_000

SCAN_SQL = (
    "SELECT seq, CAST(kind AS BLOB), typeof(payload_json), CAST(payload_json AS BLOB) "
    "FROM agent_pool_records WHERE pool_id = ? AND seq > ?"
)
ORDER = " ORDER BY seq"
#: The usual scan: the kind as SQLite stores it, the payload's bytes (the
#: decoders read UTF-8 bytes and compare them with what they write back: no
#: text object made on the way).  A kind it cannot hand over (not valid UTF-8)
#: makes the load switch to :data:`SCAN_SQL` (bytes, typeof) for the next rows.
FAST_SCAN_SQL = (
    "SELECT seq, kind, typeof(payload_json), CAST(payload_json AS BLOB) "
    "FROM agent_pool_records WHERE pool_id = ? AND seq > ?"
)
#: After a load of at least this many records, the index's objects are moved
#: out of the garbage collector's way (``gc.freeze``): they hold no cycles, and
#: otherwise the next full collection walks millions of them.
FREEZE_THRESHOLD = 100_000
#: A load (or :func:`scan`) of at least this many records decodes its second
#: half in a forked process meanwhile (both cores work), which sends its
#: entries back with ``marshal`` (a scan: Arrow tables); the fold itself stays
#: in this process.  0 turns it off.  (Measured on 2 cores against one process:
#: a load 1.5x faster at 100k records and 1.3x at 20k; a scan 1.7x and 1.3x.)
PARALLEL_THRESHOLD = 20_000


#: Records per result of :func:`scan` (measured: smaller chunks cost more per
#: conversion than they save in cache misses; larger ones hold more memory).
SCAN_CHUNK = 65536

#: The parent's share of a two-process scan (measured best at one half: the
#: child writing its tables and the parent making the frame balance).
PARENT_SHARE = 0.5
#: The parent's share of a two-process load: less than half, because it also
#: folds the child's records (as they arrive, in chunks of LOAD_CHUNK).
LOAD_PARENT_SHARE = 0.45
LOAD_CHUNK = 100_000


def _can_fork() -> bool:
    """Whether a load or scan may fork a helper: on Linux, with
    :data:`PARALLEL_THRESHOLD` on, and not inside a daemonic
    :mod:`multiprocessing` process (a Dask worker, a ``Pool`` worker), which
    may have no children -- there everything is read in this process."""
    import multiprocessing
    import sys

    return (
        PARALLEL_THRESHOLD > 0
        and sys.platform == "linux"
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


class _OtherHalf:
    """The second half of a large load (or :func:`scan`), decoded by a forked child process.

    The child reads ``seq >= split`` through its own read-only connection and
    flattens every record with the same :meth:`PoolIndex.decode`.  For a load
    it hands plain tuples over in ``marshal`` chunks (builtin types only: much
    cheaper to rebuild than pickled objects) written to an in-memory file, for
    a scan one Arrow IPC stream; the pipe carries only short notices.  Any
    failure in the child, and the parent decodes what is left itself.
    """

    def __init__(self, split: int, process: Any, receiver: Any, out: Any) -> None:
        self.split = split
        self.process = process
        self.receiver = receiver
        self.out = out  # the in-memory file the child writes its records to

    @classmethod
    def start(
        cls,
        index: PoolIndex,
        conn: sqlite3.Connection,
        after: int,
        total: int,
        *,
        upper: int | None = None,
        child: Callable[..., None] | None = None,
        extra: tuple = (),
        share: float = PARENT_SHARE,
    ) -> _OtherHalf | None:
        """Fork a child for the records after the ``total * share`` first
        ones (``after < seq < upper``); ``child(path, pool_id, split, sender,
        upper, *extra, out_fd)`` does the work (default: a load's half) and
        writes its records to the file ``out_fd``.  None below
        :data:`PARALLEL_THRESHOLD` records, where no child can be started, or
        when the range is too small to split."""
        import multiprocessing

        if total < PARALLEL_THRESHOLD or not _can_fork():
            return None
        out = None
        try:
            out = _shared_file()
            if out is None:
                return None
            row = conn.execute(
                "SELECT seq FROM agent_pool_records WHERE pool_id = ? AND seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
                (index.pool_id, after, int(total * share)),
            ).fetchone()
            if row is None or type(row[0]) is not int or (upper is not None and row[0] >= upper):
                out.close()
                return None
            ctx = multiprocessing.get_context("fork")
            receiver, sender = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=child or _decode_in_child,
                # the parent's Source, not its path: the child reads the very file the parent opened
                args=(
                    getattr(conn, "source", None) or str(index.path),
                    index.pool_id,
                    row[0],
                    sender,
                    upper,
                    *extra,
                    out.fileno(),
                ),
                daemon=True,
            )
            process.start()
            sender.close()
            return cls(row[0], process, receiver, out)
        except (OSError, ValueError, sqlite3.Error):
            if out is not None:
                out.close()
            return None

    def receive(self) -> bytes | None:
        """The child's blob (None if it died before sending one)."""
        try:
            return self.receiver.recv_bytes()
        except (EOFError, OSError):
            return None

    def finish(self, index: PoolIndex, conn: sqlite3.Connection, bar: Any) -> None:
        """Fold the child's records as its chunks arrive (each is marshalled into
        ``self.out``, a notice of where comes through the pipe); if the child
        fails, decode what is left here."""
        import marshal

        from . import errors

        new = tuple.__new__
        while True:
            blob = self.receive()
            try:
                status, *result = marshal.loads(blob) if blob is not None else ("error",)
                if status == "chunk":
                    offset, length = result
                    seqs, tuples, problems, duplicates, verified, uncertain, odd = marshal.loads(
                        os.pread(self.out.fileno(), length, offset)
                    )
            except (EOFError, ValueError, TypeError, OSError):
                status = "error"
            if status != "chunk":
                break
            entries = [new(Entry, t) for t in tuples]
            del tuples
            for seq, (name, problem, code) in problems.items():
                error = getattr(errors, name, CorruptRecordError)(
                    problem, path=index.path, pool_id=index.pool_id, seq=seq, code=code
                )
                index.problems[seq] = error
            index.duplicates.extend(duplicates)
            index.uncertain.extend(uncertain)
            index.oddities.update(odd)
            if index.verified_filters is not None:
                index.verified_filters.extend(verified)
            index.extend(seqs, entries)
            if bar is not None:
                bar.update(len(seqs))
        if status != "done":  # the child failed: decode the rest here
            for rows in _batches(conn, index.pool_id, lambda: index.head):
                index.append_rows(rows)
                if bar is not None:
                    bar.update(len(rows))

    def read_tables(self) -> list:
        """The Arrow tables a :func:`scan` child wrote (memory-mapped, not copied)."""
        import mmap

        import pyarrow as pa

        size = os.fstat(self.out.fileno()).st_size
        mapped = mmap.mmap(self.out.fileno(), size, access=mmap.ACCESS_READ)
        return [pa.ipc.open_stream(pa.py_buffer(mapped)).read_all()]

    def close(self) -> None:
        self.out.close()  # tables read from it keep their mapping
        self.receiver.close()
        self.process.join(5)
        if self.process.is_alive():  # pragma: no cover - only if the child hangs
            self.process.kill()


def _child_connection(where: Any) -> tuple[sqlite3.Connection, Path]:
    """A forked child's connection to what its parent reads: the same file
    (:class:`DatabaseChangedError` if the path now names another one, and the
    parent decodes the child's part itself) or the parent's private copy."""
    from .source import Source, connect_readonly, reconnect, started_in_time

    with started_in_time():  # a mutex another thread held at the fork: ended, and the parent reads instead
        if isinstance(where, Source):
            return reconnect(where), where.path
        return connect_readonly(where), Path(where)


def _decode_in_child(
    path: Any, pool_id: str, split: int, sender: Any, upper: int | None, verify: bool, out: int
) -> None:
    """Forked child of a load: decode the records with ``split <= seq < upper``
    and hand them over in chunks of :data:`LOAD_CHUNK`, each marshalled into
    the file ``out`` with a small notice (offset, length) through the pipe --
    so the parent folds the first chunks while this one decodes the next.
    ``verify``: check the wakes' compiled filters too
    (:meth:`PoolIndex.verify_filters`), and hand over which were consistent."""
    import marshal

    try:
        gc.disable()
        conn, where = _child_connection(path)
        index = PoolIndex(where, pool_id)
        if verify:
            index.verify_filters()
        seqs: list[int] = []
        tuples: list[tuple] = []
        last = [split - 1]
        offset = 0
        reported: set[int] = set()

        def hand_over() -> None:
            nonlocal seqs, tuples, offset
            problems = {
                s: (type(e).__name__, e.problem, e.code) for s, e in index.problems.items() if s not in reported
            }
            reported.update(problems)
            verified = index.verified_filters
            blob = marshal.dumps(
                (
                    seqs,
                    tuples,
                    problems,
                    index.duplicates[:],
                    verified[:] if verified else [],
                    index.uncertain[:],
                    dict(index.oddities),
                )
            )
            index.duplicates.clear()
            index.uncertain.clear()
            index.oddities.clear()
            if verified:
                verified.clear()
            written = 0
            while written < len(blob):
                written += os.pwrite(out, memoryview(blob)[written:], offset + written)
            sender.send_bytes(marshal.dumps(("chunk", offset, len(blob))))
            offset += len(blob)
            seqs, tuples = [], []

        for rows in _batches(conn, index.pool_id, lambda: last[0], upper):
            # plain tuples straight from the hot path (marshal takes no tuple subclass)
            batch_seqs, batch = index.decode(rows, last[0], entry_type=tuple)
            if batch_seqs:
                last[0] = batch_seqs[-1]
            seqs.extend(batch_seqs)
            tuples.extend([e if e.__class__ is tuple else tuple(e) for e in batch])
            if len(seqs) >= LOAD_CHUNK:
                hand_over()
        if seqs or index.problems.keys() - reported or index.duplicates or index.uncertain or index.oddities:
            hand_over()
        blob = marshal.dumps(("done",))
    except BaseException as error:
        blob = marshal.dumps(("error", repr(error)))
    _send(sender, blob)


def _send(sender: Any, blob: bytes) -> None:
    try:
        sender.send_bytes(blob)
    finally:
        sender.close()


def _column_chunks(
    index: PoolIndex,
    conn: sqlite3.Connection,
    after: int,
    below: int | None,
    on_rows: Callable[[int], Any] | None = None,
) -> Iterable[tuple[list[int], list[list], dict[int, str]]]:
    """Decoded records with ``after < seq < below`` in chunks of about
    :data:`SCAN_CHUNK`: per chunk its seqs, one list per :class:`Entry` field,
    and why each damaged record in it is damaged."""
    seqs: list[int] = []
    columns: list[list] = [[] for _ in Entry._fields]
    last = [after]

    def chunk() -> tuple[list[int], list[list], dict[int, str]]:
        problems = {s: e.problem for s, e in index.problems.items() if seqs[0] <= s <= seqs[-1]}
        return seqs, columns, problems

    for rows in _batches(conn, index.pool_id, lambda: last[0], below):
        batch_seqs, batch = index.decode(rows, last[0], keep=False)
        if batch_seqs:
            last[0] = batch_seqs[-1]
            seqs.extend(batch_seqs)
            transpose(batch, columns)
        if on_rows is not None:
            on_rows(len(rows))
        if len(seqs) >= SCAN_CHUNK:
            yield chunk()
            seqs, columns = [], [[] for _ in Entry._fields]
    if seqs:
        yield chunk()


def _columns_in_child(
    path: Any, pool_id: str, split: int, sender: Any, upper: int | None, collect: Callable[..., Any], out: int
) -> None:
    """Forked child of :func:`scan`: decode the records with ``split <= seq <
    upper``, write the ``collect(...)`` tables as one Arrow IPC stream to the
    file descriptor ``out`` (which the parent maps: no copy through a pipe),
    and report how many through ``sender``."""
    import pickle

    try:
        import pyarrow as pa

        gc.disable()
        conn, where = _child_connection(path)
        index = PoolIndex(where, pool_id)
        tables = [collect(*c) for c in _column_chunks(index, conn, split - 1, upper)]
        if tables:
            with (
                os.fdopen(os.dup(out), "wb") as raw,
                pa.ipc.new_stream(pa.PythonFile(raw, mode="w"), tables[0].schema) as writer,
            ):
                for table in tables:
                    writer.write_table(table)
        blob = pickle.dumps(("ok", len(tables)))
    except BaseException as error:
        blob = pickle.dumps(("error", repr(error)))
    _send(sender, blob)


def _shared_file() -> Any:
    """An anonymous temporary file for a child's results: in memory
    (``/dev/shm``) where there is one, gone as soon as it is closed."""
    import tempfile

    for folder in ("/dev/shm", None):
        try:
            return tempfile.TemporaryFile(dir=folder)
        except OSError:
            continue
    return None


@gc_paused()
def scan(
    index: PoolIndex,
    conn: sqlite3.Connection,
    collect: Callable[[list[int], list[list], dict[int, str]], Any],
    *,
    upto: int | None = None,
    progress: bool | None = None,
) -> list:
    """Decode and flatten the records of a pool with ``seq <= upto`` without folding them.

    For results that need every record but no state (``records_df`` of a pool
    not loaded yet).  The rows go through the same hot path as a load
    (:meth:`PoolIndex.decode`); each batch is transposed into one list per
    :class:`Entry` field, and ``collect(seqs, columns, problems)`` (``problems``:
    seq -> why a record is damaged) turns each chunk of about
    :data:`SCAN_CHUNK` records into a result.  A large pool is split in two
    parts decoded at once, the second by a forked child whose results come
    back as one Arrow IPC file in memory.  ``collect`` must return a
    ``pyarrow.Table``; returns the tables in seq order.
    ``index`` is a fresh :class:`PoolIndex`: only its pool id, path and problem
    bookkeeping are used.

    >>> import pyarrow as pa
    >>> from poolscope.source import connect_readonly
    >>> path = "sample_data/demo.db"
    >>> conn = connect_readonly(path)
    >>> tables = scan(PoolIndex(path, "pool.alpha"), conn, lambda seqs, columns, problems: pa.table({"seq": seqs}))
    >>> sum(t.num_rows for t in tables), tables[0]["seq"][0].as_py()
    (1201, 1)
    >>> conn.close()
    """
    import pickle

    upper = None if upto is None else upto + 1
    total = None
    if progress is not False or _can_fork():
        total = _count(conn, index, 0, upto)
    bar = _progress_bar(index.pool_id, total, progress)

    def part(after: int, below: int | None) -> list:
        on_rows = None if bar is None else bar.update
        return [collect(*c) for c in _column_chunks(index, conn, after, below, on_rows)]

    helper = None
    results = []
    try:
        with sqlite_errors(index.path, index.pool_id):
            if total is not None:
                helper = _OtherHalf.start(index, conn, 0, total, upper=upper, child=_columns_in_child, extra=(collect,))
            results.extend(part(0, upper if helper is None else helper.split))
            if helper is not None:
                blob = helper.receive()
                try:
                    status, count = pickle.loads(blob) if blob is not None else ("error", 0)
                    result = helper.read_tables() if status == "ok" and count else []
                except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError):
                    status = "error"
                if status == "ok":
                    if bar is not None:
                        bar.update(total - bar.n)
                else:  # the child failed: decode its part here
                    result = part(helper.split - 1, upper)
                results.extend(result)
    finally:
        if helper is not None:
            helper.close()
        if bar is not None:
            bar.close()
    return results


def _progress_bar(pool_id: str, total: int | None, progress: bool | None) -> Any:
    """A ``tqdm.auto`` bar for loading ``total`` records (None when not wanted:
    ``progress=False``, or ``None`` and fewer than :data:`PROGRESS_THRESHOLD`)."""
    if progress is False or total is None or (progress is None and total < PROGRESS_THRESHOLD):
        return None
    from tqdm.auto import tqdm

    from .terminal import shorten

    # the id escaped (no control or bidi character reaches the terminal) and cut: a bar is one short line
    return tqdm(total=total, desc=f"loading {shorten(pool_id, 40)}", unit="rec", leave=False)


def load(index: PoolIndex, conn: sqlite3.Connection, progress: bool | None = None) -> int:
    """Read the records after ``index``'s head into it; return how many were added
    (what :meth:`PoolIndex.load` does)."""
    after = index.head
    total = None
    if progress is not False:
        total = _count(conn, index, after)
    bar = _progress_bar(index.pool_id, total, progress)
    before = len(index)
    helper = None
    # a load allocates millions of small objects and frees none: no cycles to find
    with gc_paused(), sqlite_errors(index.path, index.pool_id):
        try:
            if _can_fork():
                if total is None:
                    total = _count(conn, index, after)
                helper = _OtherHalf.start(
                    index, conn, after, total, share=LOAD_PARENT_SHARE, extra=(index.verified_filters is not None,)
                )
            upper = None if helper is None else helper.split
            for rows in _batches(conn, index.pool_id, lambda: index.head, upper):
                index.append_rows(rows)
                if bar is not None:
                    bar.update(len(rows))
            if helper is not None:
                helper.finish(index, conn, bar)
        finally:
            if helper is not None:
                helper.close()
            if len(index) - before >= FREEZE_THRESHOLD:
                gc.freeze()
            if bar is not None:
                bar.close()
    return len(index) - before


def _batches(
    conn: sqlite3.Connection, pool_id: str, last: Callable[[], int], upper: int | None = None
) -> Iterable[list]:
    """Row batches ``(seq, kind, typeof, payload)`` of a pool after ``last()`` (and
    below ``upper``), in seq order.  Rows come as SQLite stores them; after a
    text value that is not UTF-8 the next batch is read as bytes."""
    # a seq of 2^63-1 (the index's "still current" mark) cannot be placed: left out, reported by doctor
    bound, extra = " AND seq < ?", (MAX_SEQ + 1 if upper is None else min(upper, MAX_SEQ + 1),)
    while True:
        try:
            try:
                cur = conn.execute(FAST_SCAN_SQL + bound + ORDER, (pool_id, last(), *extra))
                while rows := cur.fetchmany(BATCH):
                    yield rows
                    keepalive(conn)  # the time bound is per batch, not per load
                return
            except sqlite3.OperationalError as error:
                if not is_text_decode_error(error):
                    raise
                rows = conn.execute(SCAN_SQL + bound + ORDER + " LIMIT ?", (pool_id, last(), *extra, BATCH)).fetchall()
                if not rows:
                    return
                yield rows
        except sqlite3.DataError as error:
            # a value larger than max_payload (SQLITE_LIMIT_LENGTH): that row alone is damaged
            row = _next_row_alone(conn, pool_id, last(), bound, extra) if too_big(error) else None
            if row is None:
                raise
            yield [row]


def _next_row_alone(conn: sqlite3.Connection, pool_id: str, after: int, bound: str, extra: tuple) -> tuple | None:
    """The row after ``after``, read alone (SQLite reads a row ahead, so the
    row it refused as too large may be the one after): as it is stored, or
    ``(seq, kind, TOO_LARGE, None)`` if it is the one too large (None if it
    cannot be placed)."""
    try:
        row = conn.execute(SCAN_SQL + bound + ORDER + " LIMIT 1", (pool_id, after, *extra)).fetchone()
        if row is not None and type(row[0]) is int:
            return tuple(row)
    except sqlite3.DataError as error:
        if not too_big(error):
            raise
    found = conn.execute(
        "SELECT seq FROM agent_pool_records WHERE pool_id = ? AND seq > ?" + bound + ORDER + " LIMIT 1",
        (pool_id, after, *extra),
    ).fetchone()
    if found is None or type(found[0]) is not int:
        return None
    try:
        kind = conn.execute(
            "SELECT CAST(kind AS BLOB) FROM agent_pool_records WHERE pool_id = ? AND seq = ? LIMIT 1",
            (pool_id, found[0]),
        ).fetchone()[0]
    except sqlite3.Error:
        kind = None
    return (found[0], kind, TOO_LARGE, None)


def _count(conn: sqlite3.Connection, index: PoolIndex, after: int, upto: int | None = None) -> int:
    """How many records of ``index``'s pool have ``after < seq <= upto``."""
    sql = "SELECT count(*) FROM agent_pool_records WHERE pool_id = ? AND seq > ? AND seq <= ?"
    args: tuple = (index.pool_id, after, MAX_SEQ)
    if upto is not None:
        sql, args = sql + " AND seq <= ?", (*args, upto)
    with sqlite_errors(index.path, index.pool_id):
        return conn.execute(sql, args).fetchone()[0]


#: The two bulk kinds, read by the typed tier (:mod:`poolscope.wire_types`).
_BULK = frozenset({"run_message", "wake"})


def checked_payload(path: Path, pool_id: str, seq: int, text: bytes, uncertain: Container[int] | None = None) -> Any:
    """``text`` decoded, or :class:`CorruptRecordError` naming the record when
    serde_json cannot read it (:func:`wire.payload_problem`: a repeated key,
    nesting past its limit; :func:`fold.check_unread`).  A load has checked
    the same when it indexed the record; a payload read again is checked again
    (the row may have changed since).  Returned as the SDK writes it back
    (:func:`wire.canonical_payload`) unless its text is serde's own bytes --
    known for a message or wake whose seq is not in ``uncertain`` (the index's
    list of those its typed tier did not take), else found out here."""
    try:
        payload = loads_payload(text)
    except CorruptRecordError as error:
        raise CorruptRecordError(error.problem, path=path, pool_id=pool_id, seq=seq, code=error.code) from None
    found, payload = wire.serde_read(text, payload)
    if found is not None:
        raise CorruptRecordError(found[1], path=path, pool_id=pool_id, seq=seq, code=found[0])
    kind = payload.get("type") if payload.__class__ is dict else None
    try:
        if kind.__class__ is str:
            check_unread(kind, payload)
    except CorruptRecordError as error:
        raise CorruptRecordError(error.problem, path=path, pool_id=pool_id, seq=seq, code="bad_shape") from None
    if kind not in wire.KINDS or (kind in _BULK and uncertain is not None and seq not in uncertain):
        return payload  # a kind the SDK has not, or a record the typed tier took: serde's own bytes
    try:
        extract(kind, payload)
    except RecordError:  # damaged: the index holds no entry of it, nothing writes it back
        return payload
    # the SDK's snapshot and its watch() write what it read back in its own form
    return wire_types.as_sdk_writes(kind, payload, text)


def _payloads_in_span(
    conn: sqlite3.Connection, path: Path, pool_id: str, ordered: list[int], uncertain: Container[int] | None
) -> dict[int, Any]:
    """The payloads of ``ordered`` (sorted seqs) read in one range scan."""
    out: dict[int, Any] = {}
    wanted = set(ordered)
    rows = conn.execute(
        # as bytes: a damaged neighbour (invalid UTF-8) must not fail the fetch
        "SELECT seq, CAST(payload_json AS BLOB) FROM agent_pool_records WHERE pool_id = ? AND seq BETWEEN ? AND ? "
        "AND typeof(seq) = 'integer'" + ORDER,
        (pool_id, ordered[0], ordered[-1]),
    )
    for seq, text in rows:
        keepalive(conn)
        if seq in wanted and seq not in out:  # a seq stored twice: the row the load took, the first
            out[seq] = checked_payload(path, pool_id, seq, text, uncertain)
    return out


@gc_paused()  # decoding thousands of payloads makes no cycles
def fetch_payloads(
    conn: sqlite3.Connection,
    path: Path,
    pool_id: str,
    seqs: list[int],
    on_error: Callable | None = None,
    uncertain: Container[int] | None = None,
) -> dict[int, Any]:
    """Decoded payloads for the given seqs of one pool (in any order), as the
    SDK writes them back (see :func:`checked_payload`; ``uncertain``: the
    loaded index's :attr:`PoolIndex.uncertain`, None to look at every one)."""
    out: dict[int, Any] = {}
    if not seqs:
        return out
    ordered = sorted(seqs)
    span = ordered[-1] - ordered[0] + 1
    with sqlite_errors(path, pool_id):
        try:
            if span <= 4 * len(ordered):
                out = _payloads_in_span(conn, path, pool_id, ordered, uncertain)
        except sqlite3.DataError as error:
            if not too_big(error):  # a damaged neighbour larger than max_payload: ask for the seqs themselves
                raise
            out = {}
        if not out:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for seq, text in conn.execute(
                    "SELECT seq, CAST(payload_json AS BLOB) FROM agent_pool_records "
                    f"WHERE pool_id = ? AND seq IN ({marks}) AND typeof(seq) = 'integer'" + ORDER,
                    (pool_id, *chunk),
                ):
                    keepalive(conn)
                    if seq not in out:  # a seq stored twice: the row the load took, the first
                        out[seq] = checked_payload(path, pool_id, seq, text, uncertain)
    missing = [s for s in ordered if s not in out]
    if missing:
        from .errors import DatabaseChangedError

        raise DatabaseChangedError(
            "records seen when the pool was loaded are gone: the file was replaced or rewritten while open",
            path=path,
            pool_id=pool_id,
            seq=missing[0],
        )
    return out
