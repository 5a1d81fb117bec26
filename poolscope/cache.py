"""The persistent index cache: reopen a pool without decoding its log again.

The first time a pool is opened, what the fold computed (its columnar index:
one row per record with the flattened fields, the ``next`` column, status
codes, key ranks and key codes) is saved as an Arrow IPC file beside a small
JSON manifest.  A later open of the same file -- from any process or kernel --
maps that file instead of scanning and decoding the log, and folds only the
records appended since.  Pools of fewer than 10,000 records
(``$POOLSCOPE_CACHE_MIN_RECORDS``) are not saved: they fold in less time
than an entry takes to check and map.

Where: ``$POOLSCOPE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/poolscope``,
else ``~/.cache/poolscope``; never beside the database.  Nothing is written
into, or next to, the user's file.  ``poolscope.open(path, cache=False)``
neither reads nor writes the cache.

What it promises: an entry is keyed by the database's real path and the pool,
and used only after checking it against the file -- the SQLite header's
fixed fields, the number of records up to the covered head, and a hash of the
kind and ``payload_json`` of the first, the last and 62 evenly spaced covered
records.  A file that was replaced, rewritten, truncated or vacuumed fails the
check and the index is rebuilt (and saved again) -- unless its history differs
from the entry's only in a few records of a pool over :data:`FULL_CHECK_UPTO`
records, which are sampled (see :func:`spot_check`).  An entry that is truncated,
corrupt (the data file carries a checksum), from another index format or
another Python is ignored and rewritten.  An index restored from an entry is
saved again (extended, or with the wakes doctor found consistent) only if the
records it took from the entry still hash as the entry says; the records this
process decoded itself are decoded again before their hashes are saved if
anything was committed to the file since they were first read
(:func:`_read_as_indexed`).  Entries are
written to a temporary file and renamed, so two kernels can open the same pool
at once.  The cache is capped (``POOLSCOPE_CACHE_SIZE``, default 4 GB); the
least recently used entries are removed first.  Large entries are written by a
forked helper process, at most :data:`MAX_HELPERS` at once.

Example::

    >>> import poolscope
    >>> db = poolscope.open("sample_data/demo.db")
    >>> _ = db.pool("pool.bravo").load()     # first use: folds and saves (the doctests save pools of any size)
    >>> poolscope.cache.wait()
    >>> any(e.pool_id == "pool.bravo" for e in poolscope.cache.entries())
    True
    >>> _ = poolscope.cache.clear("sample_data/demo.db")
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import mmap
import os
import re
import sqlite3
import sys
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .errors import PoolscopeError
from .fold import Entry
from .source import open_regular, read_start

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from .index import PoolIndex

#: Version of the index format the cache stores; entries of another version are ignored and rewritten.
#: 2: loads keep out of the fold every message and wake serde refuses (repeated keys, nesting,
#: fields the index does not keep), which indexes of format 1 let in.
#: 3: a list field stored as null (member topics, policy refs, ...) is damaged, as serde refuses it.
#: 4: a column says which wakes had their compiled filter found consistent (doctor reads them not again).
#: 5: a member is kept as serde writes it back (keys in its order, unknown fields and empty lists left out).
#: 6: an identifier the SDK refuses (empty, over 512 bytes, a control character) makes its record damaged.
#: 7: a record whose kind column does not name its payload's type, or whose receipt (registration) is for
#: another message (condition), is folded as the SDK folds it and kept as an oddity, not as damage.
#: 8: a wake whose filter holds a value serde refuses (a filter set other than "any" or {"include": [...]},
#: terminal_only not a boolean, ...), a queue count of 0 (NonZeroUsize) or an unknown spelling of an SDK enum
#: (policy kinds, payload access, queue overflow, indexed fields) is damaged; a message's
#: ``to.destination_ref`` and ``to.related_refs`` are the SDK's typed refs: one serde refuses makes its
#: record damaged, one not in serde's bytes is written back as the SDK writes it.
FORMAT = 8
ENV_DIR = "POOLSCOPE_CACHE_DIR"
ENV_SIZE = "POOLSCOPE_CACHE_SIZE"
ENV_MIN_RECORDS = "POOLSCOPE_CACHE_MIN_RECORDS"
#: Pools with fewer records are not saved (their load takes well under 0.1 s: an entry
#: would cost more than it saves, and a fleet of thousands of small files would fill the
#: folder with entries nobody needs); ``$POOLSCOPE_CACHE_MIN_RECORDS`` overrides it.
DEFAULT_MIN_RECORDS = 10_000
#: Default size cap of the cache folder (bytes); least recently used entries go first.
DEFAULT_MAX_BYTES = 4_000_000_000
#: Covered records whose payload hash an entry stores (first, last, and evenly spaced between).
SAMPLES = 64
#: The largest manifest read or written: a few kB, plus the text of every damaged record's problem.
MAX_MANIFEST = 64 * 2**20
#: Random covered records whose hash is checked against the file on every
#: use of an entry, and when the file's size, mtime, inode or header changed.
SPOT_CHECKS = 256
SPOT_CHECKS_CHANGED = 2048
#: Entries of at most this many records are checked whole on every use (a few
#: tens of milliseconds), so an edit in place is always caught there; larger
#: ones are spot-checked (a record edited in place with the file's size, mtime
#: and header restored is caught only if it is sampled).
FULL_CHECK_UPTO = 20_000
#: Indexes of at least this many records are saved by a forked helper process,
#: so that the open returns while the entry is written.  0: always in this process.
BACKGROUND_THRESHOLD = 5_000
#: Folding fewer new records than this on top of a cached index does not rewrite the entry... unless
#: the entry would otherwise fall behind: every extension is saved (see :func:`restore`).
#: Seconds after which a data file no manifest names is another writer's leftover, not its work in progress.
STALE_AFTER = 60
_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
#: The names of the files an entry is made of, and nothing else: only files so named
#: are counted, evicted or tidied away (a cache folder may be shared with other files).
_OWN_NAME = re.compile(
    r"^(?:[0-9a-f]{32}\.json"  # a manifest
    r"|[0-9a-f]{32}\.[0-9a-f]{12}\.arrow"  # a data file
    r"|\.[0-9a-f]{32}\.[0-9a-f]{12}\.(?:arrow\.[0-9]+|json)\.tmp)$"  # one being written
)

#: After this many entries read one at a time (or a slice this long), a
#: restored index makes all its entries at once: code that loops over entries
#: then runs at list speed.
MATERIALIZE_AFTER = 2000
_FIELDS = Entry._fields
_STRING_FIELDS = ("key", "idem", "reply_to", "journal_cursor")
_DICT_FIELDS = ("status", "run_id", "agent_id", "sender", "target_type", "target_id")


class _Print(msgspec.Struct):
    """What an entry checks the file against (:func:`fingerprint`)."""

    head: int
    records: int
    count: int
    samples: list[tuple[int, int]]
    header: str | None
    file: list


class _Body(msgspec.Struct):
    """A manifest's body as :meth:`IndexCache._write` writes it (checked before use)."""

    format: int
    poolscope: str
    python: tuple[int, int]
    marshal: int
    db: str
    pool_id: str
    data: str
    checksum: list[int]
    print: _Print
    state: str
    saved: float


