"""Why, what if and compare on one big pool (issue 13's targets).

    .venv/bin/python bench/bench_why.py --db /work/bench-out/big.db     # the cached 1M-record pool
    .venv/bin/python bench/bench_why.py --records 100000                 # a smaller pool (made and cached)

Targets, each beside the floor measured in the same run (scan + ``orjson``
decode of every payload, :func:`harness.floor_seconds`) and a cold load
(``poolscope.open(path).pool(pid).load()`` in a fresh interpreter):

1. ``history_of(key)`` and ``explain(key)`` <= 50 ms once the pool is
   loaded, for message ids, wake condition ids, run ids and idempotency keys
   picked at random (p50/p95/max per key type).  The first call builds the
   relation columns (:mod:`poolscope.relations`, once per loaded pool): it
   is reported apart.
2. ``flows_df()`` (by run and by agent) and ``latency_df()`` <= 2 s (first
   call and repeat).
3. ``compare(a, b)`` of two 1M-record pools <= 5 s: the pool against a
   second, separately loaded handle on the same file (no divergence: the
   whole log is compared), and against a what-if of it.
4. ``pool.without(runs=[one run])`` <= a cold load (and its ``.orphans``
   and first ``snapshot()`` reported beside it).

Writes ``bench/out/why.md`` (raw numbers in ``why.json``).
"""

from __future__ import annotations

import gc
import random
import time

from harness import Run, child_main, fmt_s, log, parser, percentiles, run_child, table, verdict

T_LOOKUP_MS = 50.0
T_FRAME_S = 2.0
T_COMPARE_S = 5.0


def child_load(args) -> dict:
    import poolscope

    gc.collect()
    t0 = time.perf_counter()
    pool = poolscope.open(args.db, progress=False).pool(args.pool).load()
    return {"seconds": time.perf_counter() - t0, "records": len(pool)}


