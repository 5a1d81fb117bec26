"""Opening an SDK database for reading without ever changing it.

SQLite's ordinary read-only open of a WAL-mode file still creates ``-wal`` and
``-shm`` files beside it.  :func:`connect_readonly` avoids that:

* a WAL-mode file with no ``-wal`` beside it has no live writer, so it is
  opened ``immutable=1`` (no locks, no side files);
* a WAL-mode file whose ``-wal`` exists (a writer is live, or crashed) is opened
  ``mode=ro`` so that committed but un-checkpointed records are visible; the
  side files already exist, so nothing new is created;
* a rollback-journal file is opened ``mode=ro`` with a bounded busy wait.

Example::

    >>> conn = connect_readonly("sample_data/demo.db")
    >>> conn.execute("SELECT COUNT(DISTINCT pool_id) FROM agent_pool_records").fetchone()
    (3,)
    >>> conn.close()
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    DatabaseNotFoundError,
    NotADatabaseError,
    SchemaError,
)
from .sqlite_errors import sqlite_errors, translate

RECORDS_TABLE = "agent_pool_records"
EVENT_SEQ_TABLE = "agent_pool_event_seq"
RECORD_COLUMNS = ("pool_id", "seq", "kind", "payload_json")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds a reader waits for another process's lock before giving up.
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class FileIdentity:
    """What identifies the file on disk, to notice it being replaced or deleted."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        info = os.stat(path)
        return cls(info.st_dev, info.st_ino)


def check_file(path: Path) -> bytes:
    """Check that ``path`` is an existing SQLite file; return its 100-byte header."""
    if not path.exists():
        raise DatabaseNotFoundError("no such file (poolscope does not create databases when reading)", path=path)
    if path.is_dir():
        raise NotADatabaseError("is a folder, not an SQLite database file", path=path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except PermissionError:
        raise NotADatabaseError("cannot be read (permission denied)", path=path) from None
    except OSError as error:
        raise NotADatabaseError(f"cannot be read ({error.strerror})", path=path) from None
    if not header:
        raise NotADatabaseError("is an empty file, not an SQLite database", path=path)
    if not header.startswith(SQLITE_MAGIC):
        raise NotADatabaseError("is not an SQLite database (wrong file header)", path=path)
    if len(header) < 100:
        raise NotADatabaseError("is truncated (shorter than an SQLite header)", path=path)
    return header


def is_wal(header: bytes) -> bool:
    """True when the header says the file is in WAL mode (bytes 18-19 == 2)."""
    return header[18] == 2 and header[19] == 2


def connect_readonly(path: str | os.PathLike, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """Open ``path`` read-only, creating no file, and check the SDK's schema.

    Raises :class:`~poolscope.errors.DatabaseError` subclasses for a missing
    path, a folder, a file that is not SQLite, a truncated file, or missing
    tables and columns.
    """
    path = Path(path)
    header = check_file(path)
    uri = path.resolve().as_uri()
    wal_live = Path(str(path) + "-wal").exists()
    if is_wal(header) and not wal_live:
        uri += "?immutable=1"
    else:
        uri += "?mode=ro"
    with sqlite_errors(path):
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    check_schema(conn, path)
    return conn


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`SchemaError` unless ``agent_pool_records`` has the SDK's columns."""
    with sqlite_errors(path):
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({RECORDS_TABLE})")]
    if not columns:
        raise SchemaError(
            f"has no {RECORDS_TABLE} table: not a database written by the SDK's SqliteAgentPoolStore", path=path
        )
    missing = [c for c in RECORD_COLUMNS if c not in columns]
    if missing:
        raise SchemaError(
            f"table {RECORDS_TABLE} lacks column(s) {', '.join(missing)} (has {', '.join(columns)})", path=path
        )


__all__ = ["check_file", "check_schema", "connect_readonly", "is_wal", "translate"]
