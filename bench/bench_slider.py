"""Slider-move latency of the explorer: time from ``explorer.set_cursor(k)``
to every panel updated (snapshot counts and tables, diff from the previous
position, record at the cursor, timeline marker), in-process, at random k.

    /work/venv/bin/python bench/bench_slider.py                     # bench/out/big.db (1M records)
    /work/venv/bin/python bench/bench_slider.py --db other.db --moves 300
    /work/venv/bin/python bench/bench_slider.py --records 200000    # no big.db: generate one in /tmp

Without ``--db`` and with no ``bench/out/big.db`` (made by ``bench/make_pool.py``)
a single-pool database of ``--records`` records is generated in /tmp with
``poolscope.generate.generate`` (cached there between runs).

Reports p50/p95/max of random jumps (k uniform over the log, so the diff
panel spans on average a third of the log) and of one-record steps; also the
time to open the pool and build the explorer.  Prints JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIG = HERE / "out" / "big.db"


def database(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    if BIG.exists():
        return BIG
    path = Path(tempfile.gettempdir()) / f"poolscope-bench-slider-{args.records}.db"
    if not path.exists():
        from poolscope.generate import generate

        print(f"generating {path} ({args.records:,} records) ...", file=sys.stderr)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(partial, pools=1, records=args.records, seed=7)
        partial.rename(path)
    return path


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "max_ms": round(float(arr.max()), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database to explore (default: bench/out/big.db)")
    parser.add_argument("--pool", help="pool id (default: the largest)")
    parser.add_argument("--moves", type=int, default=200, help="random slider moves")
    parser.add_argument("--steps", type=int, default=100, help="one-record steps")
    parser.add_argument("--records", type=int, default=1_000_000, help="records to generate when there is no database")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    import poolscope
    from poolscope.explore import explore

    path = database(args)
    started = time.perf_counter()
    db = poolscope.open(path, progress=False)
    pool_id = args.pool or max(db.pool_ids, key=lambda p: db.pool(p).head)
    loaded = time.perf_counter()
    explorer = explore(db, pool_id)
    built = time.perf_counter()
    pool = explorer.pool
    lo, head = explorer.slider.min, explorer.slider.max

    rng = random.Random(args.seed)
    jumps: list[float] = []
    for _ in range(args.moves):
        k = rng.randint(lo, head)
        while k == explorer.cursor:
            k = rng.randint(lo, head)
        t0 = time.perf_counter()
        explorer.set_cursor(k)
        jumps.append((time.perf_counter() - t0) * 1000)
        assert explorer.shown["cursor"] == k and explorer.diff is not None and explorer.diff.b == k

    steps: list[float] = []
    explorer.set_cursor(max(lo, head // 2))
    for _ in range(args.steps):
        t0 = time.perf_counter()
        explorer.step(1)
        steps.append((time.perf_counter() - t0) * 1000)

    result = {
        "db": str(path),
        "pool": pool_id,
        "records": len(pool.index),
        "load_s": round(loaded - started, 1),
        "explorer_build_s": round(built - loaded, 2),
        "random_move": percentiles(jumps),
        "step": percentiles(steps),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(
            f"{path}: pool {pool_id}, {result['records']:,} records "
            f"(load {result['load_s']} s, explorer built in {result['explorer_build_s']} s)"
        )
        for name in ("random_move", "step"):
            r = result[name]
            print(
                f"  {name:12s} n={r['n']:4d}  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms"
            )
    return result


if __name__ == "__main__":
    main()
