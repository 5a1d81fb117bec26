"""Compare two pool histories: side by side, and where their logs part.

:func:`compare` takes two pools -- of the same database or of two, each
optionally cut at a cursor with a ``(pool, cursor)`` pair -- and returns a
:class:`Comparison`:

* ``summary``: a table of measures for both with their delta (records by
  kind, members, messages and wakes by current status, failure, timeout
  and expiry rates, runs and agents, each agent's messages and failure
  rate, latencies in cursors);
* ``first_divergence``: where the two logs, read as sequences of
  ``(kind, agent, status)`` events, first differ -- ``None`` when they
  agree, else ``(cursor_in_a, cursor_in_b)`` (``None`` on the side whose log
  ended first).  Run and message ids are left out on purpose: two runs of
  the same workload get different ids, but the same agents do the same
  things;
* :meth:`Comparison.alignment`: the two event sequences aligned (as
  ``difflib`` aligns lines) around the first divergence;
* an HTML view, and :func:`poolscope.plot.compare` for the activity of both
  on shared axes.

Example::

    >>> from poolscope.generate import generate
    >>> _ = generate("monday.db", pools=1, records=300, seed=1)
    >>> _ = generate("tuesday.db", pools=1, records=300, seed=2)
    >>> a = poolscope.open("monday.db").pool("pool.alpha")
    >>> b = poolscope.open("tuesday.db").pool("pool.alpha")
    >>> c = poolscope.compare(a, b)
    >>> c.first_divergence
    (4, 4)
    >>> c.summary.query("section == 'rates'")
       section              metric         a         b     delta
    19   rates     messages failed  0.205128  0.198113 -0.007015
    20   rates  messages timed_out  0.051282  0.056604  0.005322
    21   rates    messages expired  0.068376  0.047170 -0.021206
    22   rates  messages cancelled  0.017094  0.047170  0.030076
    23   rates     wakes timed_out  0.107143  0.135135  0.027992
    24   rates        wakes failed  0.000000  0.000000  0.000000
    25   rates     wakes cancelled  0.285714  0.108108 -0.177606
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import wire
from .arguments import count_argument
from .errors import InvalidInputError
from .flows import FAILURE_STATUSES
from .fold import DAMAGED, RUN_MESSAGE, WAKE
from .index import gc_paused
from .relations import relations

if TYPE_CHECKING:  # pragma: no cover
    from .history import PoolHistory

__all__ = ["compare", "Comparison", "events"]

_KIND_NAMES = (*wire.KINDS, "damaged")


class _Side:
    """One pool cut at a cursor, and its events as numpy codes."""

    def __init__(self, value: Any, name: str) -> None:
        from .history import PoolHistory

        cursor = None
        if isinstance(value, tuple):
            if len(value) != 2:
                raise InvalidInputError(f"{name} must be a pool history or a (pool, cursor) pair")
            value, cursor = value
        if not isinstance(value, PoolHistory):
            raise InvalidInputError(
                f"{name} must be a pool history or a (pool, cursor) pair, not {type(value).__name__}"
            )
        self.history = value
        index = value.index
        head = index.head
        self.cursor = head if cursor is None else index.check_cursor(cursor)
        self.n = index.position(self.cursor)
        self.label = f"{value.path.name}::{value.pool_id}" + ("" if self.cursor == head else f"@{self.cursor}")
        if hasattr(value, "removed"):  # a what-if
            self.label += " (what-if)"

    @gc_paused()
    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Per record up to the cursor: kind code, agent code (-1: none), status code (-1: none); and the agent names."""
        index = self.history.index
        rel = relations(index)
        runs = rel.runs
        n = self.n
        run = np.maximum(np.maximum(runs["member"][:n], runs["sender"][:n]), runs["waiting"][:n])
        agent = rel.agent_at(run, np.arange(n, dtype=np.int64))
        kind = rel.kind[:n].astype(np.int64)
        status = index.status_codes()[:n].astype(np.int64)
        return kind, agent, status, list(runs["agents"])


def _encode(kind: np.ndarray, agent: np.ndarray, status: np.ndarray, width: int) -> np.ndarray:
    kind = np.where(kind == DAMAGED, len(wire.KINDS), kind)
    return (kind * (width + 1) + (agent + 1)) * 8 + (status + 1)


