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
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def long_ids_database(path: Path, members: int = 300, id_chars: int = 500) -> tuple[str, list[str]]:
    """A pool whose id is 10 KB, with ``members`` members whose run and agent ids
    are ``id_chars`` long (four agents; 500 by default: the SDK reads an id of at
    most 512 bytes); returns (pool id, run ids in joining order).  The pool is
    written under a short id and renamed in the file: the SDK's AgentPoolId
    cannot be that long, a file's pool_id column can."""
    import sqlite3

    import poolscope

    pool_id = "pool." + "p" * 10_000
    runs = [f"run.{i}." + "r" * id_chars for i in range(members)]
    store = poolscope.PoolStore(path)
    try:
        with store.batch():
            store.open_pool("pool.long", {})
            store.record_pool_created("pool.long")
            for i, run in enumerate(runs):
                store.join_member(
                    "pool.long", {"run_id": run, "agent_id": f"agent.{i % 4}." + "a" * id_chars, "topics": []}
                )
    finally:
        store.close()
    conn = sqlite3.connect(path)
    for table in ("agent_pool_records", "agent_pool_event_seq"):
        conn.execute(f"UPDATE {table} SET pool_id = ? WHERE pool_id = 'pool.long'", (pool_id,))
    conn.commit()
    conn.close()
    return pool_id, runs


# ------------------------------------------------------------ the home guard
#: Folders under $HOME that the tools above (and pip --user, Chromium's NSS
#: database, IPython, matplotlib) write to by default: compared file by file.
#: The rest of $HOME is compared at its top level (no entry appears or vanishes,
#: no file there changes); toolchains such as ~/.pyenv are not walked.
HOME_WATCHED = (".cache", ".config", ".local", ".jupyter", ".ipython", ".matplotlib", ".pki", ".poolscope")
#: pip's download cache: `.ci/run` installs with pip before the tests start (the
#: tests never run pip), and a developer's pip may run beside the suite.
HOME_IGNORED = (".cache/pip",)


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


def home_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two :func:`home_listing` results, one line per path."""
    return sorted(
        f"{name}: {'created' if name not in before else 'removed' if name not in after else 'changed'}"
        for name in set(before) | set(after)
        if before.get(name) != after.get(name)
    )


def assert_same_arrays(grown: Any, full: Any) -> None:
    """Every numpy column, the status codes and the ranks of two indexes are equal."""
    import numpy as np

    mine, theirs = grown.arrays(), full.arrays()
    assert sorted(mine) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
    np.testing.assert_array_equal(grown.status_codes(), full.status_codes())
    for namespace in ("members", "messages", "wakes"):
        np.testing.assert_array_equal(grown.rank(namespace), full.rank(namespace), err_msg=namespace)


def size_unless_in_a_worker(path: str, parent_pid: int) -> int:
    """A fleet job that ends any process but ``parent_pid`` at once (a worker that dies), and
    returns the file's size in that process (where the fleet reads when its workers fail)."""
    if os.getpid() != parent_pid:
        os._exit(1)
    return os.path.getsize(path)


def append_copy(conn: sqlite3.Connection, pool_id: str, kind: str = "member_left") -> int:
    """Append to ``pool_id`` a copy of its last ``kind`` record (committed), at
    the seq after its head; return that seq.  What a writer growing the log by
    one small record does, for tests of files that grow under a reader."""
    with conn:
        text = conn.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
            (pool_id, kind),
        ).fetchone()[0]
        seq = conn.execute("SELECT max(seq) FROM agent_pool_records WHERE pool_id = ?", (pool_id,)).fetchone()[0] + 1
        conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (pool_id, seq, kind, text))
    return seq


def add_rows_no_pool_reads(path: Path) -> None:
    """Add to the database at ``path`` two rows that no pool reads: one whose pool_id is a BLOB
    (``pool.blob``'s bytes) and one whose pool_id is TEXT that is not UTF-8 (``pool\\xff``).
    ``Database.pool_ids`` leaves them out; ``check()`` reports each as ``bad_pool_id``, named by
    its pool id."""
    payload = json.dumps(
        {
            "type": "pool_opened",
            "config": {
                "message_policy": {"include_sender_in_pool_broadcast": False},
                "wake_policy": {"envelope_only": True},
            },
        }
    )
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "INSERT INTO agent_pool_records VALUES (X'706f6f6c2e626c6f62', 1, 'pool_opened', ?)", (payload,)
            )
            conn.execute(
                "INSERT INTO agent_pool_records VALUES (CAST(X'706f6f6cff' AS TEXT), 1, 'pool_opened', ?)", (payload,)
            )
    finally:
        conn.close()
