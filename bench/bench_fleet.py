"""Fleets (issue 12's targets), each measured beside its floor in the same run.

    .venv/bin/python bench/make_fleet.py          # once: the cached fleets (/work/bench-out/fleet)
    .venv/bin/python bench/bench_fleet.py [--fleet /work/bench-out/fleet] [--repeat 3]

The floor is the serial scan + ``orjson.loads`` of every payload of every
database of the fleet (``immutable=1`` connections, one after the other).

1. 40 databases x 25k records (1M records):
   (a) ``poolscope.fleet(paths).records_df()`` <= 1.0x the floor (a fresh
       interpreter per run, worker start-up included; the second call on the
       same fleet, with its workers running, reported beside it);
   (b) ``fleet.to_dask("records").compute()`` on a 2-worker
       ``LocalCluster(processes=True)`` (started before the clock) <= 1.5x;
   (b') reported beside it: ``poolscope.fleet.dask.collect(fleet.to_dask("records"))``,
       the partitions computed as separate results and concatenated in the
       client (no worker holds the whole frame), its time and workers' peak;
   (c) ``fleet.check()`` <= 1.5x;
   (d) peak memory (VmHWM) of every worker <= 1 GB (the fleet's workers and
       the Dask workers; the parent, which holds the 1M-row frame, reported too).
2. 10,000 databases x 10 records: ``poolscope.fleet(folder).pools`` <= 30 s.
3. The Dask scheduler's overhead per partition, for the paper estimate at
   1,000 hosts x 1M records: N partitions that do no work
   (``from_map`` of a function returning a one-row frame) on the same
   2-worker cluster, and the 40-database fleet split into many more
   partitions than needed (``partition_records`` small), per partition.

Runs alternate floor / measurement; medians are reported.  The load average
is printed: the machine is shared, and every ratio here is measured within one
run.  Writes ``bench/out/fleet.md`` and ``bench/out/fleet.json``.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import code_version, connect_ro, fmt_s, loadavg, machine, status_kb, table, warm_file

OUT = HERE / "out"
T_RECORDS, T_DASK, T_CHECK, T_MEMORY_GB, T_SMALL_S = 1.0, 1.5, 1.5, 1.0, 30.0


def floor(paths: list[str]) -> int:
    import orjson

    n = 0
    for path in paths:
        conn = connect_ro(path)
        try:
            for (payload,) in conn.execute("SELECT payload_json FROM agent_pool_records ORDER BY pool_id, seq"):
                orjson.loads(payload)
                n += 1
        finally:
            conn.close()
    return n


def worker_hwm_kb(hosts) -> list[int]:
    executor = hosts._workers._executor
    if executor is None:
        return []
    out = []
    for pid in list(getattr(executor, "_processes", {}) or {}):
        try:
            out.append(status_kb("VmHWM", pid))
        except (OSError, ValueError):
            pass
    return out


def _import_poolscope() -> None:
    """What a partition imports, imported in a Dask worker before the clock starts."""
    import poolscope.fleet.dask
    import poolscope.frames
    import poolscope.load  # noqa: F401


def _hwm() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------------- children
def child(mode: str, fleet_dir: Path, extra: dict) -> dict:
    from harness import import_poolscope

    import poolscope

    if mode != "floor":  # the clock measures the fleet, not imports
        import_poolscope()
        _import_poolscope()

    paths = sorted(glob.glob(str(fleet_dir / "big" / "*.db")))
    gc.collect()
    if mode == "floor":
        t0 = time.perf_counter()
        rows = floor(paths)
        return {"seconds": time.perf_counter() - t0, "rows": rows}
    if mode == "records":
        t0 = time.perf_counter()
        hosts = poolscope.fleet(paths, progress=False)
        frame = hosts.records_df()
        first = time.perf_counter() - t0
        rows = len(frame)
        del frame
        gc.collect()
        t1 = time.perf_counter()
        hosts.records_df()
        second = time.perf_counter() - t1
        out = {"seconds": first, "second": second, "rows": rows, "workers_hwm_kb": worker_hwm_kb(hosts)}
        out["parent_hwm_kb"] = _hwm()
        hosts.close()
        return out
    if mode == "check":
        t0 = time.perf_counter()
        hosts = poolscope.fleet(paths, progress=False)
        anomalies = hosts.check()
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds, "anomalies": len(anomalies), "pools": len(hosts.pools)}
        out["workers_hwm_kb"] = worker_hwm_kb(hosts)
        hosts.close()
        return out
    if mode == "dask":
        import dask.dataframe as dd
        import pandas as pd
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            ) as cluster,
            Client(cluster) as client,
        ):
            from poolscope.fleet.dask import collect

            def fresh_workers() -> None:
                # new worker processes (VmHWM only grows), poolscope imported before the clock
                client.restart()
                client.run(_import_poolscope)
                client.run(gc.collect)

            # collect(): the partitions concatenated here
            fresh_workers()
            t0 = time.perf_counter()
            hosts = poolscope.fleet(paths, progress=False, workers=1)
            frame = collect(hosts.to_dask("records"))
            out = {"collect_seconds": time.perf_counter() - t0, "collect_rows": len(frame)}
            del frame
            out["collect_workers_hwm_kb"] = list(client.run(_hwm).values())
            # compute() as is: the result goes to the client through the scheduler
            fresh_workers()
            t0 = time.perf_counter()
            hosts = poolscope.fleet(paths, progress=False, workers=1)
            lazy = hosts.to_dask("records")
            frame = lazy.compute()
            seconds = time.perf_counter() - t0
            out.update({"seconds": seconds, "rows": len(frame), "partitions": lazy.npartitions})
            del frame
            out["workers_hwm_kb"] = list(client.run(_hwm).values())
            # compute(direct=True) (what Client(..., direct_to_workers=True) does for every compute):
            # the client fetches the result from the worker itself
            fresh_workers()
            t0 = time.perf_counter()
            hosts = poolscope.fleet(paths, progress=False, workers=1)
            frame = hosts.to_dask("records").compute(direct=True)
            out["direct_seconds"] = time.perf_counter() - t0
            out["direct_rows"] = len(frame)
            del frame
            out["direct_workers_hwm_kb"] = list(client.run(_hwm).values())
            # scheduler overhead: partitions that do no work
            n = int(extra.get("empty_partitions", 2000))
            empty = dd.from_map(lambda i: pd.DataFrame({"x": [i]}), list(range(n)), meta=pd.DataFrame({"x": [0]}))
            t1 = time.perf_counter()
            empty.compute()
            out["empty_partitions"] = n
            out["empty_seconds"] = time.perf_counter() - t1
            # the fleet in many small partitions
            small = hosts.to_dask("records", partition_records=int(extra.get("partition_records", 2500)))
            t2 = time.perf_counter()
            rows = len(small.compute())
            out["split_partitions"] = small.npartitions
            out["split_seconds"] = time.perf_counter() - t2
            out["split_rows"] = rows
        return out
    if mode == "small":
        folder = fleet_dir / "small"
        t0 = time.perf_counter()
        hosts = poolscope.fleet(folder, progress=False)
        found = time.perf_counter() - t0
        pools = hosts.pools
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds, "discover_seconds": found, "databases": len(hosts.databases), "pools": len(pools)}
        out["skipped"] = len(hosts.skipped)
        out["errors"] = len(hosts.errors)
        hosts.close()
        return out
    raise SystemExit(f"unknown mode {mode}")


def run_child(mode: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--fleet", str(args.fleet)]
    command += ["--extra", json.dumps({"empty_partitions": args.empty_partitions})]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"child {mode} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = loadavg()
    print(f"  {mode}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fleet", type=Path, default=Path("/work/bench-out/fleet"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--empty-partitions", type=int, default=2000)
    p.add_argument("--child")
    p.add_argument("--extra", default="{}")
    p.add_argument("--out", type=Path, default=OUT / "fleet.md")
    args = p.parse_args(argv)
    # poolscope's index cache is off here and in every child, as in harness.Run: measured loads
    # must not become cache hits on the next round, and nothing goes to ~/.cache
    os.environ.setdefault("POOLSCOPE_CACHE_DIR", str(OUT / "poolscope-cache"))
    os.environ.setdefault("POOLSCOPE_CACHE_SIZE", "0")
    if args.child:
        print(json.dumps(child(args.child, args.fleet, json.loads(args.extra))))
        return 0
    big = sorted(glob.glob(str(args.fleet / "big" / "*.db")))
    if len(big) != 40 or not (args.fleet / "small" / "done.json").exists():
        raise SystemExit("make the fleets first: python bench/make_fleet.py")
    for path in big:
        warm_file(path)
    runs: dict[str, list[dict]] = {k: [] for k in ("floor", "records", "check", "dask")}
    started = loadavg()
    for i in range(args.repeat):
        print(f"round {i + 1}/{args.repeat} (load {loadavg()})", file=sys.stderr, flush=True)
        for mode in ("floor", "records", "floor", "check", "floor", "dask"):
            runs[mode].append(run_child(mode, args))
    small = [run_child("small", args) for _ in range(max(1, args.repeat - 1))]

    def med(mode: str, key: str = "seconds") -> float:
        return statistics.median(r[key] for r in runs[mode])

    fl = med("floor")
    rec, rec2, chk, dsk = med("records"), med("records", "second"), med("check"), med("dask")
    fleet_workers_gb = max(max(r["workers_hwm_kb"] or [0]) for r in runs["records"] + runs["check"]) / 1e6
    dask_workers_gb = max(max(r["workers_hwm_kb"] or [0]) for r in runs["dask"]) / 1e6
    collect_gb = max(max(r["collect_workers_hwm_kb"] or [0]) for r in runs["dask"]) / 1e6
    collected = med("dask", "collect_seconds")
    direct = med("dask", "direct_seconds")
    direct_gb = max(max(r["direct_workers_hwm_kb"] or [0]) for r in runs["dask"]) / 1e6
    parent_gb = max(r["parent_hwm_kb"] for r in runs["records"]) / 1e6
    small_s = statistics.median(r["seconds"] for r in small)
    d0 = runs["dask"][0]
    overhead_ms = 1000 * statistics.median(r["empty_seconds"] / r["empty_partitions"] for r in runs["dask"])
    split_ms = 1000 * statistics.median(r["split_seconds"] / r["split_partitions"] for r in runs["dask"])
    rows = runs["floor"][0]["rows"]

    def ok(good: bool) -> str:
        return "**met**" if good else "**not met**"

    version, dirty = code_version()
    facts = machine("pandas", "pyarrow", "dask", "distributed")
    lines = [
        "## Fleets (bench_fleet.py)",
        "",
        f"Code {version}{dirty}; {facts.get('cpu', '')}, {os.cpu_count()} cores; load average at the start "
        f"{started}, per run in bench/out/fleet.json. Fleet: 40 databases x ~25k records ({rows:,} records, "
        f"2 pools each), and 10,000 databases x 10 records (`bench/make_fleet.py`). "
        f"Medians of {args.repeat} runs, each in a fresh interpreter, alternating with the floor.",
        "",
    ]
    lines += table(
        ["target", "measured", "floor / reference", "ratio", "verdict"],
        [
            [
                f"`fleet(paths).records_df()` <= {T_RECORDS}x",
                f"{fmt_s(rec)} (second call on the same fleet {fmt_s(rec2)})",
                f"serial scan + orjson {fmt_s(fl)}",
                f"{rec / fl:.2f}x ({rec2 / fl:.2f}x)",
                ok(rec / fl <= T_RECORDS),
            ],
            [
                f'`to_dask("records").compute()`, 2-worker LocalCluster <= {T_DASK}x',
                f"{fmt_s(dsk)} ({d0['partitions']} partitions)",
                fmt_s(fl),
                f"{dsk / fl:.2f}x",
                ok(dsk / fl <= T_DASK),
            ],
            [
                '(reported) `to_dask("records").compute(direct=True)`: the client fetches the result from '
                "the worker, not through the scheduler (as `Client(..., direct_to_workers=True)` does)",
                f"{fmt_s(direct)}; Dask workers {direct_gb:.2f} GB",
                fmt_s(fl),
                f"{direct / fl:.2f}x",
                "",
            ],
            [
                '(reported) `collect(to_dask("records"))`: the partitions concatenated in the client',
                f"{fmt_s(collected)}; Dask workers {collect_gb:.2f} GB",
                fmt_s(fl),
                f"{collected / fl:.2f}x",
                "",
            ],
            [f"`fleet.check()` <= {T_CHECK}x", fmt_s(chk), fmt_s(fl), f"{chk / fl:.2f}x", ok(chk / fl <= T_CHECK)],
            [
                f"peak memory per worker <= {T_MEMORY_GB} GB",
                f"fleet workers {fleet_workers_gb:.2f} GB, Dask workers {dask_workers_gb:.2f} GB "
                f"(`compute(direct=True)` {direct_gb:.2f} GB, `collect()` {collect_gb:.2f} GB)",
                f"parent (holds the 1M-row frame) {parent_gb:.2f} GB",
                "",
                ok(max(fleet_workers_gb, dask_workers_gb) <= T_MEMORY_GB),
            ],
            [
                f"10,000 x 10 records: `fleet(folder).pools` <= {T_SMALL_S:.0f} s",
                f"{fmt_s(small_s)} (discovery {fmt_s(statistics.median(r['discover_seconds'] for r in small))})",
                f"{small[0]['databases']:,} databases, {small[0]['pools']:,} pools",
                "",
                ok(small_s <= T_SMALL_S),
            ],
            [
                "Dask scheduler overhead per partition",
                f"{overhead_ms:.2f} ms (a partition that does no work, {args.empty_partitions:,} of them)",
                f"the fleet in {d0['split_partitions']:,} partitions: {split_ms:.1f} ms each",
                "",
                "measured",
            ],
        ],
    )
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    raw = {
        "runs": runs,
        "small": small,
        "floor_s": fl,
        "records_s": rec,
        "check_s": chk,
        "dask_s": dsk,
        "collect_s": collected,
        "direct_s": direct,
    }
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
