"""What changed between two cursors of a pool.

:func:`diff` compares the snapshot at ``a`` with the snapshot at ``b`` (either
order: ``diff(b, a)`` is the same change, backwards): members that joined,
left, or were updated by a new join; messages and wakes that appeared,
disappeared (only when going backwards), or changed status.  It works on the
columnar index, so it costs the size of the state, not of the log.

Example::

    >>> d = pool.diff(100, 140)
    >>> d
    <Diff 'pool.alpha' 100 → 140: 5 joined, 16 new messages, 2 message status changes, 4 new wakes, 1 wake status changes>
    >>> [member["run_id"] for member in d.joined]
    ['run.alpha.reviewer-5', 'run.alpha.reviewer-7', 'run.alpha.reviewer-8', 'run.alpha.worker-4', 'run.alpha.worker-6']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .index import gc_paused
from .snapshot import copied_member

if TYPE_CHECKING:  # pragma: no cover
    from .history import PoolHistory
    from .index import PoolIndex


@dataclass
class Change:
    """One message or wake whose state differs between the two cursors."""

    id: str
    before: str | None  # status at ``a`` (None: not present)
    after: str | None  # status at ``b`` (None: not present)
    seq: int | None  # seq of the record current at ``b`` (None when it disappeared)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "before": self.before, "after": self.after, "seq": self.seq}


#: The lists of changed members, messages and wakes that ``counts()`` counts.
_ITEM_CHANGES = (
    "joined",
    "left",
    "updated",
    "messages_added",
    "messages_changed",
    "messages_removed",
    "wakes_added",
    "wakes_changed",
    "wakes_removed",
)


@dataclass
class Diff:
    """The change from cursor ``a`` to cursor ``b`` of one pool.

    ``joined``, ``left`` and ``updated`` are the diff's own copies of the
    members (editing one changes no snapshot); the message and wake changes
    read the index the diff was made from, so a what-if refreshed since does
    not change them.
    """

    pool_id: str
    a: int
    b: int
    joined: list[dict] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)
    updated: list[dict] = field(default_factory=list)
    messages_added: Sequence[Change] = field(default_factory=list)
    messages_changed: Sequence[Change] = field(default_factory=list)
    messages_removed: Sequence[Change] = field(default_factory=list)
    wakes_added: Sequence[Change] = field(default_factory=list)
    wakes_changed: Sequence[Change] = field(default_factory=list)
    wakes_removed: Sequence[Change] = field(default_factory=list)
    topics_added: list[str] = field(default_factory=list)
    topics_removed: list[str] = field(default_factory=list)
    created_changed: bool = False

    def __bool__(self) -> bool:
        return any(
            getattr(self, name) for name in (*_ITEM_CHANGES, "topics_added", "topics_removed", "created_changed")
        )

    def counts(self) -> dict[str, int]:
        """How many items of each kind of change."""
        return {name: len(getattr(self, name)) for name in _ITEM_CHANGES}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "pool_id": self.pool_id,
            "a": self.a,
            "b": self.b,
            "members": {"joined": self.joined, "left": self.left, "updated": self.updated},
            "topics": {"added": self.topics_added, "removed": self.topics_removed},
            "messages": {
                "added": [c.to_dict() for c in self.messages_added],
                "changed": [c.to_dict() for c in self.messages_changed],
                "removed": [c.to_dict() for c in self.messages_removed],
            },
            "wakes": {
                "added": [c.to_dict() for c in self.wakes_added],
                "changed": [c.to_dict() for c in self.wakes_changed],
                "removed": [c.to_dict() for c in self.wakes_removed],
            },
            "created_changed": self.created_changed,
        }

    def summary(self) -> str:
        """One line, e.g. ``"+2 members, -1 member, 3 messages new, 4 status changes"``."""
        parts = []
        for label, items in (
            ("joined", self.joined),
            ("left", self.left),
            ("updated", self.updated),
            ("new messages", self.messages_added),
            ("message status changes", self.messages_changed),
            ("messages gone", self.messages_removed),
            ("new wakes", self.wakes_added),
            ("wake status changes", self.wakes_changed),
            ("wakes gone", self.wakes_removed),
        ):
            if items:
                parts.append(f"{len(items)} {label}")
        return ", ".join(parts) or "no change"

    def __repr__(self) -> str:
        return f"<Diff {self.pool_id!r} {self.a} → {self.b}: {self.summary()}>"

    def _repr_html_(self) -> str:
        from .render import diff_html

        return diff_html(self)


class Changes(Sequence):
    """The message (or wake) changes of a :class:`Diff`: a sequence of
    :class:`Change`, built only for the items read.

    A jump across a million records can change hundreds of thousands of
    messages while a panel shows fifty; the positions are kept as arrays and a
    :class:`Change` is made on access.  Compares equal to a list of the same
    changes.
    """

    def __init__(self, index: PoolIndex, before: np.ndarray, after: np.ndarray, sort_key: np.ndarray) -> None:
        self._index = index  # the index the positions are of (a what-if's is replaced when it is refreshed)
        self._before = before  # position of the record current at a (-1: none)
        self._after = after  # position of the record current at b (-1: none)
        self._order = np.argsort(sort_key, kind="stable") if len(sort_key) else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._order)

    def _make(self, j: int) -> Change:
        entries, seqs = self._index.entries, self._index.seqs
        a, b = int(self._before[j]), int(self._after[j])
        return Change(
            cast(str, entries[b if b >= 0 else a].key),
            entries[a].status if a >= 0 else None,
            entries[b].status if b >= 0 else None,
            seqs[b] if b >= 0 else None,
        )

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._make(int(j)) for j in self._order[i]]
        return self._make(int(self._order[i]))

    def __iter__(self) -> Iterator[Change]:
        for j in self._order.tolist():
            yield self._make(j)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, Changes)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} changes>"


def _live(index: PoolIndex, namespace: str, cursor: int) -> dict[str, int]:
    """key -> position of the record current at ``cursor`` (members: a small set)."""
    if cursor <= 0:
        return {}
    live = index.live_positions(namespace, cursor, ordered=False)
    return dict(zip(index.field("key", live), live.tolist()))


def _compare(index: PoolIndex, namespace: str, a: int, b: int) -> tuple[Changes, Changes, Changes]:
    """Added, changed (status) and removed keys of a namespace, from array
    operations over the two live sets; ordered by seq going forward, by id going back."""
    empty = np.zeros(0, dtype=np.int64)
    live_a = index.live_positions(namespace, a, ordered=False) if a > 0 else empty
    live_b = index.live_positions(namespace, b, ordered=False) if b > 0 else empty
    rank_a, rank_b = index.rank_of(namespace, live_a), index.rank_of(namespace, live_b)
    common, in_a, in_b = np.intersect1d(rank_a, rank_b, assume_unique=True, return_indices=True)
    status = index.status_codes()
    both_a, both_b = live_a[in_a], live_b[in_b]
    differs = (both_a != both_b) & (status[both_a] != status[both_b])
    new = ~np.isin(rank_b, common, assume_unique=True)
    gone = ~np.isin(rank_a, common, assume_unique=True)
    forward = b >= a
    added = Changes(index, np.full(int(new.sum()), -1), live_b[new], live_b[new] if forward else rank_b[new])
    changed = Changes(index, both_a[differs], both_b[differs], both_b[differs] if forward else rank_b[in_b][differs])
    removed = Changes(index, live_a[gone], np.full(int(gone.sum()), -1), rank_a[gone])
    return added, changed, removed


@gc_paused()
def diff(history: PoolHistory, a: int, b: int) -> Diff:
    """The change from cursor ``a`` to cursor ``b`` (``0 <= a, b <= head``).

    >>> len(pool.diff(0, pool.head).joined), len(pool.snapshot().members)
    (9, 9)
    """
    index = history.index
    a, b = index.check_cursor(a, "a"), index.check_cursor(b, "b")
    entries = index.entries
    members_a, members_b = _live(index, "members", a), _live(index, "members", b)
    result = Diff(history.pool_id, a, b)
    # copies: the index's own member dicts are never handed out
    result.joined = [copied_member(entries[p].extra) for k, p in sorted(members_b.items()) if k not in members_a]
    result.left = [copied_member(entries[p].extra) for k, p in sorted(members_a.items()) if k not in members_b]
    result.updated = [
        copied_member(entries[p].extra)
        for k, p in sorted(members_b.items())
        if k in members_a and members_a[k] != p and entries[members_a[k]].extra != entries[p].extra
    ]
    topics_a = {t for p in members_a.values() for t in entries[p].extra.get("topics", ())}
    topics_b = {t for p in members_b.values() for t in entries[p].extra.get("topics", ())}
    result.topics_added = sorted(topics_b - topics_a)
    result.topics_removed = sorted(topics_a - topics_b)
    result.messages_added, result.messages_changed, result.messages_removed = _compare(index, "messages", a, b)
    result.wakes_added, result.wakes_changed, result.wakes_removed = _compare(index, "wakes", a, b)
    result.created_changed = index.created_at(a) != index.created_at(b)
    return result
