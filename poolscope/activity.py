"""Activity per window of cursors, and a summary of every pool in a database.

There is no wall-clock time in the records: the x axis is the cursor (seq).
:func:`activity` counts, per window of ``window`` cursors, the records by
kind and the message and wake status transitions (each ``run_message`` or
``wake`` record is a transition to its status), as a tidy frame ready to plot.

Example::

    >>> table = activity(pool, window=400, upto=1200).pivot_table(
    ...     index="window_start", columns="name", values="count", aggfunc="sum", fill_value=0, observed=True)
    >>> table[["member_joined", "failed", "timed_out"]]
    name          member_joined  failed  timed_out
    window_start
    1                        21      35         15
    401                      11      20         18
    801                      13      15         15
    >>> summary(db)[["pool_id", "head", "members", "messages", "wakes"]]
            pool_id  head  members  messages  wakes
    0    pool.alpha  1201        9       442    128
    1    pool.bravo  1200       18       437    132
    2  pool.charlie  1201       11       450    154
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import wire
from .arguments import count_argument, upto_argument, window_argument
from .fold import DAMAGED
from .index import NAMESPACE_KIND, STATUS_NAMES, gc_paused

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database, PoolHistory

SERIES_DTYPE = pd.CategoricalDtype(["record", "message", "wake"])
NAME_DTYPE = pd.CategoricalDtype(
    list(dict.fromkeys(list(wire.KINDS) + ["damaged"] + list(wire.MESSAGE_STATUSES) + list(wire.WAKE_STATUSES)))
)
NAME_CODE = {name: code for code, name in enumerate(NAME_DTYPE.categories)}


def default_window(head: int, bins: int = 60) -> int:
    """A window size giving about ``bins`` windows over ``head`` cursors.

    >>> default_window(6000)
    100
    """
    return max(1, int(np.ceil(max(head, 1) / bins)))


@gc_paused()
def activity(
    history: PoolHistory, window: int | None = None, *, upto: int | None = None, bins: int = 60
) -> pd.DataFrame:
    """Counts per window of cursors: columns ``pool_id``, ``window_start``,
    ``window_end`` (inclusive), ``series`` (record / message / wake), ``name``
    (a kind or a status) and ``count``; windows with no event of a name are omitted.

    >>> activity(pool, window=50).head()
          pool_id  window_start  window_end  series           name  count
    0  pool.alpha             1          50  record    pool_opened      1
    1  pool.alpha             1          50  record   pool_created      1
    2  pool.alpha             1          50  record  member_joined      4
    3  pool.alpha             1          50  record    run_message     34
    4  pool.alpha             1          50  record           wake     10
    """
    upto = upto_argument(upto)
    bins = count_argument(bins, "bins")
    window = window_argument(window)  # a window wider than any log is one window (the arithmetic stays in int64)
    index = history.index
    n = index.position(upto) if upto is not None else len(index)
    arrays = index.arrays()
    seqs = arrays["seq"][:n]
    kinds = arrays["kind"][:n]
    if window is None:
        window = default_window(int(seqs[-1]) if n else 0, bins)
    window = max(1, int(window))
    bucket = (seqs - 1) // window
    status = index.status_codes()[:n]
    names = np.where(kinds == DAMAGED, len(wire.KINDS), kinds).astype(np.int16)
    parts = [pd.DataFrame({"bucket": bucket, "series": 0, "name": names})]
    for series, namespace in ((1, "messages"), (2, "wakes")):
        positions = np.flatnonzero(kinds == NAMESPACE_KIND[namespace])
        # the index's status code of each record -> its status's code in NAME_DTYPE
        name_of_status = np.array([NAME_CODE[s] for s in STATUS_NAMES[namespace]], dtype=np.int16)
        parts.append(
            pd.DataFrame({"bucket": bucket[positions], "series": series, "name": name_of_status[status[positions]]})
        )
    frame = pd.concat(parts, ignore_index=True)
    counts = frame.groupby(["bucket", "series", "name"], sort=True).size().reset_index(name="count")
    return pd.DataFrame(
        {
            "pool_id": pd.Categorical([history.pool_id] * len(counts)),
            "window_start": (counts["bucket"].to_numpy() * window + 1).astype(np.int64),
            "window_end": ((counts["bucket"].to_numpy() + 1) * window).astype(np.int64),
            "series": pd.Categorical.from_codes(counts["series"].to_numpy(), dtype=SERIES_DTYPE),
            "name": pd.Categorical.from_codes(counts["name"].to_numpy(), dtype=NAME_DTYPE),
            "count": counts["count"].to_numpy(dtype=np.int64),
        }
    )


@gc_paused()
def summary(db: Database) -> pd.DataFrame:
    """One row per pool: ``head``, ``records``, ``damaged``, ``members`` now,
    ``messages`` and ``wakes`` now, and messages/wakes by *current status*: the
    status of each one's latest record (columns ``messages_<status>``,
    ``wakes_<status>``; :meth:`PoolIndex.status_counts
    <poolscope.index.PoolIndex.status_counts>` counts records by status).

    >>> summary(db)[["pool_id", "head", "members"]]
            pool_id  head  members
    0    pool.alpha  1201        9
    1    pool.bravo  1200       18
    2  pool.charlie  1201       11
    """
    rows = []
    for history in db.pools():
        index = history.index
        head = index.head
        row: dict = {"pool_id": history.pool_id, "head": head, "records": len(index), "damaged": len(index.problems)}
        row["members"] = index.count_live("members", head) if head else 0
        for namespace in ("messages", "wakes"):
            current = index.current_status_counts(namespace, head)
            row[namespace] = sum(current.values())
            row.update({f"{namespace}_{status}": count for status, count in current.items()})
        rows.append(row)
    columns = ["pool_id", "head", "records", "damaged", "members", "messages"]
    columns += [f"messages_{s}" for s in wire.MESSAGE_STATUSES] + ["wakes"] + [f"wakes_{s}" for s in wire.WAKE_STATUSES]
    return pd.DataFrame(rows, columns=columns)
