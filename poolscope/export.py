"""Export frames and snapshots for people outside notebooks.

The frames are ordinary DataFrames, so ``df.to_parquet()``, ``df.to_csv()``
and ``snapshot.to_json()`` already work; :func:`export` writes the four frames
(and the database summary) of a database into a folder in one call, which is
what ``poolscope export`` runs.

Example::

    >>> with poolscope.open("sample_data/demo.db") as db:
    ...     written = export(db, "out/", format="parquet")
    >>> sorted(path.name for path in written)
    ['members.parquet', 'messages.parquet', 'records.parquet', 'summary.parquet', 'wakes.parquet']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database

FORMATS = ("parquet", "csv", "json")
FRAMES = ("records", "members", "messages", "wakes")


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """List columns as JSON text (``["a","b"]``) so that CSV keeps them readable and parseable.

    >>> csv_ready(pd.DataFrame({"x": [["a", "b"]]}))["x"][0]
    '["a", "b"]'
    """
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.ArrowDtype) and "list" in str(dtype.pyarrow_dtype) or dtype is np.dtype(object):
            out[column] = [
                None
                if v is None or v is pd.NA
                else json.dumps(list(v), ensure_ascii=False)
                if not isinstance(v, str)
                else v
                for v in out[column]
            ]
    return out


def to_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """``frame.to_parquet(path)`` that plain ``pandas.read_parquet`` can read back.

    pandas cannot parse the dtype name it stores for Arrow list columns
    (``list<item: string>[pyarrow]``); this writes them as Parquet lists with
    pandas metadata saying ``object``, so they come back as arrays of strings
    while categoricals, nullable integers and strings keep their dtypes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    if b"pandas" in metadata:
        pandas_meta = json.loads(metadata[b"pandas"])
        for column in pandas_meta.get("columns", []):
            if "list<" in str(column.get("numpy_type", "")):
                column["numpy_type"] = "object"
        metadata[b"pandas"] = json.dumps(pandas_meta).encode()
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)


def frame_for(db: Database, name: str, pools: list[str] | None = None, upto: int | None = None) -> pd.DataFrame:
    """One frame (``records``, ``members``, ``messages`` or ``wakes``) of all or some pools."""
    from . import frames

    build = getattr(frames, f"{name}_df")
    if pools:
        parts = [build(db.pool(p), upto) for p in pools]
        return frames._restore(pd.concat(parts, ignore_index=True), parts[0]) if parts else build(db, upto)
    return build(db, upto)


def export(
    db: Database,
    out: str | os.PathLike,
    *,
    format: str = "parquet",
    pools: list[str] | None = None,
    upto: int | None = None,
) -> list[Path]:
    """Write ``records``, ``members``, ``messages``, ``wakes`` and ``summary`` to the folder ``out``.

    Returns the paths written.  ``format`` is ``parquet``, ``csv`` or ``json``
    (JSON lines).  The database is only read.
    """
    if format not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError("export target exists and is not a folder", path=folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    tables = {name: frame_for(db, name, pools, upto) for name in FRAMES}
    summary = db.summary()
    if pools:
        summary = summary[summary["pool_id"].isin(pools)].reset_index(drop=True)
    tables["summary"] = summary
    for name, frame in tables.items():
        path = folder / f"{name}.{'jsonl' if format == 'json' else format}"
        if format == "parquet":
            to_parquet(frame, path)
        elif format == "csv":
            csv_ready(frame).to_csv(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
        written.append(path)
    return written
