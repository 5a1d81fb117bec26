"""Helpers shared by the tests: paths, where the SDK histories are, readers of their files.

Test modules import these (``from helpers import SAMPLE_DB``); ``conftest.py``
holds fixtures only (importing from a conftest is ambiguous when several
exist, and ruff forbids it here).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SAMPLE_DB = SAMPLE_DIR / "demo.db"
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


def history_id(folder: Path) -> str:
    """A short test id for a history folder."""
    return folder.name if folder.is_relative_to(BUNDLED_HISTORIES) else f"{folder.parent.name}-{folder.name}"


ORACLES = oracle_dirs()


def load_jsonl(path: Path) -> list[dict]:
    """Every JSON line of a file (gzip-compressed when it ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def raw_snapshot_lines(folder: Path) -> Iterator[tuple[str, int, str]]:
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


def long_ids_database(path: Path, members: int = 300, id_chars: int = 4096) -> tuple[str, list[str]]:
    """A pool whose id is 10 KB, with ``members`` members whose run and agent ids
    are ``id_chars`` long (four agents); returns (pool id, run ids in joining order)."""
    import poolscope

    pool_id = "pool." + "p" * 10_000
    runs = [f"run.{i}." + "r" * id_chars for i in range(members)]
    store = poolscope.PoolStore(path)
    try:
        with store.batch():
            store.open_pool(pool_id, {})
            store.record_pool_created(pool_id)
            for i, run in enumerate(runs):
                store.join_member(
                    pool_id, {"run_id": run, "agent_id": f"agent.{i % 4}." + "a" * id_chars, "topics": []}
                )
    finally:
        store.close()
    return pool_id, runs
