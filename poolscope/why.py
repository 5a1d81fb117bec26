"""Why: the history of one message, wake, run or idempotency key, and a plain account of it.

:func:`history_of` lists the records that touched a key -- one row per
record, with the status before and after it -- and :func:`explain` tells
the same story in sentences, each carrying the cursors of the records it
rests on.  Both read only the pool's columnar index (no payload is fetched),
so they answer in milliseconds on a million-record pool.

Example::

    >>> pool = poolscope.open("sample_data/demo.db").pool("pool.alpha")
    >>> pool.history_of("msg.alpha.17")[["cursor", "status_before", "status_after"]]
       cursor status_before status_after
    0      46           NaN       failed
    >>> print(pool.explain("msg.alpha.17"))
    msg.alpha.17 was first recorded as failed at 46 from run.alpha.ghost-17 to run run.alpha.planner-2. It was delivered to nobody (no recipient in its receipt at 46). Its sender run.alpha.ghost-17 was not a member at 46: it never joined this pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import wire
from .arguments import choice_argument, count_argument, upto_argument
from .errors import InvalidInputError, UnknownKeyError
from .fold import MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE
from .relations import RECIPIENT, ROLES, SENDER, TARGET, WAITING, Relations, relations

if TYPE_CHECKING:  # pragma: no cover
    from .history import PoolHistory

__all__ = [
    "history_of",
    "explain",
    "recent_failures",
    "History",
    "Explanation",
    "Sentence",
    "KEY_TYPES",
    "HISTORY_COLUMNS",
]

#: What a key can be, in the order a key is looked up.
KEY_TYPES: tuple[str, ...] = ("message", "wake", "run", "idempotency_key")

#: The columns of :func:`history_of`: name -> meaning.
HISTORY_COLUMNS: dict[str, str] = {
    "cursor": "the record's seq",
    "kind": "record kind",
    "role": "how the record touches the key: message, reply, wake, member, sender, target, recipient, waiting, "
    "idempotency_key (roles joined with '+' when several)",
    "id": "the record's message id, wake condition id or (membership records) run id",
    "status_before": "status of that message or wake before this record (membership: 'member' or 'not a member'); "
    "missing for its first record",
    "status_after": "its status after this record",
    "sender": "run_message: the sending run",
    "target": "run_message: what it was addressed to, as type:id",
    "recipients": "run_message: delivered_to of this receipt",
    "run_id": "wake: the waiting run; membership: the member run",
    "agent_id": "membership: the member's agent; run_message: the sender's agent; wake: the waiting run's agent "
    "(the agent of the run's latest join at that cursor)",
    "reply_to": "run_message: the message it replies to",
    "changed": "fields that differ from the previous record of the same message, wake or member ('new' for the first)",
}

_NOT_MEMBER = "not a member"
_STATUS_CATEGORIES = [*dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES), "member", _NOT_MEMBER]
_STRING = pd.StringDtype()
_KIND_CATEGORIES = [*wire.KINDS, "damaged"]
_STATUS_DTYPE = pd.CategoricalDtype(_STATUS_CATEGORIES)
_STATUS_CODES = {s: i for i, s in enumerate(_STATUS_CATEGORIES)}
_CATEGORIES: dict[str, tuple[pd.CategoricalDtype, dict]] = {
    "kind": (pd.CategoricalDtype(_KIND_CATEGORIES), {k: i for i, k in enumerate(_KIND_CATEGORIES)}),
    "status_before": (_STATUS_DTYPE, _STATUS_CODES),
    "status_after": (_STATUS_DTYPE, _STATUS_CODES),
}
_VERB = {
    "accepted": "accepted",
    "delivered": "delivered",
    "responded": "responded to",
    "failed": "failed",
    "timed_out": "timed out",
    "expired": "expired",
    "cancelled": "cancelled",
    "registered": "registered",
    "triggered": "triggered",
}
_MESSAGE_FIELDS = (
    ("status", 2),
    ("idempotency_key", 3),
    ("sender", 6),
    ("target_type", 7),
    ("target_id", 8),
    ("delivered_to", 9),
    ("reply_to", 10),
    ("journal_cursor", 11),
)
_MESSAGE_EXTRA = ("expires_at_millis", "expected_responses", "response_timeout_millis", "content_ref")


def _verb(status: Any) -> str:
    return _VERB.get(status, str(status))


_WAKE_FIELDS = (("status", 2), ("idempotency_key", 3), ("run_id", 4), ("journal_cursor", 11))
_WAKE_EXTRA = ("timeout_millis", "resume_with", "families", "kinds", "runs")


# ------------------------------------------------------------------ lookup
def _upto_position(history: PoolHistory, upto: Any) -> int:
    """How many records lie at or before ``upto``, taken as the frames take it
    (:func:`~poolscope.arguments.upto_argument`: None or past the head is the head)."""
    index = history.index
    cursor = upto_argument(upto, path=history.path, pool_id=history.pool_id)
    if cursor is None or cursor >= index.head:
        return len(index)
    return index.position(cursor)


def _at_position(history: PoolHistory, at: Any) -> int:
    """How many records lie at or before the cursor ``at`` (None: the head), which
    must be one of the pool's cursors, as :meth:`snapshot`'s is."""
    index = history.index
    if at is None:
        return len(index)
    return index.position(index.check_cursor(at))


def _resolve(
    history: PoolHistory, rel: Relations, key: str, key_type: str | None, n: int
) -> tuple[str, list[int], list[str]]:
    """The key's type, and the positions (< n, ascending) of the records that
    touch it with each one's role."""
    if not isinstance(key, str):
        raise InvalidInputError(
            f"a key is a message id, condition id, run id or idempotency key (a str), not {type(key).__name__}",
            path=history.path,
            pool_id=history.pool_id,
        )
    if key_type is not None:
        key_type = choice_argument(key_type, "key_type", KEY_TYPES, path=history.path, pool_id=history.pool_id)
    for what in KEY_TYPES if key_type is None else (key_type,):
        found = _find(rel, what, key, n)
        if found is not None:
            return what, *found
    total = len(history.index)
    cutoff = int(rel.seq[n - 1]) if n else 0
    later = None
    if n < total:  # named only after the cursor: say when, rather than suggest the key itself
        for what in KEY_TYPES if key_type is None else (key_type,):
            found = _find(rel, what, key, total)
            if found is not None and (first := int(rel.seq[found[0][0]])) > cutoff:
                later = first if later is None else min(later, first)
    # the key names something of another type: say which, rather than suggest the key itself
    other = None
    if later is None and key_type is not None:
        other = next((what for what in KEY_TYPES if what != key_type and _find(rel, what, key, n) is not None), None)
    suggestions = [] if later is not None or other is not None else [k for k in rel.close_matches(key) if k != key]
    hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
    if later is not None:
        hint = f"; its first record is at seq {later}"
    elif other is not None:
        hint = f"; it is a {other.replace('_', ' ')} (key_type={other!r})"
    at = "" if n == total else f" at or before cursor {cutoff}"
    looked = "message, wake, run or idempotency key" if key_type is None else key_type.replace("_", " ")
    raise UnknownKeyError(
        f"no record names the {looked} {key!r}{at}{hint}",
        suggestions=suggestions,
        path=history.path,
        pool_id=history.pool_id,
    )


