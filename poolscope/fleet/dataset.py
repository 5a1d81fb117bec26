"""A fleet's frames as one hive-partitioned Parquet dataset.

:func:`export` (``Fleet.export``, ``poolscope fleet export``) writes::

    OUT/records/source=<source>/pool_id=<pool>/part-0.parquet
    OUT/members/source=<source>/pool_id=<pool>/part-0.parquet
    OUT/messages/...
    OUT/wakes/...
    OUT/_poolscope.json        what was written, from which state of each pool

one folder per frame, one file per (database, pool) partition.  Each file
holds the frame's columns, ``source`` (as the frames show it:
:func:`~poolscope.fleet.stack.source_label`) and ``pool_id`` included, with
plain types every reader knows (categoricals as strings, cursors as nullable
int64, lists as lists of strings) and one schema per frame.  The folder names
are the partition values URI-encoded, as Hive, pyarrow, DuckDB, Polars and
Spark expect -- except that no file system takes a name of more than 255
bytes, and a source path or pool id (the SDK allows 512 bytes) can encode to
more: a folder name that would pass :data:`FOLDER_NAME_MAX` bytes is a
readable prefix of the value and ``~`` with 16 hex digits of its SHA-256
(``pool_id=tenant-%C3%A9…~3f9a2c…``).  The files' own ``source`` and
``pool_id`` are always the true values, so read them with hive partitioning
off (the default of pyarrow's ``ds.dataset``, and :func:`open_dataset`)::

    >>> _ = poolscope.fleet("sample_data/", workers=1).export("out/")
    >>> import pyarrow.dataset as ds
    >>> ds.dataset("out/records").to_table().num_rows
    3602
    >>> import duckdb
    >>> duckdb.sql("SELECT pool_id, count(*) FROM read_parquet('out/records/*/*/*.parquet', "
    ...            "hive_partitioning = false) GROUP BY pool_id ORDER BY pool_id").fetchall()
    [('pool.alpha', 1201), ('pool.bravo', 1200), ('pool.charlie', 1201)]

(With hive partitioning on, a reader takes ``source`` and ``pool_id`` from
the folder names: the same values but for a shortened one; declare them as
strings -- :func:`partitioning` here, ``hive_types_autocast = false`` in
DuckDB -- or a pool id such as ``123`` comes back as a number.)

Exporting again into the same folder rewrites only the partitions whose pool
changed since (a database whose file is unchanged is not even opened; in one
that changed, a pool is rewritten when its record count, last seq or payload
bytes differ; with another ``upto``, or without a manifest of this format,
everything), removes the files of partitions of pools and databases no longer
in the fleet (whatever an earlier export wrote there), and leaves every other
file alone.  Databases that cannot be read keep their earlier partitions.
Each file is written beside its place and renamed into it, so a reader never
sees half a file; every target of a database is checked before the first of
its files is written, and a database whose partitions cannot all be written
is reported (``failed``) with an :class:`~poolscope.errors.OutputError`, its
newly added partitions taken back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from ..arguments import path_argument, upto_argument
from ..errors import InvalidInputError, OutputError
from ..source import change_mark, connect_readonly, pool_id_text
from ..sqlite_errors import sqlite_errors
from .stack import FRAMES, empty_frame, frame_name, source_label

if TYPE_CHECKING:  # pragma: no cover
    from . import Fleet

MANIFEST = "_poolscope.json"
#: The manifest's format; a different one (or another ``upto``) rewrites everything.
#: 2: the files hold ``source`` and ``pool_id``; long values make bounded folder names.
VERSION = 2
FILE = "part-0.parquet"
#: Both partition columns are strings.
PARTITIONING_SCHEMA = pa.schema([("source", pa.string()), ("pool_id", pa.string())])
#: The longest partition folder name (bytes); a longer one is shortened (see the module).
FOLDER_NAME_MAX = 200
#: How a shortened folder value ends: ``~`` and 16 hex digits of the value's SHA-256.
_SHORTENED = re.compile(r"~[0-9a-f]{16}\Z")


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
    """One frame of an exported dataset as a ``pyarrow.dataset.Dataset``
    (``source`` and ``pool_id`` as the files hold them: the true values).

    >>> _ = poolscope.fleet("sample_data/", workers=1).export("out/")
    >>> open_dataset("out", "wakes").to_table().to_pandas().groupby("pool_id").size()
    pool_id
    pool.alpha      128
    pool.bravo      132
    pool.charlie    154
    dtype: int64

    The export of a fleet with no readable database is an empty dataset of
    the frame's schema; a folder holding no export is an error.

    >>> open_dataset("sample_data", "wakes")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: file sample_data: holds no exported fleet dataset (no wakes/ folder, no _poolscope.json)
    """
    import pyarrow.dataset as ds

    name = frame_name(frame).removesuffix("_df")
    folder = path_argument(out, "out")
    if not (folder / name).is_dir():
        if (folder / MANIFEST).is_file():  # an export of nothing (or of an earlier version, with no frame folder)
            return ds.dataset([], format="parquet", schema=schema(name))
        raise InvalidInputError(
            f"holds no exported fleet dataset (no {name}/ folder, no {MANIFEST})", path=os.fspath(folder)
        )
    return ds.dataset(folder / name, format="parquet", schema=schema(name))


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as strings, no pandas metadata."""
    fields = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema]
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def file_schema(name: str) -> pa.Schema:
    """The schema of a frame's files: the frame's columns but ``pool_id``, then ``source`` and ``pool_id``."""
    empty = empty_frame(f"{name}_df", source=False).drop(columns="pool_id")
    return pa.schema(list(_plain(pa.Table.from_pandas(empty, preserve_index=False)).schema) + list(PARTITIONING_SCHEMA))


