"""A fleet's frames as one hive-partitioned Parquet dataset.

:func:`export` (``Fleet.export``, ``poolscope fleet export``) writes::

    OUT/records/source=<source>/pool_id=<pool>/part-0.parquet
    OUT/members/source=<source>/pool_id=<pool>/part-0.parquet
    OUT/messages/...
    OUT/wakes/...
    OUT/_poolscope.json        what was written, from which state of each pool

one folder per frame, one file per (database, pool) partition.  Partition
values are URI-encoded (a source is a path), as Hive, pyarrow, DuckDB, Polars
and Spark expect.  The files hold the frame's columns except the two
partition columns, with plain types every reader knows (categoricals as
strings, cursors as nullable int64, lists as lists of strings) and one schema
per frame.  Read them with::

    >>> _ = poolscope.fleet("sample_data/", workers=1).export("out/")
    >>> import pyarrow.dataset as ds
    >>> ds.dataset("out/records", partitioning=partitioning()).to_table().num_rows
    3602
    >>> import duckdb
    >>> duckdb.sql("SELECT pool_id, count(*) FROM read_parquet('out/records/*/*/*.parquet', "
    ...            "hive_partitioning = true, hive_types_autocast = false) GROUP BY pool_id ORDER BY pool_id").fetchall()
    [('pool.alpha', 1201), ('pool.bravo', 1200), ('pool.charlie', 1201)]

(Declare the partition columns as strings -- ``PARTITIONING`` here,
``hive_types_autocast = false`` in DuckDB -- or a pool id such as ``123``
comes back as a number.)

Exporting again into the same folder rewrites only the partitions whose pool
changed since (a database whose file is unchanged is not even opened; in one
that changed, a pool is rewritten when its record count, last seq or payload
bytes differ), removes those of pools and databases no longer in the fleet,
and leaves every other file alone.  Databases that cannot be read keep their
earlier partitions.  Each file is written beside its place and renamed into
it, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from ..arguments import upto_argument
from ..errors import InvalidInputError
from ..source import change_mark, connect_readonly, pool_id_text
from ..sqlite_errors import sqlite_errors
from .stack import FRAMES, empty_frame

if TYPE_CHECKING:  # pragma: no cover
    from . import Fleet

MANIFEST = "_poolscope.json"
#: The manifest's format; a different one (or another ``upto``) rewrites everything.
VERSION = 1
FILE = "part-0.parquet"
#: Both partition columns are strings.
PARTITIONING_SCHEMA = pa.schema([("source", pa.string()), ("pool_id", pa.string())])


def partitioning() -> Any:
    """The ``pyarrow.dataset`` partitioning of an exported dataset (hive, both columns strings).

    >>> import pyarrow.dataset as ds
    >>> _ = poolscope.fleet("sample_data/", workers=1).export("out/")
    >>> ds.dataset("out/messages", partitioning=partitioning()).schema.field("pool_id")
    pyarrow.Field<pool_id: string>
    """
    import pyarrow.dataset as ds

    return ds.partitioning(PARTITIONING_SCHEMA, flavor="hive")


def open_dataset(out: str | os.PathLike, frame: str = "records") -> Any:
    """One frame of an exported dataset as a ``pyarrow.dataset.Dataset``.

    >>> _ = poolscope.fleet("sample_data/", workers=1).export("out/")
    >>> open_dataset("out", "wakes").to_table().to_pandas().groupby("pool_id").size()
    pool_id
    pool.alpha      128
    pool.bravo      132
    pool.charlie    154
    dtype: int64
    """
    import pyarrow.dataset as ds

    name = frame.removesuffix("_df")
    if name not in FRAMES:
        raise InvalidInputError(f"frame must be one of {', '.join(FRAMES)}, not {frame!r}")
    return ds.dataset(Path(out) / name, format="parquet", partitioning=partitioning(), schema=schema(name))


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as strings, no pandas metadata."""
    fields = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema]
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def file_schema(name: str) -> pa.Schema:
    """The schema of a frame's files (the frame's columns but ``pool_id``)."""
    empty = empty_frame(f"{name}_df", source=False).drop(columns="pool_id")
    return _plain(pa.Table.from_pandas(empty, preserve_index=False)).schema