def _find(rel: Relations, what: str, key: str, n: int) -> tuple[list[int], list[str]] | None:
    if what in ("message", "wake"):
        last = rel.latest("messages" if what == "message" else "wakes", key, n)
        positions = rel.chain(last) if last is not None else []
        replies: list[int] = []
        if what == "message" and key in rel.index.fold.messages:
            # a message of this log: the replies to it count, those recorded before it included
            found = rel.by_text("reply_to").get(key)
            if found is not None:
                replies = found[found < n].tolist()
        if not replies:
            return (positions, [what] * len(positions)) if positions else None
        merged: dict[int, list[str]] = {p: [what] for p in positions}
        for p in replies:  # a message replying to itself: one row, "message+reply"
            merged.setdefault(p, []).append("reply")
        ordered = sorted(merged)
        return ordered, ["+".join(merged[p]) for p in ordered]
    if what == "run":
        positions_array, role_codes = rel.run_mentions(key)
        keep = positions_array < n
        positions_array, role_codes = positions_array[keep], role_codes[keep]
        if not len(positions_array):
            return None
        grouped: dict[int, list[str]] = {}
        for p, r in zip(positions_array.tolist(), role_codes.tolist()):
            grouped.setdefault(p, []).append(ROLES[r])
        return list(grouped), ["+".join(roles) for roles in grouped.values()]
    found = rel.by_text("idem").get(key)
    if found is None:
        return None
    found = found[found < n]
    if not len(found):
        return None
    return found.tolist(), ["idempotency_key"] * len(found)


# ----------------------------------------------------------------- history
class History(pd.DataFrame):
    """The records that touched one key (see :func:`history_of`): a DataFrame
    with ``key``, ``key_type`` and ``pool_id`` attributes and an HTML view
    that marks status changes."""

    _metadata = ["key", "key_type", "pool_id"]

    @property
    def _constructor(self) -> type[History]:
        return History

    def _repr_html_(self) -> str:
        from . import render

        return render.history_html(self)


def _target(entry: Any) -> str | None:
    if entry[7] is None:
        return None
    return f"{entry[7]}:{entry[8]}" if entry[8] is not None else str(entry[7])


def _changed(entry: Any, before: Any, fields: tuple, extra_names: tuple) -> list[str]:
    if before is None:
        return ["new"]
    out = [name for name, at in fields if entry[at] != before[at]]
    if entry[12] is not None and before[12] is not None:
        out += [name for name, a, b in zip(extra_names, entry[12], before[12]) if a != b]
    return out


def _member_changed(member: dict, before: dict | None) -> list[str]:
    if before is None:
        return ["new"]
    names = sorted(set(member) | set(before))
    return [name for name in names if member.get(name) != before.get(name)] or []


