"""Slider-move latency of the explorer: time from ``explorer.set_cursor(k)``
to every panel updated (snapshot counts and tables, diff from the previous
position, record at the cursor, timeline marker), in-process, at random k.

    /work/venv/bin/python bench/bench_slider.py                     # bench/out/big.db (1M records)
    /work/venv/bin/python bench/bench_slider.py --db other.db --moves 300
    /work/venv/bin/python bench/bench_slider.py --records 200000    # a smaller pool (made and cached)

The database is ``--db`` (``--pool``: default its largest pool) or the pool
``make_pool.py`` makes and caches for ``--records``.

Reports p50/p95/max of random jumps (k uniform over the log, so the diff
panel spans on average a third of the log) and of one-record steps; also the
time to open the pool and build the explorer.  Writes ``bench/out/slider.md``
(``slider.json``); prints the result as JSON with ``--json``.
"""

from __future__ import annotations

import json
import random
import time

from harness import Run, connect_ro, floor_seconds, parser, percentiles, table


def latencies(values_ms: list[float]) -> dict[str, float]:
    """n, p50, p95 and max of a sample in milliseconds, rounded to 0.1 ms."""
    stats = percentiles(values_ms)
    return {"n": len(values_ms), **{f"{k}_ms": round(stats[k], 1) for k in ("p50", "p95", "max")}}


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__, "slider")
    p.add_argument("--moves", type=int, default=200, help="random slider moves")
    p.add_argument("--steps", type=int, default=100, help="one-record steps")
    p.add_argument("--moves-seed", type=int, default=1, help="seed of the random moves")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)

    import poolscope
    from poolscope.explore import explore

    if args.db is not None and args.pool is None:  # the largest pool of the file
        conn = connect_ro(args.db)
        try:
            args.pool = conn.execute(
                "SELECT pool_id FROM agent_pool_records GROUP BY pool_id ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()[0]
        finally:
            conn.close()
    run = Run(args, "ipywidgets")
    data = run.pool()
    floor = floor_seconds(data.db, data.pool)  # scan + decode every payload: the machine's pace right now
    started = time.perf_counter()
    db = poolscope.open(data.db, progress=False)
    pool_id = data.pool
    db.pool(pool_id).load()  # the load, timed apart from the widgets
    loaded = time.perf_counter()
    explorer = explore(db, pool_id)
    built = time.perf_counter()
    pool = explorer.pool
    lo, head = explorer.slider.min, explorer.slider.max

    rng = random.Random(args.moves_seed)
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
        "db": str(data.db),
        "pool": pool_id,
        "records": len(pool.index),
        "floor_s": round(floor, 2),
        "load_s": round(loaded - started, 1),
        "explorer_build_s": round(built - loaded, 2),
        "random_move": latencies(jumps),
        "step": latencies(steps),
    }
    run.finish()
    lines = ["## Explorer slider", "", *run.header(), ""]
    lines.append(
        f"Floor (scan + orjson-decode every payload) {result['floor_s']} s in this run; "
        f"`poolscope.open(path).pool(pid).load()` {result['load_s']} s, then `explore(db, pid)` built in "
        f"{result['explorer_build_s']} s. Timed: `explorer.set_cursor(k)` at {args.moves} random k (seed {args.moves_seed}), "
        f"then {args.steps} one-record steps (`explorer.step(1)`) from head/2."
    )
    lines.append("")
    lines += table(
        ["move", "n", "p50", "p95", "max"],
        [
            [name, r["n"], f"{r['p50_ms']} ms", f"{r['p95_ms']} ms", f"{r['max_ms']} ms"]
            for name, r in (("random jump", result["random_move"]), ("one-record step", result["step"]))
        ],
    )
    run.write("\n".join(lines), result, echo=not args.json)
    if args.json:
        print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