def schema(name: str) -> pa.Schema:
    """The dataset's schema: the files' columns, then ``source`` and ``pool_id``."""
    return pa.schema(list(file_schema(name)) + list(PARTITIONING_SCHEMA))


def partition_dir(out: Path, name: str, source: str, pool_id: str) -> Path:
    return out / name / f"source={quote(source, safe='')}" / f"pool_id={quote(pool_id, safe='')}"


def _no_link_below(out: Path, path: Path) -> Path:
    """``path`` (inside the dataset ``out``) when no folder on the way from ``out``
    to it, nor it, is a symlink; else an :class:`~poolscope.errors.OutputError`:
    a partition is never written or deleted through a link (a folder of the
    dataset replaced by a link to elsewhere would have poolscope write there,
    or delete what is there)."""
    from ..errors import OutputError

    current = out
    for part in path.relative_to(out).parts:
        current = current / part
        if os.path.islink(current):
            raise OutputError(
                "is a symlink inside the dataset: poolscope does not write or delete through links", path=current
            )
    return path


def _signature(path: str) -> list:
    """The file's :func:`~poolscope.source.change_mark` (its and its ``-wal``'s
    inode, size, modification and change times: records committed by a live
    writer may be only in the WAL, and a writer may set the modification time
    back), as the manifest's JSON keeps it."""
    return [None if part is None else list(part) for part in change_mark(path)]


def fingerprints(conn: sqlite3.Connection, upto: int | None) -> dict[str, list[int]]:
    """Per pool: record count, last seq and payload bytes (with ``seq <= upto``)."""
    sql = (
        "SELECT CAST(pool_id AS BLOB), count(*), max(seq), total(length(CAST(payload_json AS BLOB))) "
        "FROM agent_pool_records "
        "WHERE typeof(seq) = 'integer' AND typeof(pool_id) = 'text'"
    )
    args: tuple = ()
    if upto is not None:
        sql += " AND seq <= ?"
        args = (upto,)
    out = {}
    for raw, count, last, size in conn.execute(sql + " GROUP BY pool_id COLLATE BINARY", args):
        pool_id = pool_id_text("text", raw)
        if pool_id is not None:  # (a text id that is not UTF-8 is no pool's)
            out[pool_id] = [count, last, int(size)]
    return out


def _write(table: pa.Table, folder: Path) -> Path:
    import pyarrow.parquet as pq

    from .. import output

    target = folder / FILE
    # a temporary file, then a rename, no symlink followed; Python opens any name (pyarrow wants UTF-8 names)
    with output.writing(target, force=True) as temporary, open(temporary, "wb") as handle:
        pq.write_table(table, handle)
    return target