def _rows(history: PoolHistory, rel: Relations, positions: list[int], roles: list[str]) -> dict[str, list]:
    index = history.index
    entries, seqs = index.entries, rel.seq
    prev = rel.prev
    columns: dict[str, list] = {name: [] for name in HISTORY_COLUMNS}
    membership: dict[str, tuple[bool, dict | None]] = {}  # run -> (member now, its latest member dict)
    runs = None
    for p, role in zip(positions, roles):
        entry = entries[p]
        kind = entry[0]
        before = after = sender = target = run_id = reply = None
        agent: Any = None
        recipients = None
        changed: list[str] = []
        if kind in (RUN_MESSAGE, WAKE):
            q = int(prev[p])
            earlier = entries[q] if q >= 0 else None
            before = earlier[2] if earlier is not None else None
            after = entry[2]
            if kind == RUN_MESSAGE:
                sender, target, recipients, reply = entry[6], _target(entry), list(entry[9]), entry[10]
                changed = _changed(entry, earlier, _MESSAGE_FIELDS, _MESSAGE_EXTRA)
                agent = (sender, p)  # looked up below, all rows at once
            else:
                run_id = entry[4]
                changed = _changed(entry, earlier, _WAKE_FIELDS, _WAKE_EXTRA)
                agent = (run_id, p)
        elif kind in (MEMBER_JOINED, MEMBER_LEFT):
            run_id = str(entry[1])
            if run_id not in membership:
                if runs is None:
                    from .relations import membership_changes

                    runs = membership_changes
                state, latest = False, None
                for q, _, what in runs(rel, run_id):
                    if q >= p:
                        break
                    state = what == "joined"
                    latest = entries[q][12] if state else None
                membership[run_id] = (state, latest)
            state, latest = membership[run_id]
            before = "member" if state else _NOT_MEMBER
            if kind == MEMBER_JOINED:
                member = entry[12] if isinstance(entry[12], dict) else {}
                agent = member.get("agent_id")
                changed = _member_changed(member, latest) if state else ["new"]
                membership[run_id] = (True, member)
                after = "member"
            else:
                agent = (latest or {}).get("agent_id") if state else None
                changed = ["left"] if state else []
                membership[run_id] = (False, None)
                after = _NOT_MEMBER
        columns["cursor"].append(int(seqs[p]))
        columns["kind"].append(wire.KINDS[kind] if kind >= 0 else "damaged")
        columns["role"].append(role)
        columns["id"].append(entry[1])
        columns["status_before"].append(before)
        columns["status_after"].append(after)
        columns["sender"].append(sender)
        columns["target"].append(target)
        columns["recipients"].append(recipients)
        columns["run_id"].append(run_id)
        columns["agent_id"].append(agent)
        columns["reply_to"].append(reply)
        columns["changed"].append(changed)
    for i, agent in enumerate(columns["agent_id"]):
        if isinstance(agent, tuple):  # (run, position): the run's agent there, from its membership records
            run, position = agent
            columns["agent_id"][i] = rel.agent_of_run(run, position) if isinstance(run, str) else None
    return columns


def history_of(history: PoolHistory, key: str, upto: int | None = None, *, key_type: str | None = None) -> History:
    """Every record that touched ``key``, in order: one row per record.

    ``key`` is looked up as a message id, a wake condition id, a run id and
    an idempotency key, in that order (``key_type=`` picks one).  The
    records that touch it:

    * a **message**: its own ``run_message`` records, and those of the
      messages that reply to it (role ``reply``), also those recorded
      before its own first record; a message replying to itself has one
      row per record, role ``message+reply``;
    * a **wake** condition: its ``wake`` records;
    * a **run**: its ``member_joined``/``member_left`` records, the messages
      it sent (``sender``), was addressed (``target``: a run target) or
      delivered to (``recipient``), and the wakes it registered (``waiting``)
      -- a wake's event filter naming the run does not count, since a filter
      compiled against the members names every run;
    * an **idempotency key**: the message and wake records carrying it.

    ``upto=k`` stops at cursor ``k`` (as the frames take it: past the head, the
    head).  Columns: see :data:`HISTORY_COLUMNS`;
    ``status_after`` of a message's (wake's) last row is its status in
    ``messages_df(upto)`` (``wakes_df``).  An unknown key raises
    :class:`~poolscope.errors.UnknownKeyError`, whose ``suggestions`` are
    known keys that look like it.

    >>> pool.history_of("msg.alpha.2")[["cursor", "role", "status_before", "status_after"]]
       cursor     role status_before status_after
    0      14  message           NaN     accepted
    1      15  message      accepted    delivered
    2      18  message     delivered    responded
    3      27    reply           NaN       failed
    """
    n = _upto_position(history, upto)
    rel = relations(history.index)
    what, positions, roles = _resolve(history, rel, key, key_type, n)
    columns = _rows(history, rel, positions, roles)
    typed: dict[str, Any] = {}
    for name, values in columns.items():
        if name == "cursor":
            typed[name] = np.asarray(values, dtype=np.int64)
        elif name in _CATEGORIES:
            dtype, codes = _CATEGORIES[name]
            typed[name] = pd.Categorical.from_codes([codes.get(v, -1) for v in values], dtype=dtype)
        elif name in ("recipients", "changed"):
            column = np.empty(len(values), dtype=object)
            column[:] = values
            typed[name] = column
        else:
            typed[name] = pd.array(values, dtype=_STRING)
    frame = History(typed)
    frame.key, frame.key_type, frame.pool_id = key, what, history.pool_id
    return frame


# ----------------------------------------------------------------- explain
@dataclass
class Sentence:
    """One statement of an :class:`Explanation` and the cursors of the records it rests on."""

    text: str
    cursors: tuple[int, ...] = ()


@dataclass
class Explanation:
    """A plain-language account of a key's history (see :func:`explain`).

    ``sentences`` (each with the cursors backing it), ``facts`` (the same
    content as data), ``text`` (the sentences as one paragraph).
    """

    pool_id: str
    key: str
    key_type: str
    at: int
    sentences: list[Sentence] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @property
    def cursors(self) -> list[int]:
        """Every cursor cited, ascending."""
        return sorted({c for s in self.sentences for c in s.cursors})

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Explanation of {self.key_type} {self.key!r} at {self.at}: {self.text[:120]!r}>"

    def _repr_html_(self) -> str:
        from . import render

        return render.explanation_html(self)


def _ref(ref: Any) -> str:
    """A policy ref as kind:id[@version]."""
    if isinstance(ref, dict):
        text = f"{ref.get('kind')}:{ref.get('id')}"
        return text + (f"@{ref['version']}" if ref.get("version") is not None else "")
    return str(ref)


def _names(values: list[str], limit: int = 3) -> str:
    values = list(values)
    if len(values) <= limit:
        return _and(values)
    return ", ".join(values[:limit]) + f" and {len(values) - limit} more"


