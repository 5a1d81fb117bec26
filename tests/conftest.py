"""Shared fixtures: the SDK oracle folders, generated databases, read-only copies."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DB = ROOT / "sample_data" / "demo.db"
ARTIFACTS = ROOT / "tests" / "artifacts"


BUNDLED_HISTORIES = ROOT / "tests" / "sdk_histories"


def oracle_roots() -> list[Path]:
    """Where SDK histories are looked for, in order.

    The copies shipped in ``tests/sdk_histories/`` (so a fresh clone runs every
    test), then ``../shared/oracle`` beside the checkout, then the folders named
    in ``POOLSCOPE_ORACLE`` (``os.pathsep``-separated).
    """
    roots = [BUNDLED_HISTORIES, ROOT.parent / "shared" / "oracle"]
    roots += [Path(p) for p in os.environ.get("POOLSCOPE_ORACLE", "").split(os.pathsep) if p]
    return roots


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("records.jsonl", "pool.db"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def oracle_dirs() -> list[Path]:
    """Every folder holding an SDK history (pool.db + records.jsonl), each history once.

    A folder whose files are byte-identical to one found earlier (the shared
    copy of a bundled history) is the same history and is not run twice.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for root in oracle_roots():
        if not root.is_dir():
            continue
        for folder in sorted({p.parent for p in root.rglob("pool.db") if (p.parent / "records.jsonl").exists()}):
            fingerprint = _fingerprint(folder)
            if fingerprint not in seen:
                seen.add(fingerprint)
                found.append(folder)
    return found


def _history_id(folder: Path) -> str:
    return folder.name if folder.is_relative_to(BUNDLED_HISTORIES) else f"{folder.parent.name}-{folder.name}"


ORACLES = oracle_dirs()


def pytest_report_header(config):
    return f"oracle histories: {[str(p) for p in ORACLES] or 'none found'}"


@pytest.fixture(params=ORACLES, ids=_history_id)
def oracle(request) -> Path:
    """One SDK history folder (the tests run once per history found)."""
    return request.param


def load_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def raw_snapshot_lines(folder: Path):
    """(pool_id, cursor, exact snapshot JSON text) from snapshots.jsonl.gz, bytes untouched."""
    with gzip.open(folder / "snapshots.jsonl.gz", "rb") as handle:
        for line in handle:
            line = line.rstrip(b"\n")
            if not line:
                continue
            head = json.loads(line)
            marker = b',"snapshot":'
            start = line.index(marker) + len(marker)
            yield head["pool_id"], head["cursor"], line[start:-1].decode("utf-8")


def tree_state(folder: Path) -> dict[str, bytes]:
    """Every file's bytes in a folder (to compare before and after)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    """A generated 3-pool database (about 400 records a pool), made once."""
    from poolscope.generate import generate

    path = tmp_path_factory.mktemp("gen") / "small.db"
    generate(path, pools=3, records=400, seed=11)
    return path


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
