"""What if: a pool's history with some runs, agents or records taken out.

:func:`without` removes records from a loaded pool's log -- the records of
runs, of every run of some agents, or records named by seq -- and folds the
rest with the same :class:`~poolscope.fold.PoolFold` that every other view
uses, into a :class:`WhatIf`: a :class:`~poolscope.history.PoolHistory` with
the whole API (``snapshot``, the frames, ``diff``, ``history_of``,
``explain``, the plots, ``explore``).  Cursors keep their original values,
so a cursor of the what-if is the same moment as in the real pool (its head
is the pool's, even when the log's last records were removed), and its
snapshot at any cursor is what the SDK would rebuild from a copy of the
database with those rows deleted (at a removed seq, the state after the last
kept record before it).

Unlike "skip this action" in Redux DevTools, consequences that stop making
sense are flagged, not hidden: ``.orphans`` lists messages still delivered
to or addressed to a removed run, replies to messages that are gone, wakes
watching a removed run, and status changes (or departures) whose earlier
records were removed.

Example::

    >>> alt = pool.without(runs=["run.alpha.planner-2"])
    >>> alt.messages_df().status.value_counts()
    status
    delivered    256
    failed        61
    responded     47
    expired       20
    timed_out     14
    cancelled      7
    accepted       0
    Name: count, dtype: int64
    >>> alt.orphans.reason.value_counts()
    reason
    delivered to removed run    59
    watches removed run         36
    addressed to removed run    12
    reply to removed message     7
    Name: count, dtype: int64
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from . import wire
from .arguments import names_argument, seqs_argument, upto_argument
from .errors import InvalidInputError, UnknownKeyError
from .fold import MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE
from .history import PoolHistory, Record, _limit
from .index import MAX_SEQ, PoolIndex, gc_paused
from .relations import relations

__all__ = ["without", "WhatIf", "ORPHAN_COLUMNS"]

ORPHAN_COLUMNS: dict[str, str] = {
    "cursor": "the kept record that no longer makes sense",
    "kind": "its kind",
    "id": "its message id, condition id or run id",
    "reason": "delivered to removed run, addressed to removed run, reply to removed message, "
    "watches removed run, follows removed record, left without its join",
    "removed": "what it refers to that was removed: a run id, a message id, or the removed record's cursor",
}


class WhatIf(PoolHistory):
    """A pool history minus some records, folded again (see :func:`without`).

    ``base`` is the history it was made from; ``removed_runs`` the runs
    taken out (named, or through their agent); ``removed`` the cursors of
    the records removed; ``orphans`` the kept records that refer to
    something removed (columns :data:`ORPHAN_COLUMNS`).
    """

    def __init__(
        self,
        base: PoolHistory,
        runs: Iterable[str] = (),
        agents: Iterable[str] = (),
        records: Iterable[int] = (),
    ) -> None:
        # not PoolHistory.__init__: nothing is read from the file, the base's index is filtered
        self.db = base.db
        self.pool_id = base.pool_id
        self.base = base
        self.runs = tuple(names_argument(runs, "runs", "run id") or ())
        self.agents = tuple(names_argument(agents, "agents", "agent id") or ())
        self.records_removed = tuple(seqs_argument(records, "records") or ())
        self._build()

    # ------------------------------------------------------------- build
    @gc_paused()
    def _build(self) -> None:
        base = self.base.index
        rel = relations(base)
        runs = rel.runs
        codes = set()
        for run in self.runs:
            code = rel.run_code(run)
            if code < 0:
                suggestions = rel.close_matches(run)
                hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
                raise UnknownKeyError(
                    f"no record names the run {run!r}{hint}",
                    suggestions=suggestions,
                    path=self.path,
                    pool_id=self.pool_id,
                )
            codes.add(code)
        for agent in self.agents:
            agent_code = runs["agent_code"].get(agent)
            if agent_code is None:
                import difflib

                suggestions = difflib.get_close_matches(agent, [a for a in runs["agents"] if isinstance(a, str)])
                hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
                raise UnknownKeyError(
                    f"no run of this pool joined as agent {agent!r}{hint}",
                    suggestions=suggestions,
                    path=self.path,
                    pool_id=self.pool_id,
                )
            codes.update(runs["join_run"][runs["join_agent"] == agent_code].tolist())
        removed_codes = np.array(sorted(codes), dtype=np.int64)
        self.removed_runs: tuple[str, ...] = tuple(runs["names"][c] for c in removed_codes.tolist())
        seq = rel.seq
        mask = np.zeros(rel.n, dtype=bool)
        if len(removed_codes):
            for column in ("member", "sender", "waiting"):
                mask |= np.isin(runs[column], removed_codes)
        if self.records_removed:
            asked = sorted(set(self.records_removed))
            # a seq no record can have (0 or less, past 2^63-2) is simply not there
            wanted = np.asarray([s for s in asked if 0 < s <= MAX_SEQ], dtype=np.int64)
            at = np.searchsorted(seq, wanted)
            found = np.zeros(len(wanted), dtype=bool)
            inside = at < len(seq)
            found[inside] = seq[at[inside]] == wanted[inside]
            if len(wanted) != len(asked) or not found.all():
                missing = sorted([s for s in asked if not 0 < s <= MAX_SEQ] + wanted[~found].tolist())[:5]
                raise InvalidInputError(
                    f"no record with seq {', '.join(map(str, missing))} in this pool (head {base.head})",
                    path=self.path,
                    pool_id=self.pool_id,
                )
            mask[at] = True
        keep = np.flatnonzero(~mask)
        entries, seqs = base.entries, base.seqs
        index = PoolIndex(base.path, base.pool_id)
        kept_seqs = seq[keep].tolist()
        kept_entries = [entries[p] for p in keep.tolist()] if len(keep) != len(seqs) else list(entries)
        index.extend(kept_seqs, kept_entries)  # the one fold, over the records kept
        index.log_end = base.head  # removed last records leave the log's head a cursor of the what-if
        kept = set(kept_seqs) if base.problems else set()
        index.problems = {s: e for s, e in base.problems.items() if s in kept}
        self.index = index
        self._built_from = len(base)  # the base's records this what-if was folded from
        self._folded_head = base.head  # and the head they end at: records() reads no further
        self._mask = mask
        self.removed: np.ndarray = seq[mask]
        self._removed_codes = removed_codes
        self._orphans: pd.DataFrame | None = None

    # ----------------------------------------------------------- orphans
    @property
    def orphans(self) -> pd.DataFrame:
        """Kept records that refer to something removed (see :data:`ORPHAN_COLUMNS`), by cursor."""
        if self._orphans is None:
            self._orphans = self._find_orphans()
        return self._orphans

    @gc_paused()
    def _find_orphans(self) -> pd.DataFrame:
        base = self.base.index
        rel = relations(base)
        runs = rel.runs
        names = runs["names"]
        entries = base.entries
        seq, kind, mask = rel.seq, rel.kind, self._mask
        rows: list[tuple[int, str, str, str, str]] = []

        def add(p: int, reason: str, removed: Any) -> None:
            entry = entries[p]
            rows.append((int(seq[p]), wire.KINDS[entry[0]], str(entry[1]), reason, str(removed)))

        removed = self._removed_codes
        if len(removed):
            head = self.index.head
            live = self.index.live_positions("messages", head, ordered=False) if len(self.index) else np.zeros(0, int)
            # back to positions in the base index (same seqs)
            original = np.searchsorted(seq, np.asarray(self.index.seqs, dtype=np.int64)[live])
            offsets = runs["offsets"]
            counts = offsets[original + 1] - offsets[original]
            from .flows import _ranges

            flat = runs["recipients"][_ranges(offsets[original], counts)]
            owner = np.repeat(original, counts)
            hit = np.isin(flat, removed)
            done = set()
            for p, code in zip(owner[hit].tolist(), flat[hit].tolist()):
                if (p, code) not in done:
                    done.add((p, code))
                    add(p, "delivered to removed run", names[code])
            targets = runs["target"][original]
            for p, code in zip(
                original[np.isin(targets, removed)].tolist(), targets[np.isin(targets, removed)].tolist()
            ):
                add(p, "addressed to removed run", names[code])
            removed_names = {names[c] for c in removed.tolist()}
            wakes = self.index.live_positions("wakes", head, ordered=False) if len(self.index) else np.zeros(0, int)
            for p in np.searchsorted(seq, np.asarray(self.index.seqs, dtype=np.int64)[wakes]).tolist():
                extra = entries[p][12]
                watched = extra[4] if extra is not None else None
                if watched:
                    for run in watched:
                        if run in removed_names:
                            add(p, "watches removed run", run)
        # messages gone entirely, and the kept replies to them
        gone = {str(entries[p][1]) for p in np.flatnonzero(mask & (kind == RUN_MESSAGE)).tolist()}
        gone -= set(self.index.fold.messages)
        if gone:
            replies = rel.by_text("reply_to")
            for message_id in gone:
                found = replies.get(message_id)
                if found is not None:
                    for p in found[~mask[found]].tolist():
                        add(p, "reply to removed message", message_id)
        # kept records of a message or wake whose previous record was removed
        prev = rel.prev
        follows = np.flatnonzero(~mask & (prev >= 0))
        follows = follows[mask[prev[follows]]]
        for p in follows.tolist():
            add(p, "follows removed record", int(seq[prev[p]]))
        # departures whose join was removed
        changes = base.arrays()["member_changes"]
        if mask[changes].any():
            latest: dict[str, int] = {}
            for p in changes.tolist():
                entry = entries[p]
                if entry[0] == MEMBER_LEFT and not mask[p]:
                    q = latest.get(entry[1])
                    if q is not None and mask[q] and entries[q][0] == MEMBER_JOINED:
                        add(p, "left without its join", int(seq[q]))
                latest[entry[1]] = p
        rows.sort()
        frame = pd.DataFrame(rows, columns=list(ORPHAN_COLUMNS))
        frame["cursor"] = frame["cursor"].astype(np.int64)
        return frame

    # ------------------------------------------------------------ reading
    def refresh(self, *, reconnect: bool = True) -> int:
        """Refresh the base history, then fold again with the same removals; return how many kept records were added.

        Records the base gained since this what-if was folded count too, whoever
        refreshed the base (``db.refresh()``, the base's own ``refresh()``, an
        explorer's live poll).  Only records after the head it was folded from
        are counted as added: a new run of a removed agent also takes that
        run's earlier records out, which is no negative count."""
        folded = self._folded_head
        self.base.refresh(reconnect=reconnect)
        if len(self.base.index) == self._built_from:
            return 0
        self._build()
        return len(self.index) - self.index.position(folded)

    def iter_records(
        self,
        after: int | None = None,
        upto: int | None = None,
        *,
        kinds: str | list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """The kept records (as :meth:`PoolHistory.iter_records`): those this
        what-if folded, so none past the base's head when it was folded (the
        base's file may have grown since; :meth:`refresh` folds those too)."""
        bound = upto_argument(upto, path=self.path, pool_id=self.pool_id)
        upto = self._folded_head if bound is None else min(bound, self._folded_head)
        left = _limit(limit)
        return self._kept_records(self.base.iter_records(after, upto, kinds=kinds), set(self.removed.tolist()), left)

    @staticmethod
    def _kept_records(records: Iterator[Record], removed: set[int], limit: int | None) -> Iterator[Record]:
        count = 0
        for record in records:
            if record.cursor in removed:
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            yield record

    def follow(self, *args: Any, **kwargs: Any) -> Iterator[Record]:
        """Not available: a what-if is not a file that grows (``base.follow()`` is)."""
        raise InvalidInputError("a what-if history does not follow the file; follow its base and call refresh()")

    def without(self, runs: Any = (), agents: Any = (), records: Any = ()) -> WhatIf:
        """Remove more (from this what-if)."""
        return WhatIf(self, runs, agents, records)

    def removal_text(self) -> str:
        """What was removed, in words."""
        parts = []
        if self.agents:
            parts.append(f"agents {', '.join(self.agents)}")
        if self.runs or self.removed_runs:
            named = [r for r in self.removed_runs if r not in self.runs]
            runs_text = ", ".join(self.runs)
            if named:
                runs_text += (", " if runs_text else "") + f"{len(named)} run(s) of those agents"
            parts.append(f"runs {runs_text}")
        if self.records_removed:
            parts.append(
                f"records {', '.join(map(str, self.records_removed[:10]))}"
                + (" …" if len(self.records_removed) > 10 else "")
            )
        return "; ".join(parts) or "nothing"

    def __repr__(self) -> str:
        return (
            f"<WhatIf {self.pool_id!r} without {self.removal_text()}: {len(self.index)} of "
            f"{len(self.base.index)} records kept, head {self.head}, {len(self.orphans)} orphans>"
        )

    def _repr_html_(self) -> str:
        from . import render

        return render.whatif_html(self)


def without(history: PoolHistory, runs: Any = (), agents: Any = (), records: Any = ()) -> WhatIf:
    """``history`` with records removed and the rest folded by the same fold.

    * ``runs``: for each run, its ``member_joined``/``member_left`` records,
      the messages it sent (``from``) and the wakes it registered
      (``condition.run_id``);
    * ``agents``: the same for every run that ever joined as one of them;
    * ``records``: seqs of records to remove as well.

    Nothing else is removed: a message *to* a removed run stays (and is
    listed in ``.orphans``).  The result's cursors are the original ones;
    its snapshot at cursor ``k`` equals the snapshot of a copy of the
    database from which the same rows were deleted.  An unknown run or
    agent raises :class:`~poolscope.errors.UnknownKeyError`; a seq not in
    the log :class:`~poolscope.errors.InvalidInputError`.

    >>> alt = pool.without(runs="run.alpha.planner-2")
    >>> alt.snapshot().counts(), pool.snapshot().counts()
    ({'members': 9, 'topics': 4, 'messages': 405, 'wakes': 117}, {'members': 9, 'topics': 4, 'messages': 442, 'wakes': 128})
    """
    return WhatIf(history, runs, agents, records)
