"""Snapshots: a pool's state at a cursor, exactly as the SDK's ``snapshot()``.

A :class:`Snapshot` is computed from the columnar index in time proportional to
the state's size; message and wake payloads are fetched from the database only
when they are read (``to_dict``, ``to_json``, iterating ``messages``).

A snapshot keeps the index it was made from: refreshing a what-if (which folds
a new index) or a :class:`~poolscope.PoolStore` batch rolled back later does
not change one already handed out.  Its ``members`` and ``config`` are its own
copies, never the index's: editing them changes no other snapshot, frame or
record written.

Example::

    >>> snap = poolscope.open("sample_data/demo.db").pool("pool.alpha").snapshot(120)
    >>> len(snap.members), len(snap.messages), snap.cursor
    (6, 47, 120)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, cast, overload

import numpy as np

from . import wire
from .errors import CorruptRecordError

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from .index import PoolIndex


class PoolLog(Protocol):
    """What a snapshot reads: a pool's index and its payloads -- a
    :class:`~poolscope.history.PoolHistory`, or a :class:`~poolscope.PoolStore`'s log."""

    @property
    def pool_id(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def index(self) -> PoolIndex: ...
    def payloads(self, seqs: list[int]) -> dict[int, Any]: ...


def copied(value: Any) -> Any:
    """A copy of a JSON value that shares no dict or list with it (strings,
    numbers and bools are shared: they cannot change).

    >>> config = {"message_policy": {"required_policy_refs": [{"kind": "k", "id": "p"}]}}
    >>> copied(config) == config, copied(config)["message_policy"]["required_policy_refs"][0] is config["message_policy"]["required_policy_refs"][0]
    (True, False)
    """
    if value.__class__ is dict:
        return {k: copied(v) for k, v in value.items()}
    if value.__class__ is list:
        return [copied(v) for v in value]
    return value


def copied_member(member: dict) -> dict:
    """A copy of a member as the fold keeps it (``wire.canonical_member``: two
    strings, ``topics`` a list of strings, ``policy_refs`` a list of flat dicts
    of strings) that shares no dict or list with it; several times quicker
    than :func:`copied` for the one value a snapshot copies per member.

    >>> member = {"run_id": "r", "agent_id": "a", "topics": ["t"]}
    >>> mine = copied_member(member)
    >>> mine["topics"].append("x"); member
    {'run_id': 'r', 'agent_id': 'a', 'topics': ['t']}
    """
    out = member.copy()
    topics = member.get("topics")
    if topics is not None:
        out["topics"] = topics.copy()
    refs = member.get("policy_refs")
    if refs is not None:
        out["policy_refs"] = [ref.copy() for ref in refs]
    return out


def _as_folded(log: PoolLog, index: PoolIndex) -> PoolLog:
    """``log`` reading payloads through ``index``, the index a snapshot was
    made from, when the log's own was replaced since (a what-if refreshed):
    its seqs are looked up, and the payloads checked, against what the
    snapshot holds, not against the new fold."""
    if log.index is index:
        return log
    view = copy.copy(log)
    cast(Any, view).index = index
    return view


class StoredList(Sequence):
    """The messages (or wakes) of a snapshot: a sized sequence of the SDK's
    ``AgentPoolStoredMessage`` (``AgentPoolStoredWake``) dicts in key order.

    ``len``, ``ids``, ``statuses`` and ``seqs`` need no payload; items are
    fetched from the database on first access, all at once, and cached.
    Everything is read from ``index`` (default: the log's index now), kept
    from the start: a log whose index is replaced later (a what-if
    refreshed) does not change the list.
    """

    def __init__(self, history: PoolLog, positions: np.ndarray, namespace: str, index: PoolIndex | None = None) -> None:
        self._history = history
        self._index: PoolIndex = history.index if index is None else index
        self._by_position = positions  # in log order: the latest records last
        self._unordered = positions
        self._namespace: str | None = namespace  # set: positions still need the SDK's key order
        #: ``"message"`` or ``"wake"``.
        self.namespace: str = namespace.removesuffix("s")
        self._items: list[dict] | None = None
        self._status_counts: dict[str, int] | None = None

    @property
    def _positions(self) -> np.ndarray:
        if self._namespace is not None:
            ranks = self._index.rank_of(self._namespace, self._unordered)
            self._unordered = self._unordered[np.argsort(ranks, kind="stable")]
            self._namespace = None
        return self._unordered

    def __len__(self) -> int:
        return len(self._unordered)

    @property
    def ids(self) -> list[str]:
        """Message ids (condition ids) in the SDK's order."""
        return self._index.field("key", self._positions)

    @property
    def statuses(self) -> list[str]:
        """The current status of each item, without fetching payloads."""
        return self._index.field("status", self._positions)

    @property
    def seqs(self) -> list[int]:
        """The seq of the record each item comes from."""
        seqs = self._index.seqs
        return [seqs[p] for p in self._positions]

    def status_counts(self) -> dict[str, int]:
        """How many items have each status (the statuses with none left out), without fetching payloads.

        >>> pool.snapshot(300).messages.status_counts()
        {'delivered': 66, 'responded': 10, 'failed': 29, 'timed_out': 5, 'expired': 5, 'cancelled': 4}
        """
        if self._status_counts is None:
            counted = self._index.status_counts(self.namespace, self._by_position)
            self._status_counts = {name: n for name, n in counted.items() if n}
        return dict(self._status_counts)

    def latest(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` items whose records came last, latest first, as plain rows
        read from the index (no payload): ``seq``, ``id``, ``status``, and
        ``sender``, ``target_type``, ``target_id``, ``recipients`` (messages) or
        ``run_id`` (wakes)."""
        from .arguments import shown_value, whole_number

        count = whole_number(n)
        if count is None:
            from .errors import InvalidInputError

            raise InvalidInputError(f"n must be a whole number of items, not {shown_value(n)}")
        entries, seqs = self._index.entries, self._index.seqs
        rows = []
        for p in self._by_position[::-1][: max(count, 0)].tolist():
            e = entries[p]
            row: dict[str, Any] = {"seq": seqs[p], "id": e.key, "status": e.status}
            if self.namespace == "message":
                row.update(sender=e.sender, target_type=e.target_type, target_id=e.target_id, recipients=e.delivered_to)
            else:
                row["run_id"] = e.run_id
            rows.append(row)
        return rows

    def _load(self) -> list[dict]:
        if self._items is None:
            seqs = self.seqs
            payloads = _as_folded(self._history, self._index).payloads(seqs)
            self._items = [payloads[s]["stored"] for s in seqs]
        return self._items

    @overload
    def __getitem__(self, i: int) -> dict: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict]: ...
    def __getitem__(self, i):
        return self._load()[i]

    def __iter__(self) -> Iterator[dict]:
        return iter(self._load())

    def __repr__(self) -> str:
        return f"<{len(self)} stored items>"


class Snapshot:
    """A pool's state when its log ended at ``cursor``.

    Attributes: ``pool_id``, ``created``, ``members`` (list of member dicts),
    ``topics``, ``message_policy``, ``wake_policy``, ``policy_refs``,
    ``messages`` and ``wakes`` (:class:`StoredList`), ``cursor`` (int: the seq
    of the last record applied).

    ``members`` and ``config`` are this snapshot's own copies (``members`` is
    made on first use): editing them changes no other snapshot, no frame and
    nothing a :class:`~poolscope.PoolStore` writes.  ``member_ids``,
    ``counts()``, ``to_dict()`` and ``to_json()`` read the state as folded, so
    ``to_json()`` stays the SDK's bytes whatever was done to them:

    >>> snap = pool.snapshot(3)
    >>> snap.members[0]["topics"].sort(); snap.config["wake_policy"]["envelope_only"] = False
    >>> pool.snapshot(3).members[0]["topics"], pool.snapshot(3).wake_policy
    (['topic.alpha.plan', 'topic.alpha.build'], {'envelope_only': True})
    >>> snap.to_json() == pool.snapshot(3).to_json()
    True
    """

    def __init__(
        self,
        history: PoolLog,
        cursor: int,
        config: dict,
        created: bool,
        member_positions: np.ndarray,
        message_positions: np.ndarray,
        wake_positions: np.ndarray,
        index: PoolIndex | None = None,
    ) -> None:
        index = history.index if index is None else index  # read only this one: the log's may be replaced
        self.pool_id: str = history.pool_id
        self.cursor: int = cursor
        self.created: bool = created
        self._config = config  # the fold's own: never handed out
        self.config: dict = copied(config)
        self._members: list[dict] = index.field("extra", member_positions)  # the index's own: never handed out
        topics: set[str] = set()
        for member in self._members:
            topics.update(member.get("topics", ()))
        self.topics: list[str] = sorted(topics)
        self.messages = StoredList(history, message_positions, "messages", index)
        self.wakes = StoredList(history, wake_positions, "wakes", index)
        self._history = history

    @cached_property
    def members(self) -> list[dict]:
        """The members, in the SDK's order (run id): this snapshot's own copies."""
        return [copied_member(member) for member in self._members]

    @property
    def message_policy(self) -> dict:
        return self.config["message_policy"]

    @property
    def wake_policy(self) -> dict:
        return self.config["wake_policy"]

    @property
    def policy_refs(self) -> list:
        return self.config.get("policy_refs", [])

    @property
    def member_ids(self) -> list[str]:
        """Run ids of the members, in the SDK's order."""
        return [m["run_id"] for m in self._members]

    def counts(self) -> dict[str, int]:
        """Sizes: members, topics, messages, wakes.

        >>> pool.snapshot(300).counts()
        {'members': 12, 'topics': 3, 'messages': 119, 'wakes': 32}
        """
        return {
            "members": len(self._members),
            "topics": len(self.topics),
            "messages": len(self.messages),
            "wakes": len(self.wakes),
        }

    def to_dict(self) -> dict[str, Any]:
        """The SDK's ``AgentPoolSnapshot`` as a dict (serde's field order and omissions), from the state
        as folded (the members and config are new copies, not the ``members`` and ``config`` attributes)."""
        return self._sdk_dict(fresh=True)

    def _sdk_dict(self, *, fresh: bool) -> dict[str, Any]:
        """:meth:`to_dict`; with ``fresh=False`` members and config are the fold's own (to be written, not kept)."""
        config = copied(self._config) if fresh else self._config
        out: dict[str, Any] = {
            "pool_id": self.pool_id,
            "created": self.created,
            "members": [copied_member(member) for member in self._members] if fresh else list(self._members),
            "topics": list(self.topics),
            "message_policy": config["message_policy"],
            "wake_policy": config["wake_policy"],
        }
        if config.get("policy_refs"):
            out["policy_refs"] = config["policy_refs"]
        if len(self.messages):
            out["messages"] = list(self.messages)
        if len(self.wakes):
            out["wakes"] = list(self.wakes)
        out["cursor"] = {"sequence": self.cursor}
        return out

    def to_json(self) -> str:
        """The exact text ``serde_json::to_string(&snapshot)`` writes.

        A stored value nested too deeply to be written (more than 255 levels)
        raises :class:`~poolscope.errors.CorruptRecordError` naming its record."""
        try:
            return wire.dumps(self._sdk_dict(fresh=False))
        except TypeError:
            for items in (self.messages, self.wakes):
                for seq, item in zip(items.seqs, items):
                    try:
                        wire.dumps(item)
                    except TypeError:
                        raise CorruptRecordError(
                            "a value in this record nests too deeply to be written as JSON",
                            path=self._history.path,
                            pool_id=self.pool_id,
                            seq=int(seq),
                        ) from None
            raise

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"<Snapshot {self.pool_id!r} @ {self.cursor}: {c['members']} members, {c['topics']} topics, "
            f"{c['messages']} messages, {c['wakes']} wakes>"
        )

    def _repr_html_(self) -> str:
        from .render import snapshot_html

        return snapshot_html(self)


def snapshot_at(history: PoolLog, cursor: int | None = None, *, strict: bool = True) -> Snapshot:
    """Build the snapshot of ``history`` at ``cursor``; see :meth:`PoolHistory.snapshot`."""
    from .arguments import flag_argument

    strict = flag_argument(strict, "strict")
    index = history.index
    cursor = index.head if cursor is None else index.check_cursor(cursor)
    index.check_replay(cursor, strict=strict)
    config = cast(dict, index.config_at(cursor)[0])  # check_replay made sure there is one
    position = index.position(cursor)
    return Snapshot(
        history,
        index.seqs[position - 1],
        config,
        index.created_at(cursor),
        index.live_positions("members", cursor),
        index.live_positions("messages", cursor, ordered=False),
        index.live_positions("wakes", cursor, ordered=False),
        index,
    )
