"""Which records of a pool match a filter: kind, status, run, agent, failures.

:class:`RecordFilter` keeps, beside a pool's index, what filtering needs
(the runs and agents seen, per-run and per-agent masks, the failures) and
answers with boolean masks over the pool's records, the next/previous match
from a cursor, and match counts per window of cursors (the explorer's
timeline strip).  It is built in one pass over the index and extended as the
log grows (:meth:`RecordFilter.extend`); when the history's index is replaced
instead (a what-if folded again by ``refresh()``), ``extend`` starts again
from the new one.

>>> import poolscope
>>> from poolscope.filters import RecordFilter
>>> pool = poolscope.open("sample_data/demo.db").pool("pool.alpha")
>>> f = RecordFilter(pool)
>>> mask = f.mask(kind="wake", status="timed_out")
>>> first = f.find(mask, 0)
>>> pool.records(after=first - 1, upto=first)[0].payload["stored"]["registration"]["status"]
'timed_out'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import palette, wire
from .fold import MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE

if TYPE_CHECKING:  # pragma: no cover
    from .history import PoolHistory

__all__ = ["RecordFilter", "STATUS_NAMES", "KIND_NAMES"]

#: Every status a record can carry (message statuses, then the wake-only ones).
STATUS_NAMES: tuple[str, ...] = tuple(dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES))
#: Every kind a record can have, ``damaged`` last.
KIND_NAMES: tuple[str, ...] = (*wire.KINDS, "damaged")


class RecordFilter:
    """Masks over the records of one pool (see the module's docstring).

    ``runs`` and ``agents`` are the run and agent ids seen in the records
    (members, senders, addressees, waiting runs); ``runs_of_agent`` the runs
    that joined as each agent; ``index`` the history's index it answers
    for (every mask, match and count is over that index's records, the first
    ``n`` of them).
    """

    def __init__(self, history: PoolHistory) -> None:
        self.history = history
        self.index = history.index
        self.n = 0
        self.runs: set[str] = set()
        self.agents: set[str] = set()
        self.runs_of_agent: dict[str, set[str]] = {}
        self._masks: dict[tuple, np.ndarray] = {}
        self.extend()

    def extend(self) -> bool:
        """Take in the records loaded since; return whether there were any.

        A history whose index was replaced rather than appended to (a what-if
        folded again: records may have left it, and positions moved) is taken
        in again from its first record.
        """
        index = self.history.index
        if index is not self.index:
            self.index, self.n = index, 0
            self.runs, self.agents, self.runs_of_agent = set(), set(), {}
            self._masks = {}
        entries = index.entries
        n = len(entries)
        if n == self.n:
            return False
        runs, agents, runs_of_agent = self.runs, self.agents, self.runs_of_agent
        for e in entries[self.n : n]:
            kind = e.kind
            if kind in (MEMBER_JOINED, MEMBER_LEFT):
                if isinstance(e.key, str):
                    runs.add(e.key)
                    if isinstance(e.agent_id, str):
                        runs_of_agent.setdefault(e.agent_id, set()).add(e.key)
                if isinstance(e.agent_id, str):
                    agents.add(e.agent_id)
            elif kind == RUN_MESSAGE:
                if isinstance(e.sender, str):
                    runs.add(e.sender)
                if e.target_type == "run" and isinstance(e.target_id, str):
                    runs.add(e.target_id)
                elif e.target_type == "agent" and isinstance(e.target_id, str):
                    agents.add(e.target_id)
            elif kind == WAKE and isinstance(e.run_id, str):
                runs.add(e.run_id)
        self.n = n
        self._masks = {}
        return True

    # ------------------------------------------------------------------ masks
    def status_mask(self, status: str, namespace: str | None = None) -> np.ndarray:
        """Records of a status: messages and wakes alike (``failed`` is both), or
        only ``namespace``'s (``"message"`` or ``"wake"``)."""
        key = ("status", status, namespace)
        if key not in self._masks:
            self._masks[key] = self.index.status_mask(status, namespace)[: self.n]
        return self._masks[key]

    def failures(self) -> np.ndarray:
        """Records that are failures (:data:`poolscope.palette.FAILURE_STATUSES`):
        a failed, expired or timed_out message; a timed_out or failed wake."""
        key = ("failures",)
        if key not in self._masks:
            out = np.zeros(self.n, dtype=bool)
            for namespace, statuses in palette.FAILURE_STATUSES.items():
                for status in statuses:
                    out |= self.status_mask(status, namespace)
            self._masks[key] = out
        return self._masks[key]

    def run_mask(self, run: str) -> np.ndarray:
        """Records of a run: its member records and wakes, the messages it sent,
        and the messages addressed or delivered to it."""
        key = ("run", run)
        if key not in self._masks:
            entries = self.index.entries[: self.n]
            self._masks[key] = np.fromiter(
                (
                    e.run_id == run
                    or e.sender == run
                    or (e.target_type == "run" and e.target_id == run)
                    or run in e.delivered_to
                    for e in entries
                ),
                dtype=bool,
                count=len(entries),
            )
        return self._masks[key]

    def agent_mask(self, agent: str) -> np.ndarray:
        """Records of an agent: member records with that agent id, messages
        addressed to the agent, and every record of a run that joined as it
        (see :meth:`run_mask`)."""
        key = ("agent", agent)
        if key not in self._masks:
            runs = self.runs_of_agent.get(agent, set())
            entries = self.index.entries[: self.n]
            self._masks[key] = np.fromiter(
                (
                    e.agent_id == agent
                    or (e.target_type == "agent" and e.target_id == agent)
                    or e.run_id in runs
                    or e.sender in runs
                    or (e.target_type == "run" and e.target_id in runs)
                    or any(r in runs for r in e.delivered_to)
                    for e in entries
                ),
                dtype=bool,
                count=len(entries),
            )
        return self._masks[key]

    def mask(
        self,
        kind: str | None = None,
        status: str | None = None,
        run: str | None = None,
        agent: str | None = None,
    ) -> np.ndarray | None:
        """Records matching every filter given (``None``: no filter at all).

        Raises :class:`~poolscope.errors.InvalidInputError` (a ``ValueError``)
        for a kind or status that does not exist, or a filter that is not a string.
        """
        from .arguments import shown_value
        from .errors import InvalidInputError

        for name, value in (("kind", kind), ("status", status), ("run", run), ("agent", agent)):
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{name} must be a string or None, not {shown_value(value)}")
        index = self.index
        parts: list[np.ndarray] = []
        if kind:
            key = ("kind", kind)
            if key not in self._masks:
                self._masks[key] = index.kind_mask(kind)[: self.n]  # InvalidInputError for an unknown kind
            parts.append(self._masks[key])
        if status:
            parts.append(self.status_mask(status))  # InvalidInputError for an unknown status
        if run:
            parts.append(self.run_mask(run))
        if agent:
            parts.append(self.agent_mask(agent))
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out & part
        return out

    # ------------------------------------------------------------ navigation
    def find(self, mask: np.ndarray | None, cursor: int, forward: bool = True) -> int | None:
        """The seq of the first record matching ``mask`` after ``cursor``
        (``forward=False``: the last one before it); ``None`` when there is none.
        ``mask=None`` matches every record."""
        seqs = self.index.arrays()["seq"]
        n = len(mask) if mask is not None else len(seqs)
        if forward:
            start = int(np.searchsorted(seqs, cursor, side="right"))
            if start >= n:
                return None
            if mask is None:
                return int(seqs[start])
            hit = int(np.argmax(mask[start:n]))
            return int(seqs[start + hit]) if mask[start + hit] else None
        stop = min(int(np.searchsorted(seqs, cursor, side="left")), n)
        if stop <= 0:
            return None
        if mask is None:
            return int(seqs[stop - 1])
        hit = int(np.argmax(mask[:stop][::-1]))
        return int(seqs[stop - 1 - hit]) if mask[stop - 1 - hit] else None

    def per_window(self, mask: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """How many records matching ``mask`` fall in each window between ``edges`` (cursors)."""
        seqs = self.index.arrays()["seq"][: len(mask)]
        counts, _ = np.histogram(seqs[mask], bins=edges)
        return counts
