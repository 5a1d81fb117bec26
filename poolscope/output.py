"""Writing files for people: one set of rules for every writer (``export``, ``report``).

* The target is taken as written, made absolute lexically: ``a/../b/../out``
  is ``out``, and only the folders on that path are created (parents are
  always created, by every command alike).
* A symlink at the target (or at a file written inside an export folder), or
  as the folder the target is written in, is refused: poolscope never writes
  through a link into a file it was not asked to write.  Links further up the
  path are followed as any program follows them (a home folder or a mount
  reached through a link): ``out/link/sub/r.html`` is written under the
  link's target.
* An existing file is not overwritten unless ``force=True`` (``--force``);
  the one exception is a file the same writer made before (``own``: a marker
  its output starts with), so ``poolscope report -o r.html`` can be run again.
  An SQLite database (the one being read, say) and its ``-wal``, ``-shm`` and
  ``-journal`` files are never overwritten, even with ``force``.
* Each file is written to a temporary file beside it and renamed into place,
  so a failure (a full device, no permission) leaves no half-written file,
  and every failure is one :class:`OutputError` naming the path.

Example::

    >>> with writing("out/summary.csv") as tmp:
    ...     db.summary().to_csv(tmp, index=False)
    >>> sorted(p.name for p in Path("out").iterdir())     # renamed into place, no temporary left
    ['summary.csv']
    >>> oct(Path("out/summary.csv").stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # as the umask says
    True
    >>> with writing("out/summary.csv") as tmp:
    ...     pass
    Traceback (most recent call last):
    ...
    poolscope.errors.OutputError: ...
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .arguments import flag_argument
from .errors import OutputError
from .source import SQLITE_MAGIC, read_start


def target(path: str | os.PathLike, *, file: bool = False) -> Path:
    """``path`` made absolute without following links or creating anything
    (``..`` removed lexically, as a shell user reads it).  With ``file``, a
    path ending in a separator (``out/``: a folder, as ``cp`` reads it) is an
    :class:`OutputError`, never a file written under the name without it.

    >>> target("pages/", file=True)
    Traceback (most recent call last):
    ...
    poolscope.errors.OutputError: file pages/: ends with a path separator: it names a folder, and a file is written here
    >>> target("pages/.", file=True)
    Traceback (most recent call last):
    ...
    poolscope.errors.OutputError: file pages/.: ends with '.': it names a folder, and a file is written here
    """
    from .arguments import path_argument

    given = path_argument(path, "the output path")
    if file and isinstance(path, (str, bytes)):
        text = os.fsdecode(path)
        separators = tuple(filter(None, (os.sep, os.altsep)))
        if text.endswith(separators):
            raise OutputError("ends with a path separator: it names a folder, and a file is written here", path=path)
        last = text
        for separator in separators:
            last = last.rsplit(separator, 1)[-1]
        if last in (os.curdir, os.pardir):  # out/page/. and out/.. name folders just as out/page/ does
            raise OutputError(f"ends with {last!r}: it names a folder, and a file is written here", path=path)
    return Path(os.path.abspath(given))


def _fail(error: OSError, path: Path, doing: str) -> OutputError:
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return OutputError(f"cannot {doing} ({reason})", path=path)


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents; an existing non-folder, a
    symlink as ``folder`` itself (links further up are followed: see the
    module's rules), or a name where an SQLite database beside it keeps a
    side file (``pool.db-wal``) is an :class:`OutputError`."""
    if os.path.islink(folder):
        raise OutputError("is a symlink: poolscope does not write through links", path=folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError("exists and is not a folder", path=folder)
    # a folder made where a database keeps its -wal, -shm or -journal would make it unreadable
    # (SQLite cannot open its WAL): the folder and each missing parent it would create
    for made in (folder, *folder.parents):
        if os.path.lexists(made):
            break
        never_a_database(made)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(error, folder, "create the folder") from None


def check_file(path: Path, *, force: bool = False, own: bytes | None = None) -> None:
    """Refuse a symlink at ``path``, a folder, a device, FIFO or socket, an
    SQLite database or its side file (even with ``force``), or another existing
    file unless ``force`` or it starts with ``own``."""
    force = flag_argument(force, "force")
    if os.path.islink(path):
        raise OutputError("is a symlink: poolscope does not write through links", path=path)
    if not os.path.lexists(path):
        never_a_database(path)  # a side file that is not there yet is still the database's
        return
    if path.is_dir():
        raise OutputError("is a folder, not a file", path=path)
    if not path.is_file():  # a device, a FIFO, a socket: never replaced by a page, even with force
        raise OutputError(
            "is not a regular file (a device, a FIFO or a socket): poolscope replaces only files", path=path
        )
    never_a_database(path)
    if force:
        return
    if own is not None and path.is_file():
        try:
            if read_start(path, len(own) + 512).find(own) >= 0:
                return
        except OSError:
            pass
    raise OutputError("exists; pass --force (force=True) to overwrite it", path=path)


def _starts_like_sqlite(path: Path) -> bool:
    try:
        return read_start(path, len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def never_a_database(path: Path) -> None:
    """Refuse, even with ``force``, to replace an SQLite database (such as the
    one being read: ``poolscope report pool.db -o pool.db --force``) or one of
    its side files (``pool.db-wal``) with a page or a table."""
    if path.is_file() and _starts_like_sqlite(path):
        raise OutputError(
            "is an SQLite database: poolscope never replaces one with its output, even with --force", path=path
        )
    for suffix in ("-wal", "-shm", "-journal"):
        if path.name.endswith(suffix):
            database = path.with_name(path.name[: -len(suffix)])
            if database.is_file() and _starts_like_sqlite(database):
                raise OutputError(
                    f"is the {suffix[1:]} file of the SQLite database {database.name!r}: "
                    "poolscope never writes one, even with --force",
                    path=path,
                )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The most bytes of the target's name a temporary file's name repeats: with its dot, the random part and
#: ``.tmp`` it stays within any file system's name limit (255 bytes) whatever the target's length.
TEMPORARY_NAME_BYTES = 200


def _shortened(name: str) -> str:
    """``name`` cut to at most :data:`TEMPORARY_NAME_BYTES` bytes on the file system, at a character's end."""
    while len(os.fsencode(name)) > TEMPORARY_NAME_BYTES:
        name = name[:-1]
    return name


@contextmanager
def writing(path: str | os.PathLike, *, force: bool = False, own: bytes | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it
    replaces ``path`` (see the module's rules), on failure it is removed."""
    out = target(path, file=True)
    make_folder(out.parent)
    check_file(out, force=force, own=own)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{_shortened(out.name)}.", suffix=".tmp", dir=out.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # the mode any other new file gets, not mkstemp's private 0600
        os.close(fd)
    except OSError as error:
        raise _fail(error, out, "write in this folder") from None
    tmp = Path(name)
    try:
        yield tmp
        check_file(out, force=force, own=own)  # nothing put there meanwhile
        os.replace(tmp, out)  # replaces a link itself, never writes through it
    except OSError as error:
        raise _fail(error, out, "write the file") from None
    finally:
        if tmp.exists():
            tmp.unlink()