# ------------------------------------------------------------ where it lives
def default_dir() -> Path:
    """The cache folder: ``$POOLSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/poolscope``,
    else ``~/.cache/poolscope`` (nothing is created by asking).

    >>> default_dir() == Path(os.environ["POOLSCOPE_CACHE_DIR"])   # set here; else XDG_CACHE_HOME or ~/.cache
    True
    """
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "poolscope"


def max_bytes() -> int:
    """The size cap: ``$POOLSCOPE_CACHE_SIZE`` (bytes, or with a unit: ``500MB``,
    ``8GB``; ``0`` disables saving), else :data:`DEFAULT_MAX_BYTES`.

    >>> os.environ[ENV_SIZE] = "2GB"; max_bytes(); del os.environ[ENV_SIZE]
    2000000000
    """
    text = os.environ.get(ENV_SIZE, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    match = re.fullmatch(r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*", text)
    if not match:
        _warn_once(f"ignoring {ENV_SIZE}={text!r} (expected bytes, or a size like 500MB or 8GB)")
        return DEFAULT_MAX_BYTES
    units = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30}
    units["tib"] = 2**40
    return int(float(match.group(1)) * units[(match.group(2) or "b").lower()])


def min_records() -> int:
    """The smallest pool that is saved: ``$POOLSCOPE_CACHE_MIN_RECORDS``, else
    :data:`DEFAULT_MIN_RECORDS`.

    >>> saved = os.environ.pop(ENV_MIN_RECORDS, None)
    >>> min_records()
    10000
    >>> os.environ[ENV_MIN_RECORDS] = "0"; min_records()
    0
    >>> if saved is not None: os.environ[ENV_MIN_RECORDS] = saved
    """
    text = os.environ.get(ENV_MIN_RECORDS, "").strip()
    if not text:
        return DEFAULT_MIN_RECORDS
    try:
        return max(0, int(text))
    except ValueError:
        _warn_once(f"ignoring {ENV_MIN_RECORDS}={text!r} (expected a number of records)")
        return DEFAULT_MIN_RECORDS


_warned: set[str] = set()


#: Cache folders found unwritable in this process: saving there is off (one warning said so).
_unwritable: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CacheWarning, stacklevel=3)


class CacheWarning(UserWarning):
    """The index cache cannot be used (its folder cannot be created or written); poolscope works without it."""


def resolve(cache: Any) -> IndexCache | None:
    """The cache ``poolscope.open(..., cache=...)`` asks for: True (the default
    folder), False/None (none), or a folder."""
    if cache is False or cache is None:
        return None
    if cache is True:
        return IndexCache(default_dir())
    if isinstance(cache, IndexCache):
        return cache
    if not isinstance(cache, str | os.PathLike):
        from .arguments import shown_value
        from .errors import InvalidInputError

        raise InvalidInputError(f"cache must be True, False or a folder, not {shown_value(cache)}")
    return IndexCache(cache)


def read_only() -> IndexCache:
    """The default cache, whose valid entries are used but to which nothing is
    saved: what the bulk readers use (a fleet's workers, Dask partitions, the
    fleet dataset).  They read each pool once, on every core, so an entry's
    writing could not be hidden in a spare moment as an interactive open hides
    it (for 1M records it costs about three times the reading), and thousands
    of databases would push out the entries of the pools people reopen.

    >>> read_only().saves
    False
    """
    return IndexCache(default_dir(), saves=False)


def real_path(path: str | os.PathLike) -> str:
    """The database's real path (symlinks resolved): what an entry is keyed by."""
    return os.path.realpath(os.fspath(path))


