"""Make (or reuse) the benchmark database: ONE pool of N records.

    /work/venv/bin/python bench/make_pool.py                 # bench/out/big.db, 1,000,000 records
    /work/venv/bin/python bench/make_pool.py --records 100000 --out bench/out/pool-100k.db

The pool is written by ``poolscope.generate.generate(path, pools=1, records=N,
seed=...)``, i.e. through ``PoolStore`` in batches.

Membership cap.  The stock generator's membership only grows (about +1.4 net
members per 100 records), and message receipts (``delivered_to``) and wake
filters (``run_ids``) list members, so the average payload grows linearly with
the log: 100k records are already 0.42 GB and 1M records would be ~30 GB of
JSON, not the ~1 GB pool the targets are stated for.  So by default the
generator is run with one change: when the pool has more than ``--members-cap``
members (default 50) the step is a ``leave`` of a random member instead
(departed members still re-join).  Everything else -- record kinds, mix,
statuses, payload shapes, ``PoolStore`` batches -- is ``generate()``'s own.
With cap 50 the average payload is ~1.1 kB, i.e. ~1.1 GB of JSON at 1M.
``--members-cap 0`` runs the stock generator unchanged.

The file is cached: when it already holds exactly one pool with N records
(the generator may overshoot by a record or two) made with the same seed and
cap, nothing is done.  A new file is written next to the target and renamed
into place only when complete, so an interrupted run leaves no half-made cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DEFAULT_RECORDS = 1_000_000
DEFAULT_SEED = 20240601
DEFAULT_MEMBERS_CAP = 50
#: the generator stops at the first step that reaches N; one step writes at most a few records
OVERSHOOT = 8


def default_path(records: int) -> Path:
    if records == DEFAULT_RECORDS:
        return OUT / "big.db"
    return OUT / f"pool-{records}.db"


def pool_counts(path: Path) -> list[tuple[str, int]]:
    """[(pool_id, records)] of a finished database (no live writer: opened
    ``immutable=1``, which creates no ``-wal``/``-shm`` file)."""
    uri = path.resolve().as_uri() + "?immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return conn.execute(
            "SELECT pool_id, count(*) FROM agent_pool_records GROUP BY pool_id ORDER BY pool_id"
        ).fetchall()
    finally:
        conn.close()


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def is_cached(path: Path, records: int, seed: int, cap: int) -> bool:
    if not path.exists() or Path(str(path) + "-wal").exists():
        return False
    try:
        meta = json.loads(meta_path(path).read_text())
    except (OSError, ValueError):
        return False
    if meta.get("seed") != seed or meta.get("members_cap") != cap:
        return False
    try:
        counts = pool_counts(path)
    except sqlite3.Error:
        return False
    return len(counts) == 1 and records <= counts[0][1] <= records + OVERSHOOT


def capped_generator(cap: int):
    """``poolscope.generate.Generator`` whose pool never exceeds ``cap`` members."""
    import poolscope.generate as gen

    class CappedGenerator(gen.Generator):
        def step(self, pool) -> None:
            if len(pool.members) > cap:
                self.leave(pool, self.rng.choice(list(pool.members)))
                return
            super().step(pool)

    return CappedGenerator


def run_generate(path: Path, records: int, seed: int, cap: int, progress: bool) -> dict:
    import poolscope.generate as gen

    if not cap:
        return gen.generate(path, pools=1, records=records, seed=seed, progress=progress)
    stock = gen.Generator
    gen.Generator = capped_generator(cap)  # generate() looks the class up at call time
    try:
        return gen.generate(path, pools=1, records=records, seed=seed, progress=progress)
    finally:
        gen.Generator = stock


def ensure_pool(
    records: int = DEFAULT_RECORDS,
    path: Path | None = None,
    seed: int = DEFAULT_SEED,
    cap: int = DEFAULT_MEMBERS_CAP,
    quiet: bool = False,
) -> tuple[Path, str, int]:
    """Return (path, pool_id, count), generating the file if it is not cached."""
    path = Path(path) if path is not None else default_path(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not is_cached(path, records, seed, cap):
        tmp = path.with_name(path.name + ".partial")
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)
        if not quiet:
            print(f"generating {records:,} records into {path} (seed {seed}) ...", file=sys.stderr)
        t0 = time.perf_counter()
        meta_path(path).unlink(missing_ok=True)
        run_generate(tmp, records, seed, cap, progress=not quiet and records >= 200_000)
        # generate() closes its store: the last connection checkpoints and removes the -wal
        for side in (Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            if side.exists() and side.stat().st_size == 0:
                side.unlink()
        if Path(str(tmp) + "-wal").exists():
            conn = sqlite3.connect(str(tmp))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            Path(str(tmp) + "-wal").unlink(missing_ok=True)
            Path(str(tmp) + "-shm").unlink(missing_ok=True)
        os.replace(tmp, path)
        meta_path(path).write_text(json.dumps({"records": records, "seed": seed, "members_cap": cap}) + "\n")
        if not quiet:
            print(f"generated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    elif not quiet:
        print(f"cached: {path}", file=sys.stderr)
    ((pool_id, count),) = pool_counts(path)
    return path, pool_id, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="records in the pool (default 1,000,000)")
    parser.add_argument("--out", type=Path, default=None, help="database path (default bench/out/big.db for 1M)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--members-cap",
        type=int,
        default=DEFAULT_MEMBERS_CAP,
        help="max members in the pool (default 50; 0 = stock generator, unbounded)",
    )
    args = parser.parse_args(argv)
    path, pool_id, count = ensure_pool(args.records, args.out, args.seed, args.members_cap)
    size = path.stat().st_size
    print(f"{path}: pool {pool_id}, {count:,} records, {size / 1e9:.2f} GB file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