def export_database(
    path: str, timeout: float, out: str, upto: int | None, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Write the partitions of one database whose pool changed since ``previous``
    (its manifest entry); return its new manifest entry and what was written."""
    from ..cache import read_only
    from ..history import Database

    signature = _signature(path)
    if previous is not None and previous.get("signature") == signature:
        return {"entry": previous, "written": [], "unchanged": len(previous["pools"])}
    conn = connect_readonly(path, timeout=timeout)
    try:
        with sqlite_errors(path):
            now = fingerprints(conn, upto)
    finally:
        conn.close()
    known = {} if previous is None else previous.get("pools", {})
    changed = [pool_id for pool_id, fingerprint in now.items() if known.get(pool_id) != fingerprint]
    written: list[str] = []
    if changed:
        folder = Path(out)
        db = Database(path, timeout=timeout, progress=False, cache=read_only())
        try:
            for pool_id in sorted(changed):
                history = db.pool(pool_id)
                for name in FRAMES:
                    frame: pd.DataFrame = getattr(history, f"{name}_df")(upto).drop(columns="pool_id")
                    table = _plain(pa.Table.from_pandas(frame, preserve_index=False)).cast(file_schema(name))
                    target = _no_link_below(folder, partition_dir(folder, name, path, pool_id))
                    written.append(str(_write(table, target)))
                # forget the pool's index: a large database's pools are not all held at once
                db._forget(pool_id)
        finally:
            db.close()
    return {
        "entry": {"signature": signature, "pools": now},
        "written": written,
        "unchanged": len(now) - len(changed),
    }


def _read_manifest(out: Path, upto: int | None) -> dict[str, Any]:
    from ..source import open_regular

    try:
        with open_regular(out / MANIFEST) as handle:  # a FIFO there is refused, not waited on
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION or manifest.get("upto") != upto:
        return {}
    sources = manifest.get("sources")
    if not isinstance(sources, dict):
        return {}
    # an entry of another shape (edited by hand?) is dropped: its partitions are written again
    return {
        source: entry
        for source, entry in sources.items()
        if isinstance(entry, dict) and isinstance(entry.get("pools"), dict)
    }


def export(fleet: Fleet, out: str | os.PathLike, *, format: str = "parquet", upto: int | None = None) -> dict[str, Any]:
    """Write (or bring up to date) the fleet's hive-partitioned dataset in ``out``.

    Returns what was done: ``path``, ``written`` (files), ``partitions``
    (rewritten), ``unchanged`` (partitions left as they were), ``removed``
    (partitions of pools no longer in the fleet) and ``errors`` (sources that
    could not be read, whose partitions were kept).  The databases are only read.

    >>> hosts = poolscope.fleet("sample_data/", workers=1)
    >>> done = hosts.export("out/")
    >>> done["partitions"], len(done["written"])   # three pools, a file for each of four frames
    (3, 12)
    >>> done = hosts.export("out/")   # again: nothing changed, nothing rewritten
    >>> done["partitions"], len(done["written"]), done["unchanged"]
    (0, 0, 3)
    """
    from .discover import SourceError

    upto = upto_argument(upto)
    if format != "parquet":
        raise InvalidInputError(f"a fleet dataset is written as parquet, not {format!r}")
    from .. import output

    folder = Path(out)
    output.make_folder(output.target(folder))  # an OutputError for a file or a symlink there or on the way
    old = _read_manifest(folder, upto)
    bar = fleet._bar("exporting")
    new: dict[str, Any] = {}
    written: list[str] = []
    unchanged = 0
    failed: list[str] = []
    try:
        jobs = {path: old.get(path) for path in fleet.databases}
        results = fleet._workers.map(_export_one, fleet.databases, (fleet.timeout, str(folder), upto, jobs), bar=bar)
        for path, ok, result in results:
            if ok:
                new[path] = result["entry"]
                written.extend(result["written"])
                unchanged += result["unchanged"]
                fleet._read_errors.pop(path, None)
            else:
                fleet._read_errors[path] = SourceError(path, result)
                failed.append(path)
                if path in old:
                    new[path] = old[path]  # keep what was exported of it
    finally:
        if bar is not None:
            bar.close()
    for error in fleet._found_errors:
        if error.source in old:
            new[error.source] = old[error.source]
            failed.append(error.source)
    removed = 0
    for source, entry in old.items():
        gone = set(entry.get("pools", {})) - set(new.get(source, {}).get("pools", {}))
        for pool_id in gone:
            for name in FRAMES:
                target = _no_link_below(folder, partition_dir(folder, name, source, pool_id))
                if target.is_dir():
                    shutil.rmtree(target)
                    parent = target.parent
                    if parent.is_dir() and not any(parent.iterdir()):
                        parent.rmdir()
            removed += 1
    manifest = {"version": VERSION, "upto": upto, "sources": new}
    with output.writing(folder / MANIFEST, force=True) as temporary:
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return {
        "path": str(folder),
        "written": written,
        "partitions": len(written) // len(FRAMES),
        "unchanged": unchanged,
        "removed": removed,
        "errors": failed,
    }


def _export_one(path: str, timeout: float, out: str, upto: int | None, jobs: dict[str, Any]) -> dict[str, Any]:
    return export_database(path, timeout, out, upto, jobs.get(path))