def _and(values: list[str]) -> str:
    if not values:
        return "nobody"
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " and " + values[-1]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Context:
    """What :func:`explain` reads: the index, its relations and a cutoff."""

    def __init__(self, history: PoolHistory, n: int) -> None:
        self.history = history
        self.index = history.index
        self.entries = history.index.entries
        self.rel = relations(history.index)
        self.seq = self.rel.seq
        self.n = n
        self._membership: dict[str, list[tuple[int, int, str]]] = {}

    def cursor(self, p: int) -> int:
        return int(self.seq[p])

    def membership(self, run: str) -> list[tuple[int, int, str]]:
        """``(position, seq, joined|left)`` of a run's membership records before the cutoff."""
        if run not in self._membership:
            from .relations import membership_changes

            self._membership[run] = [c for c in membership_changes(self.rel, run) if c[0] < self.n]
        return self._membership[run]

    def member_state(self, run: str, p: int) -> tuple[bool, tuple[int, int, str] | None]:
        """Was ``run`` a member just after position ``p``, and the membership record that made it so."""
        state, last = False, None
        for change in self.membership(run):
            if change[0] > p:
                break
            last = change
            state = change[2] == "joined"
        return state, last

    def joined(self, run: str, p: int) -> tuple[int, int, str] | None:
        """The join that started ``run``'s membership just after position ``p``
        (the first join since its last leave; members_df's ``joined_at``), or None."""
        start = None
        for change in self.membership(run):
            if change[0] > p:
                break
            start = None if change[2] == "left" else start or change
        return start

    def agent(self, run: str | None, p: int) -> str | None:
        return None if run is None else self.rel.agent_of_run(run, p)

    def who(self, run: str | None, p: int) -> str:
        agent = self.agent(run, p)
        return f"{run} ({agent})" if agent else str(run)

    def members_at(self, p: int) -> list[dict]:
        cursor = self.cursor(p)
        return [self.entries[q][12] for q in self.index.live_positions("members", cursor, ordered=False).tolist()]


def _absence(ctx: _Context, run: str, p: int) -> Sentence | None:
    """Why ``run`` was not a member at position ``p`` (None when it was)."""
    state, last = ctx.member_state(run, p)
    if state:
        return None
    later = [c for c in ctx.membership(run) if c[0] > p and c[2] == "joined"]
    if last is not None:
        return Sentence(f"it had left at {last[1]}", (last[1],))
    if later:
        return Sentence(f"it joined only at {later[0][1]}", (later[0][1],))
    return Sentence("it never joined this pool", ())


def _replies(ctx: _Context, key: str, sentences: list[Sentence]) -> list[tuple[str, int]]:
    """The messages that replied to message ``key`` before the cutoff, each with
    the cursor of its first such record; a sentence naming them is appended."""
    replies = ctx.rel.by_text("reply_to").get(key)
    reply_ids: list[tuple[str, int]] = []
    if replies is not None:
        seen: dict[str, int] = {}
        for q in replies[replies < ctx.n].tolist():
            seen.setdefault(ctx.entries[q][1], q)
        reply_ids = [(rid, ctx.cursor(q)) for rid, q in seen.items()]
    if reply_ids:
        listed = _and([f"{rid} at {cursor}" for rid, cursor in reply_ids[:3]]) + (
            f" and {len(reply_ids) - 3} more" if len(reply_ids) > 3 else ""
        )
        sentences.append(
            Sentence(
                f"{_plural(len(reply_ids), 'message')} replied to it: {listed}.", tuple(c for _, c in reply_ids[:3])
            )
        )
    return reply_ids