def entry_key(path: str | os.PathLike, pool_id: str) -> str:
    """The name of the entry of ``pool_id`` in the database at ``path``."""
    digest = hashlib.sha256(real_path(path).encode("utf-8", "surrogateescape") + b"\0")
    digest.update(pool_id.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


# ----------------------------------------------------- columns of the index
def entries_table(index: PoolIndex) -> pa.Table:
    """The index as one Arrow table (see :meth:`PoolIndex.export_state`)."""
    import pyarrow as pa

    from .index import TRANSPOSE_BATCH as BATCH
    from .index import transpose as _transpose

    entries = index.entries
    n = len(entries)
    if isinstance(entries, CachedEntries) and entries.base_rows:
        base = entries.base_table()
        tail = entries.tail
        columns: list[list] = [[] for _ in _FIELDS]
        for start in range(0, len(tail), BATCH):
            _transpose(tail[start : start + BATCH], columns)
        parts = [base.select(list(_FIELDS))]
        if tail:
            parts.append(_fields_table(columns, len(tail)).cast(parts[0].schema))
        fields = pa.concat_tables(parts).unify_dictionaries().combine_chunks()
    else:
        columns = [[] for _ in _FIELDS]
        for start in range(0, n, BATCH):
            _transpose(entries[start : start + BATCH], columns)
        fields = _fields_table(columns, n)
    arrays = index.arrays()
    rank = np.full(n, -1, dtype=np.int64)
    code = np.full(n, -1, dtype=np.int64)
    for namespace in ("messages", "wakes", "members"):
        rank[arrays[namespace]] = index.rank(namespace)
    for namespace in ("messages", "wakes"):
        code[arrays[namespace]] = index.key_codes(namespace)
    extra = {
        "seq": np.asarray(index.seqs, dtype=np.int64),
        "next": np.asarray(arrays["next"], dtype=np.int64),
        "status_code": np.asarray(index.status_codes(), dtype=np.int8),
        "rank": rank,
        "code": code,
    }
    for name, values in extra.items():
        fields = fields.append_column(name, pa.array(values))
    return fields


def _fields_table(columns: list[list], n: int) -> pa.Table:
    import pyarrow as pa

    by_name = dict(zip(_FIELDS, columns)) if n else {name: [] for name in _FIELDS}
    data: dict[str, Any] = {"kind": pa.array(np.asarray(by_name["kind"], dtype=np.int8))}
    for name in _FIELDS[1:]:
        values = by_name[name]
        if name in _STRING_FIELDS:
            data[name] = pa.array(values, type=pa.string())
        elif name in _DICT_FIELDS:
            data[name] = pa.array(values, type=pa.string()).dictionary_encode()
        elif name == "delivered_to":  # recipients repeat: a list of dictionary codes
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            offsets = np.zeros(len(values) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            flat = pa.array(list(chain.from_iterable(values)), type=pa.string()).dictionary_encode()
            data[name] = pa.ListArray.from_arrays(pa.array(offsets), flat)
        else:  # extra: a member or config dict, or a message's or wake's details
            dumps = marshal.dumps
            data[name] = pa.array([None if v is None else dumps(v) for v in values], type=pa.binary())
    return pa.table(data)


class CachedEntries(Sequence):
    """The entries of an index restored from the cache: the cached records
    (columns of a memory-mapped Arrow table) followed by entries folded since
    (a list).  An item is an :class:`Entry` made from its row when read;
    :meth:`field` and :meth:`take` read many at once.  Iterating makes every
    entry once and keeps them."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.base_rows = table.num_rows
        self.tail: list[Entry] = []
        self._columns = {name: table.column(name) for name in table.column_names}
        self._lists: dict[str, list] = {}
        self._all: list[Entry] | None = None
        self._point_reads = 0

    def base_table(self) -> pa.Table:
        return self._table

    def column(self, name: str) -> pa.ChunkedArray:
        """A column of the cached records, as Arrow."""
        return self._columns[name]

    def column_numpy(self, name: str) -> np.ndarray:
        """A numeric column of the cached records (zero copy when possible)."""
        column = self._columns[name]
        chunks = column.chunks
        if len(chunks) == 1:
            return chunks[0].to_numpy(zero_copy_only=False)
        return column.to_numpy()

    # -------------------------------------------------------- sequence
    def __len__(self) -> int:
        return self.base_rows + len(self.tail)

    def __getitem__(self, i: Any) -> Any:
        if self._all is not None:
            return self._all[i]
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if len(range(start, stop, step)) > MATERIALIZE_AFTER:
                return self.materialize()[i]
            return self.take(range(start, stop, step))
        i = int(i)
        if i < 0:
            i += len(self)
        if i >= self.base_rows:
            return self.tail[i - self.base_rows]
        if i < 0:
            raise IndexError("entry index out of range")
        self._point_reads += 1
        if self._point_reads > MATERIALIZE_AFTER:  # a loop over many entries: make them all once
            return self.materialize()[i]
        return self.take([i])[0]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.materialize())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, CachedEntries)):
            return len(self) == len(other) and self.materialize() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def extend(self, entries: list[Entry]) -> None:
        self.tail.extend(entries)
        if self._all is not None:
            self._all.extend(entries)

    def append(self, entry: Entry) -> None:
        self.extend([entry])

    def materialize(self) -> list[Entry]:
        """Every entry as a list (made once)."""
        if self._all is None:
            columns = [self.field(name) for name in _FIELDS]
            new = tuple.__new__
            self._all = [new(Entry, t) for t in zip(*columns)] if columns[0] else []
        return self._all

    # ---------------------------------------------------------- columns
    def _convert(self, name: str, column: Any) -> list:
        """A column (or the rows taken from it) as a list of the Entry's values."""
        import pyarrow as pa

        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if name == "kind":
            return column.to_numpy(zero_copy_only=False).tolist()
        if name == "delivered_to":
            offsets = column.offsets.to_numpy().tolist()
            flat = _decoded(column.values)
            return [tuple(flat[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
        if pa.types.is_dictionary(column.type):
            return _decoded(column)
        values = column.to_pylist()
        if name == "extra":
            loads = marshal.loads
            return [None if v is None else loads(v) for v in values]
        return values

    def field(self, name: str, positions: Any = None) -> list:
        """Values of one :class:`Entry` field at ``positions`` (all when None)."""
        tail = self.tail
        base = self.base_rows
        if positions is None:
            if name not in self._lists:
                self._lists[name] = self._convert(name, self._columns[name])
            values = self._lists[name]
            if not tail:
                return list(values)
            index = _FIELDS.index(name)
            return values + [e[index] for e in tail]
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if name in self._lists and not tail:
            values = self._lists[name]
            return [values[p] for p in positions.tolist()]
        if not len(positions):
            return []
        if not tail or positions.max() < base:
            return self._convert(name, self._columns[name].take(positions))
        index = _FIELDS.index(name)
        in_base = positions < base
        out: list = [None] * len(positions)
        where = np.flatnonzero(in_base)
        for i, value in zip(where.tolist(), self._convert(name, self._columns[name].take(positions[where]))):
            out[i] = value
        for i in np.flatnonzero(~in_base).tolist():
            out[i] = tail[int(positions[i]) - base][index]
        return out

    def take(self, positions: Any) -> list[Entry]:
        """The entries at ``positions``."""
        if self._all is not None:
            return [self._all[p] for p in np.asarray(positions, dtype=np.int64).tolist()]
        columns = [self.field(name, positions) for name in _FIELDS]
        new = tuple.__new__
        return [new(Entry, t) for t in zip(*columns)]

    def kind_array(self) -> np.ndarray:
        base = self.column_numpy("kind").astype(np.int8, copy=False)
        if not self.tail:
            return base
        tail = np.fromiter((e.kind for e in self.tail), dtype=np.int8, count=len(self.tail))
        return np.concatenate([base, tail])

    def status_codes(self) -> np.ndarray:
        from .index import status_codes_of

        base = self.column_numpy("status_code").astype(np.int8, copy=False)
        if not self.tail:
            return base
        kind = np.fromiter((e.kind for e in self.tail), dtype=np.int8, count=len(self.tail))
        return np.concatenate([base, status_codes_of(kind, [e.status for e in self.tail]).astype(np.int8)])


def _decoded(array: Any) -> list:
    """A dictionary-encoded Arrow array's values as a list (one str object per
    distinct value; a few rows of a large dictionary: only theirs, decoded)."""
    if len(array) * 4 < len(array.dictionary):  # say, the two records a refresh checks
        return array.dictionary_decode().to_pylist()
    values = array.dictionary.to_pylist()
    indices = array.indices
    if indices.null_count:
        indices = indices.fill_null(len(values))
        values.append(None)
    if not values:
        return [None] * len(array)
    return np.asarray(values, dtype=object)[indices.to_numpy(zero_copy_only=False)].tolist()


# ------------------------------------------------------------------- checks
#: Header bytes that identify a database and do not change as it grows:
#: page size, file format versions, reserved space, payload fractions,
#: text encoding, application id.
_HEADER_SPANS = ((16, 24), (56, 60), (68, 72))


def header_fields(path: str | os.PathLike) -> str | None:
    try:
        header = read_start(path)
    except OSError:
        return None
    return _fields_of(header)


def _fields_of(header: bytes) -> str | None:
    if len(header) < 100:
        return None
    return b"".join(header[a:b] for a, b in _HEADER_SPANS).hex()


def _sample_seqs(seqs: Sequence[int]) -> list[int]:
    n = len(seqs)
    if n == 0:
        return []
    picks = {0, n - 1} | {int(i) for i in np.linspace(0, n - 1, min(n, SAMPLES))}
    return sorted({int(seqs[i]) for i in picks})


def record_hash(kind: bytes | None, typ: str, payload: bytes | None) -> int:
    """A 64-bit hash (as a signed int) of a stored record: CRC-32 of its kind,
    type and ``payload_json`` bytes, and the payload's length."""
    payload = b"" if payload is None else payload
    crc = zlib.crc32(payload, zlib.crc32((b"" if kind is None else kind) + b"\0" + typ.encode()))
    value = (crc << 32) | (len(payload) & 0xFFFFFFFF)
    return value - (1 << 64) if value >= 1 << 63 else value


_ROW_SQL = (
    "SELECT seq, CAST(kind AS BLOB), typeof(payload_json), CAST(payload_json AS BLOB) "
    "FROM agent_pool_records WHERE pool_id = ? AND "
)


def record_hashes(conn: sqlite3.Connection, pool_id: str, seqs: list[int]) -> dict[int, int]:
    """:func:`record_hash` of the records at ``seqs`` (several rows with one seq: their xor)."""
    found: dict[int, int] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for seq, kind, typ, payload in conn.execute(_ROW_SQL + f"seq IN ({marks})", (pool_id, *chunk)):
            found[seq] = found.get(seq, 0) ^ record_hash(kind, typ, payload)
    return found


def all_record_hashes(conn: sqlite3.Connection, pool_id: str, seqs: list[int]) -> np.ndarray:
    """:func:`record_hash` of every record at ``seqs`` (a pool's index order), read in one scan."""
    found: dict[int, int] = {}
    head = seqs[-1] if seqs else 0
    for seq, kind, typ, payload in conn.execute(_ROW_SQL + "seq <= ?", (pool_id, head)):
        if type(seq) is int:
            found[seq] = found.get(seq, 0) ^ record_hash(kind, typ, payload)
    return np.fromiter(map(found.__getitem__, seqs), dtype=np.int64, count=len(seqs))


def count_upto(conn: sqlite3.Connection, pool_id: str, head: int) -> tuple[int, int | None]:
    row = conn.execute(
        "SELECT count(*), max(seq) FROM agent_pool_records WHERE pool_id = ? AND seq <= ?", (pool_id, head)
    ).fetchone()
    return int(row[0]), row[1]


def _file_state(path: str | os.PathLike) -> list:
    """The file's size, mtime, inode and whole header: when any of these changed,
    the records are checked more thoroughly."""
    return _file_print(path)[1]


def _file_print(path: str | os.PathLike) -> tuple[str | None, list]:
    """:func:`header_fields` and :func:`_file_state` of the file, its header read once."""
    try:
        info = os.stat(path)
        header = read_start(path)
    except OSError:
        return None, []
    return _fields_of(header), [info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, header.hex()]


def fingerprint(index: PoolIndex, conn: sqlite3.Connection) -> dict:
    """What an entry checks the file against before it is used (see the module's docstring)."""
    head = index.head
    if index.counted is not None and index.counted[0] == head:
        count = index.counted[1]  # checked at the restore, plus the rows read since
    else:
        count, _ = count_upto(conn, index.pool_id, head)
    samples = record_hashes(conn, index.pool_id, _sample_seqs(index.seqs))
    header, state = _file_print(index.path)
    return {
        "head": head,
        "records": len(index),
        "count": count,
        "samples": [[seq, digest] for seq, digest in sorted(samples.items())],
        "header": header,
        "file": state,
    }


def still_matches(print_: dict, path: str | os.PathLike, conn: sqlite3.Connection, pool_id: str) -> bool:
    """True when the records a fingerprint covers are still in the file, unchanged:
    the header's fixed fields, the count up to the covered head, and the samples."""
    if print_.get("header") != header_fields(path):
        return False
    head = print_["head"]
    if (print_["count"], head if print_["count"] else None) != count_upto(conn, pool_id, head):
        return False
    samples = {int(seq): digest for seq, digest in print_["samples"]}
    return record_hashes(conn, pool_id, sorted(samples)) == samples


def spot_check(print_: dict, path: str | os.PathLike, conn: sqlite3.Connection, pool_id: str, table: Any) -> bool:
    """Compare the stored hash of random covered records with the file's:
    :data:`SPOT_CHECKS` of them, :data:`SPOT_CHECKS_CHANGED` when the file's
    size, mtime, inode or header changed since the entry was saved, and every
    one of them for an entry of at most :data:`FULL_CHECK_UPTO` records."""
    hashes = table.column("hash")
    n = len(hashes)
    if not n:
        return True
    changed = _file_state(path) != print_.get("file")
    k = SPOT_CHECKS_CHANGED if changed else SPOT_CHECKS
    positions = (
        np.arange(n) if n <= max(k, FULL_CHECK_UPTO) else np.unique(np.random.default_rng().integers(0, n, size=k))
    )
    seqs = table.column("seq").take(positions).to_pylist()
    stored = hashes.take(positions).to_pylist()
    found = record_hashes(conn, pool_id, seqs)
    return all(found.get(seq) == value for seq, value in zip(seqs, stored))


# ------------------------------------------------------------------ files
_CHUNK = 1 << 23


def _checksum(handle: Any) -> list[int]:
    """A cheap checksum of an open file's bytes (read in chunks, so that the
    pages are not mapped into this process): the wrapping sums and xors of its
    64-bit words, the tail's bytes, and the size."""
    handle.seek(0)
    buffer = bytearray(_CHUNK)
    total = xor = weighted = 0
    size = 0
    rest = b""
    mask = (1 << 64) - 1
    while True:
        got = handle.readinto(buffer)
        if not got:
            break
        size += got
        words = got // 8
        if words:
            array = np.frombuffer(buffer, dtype=np.uint64, count=words)
            total = (total + int(np.add.reduce(array, dtype=np.uint64))) & mask
            xor ^= int(np.bitwise_xor.reduce(array))
            weighted = (weighted * 31 + int(np.add.reduce(array[::7], dtype=np.uint64))) & mask
        rest = bytes(buffer[words * 8 : got])
        if got < _CHUNK:
            break
    return [total, xor, weighted, int.from_bytes(rest, "little"), size]


@dataclass
class EntryInfo:
    """One cache entry, as :func:`entries` lists it."""

    key: str
    db: str
    pool_id: str
    records: int
    head: int
    bytes: int
    last_used: float
    format: int
    manifest: Path

    @property
    def db_exists(self) -> bool:
        return os.path.exists(self.db)


class IndexCache:
    """One cache folder.  ``poolscope.open`` uses the default one
    (:func:`default_dir`); tests and tools may point one anywhere.

    >>> cache = IndexCache(default_dir())
    >>> isinstance(cache.entries(), list)
    True
    """

    def __init__(self, root: str | os.PathLike, *, saves: bool = True) -> None:
        from .arguments import path_argument

        self.root = path_argument(root, "the cache folder").expanduser()
        #: False: entries are read (restored) but never written (see :func:`read_only`).
        self.saves = saves

    def __repr__(self) -> str:
        return f"<poolscope IndexCache {str(self.root)!r}>"

    # ------------------------------------------------------------- reading
    def _manifest_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def _data_file(self, body: dict) -> Path | None:
        """The data file a manifest's body names, if it names one by an entry's own
        file name (a manifest is untrusted: a path elsewhere, a NUL, not a string: None)."""
        name = body.get("data")
        if isinstance(name, str) and _OWN_NAME.fullmatch(name) and name.endswith(".arrow"):
            return self.root / name
        return None

    def _read_manifest(self, path: Path) -> dict | None:
        """The manifest's body, or None when it is unreadable, fails its
        checksum, or -- written for this index format -- is not shaped as this
        version writes it (:class:`_Body`: another program's file, or one
        edited with its checksum made again).  A body of another format is
        returned as it is, for its format to be told (every reader treats
        its fields as untrusted)."""
        try:
            with open_regular(path) as handle:
                text = handle.read(MAX_MANIFEST + 1)
            if len(text) > MAX_MANIFEST:  # not one this module wrote: not read whole
                return None
            outer = json.loads(text)
            body = outer["body"]
            if hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() != outer["sha256"]:
                return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):  # RecursionError: nested too deep
            return None
        if not isinstance(body, dict):
            return None
        if body.get("format") == FORMAT:
            try:
                msgspec.convert(body, _Body)
            except msgspec.ValidationError:
                return None
        return body

    def restore(self, index: PoolIndex, conn: sqlite3.Connection) -> bool:
        """Restore ``index`` (fresh, empty) from its entry if the entry is valid
        for the file as it is now; True if it was.  Never raises for a bad
        entry; why one was not used is in :attr:`last_miss`."""
        key = entry_key(index.path, index.pool_id)
        manifest_path = self._manifest_path(key)
        if not os.path.lexists(manifest_path):  # the common miss, told without importing pyarrow
            self.last_miss = "no entry"
            return False
        if os.path.islink(manifest_path):  # never one this cache wrote: not read, not touched
            self.last_miss = "the entry is a symlink"
            return False
        import pyarrow as pa

        try:
            miss = self._restore(index, conn, manifest_path)
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            EOFError,
            IndexError,
            OverflowError,  # a number in the manifest beyond what SQLite or numpy take
            pa.ArrowException,
            sqlite3.Error,
        ) as error:
            miss = f"unreadable entry ({type(error).__name__}: {error})"
        self.last_miss = miss
        if miss is not None:
            index.__init__(index.path, index.pool_id)  # type: ignore[misc]
            return False
        try:
            os.utime(manifest_path, follow_symlinks=False)  # last used, for the LRU eviction
        except OSError:
            pass
        return True

    last_miss: str | None = None

    def _restore(self, index: PoolIndex, conn: sqlite3.Connection, manifest_path: Path) -> str | None:
        import pyarrow as pa

        body = self._read_manifest(manifest_path)
        if body is None:
            return "no entry" if not manifest_path.exists() else "unreadable manifest"
        if body["format"] != FORMAT:
            return f"index format {body['format']}, not {FORMAT}"
        if body["marshal"] != marshal.version or body["python"] != list(sys.version_info[:2]):
            return "written by another Python"
        if body["pool_id"] != index.pool_id or body["db"] != real_path(index.path):
            return "entry of another pool"
        if not still_matches(body["print"], index.path, conn, index.pool_id):
            return "the file's records differ from the entry's (header, count or sampled records)"
        data = self._data_file(body)
        if data is None:
            return "bad data file name"
        if os.path.islink(data):
            return "the data file is a symlink"
        with open_regular(data) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != body["checksum"][-1] or size == 0 or _checksum(handle) != body["checksum"]:
                return "data file truncated or corrupt (checksum)"
            mapped = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ)
        table = pa.ipc.open_file(pa.py_buffer(mapped)).read_all()
        meta = marshal.loads(base64.b64decode(body["state"]))
        if table.num_rows != body["print"]["records"]:
            return "data file of another size"
        if not spot_check(body["print"], index.path, conn, index.pool_id, table):
            return "the file's records differ from the entry's (spot check)"
        index.restore_state(table, meta)
        index.counted = (body["print"]["head"], body["print"]["count"])
        return None

    # ------------------------------------------------------------- writing
    def save(self, index: PoolIndex, conn: sqlite3.Connection, *, background: bool | None = None) -> bool:
        """Save ``index``'s entry (atomically: a temporary file, then a rename).
        A large index is written by a forked helper process meanwhile
        (``background=None``: from :data:`BACKGROUND_THRESHOLD` records), at
        most :data:`MAX_HELPERS` at once: while they all write, a large index is
        not saved (a later open of its pool saves it).
        Returns False when nothing is saved: the cache folder cannot be written
        (one warning), or the helpers are busy."""
        if not self.saves or not index.seqs or len(index) < min_records() or max_bytes() <= 0:
            return False
        if self._beside(index.path):
            return False
        if background is None:
            background = 0 < BACKGROUND_THRESHOLD <= len(index)
        if background and _busy():
            return False  # as many helpers as allowed are writing: a later open saves this entry
        if not self._writable():
            return False
        try:
            print_ = fingerprint(index, conn)
        except sqlite3.Error:
            return False
        index.unsaved_checks = False  # the entry written keeps every wake found consistent so far
        if background:
            # columns the parent reads for every snapshot: made before the fork, so that the child
            # shares them and the parent does not touch (copy) every entry's page while the child runs
            index.arrays()
        if background and _start_background(self, index, print_):
            return True
        return self._write(index, print_)

    def _beside(self, db: str | os.PathLike) -> bool:
        """Whether the cache folder is the database's own folder (say,
        ``$POOLSCOPE_CACHE_DIR`` a symlink to it): nothing is saved there -- an
        entry is never written beside the user's database (one warning)."""
        try:
            root = Path(os.path.realpath(self.root))
            folder = Path(real_path(db)).parent
        except (OSError, ValueError):
            return True
        if root == folder:
            _warn_once(
                f"poolscope's index cache is off for {folder}: the cache folder {self.root} is that "
                "database's folder, and nothing is written beside a database"
            )
            return True
        return False

    def _writable(self) -> bool:
        if str(self.root) in _unwritable:
            return False
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(f"cannot write to {self.root}")
        except OSError as error:
            self._off(error, "create or write")
            return False
        return True

    def _off(self, error: OSError, doing: str) -> None:
        """Turn saving into this folder off for the rest of the process, with one
        warning (its reason without the file's name, which differs at each try)."""
        _unwritable.add(str(self.root))
        reason = error.strerror or type(error).__name__
        _warn_once(f"poolscope's index cache is off: cannot {doing} {self.root} ({reason})")

    def _write(self, index: PoolIndex, print_: dict) -> bool:
        import pyarrow as pa

        key = entry_key(index.path, index.pool_id)
        if self._manifest_path(key).is_dir() and not self._manifest_path(key).is_symlink():
            return False  # someone's folder at the entry's name: no entry, the rest of the cache works
        token = os.urandom(6).hex()
        data_name = f"{key}.{token}.arrow"
        tmp = self.root / f".{data_name}.{os.getpid()}.tmp"
        manifest_tmp = self.root / f".{key}.{token}.json.tmp"
        named = False  # whether the manifest names the data file (else it is removed on failure)
        try:
            try:
                table, meta = index.export_state()
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                return False  # values the columns cannot hold exactly (a hostile file): no entry
            hashes = self._hashes(index, print_)
            if hashes is None or not _same_records(index, hashes) or not _read_as_indexed(index):
                return False
            table = table.append_column("hash", pa.array(hashes))
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            with open(tmp, "rb") as handle:
                checksum = _checksum(handle)
            os.replace(tmp, self.root / data_name)
            body = {
                "format": FORMAT,
                "poolscope": _version(),
                "python": list(sys.version_info[:2]),
                "marshal": marshal.version,
                "db": real_path(index.path),
                "pool_id": index.pool_id,
                "data": data_name,
                "checksum": checksum,
                "print": print_,
                "state": base64.b64encode(marshal.dumps(meta)).decode(),
                "saved": time.time(),
            }
            text = json.dumps(
                {"body": body, "sha256": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()}
            )
            if len(text) > MAX_MANIFEST:  # (damaged records by the million) one no reader would take
                os.unlink(self.root / data_name)
                return False
            manifest_tmp.write_text(text)
            before = self._read_manifest(self._manifest_path(key))
            previous = before.get("data") if before else None
            os.replace(manifest_tmp, self._manifest_path(key))
            named = True
        except OSError as error:
            for leftover in (tmp, manifest_tmp) if named else (tmp, manifest_tmp, self.root / data_name):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:
                    pass
            self._off(error, "write")
            return False
        self._drop_stale(key, previous, data_name)
        self.evict()
        return True

    def _hashes(self, index: PoolIndex, print_: dict) -> np.ndarray | None:
        """Every covered record's hash, read through a connection of our own,
        or None if the file no longer agrees with the index (it changed since
        the load: the samples taken then differ)."""
        from .source import connect_readonly

        try:
            conn = connect_readonly(index.path)
            try:
                if count_upto(conn, index.pool_id, index.head)[0] != print_["count"]:
                    return None
                hashes = all_record_hashes(conn, index.pool_id, index.seqs)
            finally:
                conn.close()
        except (KeyError, sqlite3.Error, PoolscopeError):
            return None
        at = {seq: i for i, seq in enumerate(index.seqs)}
        if any(seq not in at or int(hashes[at[seq]]) != digest for seq, digest in print_["samples"]):
            return None
        return hashes

    def _drop_stale(self, key: str, previous: str | None, mine: str) -> None:
        """Remove the data file the manifest named before ours (if it is not the
        current one), and others of ``key`` no manifest names that are old
        enough not to be another writer's, about to be named."""
        body = self._read_manifest(self._manifest_path(key))
        current = body.get("data") if body else None
        now = time.time()
        for path in self.root.glob(f"{key}.*.arrow"):
            if path.name in (current, mine):
                continue
            try:
                if path.name == previous or now - path.stat().st_mtime > STALE_AFTER:
                    path.unlink()
            except OSError:
                pass

    # ----------------------------------------------------------- managing
    def entries(self) -> list[EntryInfo]:
        """Every entry in the folder, most recently used first (unreadable
        manifests are listed with format -1)."""
        out = []
        try:
            manifests = [p for p in self.root.glob("*.json") if _KEY_RE.match(p.stem)]
        except OSError:
            return []
        for path in manifests:
            if path.is_dir() and not path.is_symlink():
                continue  # a folder at a manifest's name is never an entry (nor removed by clear())
            body = self._read_manifest(path) or {}
            data = self._data_file(body)
            size = 0
            for part in (path,) if data is None else (path, data):
                try:
                    size += part.stat().st_size
                except OSError:
                    pass
            try:
                used = path.stat().st_mtime
            except OSError:
                continue
            print_ = body.get("print", {}) if isinstance(body.get("print"), dict) else {}
            out.append(
                EntryInfo(
                    key=path.stem,
                    db=str(body.get("db", "?")),
                    pool_id=str(body.get("pool_id", "?")),
                    records=_count(print_.get("records"), 0),
                    head=_count(print_.get("head"), 0),
                    bytes=size,
                    last_used=used,
                    format=_count(body.get("format"), -1),
                    manifest=path,
                )
            )
        out.sort(key=lambda e: e.last_used, reverse=True)
        return out

    def size(self) -> int:
        """Bytes used by the folder's entries and leftovers (files named as an
        entry's files are: no other file in the folder is counted)."""
        total = 0
        try:
            for path in self.root.iterdir():
                if not _OWN_NAME.match(path.name):
                    continue  # not an entry's (the folder may hold other files)
                try:
                    total += path.stat().st_size
                except OSError:
                    pass
        except OSError:
            return 0
        return total

    def _remove(self, key: str) -> int:
        freed = 0
        for path in chain([self._manifest_path(key)], self.root.glob(f"{key}.*.arrow")):
            try:
                freed += path.stat().st_size
                path.unlink()
            except OSError:
                pass
        return freed

    def clear(self, db: str | os.PathLike | None = None) -> int:
        """Remove every entry (or those of the database ``db``, by its real
        path, whether or not it still exists); return how many were removed.
        Leftover temporary files of finished writers go too.  An entry that
        cannot be removed (a folder that is not writable) is an
        :class:`~poolscope.errors.OutputError` saying how many were, and were not."""
        from .arguments import path_argument
        from .errors import OutputError

        removed = kept = 0
        target = real_path(path_argument(db, "db")) if db is not None else None
        for entry in self.entries():
            if target is None or entry.db == target:
                self._remove(entry.key)
                if os.path.lexists(self._manifest_path(entry.key)):
                    kept += 1
                else:
                    removed += 1
        if target is None:
            self._drop_leftovers(max_age=0)
        if kept:
            raise OutputError(
                f"removed {removed} entr{'y' if removed == 1 else 'ies'}, but {kept} could not be removed "
                "(is the cache folder writable?)",
                path=self.root,
            )
        return removed

    def _drop_leftovers(self, max_age: float = 3600) -> None:
        """Temporary files older than ``max_age`` seconds (a writer that died),
        and data files no manifest names -- only files named as an entry's
        files are (a ``.tmp`` or ``.arrow`` file of someone else's is left alone)."""
        now = time.time()
        try:
            paths = list(self.root.iterdir())
        except OSError:
            return
        named = {self._data_file(self._read_manifest(p) or {}) for p in paths if p.suffix == ".json"}
        for path in paths:
            if not _OWN_NAME.match(path.name):
                continue  # only an entry's own files are ever removed
            try:
                old = now - path.stat().st_mtime >= max_age
                if (path.name.endswith(".tmp") and old) or (path.suffix == ".arrow" and path not in named and old):
                    path.unlink()
            except OSError:
                pass

    def evict(self, limit: int | None = None) -> int:
        """Remove least recently used entries until the folder is under
        ``limit`` bytes (default :func:`max_bytes`); return how many went."""
        limit = max_bytes() if limit is None else limit
        total = self.size()
        if total <= limit and self.root in _tidied:
            return 0  # under the cap: no manifest is read (a save stays cheap with many entries)
        _tidied.add(self.root)
        self._drop_leftovers()
        total = self.size()
        removed = 0
        for entry in reversed(self.entries()):
            if total <= limit:
                break
            total -= self._remove(entry.key)
            removed += 1
        return removed


#: Cache folders whose leftovers this process removed once already (see :meth:`IndexCache.evict`).
_tidied: set[Path] = set()


def _count(value: Any, default: int) -> int:
    """``value`` if it is an integer (a manifest's field, untrusted), else ``default``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _version() -> str:
    from . import __version__

    return __version__


def _same_records(index: PoolIndex, hashes: np.ndarray) -> bool:
    """Whether the records an index restored from an entry took from it are
    still the file's (the entry's hashes against ``hashes``, read now): an
    index restored long ago is not saved again over a file rewritten since."""
    entries = index.entries
    if not isinstance(entries, CachedEntries) or not entries.base_rows:
        return True
    before = entries.column_numpy("hash")
    return bool(np.array_equal(hashes[: len(before)], before))


def _read_as_indexed(index: PoolIndex) -> bool:
    """Whether the records this process decoded into ``index`` are still the
    file's, now that their hashes have been read for the entry: yes at once
    when no commit landed since they were first read (the file's
    :func:`~poolscope.source.change_mark` is what it was then), else only if
    they decode again, from the file as it is now, to the same entries, seqs,
    damage and duplicates.  So an entry never pairs records decoded before a
    rewrite in place with hashes read after it (a live writer that only
    appended costs one more decode, in the helper)."""
    from .index import PoolIndex
    from .load import _batches
    from .source import change_mark, connect_readonly

    if index.read_mark is None:
        return True  # every record came from the entry (compared by _same_records)
    start, before = index.read_mark
    if before and change_mark(index.path) == before:
        return True
    seqs = index.seqs
    if start >= len(seqs):
        return True
    after = int(seqs[start - 1]) if start else 0
    again = PoolIndex(index.path, index.pool_id)
    position = start
    try:
        conn = connect_readonly(index.path)
        try:
            last = [after]
            for rows in _batches(conn, index.pool_id, lambda: last[0], int(seqs[-1]) + 1):
                batch_seqs, batch = again.decode(rows, last[0])
                if not batch_seqs:
                    continue
                end = position + len(batch_seqs)
                if list(seqs[position:end]) != batch_seqs or index.entries_at(list(range(position, end))) != batch:
                    return False
                last[0], position = batch_seqs[-1], end
        finally:
            conn.close()
    except Exception:  # the file cannot be read again as the load read it: nothing is saved
        return False
    mine = {seq: error.problem for seq, error in index.problems.items() if seq > after}
    return (
        position == len(seqs)
        and mine == {seq: error.problem for seq, error in again.problems.items()}
        and [seq for seq in index.duplicates if seq > after] == again.duplicates
        and {seq: found for seq, found in index.oddities.items() if seq > after} == again.oddities
    )


# ------------------------------------------------------ background saving
#: Process ids of the helpers writing entries (forked children of this process).
_helpers: list[int] = []
#: Most helpers writing at once.  Each holds a copy-on-write image of this
#: process and the columns of its entry: loading many large pools in a row
#: (``db.pools()``, ``doctor`` of a file with many) must not start a helper
#: for each.  A pool loaded while they all write is saved by a later open.
MAX_HELPERS = 2


def _busy() -> bool:
    """Whether :data:`MAX_HELPERS` helpers are still writing."""
    _reap()
    return len(_helpers) >= MAX_HELPERS


def _start_background(cache: IndexCache, index: PoolIndex, print_: dict) -> bool:
    """Write the entry from a forked child (the index is its copy-on-write
    memory).  Nothing waits for it at exit: a command or a short script
    returns at once and its entry is written after it ends (:func:`wait`
    waits for it meanwhile).  The child leaves the caller's session and
    standard streams, so a terminal, a pipe or ``subprocess.run`` reading the
    caller's output is not held open by it."""
    import multiprocessing

    if (
        sys.platform != "linux"
        or not hasattr(os, "fork")
        or multiprocessing.current_process().daemon  # a Dask or Pool worker may have no children
    ):
        return False
    _reap()
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:  # the helper
        try:
            _detach()
            _write_in_child(cache, index, print_)
        finally:
            os._exit(0)
    _helpers.append(pid)
    return True


#: How much lower the helper's scheduling priority is than its caller's: writing
#: an entry is background work, which should not compete with what the caller
#: (a notebook, a command) does next.
HELPER_NICENESS = 10


def _detach() -> None:
    """In the helper: a session of its own, standard streams on /dev/null, a
    lower priority (:data:`HELPER_NICENESS`)."""
    try:
        os.nice(HELPER_NICENESS)
    except OSError:
        pass
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(null, stream)
        os.close(null)
    except OSError:
        pass


def _write_in_child(cache: IndexCache, index: PoolIndex, print_: dict) -> None:
    import gc

    from .source import connect_readonly, started_in_time

    gc.disable()
    try:
        with started_in_time():  # SQLite's mutexes as another thread held them at the fork: ended, not stuck
            connect_readonly(index.path).close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache._write(index, print_)
    except BaseException:  # the parent goes on without an entry
        pass


def _finished(pid: int, block: bool) -> bool:
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # reaped elsewhere
        return True
    return done != 0


def _reap() -> None:
    """Forget the helpers that have finished (and collect their exit status)."""
    _helpers[:] = [pid for pid in _helpers if not _finished(pid, block=False)]


def wait(timeout: float | None = None) -> None:
    """Wait until entries being saved in the background are written (at most
    ``timeout`` seconds in all, if given).

    >>> poolscope.cache.wait()
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    for pid in list(_helpers):
        if deadline is None:
            _finished(pid, block=True)
        else:
            while not _finished(pid, block=False) and time.monotonic() < deadline:
                time.sleep(0.01)
    _reap()


# ------------------------------------------------ the default cache, for users
def entries(root: str | os.PathLike | None = None) -> list[EntryInfo]:
    """The entries of the default cache folder (or ``root``)."""
    return IndexCache(default_dir() if root is None else root).entries()


def clear(db: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> int:
    """Remove the default cache's entries (those of ``db`` only, when given)."""
    return IndexCache(default_dir() if root is None else root).clear(db)