def clock(fn):
    gc.collect()
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "why", children=["load"])
    p.add_argument("--keys", type=int, default=200, help="random keys per key type")
    p.add_argument("--keys-seed", type=int, default=7)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args, {"load": child_load})
    import numpy as np
    from harness import floor_seconds

    import poolscope

    run = Run(args, "pandas")
    data = run.pool()
    args.db, args.pool = data.db, data.pool
    raw: dict = {}
    floor = floor_seconds(data.db, data.pool)
    log(f"floor {floor:.2f} s")
    cold = [run_child(__file__, "load", ["--db", data.db, "--pool", data.pool])["seconds"] for _ in range(2)]
    cold_s = min(cold)
    log(f"cold loads {cold}")
    load_s, pool = clock(lambda: poolscope.open(data.db, progress=False).pool(data.pool).load())
    raw.update(floor_s=floor, cold_load_s=cold, load_in_process_s=load_s)

    # ---------------------------------------------------------- 1. lookups
    rng = random.Random(args.keys_seed)
    index = pool.index
    fold = index.fold
    messages = list(fold.messages)
    wakes = list(fold.wakes)
    idems = list(fold.message_dedupe)
    first_history, _ = clock(lambda: pool.history_of(messages[0]))
    first_run, _ = clock(lambda: pool.history_of(pool.members_df().run_id.astype(str).iloc[0]))
    first_explain, _ = clock(lambda: pool.explain(messages[1]))
    runs = sorted({str(r) for r in pool.members_df().run_id.astype(str)})
    samples = {
        "message": rng.sample(messages, min(args.keys, len(messages))),
        "wake": rng.sample(wakes, min(args.keys, len(wakes))),
        "run": rng.sample(runs, min(args.keys, len(runs))),
        "idempotency key": rng.sample(idems, min(args.keys, len(idems))),
    }
    lookup_rows = []
    worst = 0.0
    first_of: dict[str, float] = {}
    for what, keys in samples.items():
        # the first lookup of a key type on the loaded pool builds what that type needs, once
        # (reported apart, beside the load); a key outside the sample pays it
        spare = next(k for k in {"message": messages, "wake": wakes, "run": runs, "idempotency key": idems}[what][::-1])
        first_of[what], _ = clock(lambda: pool.history_of(spare))
        for name, call in (("history_of", pool.history_of), ("explain", pool.explain)):
            times, sizes = [], []
            for key in keys:
                t0 = time.perf_counter()
                result = call(key)
                times.append((time.perf_counter() - t0) * 1000)
                sizes.append(len(result) if name == "history_of" else len(result.sentences))
            stats = percentiles(times)
            worst = max(worst, stats["max"])
            raw[f"{name}_{what}_ms"] = stats
            lookup_rows.append(
                [
                    f"`{name}` {what}",
                    len(keys),
                    f"{stats['p50']:.1f}",
                    f"{stats['p95']:.1f}",
                    f"{stats['max']:.1f}",
                    f"{np.median(sizes):.0f} / {max(sizes)}",
                ]
            )
        log(f"lookups {what} done")
    raw.update(first_history_s=first_history, first_run_history_s=first_run, first_explain_s=first_explain)
    raw["first_of_type_s"] = first_of

    # ----------------------------------------------------------- 2. frames
    frame_rows = []
    worst_frame = 0.0
    for label, fn in (
        ("`flows_df()`", pool.flows_df),
        ("`flows_df(by='agent')`", lambda: pool.flows_df(by="agent")),
        ("`latency_df()`", pool.latency_df),
    ):
        first, value = clock(fn)
        again, _ = clock(fn)
        worst_frame = max(worst_frame, first, again)
        frame_rows.append(
            [label, fmt_s(first), fmt_s(again), f"{len(value):,} rows", verdict(max(first, again) <= T_FRAME_S)]
        )
        raw[f"frame {label}"] = [first, again]
        log(f"{label}: {first:.2f} s, {again:.2f} s")

    # ---------------------------------------------------------- 4. what-if
    members = set(pool.members_df().run_id.astype(str))
    sent = pool.flows_df().groupby("sender", observed=True).messages.sum()
    sent = sent[sent.index.astype(str).isin(members)].sort_values()
    one_run = str(sent.index[-1])  # the member run that sent the most: the most records to remove
    whatif_s, alt = clock(lambda: pool.without(runs=one_run))
    orphans_s, orphans = clock(lambda: alt.orphans)
    snap_s, _ = clock(lambda: alt.snapshot())
    raw.update(whatif_s=whatif_s, whatif_orphans_s=orphans_s, whatif_snapshot_s=snap_s, whatif_run=one_run)
    log(f"what-if without {one_run}: {whatif_s:.2f} s (removed {len(alt.removed):,}), orphans {orphans_s:.2f} s")

    # ---------------------------------------------------------- 3. compare
    other_s, other = clock(lambda: poolscope.open(data.db, progress=False).pool(data.pool).load())
    compare_rows = []
    worst_compare = 0.0
    for label, b in (("same file, second handle (no divergence)", other), ("a what-if without one run", alt)):
        first, result = clock(lambda: poolscope.compare(pool, b))
        again, _ = clock(lambda: poolscope.compare(pool, b))
        worst_compare = max(worst_compare, first)
        compare_rows.append(
            [label, fmt_s(first), fmt_s(again), str(result.first_divergence), verdict(first <= T_COMPARE_S)]
        )
        raw[f"compare {label}"] = [first, again]
        log(f"compare {label}: {first:.2f} s, {again:.2f} s")

    lines = ["## Why, what if and compare (issue 13)", "", *run.header(), ""]
    lines += [
        f"Floor (scan + decode every payload) in this run: **{fmt_s(floor)}**; cold load "
        f"(`open(path).pool(pid).load()` in a fresh interpreter, best of 2): **{fmt_s(cold_s)}** "
        f"({cold_s / floor:.2f}x the floor); the same load in this process {fmt_s(load_s)}.",
        "",
        "### Verdicts",
        "",
    ]
    lines += table(
        ["target", "measured", "verdict"],
        [
            [
                f"`history_of` and `explain` <= {T_LOOKUP_MS:.0f} ms once loaded",
                f"worst of {sum(len(k) for k in samples.values()) * 2:,} calls: {worst:.1f} ms; the first call "
                f"of a key type on a freshly loaded pool builds its relation columns once (at most "
                f"{fmt_s(max(first_history, first_run, first_explain, *first_of.values()))}, "
                f"{max(first_history, first_run, first_explain, *first_of.values()) / floor:.2f}x the floor)",
                verdict(worst <= T_LOOKUP_MS),
            ],
            [
                f"`flows_df`, `latency_df` <= {T_FRAME_S:.0f} s",
                f"worst {fmt_s(worst_frame)}",
                verdict(worst_frame <= T_FRAME_S),
            ],
            [
                f"`compare` of two 1M pools <= {T_COMPARE_S:.0f} s",
                f"worst first call {fmt_s(worst_compare)}",
                verdict(worst_compare <= T_COMPARE_S),
            ],
            [
                "what-if without one run <= a cold load",
                f"{fmt_s(whatif_s)} vs {fmt_s(cold_s)} ({whatif_s / cold_s:.2f}x); {len(alt.removed):,} records removed",
                verdict(whatif_s <= cold_s),
            ],
        ],
    )
    lines += ["", "### 1. Lookups (ms, after the first call)", ""]
    lines += table(["call", "keys", "p50", "p95", "max", "rows or sentences (median / max)"], lookup_rows)
    lines += [
        "",
        f"First calls on the loaded pool, each building what it needs once: `history_of(message)` "
        f"{fmt_s(first_history)}, `history_of(run)` {fmt_s(first_run)} (run mentions), `explain(message)` "
        f"{fmt_s(first_explain)}; then the first of each remaining type: "
        + ", ".join(f"{what} {fmt_s(seconds)}" for what, seconds in first_of.items())
        + ".",
        "",
        "### 2. Frames",
        "",
    ]
    lines += table(["call", "first", "repeat", "size", "verdict"], frame_rows)
    lines += ["", "### 3. Compare", "", f"Second handle loaded in {fmt_s(other_s)}.", ""]
    lines += table(["b", "first", "repeat", "first divergence", "verdict"], compare_rows)
    lines += [
        "",
        "### 4. What-if",
        "",
        f"`pool.without(runs={one_run!r})` (the member run that sent the most messages): {fmt_s(whatif_s)}, "
        f"{len(alt.removed):,} records removed, {len(alt):,} folded again; `.orphans` {fmt_s(orphans_s)} "
        f"({len(orphans):,} rows); first `snapshot()` {fmt_s(snap_s)}.",
    ]
    run.write("\n".join(lines), raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
