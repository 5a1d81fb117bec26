"""Fixtures only (shared helpers live in helpers.py): the SDK histories, generated databases, copies of the sample."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import ARTIFACTS, ORACLES, SAMPLE_DB, history_id, tree_state

import poolscope

#: What the index cache reads from the environment (the session's folder is set in the root conftest).
_CACHE_ENV = ("POOLSCOPE_CACHE_DIR", "POOLSCOPE_CACHE_SIZE", "POOLSCOPE_CACHE_MIN_RECORDS", "XDG_CACHE_HOME", "HOME")
os.environ.pop("POOLSCOPE_CACHE_SIZE", None)
# the tests' histories are small: every pool is saved in the cache, as a large one would be
# (test_cache checks the default threshold itself)
os.environ["POOLSCOPE_CACHE_MIN_RECORDS"] = "0"


@pytest.fixture(autouse=True)
def _cache_environment() -> Iterator[None]:
    """No test leaves the cache's environment changed for the next (the bench harness's Run sets it)."""
    saved = {name: os.environ.get(name) for name in _CACHE_ENV}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_report_header(config):
    return f"oracle histories: {[str(p) for p in ORACLES] or 'none found'}"


@pytest.fixture(params=ORACLES, ids=history_id)
def oracle(request) -> Path:
    """One SDK history folder (the tests run once per history found)."""
    return request.param


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    """A generated 3-pool database (about 400 records a pool), made once."""
    from poolscope.generate import generate

    path = tmp_path_factory.mktemp("gen") / "small.db"
    generate(path, pools=3, records=400, seed=11)
    return path


@pytest.fixture
def open_db() -> Iterator[Callable[..., poolscope.Database]]:
    """``poolscope.open`` for one test: every database opened with it is closed afterwards."""
    opened: list[poolscope.Database] = []

    def open_(path, **kwargs) -> poolscope.Database:
        db = poolscope.open(path, **kwargs)
        opened.append(db)
        return db

    yield open_
    for db in reversed(opened):
        db.close()


@pytest.fixture
def sample_db() -> Iterator[poolscope.Database]:
    """``sample_data/demo.db``, opened read-only for one test and closed afterwards."""
    with poolscope.open(SAMPLE_DB) as db:
        yield db


@pytest.fixture
def sample_copy(tmp_path) -> Path:
    """A private copy of sample_data/demo.db."""
    target = tmp_path / "demo.db"
    shutil.copy(SAMPLE_DB, target)
    return target


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session", autouse=True)
def sample_data_is_never_touched():
    """Whole-session guard: nothing may write to sample_data/ (no -wal/-shm, same bytes)."""
    folder = SAMPLE_DB.parent
    before = tree_state(folder)
    yield
    after = tree_state(folder)
    assert sorted(after) == sorted(before), (
        f"files appeared or vanished in {folder}: {sorted(set(after) ^ set(before))}"
    )
    assert after == before, f"bytes changed in {folder}"
