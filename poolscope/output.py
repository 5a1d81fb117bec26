"""Writing files for people: one set of rules for every writer (``export``, ``report``).

* The target is taken as written, made absolute lexically: ``a/../b/../out``
  is ``out``, and only the folders on that path are created (parents are
  always created, by every command alike).
* A symlink at the target (or at a file written inside an export folder) is
  refused: poolscope never writes through a link into a file it was not
  asked to write.
* An existing file is not overwritten unless ``force=True`` (``--force``);
  the one exception is a file the same writer made before (``own``: a marker
  its output starts with), so ``poolscope report -o r.html`` can be run again.
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

from .errors import OutputError


def target(path: str | os.PathLike) -> Path:
    """``path`` made absolute without following links or creating anything
    (``..`` removed lexically, as a shell user reads it)."""
    return Path(os.path.abspath(os.fspath(path)))


def _fail(error: OSError, path: Path, doing: str) -> OutputError:
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return OutputError(f"cannot {doing} ({reason})", path=path)


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents; an existing non-folder or a
    symlink on the way is an :class:`OutputError`."""
    if os.path.islink(folder):
        raise OutputError("is a symlink: poolscope does not write through links", path=folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError("exists and is not a folder", path=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(error, folder, "create the folder") from None


def check_file(path: Path, *, force: bool = False, own: bytes | None = None) -> None:
    """Refuse a symlink at ``path``, a folder, or an existing file unless
    ``force`` or it starts with ``own``."""
    if os.path.islink(path):
        raise OutputError("is a symlink: poolscope does not write through links", path=path)
    if not os.path.lexists(path):
        return
    if path.is_dir():
        raise OutputError("is a folder, not a file", path=path)
    if force:
        return
    if own is not None and path.is_file():
        try:
            with open(path, "rb") as handle:
                if handle.read(len(own) + 512).find(own) >= 0:
                    return
        except OSError:
            pass
    raise OutputError("exists; pass --force (force=True) to overwrite it", path=path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def writing(path: str | os.PathLike, *, force: bool = False, own: bytes | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it
    replaces ``path`` (see the module's rules), on failure it is removed."""
    out = target(path)
    make_folder(out.parent)
    check_file(out, force=force, own=own)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
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
