"""The columnar index of one pool's log, built by one pass of the fold.

A single scan decodes every payload once (orjson), flattens it into an
:class:`~poolscope.fold.Entry` and applies it to a
:class:`~poolscope.fold.PoolFold`.  The fold tells, for every record, which
earlier record of the same key it replaces; from that the index derives, for
every record, the seq at which it stops being current (``next_seq``).  A record
is part of the snapshot at cursor ``k`` exactly when ``seq <= k < next_seq``,
so any snapshot is a vectorized selection -- no replay, no keyframes to store,
nothing written into the user's database.

Example::

    >>> import poolscope
    >>> index = poolscope.open("sample_data/demo.db").pool("pool.demo.0").index  # doctest: +SKIP
    >>> index.live_positions("messages", 100)                                     # doctest: +SKIP
"""

from __future__ import annotations

import gc
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import wire
from .errors import CorruptRecordError, PoolscopeError, RecordError
from .fold import DAMAGED, MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE, Entry, PoolFold, extract
from .source import translate

NEVER = np.iinfo(np.int64).max
#: Rows fetched per ``fetchmany`` call during a scan.
BATCH = 4096
#: Show a progress bar when a pool has at least this many records to load.
PROGRESS_THRESHOLD = 100_000

#: Interned status and target strings (the index shares one str per value).
_MESSAGE_STATUS = {s: s for s in wire.MESSAGE_STATUSES}
_WAKE_STATUS = {s: s for s in wire.WAKE_STATUSES}
_TARGET_TYPE = {s: s for s in wire.TARGET_TYPES}
#: Status -> small code, per kind (``wire.MESSAGE_STATUSES[code]``, ``wire.WAKE_STATUSES[code]``).
_MESSAGE_CODE = {s: i for i, s in enumerate(wire.MESSAGE_STATUSES)}
_WAKE_CODE = {s: i for i, s in enumerate(wire.WAKE_STATUSES)}
_TARGET_FIELD = {"run": "run_id", "agent": "agent_id", "topic": "topic_id", "pool": "pool_id"}

