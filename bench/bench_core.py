"""Core benchmarks: time travel (snapshots) and appends on one big pool.

    /work/venv/bin/python bench/bench_core.py                    # 1M records (bench/out/big.db)
    /work/venv/bin/python bench/bench_core.py --records 100000   # quick check

Targets (from the project's issues), measured against a floor in the same run:

1. ``snapshot(k)`` at random k -- sizes and ``snap.members`` -- <= 25 ms p95
   once the pool is loaded (p50/p95/max over --samples random k).
2. ``poolscope.open(path).pool(pid).snapshot(k)`` within 1.5x the floor:
   scanning + ``orjson.loads`` of every payload (``immutable=1`` connection).
   Each side runs in a fresh subprocess, 3x alternating; medians compared.
3. ``snapshot(k).to_dict()`` proportional to the snapshot's size, not the log's:
   k at 10%, 50%, 100%; time per stored item.
4. ``PoolStore`` append cost at 1k vs 1M records (warm store, 500 calls of
   ``join_member``/``record_message``), against an SDK-like store that replays
   the whole log before every append (1k, 10k, 20k records).
5. Peak RSS of opening + the first snapshot (VmHWM of the subprocesses of 2.).

Prints a markdown report and writes it to ``bench/out/core.md`` (raw numbers
in ``bench/out/core.json``).  Options, subprocess runs and the report's
pieces come from ``harness.py``, the databases from ``make_pool.py`` (made
and cached).  Timings use ``time.perf_counter``;
``gc.collect()`` runs before every measured run.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from harness import (
    OUT,
    Run,
    child_floor,
    child_main,
    cpu_seconds,
    ensure_pool,
    floor_seconds,
    fmt_s,
    log,
    mib,
    ms,
    parser,
    percentiles,
    run_child,
    runs_table,
    status_kb,
    table,
    verdict,
)

T1_P95_MS = 25.0
T2_RATIO = 1.5
#: to_dict counts as "proportional to the snapshot" when its time per item varies less than this across k
T3_SPREAD = 2.0
#: appends count as "the same cost" at 1M as at 1k when the ratio is below this (the machine is noisy)
T4_RATIO = 1.5
SDK_REFERENCE = {"append_ms_1k": 6.6, "append_ms_20k": 177.0, "snapshot_ms_20k": 167.0}


# ------------------------------------------------------- subprocess runs
def child_open(args: argparse.Namespace) -> dict:
    """``poolscope.open(path).pool(pid).snapshot(k)`` in a fresh interpreter (targets 2 and 5)."""
    import poolscope  # imported before the clock starts: the import is not what is measured

    out: dict = {"rss_before_kb": status_kb("VmRSS")}
    gc.collect()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    db = poolscope.open(args.db)
    t1 = time.perf_counter()
    history = db.pool(args.pool).load()
    t2 = time.perf_counter()
    snap = history.snapshot(args.cursor)
    sizes = (len(snap.members), len(snap.messages), len(snap.wakes))
    t3 = time.perf_counter()
    out["cpu"] = cpu_seconds() - c0
    # the same as poolscope.open(path).pool(pid).snapshot(k), split into its three steps
    out["seconds"] = t3 - t0
    out["phases"] = {"open": t1 - t0, "pool (load)": t2 - t1, "first snapshot": t3 - t2}
    out["sizes"] = sizes
    return out


CHILDREN = {"open": child_open, "floor": child_floor}


# ------------------------------------------------------------- target 2, 5
def bench_open(db: Path, pool: str, head: int, repeat: int) -> dict:
    runs: dict[str, list[dict]] = {"floor": [], "open": []}
    for i in range(repeat):
        for kind in ("floor", "open"):
            result = run_child(__file__, kind, ["--db", db, "--pool", pool, "--cursor", head])
            del result["stderr"]  # the load's progress bar
            runs[kind].append(result)
            log(
                f"  [{i + 1}/{repeat}] {kind:5s} {fmt_s(result['seconds'])} (CPU {fmt_s(result['cpu'])})  "
                f"peak RSS {mib(result['peak_rss_kb'])}"
            )
    floor = statistics.median(r["seconds"] for r in runs["floor"])
    opened = statistics.median(r["seconds"] for r in runs["open"])
    return {
        "runs": runs,
        "floor_s": floor,
        "open_s": opened,
        "ratio": opened / floor,
        "floor_cpu_s": statistics.median(r["cpu"] for r in runs["floor"]),
        "open_cpu_s": statistics.median(r["cpu"] for r in runs["open"]),
        "open_phases": {p: statistics.median(r["phases"][p] for r in runs["open"]) for p in runs["open"][0]["phases"]},
        "open_children_hwm_kb": max(r["children_peak_rss_kb"] for r in runs["open"]),
        "open_hwm_kb": statistics.median(r["peak_rss_kb"] for r in runs["open"]),
        "open_hwm_max_kb": max(r["peak_rss_kb"] for r in runs["open"]),
        "open_rss_before_kb": statistics.median(r["rss_before_kb"] for r in runs["open"]),
        "floor_hwm_kb": statistics.median(r["peak_rss_kb"] for r in runs["floor"]),
        "sizes": runs["open"][0]["sizes"],
    }


# ---------------------------------------------------------------- target 1
def bench_snapshots(history, samples: int, seed: int) -> dict:
    head = history.head
    rng = random.Random(seed)
    cursors = [rng.randint(1, head) for _ in range(samples)]
    history.snapshot(head)  # first snapshot builds the numpy columns and key ranks (target 2 pays that)
    gc.collect()
    times, sizes = [], []
    for k in cursors:
        t0 = time.perf_counter()
        snap = history.snapshot(k)
        n = (len(snap.members), len(snap.messages), len(snap.wakes))
        members = snap.members
        times.append(time.perf_counter() - t0)
        sizes.append(n)
        assert isinstance(members, list)
    stats = percentiles(times)
    # where the slow ones are: by tenth of the log
    deciles = []
    for d in range(10):
        sel = [t for k, t in zip(cursors, times) if d * head / 10 < k <= (d + 1) * head / 10]
        deciles.append(
            {
                "decile": d + 1,
                "n": len(sel),
                "p50": percentiles(sel)["p50"] if sel else None,
                "max": max(sel) if sel else None,
            }
        )
    log(f"  snapshot: p50 {ms(stats['p50'])}  p95 {ms(stats['p95'])}  max {ms(stats['max'])}")
    return {
        "samples": samples,
        "stats": stats,
        "deciles": deciles,
        "cursors": cursors,
        "times": times,
        "mean_sizes": [statistics.fmean(s[i] for s in sizes) for i in range(3)],
        "max_sizes": [max(s[i] for s in sizes) for i in range(3)],
    }


# ---------------------------------------------------------------- target 3
def bench_to_dict(history, db: Path, repeat: int) -> dict:
    head = history.head
    rows = []
    for frac in (0.10, 0.50, 1.00):
        k = max(1, int(head * frac))
        times = []
        items = 0
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            out = history.snapshot(k).to_dict()
            times.append(time.perf_counter() - t0)
            items = len(out["members"]) + len(out.get("messages", ())) + len(out.get("wakes", ()))
            sizes = (len(out["members"]), len(out.get("messages", ())), len(out.get("wakes", ())))
            del out
        seconds = statistics.median(times)
        gc.collect()
        gc.disable()  # diagnostic: the same call with the cyclic GC paused
        try:
            t0 = time.perf_counter()
            out = history.snapshot(k).to_dict()
            nogc = time.perf_counter() - t0
            del out
        finally:
            gc.enable()
        floor = floor_seconds(db, history.pool_id, k)  # scan + decode every payload with seq <= k
        row = {
            "fraction": frac,
            "cursor": k,
            "records_upto": history.index.position(k),
            "items": items,
            "sizes": sizes,
            "seconds": seconds,
            "us_per_item": seconds / items * 1e6,
            "us_per_record": seconds / history.index.position(k) * 1e6,
            "replay_floor_s": floor,
            "nogc_s": nogc,
        }
        rows.append(row)
        log(
            f"  to_dict at {frac:.0%} (k={k:,}): {fmt_s(seconds)} for {items:,} items "
            f"= {row['us_per_item']:.2f} us/item; GC paused {fmt_s(nogc)}; replay floor {fmt_s(floor)}"
        )
        gc.collect()
    per_item = [r["us_per_item"] for r in rows]
    return {"rows": rows, "spread": max(per_item) / min(per_item)}


# ---------------------------------------------------------------- target 4
PRIVACY = "content_refs_only"


def bench_member(tag: str, i: int) -> dict:
    return {"run_id": f"run.bench.{tag}.{i}", "agent_id": "agent.bench.worker", "topics": ["topic.bench"]}


def bench_message(tag: str, i: int, sender: str, to: str) -> tuple[dict, dict]:
    message = {
        "message_id": f"msg.bench.{tag}.{i}",
        "from": sender,
        "to": {
            "target": {"type": "run", "run_id": to},
            "destination_ref": {"kind": "agent", "id": to, "privacy": PRIVACY, "retention": "host_policy"},
            "related_refs": [{"kind": "run", "id": to, "privacy": PRIVACY}],
        },
        "content_ref": f"content.bench.{tag}.{i}",
        "correlation": {},
        "idempotency_key": f"idem.bench.{tag}.{i}",
    }
    receipt = {
        "message_id": message["message_id"],
        "status": "delivered",
        "delivered_to": [to],
        "journal_cursor": f"journal.bench.{tag}.{i}",
    }
    return message, receipt


def fresh_copy(src: Path, name: str) -> Path:
    dst = OUT / name
    for side in (dst, Path(str(dst) + "-wal"), Path(str(dst) + "-shm")):
        side.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    # flush the copy's dirty pages now: otherwise their writeback competes with the
    # WAL fsync of every timed commit (seen as 0.3 ms vs 4 ms appends at random)
    os.sync()
    return dst


def drop_copy(dst: Path) -> None:
    for side in (dst, Path(str(dst) + "-wal"), Path(str(dst) + "-shm")):
        side.unlink(missing_ok=True)


def poolstore_appends(src: Path, pool: str, calls: int, tag: str) -> dict:
    """Warm PoolStore: load the pool, then time ``calls`` appends (join_member / record_message alternating)."""
    from poolscope import PoolStore

    copy = fresh_copy(src, f"append-{src.stem}.db")
    store = PoolStore(copy)
    t0 = time.perf_counter()
    snap = store.snapshot(pool)  # loads the pool into the store's fold
    load_s = time.perf_counter() - t0
    senders = [m["run_id"] for m in snap.members] or ["run.bench.ghost"]
    del snap
    gc.collect()
    times = []
    for i in range(calls):
        if i % 2 == 0:
            t0 = time.perf_counter()
            store.join_member(pool, bench_member(tag, i))
        else:
            message, receipt = bench_message(tag, i, senders[i % len(senders)], senders[(i + 1) % len(senders)])
            t0 = time.perf_counter()
            store.record_message(pool, message, receipt)
        times.append(time.perf_counter() - t0)
    store.close()
    drop_copy(copy)
    return {
        "load_s": load_s,
        "per_append_s": statistics.fmean(times),
        "p50_s": percentiles(times)["p50"],
        "p95_s": percentiles(times)["p95"],
    }


class ReplayingStore:
    """SDK-like baseline: before every append, read and decode the pool's whole log."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")

    def replay(self, pool: str) -> int:
        import orjson

        n = 0
        for (payload,) in self.conn.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = ?1 ORDER BY seq", (pool,)
        ):
            orjson.loads(payload)
            n += 1
        return n

    def append(self, pool: str, kind: str, payload: dict) -> int:
        import orjson

        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.replay(pool)
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_pool_records WHERE pool_id = ?1", (pool,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?1, ?2, ?3, ?4)",
                (pool, seq, kind, orjson.dumps(payload).decode()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return seq

    def close(self) -> None:
        self.conn.close()


def replaying_appends(src: Path, pool: str, calls: int, tag: str) -> dict:
    from poolscope import wire

    copy = fresh_copy(src, f"replay-{src.stem}.db")
    store = ReplayingStore(copy)
    gc.collect()
    t0 = time.perf_counter()
    store.replay(pool)
    snapshot_s = time.perf_counter() - t0
    times = []
    for i in range(calls):
        if i % 2 == 0:
            payload = {"type": "member_joined", "member": wire.canonical_member(bench_member(tag, i))}
            kind = "member_joined"
        else:
            message, receipt = bench_message(tag, i, f"run.bench.{tag}.0", f"run.bench.{tag}.0")
            payload = {
                "type": "run_message",
                "stored": {"message": wire.canonical_message(message), "receipt": wire.canonical_receipt(receipt)},
            }
            kind = "run_message"
        t0 = time.perf_counter()
        store.append(pool, kind, payload)
        times.append(time.perf_counter() - t0)
    store.close()
    drop_copy(copy)
    return {"snapshot_s": snapshot_s, "per_append_s": statistics.fmean(times)}


def alternating(
    measure, sources: dict[int, Path], pool_ids: dict[int, str], calls: int, repeat: int, describe
) -> dict[int, dict]:
    """``measure(src, pool, calls, tag)`` on every source, sizes alternating, ``repeat`` rounds; the median of
    each numeric result per size, and the runs."""
    out: dict[int, list[dict]] = {n: [] for n in sources}
    for r in range(repeat):
        for n, src in sources.items():
            gc.collect()
            result = measure(src, pool_ids[n], calls, f"r{r}")
            out[n].append(result)
            log(f"  [{r + 1}/{repeat}] {describe(n, result)}")
    return {
        n: {**{key: statistics.median(x[key] for x in runs) for key in runs[0]}, "runs": runs}
        for n, runs in out.items()
    }


def bench_appends(sources: dict[int, Path], pool_ids: dict[int, str], calls: int, repeat: int) -> dict:
    return alternating(
        poolstore_appends,
        sources,
        pool_ids,
        calls,
        repeat,
        lambda n, r: (
            f"PoolStore @ {n:,}: {r['per_append_s'] * 1e6:,.0f} us/append (p50 {r['p50_s'] * 1e6:,.0f}, "
            f"p95 {r['p95_s'] * 1e6:,.0f}; load {fmt_s(r['load_s'])})"
        ),
    )


def bench_replaying(sources: dict[int, Path], pool_ids: dict[int, str], calls: int, repeat: int) -> dict:
    return alternating(
        replaying_appends,
        sources,
        pool_ids,
        calls,
        repeat,
        lambda n, r: (
            f"replaying store @ {n:,}: {r['per_append_s'] * 1e3:,.1f} ms/append, "
            f"snapshot (replay) {ms(r['snapshot_s'])}"
        ),
    )


def poolscope_snapshot_at(db: Path, pool: str) -> dict:
    """poolscope on the same small pools: cold open + snapshot, then a warm snapshot at the head."""
    import poolscope

    gc.collect()
    t0 = time.perf_counter()
    history = poolscope.open(db).pool(pool)
    history.snapshot()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    history.snapshot()
    warm = time.perf_counter() - t0
    history.db.close()
    return {"cold_s": cold, "warm_s": warm}


# ---------------------------------------------------------------- report
def render(run: Run, res: dict) -> str:
    n = res["records"]
    t1, t2, t3, t4, sdk, small = res["t1"], res["t2"], res["t3"], res["t4"], res["sdk"], res["small"]
    L: list[str] = ["## Core: time travel and appends", "", *run.header(), ""]

    L += ["### Verdicts", ""]
    per_item = ", ".join(f"{r['us_per_item']:.2f}" for r in t3["rows"])
    floors = ", ".join(fmt_s(r["replay_floor_s"]) for r in t3["rows"])
    lo, hi = min(t4), max(t4)
    ratio4 = t4[hi]["per_append_s"] / t4[lo]["per_append_s"]
    sdk_txt = ", ".join(f"{ms(v['per_append_s'])} at {k // 1000}k" for k, v in sdk.items())
    L += table(
        ["#", "target", "measured", "floor / reference", "verdict"],
        [
            [
                1,
                f"`snapshot(k)` sizes + members <= {T1_P95_MS:.0f} ms p95 (loaded pool)",
                f"p50 {ms(t1['stats']['p50'])}, p95 {ms(t1['stats']['p95'])}, max {ms(t1['stats']['max'])} "
                f"({t1['samples']} random k)",
                f"SDK replay: {ms(sdk[20000]['snapshot_s']) if 20000 in sdk else 'n/a'} at 20k (quoted SDK: "
                f"{SDK_REFERENCE['snapshot_ms_20k']:.0f} ms)",
                verdict(t1["stats"]["p95"] <= T1_P95_MS / 1e3),
            ],
            [
                2,
                f"open + first snapshot <= {T2_RATIO}x floor",
                f"{fmt_s(t2['open_s'])} (median of {len(t2['runs']['open'])})",
                f"floor (scan + orjson every payload) {fmt_s(t2['floor_s'])}; ratio **{t2['ratio']:.2f}x** wall, "
                f"{t2['open_cpu_s'] / t2['floor_cpu_s']:.2f}x CPU",
                verdict(t2["ratio"] <= T2_RATIO),
            ],
            [
                3,
                "`to_dict()` ~ snapshot size",
                f"{per_item} us/item at 10/50/100% (spread {t3['spread']:.2f}x)",
                f"replay floor to k: {floors}",
                f"{verdict(t3['spread'] <= T3_SPREAD)} (spread <= {T3_SPREAD}x)",
            ],
            [
                4,
                f"append cost at {hi:,} = at {lo:,}",
                f"{t4[lo]['per_append_s'] * 1e6:,.0f} us vs {t4[hi]['per_append_s'] * 1e6:,.0f} us per append: ratio "
                f"**{ratio4:.2f}x** (p50 {t4[lo]['p50_s'] * 1e6:,.0f} vs {t4[hi]['p50_s'] * 1e6:,.0f} us: "
                f"{t4[hi]['p50_s'] / t4[lo]['p50_s']:.2f}x)",
                f"replaying store: {sdk_txt} (quoted SDK: {SDK_REFERENCE['append_ms_1k']} ms at 1k, "
                f"{SDK_REFERENCE['append_ms_20k']:.0f} ms at 20k)",
                f"{verdict(ratio4 <= T4_RATIO)} (ratio <= {T4_RATIO})",
            ],
            [
                5,
                "peak RSS, open + snapshot",
                f"{mib(t2['open_hwm_kb'])} (max {t2['open_hwm_max_kb'] / 1024:,.0f}; "
                f"{mib(t2['open_rss_before_kb'])} after `import poolscope`)",
                f"floor process {mib(t2['floor_hwm_kb'])}; payload JSON {res['json_bytes'] / 2**20:,.0f} MiB",
                "reported (no numeric target)",
            ],
        ],
    )
    L.append("")

    L += ["### 1. `snapshot(k)` on a loaded pool", ""]
    L.append(
        f"Timed: `snap = pool.snapshot(k)`; `len(snap.members)`, `len(snap.messages)`, `len(snap.wakes)`; "
        f"`snap.members`. {t1['samples']} k uniform in 1..{n:,} (seed {res['seed']}); the first snapshot "
        f"(which builds the columns) is not counted. Load (`open` + `pool`) took {fmt_s(res['load_s'])}."
    )
    L.append("")
    s = t1["stats"]
    L += table(
        ["p50", "p95", "max", "mean", "mean sizes (members / messages / wakes)", "max sizes"],
        [
            [
                ms(s["p50"]),
                ms(s["p95"]),
                ms(s["max"]),
                ms(s["mean"]),
                " / ".join(f"{x:,.0f}" for x in t1["mean_sizes"]),
                " / ".join(f"{x:,}" for x in t1["max_sizes"]),
            ]
        ],
    )
    L += ["", "By tenth of the log (k in that tenth):", ""]
    deciles = t1["deciles"]
    L += table(
        ["tenth", *(str(d["decile"]) for d in deciles)],
        [
            ["samples", *(d["n"] for d in deciles)],
            ["p50", *(ms(d["p50"]) if d["p50"] is not None else "-" for d in deciles)],
            ["max", *(ms(d["max"]) if d["max"] is not None else "-" for d in deciles)],
        ],
    )
    L.append("")

    L += ["### 2. Open + first snapshot vs the floor", ""]
    L.append(
        f"Each run is a fresh interpreter (imports done before the clock starts); floor and open alternate, "
        f"{len(t2['runs']['open'])} runs each, medians compared. Open = `poolscope.open(path).pool(pid)"
        f".snapshot(head)` plus the three sizes; snapshot sizes {' / '.join(f'{x:,}' for x in t2['sizes'])}."
    )
    L.append("")
    L += runs_table(
        [
            "run",
            "floor",
            "open + snapshot",
            "CPU floor",
            "CPU open (incl. forked helpers)",
            "peak RSS floor",
            "peak RSS open",
        ],
        t2["runs"],
        [
            [
                "**ratio**",
                "",
                f"**{t2['ratio']:.2f}x** wall (target <= {T2_RATIO}x)",
                "",
                f"{t2['open_cpu_s'] / t2['floor_cpu_s']:.2f}x CPU",
                "",
                "",
            ],
        ],
    )
    L.append("")
    L.append(
        "Where the open + snapshot time goes (medians): "
        + ", ".join(f"{name} {fmt_s(v)}" for name, v in t2["open_phases"].items())
        + "."
    )
    L.append("")

    L += ["### 3. `snapshot(k).to_dict()`", ""]
    L.append(
        "Timed: `pool.snapshot(k).to_dict()` on the loaded pool (a new snapshot each time, so payloads are "
        f"fetched and decoded), median of {res['repeat']}. Items = members + messages + wakes in the snapshot. "
        "Replay floor = scanning and decoding every payload with seq <= k."
    )
    L.append("")
    L += table(
        [
            "k",
            "records <= k",
            "items (members / messages / wakes)",
            "to_dict",
            "us / item",
            "us / record <= k",
            "replay floor to k",
            "to_dict / floor",
            "to_dict, GC paused (diagnostic)",
        ],
        [
            [
                f"{r['fraction']:.0%} ({r['cursor']:,})",
                f"{r['records_upto']:,}",
                f"{r['items']:,} ({' / '.join(f'{x:,}' for x in r['sizes'])})",
                fmt_s(r["seconds"]),
                f"{r['us_per_item']:.2f}",
                f"{r['us_per_record']:.2f}",
                fmt_s(r["replay_floor_s"]),
                f"{r['seconds'] / r['replay_floor_s']:.2f}x",
                f"{fmt_s(r['nogc_s'])} ({r['nogc_s'] / r['items'] * 1e6:.2f} us/item)",
            ]
            for r in t3["rows"]
        ],
    )
    L.append("")

    L += ["### 4. Appends", ""]
    L.append(
        f"Warm `PoolStore` (the pool loaded by `store.snapshot(pid)` first), {res['calls']} calls alternating "
        f"`join_member` (new member) and `record_message` (new message, status delivered), each its own "
        f"`BEGIN IMMEDIATE` transaction on a fresh copy of the file; {res['repeat']} runs, sizes alternating, "
        "median of the per-run means."
    )
    L.append("")
    L += table(
        ["records", "us / append (median of run means)", "each run's mean", "p50", "p95", "store load"],
        [
            [
                f"{k:,}",
                f"{v['per_append_s'] * 1e6:,.0f}",
                ", ".join(f"{x['per_append_s'] * 1e6:,.0f}" for x in v["runs"]),
                f"{v['p50_s'] * 1e6:,.0f}",
                f"{v['p95_s'] * 1e6:,.0f}",
                fmt_s(v["load_s"]),
            ]
            for k, v in t4.items()
        ]
        + [[f"**ratio {hi:,} / {lo:,}**", f"**{ratio4:.2f}x**", "", "", "", ""]],
    )
    L.append("")
    L.append(
        f"SDK-like baseline (`ReplayingStore` in this script: per append, `SELECT` + `orjson.loads` of every "
        f"payload of the pool, then `MAX(seq)+1` and `INSERT`, one transaction; no fold, so a lower bound for "
        f"the SDK's approach), {res['sdk_calls']} calls per run. poolscope on the same files for comparison."
    )
    L.append("")
    quoted = {
        1000: f"{SDK_REFERENCE['append_ms_1k']} ms / append",
        20000: f"{SDK_REFERENCE['append_ms_20k']:.0f} ms / append, {SDK_REFERENCE['snapshot_ms_20k']:.0f} ms / snapshot",
    }
    L += table(
        [
            "records",
            "replaying store: ms / append",
            "replaying store: snapshot (one replay)",
            "quoted SDK",
            "poolscope: open + snapshot",
            "poolscope: warm snapshot",
        ],
        [
            [
                f"{k:,}",
                f"{v['per_append_s'] * 1e3:,.2f}",
                ms(v["snapshot_s"]),
                quoted.get(k, ""),
                ms(small[k]["cold_s"]) if k in small else "",
                ms(small[k]["warm_s"]) if k in small else "",
            ]
            for k, v in sdk.items()
        ],
    )
    L.append("")

    L += ["### 5. Memory", ""]
    L.append(
        f"Peak RSS (VmHWM) of the subprocesses of target 2: open + snapshot {mib(t2['open_hwm_kb'])} "
        f"median, {mib(t2['open_hwm_max_kb'])} max ({mib(t2['open_rss_before_kb'])} of it "
        f"is the interpreter with `poolscope` and its imports); the floor process peaks at "
        f"{mib(t2['floor_hwm_kb'])}; largest forked helper (if the load forks one) "
        f"{mib(t2['open_children_hwm_kb'])}. That is {(t2['open_hwm_kb'] - t2['open_rss_before_kb']) * 1024 / n:,.0f} "
        f"bytes per record above the imports."
    )
    L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "core", children=CHILDREN)
    p.add_argument("--samples", type=int, default=200, help="random k for target 1 (>= 200)")
    p.add_argument("--calls", type=int, default=500, help="appends per PoolStore run")
    p.add_argument("--sdk-calls", type=int, default=50, help="appends per replaying-store run")
    p.add_argument("--small-pool", type=int, default=1000, help="the small pool for target 4")
    p.add_argument("--cursor", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args, CHILDREN)

    run = Run(args)
    data = run.pool()
    db, pool, count, head = data.db, data.pool, data.count, data.head
    small_sizes = sorted({args.small_pool, 1000, 10000, 20000})
    smalls = {n: ensure_pool(n, seed=args.seed, cap=args.members_cap, quiet=True) for n in small_sizes}
    res: dict = {
        "records": count,
        "pool": pool,
        "head": head,
        "json_bytes": data.json_bytes,
        "seed": args.seed,
        "repeat": args.repeat,
        "calls": args.calls,
        "sdk_calls": args.sdk_calls,
    }

    log("target 2/5: open + first snapshot vs floor (subprocesses)")
    res["t2"] = bench_open(db, pool, head, args.repeat)

    import poolscope

    log("loading the pool in this process")
    gc.collect()
    t0 = time.perf_counter()
    database = poolscope.open(db, progress=False)
    history = database.pool(pool).load()
    res["load_s"] = time.perf_counter() - t0

    log("target 1: snapshot(k) at random k")
    res["t1"] = bench_snapshots(history, max(args.samples, 1), args.seed)
    log("target 3: to_dict")
    res["t3"] = bench_to_dict(history, db, args.repeat)
    database.close()
    del history, database
    gc.collect()

    log("target 4: appends")
    sources = {n: smalls[n][0] for n in (args.small_pool, 20000) if n < count}
    pool_ids = {n: smalls[n][1] for n in (args.small_pool, 20000) if n < count}
    sources[count], pool_ids[count] = db, pool
    res["t4"] = bench_appends(sources, pool_ids, args.calls, args.repeat)
    sdk_sources = {n: smalls[n][0] for n in (1000, 10000, 20000)}
    sdk_pools = {n: smalls[n][1] for n in (1000, 10000, 20000)}
    res["sdk"] = bench_replaying(sdk_sources, sdk_pools, args.sdk_calls, args.repeat)
    res["small"] = {n: poolscope_snapshot_at(sdk_sources[n], sdk_pools[n]) for n in sdk_sources}

    run.finish()
    run.write(render(run, res), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