def schema(name: str) -> pa.Schema:
    """The dataset's schema (the files'): the frame's columns, then ``source`` and ``pool_id``."""
    return file_schema(name)


def folder_value(value: str) -> str:
    """``value`` as a partition folder shows it: URI-encoded, or, when the
    folder name would pass :data:`FOLDER_NAME_MAX` bytes (or the encoded value
    ends as a shortened one does), a prefix of it and ``~`` with 16 hex
    digits of its SHA-256 -- no two values share a folder.

    >>> folder_value("pool.alpha"), folder_value("a b/c")
    ('pool.alpha', 'a%20b%2Fc')
    >>> short = folder_value("tenant-" + "é" * 100)
    >>> len(short) <= FOLDER_NAME_MAX - len("pool_id="), short[:25], short[-17:-16]
    (True, 'tenant-%C3%A9%C3%A9%C3%A9', '~')
    """
    encoded = quote(value, safe="")
    room = FOLDER_NAME_MAX - len("pool_id=")  # (the longer of the two keys)
    if len(encoded) <= room and not _SHORTENED.search(encoded):
        return encoded
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    room -= 1 + len(digest)
    prefix: list[str] = []
    used = 0
    for char in value:
        piece = quote(char, safe="")
        if used + len(piece) > room:
            break
        prefix.append(piece)
        used += len(piece)
    return f"{''.join(prefix)}~{digest}"


def partition_dir(out: Path, name: str, source: str, pool_id: str) -> Path:
    """The folder of one partition; ``source`` as the frames show it (:func:`~poolscope.fleet.stack.source_label`)."""
    return out / name / f"source={folder_value(source)}" / f"pool_id={folder_value(pool_id)}"


def _no_link_below(out: Path, path: Path) -> Path:
    """``path`` (inside the dataset ``out``) when no folder on the way from ``out``
    to it, nor it, is a symlink; else an :class:`~poolscope.errors.OutputError`:
    a partition is never written or deleted through a link (a folder of the
    dataset replaced by a link to elsewhere would have poolscope write there,
    or delete what is there)."""
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


def _table(frame: pd.DataFrame, name: str, source: str, pool_id: str) -> pa.Table:
    """A pool's frame as its partition's file holds it (``source``, ``pool_id`` last, as strings)."""
    table = _plain(pa.Table.from_pandas(frame.drop(columns="pool_id"), preserve_index=False))
    rows = table.num_rows
    table = table.append_column("source", pa.array([source] * rows, pa.string()))
    table = table.append_column("pool_id", pa.array([pool_id] * rows, pa.string()))
    return table.cast(file_schema(name))


