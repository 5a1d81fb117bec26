"""Frames, diff and activity on one big pool (issue 3's targets).

    /work/venv/bin/python bench/bench_frames.py                    # 1M records (bench/out/big.db)
    /work/venv/bin/python bench/bench_frames.py --records 100000   # quick check
    /work/venv/bin/python bench/bench_frames.py --db other.db [--pool ID]

Targets, each measured beside its floor in the same run:

1. ``records_df()`` within 1.5x the floor -- scanning + ``orjson.loads`` of
   every payload (``SELECT payload_json ... ORDER BY seq`` on an ``immutable=1``
   connection):
   (a) cold: ``poolscope.open(path).records_df()`` in a fresh process (the
       pool, not loaded, is decoded straight from the file); reported beside
       it, ``poolscope.open(path).pool(pid).records_df()`` (issue 11: <= 1.5x
       too): ``pool()`` reads nothing, so the frame of a pool not used yet
       is decoded from the file the same way;
   (b) warm: ``records_df()`` on an already loaded pool (first call and repeats);
   and at least 5x faster than the naive approach, ``pandas.read_sql(...)`` +
   ``pandas.json_normalize([orjson.loads(p) for p in df.payload_json])`` (in a
   subprocess, watched: killed above --naive-max-gb of RSS or --naive-timeout
   seconds).  The naive approach is run at the --naive-sizes (default 100k and
   250k; pools made and cached by ``make_pool.py``) and at the full size when
   the largest of those extrapolates (linearly) to within the limits
   (``--naive-full auto|yes|no``); poolscope (cold) and the floor are measured
   at the same sizes, alternating.
2. Peak resident memory of the cold ``records_df()`` process <= 3 GB
   (VmHWM at the end of the child; ``ru_maxrss`` would include the parent's
   peak, which Linux carries over a fork + exec).
3. ``members_df()``, ``messages_df()``, ``wakes_df()``, ``activity()`` and
   ``pool.diff(a, b)`` at random cursor pairs each <= 2 s on a loaded pool: the
   first call (which may build caches) and repeat calls reported separately.
4. A load that takes more than ~1 s shows a ``tqdm.auto`` progress bar by
   default and nothing with ``poolscope.open(path, progress=False)`` (stderr of
   subprocesses).

Every heavy measurement runs in a fresh interpreter (imports before the clock),
wall time (``time.perf_counter``) and CPU time (``time.process_time``) side by
side; ``gc.collect()`` before each measured call.  Prints a markdown report and
writes ``bench/out/frames.md`` (raw numbers in ``bench/out/frames.json``).
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import sys
import time
from pathlib import Path

from harness import (
    Run,
    child_floor,
    child_main,
    connect_ro,
    cpu_seconds,
    ensure_pool,
    fmt_s,
    log,
    median_of,
    mib,
    parser,
    pct,
    run_child,
    runs_table,
    status_kb,
    table,
    timed,
    verdict,
    warm_file,
)

T1_RATIO = 1.5  # records_df vs floor
T1_NAIVE = 5.0  # naive / records_df at least this
T2_RSS_GB = 3.0
T3_SECONDS = 2.0
T4_LOAD_S = 1.0
BAR = re.compile(r"loading [^:]*:\s*\d+%\|")


# --------------------------------------------------------------- children
def child_cold(args) -> dict:
    """``poolscope.open(db).records_df()``: the database's frame, its pool decoded straight from the file."""
    import pandas  # noqa: F401  (imports before the clock: records_df imports pandas/pyarrow lazily)
    import pyarrow  # noqa: F401

    import poolscope
    import poolscope.frames

    progress = None if args.progress == "default" else False
    rss0 = status_kb("VmRSS")
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    db = poolscope.open(args.db, progress=progress)
    t1 = time.perf_counter()
    frame = db.records_df()
    t2 = time.perf_counter()
    cpu = cpu_seconds() - c0  # includes the helper process the scan forks
    return {
        "seconds": t2 - t0,
        "cpu": cpu,
        "rows": len(frame),
        "rss_before_kb": rss0,
        "phases": {"open": t1 - t0, "records_df": t2 - t1},
    }