def _explain_message(ctx: _Context, key: str) -> tuple[list[Sentence], dict[str, Any]]:
    rel, entries = ctx.rel, ctx.entries
    last = rel.latest("messages", key, ctx.n)
    if last is None:  # replied to before its own first record, which comes after the cutoff
        alone = [Sentence(f"{key} has no record of its own at or before {ctx.cursor(ctx.n - 1)}.", ())]
        replies = _replies(ctx, key, alone)
        return alone, {"type": "message", "id": key, "statuses": [], "status": None, "replies": replies}
    chain = rel.chain(last)
    first = entries[chain[0]]
    sender, ttype, tid = first[6], first[7], first[8]
    cursors = [ctx.cursor(p) for p in chain]
    statuses = [entries[p][2] for p in chain]
    final = entries[last]
    facts: dict[str, Any] = {
        "type": "message",
        "id": key,
        "statuses": list(zip(statuses, cursors)),
        "status": final[2],
        "sender": sender,
        "sender_agent": ctx.agent(sender, chain[0]),
        "target_type": ttype,
        "target_id": tid,
        "recipients": list(final[9]),
        "reply_to": final[10],
        "first_cursor": cursors[0],
        "last_cursor": cursors[-1],
    }
    sentences: list[Sentence] = []
    # 1. the story of its statuses
    target = f"{ttype} {tid}" if tid is not None else str(ttype)
    opening = (
        f"{key} was {_verb(statuses[0])} at {cursors[0]}"
        if statuses[0] == "accepted"
        else f"{key} was first recorded as {statuses[0]} at {cursors[0]}"
    )
    parts = [f"{opening} from {ctx.who(sender, chain[0])} to {target}"]
    previous_status, previous_recipients = statuses[0], first[9]
    for p, status, cursor in zip(chain[1:], statuses[1:], cursors[1:]):
        entry = entries[p]
        text = f"{_verb(status)} at {cursor}" if status != previous_status else f"recorded {status} again at {cursor}"
        if status == "delivered" or entry[9] != previous_recipients:
            recipients = list(entry[9])
            text += f" to {_plural(len(recipients), 'run')}" + (f" ({_names(recipients)})" if recipients else "")
        parts.append(text)
        previous_status, previous_recipients = status, entry[9]
    story = (
        parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + (", and " if len(parts) > 2 else " and ") + parts[-1]
    )
    sentences.append(Sentence(story + ".", tuple(cursors)))
    # 2. nobody to deliver it to
    if not final[9] and final[2] in ("failed", "expired", "cancelled", "timed_out", "accepted"):
        sentences.append(
            Sentence(f"It was delivered to nobody (no recipient in its receipt at {cursors[-1]}).", (cursors[-1],))
        )
    p0 = chain[0]
    # 3. its sender's membership (the coordinator checks it first)
    if sender is not None:
        state, _ = ctx.member_state(sender, p0)
        left = [c for c in ctx.membership(sender) if c[0] > p0 and c[2] == "left"]
        facts["sender_member"] = state
        if not state:
            absent = _absence(ctx, sender, p0)
            why = f": {absent.text}" if absent is not None else ""
            sentences.append(
                Sentence(
                    f"Its sender {sender} was not a member at {cursors[0]}{why}.",
                    (cursors[0], *(absent.cursors if absent else ())),
                )
            )
        elif left and left[0][0] <= last:
            sentences.append(
                Sentence(
                    f"Its sender {sender} left at {left[0][1]}, before its last record at {cursors[-1]}.",
                    (left[0][1], cursors[-1]),
                )
            )
    # 4. the pool's message policy, for a message that reached nobody
    undelivered = not final[9]
    message_refs: list = []
    if undelivered:
        payload = ctx.history.payloads([cursors[0]])[cursors[0]]
        message_refs = list(payload["stored"]["message"].get("policy_refs") or [])
        config, config_seq = ctx.index.config_at(cursors[0])
        required = list(((config or {}).get("message_policy") or {}).get("required_policy_refs") or [])
        missing = [r for r in required if r not in message_refs]
        facts["missing_policy_refs"] = [_ref(r) for r in missing]
        if missing:
            carried = _names([_ref(r) for r in message_refs]) if message_refs else "none"
            sentences.append(
                Sentence(
                    f"The pool's message policy (pool_opened at {config_seq}) requires the policy refs "
                    f"{_names([_ref(r) for r in required])} on every message; it carried {carried}, "
                    f"missing {_names(facts['missing_policy_refs'])}.",
                    (config_seq or cursors[0], cursors[0]),
                )
            )
        policy = (config or {}).get("message_policy") or {}
    # 5. its target at the time it was sent
    facts["target_members"] = None
    members = ctx.members_at(p0)
    matching: list[dict] = []
    if ttype == "run" and tid is not None:
        absent = _absence(ctx, tid, p0)
        matching = [m for m in members if m.get("run_id") == tid]
        facts["target_members"] = 0 if absent else 1
        if absent is not None:
            sentences.append(
                Sentence(
                    f"Its target {tid} was not a member at {cursors[0]}: {absent.text}.", (cursors[0], *absent.cursors)
                )
            )
    elif ttype in ("agent", "topic", "pool"):
        if ttype == "agent":
            matching = [m for m in members if m.get("agent_id") == tid]
            what = f"agent {tid} had {_plural(len(matching), 'member run')}"
        elif ttype == "topic":
            matching = [m for m in members if tid in (m.get("topics") or ())]
            what = f"topic {tid} had {_plural(len(matching), 'subscribed member')}"
        elif tid != ctx.history.pool_id:
            matching = []
            what = f"it was addressed to pool {tid}, not to this pool ({ctx.history.pool_id})"
        else:
            matching = list(members)
            what = f"the pool had {_plural(len(matching), 'member')}"
            if undelivered and not policy.get("include_sender_in_pool_broadcast", False):
                if any(m.get("run_id") == sender for m in matching):
                    what += ", its sender among them (a pool broadcast skips its sender under this pool's policy)"
                matching = [m for m in matching if m.get("run_id") != sender]
        facts["target_members"] = len(matching)
        if not matching or final[2] in ("failed", "expired"):
            names = [str(m.get("run_id")) for m in matching]
            text = f"At {cursors[0]} {what}" if not what.startswith("it was") else what[0].upper() + what[1:]
            sentences.append(Sentence(text + (f" ({_names(names)})." if names else "."), (cursors[0],)))
    # 6. recipients without the message's policy refs
    if undelivered and matching and message_refs:
        lacking = [m for m in matching if not all(r in (m.get("policy_refs") or []) for r in message_refs)]
        facts["members_lacking_refs"] = [str(m.get("run_id")) for m in lacking]
        if len(lacking) == len(matching):
            joins = [ctx.member_state(str(m.get("run_id")), p0)[1] for m in lacking[:3]]
            backing = tuple(j[1] for j in joins if j is not None)
            if len(lacking) == 1:
                held = [_ref(r) for r in (lacking[0].get("policy_refs") or [])]
                who = f"its only possible recipient {lacking[0].get('run_id')} did not have (it had {_names(held) if held else 'none'})"
            else:
                who = f"none of the {len(lacking)} members it was addressed to had"
            sentences.append(
                Sentence(
                    f"It carried the policy refs {_names([_ref(r) for r in message_refs])}, which {who}.",
                    (cursors[0], *backing),
                )
            )
    # 7. recipients that left while it was in flight
    gone = []
    for run in list(final[9])[:50]:
        for q, cursor, what in ctx.membership(run):
            if what == "left" and p0 < q <= last:
                gone.append((run, cursor))
                break
    facts["recipients_left"] = gone
    if gone:
        listed = _and([f"{run} left at {cursor}" for run, cursor in gone[:5]]) + (
            f" and {len(gone) - 5} more left" if len(gone) > 5 else ""
        )
        sentences.append(
            Sentence(
                f"Of its recipients, {listed}, before its last record ({final[2]} at {cursors[-1]}).",
                tuple(c for _, c in gone[:5]) + (cursors[-1],),
            )
        )
    # 8. what it replied to
    reply_to = final[10]
    if reply_to is not None:
        parent = rel.latest("messages", reply_to, chain[0] + 1)
        if parent is None:
            facts["reply_to_found"] = False
            sentences.append(
                Sentence(f"It replied to {reply_to}, of which there is no record before {cursors[0]}.", (cursors[0],))
            )
        else:
            facts["reply_to_found"] = True
            parent_chain = rel.chain(parent)
            origin = entries[parent_chain[0]]
            sentences.append(
                Sentence(
                    f"It replied to {reply_to}, sent by {origin[6]} at {ctx.cursor(parent_chain[0])} "
                    f"({entries[parent][2]} when the reply was sent).",
                    (ctx.cursor(parent_chain[0]), ctx.cursor(parent), cursors[0]),
                )
            )
    # 9. the replies it got
    facts["replies"] = _replies(ctx, key, sentences)
    # 10. its contract and expiry, when it ended on them
    extra = final[12]
    if extra is not None:
        expires, expected, timeout, _ = extra
        if final[2] == "timed_out" and expected is not None:
            within = f" within {timeout:,} ms" if timeout is not None else ""
            sentences.append(Sentence(f"It expected {_plural(expected, 'response')}{within}.", (cursors[0],)))
        if final[2] == "expired" and expires is not None:
            sentences.append(Sentence(f"It carried expires_at_millis = {expires}.", (cursors[0],)))
    return sentences, facts


