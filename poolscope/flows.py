"""Who messages whom, and how long things take.

* :func:`flows_df` -- sender -> recipient counts of messages by final status,
  by run or by agent: where messages go and where they die;
* :func:`latency_df` -- for every message and wake, the number of cursors
  between the statuses it reached.

The SDK records no wall-clock time: **cursors are the only clock it
records**, so a latency here is a count of records appended to the pool's
log in between (by every run of the pool), not seconds.

Both are computed with numpy from the pool's columnar index and
:mod:`poolscope.relations`.

Example::

    >>> failed = pool.flows_df(by="agent").query("status == 'failed'")
    >>> failed.groupby("sender", observed=True).messages.sum()   # failed messages, by the sender's agent
    sender
    agent.alpha.planner     14
    agent.alpha.reviewer    25
    agent.alpha.worker       6
    Name: messages, dtype: int64
    >>> pool.latency_df().groupby(["from_status", "to_status"], observed=True).cursors.median().head(4)
    from_status  to_status
    accepted     delivered      1.0
    delivered    responded    113.0
                 timed_out    148.0
                 cancelled     91.5
    Name: cursors, dtype: float64
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import wire
from .arguments import choice_argument, upto_argument
from .index import gc_paused
from .relations import relations

if TYPE_CHECKING:  # pragma: no cover
    from .history import PoolHistory

__all__ = ["flows_df", "flow_matrix", "latency_df", "FAILURE_STATUSES", "FLOW_COLUMNS", "LATENCY_COLUMNS"]

_STATUS_NAMES = list(dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES))
_STATUS_CODE = {name: code for code, name in enumerate(_STATUS_NAMES)}
_STATUS_DTYPE = pd.CategoricalDtype(_STATUS_NAMES)

#: Final message statuses counted as failures by :func:`flow_matrix` and the plots.
FAILURE_STATUSES: tuple[str, ...] = ("failed", "timed_out", "expired")

FLOW_COLUMNS: dict[str, str] = {
    "sender": "sending run (by='agent': its agent)",
    "recipient": "a run in the message's delivered_to (by='agent': its agent); missing for a message delivered to nobody",
    "status": "the message's status at `upto`",
    "messages": "how many messages (each recipient of a message counts once)",
}
LATENCY_COLUMNS: dict[str, str] = {
    "kind": "message or wake",
    "id": "message id or wake condition id",
    "run_id": "the sender (messages) or the waiting run (wakes)",
    "agent_id": "that run's agent",
    "from_status": "a status it reached",
    "to_status": "the next status it reached (in cursor order, each status at its first cursor)",
    "from_cursor": "cursor at which from_status was first reached",
    "to_cursor": "cursor at which to_status was first reached",
    "cursors": "to_cursor - from_cursor: records appended in between (cursors are the SDK's only clock)",
}


def _cursor(history: PoolHistory, upto: Any) -> int:
    """``upto`` as the frames take it (:func:`~poolscope.arguments.upto_argument`:
    an integer from 0, ``CursorError`` otherwise), beyond the head the head."""
    upto = upto_argument(upto, path=history.path, pool_id=history.pool_id)
    head = history.index.head
    return head if upto is None else min(upto, head)


def _categorical(codes: np.ndarray, names: list) -> pd.Categorical:
    """Codes into ``names`` (-1: missing) as a Categorical of the names used, sorted."""
    used = np.unique(codes[codes >= 0])
    labels = [names[c] for c in used.tolist()]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    recode = np.full(len(names) + 1, -1, dtype=np.int64)
    recode[used[order]] = np.arange(len(order))
    return pd.Categorical.from_codes(recode[codes], categories=[labels[i] for i in order])


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + count)`` for each pair, vectorized."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(total)


@gc_paused()
def flows_df(history: PoolHistory, upto: int | None = None, by: str = "run") -> pd.DataFrame:
    """Sender -> recipient counts of messages by their status at ``upto``.

    One row per (sender, recipient, status) with the number of messages.
    Each message counts once per run in the ``delivered_to`` of its latest
    receipt (a broadcast to 3 runs adds 1 to 3 rows); a message delivered to
    nobody (failed or expired before delivery) has one row with a missing
    recipient, so ``flows.dropna().messages.sum()`` is the number of
    (message, recipient) pairs.  ``by="agent"`` replaces each run by its
    agent (the agent of the run's latest join at the message's latest
    record).  Rows: largest counts first.  Columns: :data:`FLOW_COLUMNS`.

    >>> pool.flows_df(by="agent").head()
                     sender             recipient     status  messages
    0  agent.alpha.reviewer  agent.alpha.reviewer  delivered       133
    1   agent.alpha.planner  agent.alpha.reviewer  delivered       119
    2    agent.alpha.worker  agent.alpha.reviewer  delivered        95
    3  agent.alpha.reviewer   agent.alpha.planner  delivered        90
    4   agent.alpha.planner   agent.alpha.planner  delivered        89
    """
    by = choice_argument(by, "by", ("run", "agent"))
    cursor = _cursor(history, upto)
    index = history.index
    rel = relations(index)
    runs = rel.runs
    live = index.live_positions("messages", cursor, ordered=False)
    status = index.status_codes()[live].astype(np.int64)
    sender = runs["sender"][live]
    offsets = runs["offsets"]
    counts = offsets[live + 1] - offsets[live]
    flat = runs["recipients"][_ranges(offsets[live], counts)]
    nobody = counts == 0
    # one pair per recipient, plus one per message delivered to nobody
    pair_message = np.concatenate([np.repeat(np.arange(len(live)), counts), np.flatnonzero(nobody)])
    pair_recipient = np.concatenate([flat, np.full(int(nobody.sum()), -1, dtype=np.int64)])
    pair_sender = sender[pair_message]
    pair_status = status[pair_message]
    names = runs["names"]
    if by == "agent":
        positions = live[pair_message]
        pair_sender = rel.agent_at(pair_sender, positions)
        pair_recipient = np.where(pair_recipient >= 0, rel.agent_at(pair_recipient, positions), -1)
        names = runs["agents"]
    width = len(names) + 1
    n_status = len(wire.MESSAGE_STATUSES)
    combined = ((pair_sender + 1) * width + (pair_recipient + 1)) * n_status + pair_status
    unique, tally = np.unique(combined, return_counts=True)
    order = np.argsort(-tally, kind="stable")
    unique, tally = unique[order], tally[order]
    status_code = unique % n_status
    recipient_code = (unique // n_status) % width - 1
    sender_code = (unique // n_status) // width - 1
    frame = pd.DataFrame(
        {
            "sender": _categorical(sender_code, names),
            "recipient": _categorical(recipient_code, names),
            "status": pd.Categorical.from_codes(status_code, categories=list(wire.MESSAGE_STATUSES)),
            "messages": tally.astype(np.int64),
        }
    )
    frame.attrs.update({"by": by, "pool_id": history.pool_id, "upto": cursor})
    return frame


def flow_matrix(history: PoolHistory, upto: int | None = None, by: str = "run") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The flows as two sender x recipient matrices: messages (volume) and the
    share of them whose status is one of :data:`FAILURE_STATUSES` (NaN where
    no message went).  Senders and recipients by volume, largest first; a
    message delivered to nobody is in the column ``"(nobody)"``.

    >>> volume, failure = flow_matrix(pool, by="agent")
    >>> volume.shape == failure.shape
    True
    """
    flows = flows_df(history, upto, by=by)
    flows = flows.assign(
        recipient=flows["recipient"].astype(object).fillna("(nobody)"),
        sender=flows["sender"].astype(object).fillna("(unknown)"),
        failed=np.where(flows["status"].isin(FAILURE_STATUSES), flows["messages"], 0),
    )
    volume = flows.pivot_table(index="sender", columns="recipient", values="messages", aggfunc="sum", fill_value=0)
    failed = flows.pivot_table(index="sender", columns="recipient", values="failed", aggfunc="sum", fill_value=0)
    rows = volume.sum(axis=1).sort_values(ascending=False).index
    cols = volume.sum(axis=0).sort_values(ascending=False).index
    volume = volume.loc[rows, cols]
    failed = failed.loc[rows, cols]
    share = (failed / volume.where(volume > 0)).astype(float)
    return volume, share


