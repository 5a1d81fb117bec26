"""A fleet's frames as Dask DataFrames, for clusters of many machines.

:func:`to_dask` (``Fleet.to_dask``) builds a lazy ``dask.dataframe`` with
``dask.dataframe.from_map``: one partition per (database, pool), and the
records of a large pool split into seq ranges of about ``partition_records``
records (the other frames fold a pool's whole log, so a pool is one
partition).  Its ``meta`` comes from :data:`poolscope.frames.COLUMNS`; a
column selection is pushed into the partitions, which then build only those
columns' data frame.  Each partition opens its database by path, read-only,
in whichever worker runs it: **every worker must be able to read the files at
the paths the fleet was given** (a shared or network file system, or the same
folder on every machine).  Nothing is written anywhere.

Needs the optional extra: ``pip install 'poolscope[dask]'``.

Example (not run here: it starts a cluster of worker processes; without a
client, Dask computes in threads of this process, as the example below)::

    from distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=2, processes=True))

and then::

    >>> records = poolscope.fleet("sample_data/").to_dask("records")
    >>> records.groupby("pool_id", observed=True).kind.count().compute()
    pool_id
    pool.alpha      1201
    pool.bravo      1200
    pool.charlie    1201
    Name: kind, dtype: int64
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from ..arguments import count_argument, upto_argument
from ..errors import PoolscopeError
from ..index import gc_paused
from ..source import connect_readonly, pool_id_text
from ..sqlite_errors import sqlite_errors, translate
from .stack import FIXED, empty_frame, frame_name

if TYPE_CHECKING:  # pragma: no cover
    from . import Fleet

#: Records per partition of a pool's records (a larger pool is split into seq ranges).
PARTITION_RECORDS = 200_000


class Part(NamedTuple):
    """One partition: the records (or the frame) of one pool of one database,
    for records with ``after < seq <= last`` (``last`` None: to the end)."""

    source: str
    pool_id: str
    after: int
    last: int | None


def _require_dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Fleet.to_dask needs Dask: pip install 'poolscope[dask]' (dask[dataframe] and distributed)"
        ) from error
    return dd


def meta(name: str) -> pd.DataFrame:
    """The empty frame Dask is told each partition looks like: the documented
    dtypes, categories unknown where they are the values found."""
    from dask.dataframe.utils import clear_known_categories

    empty = empty_frame(name)
    unknown = [c for c in empty.columns if isinstance(empty[c].dtype, pd.CategoricalDtype) and c not in FIXED[name]]
    return clear_known_categories(empty, cols=unknown)


def plan(fleet: Fleet, name: str, upto: int | None, partition_records: int) -> list[Part]:
    """The partitions of a fleet frame, in fleet order (databases, pools, seqs).

    A database that cannot be read here goes to ``fleet.errors`` and has no partition."""
    from .discover import SourceError

    parts: list[Part] = []
    for source in fleet.databases:
        try:
            conn = connect_readonly(source, timeout=fleet.timeout)
        except PoolscopeError as error:
            fleet._read_errors[source] = SourceError(source, error)
            continue
        try:
            # ids as stored: a text id that is not UTF-8 would fail the whole query as str
            sql = (
                "SELECT typeof(pool_id), CAST(pool_id AS BLOB), count(*) FROM agent_pool_records "
                "WHERE typeof(seq) = 'integer'"
            )
            args: tuple = ()
            if upto is not None:
                sql += " AND seq <= ?"
                args = (upto,)
            pools = conn.execute(
                sql + " GROUP BY pool_id COLLATE BINARY ORDER BY CAST(pool_id AS BLOB)", args
            ).fetchall()
            for kind, raw, count in pools:
                pool_id = pool_id_text(kind, raw)
                if pool_id is None:
                    continue  # no pool can read it (the check reports it)
                if name != "records_df" or count <= partition_records:
                    parts.append(Part(source, pool_id, 0, None))
                    continue
                after = 0
                for _ in range(partition_records, count, partition_records):
                    row = conn.execute(
                        "SELECT seq FROM agent_pool_records WHERE pool_id = ? AND seq > ? "
                        "ORDER BY seq LIMIT 1 OFFSET ?",
                        (pool_id, after, partition_records - 1),
                    ).fetchone()
                    if row is None:
                        break
                    parts.append(Part(source, pool_id, after, row[0]))
                    after = row[0]
                parts.append(Part(source, pool_id, after, None))
            fleet._read_errors.pop(source, None)
        except sqlite3.Error as error:
            fleet._read_errors[source] = SourceError(source, translate(error, source))
        finally:
            conn.close()
    return parts


@gc_paused()  # a Dask worker's collector is on: a partition makes millions of objects and no cycles
def read_partition(
    part: Part, name: str, upto: int | None, timeout: float, columns: list[str] | None = None
) -> pd.DataFrame:
    """One partition's frame (runs in a Dask worker): the rows of ``part``,
    ``source`` first, only ``columns`` when given."""
    from .. import frames
    from ..cache import read_only
    from ..history import Database
    from ..index import PoolIndex
    from ..load import _column_chunks
    from .stack import same_categories_dtype, source_column

    db = Database(part.source, timeout=timeout, progress=False, cache=read_only())
    try:
        if name == "records_df":
            last = part.last if upto is None else (upto if part.last is None else min(part.last, upto))
            index = PoolIndex(db.path, part.pool_id)
            with sqlite_errors(db.path, part.pool_id):
                tables = [
                    frames._records_table(*chunk)
                    for chunk in _column_chunks(index, db.conn, part.after, None if last is None else last + 1)
                ]
            frame = (
                frames._records_frame(tables, [0] * len(tables), [part.pool_id])
                if tables
                else empty_frame(name, source=False)
            )
        else:
            frame = getattr(frames, name)(db.pool(part.pool_id), upto)
    finally:
        db.close()
    frame.insert(0, "source", source_column([part.source], [0], [len(frame)]))
    same_categories_dtype(frame)
    if columns is not None:
        frame = frame[list(columns)]
    return frame


def to_dask(
    fleet: Fleet, frame: str = "records", *, upto: int | None = None, partition_records: int | None = None
) -> Any:
    """The fleet's ``frame`` (records, members, messages or wakes) as a lazy
    ``dask.dataframe.DataFrame`` with the columns and dtypes of the in-process
    frame (``fleet.records_df()`` ...); categories that are the values found
    are unknown until computed.  ``upto`` is each pool's cursor, as in the
    frames; ``partition_records`` (default :data:`PARTITION_RECORDS`) bounds
    the records of one partition of the records frame.

    >>> hosts = poolscope.fleet("sample_data/")
    >>> failed = hosts.to_dask("messages").query("status == 'failed'").compute()
    >>> len(failed) == len(hosts.messages_df().query("status == 'failed'"))
    True
    """
    dd = _require_dask()
    name = frame_name(frame)
    upto = upto_argument(upto)
    size = count_argument(PARTITION_RECORDS if partition_records is None else partition_records, "partition_records")
    parts = plan(fleet, name, upto, size)
    if not parts:
        return dd.from_pandas(empty_frame(name), npartitions=1)
    return dd.from_map(
        read_partition,
        parts,
        args=(name, upto, fleet.timeout),
        meta=meta(name),
        label=f"poolscope-{name.removesuffix('_df')}",
        enforce_metadata=False,
    )


def collect(frame: Any) -> pd.DataFrame:
    """Compute a Dask DataFrame (a fleet's, from :func:`to_dask`) into one pandas
    frame, concatenated in this process rather than on a worker.

    ``frame.compute()`` has one worker concatenate every partition and send the
    result on, and with ``distributed``'s default client the result goes to
    the client through the scheduler, which speaks pickle protocol 4: the
    worker pickles the whole frame in one piece, so it holds the partitions,
    their concatenation and two copies at once (1.4 GB for a fleet of 1M
    records, against 0.4 GB for the partitions alone: bench/RESULTS.md).
    ``frame.compute(direct=True)`` -- or a client made with
    ``Client(..., direct_to_workers=True)`` -- fetches it from the worker
    itself, out of band (0.75 GB).  ``collect`` computes the partitions as
    separate results (with a ``distributed`` client, each comes to this
    process on its own) and concatenates them here the way Dask does
    (categories united), so a worker never holds more than its partitions
    (0.55 GB).  The frame equals ``frame.compute()``.

    >>> hosts = poolscope.fleet("sample_data/")
    >>> lazy = hosts.to_dask("wakes")
    >>> collect(lazy).equals(lazy.compute())
    True
    """
    import dask
    from dask.dataframe.dispatch import concat

    parts = dask.compute(*frame.to_delayed())
    return concat(list(parts)) if parts else frame._meta.copy()