def _take_back(out: Path, folder: Path) -> bool:
    """Remove a partition's file (never a link, nor through one), then its folder
    and its source's folder if nothing else is left in them; whether there was a file."""
    target = folder / FILE
    if not os.path.lexists(target):
        return False
    _no_link_below(out, target)
    try:
        target.unlink()
        for emptied in (folder, folder.parent):
            if any(emptied.iterdir()):
                break
            emptied.rmdir()
    except OSError as error:
        raise OutputError(f"cannot remove an old partition ({error.strerror or error})", path=target) from None
    return True


def export_database(
    path: str, timeout: float, out: str, upto: int | None, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Write the partitions of one database whose pool changed since ``previous``
    (its manifest entry); return its new manifest entry and what was written.

    Every target is checked before the first file is written; when one
    cannot be written (an :class:`~poolscope.errors.OutputError`) or the
    database fails while being read, the partitions of pools that were not in
    ``previous`` that were written are taken back (no file the manifest does
    not list is left), and the error is raised."""
    from .. import output
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
    changed = sorted(pool_id for pool_id, fingerprint in now.items() if known.get(pool_id) != fingerprint)
    label = source_label(path)
    folder = Path(out)
    targets = {pool_id: [partition_dir(folder, name, label, pool_id) for name in FRAMES] for pool_id in changed}
    for folders in targets.values():  # names, links and what is there, before anything is written
        for target in folders:
            output.check_file(output.target(_no_link_below(folder, target / FILE)), force=True)
    written: list[str] = []
    if changed:
        db = Database(path, timeout=timeout, progress=False, cache=read_only())
        try:
            for pool_id in changed:
                history = db.pool(pool_id)
                for name, target in zip(FRAMES, targets[pool_id], strict=True):
                    frame: pd.DataFrame = getattr(history, f"{name}_df")(upto)
                    written.append(str(_write(_table(frame, name, label, pool_id), target)))
                # forget the pool's index: a large database's pools are not all held at once
                db._forget(pool_id)
        except BaseException:
            for pool_id in changed:
                if pool_id not in known:
                    for target in targets[pool_id]:
                        try:
                            _take_back(folder, target)
                        except OutputError:
                            pass  # (the first error is the one to report)
            raise
        finally:
            db.close()
    return {
        "entry": {"signature": signature, "pools": now},
        "written": written,
        "unchanged": len(now) - len(changed),
    }


def _read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of an earlier export, as JSON (``{}`` for none, or one that cannot be read)."""
    from ..source import open_regular

    try:
        with open_regular(out / MANIFEST) as handle:  # a FIFO there is refused, not waited on
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _reusable(manifest: dict[str, Any], upto: int | None) -> dict[str, Any]:
    """The entries (by source label) of a manifest of this format and ``upto``:
    what is known to be written; else nothing is (everything is written again)."""
    if manifest.get("version") != VERSION or manifest.get("upto") != upto:
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


def _remove_stale(folder: Path, keep: set[tuple[str, str]], keep_sources: set[str]) -> int:
    """Remove the file of every partition in the dataset (``source=…/pool_id=…``,
    of any earlier export, listed in its manifest or not) that is not kept:
    ``keep`` holds (source folder, pool folder) names, ``keep_sources`` the
    source folders kept whole (databases that could not be exported).  Other
    files are left; a partition reached through a link is an OutputError.
    Returns how many (source, pool) partitions were removed."""
    removed: set[tuple[str, str]] = set()
    for name in FRAMES:
        frame_folder = folder / name
        if os.path.islink(frame_folder) or not frame_folder.is_dir():
            continue  # (nothing is written or deleted through a linked frame folder)
        for source in sorted(os.listdir(frame_folder)):
            if not source.startswith("source=") or source in keep_sources:
                continue
            source_folder = frame_folder / source
            if not source_folder.is_dir():
                continue
            stale = [
                pool
                for pool in sorted(os.listdir(source_folder))
                if pool.startswith("pool_id=") and (source, pool) not in keep
            ]
            for pool in stale:  # (through a linked folder: an OutputError)
                if _take_back(folder, source_folder / pool):
                    removed.add((source, pool))
    return len(removed)


def export(fleet: Fleet, out: str | os.PathLike, *, format: str = "parquet", upto: int | None = None) -> dict[str, Any]:
    """Write (or bring up to date) the fleet's hive-partitioned dataset in ``out``.

    Returns what was done: ``path``, ``written`` (files), ``partitions``
    (rewritten), ``unchanged`` (partitions left as they were), ``removed``
    (partitions of pools no longer in the fleet), ``errors`` (sources that
    could not be read, whose partitions were kept) and ``failed`` (sources
    whose partitions could not be written, as :class:`SourceError` pairs
    holding an :class:`~poolscope.errors.OutputError`; their earlier
    partitions kept).  The databases are only read.

    >>> hosts = poolscope.fleet("sample_data/", workers=1)
    >>> done = hosts.export("out/")
    >>> done["partitions"], len(done["written"])   # three pools, a file for each of four frames
    (3, 12)
    >>> done = hosts.export("out/")   # again: nothing changed, nothing rewritten
    >>> done["partitions"], len(done["written"]), done["unchanged"]
    (0, 0, 3)
    """
    from .discover import SourceError

    out = path_argument(out, "out")
    upto = upto_argument(upto)
    if format != "parquet":
        raise InvalidInputError(f"a fleet dataset is written as parquet, not {format!r}")
    from .. import output

    folder = Path(out)
    output.make_folder(output.target(folder))  # an OutputError for a file or a symlink there or on the way
    for name in FRAMES:  # (a reader globbing a frame's files finds its folder, even with no file)
        if not os.path.islink(folder / name):
            output.make_folder(folder / name)
    old = _reusable(_read_manifest(folder), upto)
    labels = {path: source_label(path) for path in fleet.databases}
    bar = fleet._bar("exporting")
    new: dict[str, Any] = {}
    written: list[str] = []
    unchanged = 0
    failed: list[str] = []
    refused: list[SourceError] = []
    try:
        jobs = {path: old.get(labels[path]) for path in fleet.databases}
        results = fleet._workers.map(_export_one, fleet.databases, (fleet.timeout, str(folder), upto, jobs), bar=bar)
        for path, ok, result in results:
            label = labels[path]
            if ok:
                new[label] = result["entry"]
                written.extend(result["written"])
                unchanged += result["unchanged"]
                fleet._read_errors.pop(path, None)
                continue
            if isinstance(result, OutputError):
                refused.append(SourceError(path, result))
            else:
                fleet._read_errors[path] = SourceError(path, result)
                failed.append(path)
            if label in old:
                new[label] = old[label]  # keep what was exported of it
    finally:
        if bar is not None:
            bar.close()
    kept_whole = {labels[e.source] for e in refused} | {labels[p] for p in failed}
    for error in fleet._found_errors:
        label = source_label(error.source)
        kept_whole.add(label)
        if label in old:
            new[label] = old[label]
            failed.append(error.source)
    keep = {
        (f"source={folder_value(source)}", f"pool_id={folder_value(pool_id)}")
        for source, entry in new.items()
        for pool_id in entry["pools"]
    }
    manifest = {"version": VERSION, "upto": upto, "sources": new}
    with output.writing(folder / MANIFEST, force=True) as temporary:
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    # what is written is listed first: a stale partition that cannot be removed (through a link,
    # an OutputError) is tried again by the next export
    removed = _remove_stale(folder, keep, {f"source={folder_value(source)}" for source in kept_whole})
    return {
        "path": str(folder),
        "written": written,
        "partitions": len(written) // len(FRAMES),
        "unchanged": unchanged,
        "removed": removed,
        "errors": failed,
        "failed": refused,
    }


def _export_one(path: str, timeout: float, out: str, upto: int | None, jobs: dict[str, Any]) -> dict[str, Any]:
    return export_database(path, timeout, out, upto, jobs.get(path))
