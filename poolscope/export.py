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
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import output
from .arguments import choice_argument, names_argument

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database

FORMATS = ("parquet", "csv", "json")
FRAMES = ("records", "members", "messages", "wakes")


#: First characters that make a spreadsheet read a cell as a formula (OWASP's
#: "CSV injection" list): such a text cell is written with a leading ``'``.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``
    (OWASP's recommendation for CSV injection); anything else unchanged.

    >>> neutralise("=HYPERLINK('http://x')"), neutralise("-1+2"), neutralise("run.a")
    ("'=HYPERLINK('http://x')", "'-1+2", 'run.a')
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as CSV should hold it: list columns as JSON text
    (``["a","b"]``) so that they stay readable and parseable, and every text
    cell that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab,
    carriage return) prefixed with ``'`` so that no spreadsheet runs it
    (:func:`neutralise`).  Numbers are left as numbers; Parquet and JSON
    exports are not changed this way.

    >>> csv_ready(pd.DataFrame({"x": [["a", "b"]]}))["x"][0]
    '["a", "b"]'
    >>> csv_ready(pd.DataFrame({"run_id": ["=1+1", "run.b"]}))["run_id"].tolist()
    ["'=1+1", 'run.b']
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
                else neutralise(v)
                for v in out[column]
            ]
        elif isinstance(dtype, pd.CategoricalDtype):
            categories = dtype.categories
            if categories.dtype == object or pd.api.types.is_string_dtype(categories.dtype):
                out[column] = out[column].cat.rename_categories([neutralise(c) for c in categories])
        elif pd.api.types.is_string_dtype(dtype):
            out[column] = out[column].map(neutralise, na_action="ignore")
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
    with open(path, "wb") as handle:  # Python opens any name (pyarrow wants UTF-8 names)
        pq.write_table(table, handle)


def frame_for(db: Database, name: str, pools: list[str] | None = None, upto: int | None = None) -> pd.DataFrame:
    """One frame (``records``, ``members``, ``messages`` or ``wakes``) of all or some pools."""
    from . import frames
    from .fleet.stack import frame_name

    build = getattr(frames, frame_name(name))  # an InvalidInputError for a name that is no frame
    if pools:
        parts = [build(db.pool(p), upto) for p in pools]
        return frames._restore(pd.concat(parts, ignore_index=True), parts[0]) if parts else build(db, upto)
    return build(db, upto)


def export(
    db: Database,
    out: str | os.PathLike,
    *,
    format: str = "parquet",
    pools: str | Iterable[str] | None = None,
    upto: int | None = None,
    force: bool = False,
) -> list[Path]:
    """Write ``records``, ``members``, ``messages``, ``wakes`` and ``summary`` to the folder ``out``.

    Returns the paths written.  ``format`` is ``parquet``, ``csv`` or ``json``
    (JSON lines); ``pools`` is one pool id or several (default: every pool).  The database is only read.  The folder and its missing
    parents are created; an existing file is overwritten only with ``force``,
    and a symlink is never written through (see :mod:`poolscope.output`).
    CSV cells that a spreadsheet would run as formulas are neutralised
    (:func:`csv_ready`); Parquet and JSON keep every value exactly.
    """
    format = choice_argument(format, "format", FORMATS)
    # one pool id or several; a pool named twice is exported once; none named (None or empty): every pool
    selected = list(dict.fromkeys(names_argument(pools, "pools", "pool id") or ())) or None
    folder = output.target(out)
    names = [f"{name}.{'jsonl' if format == 'json' else format}" for name in (*FRAMES, "summary")]
    if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
        output.make_folder(folder)  # raises: a link, or not a folder
    for name in names:  # refuse before any work is done
        output.check_file(folder / name, force=force)
    # every pool loaded first: each frame (records_df too, which could read the file itself) and the
    # summary come from one index per pool, so one export is of one head even while a writer appends
    for pool_id in selected or db.pool_ids:
        db.pool(pool_id).load()
    tables = {name: frame_for(db, name, selected, upto) for name in FRAMES}
    summary = db.summary()
    if selected:
        summary = summary[summary["pool_id"].isin(selected)].reset_index(drop=True)
    tables["summary"] = summary
    written = []
    for frame, file_name in zip(tables.values(), names):
        path = folder / file_name
        with output.writing(path, force=force) as tmp:
            if format == "parquet":
                to_parquet(frame, tmp)
            elif format == "csv":
                # RFC 4180 line ends: a cell holding a carriage return is quoted (with \n alone it is not)
                csv_ready(frame).to_csv(tmp, index=False, lineterminator="\r\n")
            else:
                frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        written.append(path)
    return written