def _criteria(extra: Any) -> str:
    if extra is None:
        return ""
    _, _, families, kinds, runs = extra
    what = _names(list(kinds), 3) if kinds else "any"
    families_text = (
        f" ({'family' if families and len(families) == 1 else 'families'} {_names(list(families), 3)})"
        if families
        else ""
    )
    source = f" from {_names(list(runs), 3)}" if runs else " from any run"
    return f", waiting for {what} events{families_text}{source}"


def _explain_wake(ctx: _Context, key: str) -> tuple[list[Sentence], dict[str, Any]]:
    rel, entries = ctx.rel, ctx.entries
    last = rel.latest("wakes", key, ctx.n)
    assert last is not None
    chain = rel.chain(last)
    first = entries[chain[0]]
    run = first[4]
    cursors = [ctx.cursor(p) for p in chain]
    statuses = [entries[p][2] for p in chain]
    extra = first[12]
    facts: dict[str, Any] = {
        "type": "wake",
        "id": key,
        "run_id": run,
        "agent_id": ctx.agent(run, chain[0]),
        "statuses": list(zip(statuses, cursors)),
        "status": entries[last][2],
        "first_cursor": cursors[0],
        "last_cursor": cursors[-1],
    }
    opening = (
        f"{key} was registered at {cursors[0]} by {ctx.who(run, chain[0])}"
        if statuses[0] == "registered"
        else f"{key} was first recorded as {statuses[0]} at {cursors[0]}, for {ctx.who(run, chain[0])}"
    )
    opening += _criteria(extra)
    if extra is not None:
        timeout, resume = extra[0], extra[1]
        if timeout is not None:
            opening += f", with a timeout of {timeout:,} ms"
        opening += f"; it resumes with {resume}"
    sentences = [Sentence(opening + ".", (cursors[0],))]
    later = [
        f"{_verb(s)} at {c}" if s != statuses[i] else f"recorded {s} again at {c}"
        for i, (s, c) in enumerate(zip(statuses[1:], cursors[1:]))
    ]
    if later:
        sentences.append(Sentence(f"It {_and(later)}.", tuple(cursors[1:])))
    elif statuses[-1] == "registered":
        sentences.append(Sentence(f"It was still pending at {ctx.cursor(ctx.n - 1)}.", (cursors[0],)))
    # the waiting run around it
    if run is not None:
        state, change = ctx.member_state(run, chain[0])
        joined = ctx.joined(run, chain[0])
        facts["run_member"] = state
        if not state:
            absent = _absence(ctx, run, chain[0])
            why = f": {absent.text}" if absent is not None else ""
            sentences.append(
                Sentence(
                    f"{run} was not a member when it was registered{why}.",
                    (cursors[0], *(absent.cursors if absent else ())),
                )
            )
        else:
            # the join that started the membership (members_df's joined_at), and the latest one if it updated it
            backing = [joined[1]] if joined else []
            if joined and change and change is not joined:
                backing.append(change[1])
            when = ", updated at ".join(map(str, backing))
            text = f"{run} was a member when it was registered (joined at {when})" if backing else f"{run} was a member"
            left = [c for c in ctx.membership(run) if c[0] > chain[0] and c[2] == "left"]
            if left:
                q, cursor, _ = left[0]
                pending = statuses[-1] == "registered" or q < last
                when = "while it was pending" if pending else f"after it {_verb(statuses[-1])}"
                text += f" and left at {cursor}, {when}"
                backing.append(cursor)
            facts["run_left"] = left[0][1] if left else None
            sentences.append(Sentence(text + ".", tuple(backing)))
    # watched runs that went away before it ended
    if extra is not None and extra[4]:
        gone = []
        for watched in list(extra[4])[:50]:
            for q, cursor, what in ctx.membership(watched):
                if what == "left" and chain[0] < q <= last:
                    gone.append((watched, cursor))
                    break
        facts["watched_left"] = gone
        if gone:
            sentences.append(
                Sentence(
                    f"Of the runs it watched, {_and([f'{r} left at {c}' for r, c in gone[:5]])}"
                    + (f" and {len(gone) - 5} more left" if len(gone) > 5 else "")
                    + f", before its last record at {cursors[-1]}.",
                    tuple(c for _, c in gone[:5]),
                )
            )
    return sentences, facts


