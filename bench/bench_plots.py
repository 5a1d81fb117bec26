"""Seconds per figure of each ``poolscope.plot`` function on one big pool.

    /work/venv/bin/python bench/bench_plots.py                      # bench/out/big.db (1M records)
    /work/venv/bin/python bench/bench_plots.py --records 100000     # quick check (pool made and cached)
    /work/venv/bin/python bench/bench_plots.py --db /tmp/pool.db --repeat 3 --save /tmp/plots

Loading the pool (the one fold over the log) is timed apart; each figure is
timed from the call to the end of ``savefig`` (PNG, Agg, 100 dpi), i.e. what a
user waits for.  The first draw of a function also builds the frames it needs
(cached index arrays are shared), so the first repeat is reported separately;
CPU seconds are given too, as wall time on a busy machine says little.  The
database is ``--db`` or the pool ``make_pool.py`` makes for ``--records``.
Prints a table and writes ``bench/out/plots.md`` (``plots.json``).
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from harness import Run, floor_seconds, fmt_s, log, parser, table

FIGURES = ("members", "messages", "wakes", "activity", "dashboard")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "plots")
    p.set_defaults(repeat=2)
    p.add_argument("--save", type=Path, default=None, help="folder to save the PNGs in")
    args = p.parse_args(argv)

    import matplotlib.pyplot as plt

    import poolscope
    from poolscope import plot

    run = Run(args, "matplotlib")
    data = run.pool()
    floor = floor_seconds(data.db, data.pool)  # scan + decode every payload: the machine's pace right now
    t = time.perf_counter()
    db = poolscope.open(data.db, progress=False)
    pool = db.pool(data.pool).load()
    load = time.perf_counter() - t
    log(f"{data.db}: pool {pool.pool_id!r}, {len(pool):,} records, head {pool.head:,}; loaded in {load:.1f} s")
    cursor = pool.head // 2
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)

    def figure(name: str):
        if name == "dashboard":
            return plot.dashboard(pool, cursor=cursor)
        return getattr(plot, name)(pool, cursor=cursor).figure

    pool.index.arrays()  # the index's numpy columns are built once per load, whatever the plot
    rows = {}
    for name in FIGURES:
        times, cpu = [], []
        for i in range(max(1, args.repeat)):
            t, c = time.perf_counter(), time.process_time()
            fig = figure(name)
            target = (args.save / f"{name}.png") if (args.save and i == 0) else io.BytesIO()
            fig.savefig(target, format="png", dpi=100)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            plt.close(fig)  # outside the clock
        rows[name] = {
            "first_s": times[0],
            "rest_best_s": min(times[1:]) if len(times) > 1 else None,
            "cpu_best_s": min(cpu),
        }
        log(f"  {name:<10} first {fmt_s(times[0])}, best of rest {fmt_s(rows[name]['rest_best_s'])}")

    run.finish()
    lines = ["## Plots", "", *run.header(), ""]
    lines.append(
        f"Pool loaded (`poolscope.open(path).pool(pid).load()`) in {fmt_s(load)} ({load / floor:.2f}x the floor: scan + "
        f"orjson-decode every payload, {fmt_s(floor)} in this run); figures at cursor head/2 = {cursor:,}, "
        f"{max(1, args.repeat)} draws each (call to the end of `savefig`, PNG, 100 dpi)."
    )
    lines.append("")
    lines += table(
        ["figure", "first", "best of rest", "best CPU", "best / floor"],
        [
            [
                f"`{name}`",
                fmt_s(v["first_s"]),
                fmt_s(v["rest_best_s"]),
                fmt_s(v["cpu_best_s"]),
                f"{min(x for x in (v['first_s'], v['rest_best_s']) if x is not None) / floor:.2f}x",
            ]
            for name, v in rows.items()
        ],
    )
    run.write("\n".join(lines), {"floor_s": floor, "load_s": load, "cursor": cursor, "figures": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
