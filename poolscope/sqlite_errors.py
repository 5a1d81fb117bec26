"""The one place where ``sqlite3`` exceptions become typed poolscope errors.

Every read or write of a database runs inside :func:`sqlite_errors`, which
turns an ``sqlite3.Error`` into the matching :class:`~poolscope.errors.DatabaseError`
subclass, chosen by SQLite's own result code (``error.sqlite_errorname``,
e.g. ``SQLITE_BUSY_SNAPSHOT`` is a ``SQLITE_BUSY``), never by guessing from
the message.  The original message is kept in the new one.

Example::

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> with sqlite_errors("mem.db", "pool.a"):
    ...     conn.execute("SELECT * FROM agent_pool_records")
    Traceback (most recent call last):
    ...
    poolscope.errors.NotADatabaseError: file mem.db, pool 'pool.a': SQLite error: no such table: agent_pool_records
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import (
    DatabaseAccessError,
    DatabaseChangedError,
    DatabaseLockedError,
    NotADatabaseError,
    PayloadTooLargeError,
    PoolscopeError,
    QueryTimeoutError,
    WriteRefusedError,
)

#: SQLite's primary result code -> (error class, code, what it means).
BY_RESULT_CODE: dict[str, tuple[type[PoolscopeError], str, str]] = {
    "SQLITE_BUSY": (
        DatabaseLockedError,
        "locked",
        "the database is locked by another process (waited the bounded time)",
    ),
    "SQLITE_LOCKED": (DatabaseLockedError, "locked", "the database is locked by another connection"),
    "SQLITE_NOTADB": (NotADatabaseError, "not_a_database", "the file is not an SQLite database"),
    "SQLITE_CORRUPT": (NotADatabaseError, "damaged", "the SQLite file is damaged"),
    "SQLITE_IOERR": (NotADatabaseError, "io_error", "the SQLite file could not be read (damaged or truncated?)"),
    "SQLITE_FORMAT": (NotADatabaseError, "damaged", "the SQLite file is damaged"),
    "SQLITE_RANGE": (NotADatabaseError, "damaged", "the SQLite file is damaged"),
    "SQLITE_CANTOPEN": (NotADatabaseError, "cannot_open", "cannot open the file"),
    "SQLITE_READONLY": (DatabaseAccessError, "read_only", "the database cannot be written (read-only)"),
    # (an extended code: a hot journal, which only a writer can roll back)
    "SQLITE_READONLY_ROLLBACK": (
        DatabaseAccessError,
        "hot_journal",
        "the -journal beside it holds a transaction a writer left unfinished, which SQLite must roll back "
        "before the database can be read -- and poolscope never writes: open it once with a writer "
        "(the SDK, PoolStore or sqlite3) to recover it",
    ),
    "SQLITE_PERM": (DatabaseAccessError, "access", "access to the database was denied"),
    "SQLITE_AUTH": (DatabaseAccessError, "access", "access to the database was denied"),
    "SQLITE_FULL": (DatabaseAccessError, "disk_full", "the disk is full"),
    "SQLITE_NOLFS": (DatabaseAccessError, "access", "the file is too large for this system"),
    "SQLITE_ERROR": (NotADatabaseError, "sqlite_error", "SQLite error"),
    "SQLITE_SCHEMA": (DatabaseChangedError, "changed", "the schema changed while it was read"),
    # rules of the file's own (the SDK's schema has only its primary key, which poolscope never breaks);
    # one that rolls the whole transaction back (RAISE(ROLLBACK), ON CONFLICT ROLLBACK) has the same code
    # (SQLITE_CONSTRAINT_TRIGGER, _UNIQUE, ...): PoolStore, seeing no transaction left, forgets the batch
    "SQLITE_CONSTRAINT": (
        WriteRefusedError,
        "write_refused",
        "the database refused the write with a rule of its own (a constraint or trigger); nothing was written",
    ),
    "SQLITE_MISMATCH": (
        WriteRefusedError,
        "write_refused",
        "the database refused a value's type (a STRICT table or an INTEGER PRIMARY KEY); nothing was written",
    ),
    # the bounds every read connection has (poolscope.source): time per query, size per value
    "SQLITE_INTERRUPT": (
        QueryTimeoutError,
        "timeout",
        "a query ran longer than the timeout without handing back rows and was stopped "
        "(a view over an endless query? open(path, timeout=...) sets the bound)",
    ),
    "SQLITE_TOOBIG": (
        PayloadTooLargeError,
        "payload_too_large",
        "a stored value is larger than the max_payload limit and was not read "
        "(open(path, max_payload=...) sets the limit)",
    ),
}
#: Codes of a file read in the middle of another process's write, when it was read without locks.
_TORN = frozenset({"damaged", "not_a_database", "io_error"})
#: Anything else (an error without a result code, such as a closed connection).
OTHER: tuple[type[PoolscopeError], str, str] = (NotADatabaseError, "sqlite_error", "SQLite error")


def result_code(error: sqlite3.Error) -> str | None:
    """SQLite's primary result code name of ``error`` (``SQLITE_BUSY`` for
    ``SQLITE_BUSY_SNAPSHOT``), or None when it carries none (an error raised
    by the ``sqlite3`` module itself).

    >>> try:
    ...     sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    ... except sqlite3.Error as error:
    ...     print(result_code(error))
    SQLITE_ERROR
    """
    name = getattr(error, "sqlite_errorname", None)
    if not name:
        return None
    primary = name if name in BY_RESULT_CODE else "_".join(name.split("_")[:2])
    return primary


def translate(
    error: sqlite3.Error, path: str | os.PathLike, pool_id: str | None = None, seq: int | None = None
) -> PoolscopeError:
    """The typed poolscope error for an ``sqlite3`` exception (see :data:`BY_RESULT_CODE`).

    >>> busy = sqlite3.OperationalError("database is locked")
    >>> busy.sqlite_errorname = "SQLITE_BUSY_SNAPSHOT"
    >>> error = translate(busy, "a.db")
    >>> type(error).__name__, error.code
    ('DatabaseLockedError', 'locked')

    A rule of the file's own that rolls the transaction back is a refused write:

    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> _ = conn.execute("CREATE TABLE t (a)")
    >>> _ = conn.execute("CREATE TRIGGER r BEFORE INSERT ON t BEGIN SELECT RAISE(ROLLBACK, 'no'); END")
    >>> _ = conn.execute("BEGIN")
    >>> try:
    ...     conn.execute("INSERT INTO t VALUES (1)")
    ... except sqlite3.Error as refused:
    ...     error = translate(refused, "a.db")
    >>> type(error).__name__, error.code, conn.in_transaction
    ('WriteRefusedError', 'write_refused', False)
    >>> conn.close()
    """
    name = result_code(error)
    cls, code, meaning = BY_RESULT_CODE.get(name, OTHER) if name is not None else OTHER
    if name == "SQLITE_CANTOPEN" and _exists(path) is False:
        if os.path.islink(path):
            return DatabaseChangedError(
                f"the path is a symlink to {os.readlink(os.fspath(path))!r}, which does not exist",
                path=path,
                pool_id=pool_id,
            )
        return DatabaseChangedError("the file was deleted or moved while open", path=path, pool_id=pool_id)
    if code in _TORN:
        from .source import written_while_read

        if written_while_read(path):
            return DatabaseChangedError(
                f"another process wrote to the file while it was read without locks (no writer was there "
                f"when it was opened), and SQLite read its pages half-written ({error}): open it again",
                path=path,
                pool_id=pool_id,
                seq=seq,
            )
    return cls(f"{meaning}: {error}", path=path, pool_id=pool_id, seq=seq, code=code)


def _exists(path: str | os.PathLike) -> bool | None:
    """Whether ``path`` exists; None when that cannot be told (a name too long,
    a loop of links): then SQLite's own words are kept."""
    try:
        Path(path).stat()
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return None
    return True


@contextmanager
def sqlite_errors(path: str | os.PathLike, pool_id: str | None = None, seq: int | None = None) -> Iterator[None]:
    """Run the block with ``sqlite3`` errors translated (:func:`translate`),
    naming ``path``, ``pool_id`` and ``seq`` in the message; the ``sqlite3``
    traceback is dropped (``from None``), the typed error says it all."""
    try:
        yield
    except sqlite3.Error as error:
        raise translate(error, path, pool_id, seq) from None


def is_busy(error: sqlite3.Error) -> bool:
    """Whether ``error`` says another connection holds a lock (worth retrying)."""
    return result_code(error) in ("SQLITE_BUSY", "SQLITE_LOCKED")


def is_text_decode_error(error: sqlite3.Error) -> bool:
    """Whether ``error`` is the ``sqlite3`` module failing to decode a TEXT value
    that is not UTF-8 (raised by Python, so it has no SQLite result code)."""
    return isinstance(error, sqlite3.OperationalError) and result_code(error) is None and "decode" in str(error)
