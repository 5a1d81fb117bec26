"""The harness every ``bench/`` script shares: options, the pool, the run's
facts, subprocess runs, statistics and the markdown report.

A benchmark script keeps only what it measures and how it words its report::

    from harness import Run, fmt_s, log, parser, table, timed

    def main(argv=None) -> int:
        args = parser(__doc__, "mine").parse_args(argv)   # --records --db --pool --seed --members-cap
        run = Run(args)                                   #  --repeat --out --label; facts of the machine
        data = run.pool()                                 # the pool: made/cached by make_pool.py or --db
        import poolscope

        pool = poolscope.open(data.db, progress=False).pool(data.pool)
        wall, cpu, frame = timed(pool.records_df)
        lines = ["## Mine", "", *run.header(), ""]
        lines += table(["call", "wall", "CPU"], [["`records_df()`", fmt_s(wall), fmt_s(cpu)]])
        run.write("\\n".join(lines), {"records_df_s": wall})  # bench/out/mine.md and mine.json
        return 0

Scripts are run as ``python bench/<name>.py``, so ``bench/`` is first on
``sys.path`` and ``import harness`` finds this file; poolscope is whatever
the interpreter imports (an installed checkout, or a ``git archive`` export
put first with ``PYTHONPATH``: see README.md).

What is here, in the order of the file:

* formatting: :func:`fmt_s`, :func:`ms`, :func:`mib`, :func:`verdict`, :func:`table`, :func:`runs_table`,
  :func:`log`;
* statistics: :func:`pct`, :func:`percentiles`, :func:`median_of`;
* this process: :func:`cpu_seconds`, :func:`status_kb`, :func:`peak_rss_kb`, :func:`timed`;
* the data: :func:`connect_ro`, :func:`pool_facts` (:class:`PoolFacts`), :func:`scan_decode` (the floor
  most targets are measured against; :func:`floor_seconds` times it here, :func:`child_floor` in a fresh
  interpreter), :func:`warm_file`;
* what is measured: :func:`machine`, :func:`code_version`;
* a run: :func:`parser` (the common options) and :class:`Run` (facts at the start and the end, the
  report's header, writing ``bench/out/<name>.md`` and ``.json``);
* fresh interpreters: :func:`run_child` in the parent, :func:`child_main` in the child.

>>> fmt_s(2.5), fmt_s(0.0123), fmt_s(0.00012), fmt_s(None)
('2.50 s', '12.3 ms', '0.12 ms', '-')
>>> percentiles([1.0, 2.0, 3.0, 4.0])["p50"]
2.5
>>> table(["a", "b"], [[1, ""]])
['| a | b |', '|---|---|', '| 1 | |']
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import hashlib
import importlib
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_pool import DEFAULT_MEMBERS_CAP, DEFAULT_RECORDS, DEFAULT_SEED, OUT, ensure_pool, meta_path

__all__ = [
    "OUT",
    "PoolFacts",
    "Run",
    "child_floor",
    "child_main",
    "import_poolscope",
    "code_version",
    "connect_ro",
    "cpu_seconds",
    "ensure_pool",
    "floor_seconds",
    "fmt_s",
    "log",
    "machine",
    "median_of",
    "mib",
    "ms",
    "parser",
    "pct",
    "peak_rss_kb",
    "percentiles",
    "pool_facts",
    "run_child",
    "runs_table",
    "scan_decode",
    "status_kb",
    "table",
    "timed",
    "verdict",
    "warm_file",
]

T = TypeVar("T")


# ------------------------------------------------------------ formatting
def ms(seconds: float) -> str:
    """Milliseconds: ``12.3 ms``, two decimals under one: ``0.12 ms``."""
    return f"{seconds * 1e3:,.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e3:.2f} ms"


def fmt_s(seconds: float | None) -> str:
    """Seconds from one up (``1.23 s``), milliseconds below (see :func:`ms`), ``-`` for None."""
    if seconds is None:
        return "-"
    return f"{seconds:,.2f} s" if seconds >= 1 else ms(seconds)


def mib(kb: float) -> str:
    """kB (as /proc and ``ru_maxrss`` give them) as ``1,234 MiB``."""
    return f"{kb / 1024:,.0f} MiB"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines; cells are ``str()``-ed, so format numbers before."""

    def line(cells: Iterable[object]) -> str:
        return "|" + "".join(f" {text} |" if (text := str(cell)) else " |" for cell in cells)

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def runs_table(
    header: Sequence[str], runs: dict[str, list[dict]], summary: Iterable[Sequence[object]] = ()
) -> list[str]:
    """The table of runs that alternate kinds in fresh interpreters (``runs[kind]`` = :func:`run_child`
    results, one per round): a row per round -- its number, the wall seconds of every kind (in ``runs``'s
    order), then their CPU seconds, then their peak RSS --, a row of the medians, and the ``summary`` rows
    (ratios, ...) after.  ``header`` names those ``1 + 3 * len(runs)`` columns."""
    rows: list[Sequence[object]] = [
        [i, *(fmt_s(r["seconds"]) for r in rnd), *(fmt_s(r["cpu"]) for r in rnd), *(mib(r["peak_rss_kb"]) for r in rnd)]
        for i, rnd in enumerate(zip(*runs.values()), 1)
    ]
    rows.append(
        [
            "**median**",
            *(f"**{fmt_s(median_of(r))}**" for r in runs.values()),
            *(fmt_s(median_of(r, "cpu")) for r in runs.values()),
            *([""] * len(runs)),
        ]
    )
    return table(header, [*rows, *summary])