def _count_phrase(statuses: dict[str, list[tuple[str, int]]], examples: tuple[str, ...]) -> tuple[str, list[int]]:
    parts, cited = [], []
    for status, items in sorted(statuses.items(), key=lambda kv: -len(kv[1])):
        text = f"{len(items)} {status}"
        if status in examples:
            shown = items[-3:]
            text += f" ({_and([f'{i} at {c}' for i, c in shown])}{', …' if len(items) > 3 else ''})"
            cited += [c for _, c in shown]
        parts.append(text)
    return ", ".join(parts), cited


_FAILURES = ("failed", "timed_out", "expired", "cancelled")


def _explain_run(ctx: _Context, key: str) -> tuple[list[Sentence], dict[str, Any]]:
    rel, entries = ctx.rel, ctx.entries
    positions, roles = rel.run_mentions(key)
    keep = positions < ctx.n
    positions, roles = positions[keep], roles[keep]
    changes = ctx.membership(key)
    sentences: list[Sentence] = []
    facts: dict[str, Any] = {"type": "run", "id": key, "membership": [(what, cursor) for _, cursor, what in changes]}
    if changes:
        parts, cited = [], []
        for i, (q, cursor, what) in enumerate(changes):
            if what == "joined":
                member = entries[q][12] or {}
                topics = member.get("topics") or []
                detail = f" as {member.get('agent_id')}" if i == 0 else ""
                detail += f" with topics {_names(list(topics), 4)}" if topics and i == 0 else ""
                if i and changes[i - 1][2] == "joined":  # a member_joined of a member: its membership updated
                    parts.append(f"updated at {cursor}")
                else:
                    again = " again" if i and any(c[2] == "joined" for c in changes[:i]) else ""
                    parts.append(f"joined{again} at {cursor}{detail}")
            else:
                parts.append(f"left at {cursor}")
            cited.append(cursor)
        if len(parts) > 8:
            parts = parts[:4] + [f"… ({len(parts) - 8} more changes) …"] + parts[-4:]
        state = changes[-1][2] == "joined"
        sentences.append(
            Sentence(
                f"{key} {_and(parts)}; at {ctx.cursor(ctx.n - 1)} it was {'a member' if state else 'not a member'}.",
                tuple(cited[:4] + cited[-4:]),
            )
        )
        facts["member"] = state
    else:
        sentences.append(
            Sentence(
                f"{key} never joined this pool; {_plural(len(np.unique(positions)), 'record')} name{'s' if len(np.unique(positions)) == 1 else ''} it.",
                (),
            )
        )
        facts["member"] = False
    # latest records (at the cutoff) of the messages and wakes naming it
    following = ctx.index.arrays()["next"][positions]
    cutoff = ctx.cursor(ctx.n - 1)
    current = following > cutoff
    kinds = rel.kind[positions]

    def tally(mask: np.ndarray) -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = {}
        for q in np.unique(positions[mask]).tolist():
            out.setdefault(entries[q][2], []).append((entries[q][1], ctx.cursor(q)))
        return out

    sent = tally(current & (roles == SENDER) & (kinds == RUN_MESSAGE))
    received = tally(current & (roles == RECIPIENT) & (kinds == RUN_MESSAGE))
    addressed = tally(current & (roles == TARGET) & (kinds == RUN_MESSAGE))
    wakes = tally(current & (roles == WAITING) & (kinds == WAKE))
    received_ids = {i for items in received.values() for i, _ in items}
    undelivered = {s: [x for x in items if x[0] not in received_ids] for s, items in addressed.items()}
    undelivered = {s: items for s, items in undelivered.items() if items}
    facts["sent"] = {s: len(v) for s, v in sent.items()}
    facts["received"] = {s: len(v) for s, v in received.items()}
    facts["addressed_not_delivered"] = {s: len(v) for s, v in undelivered.items()}
    facts["wakes"] = {s: len(v) for s, v in wakes.items()}
    for label, table in (
        ("It sent", sent),
        ("It received", received),
        ("Addressed to it but not delivered to it:", undelivered),
        ("It registered", wakes),
    ):
        if not table:
            continue
        total = sum(len(v) for v in table.values())
        noun = "wake" if label == "It registered" else "message"
        phrase, cited = _count_phrase(table, _FAILURES)
        sentences.append(Sentence(f"{label} {_plural(total, noun)}: {phrase}.", tuple(cited)))
    facts["records"] = {ROLES[r]: int(c) for r, c in zip(*np.unique(roles, return_counts=True))}
    return sentences, facts


