"""Who touches what: the relations between a pool's records, as numpy columns.

The index (:mod:`poolscope.index`) keeps one :class:`~poolscope.fold.Entry`
per record and, from the fold, which record replaces which.  The questions
of :mod:`poolscope.why`, :mod:`poolscope.flows`, :mod:`poolscope.compare`
and :mod:`poolscope.whatif` -- which records mention this run, who sent this
message, which agent was that run at that cursor -- need the same columns
as integer codes, so that they cost a numpy selection instead of a loop
over a million records.  :func:`relations` builds them once per loaded
index (and again only when the index grew), each group on first use:

* ``prev`` -- for every message and wake record, the position of the
  record of the same key it replaced (-1 for the first);
* run codes -- ``runs`` (the vocabulary: every run id a record names) and,
  per record, the member's run, the sender, the run addressed, the waiting
  run, with the recipients as a flat array and offsets;
* the agent of a run at a position (:meth:`Relations.agent_at`), from the
  ``member_joined`` records;
* mentions -- the records that name a run and in which role
  (:meth:`Relations.run_mentions`, a scan of the run-code columns); per
  idempotency key and per replied-to message id, the positions of the
  records that carry it (grouped on first use).

Example::

    >>> rel = relations(pool.index)
    >>> positions, roles = rel.run_mentions("run.alpha.planner-2")
    >>> positions[:5], roles[:5]
    (array([ 3,  5,  8,  9, 10]), array([0, 1, 4, 4, 4], dtype=int8))
"""

from __future__ import annotations

import gc
import weakref
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from .fold import MEMBER_JOINED
from .index import NEVER, gc_paused
from .load import FREEZE_THRESHOLD

if TYPE_CHECKING:  # pragma: no cover
    from .index import PoolIndex

#: How a record names a run (the ``role`` of :meth:`Relations.run_mentions`).
ROLES: tuple[str, ...] = ("member", "sender", "target", "recipient", "waiting")
MEMBER, SENDER, TARGET, RECIPIENT, WAITING = range(len(ROLES))

_CACHE: weakref.WeakKeyDictionary[Any, Relations] = weakref.WeakKeyDictionary()


def relations(index: PoolIndex) -> Relations:
    """The :class:`Relations` of a loaded index (cached; rebuilt when the index grew)."""
    cached = _CACHE.get(index)
    if cached is None or cached.n != len(index):
        cached = Relations(index)
        _CACHE[index] = cached
    return cached


def _settle(n: int) -> None:
    """After building columns of a large index: move what is alive now out of
    the cyclic collector's way (``gc.freeze``, as a large load does), so that
    later lookups do not pay for collections walking these objects."""
    if n >= FREEZE_THRESHOLD:
        gc.freeze()


def _code(values: list, vocabulary: dict[Any, int]) -> np.ndarray:
    """Codes of ``values`` in ``vocabulary`` (new values added in order of first
    appearance; None and other non-strings are -1).  A dict lookup per value:
    the index shares one ``str`` per id, whose hash is cached, so this is much
    cheaper than hashing an object array (``pandas.factorize``)."""
    try:
        distinct = dict.fromkeys(values)  # in order of first appearance
    except TypeError:  # an id of another JSON type (a list...): not a run id
        values = [v if v.__class__ is str else None for v in values]
        distinct = dict.fromkeys(values)
    for value in distinct:
        if value.__class__ is str and value not in vocabulary:
            vocabulary[value] = len(vocabulary)
    get = vocabulary.get
    return np.fromiter(map(get, values, repeat(-1)), dtype=np.int64, count=len(values))


