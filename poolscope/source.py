"""Opening an SDK database for reading without ever changing it.

SQLite's ordinary read-only open of a WAL-mode file still creates ``-wal`` and
``-shm`` files beside it, and rewrites an ``-shm`` it finds.
:func:`connect_readonly` avoids that:

* the path is resolved first (a symlink is followed to the real file, whose
  folder is where SQLite looks for ``-wal`` and ``-shm``), and anything that is
  not a regular file (a FIFO, a device, a socket) is refused before SQLite
  opens it;
* a WAL-mode file with no (or an empty) ``-wal`` beside it has no writer: it
  is opened ``immutable=1`` (no locks, no side files);
* a WAL-mode file with a ``-wal`` that no live process holds (a copy, or a
  crashed writer's leftover; with or without its ``-shm``) is read through a
  *private copy* (the file and its ``-wal``, copied into a temporary folder
  that is removed when the connection closes), so that committed but
  un-checkpointed records are visible while nothing beside the file is
  created or rewritten;
* a WAL-mode file that a live process holds (a writer, or another reader) is
  opened ``mode=ro`` and read through SQLite's shared memory like any reader
  (read-only if its ``-shm`` is not writable);
* a rollback-journal file is opened ``mode=ro`` with a bounded busy wait.

Every connection is bounded: a statement that runs for longer than
``timeout`` seconds without handing back its next batch of rows is
interrupted (:class:`~poolscope.errors.QueryTimeoutError`), and a single value
larger than ``max_payload`` bytes is refused by SQLite before it is
materialised (:class:`~poolscope.errors.PayloadTooLargeError`).

Example::

    >>> conn = connect_readonly("sample_data/demo.db")
    >>> conn.execute("SELECT COUNT(DISTINCT pool_id) FROM agent_pool_records").fetchone()
    (3,)
    >>> conn.close()
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from .errors import (
    DatabaseChangedError,
    DatabaseNotFoundError,
    NotADatabaseError,
    PoolscopeError,
    SchemaError,
)
from .sqlite_errors import sqlite_errors, translate

RECORDS_TABLE = "agent_pool_records"
EVENT_SEQ_TABLE = "agent_pool_event_seq"
RECORD_COLUMNS = ("pool_id", "seq", "kind", "payload_json")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds a reader waits for another process's lock, and at most for one
#: statement to hand back its next rows, before giving up.
DEFAULT_TIMEOUT = 5.0
#: Largest single value (a payload) read, in bytes.  A larger one is refused
#: by SQLite before it is materialised (``SQLITE_LIMIT_LENGTH``).
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024
#: SQLite virtual-machine instructions between two checks of the deadline.
PROGRESS_STEPS = 10_000

_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


#: Each pool's id once, as the pool ids are stored: ``(typeof(pool_id), CAST(pool_id AS BLOB))``.
#: Hops from pool to pool through the SDK's primary key when the table has one (one lookup
#: per pool, see :func:`stored_pool_ids`); a text id and a BLOB id with the same bytes are two rows.
_DISTINCT_POOL_IDS = f"SELECT DISTINCT typeof(pool_id), CAST(pool_id AS BLOB) FROM {RECORDS_TABLE}"
_SKIP_SCAN_POOL_IDS = (
    f"WITH RECURSIVE ids(id) AS (SELECT min(pool_id) FROM {RECORDS_TABLE} UNION ALL "
    f"SELECT (SELECT min(pool_id) FROM {RECORDS_TABLE} WHERE pool_id > ids.id) FROM ids WHERE ids.id IS NOT NULL) "
    "SELECT typeof(id), CAST(id AS BLOB) FROM ids WHERE id IS NOT NULL"
)


def pool_id_text(kind: str, raw: bytes | None) -> str | None:
    """A stored pool id as the SDK reads it -- text that is UTF-8 -- or None.

    ``kind`` is the value's ``typeof()``, ``raw`` its bytes (``CAST(pool_id AS
    BLOB)``).  A BLOB, a number, NULL or text that is not UTF-8 is no pool's id:
    the SDK looks a pool up by its ``String`` id, which no such row equals, so
    no pool can read the row (doctor reports it as ``bad_pool_id``).

    >>> pool_id_text("text", b"pool.alpha"), pool_id_text("text", b"p\\xff"), pool_id_text("blob", b"pool.alpha")
    ('pool.alpha', None, None)
    """
    if kind != "text" or raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def stored_pool_ids(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
    """Every distinct stored pool id as ``(typeof, bytes)``, in the table's order (NULL left out).

    >>> conn = connect_readonly("sample_data/demo.db")
    >>> stored_pool_ids(conn)[0]
    ('text', b'pool.alpha')
    >>> conn.close()
    """
    sql = _SKIP_SCAN_POOL_IDS if _indexed_by_pool(conn) else _DISTINCT_POOL_IDS
    return [(kind, bytes(raw)) for kind, raw in conn.execute(sql).fetchall() if raw is not None]


def _indexed_by_pool(conn: sqlite3.Connection) -> bool:
    """Whether ``agent_pool_records`` has a full index whose first column is
    ``pool_id`` in byte order (the SDK's primary key is one): then the pools
    can be listed with one index lookup each."""
    try:
        indexes = conn.execute("PRAGMA index_list(agent_pool_records)").fetchall()
        for _, name, _, _, partial in indexes:
            columns = conn.execute("SELECT name, coll FROM pragma_index_xinfo(?)", (name,)).fetchall()
            if not partial and columns and (sql_name(columns[0][0]), sql_name(columns[0][1])) == ("pool_id", "binary"):
                return True
    except sqlite3.Error:
        pass
    return False


@dataclass(frozen=True)
class FileIdentity:
    """What identifies the file on disk, to notice it being replaced or deleted."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> FileIdentity:
        info = os.stat(path)
        return cls(info.st_dev, info.st_ino)


@dataclass(frozen=True)
class Source:
    """Where a read-only connection reads from, and how.

    ``path`` is the path as given (used in messages), ``real`` the resolved
    file, ``identity`` the file's (device, inode) when it was opened, ``mode``
    one of ``"immutable"``, ``"ro"`` or ``"private"`` (a private copy in the
    folder ``copy``, whose file is ``copy / real.name``).
    """

    path: Path
    real: Path
    identity: FileIdentity
    mode: str
    timeout: float = DEFAULT_TIMEOUT
    max_payload: int = DEFAULT_MAX_PAYLOAD
    copy: Path | None = None

    @property
    def wal(self) -> Path:
        return side_file(self.real, "-wal")

    @property
    def shm(self) -> Path:
        return side_file(self.real, "-shm")


class ReadConnection(sqlite3.Connection):
    """A read-only ``sqlite3`` connection that knows its :class:`Source` and
    removes its private copy (if any) when closed."""

    source: Source
    _deadline: list[float]
    _cleanup: weakref.finalize | None = None

    def keepalive(self) -> None:
        """Give the running statement another ``timeout`` seconds (called
        between batches of a long scan: the bound is on one batch, not on a
        whole load)."""
        self._deadline[0] = time.monotonic() + self.source.timeout

    def close(self) -> None:
        super().close()
        if self._cleanup is not None:
            self._cleanup()


def side_file(real: Path, suffix: str) -> Path:
    return real.with_name(real.name + suffix)


def keepalive(conn: sqlite3.Connection) -> None:
    """:meth:`ReadConnection.keepalive` for any connection (a no-op for others)."""
    if conn.__class__ is ReadConnection:
        conn.keepalive()


def resolve(path: str | os.PathLike) -> Path:
    """The real file behind ``path`` (every symlink followed)."""
    return Path(os.path.realpath(path))


def file_type(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words (``"a FIFO (named pipe)"``)."""
    return _FILE_TYPES.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else raise ``OSError``.

    Opened without blocking, so that a FIFO or a device put where a file was
    expected (a database, a cache entry) is refused at once instead of hanging
    the caller on its first read.

    >>> with open_regular("sample_data/demo.db") as handle:
    ...     handle.read(15)
    b'SQLite format 3'
    >>> open_regular("sample_data")
    Traceback (most recent call last):
    ...
    IsADirectoryError: [Errno 21] is a folder, not a regular file: 'sample_data'
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            cls = IsADirectoryError if code == errno.EISDIR else OSError
            raise cls(code, f"is {file_type(mode)}, not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


#: Where Linux lists this process's open descriptors (see :func:`read_start`).
_OWN_FDS = "/proc/self/fd"


def read_start(path: str | os.PathLike, size: int = 100) -> bytes:
    """The first ``size`` bytes of the regular file at ``path`` (``OSError`` as
    :func:`open_regular` raises it), read without dropping a lock.

    POSIX record locks belong to a process and a file, and closing *any*
    descriptor of the file releases every lock the process holds on it --
    SQLite's too: a store's write transaction in another thread, or the shared
    lock by which a WAL reader tells a closing writer not to remove the WAL.
    So when this process already has the file open (SQLite does, while one of
    its connections is open), the bytes are read through that descriptor,
    which is left open; only a file this process does not hold open is opened
    and closed here.  (Where ``/proc/self/fd`` does not list descriptors, the
    file is opened and closed.)

    >>> read_start("sample_data/demo.db", 15)
    b'SQLite format 3'
    """
    read = _read_held(path, size)
    if read is not None:
        return read[0]
    with open_regular(path) as handle:
        return handle.read(size)


def _read_held(path: str | os.PathLike, size: int) -> tuple[bytes, os.stat_result] | None:
    """``size`` bytes from the start of the file at ``path`` and its ``fstat``,
    read through a descriptor this process already has open on that file
    (not ours to close); None when there is none."""
    try:
        want = os.stat(path)
        names = os.listdir(_OWN_FDS)
    except OSError:
        return None
    if not stat.S_ISREG(want.st_mode):
        return None
    for name in names:
        try:
            fd = int(name)
            info = os.fstat(fd)
            if info.st_ino != want.st_ino or info.st_dev != want.st_dev:
                continue
            data = os.pread(fd, size, 0)
            again = os.fstat(fd)  # the descriptor may have been closed and reused meanwhile
        except (OSError, ValueError):
            continue
        if (again.st_dev, again.st_ino) == (want.st_dev, want.st_ino):
            return data, again
    return None


def change_mark(path: str | os.PathLike) -> list:
    """What a commit to the database at ``path`` changes: the device, inode,
    size and modification and change times of the file and of its ``-wal``
    (a commit writes one or the other; the change time cannot be set back
    the way a modification time can).  Two marks that differ mean the file
    may have changed in between; equal marks, that no commit landed (to the
    change times' resolution).  Only ``stat``: opening and closing either
    file here would drop the locks SQLite holds on it in this process (a
    store folding what it appends inside its write transaction).  An empty
    list when the file is gone.

    >>> change_mark("sample_data/demo.db") == change_mark("sample_data/demo.db")
    True
    """
    real = resolve(path)
    mark: list = []
    for name in (real, side_file(real, "-wal")):
        try:
            info = os.stat(name)
        except FileNotFoundError:
            if name == real:
                return []
            mark.append(None)
            continue
        except OSError:
            return []
        mark.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return mark


def check_file(path: Path, real: Path | None = None) -> tuple[bytes, FileIdentity]:
    """Check that ``path`` (whose resolved file is ``real``) is an existing
    regular SQLite file; return its 100-byte header and its identity.

    A FIFO, a device or a socket is refused without being opened for a read
    that could block."""
    real = resolve(path) if real is None else real
    try:
        info = os.stat(real)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise DatabaseNotFoundError("is a symlink to a file that does not exist", path=path) from None
        raise DatabaseNotFoundError(
            "no such file (poolscope does not create databases when reading)", path=path
        ) from None
    except OSError as error:
        raise NotADatabaseError(f"cannot be read ({error.strerror})", path=path) from None
    kind = stat.S_IFMT(info.st_mode)
    if kind != stat.S_IFREG:
        what = _FILE_TYPES.get(kind, "not a regular file")
        if kind == stat.S_IFDIR:
            raise NotADatabaseError("is a folder, not an SQLite database file", path=path)
        raise NotADatabaseError(f"is {what}, not a regular file: poolscope reads only regular files", path=path)
    # through a descriptor this process already holds, if any (closing one would drop SQLite's locks)
    read = _read_held(real, 100)
    header, opened = _read_header(path, real) if read is None else read
    if not header:
        raise NotADatabaseError("is an empty file, not an SQLite database", path=path)
    if not header.startswith(SQLITE_MAGIC):
        raise NotADatabaseError("is not an SQLite database (wrong file header)", path=path)
    if len(header) < 100:
        raise NotADatabaseError("is truncated (shorter than an SQLite header)", path=path)
    return header, FileIdentity(opened.st_dev, opened.st_ino)


def _read_header(path: Path, real: Path) -> tuple[bytes, os.stat_result]:
    """The first 100 bytes of ``real``, opened here (and closed: no other
    descriptor of this process is open on it), and its ``fstat``."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except PermissionError:
        raise NotADatabaseError("cannot be read (permission denied)", path=path) from None
    except OSError as error:
        raise NotADatabaseError(f"cannot be read ({error.strerror})", path=path) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped for something else since the stat
            raise NotADatabaseError("is not a regular file: poolscope reads only regular files", path=path)
        return os.pread(fd, 100, 0), opened
    except OSError as error:
        raise NotADatabaseError(f"cannot be read ({error.strerror})", path=path) from None
    finally:
        os.close(fd)


def is_wal(header: bytes) -> bool:
    """True when the header says the file is in WAL mode (bytes 18-19 == 2)."""
    return header[18] == 2 and header[19] == 2


def held_by_a_process(path: Path) -> bool | None:
    """Whether some process holds a lock on ``path`` (a live SQLite connection
    holds one on its ``-shm`` as long as it is open), read from Linux's
    ``/proc/locks`` without opening the file (closing a descriptor would drop
    this process's own locks on it).  None where that cannot be known."""
    try:
        info = os.stat(path)
        with open("/proc/locks", "rb") as handle:
            table = handle.read()
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino} ".encode()
    return wanted in table


def choose_mode(real: Path, header: bytes) -> str:
    """``"immutable"``, ``"ro"`` or ``"private"`` for the file ``real`` (see the module's docstring).

    A live connection (a writer, or any reader in WAL mode) holds a lock on the
    file and on its ``-shm`` for as long as it is open: then SQLite's own
    protocol is followed (``mode=ro``; an exclusive writer makes that wait the
    bounded time and fail).  With no live process, the ``-wal`` is a leftover
    of a crash or a copy, and SQLite would rebuild (or create) the ``-shm`` to
    read it: a private copy is read instead."""
    if not is_wal(header):
        return "ro"
    wal, shm = side_file(real, "-wal"), side_file(real, "-shm")
    try:
        wal_size = os.stat(wal).st_size
    except FileNotFoundError:
        return "immutable"
    except OSError:
        wal_size = 32
    held = [held_by_a_process(real)] + ([held_by_a_process(shm)] if os.path.exists(shm) else [])
    if any(held) or (None in held and os.path.exists(shm)):
        return "ro"
    return "immutable" if wal_size < 32 else "private"  # an empty -wal (a clean close) has nothing to read


def connect_readonly(
    path: str | os.PathLike,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    expect: FileIdentity | None = None,
) -> sqlite3.Connection:
    """Open ``path`` read-only, creating or changing no file beside it, and check the SDK's schema.

    Returns a :class:`ReadConnection` (its ``source`` says what was opened
    and how).  ``timeout`` bounds both the wait for another process's lock
    and each statement's time to its next rows; ``max_payload`` the size of
    any single value read.  ``expect``: the identity the file must still have
    (a helper process reopening the parent's file), else
    :class:`DatabaseChangedError`.

    Raises :class:`~poolscope.errors.DatabaseError` subclasses for a missing
    path, a folder or other non-regular file, a file that is not SQLite, a
    truncated file, or missing tables and columns.
    """
    path = Path(path)
    real = resolve(path)
    header, identity = check_file(path, real)
    if expect is not None and identity != expect:
        raise DatabaseChangedError(
            "the file was replaced by another file while open; open it again to read the new one", path=path
        )
    for attempt in range(_CHOOSE_ATTEMPTS):
        mode = choose_mode(real, header)
        source = Source(path, real, identity, mode, float(timeout), int(max_payload))
        if mode != "private":
            break
        try:
            source = _private_copy(source)
            break
        except _WalVanished:
            # a writer came back and checkpointed the -wal away meanwhile: the file is live, choose again
            if attempt == _CHOOSE_ATTEMPTS - 1:
                raise NotADatabaseError(
                    "cannot read a private copy of this WAL database (its -wal kept vanishing while copied)",
                    path=path,
                ) from None
    conn = _connect(source)
    try:
        with sqlite_errors(path):
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        try:
            replaced = FileIdentity.of(real) != identity  # between the check and SQLite's open
        except OSError:
            raise DatabaseChangedError("the file was deleted or moved while it was being opened", path=path) from None
        if replaced:
            raise DatabaseChangedError(
                "the file was replaced by another file while it was being opened; open it again", path=path
            )
        check_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


#: Seconds a forked child (a load's other half, the cache's writer) may take to
#: make its first SQLite connection before it is ended: see :func:`started_in_time`.
CHILD_START_SECONDS = 2.0


@contextmanager
def started_in_time(seconds: float | None = None) -> Iterator[None]:
    """In a forked child, around its first SQLite calls: a child that has not
    come out of them after ``seconds`` (:data:`CHILD_START_SECONDS`) is ended
    (``SIGALRM``, with its default action, which no lock can hold up).

    A fork copies SQLite's global mutexes as they are, and one that another
    thread of the parent held at that moment (any program using SQLite in a
    thread: a store appending, IPython's history, a web server) stays held in
    the child for ever: its first SQLite call then waits for ever, and nothing
    in the child can release it.  Ended, the child has failed as any other:
    the parent decodes its share itself, or the entry is saved by a later
    open.  Once the first calls return, the mutexes were free and the timer is
    off.
    """
    import signal

    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not a handler the parent set: it would run in Python
    signal.setitimer(signal.ITIMER_REAL, CHILD_START_SECONDS if seconds is None else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def reconnect(source: Source) -> sqlite3.Connection:
    """A new connection to the very file ``source`` describes (a forked helper
    reading what its parent opened): the private copy if the parent reads one,
    else the original file, which must still be the same file
    (:class:`DatabaseChangedError` otherwise)."""
    if source.mode == "private" and source.copy is not None:
        conn = _connect(replace(source, mode="copy"))
        try:
            with sqlite_errors(source.path):
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn
    return connect_readonly(source.path, source.timeout, max_payload=source.max_payload, expect=source.identity)


#: Times :func:`connect_readonly` chooses how to read a WAL file whose ``-wal`` vanished while copied.
_CHOOSE_ATTEMPTS = 3


class _WalVanished(Exception):
    """The ``-wal`` was there when the mode was chosen and gone when copied."""


def _private_copy(source: Source) -> Source:
    """Copy the file and its ``-wal`` into a new temporary folder
    (:class:`_WalVanished` if the ``-wal`` is gone by then)."""
    folder = Path(tempfile.mkdtemp(prefix="poolscope-"))
    try:
        for suffix in ("", "-wal"):
            try:
                shutil.copyfile(side_file(source.real, suffix), folder / (source.real.name + suffix))
            except FileNotFoundError:
                if suffix == "-wal":
                    raise _WalVanished from None
                raise
        if FileIdentity.of(source.real) != source.identity:
            raise DatabaseChangedError(
                "the file was replaced while it was being copied; open it again", path=source.path
            )
    except _WalVanished:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except OSError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise NotADatabaseError(
            f"cannot read a private copy of this WAL database ({error.strerror or error})", path=source.path
        ) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return replace(source, copy=folder)


def _remove_copy(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked helper
        shutil.rmtree(folder, ignore_errors=True)


#: Files SQLite opens beside a database it reads ``mode=ro``: the rollback
#: journal (to see whether it is hot), the WAL and its shared-memory index.
SIDE_FILES = ("-journal", "-wal", "-shm")


def check_side_files(path: str | os.PathLike, real: Path) -> None:
    """:class:`NotADatabaseError` when a file SQLite would open beside
    ``real`` (:data:`SIDE_FILES`) is there but is not a regular file -- a FIFO
    would block SQLite's open(2) for ever, where no timeout reaches, a device
    would be read as a journal.  Only ``stat``: nothing is opened.

    >>> check_side_files("sample_data/demo.db", resolve("sample_data/demo.db"))
    """
    for suffix in SIDE_FILES:
        try:
            mode = os.stat(side_file(real, suffix)).st_mode
        except OSError:
            continue  # absent (or unreadable: SQLite says so itself)
        if not stat.S_ISREG(mode):
            raise NotADatabaseError(
                f"{real.name + suffix} beside it, where SQLite keeps its {suffix[1:]} file, is "
                f"{file_type(mode)}, not a regular file: SQLite would open it as one (a FIFO blocks it for ever)",
                path=path,
            )


#: Files opened ``immutable=1`` (real path -> size, mtime and inode then): SQLite reads such a file
#: without locks, so a writer that appears later (and checkpoints into it) can hand it torn pages,
#: which SQLite calls corruption.  See :func:`written_while_read`.
_IMMUTABLE_OPENS: dict[str, tuple[int, int, int]] = {}


def _state(path: str | os.PathLike) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino


def written_while_read(path: str | os.PathLike) -> bool:
    """Whether a file this process opened ``immutable`` (no locks: no writer
    was there) has been written since: its size, mtime or inode changed, or a
    writer holds it or its ``-wal`` now.  SQLite's corruption errors on such
    a connection are then the writer's pages read half-written, not damage
    (:func:`poolscope.sqlite_errors.translate` says the file changed)."""
    try:
        real = os.path.realpath(path)
        opened = _IMMUTABLE_OPENS.get(real)
        if opened is None:
            return False
        if _state(real) != opened or os.path.exists(side_file(Path(real), "-wal")):
            return True
        return bool(held_by_a_process(Path(real)))
    except (OSError, ValueError):
        return False


def _connect(source: Source) -> ReadConnection:
    if source.copy is None and source.mode != "immutable":
        check_side_files(source.path, source.real)  # immutable: SQLite opens none of them
    if source.copy is not None:
        # our own copy: read-write so that SQLite may rebuild its -shm there (query_only keeps it read-only)
        uri = (source.copy / source.real.name).as_uri() + ("?mode=rw" if source.mode == "private" else "?mode=ro")
    else:
        uri = source.real.as_uri() + ("?immutable=1" if source.mode == "immutable" else "?mode=ro")
        if source.mode == "immutable":
            try:
                _IMMUTABLE_OPENS[str(source.real)] = _state(source.real)
            except OSError:
                pass
    try:
        with sqlite_errors(source.path):
            conn = sqlite3.connect(
                uri, uri=True, timeout=source.timeout, check_same_thread=False, factory=ReadConnection
            )
    except PoolscopeError:
        if source.copy is not None and source.mode == "private":
            shutil.rmtree(source.copy, ignore_errors=True)
        raise
    assert isinstance(conn, ReadConnection)
    conn.source = source
    if source.copy is not None and source.mode == "private":
        conn._cleanup = weakref.finalize(conn, _remove_copy, str(source.copy), os.getpid())
    deadline = conn._deadline = [time.monotonic() + source.timeout]
    timeout = source.timeout
    monotonic = time.monotonic

    def arm(_statement: object) -> None:
        deadline[0] = monotonic() + timeout

    def expired() -> bool:
        return monotonic() > deadline[0]

    try:
        with sqlite_errors(source.path):
            conn.set_trace_callback(arm)  # called when a statement starts running
            conn.set_progress_handler(expired, PROGRESS_STEPS)
            # the schema first: SQLite reads its CREATE texts under the same limit, and one larger than
            # max_payload would make the whole file unreadable rather than one record damaged
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 0").fetchall()
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(int(source.max_payload), 1))
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def sql_name(name: Any) -> str:
    """``name`` as SQLite compares identifiers: ASCII letters in either case
    are the same (``POOL_ID`` is ``pool_id``; a non-ASCII letter is itself).

    >>> sql_name("Payload_JSON"), sql_name("K\u212aind")
    ('payload_json', 'k\u212aind')
    """
    return str(name).encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`SchemaError` unless ``agent_pool_records`` has the SDK's columns."""
    with sqlite_errors(path):
        # table_xinfo, not table_info: it lists generated (computed) columns too, which read like any other
        columns = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({RECORDS_TABLE})")]
    if not columns:
        raise SchemaError(
            f"has no {RECORDS_TABLE} table: not a database written by the SDK's SqliteAgentPoolStore", path=path
        )
    named = {sql_name(c) for c in columns}
    missing = [c for c in RECORD_COLUMNS if c not in named]
    if missing:
        raise SchemaError(
            f"table {RECORDS_TABLE} lacks column(s) {', '.join(missing)} (has {', '.join(columns)})", path=path
        )


__all__ = ["check_file", "check_schema", "connect_readonly", "is_wal", "sql_name", "translate"]
