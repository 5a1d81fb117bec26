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
       it, ``poolscope.open(path).pool(pid).records_df()``, where ``pool()``
       builds the pool's index first (the load, core target 2) and the frame
       comes from it;
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
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_pool import DEFAULT_MEMBERS_CAP, DEFAULT_RECORDS, DEFAULT_SEED, OUT, ensure_pool, machine, warm_file

T1_RATIO = 1.5  # records_df vs floor
T1_NAIVE = 5.0  # naive / records_df at least this
T2_RSS_GB = 3.0
T3_SECONDS = 2.0
T4_LOAD_S = 1.0
BAR = re.compile(r"loading [^:]*:\s*\d+%\|")


# ---------------------------------------------------------------- helpers
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    return f"{seconds * 1e3:,.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e3:.2f} ms"


def mib(kb: float) -> str:
    return f"{kb / 1024:,.0f} MiB"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    x = (len(ordered) - 1) * p / 100
    lo = int(x)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (x - lo)


def cpu_with_children() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (a load may fork helpers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def status_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def code_version() -> tuple[str, str]:
    """(git commit of the imported poolscope or its export, hash of its .py files)."""
    import hashlib

    import poolscope

    pkg = Path(poolscope.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(pkg.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(pkg), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(pkg), "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.strip()
        label = f"commit {head}" + (" with uncommitted changes in poolscope/" if dirty else " (clean)")
    except (OSError, subprocess.CalledProcessError):
        label = f"`{pkg}` (not a git checkout)"
    return label, digest.hexdigest()[:12]


def pool_facts(db: Path, pool: str | None) -> tuple[str, int, int, int]:
    conn = sqlite3.connect(db.resolve().as_uri() + "?immutable=1", uri=True)
    try:
        pool = pool or conn.execute("SELECT pool_id FROM agent_pool_records LIMIT 1").fetchone()[0]
        count, head, json_bytes = conn.execute(
            "SELECT count(*), max(seq), sum(length(CAST(payload_json AS BLOB))) FROM agent_pool_records WHERE pool_id=?",
            (pool,),
        ).fetchone()
    finally:
        conn.close()
    return pool, count, head, json_bytes


# --------------------------------------------------------------- children
def child_floor(args) -> dict:
    import orjson

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    conn = sqlite3.connect(Path(args.db).resolve().as_uri() + "?immutable=1", uri=True)
    n = 0
    for (p,) in conn.execute("SELECT payload_json FROM agent_pool_records WHERE pool_id=? ORDER BY seq", (args.pool,)):
        orjson.loads(p)
        n += 1
    out = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": n}
    conn.close()
    return out


def child_cold(args) -> dict:
    """``poolscope.open(db).records_df()``: the database's frame, its pool decoded straight from the file."""
    import pandas  # noqa: F401  (imports before the clock: records_df imports pandas/pyarrow lazily)
    import pyarrow  # noqa: F401

    import poolscope
    import poolscope.frames

    progress = None if args.progress == "default" else False
    rss0 = status_kb("VmRSS")
    gc.collect()
    c0, t0 = cpu_with_children(), time.perf_counter()
    db = poolscope.open(args.db, progress=progress)
    t1 = time.perf_counter()
    frame = db.records_df()
    t2 = time.perf_counter()
    cpu = cpu_with_children() - c0  # includes the helper process the scan forks
    return {
        "seconds": t2 - t0,
        "cpu": cpu,
        "rows": len(frame),
        "rss_before_kb": rss0,
        "phases": {"open": t1 - t0, "records_df": t2 - t1},
    }


def child_cold_pool(args) -> dict:
    """``poolscope.open(db).pool(pid).records_df()``: the pool's index is built first (for snapshots), then the frame."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import poolscope
    import poolscope.frames

    progress = None if args.progress == "default" else False
    gc.collect()
    c0, t0 = cpu_with_children(), time.perf_counter()
    db = poolscope.open(args.db, progress=progress)
    t1 = time.perf_counter()
    pool = db.pool(args.pool)
    t2 = time.perf_counter()
    frame = pool.records_df()
    t3 = time.perf_counter()
    cpu = cpu_with_children() - c0
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
    pool = poolscope.open(args.db, progress=progress).pool(args.pool)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": len(pool)}


def child_naive(args) -> dict:
    import orjson
    import pandas as pd

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    conn = sqlite3.connect(Path(args.db).resolve().as_uri() + "?immutable=1", uri=True)
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


def timed(fn) -> tuple[float, float, object]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


def child_warm(args) -> dict:
    """One loaded pool: records_df and the other frames, first call and repeats; diff at random pairs."""
    import pandas  # noqa: F401

    import poolscope
    import poolscope.frames

    out: dict = {}
    t0 = time.perf_counter()
    pool = poolscope.open(args.db, progress=False).pool(args.pool)
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
        print(
            f"  {name}: first {fmt_s(first)}, repeat {fmt_s(rows[name]['repeat_s'])} ({size:,} rows)",
            file=sys.stderr,
            flush=True,
        )
    out["calls"] = rows
    passes = [diff_pass(), diff_pass()]
    out["diff"] = {"pairs": pairs, "passes": passes}
    print(
        f"  diff: first {fmt_s(passes[0]['times'][0])}, pass 1 p50 {fmt_s(pct(passes[0]['times'], 50))}, "
        f"pass 2 p50 {fmt_s(pct(passes[1]['times'], 50))} max {fmt_s(max(passes[1]['times']))}",
        file=sys.stderr,
        flush=True,
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


def child_main(args) -> int:
    out = CHILDREN[args.child](args)
    # VmHWM, not ru_maxrss: after fork + exec, Linux's ru_maxrss starts from the parent's peak
    out["ru_maxrss_kb"] = maxrss_kb()
    out["maxrss_kb"] = status_kb("VmHWM") or out["ru_maxrss_kb"]
    import resource

    # the largest waited-for child (a helper the load may fork; 0 if none) -- its peak is not in VmHWM
    out["children_maxrss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps(out))
    return 0


def run_child(
    kind: str,
    db: Path,
    pool: str,
    *,
    progress: str = "default",
    extra: list[str] | None = None,
    timeout: float | None = None,
    max_rss_gb: float | None = None,
) -> dict:
    """Run one measurement in a fresh interpreter; kill it above ``max_rss_gb`` of RSS or after ``timeout`` s."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--db",
        str(db),
        "--pool",
        pool,
        "--progress",
        progress,
    ] + (extra or [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: dict = {}
    peak = [0]

    def watch() -> None:
        started = time.monotonic()
        while proc.poll() is None:
            rss = status_kb("VmRSS", proc.pid)
            peak[0] = max(peak[0], rss)
            if max_rss_gb is not None and rss > max_rss_gb * 2**20:
                killed["why"] = f"RSS above {max_rss_gb:g} GiB after {time.monotonic() - started:.0f} s"
                proc.kill()
                return
            if timeout is not None and time.monotonic() - started > timeout:
                killed["why"] = f"still running after {timeout:.0f} s (RSS {rss / 2**20:.1f} GiB)"
                proc.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    watcher.join()
    if killed:
        return {"killed": killed["why"], "stderr": stderr[-2000:], "watched_peak_kb": peak[0]}
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed ({proc.returncode}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["stderr"] = stderr
    result["watched_peak_kb"] = peak[0]
    return result


# ------------------------------------------------------------------ parts
def median_of(runs: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def bench_cold(db: Path, pool: str, repeat: int, log) -> dict:
    runs: dict[str, list[dict]] = {"floor": [], "cold": [], "cold_pool": []}
    for i in range(repeat):
        for kind in ("floor", "cold", "cold_pool"):
            r = run_child(kind, db, pool)
            runs[kind].append(r)
            log(
                f"  [{i + 1}/{repeat}] {kind:9s} {fmt_s(r['seconds'])} (CPU {fmt_s(r['cpu'])}), "
                f"peak RSS {mib(r['maxrss_kb'])}"
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
        "cold_maxrss_kb": max(r["maxrss_kb"] for r in runs["cold"]),
        "cold_pool_maxrss_kb": max(r["maxrss_kb"] for r in runs["cold_pool"]),
        "cold_rss_before_kb": statistics.median(r["rss_before_kb"] for r in runs["cold"]),
        "floor_maxrss_kb": max(r["maxrss_kb"] for r in runs["floor"]),
        "cold_children_maxrss_kb": max(r.get("children_maxrss_kb", 0) for r in runs["cold"] + runs["cold_pool"]),
        "bar_shown": [bool(BAR.search(r["stderr"])) for r in runs["cold"]],
    }


def bench_naive(db: Path, pool: str, repeat: int, timeout: float, max_gb: float, log) -> dict:
    """floor, poolscope cold and naive, alternating, at one size."""
    runs: dict[str, list[dict]] = {"floor": [], "cold": [], "naive": []}
    for i in range(repeat):
        for kind in ("floor", "cold", "naive"):
            r = run_child(
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
                    f"peak RSS {mib(r['maxrss_kb'])}"
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
        "cold_maxrss_kb": max(r["maxrss_kb"] for r in runs["cold"]),
    }
    if ok:
        res.update(
            naive_s=median_of(ok),
            naive_cpu=median_of(ok, "cpu"),
            naive_maxrss_kb=max(r["maxrss_kb"] for r in ok),
            naive_columns=ok[0]["columns"],
            naive_phases={p: statistics.median(r["phases"][p] for r in ok) for p in ok[0]["phases"]},
        )
    else:
        res["killed"] = runs["naive"][0]["killed"]
        res["naive_watched_peak_kb"] = runs["naive"][0]["watched_peak_kb"]
    return res


def bench_progress(sizes: dict[int, tuple[Path, str]], log) -> list[dict]:
    rows = []
    for n, (db, pool) in sorted(sizes.items()):
        row = {"records": n}
        for mode in ("default", "false"):
            r = run_child("load", db, pool, progress=mode)
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
def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def render(info: dict, res: dict) -> str:
    cold, warm, naive, prog = res["cold"], res["warm"], res["naive"], res["progress"]
    n = res["records"]
    floor = cold["floor_s"]
    L: list[str] = []
    L.append(
        f"Run {info['date']} on {info['nproc']} cores ({info['cpu']}, {info['memory']} RAM), Python "
        f"{info['python']}, SQLite {info['sqlite']}, pandas {info['pandas']}, pyarrow {info['pyarrow']}, "
        f"numpy {info['numpy']}, orjson {info['orjson']}; load average {info['load_start']} at the start, "
        f"{info['load_end']} at the end."
    )
    L.append(f"poolscope measured: {info['poolscope']} (source hash {info['source_hash']}).")
    if info.get("warning"):
        L.append(f"**WARNING: {info['warning']}**")
    L.append(
        f"Pool: `{res['pool']}` in `{res['db_name']}`, {n:,} records, {res['json_bytes'] / 1e9:.2f} GB of payload "
        f"JSON. Page cache warm for every run."
    )
    L.append("")

    # verdicts
    ratio_cold = cold["cold_s"] / floor
    ratio_cold_cpu = cold["cold_cpu"] / cold["floor_cpu"]
    rd = warm["calls"]["records_df()"]
    ratio_warm_first = rd["first_s"] / floor
    ratio_warm = rd["repeat_s"] / floor
    rss_gb = cold["cold_maxrss_kb"] / 2**20
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

    L.append("### Verdicts")
    L.append("")
    L.append("| # | target | measured | floor / reference | verdict |")
    L.append("|---|---|---|---|---|")
    L.append(
        f"| 1a | cold `open().records_df()` <= {T1_RATIO}x floor | {fmt_s(cold['cold_s'])} (median of "
        f"{len(cold['runs']['cold'])}; CPU {fmt_s(cold['cold_cpu'])}) | floor {fmt_s(floor)} (CPU "
        f"{fmt_s(cold['floor_cpu'])}); ratio **{ratio_cold:.2f}x** wall, {ratio_cold_cpu:.2f}x CPU | "
        f"{verdict(ratio_cold <= T1_RATIO)} |"
    )
    ratio_pool = cold["cold_pool_s"] / floor
    L.append(
        f"| 1a' | (reported) `open().pool(pid).records_df()`: index built first | {fmt_s(cold['cold_pool_s'])} "
        f"(load {fmt_s(cold['pool_phases']['load'])} + frame {fmt_s(cold['pool_phases']['records_df'])}) | "
        f"ratio {ratio_pool:.2f}x: the load is core target 2, the frame 1b | reported |"
    )
    L.append(
        f"| 1b | warm `records_df()` <= {T1_RATIO}x floor | first call {fmt_s(rd['first_s'])}, repeat "
        f"{fmt_s(rd['repeat_s'])} (CPU {fmt_s(rd['repeat_cpu'])}) | floor {fmt_s(floor)}; ratio "
        f"**{ratio_warm_first:.2f}x** first, **{ratio_warm:.2f}x** repeat | "
        f"{verdict(max(ratio_warm_first, ratio_warm) <= T1_RATIO)} |"
    )
    naive_txt = "; ".join(
        f"{k:,}: naive {fmt_s(naive[k]['naive_s'])} vs poolscope cold {fmt_s(naive[k]['cold_s'])} = **{r:.1f}x**"
        for k, r in naive_ratios
    )
    killed_txt = "; ".join(f"{k:,}: naive killed ({v['killed']})" for k, v in naive_rows if "killed" in v)
    naive_ok = bool(naive_ratios) and all(r >= T1_NAIVE for _, r in naive_ratios)
    L.append(
        f"| 1c | >= {T1_NAIVE:g}x faster than naive `read_sql` + `json_normalize` | "
        f"{'; '.join(x for x in (naive_txt, killed_txt) if x)} | floor at those sizes: "
        + ", ".join(f"{k:,}: {fmt_s(v['floor_s'])}" for k, v in naive_rows)
        + f" | {verdict(naive_ok)} |"
    )
    L.append(
        f"| 2 | peak RSS of cold `records_df()` <= {T2_RSS_GB:g} GB | {rss_gb:.2f} GiB ({mib(cold['cold_maxrss_kb'])}"
        f" max of {len(cold['runs']['cold'])}; {mib(cold['cold_rss_before_kb'])} after imports; largest forked helper "
        f"{mib(cold.get('cold_children_maxrss_kb', 0))}) | floor process "
        f"{mib(cold['floor_maxrss_kb'])}; payload JSON {res['json_bytes'] / 2**20:,.0f} MiB | "
        f"{verdict(rss_gb <= T2_RSS_GB)} |"
    )
    worst_name = max(((name, max(v["first_s"], v["repeat_max_s"])) for name, v in t3_rows), key=lambda x: x[1])
    L.append(
        f"| 3 | members/messages/wakes_df, activity, diff each <= {T3_SECONDS:g} s (loaded pool) | worst "
        f"{fmt_s(t3_worst)} (frames: {worst_name[0]} {fmt_s(worst_name[1])}; diff max {fmt_s(max(diff_first + diff_rep))}) "
        f"| floor {fmt_s(floor)} (a replay of the log) | {verdict(t3_worst <= T3_SECONDS)} |"
    )
    L.append(
        f"| 4 | load > {T4_LOAD_S:g} s shows a `tqdm.auto` bar; `progress=False` quiet | "
        + "; ".join(
            f"{p['records']:,}: load {fmt_s(p['default']['seconds'])}, bar "
            f"{'yes' if p['default']['bar'] else 'no'} / with progress=False "
            f"{p['false']['stderr_bytes']} bytes on stderr"
            for p in prog
        )
        + f" | progress threshold in `poolscope/index.py` | {verdict(t4_ok)} |"
    )
    L.append("")

    L.append("### 1. `records_df()` vs the floor")
    L.append("")
    L.append(
        "Fresh interpreter per run (pandas, pyarrow and poolscope imported before the clock), floor, cold "
        "and cold via the pool alternating, medians compared. Cold = `poolscope.open(path).records_df()`: the "
        "pool is not loaded, so it is decoded straight from the file into Arrow columns, its second half by a "
        "forked helper. Cold via the pool = `poolscope.open(path).pool(pid).records_df()`: `pool()` builds the "
        "index first (what snapshots and the other frames use), then the frame comes from it. Default progress "
        "setting (the bar goes to a pipe). CPU includes forked helpers (RUSAGE_CHILDREN); peak RSS is the "
        "process's own VmHWM (a helper's peak is given in the verdict table)."
    )
    L.append("")
    L.append(
        "| run | floor | cold `open().records_df()` | cold via `pool()` | CPU floor | CPU cold | CPU via pool | "
        "peak RSS floor | peak RSS cold | peak RSS via pool |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for i, (f, c, q) in enumerate(zip(cold["runs"]["floor"], cold["runs"]["cold"], cold["runs"]["cold_pool"]), 1):
        L.append(
            f"| {i} | {fmt_s(f['seconds'])} | {fmt_s(c['seconds'])} | {fmt_s(q['seconds'])} | {fmt_s(f['cpu'])} | "
            f"{fmt_s(c['cpu'])} | {fmt_s(q['cpu'])} | {mib(f['maxrss_kb'])} | {mib(c['maxrss_kb'])} | "
            f"{mib(q['maxrss_kb'])} |"
        )
    L.append(
        f"| **median** | **{fmt_s(floor)}** | **{fmt_s(cold['cold_s'])}** | {fmt_s(cold['cold_pool_s'])} | "
        f"{fmt_s(cold['floor_cpu'])} | {fmt_s(cold['cold_cpu'])} | {fmt_s(cold['cold_pool_cpu'])} | | | |"
    )
    L.append(
        f"| **ratio** | | **{ratio_cold:.2f}x** wall (target <= {T1_RATIO}x) | {ratio_pool:.2f}x | | "
        f"{ratio_cold_cpu:.2f}x CPU | | | | |"
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
        f"{mib(warm['maxrss_kb'])}), first call then median of "
        f"{res['repeat']} repeats, `gc.collect()` before each:"
    )
    L.append("")
    L.append("| call | rows | first | first CPU | repeat (median) | repeat CPU | repeat max | repeat / floor |")
    L.append("|---|---|---|---|---|---|---|---|")
    for name, v in warm["calls"].items():
        L.append(
            f"| `{name}` | {v['rows']:,} | {fmt_s(v['first_s'])} | {fmt_s(v['first_cpu'])} | {fmt_s(v['repeat_s'])} | "
            f"{fmt_s(v['repeat_cpu'])} | {fmt_s(v['repeat_max_s'])} | {v['repeat_s'] / floor:.2f}x |"
        )
    L.append("")
    L.append(
        "Naive approach, each in a fresh interpreter, alternating with the floor and poolscope's cold "
        f"`records_df()` on pools of that size (`make_pool.py --records N`), watched: killed above "
        f"{res['naive_max_gb']:g} GiB RSS or after {res['naive_timeout']:.0f} s."
    )
    L.append("")
    L.append(
        "| records | floor | poolscope cold | naive | naive / poolscope | poolscope / floor | naive: read_sql / loads+normalize | "
        "peak RSS naive | peak RSS poolscope | naive columns |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for k, v in naive_rows:
        if "naive_s" in v:
            p = v["naive_phases"]
            L.append(
                f"| {k:,} | {fmt_s(v['floor_s'])} | {fmt_s(v['cold_s'])} | {fmt_s(v['naive_s'])} (CPU "
                f"{fmt_s(v['naive_cpu'])}) | **{v['naive_s'] / v['cold_s']:.1f}x** | {v['cold_s'] / v['floor_s']:.2f}x | "
                f"{fmt_s(p['read_sql'])} / {fmt_s(p['loads + json_normalize'])} | {mib(v['naive_maxrss_kb'])} | "
                f"{mib(v['cold_maxrss_kb'])} | {v['naive_columns']} |"
            )
        else:
            L.append(
                f"| {k:,} | {fmt_s(v['floor_s'])} | {fmt_s(v['cold_s'])} | killed: {v['killed']} | | "
                f"{v['cold_s'] / v['floor_s']:.2f}x | | >= {mib(v['naive_watched_peak_kb'])} | "
                f"{mib(v['cold_maxrss_kb'])} | |"
            )
    if res.get("naive_note"):
        L.append("")
        L.append(res["naive_note"])
    L.append("")

    L.append("### 3. Other frames, activity and diff on a loaded pool")
    L.append("")
    d = warm["diff"]
    L.append(
        f"`pool.diff(a, b)` at {len(d['pairs'])} random pairs (a, b uniform in 1..head, seed {res['seed']}), two "
        "passes over the same pairs: once in a fresh process right after the load (no frame built before, so "
        "the first call pays any cache it builds), once in the warm process above after all the frames."
    )
    L.append("")
    L.append("| diff | first call | p50 | p95 | max | CPU p50 | changed items p50 / max |")
    L.append("|---|---|---|---|---|---|---|")
    for where, dd in (("fresh pool", res["diff_fresh"]["diff"]), ("after the frames", d)):
        for name, p in zip(("pass 1", "pass 2 (repeat)"), dd["passes"]):
            L.append(
                f"| {where}, {name} | {fmt_s(p['times'][0])} | {fmt_s(pct(p['times'], 50))} | "
                f"{fmt_s(pct(p['times'], 95))} | {fmt_s(max(p['times']))} | {fmt_s(pct(p['cpus'], 50))} | "
                f"{int(pct(p['changes'], 50)):,} / {max(p['changes']):,} |"
            )
    L.append("")
    L.append("(Frames: see the warm table above.)")
    L.append("")

    L.append("### 4. Progress bar")
    L.append("")
    L.append(
        "`poolscope.open(path[, progress=False]).pool(pid)` in a fresh interpreter, stderr captured (a pipe, "
        'not a terminal); "bar" = stderr contains a tqdm line `loading <pool>: NN%|`.'
    )
    L.append("")
    L.append(
        "| records | load (default) | bar (default) | stderr bytes (default) | load (progress=False) | stderr bytes (progress=False) |"
    )
    L.append("|---|---|---|---|---|---|")
    for p in prog:
        L.append(
            f"| {p['records']:,} | {fmt_s(p['default']['seconds'])} | {'yes' if p['default']['bar'] else 'no'} | "
            f"{p['default']['stderr_bytes']:,} | {fmt_s(p['false']['seconds'])} | {p['false']['stderr_bytes']:,} |"
        )
    L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="pool size (default 1,000,000)")
    parser.add_argument("--db", type=Path, default=None, help="database (default: made by make_pool.py)")
    parser.add_argument("--pool", default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--members-cap", type=int, default=DEFAULT_MEMBERS_CAP)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cold measurement and warm repeats")
    parser.add_argument("--pairs", type=int, default=12, help="random cursor pairs for diff (>= 10)")
    parser.add_argument("--naive-sizes", default="100000,250000", help="pool sizes for the naive approach ('' = none)")
    parser.add_argument(
        "--naive-full",
        choices=("auto", "yes", "no"),
        default="auto",
        help="also run the naive approach at the full size (auto: when the largest --naive-sizes run "
        "extrapolates to less than --naive-timeout and --naive-max-gb)",
    )
    parser.add_argument("--naive-repeat", type=int, default=2)
    parser.add_argument("--naive-timeout", type=float, default=600.0)
    parser.add_argument("--naive-max-gb", type=float, default=12.0)
    parser.add_argument(
        "--progress-sizes", default="100000,150000,250000", help="extra pool sizes for the progress check"
    )
    parser.add_argument("--out", type=Path, default=OUT / "frames.md")
    parser.add_argument("--label", default=None, help="what poolscope is measured (default: git commit of the import)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--progress", default="default", choices=("default", "false"), help=argparse.SUPPRESS)
    parser.add_argument("--diff-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    info = machine("pandas", "pyarrow")
    label, src_hash = code_version()
    info["poolscope"] = args.label or label
    info["source_hash"] = src_hash
    info["load_start"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.db is None:
        db, pool, _ = ensure_pool(args.records, seed=args.seed, cap=args.members_cap)
    else:
        db = args.db
        pool = args.pool
    pool, count, head, json_bytes = pool_facts(db, pool)
    log(f"pool {pool} in {db}: {count:,} records, head {head:,}, {json_bytes / 1e9:.2f} GB JSON")
    warm_file(db)
    res: dict = {
        "records": count,
        "pool": pool,
        "db_name": os.path.relpath(db, HERE.parent),
        "head": head,
        "json_bytes": json_bytes,
        "seed": args.seed,
        "repeat": args.repeat,
        "naive_timeout": args.naive_timeout,
        "naive_max_gb": args.naive_max_gb,
    }

    log("target 1a/2: cold records_df vs floor (subprocesses)")
    res["cold"] = bench_cold(db, pool, args.repeat, log)

    log("target 1b/3: warm records_df, other frames, activity, diff (one subprocess)")
    warm = run_child(
        "warm",
        db,
        pool,
        progress="false",
        extra=["--repeat", str(args.repeat), "--pairs", str(max(10, args.pairs)), "--seed", str(args.seed)],
    )
    sys.stderr.write(warm.pop("stderr"))
    res["warm"] = warm
    log("target 3: diff on a freshly loaded pool (one subprocess, no frame built before)")
    fresh = run_child(
        "warm",
        db,
        pool,
        progress="false",
        extra=["--pairs", str(max(10, args.pairs)), "--seed", str(args.seed), "--diff-only"],
    )
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
        res["naive"][scount] = bench_naive(sdb, spool, args.naive_repeat, args.naive_timeout, args.naive_max_gb, log)
    # at the full size: when asked, or (auto) when the largest size run extrapolates within the limits
    big = max(res["naive"]) if res["naive"] else None
    v = res["naive"].get(big, {})
    run_full = args.naive_full == "yes" or not sizes
    if args.naive_full == "auto" and "naive_s" in v:
        scale = count / big
        est_s, est_gb = v["naive_s"] * scale, v["naive_maxrss_kb"] * scale / 2**20
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
        res["naive"][count] = bench_naive(db, pool, 1, args.naive_timeout, args.naive_max_gb, log)

    log("target 4: progress bar")
    prog_sizes = {count: (db, pool)}
    for s in (int(x) for x in args.progress_sizes.split(",") if x.strip()):
        if s < count:
            sdb, spool, scount = ensure_pool(s, seed=args.seed, cap=args.members_cap, quiet=True)
            prog_sizes[scount] = (sdb, spool)
    res["progress"] = bench_progress(prog_sizes, log)

    info["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    info["date"] = info["date"]
    if code_version()[1] != src_hash:
        info["warning"] = "poolscope's source changed during the run: numbers may mix two versions"
        log("WARNING: " + info["warning"])
    report = render(info, res)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    for part in ("cold",):
        for runs in res[part]["runs"].values():
            for r in runs:
                r.pop("stderr", None)
    for v in res["naive"].values():
        for runs in v["runs"].values():
            for r in runs:
                r.pop("stderr", None)
    raw = dict(res)
    raw["machine"] = info
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
