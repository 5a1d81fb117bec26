"""Seconds per figure of each ``poolscope.plot`` function on one big pool.

    /work/venv/bin/python bench/bench_plots.py                      # bench/out/big.db (1M records)
    /work/venv/bin/python bench/bench_plots.py /tmp/pool.db --repeat 3 --save /tmp/plots

Loading the pool (the one fold over the log) is timed apart; each figure is
timed from the call to the end of ``savefig`` (PNG, Agg, 100 dpi), i.e. what a
user waits for.  The first draw of a function also builds the frames it needs
(cached index arrays are shared), so the first repeat is reported separately;
CPU seconds are printed too, as wall time on a busy machine says little.
If the database does not exist, a smaller one can be made with
``poolscope.generate.generate(path, pools=1, records=N)``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import poolscope
from poolscope import plot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", nargs="?", default=str(HERE / "out" / "big.db"))
    parser.add_argument("--pool", default=None, help="pool id (default: the first)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--save", default=None, help="folder to save the PNGs in")
    args = parser.parse_args()

    path = Path(args.db)
    if not path.exists():
        sys.exit(f"{path} does not exist: make it with bench/make_pool.py or poolscope.generate.generate()")
    t = time.perf_counter()
    db = poolscope.open(path, progress=False)
    pool = db.pool(args.pool or db.pool_ids[0])
    load = time.perf_counter() - t
    print(f"{path}: pool {pool.pool_id!r}, {len(pool):,} records, head {pool.head:,}; loaded in {load:.1f} s")
    cursor = pool.head // 2
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)

    def figure(name: str):
        if name == "dashboard":
            return plot.dashboard(pool, cursor=cursor)
        return getattr(plot, name)(pool, cursor=cursor).figure

    pool.index.arrays()  # the index's numpy columns are built once per load, whatever the plot
    print(f"{'figure':<10} {'first (s)':>10} {'best of rest (s)':>17} {'best cpu (s)':>13}")
    for name in ("members", "messages", "wakes", "activity", "dashboard"):
        times, cpu = [], []
        for i in range(max(1, args.repeat)):
            t, c = time.perf_counter(), time.process_time()
            fig = figure(name)
            target = (save / f"{name}.png") if (save and i == 0) else io.BytesIO()
            fig.savefig(target, format="png", dpi=100)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        rest = f"{min(times[1:]):.2f}" if len(times) > 1 else "-"
        print(f"{name:<10} {times[0]:>10.2f} {rest:>17} {min(cpu):>13.2f}")


if __name__ == "__main__":
    main()
