"""The index cache (issue 11): reopening a pool from the cache instead of decoding its log.

    /work/venv/bin/python bench/bench_cache.py --db /work/bench-out/big.db   # the 1M-record pool
    /work/venv/bin/python bench/bench_cache.py --records 100000              # quick check

Every measured open runs in a fresh interpreter (imports before the clock), the
floor (scan + ``orjson.loads`` of every payload, :func:`harness.scan_decode`) in
the same rounds, alternating, medians compared:

* **cold** -- ``open(path, cache=False).pool(pid).snapshot(head)``: today's open, no cache;
* **first** -- the same with an empty cache folder: builds the index and saves the
  entry (a forked helper writes it while the open returns; the time until the entry
  is written is reported beside it);
* **second** -- the same again: the entry is mapped instead of the log decoded.
  Target: <= 0.1x the floor;
* **appended** -- another process appended 10k records since the entry was saved:
  the open folds only those.  Target: <= 0.1x floor + 2x the time folding 10k
  records costs (decode + fold of those 10k, measured in the same round);
* **refresh** -- ``pool.refresh()`` of an open pool after 10k records were appended
  (item 3: a refresh costs what was appended);
* **frames** -- ``records_df()``, ``messages_df()`` and ``snapshot(k)`` (sizes and
  members, 50 random k) on a pool opened from the cache and on a freshly folded one.
  Target: as fast;
* the entry's size against the database file (target <= 0.5x) and the peak RSS of
  a cache open against a cold one (target <= 0.5x).

Scratch files (a copy of the database that grows, cache folders) go to
``--scratch`` (default ``bench/out/cache``); the report to ``bench/out/cache.md``.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (
    OUT,
    Run,
    child_floor,
    child_main,
    cpu_seconds,
    fmt_s,
    log,
    mib,
    parser,
    run_child,
    status_kb,
    table,
    verdict,
)

APPENDED = 10_000
SAMPLES = 50


# ------------------------------------------------------------ the children
def _use_cache(args) -> object:
    os.environ["POOLSCOPE_CACHE_SIZE"] = "64GB"  # the harness turns saving off by default
    return False if args.cache_dir == "off" else args.cache_dir


def child_open(args) -> dict:
    """``open(db, cache=...).pool(pid).snapshot(head)`` and the three sizes."""
    import poolscope
    import poolscope.cache

    cache = _use_cache(args)
    out: dict = {"rss_before_kb": status_kb("VmRSS")}
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    db = poolscope.open(args.db, cache=cache, progress=False)
    history = db.pool(args.pool)
    t1 = time.perf_counter()
    snap = history.snapshot()
    out["sizes"] = (len(snap.members), len(snap.messages), len(snap.wakes))
    out["seconds"] = time.perf_counter() - t0
    out["cpu"] = cpu_seconds() - c0
    out["phases"] = {"open + pool": t1 - t0, "snapshot": out["seconds"] - (t1 - t0)}
    out["restored"] = type(history.index.entries).__name__ == "CachedEntries"
    out["tail"] = len(history.index.entries.tail) if out["restored"] else None
    out["miss"] = db.cache.last_miss if db.cache is not None else None
    out["head"] = history.head
    t2 = time.perf_counter()
    poolscope.cache.wait()  # the forked helper writing the entry (first open, or an extended one)
    out["saved_after"] = time.perf_counter() - t0 if time.perf_counter() - t2 > 1e-3 else None
    return out


def child_frames(args) -> dict:
    """records_df(), messages_df() and snapshot(k) at random k on a pool opened from the cache or folded."""
    import poolscope

    cache = _use_cache(args)
    history = poolscope.open(args.db, cache=cache, progress=False).pool(args.pool)
    out: dict = {"restored": type(history.index.entries).__name__ == "CachedEntries"}
    for name in ("records_df", "messages_df"):
        gc.collect()
        t0 = time.perf_counter()
        frame = getattr(history, name)()
        out[name] = time.perf_counter() - t0
        out[f"{name}_rows"] = len(frame)
        del frame
    rng = random.Random(args.seed)
    times = []
    history.snapshot(history.head)
    for k in [rng.randint(1, history.head) for _ in range(SAMPLES)]:
        t0 = time.perf_counter()
        snap = history.snapshot(k)
        _ = (len(snap.members), len(snap.messages), len(snap.wakes), snap.members)
        times.append(time.perf_counter() - t0)
    out["snapshot_p50"] = statistics.median(times)
    out["snapshot_mean"] = statistics.fmean(times)
    return out


def child_refresh(args) -> dict:
    """An open pool (from the cache), 10k records appended by another connection, ``refresh()`` timed."""
    import poolscope

    cache = _use_cache(args)
    history = poolscope.open(args.db, cache=cache, progress=False).pool(args.pool)
    before = history.head
    _append(Path(args.db), Path(args.source), args.pool, before, APPENDED)
    gc.collect()
    t0 = time.perf_counter()
    added = history.refresh()
    out = {"seconds": time.perf_counter() - t0, "added": added, "head_before": before, "head": history.head}
    t0 = time.perf_counter()
    history.snapshot()
    out["snapshot_after"] = time.perf_counter() - t0
    # a refresh with nothing appended: what each poll of follow() and of the explorer's live mode costs
    # (it reads the first and last records loaded again, to notice a log rewritten below its head)
    idle = []
    for _ in range(200):
        t0 = time.perf_counter()
        history.refresh()
        idle.append(time.perf_counter() - t0)
    out["idle_refresh"] = statistics.median(idle)
    return out


def child_fold(args) -> dict:
    """What folding the last 10k records costs: read, decode and fold them into a fresh index."""
    from poolscope.index import PoolIndex
    from poolscope.source import connect_readonly

    conn = connect_readonly(args.source)
    head = conn.execute("SELECT max(seq) FROM agent_pool_records WHERE pool_id = ?", (args.pool,)).fetchone()[0]
    index = PoolIndex(Path(args.source), args.pool)
    gc.collect()
    t0 = time.perf_counter()
    rows = conn.execute(
        "SELECT seq, kind, typeof(payload_json), payload_json FROM agent_pool_records "
        "WHERE pool_id = ? AND seq > ? ORDER BY seq",
        (args.pool, head - APPENDED),
    ).fetchall()
    added = index.append_rows(rows)
    return {"seconds": time.perf_counter() - t0, "added": added}


CHILDREN = {
    "open": child_open,
    "floor": child_floor,
    "frames": child_frames,
    "refresh": child_refresh,
    "fold": child_fold,
}


# ------------------------------------------------------------ scratch files
def _append(db: Path, source: Path, pool: str, after: int, count: int) -> None:
    """Copy the records after ``after`` (``count`` of them) from ``source`` into ``db``: another writer appends."""
    conn = sqlite3.connect(db)
    conn.execute("ATTACH DATABASE ? AS src", (source.resolve().as_uri() + "?immutable=1",))
    with conn:
        conn.execute(
            "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) SELECT pool_id, seq, kind, "
            "payload_json FROM src.agent_pool_records WHERE pool_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (pool, after, count),
        )
    conn.execute("DETACH DATABASE src")
    conn.close()


def _truncate(db: Path, pool: str, upto: int) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool, upto))
    conn.close()


def _entry_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    global APPENDED
    p = parser(__doc__, "cache", children=CHILDREN)
    p.add_argument("--cache-dir", default="off", help=__import__("argparse").SUPPRESS)
    p.add_argument("--source", default=None, help=__import__("argparse").SUPPRESS)
    p.add_argument("--appended", type=int, default=APPENDED, help="records another process appends (default 10k)")
    p.add_argument("--scratch", type=Path, default=OUT / "cache", help="scratch folder (default bench/out/cache)")
    args = p.parse_args(argv)
    APPENDED = args.appended
    if args.child:
        return child_main(args, CHILDREN)
    run = Run(args, "pyarrow")
    data = run.pool()
    db, pool = Path(data.db), data.pool
    scratch = args.scratch
    scratch.mkdir(parents=True, exist_ok=True)
    grow = scratch / "grow.db"
    log(f"copying {db} to {grow} (the database another process appends to)")
    shutil.copyfile(db, grow)
    _truncate(grow, pool, data.head - APPENDED)
    first_dir, grow_dir, saved_grow = scratch / "first", scratch / "grow-cache", scratch / "grow-cache-saved"

    def child(kind: str, target: Path, cache: Path | str, **extra) -> dict:
        options = ["--db", target, "--pool", pool, "--cache-dir", cache, "--seed", args.seed, "--appended", APPENDED]
        for key, value in extra.items():
            options += [f"--{key}", value]
        result = run_child(__file__, kind, options)
        result.pop("stderr", None)
        return result

    # the entry for the database minus its last 10k records, saved once and copied back before each round
    shutil.rmtree(grow_dir, ignore_errors=True)
    log("saving the entry of the database without its last 10k records")
    base = child("open", grow, grow_dir)
    shutil.rmtree(saved_grow, ignore_errors=True)
    shutil.copytree(grow_dir, saved_grow)

    rounds: dict[str, list[dict]] = {k: [] for k in ("floor", "cold", "first", "second", "appended", "fold")}
    for i in range(args.repeat):
        rounds["floor"].append(child("floor", db, "off"))
        rounds["cold"].append(child("open", db, "off"))
        shutil.rmtree(first_dir, ignore_errors=True)
        rounds["first"].append(child("open", db, first_dir))
        rounds["second"].append(child("open", db, first_dir))
        # another process appends 10k records to the copy whose entry covers all but those
        _truncate(grow, pool, data.head - APPENDED)
        shutil.rmtree(grow_dir, ignore_errors=True)
        shutil.copytree(saved_grow, grow_dir)
        _append(grow, db, pool, data.head - APPENDED, APPENDED)
        rounds["appended"].append(child("open", grow, grow_dir))
        rounds["fold"].append(child("fold", db, "off", source=db))
        r = {k: v[-1] for k, v in rounds.items()}
        log(
            f"  [{i + 1}/{args.repeat}] floor {fmt_s(r['floor']['seconds'])}  cold {fmt_s(r['cold']['seconds'])}  "
            f"first {fmt_s(r['first']['seconds'])} (saved after {fmt_s(r['first']['saved_after'])})  "
            f"second {fmt_s(r['second']['seconds'])} (restored {r['second']['restored']})  "
            f"appended {fmt_s(r['appended']['seconds'])} (tail {r['appended']['tail']}, miss {r['appended']['miss']})  "
            f"fold 10k {fmt_s(r['fold']['seconds'])}"
        )
    entry_bytes = _entry_bytes(first_dir)
    log("frames and snapshots: from the cache and freshly folded")
    frames = {"cache": [], "fresh": []}
    for _ in range(max(1, args.repeat - 1)):
        frames["cache"].append(child("frames", db, first_dir))
        frames["fresh"].append(child("frames", db, "off"))
    log("refresh after 10k appended records")
    refresh = []
    for _ in range(args.repeat):
        _truncate(grow, pool, data.head - APPENDED)
        shutil.rmtree(grow_dir, ignore_errors=True)
        shutil.copytree(saved_grow, grow_dir)
        refresh.append(child("refresh", grow, grow_dir, source=db))

    med = {k: statistics.median(r["seconds"] for r in v) for k, v in rounds.items()}
    floor = med["floor"]
    peak = {k: statistics.median(r["peak_rss_kb"] for r in rounds[k]) for k in ("cold", "first", "second", "appended")}
    saved_after = statistics.median(r["saved_after"] or r["seconds"] for r in rounds["first"])
    fr = {
        side: {
            key: statistics.median(r[key] for r in frames[side])
            for key in ("records_df", "messages_df", "snapshot_p50", "snapshot_mean")
        }
        for side in frames
    }
    refresh_s = statistics.median(r["seconds"] for r in refresh)
    targets = {
        "second": med["second"] <= 0.1 * floor,
        "appended": med["appended"] <= 0.1 * floor + 2 * med["fold"],
        "first": med["first"] - med["cold"] <= 0.1 * floor and med["first"] <= 1.5 * floor,
        "frames": all(fr["cache"][k] <= 1.1 * fr["fresh"][k] for k in ("records_df", "messages_df", "snapshot_p50")),
        "size": entry_bytes <= 0.5 * data.file_bytes,
        "memory": peak["second"] <= 0.5 * peak["cold"],
        "refresh": refresh_s <= 2 * med["fold"],
    }
    lines = ["## Index cache (`bench_cache.py`)", "", *run.header(), ""]
    lines += [
        f"Medians of {args.repeat} rounds; each open is a fresh interpreter, floor and opens alternating in "
        f"every round. Floor = scan + `orjson.loads` of every payload: **{fmt_s(floor)}**.",
        "",
    ]
    lines += table(
        ["target", "measured", "against", "verdict"],
        [
            [
                "second open + `snapshot(head)` <= 0.1x floor",
                f"**{fmt_s(med['second'])}** = {med['second'] / floor:.3f}x",
                f"floor {fmt_s(floor)}",
                verdict(targets["second"]),
            ],
            [
                f"open after {APPENDED:,} appended <= 0.1x floor + 2x fold(10k)",
                f"**{fmt_s(med['appended'])}**",
                f"0.1x floor + 2 x {fmt_s(med['fold'])} = {fmt_s(0.1 * floor + 2 * med['fold'])}",
                verdict(targets["appended"]),
            ],
            [
                "first open (writes the cache) <= cold + 0.1x floor, <= 1.5x floor",
                f"**{fmt_s(med['first'])}** = {med['first'] / floor:.2f}x (entry written "
                f"{fmt_s(saved_after)} after the open began, by a forked helper)",
                f"cold open {fmt_s(med['cold'])} = {med['cold'] / floor:.2f}x; difference "
                f"{(med['first'] - med['cold']) / floor:+.3f}x floor",
                verdict(targets["first"]),
            ],
            [
                "`records_df()` from the cache as fast as freshly folded",
                f"{fmt_s(fr['cache']['records_df'])}",
                f"{fmt_s(fr['fresh']['records_df'])}",
                verdict(fr["cache"]["records_df"] <= 1.1 * fr["fresh"]["records_df"]),
            ],
            [
                "`messages_df()` from the cache as fast",
                f"{fmt_s(fr['cache']['messages_df'])}",
                f"{fmt_s(fr['fresh']['messages_df'])}",
                verdict(fr["cache"]["messages_df"] <= 1.1 * fr["fresh"]["messages_df"]),
            ],
            [
                f"`snapshot(k)` + sizes + members from the cache as fast ({SAMPLES} random k, p50)",
                f"{fmt_s(fr['cache']['snapshot_p50'])}",
                f"{fmt_s(fr['fresh']['snapshot_p50'])}",
                verdict(fr["cache"]["snapshot_p50"] <= 1.1 * fr["fresh"]["snapshot_p50"]),
            ],
            [
                "cache size <= 0.5x the database file",
                f"{entry_bytes / 1e6:,.0f} MB = {entry_bytes / data.file_bytes:.2f}x",
                f"file {data.file_bytes / 1e6:,.0f} MB",
                verdict(targets["size"]),
            ],
            [
                "peak RSS of a cache open <= 0.5x a cold open",
                f"{mib(peak['second'])} = {peak['second'] / peak['cold']:.2f}x",
                f"cold {mib(peak['cold'])}",
                verdict(targets["memory"]),
            ],
            [
                f"`refresh()` after {APPENDED:,} appended costs what was appended (reported: <= 2x fold(10k))",
                f"{fmt_s(refresh_s)}",
                f"fold(10k) {fmt_s(med['fold'])}",
                verdict(targets["refresh"]),
            ],
            [
                "`refresh()` with nothing appended (a `follow()` poll; it checks the first and last records loaded)",
                f"{statistics.median(r['idle_refresh'] for r in refresh) * 1e6:.0f} µs",
                "",
                "reported",
            ],
        ],
    )
    lines += ["", "Every round:", ""]
    lines += table(
        ["round", "floor", "cold", "first", "entry written", "second", "appended (folded)", "fold 10k"],
        [
            [
                str(i + 1),
                fmt_s(rounds["floor"][i]["seconds"]),
                fmt_s(rounds["cold"][i]["seconds"]),
                fmt_s(rounds["first"][i]["seconds"]),
                fmt_s(rounds["first"][i]["saved_after"]),
                fmt_s(rounds["second"][i]["seconds"]) + ("" if rounds["second"][i]["restored"] else " (miss!)"),
                f"{fmt_s(rounds['appended'][i]['seconds'])} ({rounds['appended'][i]['tail']})",
                fmt_s(rounds["fold"][i]["seconds"]),
            ]
            for i in range(args.repeat)
        ],
    )
    second_phases = {
        k: statistics.median(r["phases"][k] for r in rounds["second"]) for k in rounds["second"][0]["phases"]
    }
    lines += [
        "",
        "Where a second open's time goes (medians): "
        + ", ".join(f"{k} {fmt_s(v)}" for k, v in second_phases.items())
        + f". Peak RSS: cold {mib(peak['cold'])}, first {mib(peak['first'])} (the helper writing the entry is a "
        f"forked process, not counted), second {mib(peak['second'])}, appended {mib(peak['appended'])}; "
        f"{mib(statistics.median(r['rss_before_kb'] for r in rounds['second']))} of it the interpreter with its imports.",
        f"The entry saved for the copy without its last {APPENDED:,} records: {fmt_s(base['seconds'])} "
        f"(restored: {base['restored']}). Refresh runs: {', '.join(fmt_s(r['seconds']) for r in refresh)} "
        f"({refresh[0]['added']:,} records each).",
    ]
    run.write(
        "\n".join(lines),
        {
            "medians": med,
            "rounds": rounds,
            "frames": frames,
            "refresh": refresh,
            "entry_bytes": entry_bytes,
            "targets": targets,
            "peak_kb": peak,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
