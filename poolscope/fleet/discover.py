"""Finding the SDK databases among the sources given to :func:`poolscope.fleet`.

A source is a file, a folder (searched recursively) or a glob pattern
(``**`` allowed).  Every file a folder or a pattern turns up is looked at:
SQLite files holding the SDK's ``agent_pool_records`` table are the fleet's
databases; the others are *skipped*, each with the reason.  A file named
explicitly that cannot be used is an *error* (the caller asked for it).
SQLite's own side files (``-wal``, ``-shm``, ``-journal``) belong to their
database and are not listed.  Each database is taken once, however many
sources name it, and nothing is ever written or created.

Example::

    >>> found = discover(["sample_data/"])
    >>> found.databases, found.skipped
    (['sample_data/demo.db'], [Skipped(source='sample_data/README.md', reason='is not an SQLite database (wrong file header)')])
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..arguments import path_argument
from ..errors import (
    DatabaseAccessError,
    DatabaseError,
    DatabaseNotFoundError,
    InvalidInputError,
    NotADatabaseError,
    PoolscopeError,
    SchemaError,
)
from ..source import DEFAULT_TIMEOUT, connect_readonly, read_start

#: Suffixes of SQLite's side files, which belong to a database beside them.
SIDE_FILES = ("-wal", "-shm", "-journal")
_GLOB_CHARS = frozenset("*?[")


class SourceError(NamedTuple):
    """A database of the fleet that could not be read: its ``source`` and the
    typed ``error`` (a :class:`~poolscope.PoolscopeError`)."""

    source: str
    error: PoolscopeError

    def __str__(self) -> str:
        return f"{self.source}: {type(self.error).__name__}: {self.error.problem}"


class Skipped(NamedTuple):
    """A file found in a searched folder (or by a pattern) that is not an SDK
    database, and why."""

    source: str
    reason: str


@dataclass
class Found:
    databases: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)


def _walk(folder: str, errors: list[SourceError] | None = None) -> list[str]:
    """Every file under ``folder`` (symlinked folders are not followed), sorted;
    a folder on the way that cannot be listed is added to ``errors`` (a
    :class:`~poolscope.DatabaseAccessError`: the databases it may hold are not
    silently left out)."""
    files: list[str] = []

    def unlisted(error: OSError) -> None:
        if errors is not None:
            where = error.filename if isinstance(error.filename, str) else folder
            errors.append(
                SourceError(
                    where,
                    DatabaseAccessError(f"this folder cannot be listed ({error.strerror or error})", path=where),
                )
            )

    for root, dirs, names in os.walk(folder, onerror=unlisted):
        dirs.sort()
        files.extend(os.path.join(root, name) for name in names)
    return sorted(files)


def _is_side_file(path: str) -> bool:
    return path.endswith(SIDE_FILES)


def _check(path: str, timeout: float) -> None:
    """Raise the typed error that makes ``path`` unusable as an SDK database."""
    conn = connect_readonly(path, timeout=timeout)
    conn.close()


def check_one(path: str, timeout: float) -> None:
    """Raise the typed error that makes ``path`` unusable as an SDK database
    (a worker task: see :func:`discover`'s ``check_many``)."""
    _check(path, timeout)


def discover(
    sources: str | os.PathLike | list | tuple,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check_many: Callable[[list[str]], Iterable[tuple[str, bool, Any]]] | None = None,
) -> Found:
    """Sort the files the ``sources`` name into databases, skipped files and errors.

    ``check_many(paths)`` checks many files at once (the fleet's workers), yielding
    ``(path, ok, error)`` in any order; by default they are checked here, one by one."""
    if isinstance(sources, str | os.PathLike | bytes):
        sources = [sources]
    elif not isinstance(sources, list | tuple):
        raise InvalidInputError(
            "sources must be a path, a folder, a glob pattern or a list of them, "
            f"not {type(sources).__name__} {repr(sources)[:60]}"
        )
    for source in sources:
        path_argument(source, "a source")  # a typed error for anything that is not a path
    candidates: list[tuple[str, bool]] = []  # (path, named explicitly)
    seen: set[Any] = set()
    found = Found()

    def add(path: str, named: bool) -> None:
        # one file is one database, whatever names it has (a symlink, ./x and x, a hard link)
        key: Any
        try:
            info = os.stat(path)
            key = (info.st_dev, info.st_ino)
        except (OSError, ValueError):
            try:
                key = os.path.realpath(path)
            except (OSError, ValueError):
                key = path
        if key not in seen:
            seen.add(key)
            candidates.append((path, named))

    for source in sources:
        text = os.fsdecode(os.fspath(source))
        if os.path.isdir(text):
            for path in _walk(text, found.errors):
                if not _is_side_file(path):
                    add(path, False)
        elif os.path.lexists(text) or not (_GLOB_CHARS & set(text)):
            add(text, True)  # a missing file is a DatabaseNotFoundError
        else:
            matches = _glob(text)
            if not matches:
                found.errors.append(SourceError(text, DatabaseNotFoundError("the pattern matches no file", path=text)))
            for match in matches:
                if os.path.isdir(match):
                    for path in _walk(match, found.errors):
                        if not _is_side_file(path):
                            add(path, False)
                elif not _is_side_file(match):
                    add(match, False)

    if check_many is None:
        outcome: dict[str, Any] = {}
        for path, _ in candidates:
            try:
                _check(path, timeout)
                outcome[path] = None
            except DatabaseError as error:
                outcome[path] = error
    else:
        outcome = {path: (None if ok else error) for path, ok, error in check_many([p for p, _ in candidates])}
    for path, named in candidates:
        problem = outcome.get(path)
        if problem is None:
            found.databases.append(path)
        elif isinstance(problem, SchemaError) and not named:
            found.skipped.append(Skipped(path, problem.problem))
        elif isinstance(problem, NotADatabaseError) and not named and _readable_and_not_sqlite(path):
            # a file that is not SQLite at all is skipped; an SQLite file that cannot be read is an error
            found.skipped.append(Skipped(path, problem.problem))
        else:
            found.errors.append(SourceError(path, problem))
    return found


def _glob(pattern: str) -> list[str]:
    """The paths ``pattern`` matches, sorted: ``glob.glob(pattern, recursive=True)``
    except that ``**`` does not descend into symlinked folders (a folder
    source is searched the same way), so a link that points back up the tree
    cannot make the search go round for ever.  Hidden names match only a
    pattern that names them (``.*``), as with ``glob``.

    >>> _glob("sample_data/**/*.db")
    ['sample_data/demo.db']
    """
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return sorted(glob.glob(pattern))
    fixed = 0
    while fixed < len(parts) - 1 and not (_GLOB_CHARS & set(parts[fixed])):
        fixed += 1
    root = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else "")
    rest = "/".join(part for part in parts[fixed:] if part)
    base = Path(root or os.curdir)
    hidden_asked = any(part.startswith(".") for part in parts[fixed:])
    matches = []
    try:
        for match in base.glob(rest):
            relative = match.relative_to(base)
            if not hidden_asked and any(name.startswith(".") for name in relative.parts):
                continue
            if relative.parts:
                matches.append(os.path.join(root, str(relative)) if root else str(relative))
            else:  # the root itself (a trailing ``**`` matches zero folders)
                matches.append(root or os.curdir)
    except (OSError, ValueError):
        return sorted(glob.glob(pattern))  # a pattern pathlib cannot take: glob's own reading
    return sorted(matches)


def _readable_and_not_sqlite(path: str) -> bool:
    """True when the file does not start like an SQLite database, or is no
    regular file (a FIFO, a device); False when it may be a database: it starts
    like one, or it may not be read (permission denied: an error, not skipped)."""
    try:
        return read_start(path, 16) != b"SQLite format 3\x00"
    except PermissionError:
        return False
    except OSError:
        return True