def _reached_groups(history: PoolHistory, upto: int | None, namespace: str) -> Any:
    """The frames' grouping of a namespace's records up to ``upto`` (``reached[code]``:
    the cursor at which each status was first reached, -1 never), or None when empty."""
    from .frames import Groups

    statuses = wire.MESSAGE_STATUSES if namespace == "messages" else wire.WAKE_STATUSES
    groups = Groups(history, upto, namespace, len(statuses))
    return groups if len(groups.last) else None


@gc_paused()
def latency_df(history: PoolHistory, upto: int | None = None) -> pd.DataFrame:
    """For every message and wake, the cursors between consecutive statuses.

    Each status a message (wake) reached is taken at the cursor where it was
    *first* reached -- the ``<status>_at`` columns of ``messages_df`` and
    ``wakes_df`` -- and the statuses are put in cursor order; one row per
    consecutive pair (accepted -> delivered, delivered -> responded, ...;
    registered -> triggered, ...).  An item that reached one status has no
    row.  ``cursors`` counts records of the whole pool appended in between:
    **cursors are the only clock the SDK records** (no wall-clock time).
    Columns: :data:`LATENCY_COLUMNS`.

    >>> pool.latency_df().query("kind == 'message'").groupby("to_status", observed=True).cursors.median()
    to_status
    delivered      1.0
    responded    113.0
    timed_out    148.0
    cancelled     91.5
    Name: cursors, dtype: float64
    """
    upto = _cursor(history, upto)
    index = history.index
    rel = relations(index)
    parts = []
    for kind, namespace, statuses, column in (
        ("message", "messages", wire.MESSAGE_STATUSES, "sender"),
        ("wake", "wakes", wire.WAKE_STATUSES, "waiting"),
    ):
        groups = _reached_groups(history, upto, namespace)
        if groups is None:
            continue
        reached = np.stack([groups.reached[code] for code in range(len(statuses))], axis=1)
        sortable = np.where(reached >= 0, reached, np.iinfo(np.int64).max)
        order = np.argsort(sortable, axis=1, kind="stable")
        ordered = np.take_along_axis(sortable, order, axis=1)
        valid = ordered[:, 1:] != np.iinfo(np.int64).max  # both ends reached (sorted: the first then is too)
        item, step = np.nonzero(valid)
        from_code, to_code = order[item, step], order[item, step + 1]
        from_cursor, to_cursor = ordered[item, step], ordered[item, step + 1]
        runs = rel.runs[column][groups.last]
        agents = rel.agent_at(runs, groups.last)
        (keys,) = groups.columns("key")
        status_codes = np.array([_STATUS_CODE[s] for s in statuses], dtype=np.int64)
        parts.append(
            {
                "kind": np.full(len(item), 0 if kind == "message" else 1, dtype=np.int64),
                "id": [keys[i] for i in item.tolist()],
                "run": runs[item],
                "agent": agents[item],
                "from": status_codes[from_code],
                "to": status_codes[to_code],
                "from_cursor": from_cursor,
                "to_cursor": to_cursor,
            }
        )
    if not parts:  # no message and no wake: no row, with the columns' dtypes all the same
        none = np.zeros(0, dtype=np.int64)
        parts.append(dict.fromkeys(("kind", "run", "agent", "from", "to", "from_cursor", "to_cursor"), none))
        parts[0]["id"] = []
    from .frames import _strings

    def joined(name: str) -> np.ndarray:
        return np.concatenate([part[name] for part in parts])

    from_cursor, to_cursor = joined("from_cursor"), joined("to_cursor")
    frame = pd.DataFrame(
        {
            "kind": pd.Categorical.from_codes(joined("kind"), categories=["message", "wake"]),
            "id": _strings([key for part in parts for key in part["id"]]),
            "run_id": _categorical(joined("run"), rel.runs["names"]),
            "agent_id": _categorical(joined("agent"), rel.runs["agents"]),
            "from_status": pd.Categorical.from_codes(joined("from"), dtype=_STATUS_DTYPE),
            "to_status": pd.Categorical.from_codes(joined("to"), dtype=_STATUS_DTYPE),
            "from_cursor": from_cursor,
            "to_cursor": to_cursor,
            "cursors": to_cursor - from_cursor,
        }
    )
    frame.attrs.update({"pool_id": history.pool_id, "clock": "cursor"})
    return frame