def log(text: str) -> None:
    """Progress goes to stderr (stdout carries the report, or a child's JSON)."""
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------ statistics
def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile, interpolated linearly (numpy's default)."""
    ordered = sorted(values)
    x = (len(ordered) - 1) * p / 100
    lo = int(x)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (x - lo)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """``{"p50", "p95", "max", "mean"}`` of a non-empty sample."""
    return {"p50": pct(values, 50), "p95": pct(values, 95), "max": max(values), "mean": statistics.fmean(values)}


def median_of(runs: Iterable[dict], key: str = "seconds") -> float:
    """Median of one key over a list of run results (dicts, e.g. from :func:`run_child`)."""
    return statistics.median(r[key] for r in runs)


# ---------------------------------------------------------- this process
def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (a load may fork helpers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def status_kb(field: str, pid: int | str = "self") -> int:
    """A kB field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``, ...); 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_kb() -> int:
    """Peak resident set of this process (VmHWM).  Not ``ru_maxrss`` where /proc is there: after
    fork + exec, Linux's ``ru_maxrss`` starts from the parent's peak."""
    return status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """``(wall seconds, CPU seconds of this process, fn())``, after a ``gc.collect()``."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


# --------------------------------------------------------------- the data
def connect_ro(db: Path | str) -> sqlite3.Connection:
    """A read-only ``immutable=1`` connection: no lock, no ``-wal``/``-shm`` file, no change to the file."""
    return sqlite3.connect(Path(db).resolve().as_uri() + "?immutable=1", uri=True)


@dataclass(frozen=True)
class PoolFacts:
    """The pool a run measures."""

    db: Path
    pool: str
    count: int  #: records
    head: int  #: largest seq
    json_bytes: int  #: payload JSON, summed
    file_bytes: int
    made: dict  #: make_pool.py's metadata (records, seed, members_cap) when it made the file, else {}

    @property
    def db_name(self) -> str:
        """The path as a report shows it: relative to the repository when inside it."""
        return os.path.relpath(self.db, HERE.parent) if self.db.is_relative_to(HERE.parent) else str(self.db)

    def describe(self) -> str:
        """``Pool: `id` in `path`, N records, X GB of payload JSON (Y GB file)[, seed S, members cap C].``"""
        made = f", seed {self.made['seed']}, members cap {self.made['members_cap']}" if self.made else ""
        return (
            f"Pool: `{self.pool}` in `{self.db_name}`, {self.count:,} records, {self.json_bytes / 1e9:.2f} GB of "
            f"payload JSON ({self.file_bytes / 1e9:.2f} GB file){made}."
        )


def pool_facts(db: Path | str, pool: str | None = None) -> PoolFacts:
    """Facts of ``pool`` (default: the file's first pool) in ``db``, read without changing the file."""
    db = Path(db)
    conn = connect_ro(db)
    try:
        pool = pool or conn.execute("SELECT pool_id FROM agent_pool_records LIMIT 1").fetchone()[0]
        count, head, json_bytes = conn.execute(
            "SELECT count(*), max(seq), sum(length(CAST(payload_json AS BLOB))) FROM agent_pool_records "
            "WHERE pool_id=?",
            (pool,),
        ).fetchone()
    finally:
        conn.close()
    if not count:
        raise SystemExit(f"{db}: no records for pool {pool!r}")
    try:
        made = json.loads(meta_path(db).read_text())
    except (OSError, ValueError):
        made = {}
    return PoolFacts(db, pool, count, head, json_bytes, db.stat().st_size, made)


def scan_decode(db: Path | str, pool: str, upto: int | None = None) -> int:
    """The floor: scan ``payload_json`` in seq order (``immutable=1``) and ``orjson.loads`` every payload,
    up to ``upto`` if given.  Returns the number of records; time it around the call."""
    import orjson

    conn = connect_ro(db)
    sql = "SELECT payload_json FROM agent_pool_records WHERE pool_id=?"
    params: tuple = (pool,)
    if upto is not None:
        sql += " AND seq<=?"
        params += (upto,)
    n = 0
    try:
        for (payload,) in conn.execute(sql + " ORDER BY seq", params):
            orjson.loads(payload)
            n += 1
    finally:
        conn.close()
    return n


def floor_seconds(db: Path | str, pool: str, upto: int | None = None) -> float:
    """Wall seconds of one :func:`scan_decode` (after a ``gc.collect()``): the floor, timed in this process."""
    gc.collect()
    t0 = time.perf_counter()
    scan_decode(db, pool, upto)
    return time.perf_counter() - t0


def child_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A child (for :func:`child_main`) that times the floor, :func:`scan_decode` of ``args.db``'s
    ``args.pool``: ``{"seconds", "cpu", "rows", "rss_before_kb"}``."""
    rss0 = status_kb("VmRSS")
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    rows = scan_decode(args.db, args.pool)
    return {"seconds": time.perf_counter() - t0, "cpu": cpu_seconds() - c0, "rows": rows, "rss_before_kb": rss0}


def warm_file(path: Path | str) -> None:
    """Read the file once so that every measured run sees a warm page cache."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


# ------------------------------------------------------ what is measured
def machine(*modules: str) -> dict[str, str]:
    """Facts about this machine and the versions of numpy, orjson and ``modules``."""
    import numpy
    import orjson

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem:.0f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "numpy": numpy.__version__,
        "orjson": orjson.__version__,
        "platform": platform.platform(),
        **{name: importlib.import_module(name).__version__ for name in modules},
    }


def code_version() -> tuple[str, str]:
    """(which poolscope is imported: its git commit and whether it has local edits, or its folder when it is
    not a checkout -- e.g. a ``git archive`` export; a hash of its ``.py`` files, to notice edits mid-run)."""
    import poolscope

    pkg = Path(poolscope.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        digest.update(path.relative_to(pkg).as_posix().encode() + b"\0" + path.read_bytes())
    git = ["git", "-C", str(pkg)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.strip()
        label = f"commit {head}" + (" with uncommitted changes in poolscope/" if dirty else " (clean)")
    except (OSError, subprocess.CalledProcessError):
        label = f"`{pkg}` (not a git checkout)"
    return label, digest.hexdigest()[:12]


# ------------------------------------------------------------------ a run
def parser(doc: str | None, name: str, *, children: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The options every benchmark takes; add your own to the parser it returns.

    ``--records N`` (the pool make_pool.py makes and caches, default 1M), ``--db PATH`` and ``--pool ID``
    (an existing database instead), ``--seed``, ``--members-cap`` (make_pool.py's), ``--repeat`` (runs per
    measurement, default 3), ``--out`` (default ``bench/out/<name>.md``), ``--label`` (what is measured;
    default: the git commit of the imported poolscope).  With ``children``, a hidden ``--child KIND``
    for :func:`run_child` / :func:`child_main`.
    """
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="pool size (default 1,000,000)")
    p.add_argument("--db", type=Path, default=None, help="database (default: made and cached by make_pool.py)")
    p.add_argument("--pool", default=None, help="pool id in --db (default: its first)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="make_pool.py's seed")
    p.add_argument("--members-cap", type=int, default=DEFAULT_MEMBERS_CAP, help="make_pool.py's members cap")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    p.add_argument("--out", type=Path, default=OUT / f"{name}.md", help=f"report (default bench/out/{name}.md)")
    p.add_argument("--label", default=None, help="what poolscope is measured (default: git commit of the import)")
    children = sorted(children)
    if children:
        p.add_argument("--child", choices=children, help=argparse.SUPPRESS)
    return p


class Run:
    """One benchmark run: the facts of the machine and of the measured poolscope at the start, the load
    average at the start and the end, a warning when poolscope's source changed in between.

    ``modules``: extra libraries whose versions the report names (numpy and orjson always are).
    """

    def __init__(self, args: argparse.Namespace, *modules: str) -> None:
        # poolscope's index cache (poolscope.cache) is off for the run and its children unless
        # a script asks for it: the cold loads measured must not become cache hits on a second
        # run, and nothing goes to ~/.cache.  bench_cache.py passes its own folder.
        os.environ.setdefault("POOLSCOPE_CACHE_DIR", str(OUT / "poolscope-cache"))
        os.environ.setdefault("POOLSCOPE_CACHE_SIZE", "0")
        self.args = args
        self.modules = modules
        self.info = machine(*modules)
        label, self.source_hash = code_version()
        self.info["poolscope"] = args.label or label
        self.info["source_hash"] = self.source_hash
        self.info["load_start"] = loadavg()
        self.facts: PoolFacts | None = None

    def pool(self, *, quiet: bool = False) -> PoolFacts:
        """The pool to measure: ``--db``/``--pool``, else ``make_pool.ensure_pool(--records)``; its page
        cache warmed."""
        a = self.args
        if a.db is None:
            db, pool, _ = ensure_pool(a.records, seed=a.seed, cap=a.members_cap, quiet=quiet)
        else:
            db, pool = a.db, a.pool
        self.facts = facts = pool_facts(db, pool)
        log(
            f"pool {facts.pool} in {facts.db}: {facts.count:,} records, head {facts.head:,}, "
            f"{facts.json_bytes / 1e9:.2f} GB JSON"
        )
        warm_file(facts.db)
        return facts

    def finish(self) -> dict[str, str]:
        """Record the load average at the end and whether poolscope's source changed during the run."""
        self.info["load_end"] = loadavg()
        if code_version()[1] != self.source_hash:
            self.info["warning"] = "poolscope's source changed during the run: numbers may mix two versions"
            log("WARNING: " + self.info["warning"])
        return self.info

    def header(self) -> list[str]:
        """The report's opening lines: machine, versions, load, what was measured, the pool."""
        i = self.info
        if "load_end" not in i:
            self.finish()
        versions = ", ".join(f"{m} {i[m]}" for m in (*self.modules, "numpy", "orjson"))
        lines = [
            f"Run {i['date']} on {i['nproc']} cores ({i['cpu']}, {i['memory']} RAM), Python {i['python']}, "
            f"SQLite {i['sqlite']}, {versions}; load average {i['load_start']} at the start, {i['load_end']} "
            "at the end.",
            f"poolscope measured: {i['poolscope']} (source hash {i['source_hash']}).",
        ]
        if i.get("warning"):
            lines.append(f"**WARNING: {i['warning']}.**")
        if self.facts is not None:
            lines.append(self.facts.describe() + " Page cache warm for every run.")
        return lines

    def write(self, report: str, raw: dict, *, echo: bool = True) -> None:
        """Print the report (unless ``echo=False``); write it to ``--out`` and ``raw`` (plus the run's facts)
        beside it as JSON."""
        if "load_end" not in self.info:
            self.finish()
        if echo:
            print(report)
        out: Path = self.args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report + "\n")
        raw = {**raw, "machine": self.info}
        if self.facts is not None:
            raw.setdefault("pool_facts", {**vars(self.facts), "db": str(self.facts.db)})
        out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
        log(f"wrote {out}")


def loadavg() -> str:
    """The 1/5/15-minute load averages, e.g. ``1.2 0.9 0.7``."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ---------------------------------------------------- fresh interpreters
def run_child(
    script: str | Path,
    kind: str,
    options: Sequence[object] = (),
    *,
    timeout: float | None = None,
    max_rss_gb: float | None = None,
) -> dict[str, Any]:
    """Run ``python <script> --child <kind> <options>`` in a fresh interpreter and return the JSON object
    it prints last (see :func:`child_main`), plus ``stderr`` (its whole stderr) and ``watched_peak_kb``
    (the largest RSS seen by polling it).  Watched every 0.2 s: killed above ``max_rss_gb`` GiB of RSS or
    after ``timeout`` seconds, and then ``{"killed": why, "stderr": ..., "watched_peak_kb": ...}`` is
    returned.  Any other failure raises RuntimeError with its stderr.  The child inherits the environment
    (``PYTHONPATH`` included, so it measures the same poolscope)."""
    cmd = [sys.executable, str(Path(script).resolve()), "--child", kind, *map(str, options)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: dict[str, str] = {}
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


def import_poolscope() -> None:
    """Import every part of poolscope's public API now, as ``import poolscope`` did before its names
    were imported on first use (pandas, pyarrow, ipywidgets, ...; what a notebook holds anyway): a
    child's clock measures poolscope's work, not its imports, as it always did."""
    import importlib

    import poolscope

    for module in sorted(set(poolscope._LAZY.values())):
        importlib.import_module(f"poolscope.{module}")


def child_main(args: argparse.Namespace, children: dict[str, Callable[[argparse.Namespace], dict]]) -> int:
    """In the child: run ``children[args.child](args)`` and print its dict as one JSON line, with the
    process's memory added: ``peak_rss_kb`` (VmHWM), ``ru_maxrss_kb`` and ``children_peak_rss_kb`` (the
    largest waited-for process it forked, whose peak is not in its own VmHWM; 0 if none)."""
    if args.child != "floor":
        import_poolscope()
    out = children[args.child](args)
    out["peak_rss_kb"] = peak_rss_kb()
    out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["children_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps(out))
    return 0
