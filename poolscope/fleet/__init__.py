"""Fleets: many pool databases (one per host or service) read as one.

:func:`fleet` takes files, folders (searched recursively) and glob patterns
and returns a :class:`Fleet`, whose frames are the per-database frames
stacked with a ``source`` column (the database's path as given), built in
parallel across the local cores.  Beyond one machine,
:meth:`Fleet.to_dask` hands the same work to a Dask cluster, and
:meth:`Fleet.export` writes a hive-partitioned Parquet dataset that
pyarrow, DuckDB, Polars and Spark read as is.

Example::

    >>> import poolscope
    >>> from pathlib import Path
    >>> from poolscope.generate import generate
    >>> Path("collected").mkdir()
    >>> for k in (1, 2, 3):  # three hosts' databases, collected in one folder
    ...     _ = generate(f"collected/host-0{k}.db", pools=2, records=200, seed=k)
    >>> hosts = poolscope.fleet("collected/", workers=1)
    >>> hosts.pools.sort_values("failures", ascending=False)[["source", "pool_id", "head", "failures"]].head(3)
                     source     pool_id  head  failures
    3  collected/host-02.db  pool.bravo   201        67
    5  collected/host-03.db  pool.bravo   200        55
    1  collected/host-01.db  pool.bravo   200        41
    >>> hosts.messages_df().query("status == 'failed'").groupby("source", observed=True).size()
    source
    collected/host-01.db    43
    collected/host-02.db    67
    collected/host-03.db    58
    dtype: int64
    >>> hosts.pool("collected/host-02.db", "pool.alpha").snapshot(120)
    <Snapshot 'pool.alpha' @ 120: 4 members, 3 topics, 41 messages, 18 wakes>
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..arguments import count_argument, flag_argument, path_argument, seconds_argument, upto_argument
from ..errors import PoolNotFoundError
from ..index import gc_paused
from ..source import DEFAULT_TIMEOUT
from . import work
from .discover import Skipped, SourceError, check_one, discover

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..history import Database, PoolHistory

__all__ = ["Fleet", "fleet", "SourceError", "Skipped"]

#: With ``progress=None`` the bar over databases shows from this many databases ...
PROGRESS_DATABASES = 50
#: ... or this many bytes of databases.
PROGRESS_BYTES = 256 << 20

#: From this many files, they are checked by the worker processes.
PARALLEL_DISCOVERY = 500

#: The most worker processes a fleet takes (each is a Python process with pandas and
#: pyarrow loaded; more than the cores only adds memory).
MAX_WORKERS = 256

#: ``Fleet.pools`` columns after ``source`` and ``pool_id``.
POOL_COLUMNS = [
    "head",
    "records",
    "damaged",
    "members",
    "messages",
    "wakes",
    "failures",
    "anomalies",
    "errors",
    "warnings",
]
#: ``Fleet.check()``'s severities, most severe first.
SEVERITIES = ("error", "warning", "info")


def fleet(
    sources: str | os.PathLike | list | tuple,
    *,
    workers: int | None = None,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Fleet:
    """Open every SDK database the ``sources`` name, read-only, as one :class:`Fleet`.

    ``sources`` is a path, a folder (searched recursively), a glob pattern
    (``"hosts/*/pool.db"``, ``**`` allowed) or a list of them.  Files a folder
    or pattern turns up that are not SDK databases are listed in
    ``.skipped`` with the reason; a database that cannot be read is listed in
    ``.errors`` and the rest of the fleet goes on.  ``workers`` is the
    number of worker processes (default: one per core; 1 reads everything in
    this process; at most :data:`MAX_WORKERS`); ``progress`` shows a ``tqdm``
    bar over databases (``True``, ``False``, or ``None``: for large fleets).
    Nothing on disk is changed or created.

    >>> hosts = fleet(["sample_data/", "sample_data/demo.db"], workers=1)
    >>> hosts.databases   # named twice, taken once
    ['sample_data/demo.db']
    """
    return Fleet(sources, workers=workers, progress=progress, timeout=timeout)


def _checked(path: str, timeout: float) -> tuple[bool, Any]:
    from ..errors import DatabaseError

    try:
        check_one(path, timeout)
    except DatabaseError as error:
        return False, error
    return True, None


class Fleet:
    """Many pool databases read as one; see :func:`fleet`.

    Attributes: ``databases`` (the sources that are SDK databases, as given),
    ``skipped`` (files found that are not, with the reason), ``errors``
    (databases that could not be read, with the typed error).
    """

    def __init__(
        self,
        sources: str | os.PathLike | list | tuple,
        *,
        workers: int | None = None,
        progress: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        timeout = seconds_argument(timeout, "timeout")
        self.timeout = timeout
        self.progress = None if progress is None else flag_argument(progress, "progress")
        self._workers = work.Workers(None if workers is None else count_argument(workers, "workers", most=MAX_WORKERS))

        def check_many(paths: list[str]) -> Any:
            # many files: checked by the workers (opening an SQLite file costs about a millisecond)
            if len(paths) < PARALLEL_DISCOVERY:
                return ((p, *_checked(p, timeout)) for p in paths)
            return self._workers.map(check_one, paths, (timeout,))

        found = discover(sources, timeout=timeout, check_many=check_many)
        self.databases: list[str] = found.databases
        self.skipped: list[Skipped] = found.skipped
        self._found_errors: list[SourceError] = found.errors
        self._read_errors: dict[str, SourceError] = {}
        self._survey: dict[str, Any] | None = None
        self._opened: dict[str, Database] = {}

    # ------------------------------------------------------------ plumbing
    @property
    def workers(self) -> int:
        """How many worker processes read the databases."""
        return self._workers.workers

    @property
    def errors(self) -> list[SourceError]:
        """Databases that could not be read: ``(source, error)`` pairs, the
        error a typed :class:`~poolscope.PoolscopeError`."""
        return self._found_errors + list(self._read_errors.values())

    def _bar(self, desc: str) -> Any:
        show = self.progress
        if show is None:
            total = 0
            for path in self.databases:
                try:
                    total += os.stat(path).st_size
                except OSError:
                    pass
            show = len(self.databases) >= PROGRESS_DATABASES or total >= PROGRESS_BYTES
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=len(self.databases), desc=desc, unit="db")

    def _run(self, func: Any, args: tuple, desc: str) -> dict[str, Any]:
        """``func(path, *args)`` for every database, in parallel; results by
        source, in fleet order.  Failures go to ``errors``."""
        bar = self._bar(desc)
        results: dict[str, Any] = {}
        try:
            for path, ok, result in self._workers.map(func, self.databases, args, bar=bar):
                if ok:
                    results[path] = result
                    self._read_errors.pop(path, None)
                else:
                    self._read_errors[path] = SourceError(path, result)
        finally:
            if bar is not None:
                bar.close()
        return {path: results[path] for path in self.databases if path in results}

    def close(self) -> None:
        """Stop the worker processes and close the databases opened here."""
        self._workers.close()
        for db in self._opened.values():
            db.close()
        self._opened.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._workers.close()
        except Exception:  # pragma: no cover - interpreter shutting down
            pass

    def __len__(self) -> int:
        return len(self.databases)

    def refresh(self) -> None:
        """Forget what was read (``pools``, ``check()``) so that the next call
        reads the databases again; databases opened with :meth:`pool` read
        their newer records -- every one of them, even when one fails (the
        first error, such as :class:`~poolscope.DatabaseChangedError` for a
        file replaced, is raised once all were refreshed)."""
        self._survey = None
        first: Exception | None = None
        for db in self._opened.values():
            try:
                db.refresh()
            except Exception as error:  # (the others are refreshed all the same)
                first = first or error
        if first is not None:
            raise first

    # ------------------------------------------------------------- survey
    def _surveyed(self) -> dict[str, Any]:
        if self._survey is None:
            self._survey = self._run(work.survey, (self.timeout,), "checking databases")
        return self._survey

    @property
    def pools(self) -> pd.DataFrame:
        """One row per pool of the fleet: ``source``, ``pool_id``, ``head``,
        ``records``, ``damaged`` (records that cannot be decoded), ``members``,
        ``messages`` and ``wakes`` at the head, ``failures`` (messages failed,
        timed out or expired and wakes failed or timed out at the head),
        ``anomalies`` (``errors``, ``warnings``: of :meth:`check`), then
        messages and wakes by status at the head (``messages_<status>``,
        ``wakes_<status>``).  Computed once (:meth:`refresh` forgets it).

        >>> hosts = poolscope.fleet("sample_data/", workers=1)
        >>> hosts.pools.nlargest(2, "failures")[["pool_id", "head", "failures"]]
                pool_id  head  failures
        1    pool.bravo  1200       186
        2  pool.charlie  1201       173
        """
        import numpy as np
        import pandas as pd

        from .. import wire
        from .stack import source_label, source_labels

        survey = self._surveyed()
        rows = []
        for source, result in survey.items():
            for row in result["pools"]:
                rows.append({"source": source_label(source), **row})
        columns = ["source", "pool_id", *POOL_COLUMNS]
        columns += [f"messages_{s}" for s in wire.MESSAGE_STATUSES] + [f"wakes_{s}" for s in wire.WAKE_STATUSES]
        frame = pd.DataFrame(rows, columns=columns)
        for column in columns[2:]:
            frame[column] = frame[column].astype(np.int64)
        frame["source"] = pd.Categorical(frame["source"], categories=source_labels(list(survey)))
        frame["pool_id"] = frame["pool_id"].astype(object)
        return frame

    def check(self) -> pd.DataFrame:
        """Every anomaly of every database (see :func:`poolscope.check.check`):
        ``source``, ``pool_id`` (missing for file-wide ones), ``seq``,
        ``severity`` (error, warning, info), ``code`` and ``message``.  A
        database that could not be read at all is in :attr:`errors` instead.

        >>> hosts = poolscope.fleet("sample_data/", workers=1)
        >>> len(hosts.check().query("severity == 'error'"))
        0
        """
        import pandas as pd

        from .stack import source_label, source_labels

        survey = self._surveyed()
        sources, pools, seqs, severities, codes, messages = [], [], [], [], [], []
        for source, result in survey.items():
            for pool_id, seq, severity, code, message in result["anomalies"]:
                sources.append(source_label(source))
                pools.append(pool_id)
                seqs.append(seq)
                severities.append(severity)
                codes.append(code)
                messages.append(message)
        return pd.DataFrame(
            {
                "source": pd.Categorical(sources, categories=source_labels(list(survey))),
                "pool_id": pd.Series(pools, dtype=object),
                "seq": pd.array(seqs, dtype="Int64"),
                "severity": pd.Categorical(severities, categories=SEVERITIES),
                "code": pd.Series(codes, dtype=object),
                "message": pd.Series(messages, dtype=object),
            }
        )

    def summary(self) -> pd.DataFrame:
        """One row per database (readable or not): ``source``, ``status`` (ok,
        or the error's type), ``pools``, ``records``, ``damaged``, ``members``,
        ``messages``, ``wakes``, ``failures``, ``anomalies``, ``errors``,
        ``warnings`` (sums over its pools, plus the anomalies of no pool: the
        whole file's and those of rows no pool reads, such as a pool id that
        is not UTF-8) and ``problem`` (why it could not be read)."""
        import pandas as pd

        from .stack import source_label

        pools = self.pools
        numbers = ["records", "damaged", "members", "messages", "wakes", "failures", "anomalies", "errors", "warnings"]
        sums = pools.groupby("source", observed=False)[numbers].sum()
        counts = pools.groupby("source", observed=False).size()
        # the anomalies of no pool row: the whole file's, and those of rows no pool reads (a pool id that is
        # not text, or not UTF-8: no pool row is theirs, see check.file_wide); each counted with its source
        found = self.check()
        listed = set(zip(pools["source"].astype(object), pools["pool_id"]))
        outside = [(s, p) not in listed for s, p in zip(found["source"].astype(object), found["pool_id"])]
        file_wide = found[pd.Series(outside, index=found.index, dtype=bool)]
        rows = []
        for source in self.databases:
            error = self._read_errors.get(source)
            label = source_label(source)
            if error is not None or label not in sums.index:
                rows.append(
                    {
                        "source": label,
                        "status": type(error.error).__name__ if error else "unread",
                        "pools": 0,
                        **dict.fromkeys(numbers, 0),
                        "problem": error.error.problem if error else None,
                    }
                )
                continue
            row: dict[str, Any] = {"source": label, "status": "ok", "pools": int(counts[label])}
            row.update({c: int(sums.loc[label, c]) for c in numbers})
            extra = file_wide[file_wide["source"] == label]
            row["anomalies"] += len(extra)
            row["errors"] += int((extra["severity"] == "error").sum())
            row["warnings"] += int((extra["severity"] == "warning").sum())
            row["problem"] = None
            rows.append(row)
        for error in self._found_errors:
            rows.append(
                {
                    "source": source_label(error.source),
                    "status": type(error.error).__name__,
                    "pools": 0,
                    **dict.fromkeys(numbers, 0),
                    "problem": error.error.problem,
                }
            )
        return pd.DataFrame(rows, columns=["source", "status", "pools", *numbers, "problem"])

    # -------------------------------------------------------------- frames
    @gc_paused()
    def records_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per record of every pool of every database (see
        ``poolscope.frames.COLUMNS["records_df"]``), with ``source`` first.

        Each pool is decoded straight from its file (no index is built), the
        databases spread over the worker processes.

        >>> hosts = poolscope.fleet("sample_data/", workers=1)
        >>> hosts.records_df().groupby(["source", "kind"], observed=True).size()
        source               kind
        sample_data/demo.db  pool_opened         3
                             pool_created        3
                             member_joined     125
                             member_left        72
                             run_message      2598
                             wake              801
        dtype: int64
        """
        from ..frames import _records_frame
        from .stack import empty_frame, source_column

        upto = upto_argument(upto)
        results = self._run(work.records_tables, (self.timeout, upto), "reading records")
        all_ids = sorted({pool_id for pool_ids, _, _ in results.values() for pool_id in pool_ids})
        position = {pool_id: i for i, pool_id in enumerate(all_ids)}
        sources = list(results)
        tables: list = []
        pool_codes: list[int] = []
        source_codes: list[int] = []
        for code, (pool_ids, codes, parts) in enumerate(results.values()):
            tables.extend(parts)
            pool_codes.extend(position[pool_ids[c]] for c in codes)
            source_codes.extend([code] * len(parts))
        if not tables:
            return empty_frame("records_df")
        frame = _records_frame(tables, pool_codes, all_ids)
        frame.insert(0, "source", source_column(sources, source_codes, [t.num_rows for t in tables]))
        return frame

    def _frame(self, name: str, upto: int | None) -> pd.DataFrame:
        from .stack import stack

        upto = upto_argument(upto)
        results = self._run(work.frame, (self.timeout, name, upto), f"reading {name}")
        sources = list(results)
        return stack(f"{name}_df", list(results.values()), list(range(len(sources))), sources)

    @gc_paused()
    def members_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per membership interval of every pool (``COLUMNS["members_df"]``), with ``source`` first."""
        return self._frame("members", upto)

    @gc_paused()
    def messages_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per message id of every pool (``COLUMNS["messages_df"]``), with ``source`` first.

        >>> hosts = poolscope.fleet("sample_data/", workers=1)
        >>> hosts.messages_df().groupby("source", observed=True)["status"].value_counts()
        source               status
        sample_data/demo.db  delivered    713
                             failed       275
                             responded    191
                             expired       63
                             timed_out     61
                             cancelled     26
                             accepted       0
        Name: count, dtype: int64
        """
        return self._frame("messages", upto)

    @gc_paused()
    def wakes_df(self, upto: int | None = None) -> pd.DataFrame:
        """One row per wake condition of every pool (``COLUMNS["wakes_df"]``), with ``source`` first."""
        return self._frame("wakes", upto)

    def frame(self, frame: str = "records", upto: int | None = None) -> pd.DataFrame:
        """``records``, ``members``, ``messages`` or ``wakes`` frame by name."""
        from .stack import frame_name

        name = frame_name(frame)
        return getattr(self, name)(upto)

    # --------------------------------------------------------------- pools
    def _source(self, source: str | os.PathLike) -> str:
        from .stack import source_label

        text = os.fsdecode(os.fspath(path_argument(source, "source")))
        # as the frames show it first (a label is one database's; a file name that is not UTF-8
        # shows escaped, and may read as the path of a file literally named so), then as given
        for candidate in self.databases:
            if source_label(candidate) == text:
                return candidate
        if text in self.databases:
            return text
        real = os.path.realpath(text)
        for candidate in self.databases:
            if os.path.realpath(candidate) == real:
                return candidate
        known = ", ".join(self.databases[:5]) or "none"
        raise PoolNotFoundError(f"not a database of this fleet (databases: {known}, ...)", path=text)

    def database(self, source: str | os.PathLike) -> Database:
        """The :class:`~poolscope.Database` of one source, opened read-only here (kept open)."""
        from ..history import Database

        key = self._source(source)
        db = self._opened.get(key)
        if db is None:
            db = self._opened[key] = Database(key, timeout=self.timeout, progress=self.progress)
        return db

    def pool(self, source: str | os.PathLike, pool_id: str) -> PoolHistory:
        """The history of one pool of one database (as ``poolscope.open(source).pool(pool_id)``).

        >>> hosts = poolscope.fleet("sample_data/", workers=1)
        >>> worst = hosts.pools.nlargest(1, "failures").iloc[0]
        >>> hosts.pool(worst.source, worst.pool_id).snapshot()
        <Snapshot 'pool.bravo' @ 1200: 18 members, 4 topics, 437 messages, 132 wakes>
        """
        return self.database(source).pool(pool_id)

    # -------------------------------------------------------- engines, data
    def to_dask(self, frame: str = "records", *, upto: int | None = None, partition_records: int | None = None) -> Any:
        """The fleet frame as a lazy ``dask.dataframe`` (needs ``poolscope[dask]``);
        see :func:`poolscope.fleet.dask.to_dask`."""
        from .dask import to_dask

        return to_dask(self, frame, upto=upto, partition_records=partition_records)

    def export(self, out: str | os.PathLike, *, format: str = "parquet", upto: int | None = None) -> dict[str, Any]:
        """Write the four frames as a hive-partitioned dataset; see :func:`poolscope.fleet.dataset.export`."""
        from .dataset import export

        return export(self, out, format=format, upto=upto)

    # ------------------------------------------------------------- display
    def __repr__(self) -> str:
        extra = []
        if self.skipped:
            extra.append(f"{len(self.skipped)} skipped")
        if self.errors:
            extra.append(f"{len(self.errors)} with errors")
        more = f" ({', '.join(extra)})" if extra else ""
        return f"<poolscope.Fleet: {len(self.databases)} databases{more}>"

    def _repr_html_(self) -> str:
        from .. import render

        frame = self.summary()
        cells = frame.astype(object).where(frame.notna(), "")
        rows = [[render.esc(value) for value in row] for row in cells.itertuples(index=False)]
        return f"<b>{render.esc(repr(self))}</b>" + render.table(list(frame.columns), rows)