@dataclass
class Comparison:
    """Two pool histories compared (see :func:`compare`)."""

    a: PoolHistory
    b: PoolHistory
    cursor_a: int
    cursor_b: int
    label_a: str
    label_b: str
    summary: pd.DataFrame
    first_divergence: tuple[int | None, int | None] | None
    common_prefix: int
    _codes: tuple[np.ndarray, np.ndarray] = field(repr=False)
    _seqs: tuple[np.ndarray, np.ndarray] = field(repr=False)
    _agents: list = field(repr=False)

    @property
    def diverged(self) -> bool:
        return self.first_divergence is not None

    def events(self, which: str = "a", start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """The events of one side (``"a"`` or ``"b"``) by position in its log,
        from ``start`` (0 or more) to before ``stop`` (None: the end):
        ``cursor``, ``kind``, ``agent``, ``status``."""
        if which not in ("a", "b"):
            raise InvalidInputError(f"which must be 'a' or 'b', not {which!r}")
        start = count_argument(start, "start", least=0)
        stop = None if stop is None else count_argument(stop, "stop", least=0)
        side = 0 if which == "a" else 1
        codes, seqs = self._codes[side][start:stop], self._seqs[side][start:stop]
        return pd.DataFrame({"cursor": seqs, **_decode(codes, self._agents)})

    def alignment(self, context: int = 5, window: int = 400) -> pd.DataFrame:
        """The two logs aligned around the first divergence: ``context``
        agreeing events before it, then up to ``window`` events of each side
        aligned with :class:`difflib.SequenceMatcher`.  Columns ``op``
        (equal, replace, insert: only in b, delete: only in a), and
        ``cursor``/``kind``/``agent``/``status`` of each side (``_a``, ``_b``).
        ``context`` is 0 or more, ``window`` at least 1."""
        import difflib

        context, window = count_argument(context, "context", least=0), count_argument(window, "window")
        a, b = self._codes
        start = max(0, self.common_prefix - context)
        stop_a = min(len(a), self.common_prefix + window)
        stop_b = min(len(b), self.common_prefix + window)
        left, right = a[start:stop_a].tolist(), b[start:stop_b].tolist()
        matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
        rows: list[tuple[str, int, int]] = []
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            span = max(i2 - i1, j2 - j1)
            for k in range(span):
                i = start + i1 + k if i1 + k < i2 else -1
                j = start + j1 + k if j1 + k < j2 else -1
                rows.append((op, i, j))
        ops = [r[0] for r in rows]
        ia = np.array([r[1] for r in rows], dtype=np.int64)
        ib = np.array([r[2] for r in rows], dtype=np.int64)
        out: dict[str, Any] = {"op": ops}
        for suffix, idx, codes, seqs in (("a", ia, a, self._seqs[0]), ("b", ib, b, self._seqs[1])):
            have = idx >= 0
            if not len(codes):  # a side with no events: every row is the other side's (masked below)
                codes, seqs = np.zeros(1, dtype=codes.dtype), np.zeros(1, dtype=np.int64)
            decoded = _decode(codes[np.where(have, idx, 0)], self._agents)
            out[f"cursor_{suffix}"] = pd.array(np.where(have, seqs[np.where(have, idx, 0)], 0), dtype="Int64")
            out[f"cursor_{suffix}"][~have] = pd.NA
            for name, values in decoded.items():
                column = values.astype(object)
                column[~have] = None
                out[f"{name}_{suffix}"] = column
        return pd.DataFrame(out)

    def __repr__(self) -> str:
        where = "no divergence" if self.first_divergence is None else f"first divergence at {self.first_divergence}"
        return f"<Comparison {self.label_a} vs {self.label_b}: {where}>"

    def _repr_html_(self) -> str:
        from . import render

        return render.comparison_html(self)


def _decode(codes: np.ndarray, agents: list) -> dict[str, np.ndarray]:
    status = codes % 8 - 1
    rest = codes // 8
    width = len(agents) + 1
    agent = rest % (width + 1) - 1
    kind = rest // (width + 1)
    kind_names = np.array(_KIND_NAMES, dtype=object)[kind]
    agent_names = np.array([*agents, None], dtype=object)[agent]
    message = np.array(wire.MESSAGE_STATUSES, dtype=object)
    wake = np.array(wire.WAKE_STATUSES, dtype=object)
    safe = np.clip(status, 0, None)
    status_names = np.where(
        (kind == RUN_MESSAGE) & (status >= 0),
        message[np.clip(safe, 0, len(message) - 1)],
        np.where((kind == WAKE) & (status >= 0), wake[np.clip(safe, 0, len(wake) - 1)], None),
    )
    return {"kind": kind_names, "agent": agent_names, "status": status_names}


# ------------------------------------------------------------------ summary
def _measures(side: _Side) -> dict[tuple[str, str], float | int | None]:
    from .flows import _reached_groups

    history = side.history
    index = history.index
    rel = relations(index)
    runs = rel.runs
    n, cursor = side.n, side.cursor
    out: dict[tuple[str, str], Any] = {("log", "cursor"): cursor, ("log", "records"): n}
    kinds = np.where(rel.kind[:n] == DAMAGED, len(wire.KINDS), rel.kind[:n])
    counts = np.bincount(kinds.astype(np.int64), minlength=len(_KIND_NAMES))
    for name, count in zip(_KIND_NAMES, counts.tolist()):
        out[("records by kind", name)] = count
    out[("state", "members")] = index.count_live("members", cursor) if n else 0
    for namespace in ("messages", "wakes"):
        current = index.current_status_counts(namespace, cursor) if n else {}
        total = sum(current.values())
        out[("state", namespace)] = total
        for status, count in current.items():
            out[(f"{namespace} by status", status)] = count
        if namespace == "messages":
            for status in ("failed", "timed_out", "expired", "cancelled"):
                out[("rates", f"messages {status}")] = current.get(status, 0) / total if total else np.nan
        else:
            for status in ("timed_out", "failed", "cancelled"):
                out[("rates", f"wakes {status}")] = current.get(status, 0) / total if total else np.nan
    joins = runs["join_pos"] < n
    out[("runs and agents", "runs that joined")] = len(np.unique(runs["join_run"][joins]))
    out[("runs and agents", "agents")] = len(np.unique(runs["join_agent"][joins]))
    # per agent: messages sent (current record of each) and the share that failed, timed out or expired
    live = index.live_positions("messages", cursor, ordered=False) if n else np.zeros(0, dtype=np.int64)
    agent = rel.agent_at(runs["sender"][live], live)
    status = index.status_codes()[live]
    failing = np.isin(status, [wire.MESSAGE_STATUSES.index(s) for s in FAILURE_STATUSES])
    names = runs["agents"]
    sent = np.bincount(agent + 1, minlength=len(names) + 1)
    failed = np.bincount(agent + 1, weights=failing, minlength=len(names) + 1)
    for code, name in enumerate([None, *names]):
        if sent[code]:
            label = name if name is not None else "(no member run)"
            out[("agents: messages sent", label)] = int(sent[code])
            out[("agents: failure rate", label)] = float(failed[code] / sent[code])
    # latencies (cursors)
    for namespace, pairs in (
        ("messages", (("accepted", "delivered"), ("delivered", None), ("accepted", None))),
        ("wakes", (("registered", None),)),
    ):
        statuses = wire.MESSAGE_STATUSES if namespace == "messages" else wire.WAKE_STATUSES
        groups = _reached_groups(history, cursor, namespace)
        if groups is None:
            continue
        reached = groups.reached
        terminal = np.full(len(groups.last), np.iinfo(np.int64).max, dtype=np.int64)
        for code, status_name in enumerate(statuses):
            if status_name not in ("accepted", "delivered", "registered"):
                at = reached[code]
                terminal = np.where((at >= 0) & (at < terminal), at, terminal)
        terminal = np.where(terminal == np.iinfo(np.int64).max, -1, terminal)
        for start, end in pairs:
            first = reached[statuses.index(start)]
            last = reached[statuses.index(end)] if end is not None else terminal
            ok = (first >= 0) & (last >= 0)
            gap = (last - first)[ok]
            name = f"{namespace} {start} → {end or 'final'}"
            out[("latency (cursors)", f"{name}, median")] = float(np.median(gap)) if len(gap) else np.nan
            out[("latency (cursors)", f"{name}, p90")] = float(np.percentile(gap, 90)) if len(gap) else np.nan
    return out


def _summary(a: dict, b: dict) -> pd.DataFrame:
    keys = list(dict.fromkeys([*a, *b]))
    order = {s: i for i, s in enumerate(dict.fromkeys(k[0] for k in keys))}
    keys.sort(key=lambda k: order[k[0]])
    rows = []
    for key in keys:
        va, vb = a.get(key), b.get(key)
        counted = key[0] not in ("rates", "agents: failure rate", "latency (cursors)")
        if counted:
            va = 0 if va is None else va
            vb = 0 if vb is None else vb
        fa = np.nan if va is None else float(va)
        fb = np.nan if vb is None else float(vb)
        rows.append((key[0], key[1], va if va is not None else np.nan, vb if vb is not None else np.nan, fb - fa))
    frame = pd.DataFrame(rows, columns=["section", "metric", "a", "b", "delta"])
    return frame


@gc_paused()
def compare(a: Any, b: Any) -> Comparison:
    """Compare two pool histories (see the module docstring).

    ``a`` and ``b`` are :class:`~poolscope.PoolHistory` objects (of the same
    database or of two, what-ifs included) or ``(pool, cursor)`` pairs.  The
    first divergence is the first position at which the ``(kind, agent,
    status)`` events of the two logs differ (agents by name; a record's agent
    is the agent of its run: the member, the sender, or the waiting run).

    >>> c = compare(pool, (pool, 100))
    >>> c.first_divergence
    (101, None)
    """
    side_a, side_b = _Side(a, "a"), _Side(b, "b")
    kind_a, agent_a, status_a, names_a = side_a.events()
    kind_b, agent_b, status_b, names_b = side_b.events()
    joint = {name: i for i, name in enumerate(names_a)}
    for name in names_b:
        joint.setdefault(name, len(joint))
    remap = np.array([joint[name] for name in names_b] + [-1], dtype=np.int64)
    agent_b = np.where(agent_b >= 0, remap[agent_b], -1)
    agents = list(joint)
    width = len(agents) + 1
    codes_a = _encode(kind_a, agent_a, status_a, width)
    codes_b = _encode(kind_b, agent_b, status_b, width)
    seq_a = relations(side_a.history.index).seq[: side_a.n]
    seq_b = relations(side_b.history.index).seq[: side_b.n]
    m = min(len(codes_a), len(codes_b))
    differ = np.flatnonzero(codes_a[:m] != codes_b[:m])
    if len(differ):
        i = int(differ[0])
        divergence: tuple[int | None, int | None] | None = (int(seq_a[i]), int(seq_b[i]))
    elif len(codes_a) == len(codes_b):
        i, divergence = m, None
    else:
        i = m
        divergence = (
            int(seq_a[m]) if len(codes_a) > m else None,
            int(seq_b[m]) if len(codes_b) > m else None,
        )
    summary = _summary(_measures(side_a), _measures(side_b))
    return Comparison(
        side_a.history,
        side_b.history,
        side_a.cursor,
        side_b.cursor,
        side_a.label,
        side_b.label,
        summary,
        divergence,
        i,
        (codes_a, codes_b),
        (seq_a, seq_b),
        agents,
    )


def events(history: PoolHistory, upto: int | None = None) -> pd.DataFrame:
    """The pool's log as ``(kind, agent, status)`` events -- what :func:`compare`
    aligns: columns ``cursor``, ``kind``, ``agent``, ``status``.

    >>> events(pool).head()
       cursor           kind                 agent      status
    0       1    pool_opened                   NaN         NaN
    1       2   pool_created                   NaN         NaN
    2       3  member_joined  agent.alpha.reviewer         NaN
    3       4  member_joined   agent.alpha.planner         NaN
    4       5           wake  agent.alpha.reviewer  registered
    """
    side = _Side((history, upto) if upto is not None else history, "history")
    kind, agent, status, names = side.events()
    codes = _encode(kind, agent, status, len(names) + 1)
    return pd.DataFrame({"cursor": relations(history.index).seq[: side.n], **_decode(codes, names)})