def child_cold_pool(args) -> dict:
    """``poolscope.open(db).pool(pid).records_df()``: ``pool()`` reads only the head, the frame is decoded from the file."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import poolscope
    import poolscope.frames

    progress = None if args.progress == "default" else False
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    db = poolscope.open(args.db, progress=progress)
    t1 = time.perf_counter()
    pool = db.pool(args.pool)
    t2 = time.perf_counter()
    frame = pool.records_df()
    t3 = time.perf_counter()
    cpu = cpu_seconds() - c0
    return {
        "seconds": t3 - t0,
        "cpu": cpu,
        "rows": len(frame),
        "phases": {"open": t1 - t0, "load": t2 - t1, "records_df": t3 - t2},
    }


def child_load(args) -> dict:
    """Only the load (for the progress-bar check)."""
    import poolscope

    progress = None if args.progress == "default" else False
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    pool = poolscope.open(args.db, progress=progress).pool(args.pool).load()
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": len(pool)}


def child_naive(args) -> dict:
    import orjson
    import pandas as pd

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    conn = connect_ro(args.db)
    df = pd.read_sql(
        "SELECT pool_id, seq, kind, payload_json FROM agent_pool_records WHERE pool_id=? ORDER BY seq",
        conn,
        params=(args.pool,),
    )
    t1 = time.perf_counter()
    flat = pd.json_normalize([orjson.loads(p) for p in df.payload_json])
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    conn.close()
    return {
        "seconds": t2 - t0,
        "cpu": cpu,
        "rows": len(flat),
        "columns": flat.shape[1],
        "phases": {"read_sql": t1 - t0, "loads + json_normalize": t2 - t1},
    }


def child_warm(args) -> dict:
    """One loaded pool: records_df and the other frames, first call and repeats; diff at random pairs."""
    import pandas  # noqa: F401

    import poolscope
    import poolscope.frames

    out: dict = {}
    t0 = time.perf_counter()
    pool = poolscope.open(args.db, progress=False).pool(args.pool).load()
    out["load_s"] = time.perf_counter() - t0
    head = pool.head
    calls = {
        "records_df()": lambda: pool.records_df(),
        "members_df()": lambda: pool.members_df(),
        "messages_df()": lambda: pool.messages_df(),
        "wakes_df()": lambda: pool.wakes_df(),
        "activity()": lambda: pool.activity(),
        "records_df(upto=head/2)": lambda: pool.records_df(upto=head // 2),
        "members_df(upto=head/2)": lambda: pool.members_df(upto=head // 2),
        "messages_df(upto=head/2)": lambda: pool.messages_df(upto=head // 2),
        "wakes_df(upto=head/2)": lambda: pool.wakes_df(upto=head // 2),
    }
    # diff at random pairs: with --diff-only on a fresh pool (its first call pays whatever caches it
    # builds), otherwise after the frames (which built theirs); two passes over the same pairs
    rng = random.Random(args.seed)
    pairs = [(rng.randint(1, head), rng.randint(1, head)) for _ in range(args.pairs)]

    def diff_pass() -> dict:
        times, cpus, sizes = [], [], []
        for a, b in pairs:
            w, c, d = timed(lambda: pool.diff(a, b))
            times.append(w)
            cpus.append(c)
            sizes.append(sum(d.counts().values()))
        return {"times": times, "cpus": cpus, "changes": sizes}

    if args.diff_only:
        passes = [diff_pass(), diff_pass()]
        out["diff"] = {"pairs": pairs, "passes": passes}
        return out
    rows = {}
    for name, fn in calls.items():
        first, first_cpu, value = timed(fn)
        size = len(value)
        del value
        again = []
        for _ in range(args.repeat):
            w, c, value = timed(fn)
            del value
            again.append((w, c))
        rows[name] = {
            "first_s": first,
            "first_cpu": first_cpu,
            "rows": size,
            "repeat_s": statistics.median(w for w, _ in again),
            "repeat_cpu": statistics.median(c for _, c in again),
            "repeat_max_s": max(w for w, _ in again),
        }
        log(f"  {name}: first {fmt_s(first)}, repeat {fmt_s(rows[name]['repeat_s'])} ({size:,} rows)")
    out["calls"] = rows
    passes = [diff_pass(), diff_pass()]
    out["diff"] = {"pairs": pairs, "passes": passes}
    log(
        f"  diff: first {fmt_s(passes[0]['times'][0])}, pass 1 p50 {fmt_s(pct(passes[0]['times'], 50))}, "
        f"pass 2 p50 {fmt_s(pct(passes[1]['times'], 50))} max {fmt_s(max(passes[1]['times']))}"
    )
    return out


CHILDREN = {
    "floor": child_floor,
    "cold": child_cold,
    "cold_pool": child_cold_pool,
    "load": child_load,
    "naive": child_naive,
    "warm": child_warm,
}


def child(kind: str, db: Path, pool: str, *, progress: str = "default", extra=(), **watch) -> dict:
    """One measurement in a fresh interpreter (``harness.run_child``: ``timeout=``, ``max_rss_gb=``)."""
    return run_child(__file__, kind, ["--db", db, "--pool", pool, "--progress", progress, *extra], **watch)


# ------------------------------------------------------------------ parts
def bench_cold(db: Path, pool: str, repeat: int) -> dict:
    runs: dict[str, list[dict]] = {"floor": [], "cold": [], "cold_pool": []}
    for i in range(repeat):
        for kind in ("floor", "cold", "cold_pool"):
            r = child(kind, db, pool)
            runs[kind].append(r)
            log(
                f"  [{i + 1}/{repeat}] {kind:9s} {fmt_s(r['seconds'])} (CPU {fmt_s(r['cpu'])}), "
                f"peak RSS {mib(r['peak_rss_kb'])}"
            )
    return {
        "runs": runs,
        "floor_s": median_of(runs["floor"]),
        "floor_cpu": median_of(runs["floor"], "cpu"),
        "cold_s": median_of(runs["cold"]),
        "cold_cpu": median_of(runs["cold"], "cpu"),
        "cold_pool_s": median_of(runs["cold_pool"]),
        "cold_pool_cpu": median_of(runs["cold_pool"], "cpu"),
        "phases": {p: statistics.median(r["phases"][p] for r in runs["cold"]) for p in runs["cold"][0]["phases"]},
        "pool_phases": {
            p: statistics.median(r["phases"][p] for r in runs["cold_pool"]) for p in runs["cold_pool"][0]["phases"]
        },
        "cold_peak_rss_kb": max(r["peak_rss_kb"] for r in runs["cold"]),
        "cold_pool_peak_rss_kb": max(r["peak_rss_kb"] for r in runs["cold_pool"]),
        "cold_rss_before_kb": statistics.median(r["rss_before_kb"] for r in runs["cold"]),
        "floor_peak_rss_kb": max(r["peak_rss_kb"] for r in runs["floor"]),
        "cold_children_peak_rss_kb": max(r["children_peak_rss_kb"] for r in runs["cold"] + runs["cold_pool"]),
        "bar_shown": [bool(BAR.search(r["stderr"])) for r in runs["cold"]],
    }


def bench_naive(db: Path, pool: str, repeat: int, timeout: float, max_gb: float) -> dict:
    """floor, poolscope cold and naive, alternating, at one size."""
    runs: dict[str, list[dict]] = {"floor": [], "cold": [], "naive": []}
    for i in range(repeat):
        for kind in ("floor", "cold", "naive"):
            r = child(
                kind,
                db,
                pool,
                timeout=timeout if kind == "naive" else None,
                max_rss_gb=max_gb if kind == "naive" else None,
            )
            runs[kind].append(r)
            if "killed" in r:
                log(f"  [{i + 1}/{repeat}] {kind:5s} KILLED: {r['killed']}")
            else:
                log(
                    f"  [{i + 1}/{repeat}] {kind:5s} {fmt_s(r['seconds'])} (CPU {fmt_s(r['cpu'])}), "
                    f"peak RSS {mib(r['peak_rss_kb'])}"
                )
        if any("killed" in r for r in runs["naive"]):
            break
    ok = [r for r in runs["naive"] if "killed" not in r]
    res = {
        "runs": runs,
        "floor_s": median_of(runs["floor"]),
        "cold_s": median_of(runs["cold"]),
        "floor_cpu": median_of(runs["floor"], "cpu"),
        "cold_cpu": median_of(runs["cold"], "cpu"),
        "cold_peak_rss_kb": max(r["peak_rss_kb"] for r in runs["cold"]),
    }
    if ok:
        res.update(
            naive_s=median_of(ok),
            naive_cpu=median_of(ok, "cpu"),
            naive_peak_rss_kb=max(r["peak_rss_kb"] for r in ok),
            naive_columns=ok[0]["columns"],
            naive_phases={p: statistics.median(r["phases"][p] for r in ok) for p in ok[0]["phases"]},
        )
    else:
        res["killed"] = runs["naive"][0]["killed"]
        res["naive_watched_peak_kb"] = runs["naive"][0]["watched_peak_kb"]
    return res


def bench_progress(sizes: dict[int, tuple[Path, str]]) -> list[dict]:
    rows = []
    for n, (db, pool) in sorted(sizes.items()):
        row = {"records": n}
        for mode in ("default", "false"):
            r = child("load", db, pool, progress=mode)
            row[mode] = {
                "seconds": r["seconds"],
                "bar": bool(BAR.search(r["stderr"])),
                "stderr_bytes": len(r["stderr"]),
                "stderr_tail": r["stderr"][-160:],
            }
            log(
                f"  {n:>9,} progress={mode:7s}: load {fmt_s(r['seconds'])}, bar {'yes' if row[mode]['bar'] else 'no'}, "
                f"{len(r['stderr'])} bytes on stderr"
            )
        rows.append(row)
    return rows


# ----------------------------------------------------------------- report
def render(run: Run, res: dict) -> str:
    cold, warm, naive, prog = res["cold"], res["warm"], res["naive"], res["progress"]
    floor = cold["floor_s"]
    L: list[str] = [*run.header(), ""]

    # verdicts
    ratio_cold = cold["cold_s"] / floor
    ratio_cold_cpu = cold["cold_cpu"] / cold["floor_cpu"]
    rd = warm["calls"]["records_df()"]
    ratio_warm_first = rd["first_s"] / floor
    ratio_warm = rd["repeat_s"] / floor
    rss_gb = cold["cold_peak_rss_kb"] / 2**20
    naive_rows = [(k, v) for k, v in sorted(naive.items())]
    naive_ratios = [(k, v["naive_s"] / v["cold_s"]) for k, v in naive_rows if "naive_s" in v]
    t3_rows = [(name, v) for name, v in warm["calls"].items() if not name.startswith("records_df")]
    diff_first = warm["diff"]["passes"][0]["times"] + res["diff_fresh"]["diff"]["passes"][0]["times"]
    diff_rep = warm["diff"]["passes"][1]["times"] + res["diff_fresh"]["diff"]["passes"][1]["times"]
    t3_worst = max([v["first_s"] for _, v in t3_rows] + [v["repeat_max_s"] for _, v in t3_rows] + diff_first + diff_rep)
    slow = [p for p in prog if p["default"]["seconds"] > T4_LOAD_S]
    t4_ok = all(p["default"]["bar"] for p in slow) and not any(
        p["false"]["bar"] or p["false"]["stderr_bytes"] for p in prog
    )

    ratio_pool = cold["cold_pool_s"] / floor
    naive_txt = "; ".join(
        f"{k:,}: naive {fmt_s(naive[k]['naive_s'])} vs poolscope cold {fmt_s(naive[k]['cold_s'])} = **{r:.1f}x**"
        for k, r in naive_ratios
    )
    killed_txt = "; ".join(f"{k:,}: naive killed ({v['killed']})" for k, v in naive_rows if "killed" in v)
    naive_ok = bool(naive_ratios) and all(r >= T1_NAIVE for _, r in naive_ratios)
    worst_name = max(((name, max(v["first_s"], v["repeat_max_s"])) for name, v in t3_rows), key=lambda x: x[1])
    L += ["### Verdicts", ""]
    L += table(
        ["#", "target", "measured", "floor / reference", "verdict"],
        [
            [
                "1a",
                f"cold `open().records_df()` <= {T1_RATIO}x floor",
                f"{fmt_s(cold['cold_s'])} (median of {len(cold['runs']['cold'])}; CPU {fmt_s(cold['cold_cpu'])})",
                f"floor {fmt_s(floor)} (CPU {fmt_s(cold['floor_cpu'])}); ratio **{ratio_cold:.2f}x** wall, "
                f"{ratio_cold_cpu:.2f}x CPU",
                verdict(ratio_cold <= T1_RATIO),
            ],
            [
                "1a'",
                f"cold `open().pool(pid).records_df()` <= {T1_RATIO}x floor (issue 11, item 4)",
                f"{fmt_s(cold['cold_pool_s'])} (`pool()` {fmt_s(cold['pool_phases']['load'])} + frame "
                f"{fmt_s(cold['pool_phases']['records_df'])})",
                f"floor {fmt_s(floor)}; ratio **{ratio_pool:.2f}x** wall",
                verdict(ratio_pool <= T1_RATIO),
            ],
            [
                "1b",
                f"warm `records_df()` <= {T1_RATIO}x floor",
                f"first call {fmt_s(rd['first_s'])}, repeat {fmt_s(rd['repeat_s'])} (CPU {fmt_s(rd['repeat_cpu'])})",
                f"floor {fmt_s(floor)}; ratio **{ratio_warm_first:.2f}x** first, **{ratio_warm:.2f}x** repeat",
                verdict(max(ratio_warm_first, ratio_warm) <= T1_RATIO),
            ],
            [
                "1c",
                f">= {T1_NAIVE:g}x faster than naive `read_sql` + `json_normalize`",
                "; ".join(x for x in (naive_txt, killed_txt) if x),
                "floor at those sizes: " + ", ".join(f"{k:,}: {fmt_s(v['floor_s'])}" for k, v in naive_rows),
                verdict(naive_ok),
            ],
            [
                "2",
                f"peak RSS of cold `records_df()` <= {T2_RSS_GB:g} GB",
                f"{rss_gb:.2f} GiB ({mib(cold['cold_peak_rss_kb'])} max of {len(cold['runs']['cold'])}; "
                f"{mib(cold['cold_rss_before_kb'])} after imports; largest forked helper "
                f"{mib(cold['cold_children_peak_rss_kb'])})",
                f"floor process {mib(cold['floor_peak_rss_kb'])}; payload JSON {res['json_bytes'] / 2**20:,.0f} MiB",
                verdict(rss_gb <= T2_RSS_GB),
            ],
            [
                "3",
                f"members/messages/wakes_df, activity, diff each <= {T3_SECONDS:g} s (loaded pool)",
                f"worst {fmt_s(t3_worst)} (frames: {worst_name[0]} {fmt_s(worst_name[1])}; diff max "
                f"{fmt_s(max(diff_first + diff_rep))})",
                f"floor {fmt_s(floor)} (a replay of the log)",
                verdict(t3_worst <= T3_SECONDS),
            ],
            [
                "4",
                f"load > {T4_LOAD_S:g} s shows a `tqdm.auto` bar; `progress=False` quiet",
                "; ".join(
                    f"{p['records']:,}: load {fmt_s(p['default']['seconds'])}, bar "
                    f"{'yes' if p['default']['bar'] else 'no'} / with progress=False "
                    f"{p['false']['stderr_bytes']} bytes on stderr"
                    for p in prog
                ),
                "the load's progress threshold",
                verdict(t4_ok),
            ],
        ],
    )
    L.append("")

    L += ["### 1. `records_df()` vs the floor", ""]
    L.append(
        "Fresh interpreter per run (pandas, pyarrow and poolscope imported before the clock), floor, cold "
        "and cold via the pool alternating, medians compared. Cold = `poolscope.open(path).records_df()`: the "
        "pool is not loaded, so it is decoded straight from the file into Arrow columns, its second half by a "
        "forked helper. Cold via the pool = `poolscope.open(path).pool(pid).records_df()`: `pool()` reads only the "
        "pool's head (the index is built on first use by a snapshot or another frame), so the frame is decoded "
        "from the file the same way. Default progress "
        "setting (the bar goes to a pipe). CPU includes forked helpers (RUSAGE_CHILDREN); peak RSS is the "
        "process's own VmHWM (a helper's peak is given in the verdict table)."
    )
    L.append("")
    L += runs_table(
        [
            "run",
            "floor",
            "cold `open().records_df()`",
            "cold via `pool()`",
            "CPU floor",
            "CPU cold",
            "CPU via pool",
            "peak RSS floor",
            "peak RSS cold",
            "peak RSS via pool",
        ],
        cold["runs"],
        [
            [
                "**ratio**",
                "",
                f"**{ratio_cold:.2f}x** wall (target <= {T1_RATIO}x)",
                f"{ratio_pool:.2f}x",
                "",
                f"{ratio_cold_cpu:.2f}x CPU",
                "",
                "",
                "",
                "",
            ],
        ],
    )
    L.append("")
    ph, pp = cold["phases"], cold["pool_phases"]
    L.append(
        f"Where the time goes (medians): cold: open {fmt_s(ph['open'])}, `records_df()` {fmt_s(ph['records_df'])}; "
        f"via the pool: open {fmt_s(pp['open'])}, load {fmt_s(pp['load'])} ({pp['load'] / floor:.2f}x the floor), "
        f"`records_df()` {fmt_s(pp['records_df'])} ({pp['records_df'] / floor:.2f}x)."
    )
    L.append("")
    L.append(
        f"Warm (one process; pool loaded in {fmt_s(warm['load_s'])}; the process peaked at "
        f"{mib(warm['peak_rss_kb'])}), first call then median of {res['repeat']} repeats, `gc.collect()` before each:"
    )
    L.append("")
    L += table(
        ["call", "rows", "first", "first CPU", "repeat (median)", "repeat CPU", "repeat max", "repeat / floor"],
        [
            [
                f"`{name}`",
                f"{v['rows']:,}",
                fmt_s(v["first_s"]),
                fmt_s(v["first_cpu"]),
                fmt_s(v["repeat_s"]),
                fmt_s(v["repeat_cpu"]),
                fmt_s(v["repeat_max_s"]),
                f"{v['repeat_s'] / floor:.2f}x",
            ]
            for name, v in warm["calls"].items()
        ],
    )
    L.append("")
    L.append(
        "Naive approach, each in a fresh interpreter, alternating with the floor and poolscope's cold "
        f"`records_df()` on pools of that size (`make_pool.py --records N`), watched: killed above "
        f"{res['naive_max_gb']:g} GiB RSS or after {res['naive_timeout']:.0f} s."
    )
    L.append("")
    rows: list[list] = []
    for k, v in naive_rows:
        if "naive_s" in v:
            p = v["naive_phases"]
            rows.append(
                [
                    f"{k:,}",
                    fmt_s(v["floor_s"]),
                    fmt_s(v["cold_s"]),
                    f"{fmt_s(v['naive_s'])} (CPU {fmt_s(v['naive_cpu'])})",
                    f"**{v['naive_s'] / v['cold_s']:.1f}x**",
                    f"{v['cold_s'] / v['floor_s']:.2f}x",
                    f"{fmt_s(p['read_sql'])} / {fmt_s(p['loads + json_normalize'])}",
                    mib(v["naive_peak_rss_kb"]),
                    mib(v["cold_peak_rss_kb"]),
                    v["naive_columns"],
                ]
            )
        else:
            rows.append(
                [
                    f"{k:,}",
                    fmt_s(v["floor_s"]),
                    fmt_s(v["cold_s"]),
                    f"killed: {v['killed']}",
                    "",
                    f"{v['cold_s'] / v['floor_s']:.2f}x",
                    "",
                    f">= {mib(v['naive_watched_peak_kb'])}",
                    mib(v["cold_peak_rss_kb"]),
                    "",
                ]
            )
    L += table(
        [
            "records",
            "floor",
            "poolscope cold",
            "naive",
            "naive / poolscope",
            "poolscope / floor",
            "naive: read_sql / loads+normalize",
            "peak RSS naive",
            "peak RSS poolscope",
            "naive columns",
        ],
        rows,
    )
    if res.get("naive_note"):
        L += ["", res["naive_note"]]
    L.append("")

    L += ["### 3. Other frames, activity and diff on a loaded pool", ""]
    d = warm["diff"]
    L.append(
        f"`pool.diff(a, b)` at {len(d['pairs'])} random pairs (a, b uniform in 1..head, seed {res['seed']}), two "
        "passes over the same pairs: once in a fresh process right after the load (no frame built before, so "
        "the first call pays any cache it builds), once in the warm process above after all the frames."
    )
    L.append("")
    L += table(
        ["diff", "first call", "p50", "p95", "max", "CPU p50", "changed items p50 / max"],
        [
            [
                f"{where}, {name}",
                fmt_s(p["times"][0]),
                fmt_s(pct(p["times"], 50)),
                fmt_s(pct(p["times"], 95)),
                fmt_s(max(p["times"])),
                fmt_s(pct(p["cpus"], 50)),
                f"{int(pct(p['changes'], 50)):,} / {max(p['changes']):,}",
            ]
            for where, dd in (("fresh pool", res["diff_fresh"]["diff"]), ("after the frames", d))
            for name, p in zip(("pass 1", "pass 2 (repeat)"), dd["passes"])
        ],
    )
    L += ["", "(Frames: see the warm table above.)", ""]

    L += ["### 4. Progress bar", ""]
    L.append(
        "`poolscope.open(path[, progress=False]).pool(pid)` in a fresh interpreter, stderr captured (a pipe, "
        'not a terminal); "bar" = stderr contains a tqdm line `loading <pool>: NN%|`.'
    )
    L.append("")
    L += table(
        [
            "records",
            "load (default)",
            "bar (default)",
            "stderr bytes (default)",
            "load (progress=False)",
            "stderr bytes (progress=False)",
        ],
        [
            [
                f"{p['records']:,}",
                fmt_s(p["default"]["seconds"]),
                "yes" if p["default"]["bar"] else "no",
                f"{p['default']['stderr_bytes']:,}",
                fmt_s(p["false"]["seconds"]),
                f"{p['false']['stderr_bytes']:,}",
            ]
            for p in prog
        ],
    )
    L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "frames", children=CHILDREN)
    p.add_argument("--pairs", type=int, default=12, help="random cursor pairs for diff (>= 10)")
    p.add_argument("--naive-sizes", default="100000,250000", help="pool sizes for the naive approach ('' = none)")
    p.add_argument(
        "--naive-full",
        choices=("auto", "yes", "no"),
        default="auto",
        help="also run the naive approach at the full size (auto: when the largest --naive-sizes run "
        "extrapolates to less than --naive-timeout and --naive-max-gb)",
    )
    p.add_argument("--naive-repeat", type=int, default=2)
    p.add_argument("--naive-timeout", type=float, default=600.0)
    p.add_argument("--naive-max-gb", type=float, default=12.0)
    p.add_argument("--progress-sizes", default="100000,150000,250000", help="extra pool sizes for the progress check")
    p.add_argument("--progress", default="default", choices=("default", "false"), help=argparse.SUPPRESS)
    p.add_argument("--diff-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args, CHILDREN)

    run = Run(args, "pandas", "pyarrow")
    data = run.pool()
    db, pool, count = data.db, data.pool, data.count
    res: dict = {
        "records": count,
        "pool": pool,
        "head": data.head,
        "json_bytes": data.json_bytes,
        "seed": args.seed,
        "repeat": args.repeat,
        "naive_timeout": args.naive_timeout,
        "naive_max_gb": args.naive_max_gb,
    }

    log("target 1a/2: cold records_df vs floor (subprocesses)")
    res["cold"] = bench_cold(db, pool, args.repeat)

    log("target 1b/3: warm records_df, other frames, activity, diff (one subprocess)")
    pairs = ["--pairs", max(10, args.pairs), "--seed", args.seed]
    warm = child("warm", db, pool, progress="false", extra=["--repeat", args.repeat, *pairs])
    sys.stderr.write(warm.pop("stderr"))
    res["warm"] = warm
    log("target 3: diff on a freshly loaded pool (one subprocess, no frame built before)")
    fresh = child("warm", db, pool, progress="false", extra=[*pairs, "--diff-only"])
    fresh.pop("stderr")
    res["diff_fresh"] = fresh
    p = fresh["diff"]["passes"]
    log(
        f"  diff (fresh pool): first {fmt_s(p[0]['times'][0])}, pass 1 p50 {fmt_s(pct(p[0]['times'], 50))} max "
        f"{fmt_s(max(p[0]['times']))}, pass 2 p50 {fmt_s(pct(p[1]['times'], 50))} max {fmt_s(max(p[1]['times']))}"
    )

    log("target 1c: naive read_sql + json_normalize")
    sizes = [int(s) for s in args.naive_sizes.split(",") if s.strip()]
    sizes = [s for s in sizes if s < count]
    res["naive"] = {}
    for size in sizes:
        sdb, spool, scount = ensure_pool(size, seed=args.seed, cap=args.members_cap, quiet=True)
        warm_file(sdb)
        log(f" {scount:,} records")
        res["naive"][scount] = bench_naive(sdb, spool, args.naive_repeat, args.naive_timeout, args.naive_max_gb)
    # at the full size: when asked, or (auto) when the largest size run extrapolates within the limits
    big = max(res["naive"]) if res["naive"] else None
    v = res["naive"].get(big, {})
    run_full = args.naive_full == "yes" or not sizes
    if args.naive_full == "auto" and "naive_s" in v:
        scale = count / big
        est_s, est_gb = v["naive_s"] * scale, v["naive_peak_rss_kb"] * scale / 2**20
        run_full = est_s < args.naive_timeout and est_gb < args.naive_max_gb
        res["naive_note"] = (
            f"At {count:,} records, linear extrapolation from {big:,} gives ~{est_s:,.0f} s and ~{est_gb:,.1f} GiB peak "
            f"RSS for the naive approach (limits: {args.naive_timeout:.0f} s, {args.naive_max_gb:g} GiB), so it was "
            + ("run there too (one run, watched)." if run_full else "not run there (`--naive-full yes` forces it).")
        )
    elif args.naive_full == "no" and sizes:
        res["naive_note"] = f"Not run at {count:,} records (`--naive-full no`)."
    if run_full:
        log(f" {count:,} records (full)")
        res["naive"][count] = bench_naive(db, pool, 1, args.naive_timeout, args.naive_max_gb)

    log("target 4: progress bar")
    prog_sizes = {count: (db, pool)}
    for s in (int(x) for x in args.progress_sizes.split(",") if x.strip()):
        if s < count:
            sdb, spool, scount = ensure_pool(s, seed=args.seed, cap=args.members_cap, quiet=True)
            prog_sizes[scount] = (sdb, spool)
    res["progress"] = bench_progress(prog_sizes)

    run.finish()
    report = render(run, res)
    for v in [res["cold"], *res["naive"].values()]:
        for runs in v["runs"].values():
            for r in runs:
                r.pop("stderr", None)
    run.write(report, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