class Groups:
    """Positions grouped by a text value, without a dict or an array per value:
    the values' hashes (``str`` caches its hash: no string is hashed again)
    sorted once; a lookup takes the slice of its hash and keeps the records
    whose value is the one asked for (hash collisions are checked away)."""

    def __init__(self, index: PoolIndex, field: str, positions: np.ndarray) -> None:
        self.index, self.field = index, field
        values = index.field(field, positions)
        try:
            hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(positions))
        except TypeError:  # a value that is not text (only text is ever looked up): hashed as 0
            hashes = np.fromiter((hash(v) if v.__class__ is str else 0 for v in values), np.int64, len(positions))
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order]
        self.positions = positions[order]

    def get(self, value: Any) -> np.ndarray | None:
        """Ascending positions of the records holding ``value`` (None: no record)."""
        if value.__class__ is not str:
            return None
        h = hash(value)
        lo = int(np.searchsorted(self.hashes, h, side="left"))
        hi = int(np.searchsorted(self.hashes, h, side="right"))
        if lo == hi:
            return None
        candidates = self.positions[lo:hi]
        same = [found == value for found in self.index.field(self.field, candidates)]
        chosen = candidates[np.asarray(same, dtype=bool)]
        return chosen if len(chosen) else None


class Relations:
    """Numpy columns of one loaded index; see the module docstring.

    Every array is indexed by *position* (0-based, in seq order) unless its
    name says otherwise.  Built lazily, group by group.
    """

    def __init__(self, index: PoolIndex) -> None:
        self.index = index
        self.n = len(index)
        arrays = index.arrays()
        self.seq: np.ndarray = arrays["seq"]
        self.kind: np.ndarray = arrays["kind"]
        self._prev: np.ndarray | None = None
        self._runs: dict[str, Any] | None = None
        self._by_text: dict[str, Groups] = {}
        self._joins: dict[str, list[int]] = {}  # per run, the positions of its joins
        self._known: list[str] | None = None
        self._members: dict[Any, list[int]] | None = None

    # ------------------------------------------------------------ chains
    @property
    def prev(self) -> np.ndarray:
        """Per position, the position of the record of the same message or
        wake that it replaced (-1: the first, or not a message/wake)."""
        if self._prev is None:
            arrays = self.index.arrays()
            prev = np.full(self.n, -1, dtype=np.int64)
            for namespace in ("messages", "wakes"):
                positions = arrays[namespace]
                following = arrays["next"][positions]
                replaced = following != NEVER
                successor = np.searchsorted(self.seq, following[replaced])
                prev[successor] = positions[replaced]
            self._prev = prev
        return self._prev

    def chain(self, last: int) -> list[int]:
        """Positions of the records of one message or wake, oldest first,
        ending at the position ``last``."""
        prev = self.prev
        out = [last]
        while (p := int(prev[out[-1]])) >= 0:
            out.append(p)
        out.reverse()
        return out

    def latest(self, namespace: str, key: str, upto_position: int) -> int | None:
        """Position of the latest record of message (``"messages"``) or wake
        (``"wakes"``) ``key`` among the first ``upto_position`` records."""
        fold = self.index.fold
        last = (fold.messages if namespace == "messages" else fold.wakes).get(key)
        if last is None:
            return None
        prev = self.prev
        while last >= upto_position:
            last = int(prev[last])
            if last < 0:
                return None
        return last

    # -------------------------------------------------------------- runs
    @property
    def runs(self) -> dict[str, Any]:
        """Run codes: ``names`` (the vocabulary), per position ``member`` (a
        membership record's run), ``sender``, ``target`` (a run-addressed
        message's run), ``waiting`` (a wake's run) -- -1 where none -- and
        the recipients as ``recipients`` (codes) with ``offsets`` (per position)."""
        if self._runs is None:
            self._runs = self._build_runs()
        return self._runs

    @gc_paused()
    def _build_runs(self) -> dict[str, Any]:
        index = self.index
        entries = index.entries
        arrays = index.arrays()
        n = self.n
        members = arrays["member_changes"]
        messages = arrays["messages"]
        wakes = arrays["wakes"]
        member_runs = [entries[p][1] for p in members.tolist()]
        message_entries = [entries[p] for p in messages.tolist()]
        senders = list(map(itemgetter(6), message_entries))
        ttypes = list(map(itemgetter(7), message_entries))
        tids = [tid if ttype == "run" else None for ttype, tid in zip(ttypes, map(itemgetter(8), message_entries))]
        delivered = list(map(itemgetter(9), message_entries))
        lengths = np.fromiter(map(len, delivered), dtype=np.int64, count=len(delivered))
        flat = list(chain.from_iterable(delivered))
        waiting = [entries[p][4] for p in wakes.tolist()]
        vocabulary: dict[Any, int] = {}
        parts = [_code(values, vocabulary) for values in (member_runs, senders, tids, waiting, flat)]
        names = list(vocabulary)

        def column(positions: np.ndarray, values: np.ndarray) -> np.ndarray:
            out = np.full(n, -1, dtype=np.int64)
            out[positions] = values
            return out

        per_position = np.zeros(n, dtype=np.int64)
        per_position[messages] = lengths
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_position, out=offsets[1:])
        # agents: from the joins, per join its run code and agent code
        joins = arrays["members"]
        join_runs = column(members, parts[0])[joins]
        agent_vocabulary: dict[Any, int] = {}
        agents = _code([entries[p][5] for p in joins.tolist()], agent_vocabulary)
        agent_names = list(agent_vocabulary)
        order = np.lexsort((joins, join_runs))
        _settle(n)
        return {
            "names": names,
            "code": vocabulary,
            "member": column(members, parts[0]),
            "sender": column(messages, parts[1]),
            "target": column(messages, parts[2]),
            "waiting": column(wakes, parts[3]),
            "recipients": parts[4],
            "offsets": offsets,
            "agents": agent_names,
            "agent_code": agent_vocabulary,
            "join_run": join_runs[order],
            "join_pos": joins[order],
            "join_agent": agents[order],
        }

    def run_code(self, run_id: str) -> int:
        """The code of a run id (-1 when no record names it)."""
        return self.runs["code"].get(run_id, -1)

    def recipients_of(self, position: int) -> np.ndarray:
        """Recipient run codes of the message record at ``position``."""
        runs = self.runs
        return runs["recipients"][runs["offsets"][position] : runs["offsets"][position + 1]]

    def agent_at(self, run_codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Agent codes (into ``runs["agents"]``) of runs at positions: the
        agent of the run's latest join at or before the position, else of its
        first join after it, else -1 (a run that never joined)."""
        runs = self.runs
        join_run, join_pos, join_agent = runs["join_run"], runs["join_pos"], runs["join_agent"]
        run_codes = np.asarray(run_codes, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        out = np.full(len(run_codes), -1, dtype=np.int64)
        if not len(join_run) or not len(run_codes):
            return out
        width = self.n + 1
        keys = join_run * width + join_pos
        queries = run_codes * width + positions
        at = np.searchsorted(keys, queries, side="right") - 1
        before = (at >= 0) & (join_run[np.clip(at, 0, None)] == run_codes) & (run_codes >= 0)
        out[before] = join_agent[at[before]]
        after = np.clip(at + 1, 0, len(keys) - 1)
        later = ~before & (join_run[after] == run_codes) & (run_codes >= 0)
        out[later] = join_agent[after[later]]
        return out

    def agent_of_run(self, run_id: str, position: int) -> str | None:
        """The agent of ``run_id`` at ``position`` (the rule of :meth:`agent_at`),
        or None; from the run's membership records only (no run codes needed)."""
        import bisect

        joins = self._joins.get(run_id)
        if joins is None:
            joins = self._joins[run_id] = [p for p in self.member_positions(run_id) if self.kind[p] == MEMBER_JOINED]
        if not joins:
            return None
        at = bisect.bisect_right(joins, position) - 1
        entry = self.index.entries[joins[max(at, 0)]]
        return entry[5] if isinstance(entry[5], str) else None

    def member_positions(self, run_id: str) -> list[int]:
        """Positions of the ``member_joined``/``member_left`` records of one run, ascending."""
        if self._members is None:
            entries = self.index.entries
            grouped: dict[Any, list[int]] = {}
            for p in self.index.arrays()["member_changes"].tolist():
                key = entries[p][1]
                if key in grouped:
                    grouped[key].append(p)
                else:
                    grouped[key] = [p]
            self._members = grouped
        return self._members.get(run_id, [])

    # ---------------------------------------------------------- mentions
    def run_mentions(self, run_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Positions (ascending; a position repeats once per role) of the
        records naming ``run_id``, and each one's role (index into :data:`ROLES`).
        A numpy scan of the run-code columns (a few milliseconds at 1M records)."""
        code = self.run_code(run_id)
        if code < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
        runs = self.runs
        positions = []
        roles = []
        for role_code, name in ((MEMBER, "member"), (SENDER, "sender"), (TARGET, "target"), (WAITING, "waiting")):
            where = np.flatnonzero(runs[name] == code)
            positions.append(where)
            roles.append(np.full(len(where), role_code, dtype=np.int8))
        hits = np.flatnonzero(runs["recipients"] == code)
        positions.append(np.searchsorted(runs["offsets"], hits, side="right") - 1)
        roles.append(np.full(len(hits), RECIPIENT, dtype=np.int8))
        position = np.concatenate(positions)
        role = np.concatenate(roles)
        order = np.argsort(position * len(ROLES) + role, kind="stable")
        return position[order], role[order]

    def by_text(self, field: str) -> Groups:
        """Positions of the message and wake records per value of ``field``
        (``"idem"``: idempotency key, ``"reply_to"``: the message replied to):
        ``by_text(field).get(value)`` is an ascending array, or None."""
        if field not in self._by_text:
            self._by_text[field] = self._group_text(field)
        return self._by_text[field]

    @gc_paused()
    def _group_text(self, field: str) -> Groups:
        arrays = self.index.arrays()
        candidates = np.concatenate([arrays["messages"], arrays["wakes"]]) if field == "idem" else arrays["messages"]
        candidates.sort()
        return Groups(self.index, field, candidates)

    # ------------------------------------------------------- suggestions
    def known_keys(self) -> list[str]:
        """Every message id, condition id, run id and idempotency key, sorted (for suggestions)."""
        if self._known is None:
            fold = self.index.fold
            keys = set(fold.messages) | set(fold.wakes) | set(fold.message_dedupe) | set(fold.wake_dedupe)
            keys.update(name for name in self.runs["names"] if isinstance(name, str))
            self._known = sorted(k for k in keys if isinstance(k, str))
        return self._known

    def close_matches(self, key: str, n: int = 5) -> list[str]:
        """Known keys that look like ``key`` (difflib, over the keys near it
        in sorted order when there are many)."""
        import bisect
        import difflib

        known = self.known_keys()
        if len(known) > 20_000:
            at = bisect.bisect_left(known, key)
            pool = known[max(0, at - 500) : at + 500]
            trimmed = key[: max(1, len(key) - 3)]
            at = bisect.bisect_left(known, trimmed)
            pool += known[max(0, at - 500) : at + 500]
            pool = list(dict.fromkeys(pool))
        else:
            pool = known
        return difflib.get_close_matches(key, pool, n=n, cutoff=0.6)


def membership_changes(rel: Relations, run_id: str) -> list[tuple[int, int, str]]:
    """``(position, seq, "joined"|"left")`` of the membership records of one run, in order."""
    kinds = rel.kind
    seqs = rel.seq
    return [(p, int(seqs[p]), "joined" if kinds[p] == MEMBER_JOINED else "left") for p in rel.member_positions(run_id)]


def member_at(changes: list[tuple[int, int, str]], position: int) -> bool:
    """Whether the run was a member just after the record at ``position``
    (``changes``: :func:`membership_changes`; -1: before any record)."""
    state = False
    for p, _, what in changes:
        if p > position:
            break
        state = what == "joined"
    return state


__all__ = ["relations", "Relations", "ROLES", "membership_changes", "member_at"]
