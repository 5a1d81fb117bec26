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
user at the repository root: ``poolscope.open("sample_data/demo.db")``.  Their
namespace has ``poolscope``, ``db`` (that sample, opened) and ``pool``
(``db.pool("pool.alpha")``), the names the examples use.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import weakref
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # where pytest finds the tests' own modules too

from helpers import home_changes, home_listing  # noqa: E402

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

#: Settings the tests and doctests run with (restored afterwards like the folders above).
SETTINGS = {
    "POOLSCOPE_CACHE_MIN_RECORDS": "0",  # the sample's small pools are cached too (the default is 10,000 records)
}

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="poolscope-test-env-"))
_SAVED_ENV = {name: os.environ.get(name) for name in (*ISOLATED, *SETTINGS)}
os.environ.update(SETTINGS)
for _name, _sub in ISOLATED.items():
    (_SESSION_DIR / _sub).mkdir(parents=True, exist_ok=True)
    os.environ[_name] = str(_SESSION_DIR / _sub)


import poolscope  # noqa: E402  (after the folders above: it imports matplotlib)

#: What a running test has opened (``None`` outside a test's call phase).
_OPENED: list[weakref.ref] | None = None


def _tracked(cls: type) -> None:
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if _OPENED is not None:
            _OPENED.append(weakref.ref(self))

    cls.__init__ = __init__


for _cls in (poolscope.Database, poolscope.PoolStore):
    _tracked(_cls)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Every ``Database`` and ``PoolStore`` a test body opens is closed when it returns.

    Fixtures close what they open themselves (``open_db``, ``sample_db`` in
    tests/conftest.py); this closes what a test body or a doctest left open, so
    no connection outlives its test.
    """
    global _OPENED
    _OPENED = []
    try:
        yield
    finally:
        opened, _OPENED = _OPENED, None
        for ref in reversed(opened):
            if (handle := ref()) is not None:
                handle.close()


def pytest_unconfigure(config):
    for name, value in _SAVED_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def home_is_never_touched():
    """Whole-session guard: nothing in the user's home is created, removed or changed."""
    home = Path(os.path.expanduser("~"))
    if not home.is_dir() or home == Path("/"):
        yield
        return
    before = home_listing(home)
    yield
    changed = home_changes(before, home_listing(home))
    assert not changed, f"the tests wrote to the user's home ({home}): {changed}"


#: Docstring examples that take seconds (the reports' pages, a dashboard, Dask): marked slow, as tests are.
SLOW_DOCTESTS = {
    "poolscope.report",
    "poolscope.report.report",
    "poolscope.report.render",
    "poolscope.plot.dashboard",
    "poolscope.fleet.report",
    "poolscope.fleet.dask",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def _doctest_sample():
    """The sample the docstrings' examples use as ``db`` and ``pool`` (read-only, opened once)."""
    with poolscope.open(ROOT / "sample_data" / "demo.db") as db:
        yield db, db.pool("pool.alpha")


@pytest.fixture(autouse=True)
def _doctest_in_a_scratch_folder(request):
    """Doctests run in a temporary folder that has ``sample_data/``, with ``poolscope``
    imported, ``db`` the sample and ``pool`` its ``pool.alpha``; their figures are closed."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    scratch = request.getfixturevalue("tmp_path")
    (scratch / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    db, pool = request.getfixturevalue("_doctest_sample")
    request.getfixturevalue("doctest_namespace").update(poolscope=poolscope, db=db, pool=pool)
    patch = pytest.MonkeyPatch()
    patch.chdir(scratch)
    try:
        yield
    finally:
        patch.undo()
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close("all")
