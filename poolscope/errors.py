"""Typed errors raised by poolscope.

Every error raised for bad input is a :class:`PoolscopeError`.  Its message names
the file, the pool and the seq concerned (when they are known) and says what is
wrong, so that a damaged database never shows up as a raw ``sqlite3``, ``json``
or ``KeyError`` traceback.

Example::

    >>> import poolscope
    >>> try:
    ...     poolscope.open("missing.db")
    ... except poolscope.PoolscopeError as error:
    ...     print(type(error).__name__)
    DatabaseNotFoundError
"""

from __future__ import annotations

from typing import Any


class PoolscopeError(Exception):
    """Base class of every error poolscope raises for bad input.

    Attributes ``path``, ``pool_id`` and ``seq`` say where the problem is (each
    may be ``None`` when it does not apply); ``code`` says what it is, in one
    word a program can test: each class has its own, and a raise site may give
    a finer one (a damaged record's code is the anomaly code that
    :func:`poolscope.check.check` reports for it, such as ``"bad_json"``).

    >>> CursorError("cursor 9 is outside 0..3").code
    'bad_cursor'
    >>> CorruptRecordError("payload_json is NULL", code="null_payload").code
    'null_payload'
    """

    #: What kind of problem this is (see the class docstring).
    code: str = "error"

    def __init__(
        self,
        problem: str,
        *,
        path: Any = None,
        pool_id: str | None = None,
        seq: int | None = None,
        code: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.pool_id = pool_id
        self.seq = seq
        if code is not None:
            self.code = code
        super().__init__(self._format())

    def __reduce__(self) -> tuple:
        # pickled (to and from worker processes) with where it happened, not only the text
        # (the state restores the rest: a code set where it was raised, suggestions, ...)
        return (_rebuild, (type(self), self.problem, self.path, self.pool_id, self.seq), dict(self.__dict__))

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"file {self.path}")
        if self.pool_id is not None:
            where.append(f"pool {self.pool_id!r}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        return (", ".join(where) + ": " if where else "") + self.problem


def _rebuild(cls: type, problem: str, path: Any, pool_id: str | None, seq: int | None) -> PoolscopeError:
    return cls(problem, path=path, pool_id=pool_id, seq=seq)


class DatabaseError(PoolscopeError):
    """The file cannot be used as a pool database at all."""

    code = "database_error"


class DatabaseNotFoundError(DatabaseError):
    """The path does not exist (poolscope never creates it when reading)."""

    code = "not_found"


class NotADatabaseError(DatabaseError):
    """The path is a folder, an empty file, or not an SQLite database."""

    code = "not_a_database"


class SchemaError(DatabaseError):
    """The SQLite file lacks the SDK's tables or columns."""

    code = "schema"


class DatabaseLockedError(DatabaseError):
    """Another process held a lock for longer than the bounded wait."""

    code = "locked"


class DatabaseChangedError(DatabaseError):
    """The file was replaced or deleted while it was open."""

    code = "changed"


class DatabaseAccessError(DatabaseError):
    """The file cannot be read or written with the access this process has (a
    read-only file or folder, permission denied, a full disk)."""

    code = "access"


class WriteRefusedError(DatabaseError):
    """The file refused a write with a rule of its own that the SDK's schema
    does not have (a CHECK, a UNIQUE index, a trigger that raises, a STRICT
    column): nothing was written."""

    code = "write_refused"


class DatabaseClosedError(DatabaseError):
    """The :class:`~poolscope.history.Database` (or :class:`~poolscope.store.PoolStore`)
    was closed: nothing more is read or written through it (open the file again)."""

    code = "closed"


class QueryTimeoutError(DatabaseError):
    """A statement ran for longer than the ``timeout`` given to
    :func:`poolscope.open` without handing back its next rows (a view over an
    endless query, a file far too large for the machine): it was interrupted."""

    code = "timeout"


class PoolNotFoundError(PoolscopeError, KeyError):
    """The database has no record for that pool id."""

    code = "pool_not_found"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._format()


class RecordError(PoolscopeError):
    """A stored record cannot be understood (bad JSON, wrong shape, unknown kind)."""

    code = "bad_record"


class CorruptRecordError(RecordError):
    """The payload is not valid JSON, not UTF-8 text, or has the wrong shape."""

    code = "bad_shape"


class PayloadTooLargeError(CorruptRecordError):
    """A stored value is larger than the ``max_payload`` limit given to
    :func:`poolscope.open`: it was not read."""

    code = "payload_too_large"


class UnknownRecordKindError(RecordError):
    """The record kind or a status value is not one this SDK version writes."""

    code = "unknown_kind"


class ReplayError(PoolscopeError):
    """The SDK itself would refuse to rebuild a snapshot here."""

    code = "replay"


class PoolNotOpenedError(ReplayError):
    """No ``pool_opened`` record at or before the cursor (the SDK says
    "has not opened this pool")."""

    code = "pool_not_opened"


class ConfigConflictError(ReplayError):
    """A ``pool_opened`` record (or ``open_pool`` call) carries a config that
    differs from the stored one."""

    code = "config_conflict"


class CursorError(PoolscopeError, ValueError):
    """A cursor outside ``0..head``."""

    code = "bad_cursor"


class NotAMemberError(PoolscopeError):
    """``leave_member`` for a run that is not a member of the pool."""

    code = "not_a_member"


class OutputError(PoolscopeError):
    """A file or folder cannot be written where asked (a symlink there, an
    existing file without ``force``, no such device, no space left)."""

    code = "output"


class InvalidInputError(PoolscopeError, ValueError):
    """A value given to poolscope does not have the shape it needs: a record
    value for :class:`poolscope.PoolStore` that the SDK's types cannot carry,
    or an argument of the wrong type or range (a path that is not one, a
    negative timeout)."""

    code = "invalid_input"


class UnknownKeyError(PoolscopeError, KeyError):
    """No record of the pool names this message id, wake condition id, run id
    or idempotency key; ``suggestions`` lists known keys that look like it."""

    code = "unknown_key"

    def __init__(self, problem: str, *, suggestions: list[str] | None = None, **where: Any) -> None:
        self.suggestions = list(suggestions or [])
        super().__init__(problem, **where)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._format()
