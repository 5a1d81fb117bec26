"""Session set-up for everything pytest collects (``tests/`` and the doctests of ``poolscope/``).

Nothing the suite runs may write outside the project and its temporary
folders.  Jupyter, IPython, matplotlib, Chromium and poolscope's own cache
write under ``$HOME`` by default, so for the whole session (and every process
it starts: kernels, Voilà, Chromium, CLI subprocesses) their folders point at
one temporary folder, and a session guard fails the run if anything in the
user's home was created or changed.  Kernels are started from ipykernel's
native ``python3`` spec, i.e. this virtualenv's own interpreter; no kernel spec
is installed anywhere.

Doctests run in a temporary working directory that holds ``sample_data`` (a
link to the repository's, which the guard in ``tests/conftest.py`` keeps
byte-for-byte unchanged), so the examples use the same relative paths as a
user at the repository root: ``poolscope.open("sample_data/demo.db")``.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

#: Environment variables that move what the tools would write under $HOME.
ISOLATED = {
    "JUPYTER_CONFIG_DIR": "jupyter/config",
    "JUPYTER_DATA_DIR": "jupyter/data",
    "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
    "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "matplotlib",
    "POOLSCOPE_CACHE_DIR": "poolscope-cache",
    "XDG_CACHE_HOME": "xdg/cache",
    "XDG_CONFIG_HOME": "xdg/config",
    "XDG_DATA_HOME": "xdg/data",
    "XDG_STATE_HOME": "xdg/state",
}

#: Folders under $HOME that the tools above (and pip --user, Chromium's NSS
#: database, IPython, matplotlib) write to by default: compared file by file.
#: The rest of $HOME is compared at its top level (no entry appears or vanishes,
#: no file there changes); toolchains such as ~/.pyenv are not walked.
HOME_WATCHED = (".cache", ".config", ".local", ".jupyter", ".ipython", ".matplotlib", ".pki", ".poolscope")
#: pip's download cache: `.ci/run` installs with pip before the tests start (the
#: tests never run pip), and a developer's pip may run beside the suite.
HOME_IGNORED = (".cache/pip",)

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="poolscope-test-env-"))
_SAVED_ENV = {name: os.environ.get(name) for name in ISOLATED}
for _name, _sub in ISOLATED.items():
    (_SESSION_DIR / _sub).mkdir(parents=True, exist_ok=True)
    os.environ[_name] = str(_SESSION_DIR / _sub)


def pytest_unconfigure(config):
    for name, value in _SAVED_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def _entry(path: Path) -> tuple:
    info = path.lstat()
    if stat.S_ISREG(info.st_mode):
        return ("file", info.st_size, info.st_mtime_ns)
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path))
    return ("dir",) if stat.S_ISDIR(info.st_mode) else ("other", stat.S_IFMT(info.st_mode))


def home_listing(home: Path) -> dict[str, tuple]:
    """Type, size and modification time of what the guard watches in ``home``."""
    listing: dict[str, tuple] = {}
    ignored = {home / name for name in HOME_IGNORED}
    for child in home.iterdir():
        entry = _entry(child)
        listing[child.name] = entry[:1] if entry[0] == "dir" else entry
    for name in HOME_WATCHED:
        top = home / name
        if not top.is_dir() or top.is_symlink():
            continue
        for folder, dirs, files in os.walk(top):
            base = Path(folder)
            dirs[:] = [d for d in dirs if base / d not in ignored]
            for child in dirs + files:
                path = base / child
                try:
                    listing[str(path.relative_to(home))] = _entry(path)
                except FileNotFoundError:  # vanished while walking: shows up as a difference
                    pass
    return listing


@pytest.fixture(scope="session", autouse=True)
def home_is_never_touched():
    """Whole-session guard: nothing in the user's home is created, removed or changed."""
    home = Path(os.path.expanduser("~"))
    if not home.is_dir() or home == Path("/"):
        yield
        return
    before = home_listing(home)
    yield
    after = home_listing(home)
    changed = sorted(
        f"{name}: {'created' if name not in before else 'removed' if name not in after else 'changed'}"
        for name in set(before) | set(after)
        if before.get(name) != after.get(name)
    )
    assert not changed, f"the tests wrote to the user's home ({home}): {changed}"


@pytest.fixture(autouse=True)
def _doctest_in_a_scratch_folder(request):
    """Doctests run in a temporary folder that has ``sample_data/``; their figures are closed."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    scratch = request.getfixturevalue("tmp_path")
    (scratch / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    patch = pytest.MonkeyPatch()
    patch.chdir(scratch)
    try:
        yield
    finally:
        patch.undo()
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close("all")