SCAN_SQL = (
    "SELECT seq, CAST(kind AS BLOB), typeof(payload_json), CAST(payload_json AS BLOB) "
    "FROM agent_pool_records WHERE pool_id = ? AND seq > ?"
)
ORDER = " ORDER BY seq"
#: The usual scan: values as SQLite stores them.  A row it cannot hand over
#: (a kind or payload that is not valid UTF-8) makes the load switch to
#: :data:`SCAN_SQL` (bytes, typeof) for the next rows.
FAST_SCAN_SQL = (
    "SELECT seq, kind, typeof(payload_json), payload_json FROM agent_pool_records WHERE pool_id = ? AND seq > ?"
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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector meanwhile (also a decorator:
    ``@gc_paused()``).  For work that allocates many objects and makes no
    cycles -- a load, a frame, a plot: with a large index in memory, the
    collections such work triggers would otherwise cost more than the work.

    >>> with gc_paused():
    ...     rows = [(i, str(i)) for i in range(1000)]
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _can_fork() -> bool:
    import multiprocessing
    import sys

    return PARALLEL_THRESHOLD > 0 and sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


class _OtherHalf:
    """The second half of a large load (or :func:`scan`), decoded by a forked child process.

    The child reads ``seq >= split`` through its own read-only connection and
    flattens every record with the same :meth:`PoolIndex._decode`.  For a load
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
                args=(str(index.path), index.pool_id, row[0], sender, upper, *extra, out.fileno()),
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
                    seqs, tuples, problems, duplicates = marshal.loads(os.pread(self.out.fileno(), length, offset))
            except (EOFError, ValueError, TypeError, OSError):
                status = "error"
            if status != "chunk":
                break
            entries = [new(Entry, t) for t in tuples]
            del tuples
            for seq, (name, problem) in problems.items():
                error = getattr(errors, name, CorruptRecordError)(
                    problem, path=index.path, pool_id=index.pool_id, seq=seq
                )
                index.problems[seq] = error
            index.duplicates.extend(duplicates)
            index._fold(seqs, entries)
            if bar is not None:
                bar.update(len(seqs))
        if status != "done":  # the child failed: decode the rest here
            for rows in index._batches(conn, lambda: index.head):
                index._ingest(rows)
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


def _decode_in_child(path: str, pool_id: str, split: int, sender: Any, upper: int | None, out: int) -> None:
    """Forked child of a load: decode the records with ``split <= seq < upper``
    and hand them over in chunks of :data:`LOAD_CHUNK`, each marshalled into
    the file ``out`` with a small notice (offset, length) through the pipe --
    so the parent folds the first chunks while this one decodes the next."""
    import marshal

    try:
        from .source import connect_readonly

        gc.disable()
        conn = connect_readonly(path)
        index = PoolIndex(Path(path), pool_id)
        seqs: list[int] = []
        tuples: list[tuple] = []
        last = [split - 1]
        offset = 0
        reported: set[int] = set()

        def hand_over() -> None:
            nonlocal seqs, tuples, offset
            problems = {s: (type(e).__name__, e.problem) for s, e in index.problems.items() if s not in reported}
            reported.update(problems)
            blob = marshal.dumps((seqs, tuples, problems, index.duplicates[:]))
            index.duplicates.clear()
            written = 0
            while written < len(blob):
                written += os.pwrite(out, memoryview(blob)[written:], offset + written)
            sender.send_bytes(marshal.dumps(("chunk", offset, len(blob))))
            offset += len(blob)
            seqs, tuples = [], []

        for rows in index._batches(conn, lambda: last[0], upper):
            # plain tuples straight from the hot path (marshal takes no tuple subclass)
            batch_seqs, batch = index._decode(rows, last[0], entry_type=tuple)
            if batch_seqs:
                last[0] = batch_seqs[-1]
            seqs.extend(batch_seqs)
            tuples.extend([e if e.__class__ is tuple else tuple(e) for e in batch])
            if len(seqs) >= LOAD_CHUNK:
                hand_over()
        if seqs or index.problems.keys() - reported or index.duplicates:
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


def _transpose(batch: list, columns: list[list]) -> None:
    """Append a batch of entries to one list per :class:`Entry` field (a batch
    at a time: the entries are still in the CPU's cache)."""
    if batch:
        for column, values in zip(columns, zip(*batch)):
            column.extend(values)


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

    for rows in index._batches(conn, lambda: last[0], below):
        batch_seqs, batch = index._decode(rows, last[0], keep=False)
        if batch_seqs:
            last[0] = batch_seqs[-1]
            seqs.extend(batch_seqs)
            _transpose(batch, columns)
        if on_rows is not None:
            on_rows(len(rows))
        if len(seqs) >= SCAN_CHUNK:
            yield chunk()
            seqs, columns = [], [[] for _ in Entry._fields]
    if seqs:
        yield chunk()


def _columns_in_child(
    path: str, pool_id: str, split: int, sender: Any, upper: int | None, collect: Callable[..., Any], out: int
) -> None:
    """Forked child of :func:`scan`: decode the records with ``split <= seq <
    upper``, write the ``collect(...)`` tables as one Arrow IPC stream to the
    file descriptor ``out`` (which the parent maps: no copy through a pipe),
    and report how many through ``sender``."""
    import pickle

    try:
        import pyarrow as pa

        from .source import connect_readonly

        gc.disable()
        index = PoolIndex(Path(path), pool_id)
        tables = [collect(*c) for c in _column_chunks(index, connect_readonly(path), split - 1, upper)]
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
    (:meth:`PoolIndex._decode`); each batch is transposed into one list per
    :class:`Entry` field, and ``collect(seqs, columns, problems)`` (``problems``:
    seq -> why a record is damaged) turns each chunk of about
    :data:`SCAN_CHUNK` records into a result.  A large pool is split in two
    parts decoded at once, the second by a forked child whose results come
    back as one Arrow IPC file in memory.  ``collect`` must return a
    ``pyarrow.Table``; returns the tables in seq order.
    ``index`` is a fresh :class:`PoolIndex`: only its pool id, path and problem
    bookkeeping are used.

    >>> import pyarrow as pa
    >>> tables = scan(PoolIndex(path, "pool.demo.0"), conn, lambda seqs, columns, problems: pa.table({"seq": seqs}))  # doctest: +SKIP
    """
    import pickle

    upper = None if upto is None else upto + 1
    total = None
    if progress is not False or _can_fork():
        total = index._count(conn, 0, upto)
    bar = _progress_bar(index.pool_id, total, progress)

    def part(after: int, below: int | None) -> list:
        on_rows = None if bar is None else bar.update
        return [collect(*c) for c in _column_chunks(index, conn, after, below, on_rows)]

    helper = None
    results = []
    try:
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
    except sqlite3.Error as error:
        raise translate(error, index.path, index.pool_id) from None
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

    return tqdm(total=total, desc=f"loading {pool_id}", unit="rec", leave=False)


def decode_row(kind_raw: Any, typ: str, payload_raw: Any) -> tuple[str, Any]:
    """Decode one stored row's kind and payload, raising :class:`RecordError` subclasses."""
    if isinstance(kind_raw, bytes):
        try:
            kind = kind_raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptRecordError("kind is not valid UTF-8 text") from None
    else:
        kind = str(kind_raw)
    if typ != "text":
        if typ == "null":
            raise CorruptRecordError("payload_json is NULL")
        if typ == "blob":
            raise CorruptRecordError("payload_json is stored as a BLOB, not TEXT (the SDK cannot read it)")
        raise CorruptRecordError(f"payload_json is stored as {typ.upper()}, not JSON text")
    try:
        return kind, wire.loads(payload_raw)
    except wire.orjson.JSONDecodeError as error:
        message = str(error)
        if "utf-8" in message.lower() or "surrogate" in message.lower():
            raise CorruptRecordError("payload_json is not valid UTF-8 text") from None
        raise CorruptRecordError(f"payload_json is not valid JSON ({message})") from None


class PoolIndex:
    """Columnar index of one pool: built once, extended as the log grows.

    Attributes (Python lists, one item per record in seq order): ``seqs``,
    ``entries`` (:class:`Entry`, kind ``DAMAGED`` for records that cannot be
    understood), ``next_seq``.  ``problems`` maps seq to the error for damaged
    records.  ``fold`` is the fold state at the head.
    """

    def __init__(self, path: Path, pool_id: str) -> None:
        self.path = path
        self.pool_id = pool_id
        self.seqs: list[int] = []
        self.entries: list[Entry] = []
        self.next_seq: list[int] = []
        self.problems: dict[int, RecordError] = {}
        self.duplicates: list[int] = []
        self.fold = PoolFold()
        self._arrays: dict[str, np.ndarray] | None = None
        self._ranks: dict[str, np.ndarray] = {}
        self._shared: dict[str, str] = {}
        self._shared_tuples: dict[tuple, tuple] = {}

    # ------------------------------------------------------------------ load
    def load(self, conn: sqlite3.Connection, progress: bool | None = None) -> int:
        """Read the records after the current head; return how many were added."""
        after = self.seqs[-1] if self.seqs else 0
        total = None
        if progress is not False:
            total = self._count(conn, after)
        bar = _progress_bar(self.pool_id, total, progress)
        before = len(self.seqs)
        helper = None
        # a load allocates millions of small objects and frees none: no cycles to find
        with gc_paused():
            try:
                if _can_fork():
                    if total is None:
                        total = self._count(conn, after)
                    helper = _OtherHalf.start(self, conn, after, total, share=LOAD_PARENT_SHARE)
                upper = None if helper is None else helper.split
                for rows in self._batches(conn, lambda: self.head, upper):
                    self._ingest(rows)
                    if bar is not None:
                        bar.update(len(rows))
                if helper is not None:
                    helper.finish(self, conn, bar)
            except sqlite3.Error as error:
                raise translate(error, self.path, self.pool_id) from None
            finally:
                if helper is not None:
                    helper.close()
                if len(self.seqs) - before >= FREEZE_THRESHOLD:
                    gc.freeze()
                if bar is not None:
                    bar.close()
        added = len(self.seqs) - before
        if added:
            self._arrays = None
            self._ranks = {}
        return added

    def _batches(self, conn: sqlite3.Connection, last: Callable[[], int], upper: int | None = None) -> Iterable[list]:
        """Row batches ``(seq, kind, typeof, payload)`` after ``last()`` (and below
        ``upper``), in seq order.  Rows come as SQLite stores them; after a text
        value that is not UTF-8 the next batch is read as bytes."""
        bound, extra = ("", ()) if upper is None else (" AND seq < ?", (upper,))
        while True:
            try:
                cur = conn.execute(FAST_SCAN_SQL + bound + ORDER, (self.pool_id, last(), *extra))
                while rows := cur.fetchmany(BATCH):
                    yield rows
                return
            except sqlite3.OperationalError as error:
                if "decode" not in str(error).lower() and "utf" not in str(error).lower():
                    raise
                rows = conn.execute(
                    SCAN_SQL + bound + ORDER + " LIMIT ?", (self.pool_id, last(), *extra, BATCH)
                ).fetchall()
                if not rows:
                    return
                yield rows

    def _count(self, conn: sqlite3.Connection, after: int, upto: int | None = None) -> int:
        sql, args = "SELECT count(*) FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (self.pool_id, after)
        if upto is not None:
            sql, args = sql + " AND seq <= ?", (*args, upto)
        try:
            return conn.execute(sql, args).fetchone()[0]
        except sqlite3.Error as error:
            raise translate(error, self.path, self.pool_id) from None

    def _ingest(self, rows: Iterable[tuple]) -> None:
        """Decode, flatten and fold a batch of ``(seq, kind, typeof, payload)`` rows."""
        last = self.seqs[-1] if self.seqs else 0
        batch_seqs, batch = self._decode(rows, last)
        self._fold(batch_seqs, batch)

    def _fold(self, batch_seqs: list[int], batch: list[Entry]) -> None:
        """Apply decoded entries to the fold and record which earlier record each replaces."""
        if not batch_seqs:
            return
        start = len(self.seqs)
        prevs = self.fold.apply_many(start, batch_seqs, batch)
        next_seq = self.next_seq
        next_seq.extend([NEVER] * len(batch))
        for seq, prev in zip(batch_seqs, prevs):
            if prev >= 0:
                next_seq[prev] = seq
        self.seqs.extend(batch_seqs)
        self.entries.extend(batch)

    def _decode(
        self, rows: Iterable[tuple], last: int, entry_type: type = Entry, keep: bool = True
    ) -> tuple[list[int], list[Entry]]:
        """Decode and flatten ``(seq, kind, typeof, payload)`` rows with seq > ``last``.

        This is the hot loop of every load: the two bulk kinds (run_message,
        wake) are flattened inline (same result as :func:`extract`, which
        handles every other case and every error), strings that repeat are
        shared, and the cyclic garbage collector is paused meanwhile.
        ``keep=False`` is for entries converted at once and dropped, as in
        :func:`scan`: equal recipient lists and filters are not shared (that
        saves memory only for entries that are kept), and messages and wakes
        get no ``extra`` (expiry, response contract, content ref; timeout,
        resume policy, filter), which only the index's frames read.
        """
        batch_seqs: list[int] = []
        batch: list[Entry] = []
        add_seq, add = batch_seqs.append, batch.append
        loads = wire.orjson.loads
        new = tuple.__new__
        share = self._shared.setdefault
        tuples = self._shared_tuples

        if keep:

            def shared_tuple(value: tuple) -> tuple:
                # recipient lists and wake filters repeat: one tuple per distinct value
                return tuples.setdefault(value, value)

        else:
            shared_tuple = tuple  # tuple(t) is t: no copy, no hashing
        with gc_paused():
            for seq, kind_raw, typ, payload_raw in rows:
                if type(seq) is not int or seq <= last:
                    if type(seq) is int and seq == last:
                        self.duplicates.append(seq)
                    continue
                entry = None
                kind = kind_raw.decode("utf-8", "surrogateescape") if kind_raw.__class__ is bytes else kind_raw
                if typ == "text":
                    try:
                        payload = loads(payload_raw)
                        if kind == "run_message":
                            stored = payload["stored"]
                            message = stored["message"]
                            receipt = stored["receipt"]
                            target = message["to"]["target"]
                            ttype = target["type"]
                            status = receipt["status"]
                            key = message["message_id"]
                            contract = message.get("response_contract")
                            if (
                                payload["type"] == "run_message"
                                and status in _MESSAGE_STATUS
                                and receipt["message_id"] == key
                                and type(key) is str
                                and ttype in _TARGET_FIELD
                            ):
                                tid = target.get(_TARGET_FIELD[ttype])
                                entry = new(
                                    entry_type,
                                    (
                                        RUN_MESSAGE,
                                        key,
                                        _MESSAGE_STATUS[status],
                                        message["idempotency_key"],
                                        None,
                                        None,
                                        share(message["from"], message["from"]),
                                        _TARGET_TYPE[ttype],
                                        None if tid is None else share(tid, tid),
                                        shared_tuple(tuple(receipt.get("delivered_to", ()))),
                                        message.get("reply_to"),
                                        receipt.get("journal_cursor"),
                                        (
                                            message.get("expires_at_millis"),
                                            None if contract is None else contract["expected_responses"],
                                            None if contract is None else contract.get("timeout_millis"),
                                            message["content_ref"],
                                        )
                                        if keep
                                        else None,
                                    ),
                                )
                        elif kind == "wake":
                            stored = payload["stored"]
                            condition = stored["condition"]
                            registration = stored["registration"]
                            status = registration["status"]
                            key = condition["condition_id"]
                            criteria = stored["compiled_filter"]["criteria"]
                            families = criteria.get("families")
                            kinds = criteria.get("kinds")
                            runs = criteria.get("run_ids")
                            if (
                                payload["type"] == "wake"
                                and status in _WAKE_STATUS
                                and registration["condition_id"] == key
                                and type(key) is str
                            ):
                                run_id = condition["run_id"]
                                entry = new(
                                    entry_type,
                                    (
                                        WAKE,
                                        key,
                                        _WAKE_STATUS[status],
                                        condition["idempotency_key"],
                                        share(run_id, run_id),
                                        None,
                                        None,
                                        None,
                                        None,
                                        (),
                                        None,
                                        registration.get("journal_cursor"),
                                        (
                                            condition.get("timeout_millis"),
                                            condition["resume_with"],
                                            shared_tuple(tuple(families["include"]))
                                            if families.__class__ is dict
                                            else None,
                                            shared_tuple(tuple(kinds["include"])) if kinds.__class__ is dict else None,
                                            shared_tuple(tuple(runs["include"])) if runs.__class__ is dict else None,
                                        )
                                        if keep
                                        else None,
                                    ),
                                )
                        if entry is None:
                            entry = extract(kind, payload)
                    except Exception:
                        entry = None
                if entry is None:
                    entry = self._slow_entry(seq, kind_raw, typ, payload_raw)
                add_seq(seq)
                add(entry)
                last = seq
        return batch_seqs, batch

    def _slow_entry(self, seq: int, kind_raw: Any, typ: str, payload_raw: Any) -> Entry:
        """Decode one row the careful way; a damaged row becomes a DAMAGED entry and a problem."""
        try:
            return extract(*decode_row(kind_raw, typ, payload_raw))
        except RecordError as error:
            problem: RecordError = error
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            problem = CorruptRecordError(f"cannot decode record ({error})")
        problem.path, problem.pool_id, problem.seq = str(self.path), self.pool_id, seq
        problem.args = (problem._format(),)
        self.problems[seq] = problem
        return Entry(DAMAGED)

    # --------------------------------------------------------------- columns
    @property
    def head(self) -> int:
        """Seq of the last record (0 for an empty pool)."""
        return self.seqs[-1] if self.seqs else 0

    def __len__(self) -> int:
        return len(self.seqs)

    def arrays(self) -> dict[str, np.ndarray]:
        """Numpy columns: ``seq``, ``kind``, ``next`` and, per namespace, the
        positions of the records that can be live (``members``, ``messages``,
        ``wakes``)."""
        if self._arrays is None:
            kind = np.fromiter((e.kind for e in self.entries), dtype=np.int8, count=len(self.entries))
            self._arrays = {
                "seq": np.asarray(self.seqs, dtype=np.int64),
                "kind": kind,
                "next": np.asarray(self.next_seq, dtype=np.int64),
                "members": np.flatnonzero(kind == MEMBER_JOINED),
                "member_changes": np.flatnonzero((kind == MEMBER_JOINED) | (kind == MEMBER_LEFT)),
                "messages": np.flatnonzero(kind == RUN_MESSAGE),
                "wakes": np.flatnonzero(kind == WAKE),
            }
        return self._arrays

    def status_codes(self) -> np.ndarray:
        """Per record, the code of its status (``wire.MESSAGE_STATUSES`` index for
        messages, ``wire.WAKE_STATUSES`` index for wakes, -1 otherwise); built
        on first use (diffs and frames need it, a snapshot does not)."""
        arrays = self.arrays()
        if "status" not in arrays:
            from itertools import repeat
            from operator import itemgetter

            n = len(self.entries)
            statuses = list(map(itemgetter(2), self.entries))
            kind = arrays["kind"]
            as_message = np.fromiter(map(_MESSAGE_CODE.get, statuses, repeat(-1)), dtype=np.int8, count=n)
            as_wake = np.fromiter(map(_WAKE_CODE.get, statuses, repeat(-1)), dtype=np.int8, count=n)
            arrays["status"] = np.where(kind == RUN_MESSAGE, as_message, np.where(kind == WAKE, as_wake, np.int8(-1)))
        return arrays["status"]

    def rank(self, namespace: str) -> np.ndarray:
        """For each position in ``arrays()[namespace]``, the byte-wise rank of its key.

        Python compares ``str`` by code point, which is the byte order of UTF-8:
        the order of the SDK's ``BTreeMap<String, _>``.
        """
        if namespace not in self._ranks:
            positions = self.arrays()[namespace]
            entries = self.entries
            if namespace in ("messages", "wakes"):
                # one key per chain code (codes 0..n-1 in order of first appearance): sort only those
                codes = self.key_codes(namespace)
                first = np.unique(codes, return_index=True)[1]
                keys = [entries[p].key for p in positions[first].tolist()]
                rank_of_code = np.empty(len(keys), dtype=np.int64)
                rank_of_code[sorted(range(len(keys)), key=keys.__getitem__)] = np.arange(len(keys))
                self._ranks[namespace] = rank_of_code[codes]
            else:
                keys = [entries[p].key for p in positions]
                order = {key: i for i, key in enumerate(sorted(set(keys)))}
                self._ranks[namespace] = np.fromiter((order[k] for k in keys), dtype=np.int64, count=len(keys))
        return self._ranks[namespace]

    def key_codes(self, namespace: str) -> np.ndarray:
        """For each position in ``arrays()[namespace]``, a code per distinct key
        (in order of first appearance; cheaper than :meth:`rank` when only
        grouping is needed).

        For messages and wakes (records of a key are never removed, so each
        replaces the previous one of its key) the codes follow the chains the
        fold recorded in ``next``, with numpy; other namespaces hash the keys.
        """
        cache_key = f"codes:{namespace}"
        if cache_key not in self._ranks:
            positions = self.arrays()[namespace]
            if namespace in ("messages", "wakes"):
                self._ranks[cache_key] = self._chain_codes(positions)
            else:
                import pandas as pd

                entries = self.entries
                keys = np.array([entries[p].key for p in positions.tolist()], dtype=object)
                self._ranks[cache_key] = pd.factorize(keys)[0].astype(np.int64) if len(keys) else np.zeros(0, np.int64)
        return self._ranks[cache_key]

    def _chain_codes(self, positions: np.ndarray) -> np.ndarray:
        """Codes of the chains of records that replace each other (``next``) among ``positions``."""
        m = len(positions)
        if not m:
            return np.zeros(0, dtype=np.int64)
        arrays = self.arrays()
        following = arrays["next"][positions]
        replaced = np.flatnonzero(following != NEVER)
        # the record that replaced each of them, as an index into positions
        successor = np.searchsorted(positions, np.searchsorted(arrays["seq"], following[replaced]))
        root = np.arange(m, dtype=np.int64)
        root[successor] = replaced  # each record points at the one it replaced ...
        while True:  # ... and, jumping pointers, at the first record of its key
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped
        return np.unique(root, return_inverse=True)[1].astype(np.int64).reshape(-1)

    def rank_of(self, namespace: str, positions: np.ndarray) -> np.ndarray:
        """Byte-wise key rank of the records at ``positions`` (positions of that namespace)."""
        candidates = self.arrays()[namespace]
        return self.rank(namespace)[np.searchsorted(candidates, positions)]

    def position(self, cursor: int) -> int:
        """Number of records with ``seq <= cursor``."""
        return int(np.searchsorted(self.arrays()["seq"], cursor, side="right"))

    def live_positions(self, namespace: str, cursor: int, *, ordered: bool = True) -> np.ndarray:
        """Positions of the records current at ``cursor`` in a namespace
        (``members``, ``messages`` or ``wakes``), in the SDK's key order."""
        arrays = self.arrays()
        candidates = arrays[namespace]
        upto = int(np.searchsorted(candidates, self.position(cursor), side="left"))
        selected = np.flatnonzero(arrays["next"][candidates[:upto]] > cursor)
        if ordered and len(selected) > 1:
            selected = selected[np.argsort(self.rank(namespace)[selected], kind="stable")]
        return candidates[selected]

    def count_live(self, namespace: str, cursor: int) -> int:
        """How many keys of a namespace are current at ``cursor`` (no sorting)."""
        arrays = self.arrays()
        candidates = arrays[namespace]
        upto = int(np.searchsorted(candidates, self.position(cursor), side="left"))
        return int(np.count_nonzero(arrays["next"][candidates[:upto]] > cursor))

    def first_problem(self, cursor: int) -> PoolscopeError | None:
        """The first damaged record at or before ``cursor``, if any."""
        if not self.problems:
            return None
        first = min(self.problems)
        return self.problems[first] if first <= cursor else None

    def config_at(self, cursor: int) -> tuple[dict | None, int | None]:
        """The config (and the seq of its ``pool_opened``) in force at ``cursor``."""
        fold = self.fold
        if fold.config_seq is None or fold.config_seq > cursor:
            return None, None
        return fold.config, fold.config_seq

    def conflict_at(self, cursor: int) -> int | None:
        """Seq of the first conflicting ``pool_opened`` at or before ``cursor``."""
        seq = self.fold.conflict_seq
        return seq if seq is not None and seq <= cursor else None

    def created_at(self, cursor: int) -> bool:
        seq = self.fold.created_seq
        return seq is not None and seq <= cursor


@gc_paused()  # decoding thousands of payloads makes no cycles
def fetch_payloads(
    conn: sqlite3.Connection, path: Path, pool_id: str, seqs: list[int], on_error: Callable | None = None
) -> dict[int, Any]:
    """Decoded payloads for the given seqs of one pool (in any order)."""
    out: dict[int, Any] = {}
    if not seqs:
        return out
    ordered = sorted(seqs)
    span = ordered[-1] - ordered[0] + 1
    try:
        if span <= 4 * len(ordered):
            wanted = set(ordered)
            rows = conn.execute(
                # as bytes: a damaged neighbour (invalid UTF-8) must not fail the fetch
                "SELECT seq, CAST(payload_json AS BLOB) FROM agent_pool_records WHERE pool_id = ? AND seq BETWEEN ? AND ?",
                (pool_id, ordered[0], ordered[-1]),
            )
            for seq, text in rows:
                if seq in wanted:
                    out[seq] = wire.loads(text)
        else:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for seq, text in conn.execute(
                    f"SELECT seq, CAST(payload_json AS BLOB) FROM agent_pool_records WHERE pool_id = ? AND seq IN ({marks})",
                    (pool_id, *chunk),
                ):
                    out[seq] = wire.loads(text)
    except sqlite3.Error as error:
        raise translate(error, path, pool_id) from None
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
