"""The work a fleet does per database, and the processes that do it.

Each function here reads ONE database and returns plain data (Arrow tables,
DataFrames, tuples) -- the same code runs in this process, in the fleet's
worker processes and in Dask's workers.  :class:`Workers` runs it across the
local cores: a :class:`concurrent.futures.ProcessPoolExecutor` whose workers
are started by a fork server (``spawn`` where there is none), never forked
from a running kernel.  Databases are handed out in groups (small ones
together, large ones alone, largest first), at most two groups per worker in
flight, so memory stays bounded by what the workers hold at once plus the
results.  Inside a fleet worker a pool's load never forks its own helper
process: the workers already use every core.

A database that cannot be read is returned as its typed error (never raised),
so the rest of the fleet goes on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from ..errors import DatabaseError, PoolscopeError

#: Most databases handed to a worker at once (small databases are grouped).
MAX_GROUP = 256
#: Groups per worker in flight (the rest wait, bounding what the results hold).
IN_FLIGHT = 2
#: Statuses at the head that count as a failure in ``Fleet.pools``.
FAILED_MESSAGE = ("failed", "timed_out", "expired")
FAILED_WAKE = ("failed", "timed_out")


def _one_process_loads() -> None:
    """Turn off the forked helper of large loads and scans in this process."""
    from .. import load

    load.PARALLEL_THRESHOLD = 0


class OtherPoolscopeError(RuntimeError):
    """A worker process imported another copy of poolscope than this process."""


#: In a worker whose poolscope is not the parent's: the folders it and the parent imported it from.
_imported_elsewhere: tuple[str, str] | None = None


def package_folder() -> str:
    """The folder this process's poolscope was imported from (real path)."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)


def _init_worker(parents: str | None = None, cache_dir: str | None = None) -> None:
    # the fork server imports the worker code from ITS path (the working folder first, on Python
    # 3.11), which may hold another poolscope than the one this process imported: such a worker
    # runs nothing (run_group refuses) and the fleet reads in its own process
    global _imported_elsewhere
    _one_process_loads()
    if cache_dir is not None:
        # the fork server's environment is the one it started with (perhaps long ago): the
        # workers read the index cache the calling process would read now
        from ..cache import ENV_DIR

        os.environ[ENV_DIR] = cache_dir
    here = package_folder()
    _imported_elsewhere = (here, parents) if parents is not None and here != parents else None


# ------------------------------------------------------------- per database
def _open(path: str, timeout: float):
    from ..cache import read_only
    from ..history import Database

    return Database(path, timeout=timeout, progress=False, cache=read_only())


def pool_row(history: Any, anomalies: list) -> dict[str, Any]:
    """One row of ``Fleet.pools`` for a loaded pool and its anomalies."""
    index = history.index
    head = index.head
    row: dict[str, Any] = {
        "pool_id": history.pool_id,
        "head": head,
        "records": len(index),
        "damaged": len(index.problems),
        "members": index.count_live("members", head) if head else 0,
    }
    for namespace in ("messages", "wakes"):
        current = index.current_status_counts(namespace, head)
        row[namespace] = sum(current.values())
        row.update({f"{namespace}_{status}": count for status, count in current.items()})
    row["failures"] = sum(row[f"messages_{s}"] for s in FAILED_MESSAGE) + sum(row[f"wakes_{s}"] for s in FAILED_WAKE)
    row["errors"] = sum(1 for a in anomalies if a.severity == "error")
    row["warnings"] = sum(1 for a in anomalies if a.severity == "warning")
    row["anomalies"] = len(anomalies)
    return row


def survey(path: str, timeout: float) -> dict[str, Any]:
    """Every pool of one database loaded and checked: ``pools`` (rows of
    ``Fleet.pools`` without ``source``) and ``anomalies`` (tuples: pool_id,
    seq, severity, code, message)."""
    from ..check import check

    db = _open(path, timeout)
    try:
        anomalies = check(db)
        by_pool: dict[str | None, list] = {}
        for anomaly in anomalies:
            by_pool.setdefault(anomaly.pool_id, []).append(anomaly)
        rows = [pool_row(history, by_pool.get(history.pool_id, [])) for history in db.pools()]
    finally:
        db.close()
    return {
        "pools": rows,
        "anomalies": [(a.pool_id, a.seq, a.severity, a.code, a.message) for a in anomalies],
    }


def records_tables(path: str, timeout: float, upto: int | None) -> tuple[list[str], list[int], list]:
    """The records of every pool of one database as Arrow tables (see
    ``frames._records_table``): ``(pool_ids, pool code per table, tables)``.
    Pools are decoded straight from the file, without building their index."""
    from ..frames import _scanned_records_tables

    db = _open(path, timeout)
    try:
        pool_ids = db.pool_ids
        codes: list[int] = []
        tables: list = []
        for code, pool_id in enumerate(pool_ids):
            parts = _scanned_records_tables(db, pool_id, upto)
            tables.extend(parts)
            codes.extend([code] * len(parts))
    finally:
        db.close()
    return pool_ids, codes, tables


def frame(path: str, timeout: float, name: str, upto: int | None) -> Any:
    """``members``, ``messages`` or ``wakes`` frame of one database (a DataFrame)."""
    from .. import frames

    db = _open(path, timeout)
    try:
        return getattr(frames, f"{name}_df")(db, upto)
    finally:
        db.close()


