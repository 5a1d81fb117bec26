"""Stacking per-database frames into one fleet frame, and the typed empty frames.

A fleet frame is the per-database frames one after the other (databases in
fleet order, pools in each database's order) with a ``source`` column (the
database's path as given) first, and otherwise exactly the columns and dtypes
of :data:`poolscope.frames.COLUMNS`.  Categorical columns whose categories are
the values found (``pool_id``, ``run_id``, ...) get the sorted union of every
database's categories, as a single database's frame has.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .. import frames

#: Categorical columns with a fixed list of categories, per frame.
FIXED = frames.FIXED_CATEGORIES
FRAMES = ("records", "members", "messages", "wakes")
TEXT_INDEX = frames.TEXT_INDEX
text_categories = frames.text_categories
dtype_of = frames.dtype_of


def same_categories_dtype(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories of every categorical column held as pandas holds strings (an
    empty frame's categories are ``object`` otherwise, which Dask and
    ``union_categoricals`` refuse to combine with ``str`` ones)."""
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype != TEXT_INDEX:
            frame[column] = pd.Categorical.from_codes(
                frame[column].cat.codes.to_numpy(), dtype=text_categories(list(dtype.categories))
            )
    return frame


def frame_name(frame: str) -> str:
    """``records`` or ``records_df`` -> ``records_df`` (checked)."""
    from ..arguments import shown_value
    from ..errors import InvalidInputError

    if not isinstance(frame, str):
        raise InvalidInputError(f"frame must be one of {', '.join(FRAMES)}, not {shown_value(frame)}")
    name = frame if frame.endswith("_df") else f"{frame}_df"
    if name not in frames.COLUMNS:
        raise InvalidInputError(f"frame must be one of {', '.join(FRAMES)}, not {frame!r}")
    return name


def empty_frame(name: str, source: bool = True) -> pd.DataFrame:
    """A fleet frame with no row: the documented columns and dtypes, ``source`` first."""
    return frames.empty_frame(name, source=source)


def source_label(source: str) -> str:
    """A source as the frames, pages and datasets show it: as given, except
    that a file name that is not UTF-8 (whose bytes Python keeps as lone
    surrogates, which no text column, page or JSON can hold) shows those bytes
    escaped (``\\xe9``); so that no two sources share a label, a backslash
    in a name shows doubled.  :meth:`Fleet.pool` and
    :meth:`Fleet.database` take either form.

    >>> source_label("hosts/a.db"), source_label("hosts/caf\\udce9.db"), source_label("hosts/caf\\\\xe9.db")
    ('hosts/a.db', 'hosts/caf\\\\xe9.db', 'hosts/caf\\\\\\\\xe9.db')
    """
    if "\\" not in source:
        if source.isascii():
            return source
        try:
            source.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return source
    # a literal backslash doubled, a byte that is not UTF-8 as \\xHH: read back unambiguously
    return os.fsencode(source).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def source_labels(sources: list[str]) -> list[str]:
    """:func:`source_label` of each source."""
    return [source_label(s) for s in sources]


def source_column(sources: list[str], codes: list[int], sizes: list[int]) -> pd.Categorical:
    """``sources[codes[i]]`` repeated ``sizes[i]`` times, as a Categorical of every source (labelled)."""
    repeated = np.repeat(np.asarray(codes, dtype=np.int32), sizes) if sizes else np.zeros(0, np.int32)
    return pd.Categorical.from_codes(repeated, categories=source_labels(sources))


def stack(name: str, parts: list[pd.DataFrame], codes: list[int], sources: list[str]) -> pd.DataFrame:
    """Stack per-database frames (``parts[i]`` from ``sources[codes[i]]``)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return empty_frame(name)
    sizes = [len(p) for p in parts]
    columns: dict[str, object] = {"source": source_column(sources, codes, sizes)}
    fixed = FIXED[name]
    for column in frames.COLUMNS[name]:
        pieces = [p[column] for p in parts]
        if column in fixed and all(s.dtype == fixed[column] for s in pieces):
            codes_ = np.concatenate([s.cat.codes.to_numpy() for s in pieces])
            columns[column] = pd.Categorical.from_codes(codes_, dtype=fixed[column])
        elif isinstance(pieces[0].dtype, pd.CategoricalDtype):
            columns[column] = union_categoricals(
                [
                    s if s.cat.categories.dtype == TEXT_INDEX else s.astype(text_categories(list(s.cat.categories)))
                    for s in pieces
                ],
                sort_categories=True,
            )
        else:
            columns[column] = pd.concat(pieces, ignore_index=True)
    return pd.DataFrame(columns)