def explain(history: PoolHistory, key: str, at: int | None = None, *, key_type: str | None = None) -> Explanation:
    """A short account of what happened to ``key`` up to cursor ``at``,
    derived only from the records, each sentence with the cursors of the
    records it rests on.

    ``key`` is found as in :func:`history_of` (message id, condition id, run
    id, idempotency key).  The rules:

    **A message.**  (1) Its statuses in order, each with its cursor: "was
    accepted at c" for a first ``accepted`` record, else "was first
    recorded as <status> at c"; the sender (with its agent: the agent of the
    sender's latest join) and the target; a ``delivered`` record (or one
    whose recipients changed) says to how many runs.  (2) A receipt that
    ends with no recipient: "delivered to nobody".  Then what the records
    show about why, in the order the SDK's coordinator checks it: (3) its
    sender, when it was not a member when it sent (never joined, had left,
    joined only later) or left before the message's last record; for a
    message that reached nobody, (4) the policy refs the pool's message
    policy (its ``pool_opened`` config) requires and the message lacked,
    (5) its target when it was first recorded -- a run that was not a
    member then; for an agent, topic or pool target how many members
    matched (said when none did or the message failed or expired; a pool
    broadcast leaves out its sender unless the policy includes it; another
    pool's id matches nothing) -- and (6) the policy refs it carried that
    every member it was addressed to lacked.  (7) Recipients that left
    between its first and last records.  (8) The message it replied to,
    with that message's first cursor and its status then, or that there is
    no record of it.  (9) The messages that replied to it.  (Replied to
    before its own first record, and ``at`` between the two: it has no
    record of its own yet, then the replies.)  (10) Its
    response contract when it timed out, its ``expires_at_millis`` when it
    expired.  The policy refs are read from the message's first payload
    (one record fetched); everything else from the index.

    **A wake.**  Who registered it (the run and its agent), its compiled
    filter (kinds, families, runs), timeout and resume policy; its later
    statuses with their cursors, or that it is still pending; whether the
    waiting run was a member when it registered (the join that started that
    membership, as ``members_df``'s ``joined_at``, and its latest update if
    a later join updated it) and whether it left while
    the wake was pending or after; the watched runs that left before its
    last record.

    **A run.**  Its joins (agent, topics) and leaves, and whether it is a
    member at ``at``; the messages it sent, received (in a receipt's
    ``delivered_to``), was addressed but not delivered, and the wakes it
    registered, each counted by status at ``at`` with the latest failures
    (failed, timed out, expired, cancelled) named.

    **An idempotency key.**  Which message (wake) carries it, then that
    message's (wake's) account.

    Nothing is inferred beyond the records: no cause is given that the log
    does not show.  The same content is in ``facts``.

    >>> print(pool.explain("msg.alpha.1"))
    msg.alpha.1 was first recorded as failed at 6 from run.alpha.planner-2 (agent.alpha.planner) to agent agent.alpha.worker. It was delivered to nobody (no recipient in its receipt at 6). At 6 agent agent.alpha.worker had 0 member runs. 1 message replied to it: msg.alpha.5 at 22.
    """
    n = _at_position(history, at)
    ctx = _Context(history, n)
    what, positions, _ = _resolve(history, ctx.rel, key, key_type, n)
    prefix: list[Sentence] = []
    subject = key
    if what == "idempotency_key":
        entries = ctx.entries
        owners = list(dict.fromkeys((entries[p][0], entries[p][1]) for p in positions))
        kind, subject = owners[-1][0], str(owners[-1][1])
        noun = "message" if kind == RUN_MESSAGE else "wake"
        others = f" (earlier also {_names([str(o[1]) for o in owners[:-1]])})" if len(owners) > 1 else ""
        prefix.append(
            Sentence(
                f"{key} is the idempotency key of {noun} {subject}{others}.",
                tuple(sorted({ctx.cursor(p) for p in positions})[:1]),
            )
        )
        what_inner = noun
    else:
        what_inner = what
    if what_inner == "message":
        sentences, facts = _explain_message(ctx, subject)
    elif what_inner == "wake":
        sentences, facts = _explain_wake(ctx, subject)
    else:
        sentences, facts = _explain_run(ctx, subject)
    if what == "idempotency_key":
        facts = {**facts, "idempotency_key": key}
    return Explanation(history.pool_id, key, what, ctx.cursor(n - 1) if n else 0, prefix + sentences, facts)


#: Message and wake statuses that :func:`recent_failures` lists.
MESSAGE_FAILURES: tuple[str, ...] = ("failed", "timed_out", "expired")
WAKE_FAILURES: tuple[str, ...] = ("timed_out", "failed")


def recent_failures(history: PoolHistory, limit: int = 10, upto: int | None = None) -> pd.DataFrame:
    """The most recent messages and wakes whose status at ``upto`` is a
    failure (messages: failed, timed out, expired; wakes: timed out,
    failed), latest first: columns ``cursor`` (of that status's record),
    ``kind`` (message or wake), ``id``, ``status``.

    >>> recent_failures(pool, 3)
       cursor     kind              id     status
    0    1194     wake  wake.alpha.127  timed_out
    1    1179  message   msg.alpha.307  timed_out
    2    1176     wake  wake.alpha.114  timed_out
    """
    index = history.index
    limit = count_argument(limit, "limit")
    bound = upto_argument(upto, path=history.path, pool_id=history.pool_id)
    cursor = index.head if bound is None else min(bound, index.head)
    codes = index.status_codes()
    seqs = index.arrays()["seq"]
    parts = []
    for kind, namespace, statuses, names in (
        ("message", "messages", MESSAGE_FAILURES, wire.MESSAGE_STATUSES),
        ("wake", "wakes", WAKE_FAILURES, wire.WAKE_STATUSES),
    ):
        live = index.live_positions(namespace, cursor, ordered=False) if len(index) else np.zeros(0, dtype=np.int64)
        failing = live[np.isin(codes[live], [names.index(s) for s in statuses])]
        latest = failing[np.argsort(-seqs[failing], kind="stable")[:limit]]
        parts += [(int(seqs[p]), kind, index.entries[p][1], index.entries[p][2]) for p in latest.tolist()]
    parts.sort(key=lambda row: -row[0])
    return pd.DataFrame(parts[:limit], columns=["cursor", "kind", "id", "status"])