def run_group(func: Callable[..., Any], paths: list[str], args: tuple) -> list[tuple[str, bool, Any]]:
    """``func(path, *args)`` for each path: ``(path, True, result)`` or
    ``(path, False, typed error)``."""
    if _imported_elsewhere is not None:
        here, parents = _imported_elsewhere
        raise OtherPoolscopeError(f"the worker processes imported poolscope from {here}, this process from {parents}")
    from ..index import gc_paused

    out: list[tuple[str, bool, Any]] = []
    for path in paths:
        try:
            # the collector waits until the database's work is done and its objects are freed:
            # switched back on while a pool's index is in memory (the load ends before the check),
            # its first collection would walk every object of it
            with gc_paused():
                result = func(path, *args)
            out.append((path, True, result))
        except PoolscopeError as error:
            out.append((path, False, error))
        except MemoryError:
            raise
        except Exception as error:  # a file no check foresaw must not stop the fleet
            out.append(
                (
                    path,
                    False,
                    DatabaseError(
                        f"could not be read ({type(error).__name__}: {error}); "
                        "this is likely a bug in poolscope, please report it",
                        path=path,
                    ),
                )
            )
    return out


# ------------------------------------------------------------------ workers
def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> Any:
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # the fork server imports the worker code (pandas, pyarrow, poolscope) once; workers fork from it
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - not Linux


@contextmanager
def _main_not_imported() -> Iterator[None]:
    """Meanwhile, processes started by spawn or a fork server do not import
    ``__main__`` (what :mod:`multiprocessing` would run again in each of them:
    the caller's script or notebook).  The fleet's workers run only
    poolscope's functions."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {name: getattr(main, name, missing) for name in ("__file__", "__spec__")}
    try:
        if saved["__file__"] is not missing:
            del main.__file__
        main.__spec__ = None
        yield
    finally:
        for name, value in saved.items():
            if value is not missing:
                setattr(main, name, value)


@contextmanager
def _server_imports_this_poolscope() -> Iterator[None]:
    """Meanwhile, a process started (the fork server, on Python 3.11 a
    ``python -c`` that puts the working folder first on its path and ignores
    this process's) does not look for modules in the working folder
    (``PYTHONSAFEPATH``: a ``poolscope.py`` among the collected databases
    would run), and finds this process's poolscope first (``PYTHONPATH``)."""
    from pathlib import Path

    saved = {name: os.environ.get(name) for name in ("PYTHONSAFEPATH", "PYTHONPATH")}
    os.environ["PYTHONSAFEPATH"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(package_folder()).parent), *([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])]
    )
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def groups(paths: list[str], workers: int) -> list[list[str]]:
    """Split ``paths`` into groups to hand out, largest databases first, each
    group about a third of what is left per worker (guided scheduling: large
    groups while there is much to do, down to single databases at the end, so
    no worker waits long for another's last group); at most
    :data:`MAX_GROUP` databases in a group (files that cannot be read count as
    empty).
    """
    sizes = {}
    for path in paths:
        try:
            sizes[path] = os.stat(path).st_size
        except OSError:
            sizes[path] = 0
    left = sum(sizes.values())
    ordered = sorted(paths, key=lambda p: -sizes[p])
    out: list[list[str]] = []
    current: list[str] = []
    weight = 0
    target = max(left / (workers * 3), 1)
    for path in ordered:
        current.append(path)
        weight += sizes[path]
        if weight >= target or len(current) >= MAX_GROUP:
            out.append(current)
            left -= weight
            current, weight = [], 0
            target = max(left / (workers * 3), 1)
    if current:
        out.append(current)
    return out


class Workers:
    """The fleet's worker processes, started on first use and kept until :meth:`close`."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            from ..cache import default_dir

            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_context(),
                initializer=_init_worker,
                initargs=(package_folder(), str(default_dir())),
            )
        return self._executor

    def _submit(self, *args: Any) -> Future:
        # the workers start at the first submit: they need none of __main__ (a script without
        # the ``if __name__ == "__main__"`` guard would otherwise run again in each of them), nor
        # any module of the working folder
        with _main_not_imported(), _server_imports_this_poolscope():
            return self._pool().submit(*args)

    def map(
        self, func: Callable[..., Any], paths: list[str], args: tuple = (), *, bar: Any = None
    ) -> Iterator[tuple[str, bool, Any]]:
        """``(path, ok, result or error)`` for every path, in completion order.

        One worker (or one database) runs here, in this process."""
        if self.workers <= 1 or len(paths) <= 1:
            for path in paths:
                yield from run_group(func, [path], args)
                if bar is not None:
                    bar.update(1)
            return
        pending = groups(paths, self.workers)
        pending.reverse()  # pop() from the end: largest first
        running: dict[Future, list[str]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers * IN_FLIGHT:
                    future = self._submit(run_group, func, pending[-1], args)
                    running[future] = pending.pop()
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    results = future.result()  # a group whose worker failed stays in running: read again below
                    group = running.pop(future)
                    yield from results
                    if bar is not None:
                        bar.update(len(group))
        except (OSError, BrokenProcessPool, OtherPoolscopeError) as error:
            # worker processes cannot be started here (or one died, or runs another poolscope):
            # read the rest in this process
            import warnings

            warnings.warn(
                f"poolscope.fleet: worker processes failed ({error!r}); reading in this process instead",
                RuntimeWarning,
                stacklevel=3,
            )
            self.close()
            self.workers = 1
            left = [p for group in running.values() for p in group] + [p for group in reversed(pending) for p in group]
            running.clear()
            for path in left:
                yield from run_group(func, [path], args)
                if bar is not None:
                    bar.update(1)
        finally:
            for future in running:
                future.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
