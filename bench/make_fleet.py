"""Make (once) and cache the fleets that bench_fleet.py measures.

    .venv/bin/python bench/make_fleet.py [--out /work/bench-out/fleet]

* ``big/host-NN.db``: 40 databases of about 25k records each (2 pools of
  12.5k, members capped at 50, as the other benchmarks use; seed = NN), 1M
  records in all;
* ``small/NNNN/host-NNNNN.db``: 10,000 databases of 10 records each (one pool).
  100 distinct files are generated (seeds 0..99) and copied round-robin into
  the rest: reading 10,000 files costs the same whether or not some bytes
  repeat.

Each set is written into a temporary folder and renamed when complete, with a
``done.json`` beside it, so an interrupted run starts that set again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from poolscope.generate import generate

BIG_DBS = 40
BIG_RECORDS = 25_000
BIG_POOLS = 2
SMALL_DBS = 10_000
SMALL_DISTINCT = 100
SMALL_RECORDS = 10


def make_big(out: Path) -> Path:
    target = out / "big"
    if (target / "done.json").exists():
        return target
    work = out / "big.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.time()
    total = 0
    for i in range(BIG_DBS):
        summary = generate(
            work / f"host-{i:02d}.db",
            pools=BIG_POOLS,
            records=BIG_RECORDS // BIG_POOLS,
            seed=i,
            prefix=f"host{i:02d}",
            members_cap=50,
            progress=False,
        )
        total += summary["records"]
        print(f"big: host-{i:02d}.db {summary['records']} records", flush=True)
    (work / "done.json").write_text(
        json.dumps({"databases": BIG_DBS, "records": total, "seconds": time.time() - started})
    )
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def make_small(out: Path) -> Path:
    target = out / "small"
    if (target / "done.json").exists():
        return target
    work = out / "small.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.time()
    distinct = []
    for i in range(SMALL_DISTINCT):
        path = work / "0000" / f"host-{i:05d}.db"
        path.parent.mkdir(exist_ok=True)
        generate(path, pools=1, records=SMALL_RECORDS, seed=i, prefix="svc", progress=False)
        distinct.append(path)
    for i in range(SMALL_DISTINCT, SMALL_DBS):
        path = work / f"{i // 1000:04d}" / f"host-{i:05d}.db"
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(distinct[i % SMALL_DISTINCT], path)
    (work / "done.json").write_text(json.dumps({"databases": SMALL_DBS, "seconds": time.time() - started}))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    print(f"small: {SMALL_DBS} databases", flush=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/work/bench-out/fleet"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    make_big(args.out)
    make_small(args.out)
    print("done", flush=True)


if __name__ == "__main__":
    main()
