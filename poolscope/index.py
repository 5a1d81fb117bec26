"""The columnar index of one pool's log, built by one pass of the fold.

A single scan decodes every payload once (orjson), flattens it into an
:class:`~poolscope.fold.Entry` and applies it to a
:class:`~poolscope.fold.PoolFold`.  The fold tells, for every record, which
earlier record of the same key it replaces; from that the index derives, for
every record, the seq at which it stops being current (``next_seq``).  A record
is part of the snapshot at cursor ``k`` exactly when ``seq <= k < next_seq``,
so any snapshot is a vectorized selection -- no replay, no keyframes to store,
nothing written into the user's database.

Example::

    >>> import poolscope
    >>> index = poolscope.open("sample_data/demo.db").pool("pool.alpha").index
    >>> len(index.live_positions("messages", 100)) == len(pool.snapshot(100).messages)
    True
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import wire, wire_types
from .errors import (
    ConfigConflictError,
    CorruptRecordError,
    CursorError,
    InvalidInputError,
    PayloadTooLargeError,
    PoolNotOpenedError,
    RecordError,
)
from .fold import (
    DAMAGED,
    MEMBER_JOINED,
    MEMBER_LEFT,
    RUN_MESSAGE,
    WAKE,
    Entry,
    PoolFold,
    check_unread,
    extract,
    oddities,
)

NEVER = np.iinfo(np.int64).max
#: The largest seq a record can have: NEVER is the index's "still current" mark,
#: so a row at seq NEVER (or at 0 or below) cannot be placed; doctor reports it (bad_seq).
MAX_SEQ = int(NEVER) - 1
_RESUME = frozenset(wire.RESUME_POLICIES)
#: ``expected_responses`` is a ``u32`` in the SDK (its other counts and times are ``u64``).
_U32 = 2**32 - 1
#: A payload text this short cannot nest past serde's limit (128 levels take 256 brackets);
#: a longer one can only with more than MAX_DEPTH opening brackets.
_SHALLOW = 2 * wire.MAX_DEPTH
_MAX_DEPTH = wire.MAX_DEPTH


def str_tuple(value: list) -> tuple:
    """``value`` as a tuple if it is a list of strings (what the SDK types as
    ``Vec<String>``), else :class:`TypeError`.

    >>> str_tuple(["a", "b"])
    ('a', 'b')
    >>> str_tuple("ab")
    Traceback (most recent call last):
    ...
    TypeError: not a list of strings
    """
    if value.__class__ is not list:
        raise TypeError("not a list of strings")
    for item in value:
        if item.__class__ is not str:
            raise TypeError("not a list of strings")
    return tuple(value)


#: Messages and wakes the first tier of :meth:`PoolIndex.decode` reads before it
#: gives up on an index for which it has taken none.
TYPED_TRIAL = 2048
#: Wakes remembered by :meth:`PoolIndex.decode` for the later records of the
#: same wake (about 2 KB each; forgotten all at once when full).
REPEATS = 2048
#: What a record without recipients has (never changed).
_NO_ITEMS: list = []


#: Entries transposed at a time by :meth:`PoolIndex.entry_columns` (while they are in the CPU's cache).
TRANSPOSE_BATCH = 4096
#: Records folded on top of an index restored from the cache while its fold's
#: key dicts are only looked up key by key (beyond, they are rebuilt whole).
SEED_LIMIT = 200_000

#: Interned status and target strings (the index shares one str per value).
_MESSAGE_STATUS = {s: s for s in wire.MESSAGE_STATUSES}
_WAKE_STATUS = {s: s for s in wire.WAKE_STATUSES}
_TARGET_TYPE = {s: s for s in wire.TARGET_TYPES}
#: The statuses of each namespace that has them, in the SDK's order: a status's
#: code (:meth:`PoolIndex.status_codes`) is its position here.
STATUS_NAMES: dict[str, tuple[str, ...]] = {"messages": wire.MESSAGE_STATUSES, "wakes": wire.WAKE_STATUSES}
#: Status -> code, per namespace (the one table of status codes).
STATUS_CODES: dict[str, dict[str, int]] = {
    namespace: {status: code for code, status in enumerate(names)} for namespace, names in STATUS_NAMES.items()
}
MESSAGE_CODE = STATUS_CODES["messages"]
WAKE_CODE = STATUS_CODES["wakes"]
#: The kind code of the records of each namespace.
NAMESPACE_KIND = {"messages": RUN_MESSAGE, "wakes": WAKE}
_TARGET_FIELD = wire.TARGET_ID_FIELD
#: msgspec's target struct -> (target type, the attribute holding its id).
_TARGET_OF = {struct: (struct.__struct_config__.tag, struct.__struct_fields__[0]) for struct in wire_types.TARGETS}


_gc_lock = threading.Lock()
_gc_pausers = 0  # threads inside gc_paused() now
_gc_resume = False  # whether the collector was on when the first of them came in


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector meanwhile (also a decorator:
    ``@gc_paused()``).  For work that allocates many objects and makes no
    cycles -- a load, a frame, a plot: with a large index in memory, the
    collections such work triggers would otherwise cost more than the work.

    Safe across threads (a Dask worker runs several tasks at once): the
    collector is switched back on when the last pauser leaves, and only if it
    was on when the first came in.

    >>> import gc
    >>> with gc_paused():
    ...     rows = [(i, str(i)) for i in range(1000)]
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    global _gc_pausers, _gc_resume
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_resume:
                gc.enable()


def _positions_by_namespace(kind: np.ndarray, offset: int = 0) -> dict[str, np.ndarray]:
    """Positions (plus ``offset``) of the records that can be live in each
    namespace, and of every membership change, from the records' kind codes."""
    return {
        "members": offset + np.flatnonzero(kind == MEMBER_JOINED),
        "member_changes": offset + np.flatnonzero((kind == MEMBER_JOINED) | (kind == MEMBER_LEFT)),
        "messages": offset + np.flatnonzero(kind == RUN_MESSAGE),
        "wakes": offset + np.flatnonzero(kind == WAKE),
    }


def status_codes_of(kind: np.ndarray, statuses: list) -> np.ndarray:
    """Per record, the code of its status among its kind's statuses (-1: none)."""
    from itertools import repeat

    n = len(kind)
    as_message = np.fromiter(map(MESSAGE_CODE.get, statuses, repeat(-1)), dtype=np.int8, count=n)
    as_wake = np.fromiter(map(WAKE_CODE.get, statuses, repeat(-1)), dtype=np.int8, count=n)
    return np.where(kind == RUN_MESSAGE, as_message, np.where(kind == WAKE, as_wake, np.int8(-1)))


def _grown_next(nexts: Any, start: int, seqs: list[int], prevs: list[int]) -> np.ndarray:
    """The ``next`` column (``start`` records) grown by records at ``seqs``: each
    is current, and replaces the record at its ``prevs`` position (-1: none)."""
    grown = np.empty(start + len(seqs), dtype=np.int64)
    grown[:start] = nexts
    grown[start:] = NEVER
    replaced = np.asarray(prevs, dtype=np.int64)
    hit = replaced >= 0
    grown[replaced[hit]] = np.asarray(seqs, dtype=np.int64)[hit]
    return grown


def transpose(batch: list, columns: list[list]) -> None:
    """Append a batch of entries to one list per :class:`Entry` field (a batch
    at a time: the entries are still in the CPU's cache)."""
    if batch:
        for column, values in zip(columns, zip(*batch)):
            column.extend(values)


#: The ``typeof`` given to a row whose payload (or kind) SQLite refused to
#: read because it is larger than the connection's ``max_payload``.
TOO_LARGE = "too large"


def too_big(error: sqlite3.Error) -> bool:
    """Whether SQLite refused a value larger than the connection's ``max_payload``."""
    return getattr(error, "sqlite_errorname", "") == "SQLITE_TOOBIG" or "too big" in str(error)


def decode_row(kind_raw: Any, typ: str, payload_raw: Any) -> tuple[Any, Any]:
    """Decode one stored row's kind column (as text where it is UTF-8) and
    payload, raising :class:`RecordError` subclasses for a payload the SDK
    cannot read."""
    if typ == TOO_LARGE:
        raise PayloadTooLargeError(
            "a value of this row is larger than the max_payload limit and was not read "
            "(poolscope.open(path, max_payload=...) sets the limit)"
        )
    # the kind column as text where it is UTF-8 (the SDK never reads it: a payload is folded as its own
    # type says, and a kind column that says otherwise -- another kind, NULL, a number, bytes that are
    # not UTF-8 -- is an oddity of the record, see fold.oddities)
    kind: Any = kind_raw
    if isinstance(kind_raw, bytes):
        try:
            kind = kind_raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if typ != "text":
        if typ == "null":
            raise CorruptRecordError("payload_json is NULL", code="null_payload")
        if typ == "blob":
            raise CorruptRecordError(
                "payload_json is stored as a BLOB, not TEXT (the SDK cannot read it)", code="blob_payload"
            )
        raise CorruptRecordError(f"payload_json is stored as {typ.upper()}, not JSON text")
    found, payload = wire.serde_read(payload_raw, loads_payload(payload_raw))
    if found is not None:
        raise CorruptRecordError(found[1], code=found[0])
    return kind, payload


def loads_payload(text: str | bytes) -> Any:
    """``payload_json`` decoded, or :class:`CorruptRecordError` saying why it
    is no JSON the SDK wrote (``invalid_utf8``, ``too_deep``, ``bad_json``).

    >>> loads_payload(b'{"type":')
    Traceback (most recent call last):
    ...
    poolscope.errors.CorruptRecordError: payload_json is not valid JSON (unexpected end of data: line 1 column 9 (char 8))
    """
    try:
        return wire.loads(text)
    except wire.orjson.JSONDecodeError as error:
        message = str(error)
        if "surrogate in string" in message.lower():  # valid UTF-8 bytes, but a \u escape of half a character
            raise CorruptRecordError(
                f"payload_json escapes a lone surrogate (\\uD800-\\uDFFF without its pair), "
                f"which serde_json refuses ({message})",
                code="bad_json",
            ) from None
        if "utf-8" in message.lower() or "surrogate" in message.lower():
            raise CorruptRecordError("payload_json is not valid UTF-8 text", code="invalid_utf8") from None
        if "depth limit" in message.lower():  # orjson reads at most 1024 levels
            raise CorruptRecordError(
                f"the payload nests more than {wire.MAX_DEPTH} levels of arrays and objects ({message})",
                code="too_deep",
            ) from None
        raise CorruptRecordError(f"payload_json is not valid JSON ({message})", code="bad_json") from None


def _namespace(namespace: str) -> str:
    """``"messages"`` or ``"wakes"`` (also accepted: ``"message"``, ``"wake"``)."""
    plural = namespace if namespace.endswith("s") else namespace + "s"
    if plural not in STATUS_NAMES:
        raise InvalidInputError(f"namespace must be 'messages' or 'wakes', not {namespace!r}")
    return plural


def _filter_consistent(stored: Any, text: bytes, filters: dict[str, tuple[bytes, str]]) -> bool:
    """Whether a wake read by the first tier of :meth:`PoolIndex.decode`
    (``stored``: its msgspec struct, ``text``: its payload, serde's bytes) has
    a compiled filter whose fingerprint is the SHA-256 of its criteria and
    whose id that fingerprint gives.  Its criteria are the last field of the
    compiled filter, just before ``"registration"`` (whose values are strings
    only), so they are found in ``text`` without writing them again;
    ``filters`` remembers each fingerprint's criteria and id."""
    compiled = stored.compiled_filter
    fingerprint = compiled.filter_fingerprint
    end = text.rfind(b'},"registration":')
    criteria = text[text.rfind(b'"criteria":', 0, end) + 11 : end]
    known = filters.get(fingerprint)
    if known is None:
        if wire.fingerprint_of(criteria) != fingerprint:
            return False
        known = filters[fingerprint] = (criteria, wire.filter_id(fingerprint))
    return known[0] == criteria and known[1] == compiled.filter_id


class PoolIndex:
    """Columnar index of one pool: built once, extended as the log grows.

    Attributes (Python lists, one item per record in seq order): ``seqs``,
    ``entries`` (:class:`Entry`, kind ``DAMAGED`` for records that cannot be
    understood), ``next_seq``.  ``problems`` maps seq to the error for damaged
    records.  ``fold`` is the fold state at the head.  Consumers read these
    and use the methods below; nothing outside this class sets them.

    * building: :meth:`load` (from a connection, see :mod:`poolscope.load`),
      :meth:`append_rows` (rows as SQLite returns them), :meth:`decode` and
      :meth:`extend` (decoding apart from folding, as a forked helper does);
    * columns: :meth:`arrays`, :meth:`status_codes` (codes of
      :data:`STATUS_CODES`), :meth:`entry_columns`, :meth:`rank`,
      :meth:`key_codes`;
    * selections: :meth:`position`, :meth:`live_positions`, :meth:`count_live`,
      :meth:`kind_mask`, :meth:`status_mask`;
    * counts: :meth:`status_counts` (records by status),
      :meth:`current_status_counts` (messages and wakes by current status);
    * checks: :meth:`check_cursor`, :meth:`check_replay` (where the SDK
      refuses), :meth:`first_problem`, :meth:`config_at`, :meth:`conflict_at`,
      :meth:`created_at`.
    """

    def __init__(self, path: Path, pool_id: str) -> None:
        self.path = path
        self.pool_id = pool_id
        self.seqs: list[int] = []
        #: The seq the log ends at when its last records are not in this index (a what-if that
        #: removed them: its cursors keep the log's values, up to the log's head); 0 otherwise
        self.log_end = 0
        # a list of Entry, or (restored from the index cache) a CachedEntries over Arrow columns
        self.entries: Any = []
        self._next_list: list[int] | None = []
        self._next_base: np.ndarray | None = None  # restored: the cached ``next`` column (read-only)
        self.problems: dict[int, RecordError] = {}
        self.duplicates: list[int] = []
        #: seq -> what the SDK reads without complaint but never writes (:func:`poolscope.fold.oddities`:
        #: a kind column that does not name the payload's type, a receipt for another message); the
        #: record is folded as the SDK folds it, and doctor reports these as warnings
        self.oddities: dict[int, list[tuple[str, str]]] = {}
        #: Seqs of messages and wakes the typed tier did not take: their stored text may not be serde's
        #: own bytes (keys in another order, an unknown field, a null option), so a payload read again
        #: for them is written back in serde's form (:func:`poolscope.load.fetch_payloads`).
        self.uncertain: list[int] = []
        self._state = PoolFold()
        self._fold_pending = False  # restored: the fold's key dicts are rebuilt on first use
        self._seeded: dict[str, set] | None = None  # restored, then extended: keys looked up so far
        self._seed_live: dict[str, tuple] = {}  # restored, then extended: per namespace, its live keys
        #: ``(head, rows)``: how many rows of the pool have ``seq <= head``, as the cache
        #: checked them (restored) or as :meth:`load` read them; None when not known
        self.counted: tuple[int, int] | None = None
        self._arrays: dict[str, np.ndarray] | None = None
        self._behind: list[tuple[list[int], list[int]]] = []  # folded since the arrays were made: (seqs, prevs)
        self._ranks: dict[str, np.ndarray] = {}
        self._shared: dict[str, str] = {}
        self._shared_tuples: dict[tuple, tuple] = {}
        self._typed = [0, 0]  # records the first tier of decode() took, and tried
        # recent wakes taken whole by decode()'s first tier: condition id hint -> (their bytes up
        # to the registration, their entry, whether their filter was found consistent)
        self._repeats: dict[bytes, tuple] = {}
        #: Seqs of the wakes whose compiled filter was found consistent with its criteria
        #: while they were decoded (fingerprint and id), for doctor: None unless turned on
        #: (:meth:`verify_filters`) before the records are decoded.
        self.verified_filters: list[int] | None = None
        self._filters: dict[str, tuple[bytes, str]] = {}  # fingerprint -> (criteria text, filter id)
        #: the seqs of the wakes found consistent when the index's cache entry was saved (restored
        #: with it) or by doctor after the load (:meth:`add_checked_filters`): kept for the next
        #: save, handed to verified_filters by verify_filters()
        self._checked_filters: np.ndarray = np.empty(0, dtype=np.int64)
        #: wakes were found consistent since the index was loaded or restored: its cache entry,
        #: saved again, would spare the next check reading them
        self.unsaved_checks = False
        #: ``(position, mark)``: the :func:`~poolscope.source.change_mark` of the file taken before
        #: this process first decoded records into the index, from that position on (0 for a
        #: fresh load, the restored entries' count for a restored index); None before that.  A
        #: save compares it with the file's mark then: a commit in between (a record rewritten
        #: while the entry's hashes were not read yet) makes it decode those records again
        self.read_mark: tuple[int, list] | None = None

    def verify_filters(self) -> PoolIndex:
        """Check each wake's compiled filter as it is decoded from now on (its
        criteria's SHA-256 is its fingerprint, which gives its id), and list the
        seqs of those found consistent in :attr:`verified_filters`: what doctor
        checks next, without reading the wakes again.  Only wakes read by the
        first tier are checked here (their stored criteria text is serde's, byte
        for byte); doctor reads the others again.  An index restored from the
        index cache starts the list with the wakes its entry says were found
        consistent when it was saved (by a load that checked them).

        >>> index = PoolIndex(Path("demo.db"), "pool.alpha").verify_filters()
        >>> index.load(db.conn) and len(index.verified_filters) == int(index.kind_mask("wake").sum())
        True
        """
        if self.verified_filters is None:
            # restored from the index cache: the wakes checked when the entry was saved are known
            self.verified_filters = self._checked_filters.tolist()
        return self

    def add_checked_filters(self, seqs: list[int]) -> None:
        """Record wakes whose compiled filter doctor found consistent after the
        load (reading them again): a later check skips them, and the index's next
        cache entry keeps them (:attr:`unsaved_checks` says one is worth saving).

        >>> index = PoolIndex(Path("demo.db"), "p")
        >>> index.add_checked_filters([7, 3])
        >>> sorted(index.consistent_filters()), index.unsaved_checks
        ([3, 7], True)
        """
        if seqs:
            self._checked_filters = np.union1d(self._checked_filters, np.asarray(seqs, dtype=np.int64))
            self.unsaved_checks = True

    @property
    def restored(self) -> bool:
        """Whether the index was restored from an index-cache entry (its records
        until then are the entry's columns, each with the hash of its record)."""
        return not isinstance(self.entries, list)

    def consistent_filters(self) -> set[int]:
        """Seqs of the wakes whose compiled filter is known to be consistent:
        checked while decoded (:meth:`verify_filters`), when the index's cache
        entry was saved, or by doctor since (:meth:`add_checked_filters`)."""
        known = set(self.verified_filters or ())
        known.update(self._checked_filters.tolist())
        return known

    # ------------------------------------------------------------- state
    @property
    def fold(self) -> PoolFold:
        """The fold state at the head (an index restored from the cache rebuilds
        its key dicts from the columns on first use)."""
        if self._fold_pending:
            self._rebuild_fold()
        return self._state

    @property
    def next_seq(self) -> list[int]:
        """Per record, the seq of the record that replaces it (``NEVER`` while current)."""
        if self._next_list is None:
            base = self._next_base
            self._next_list = [] if base is None else base.tolist()
        return self._next_list

    def field(self, name: str, positions: Any = None) -> list:
        """The values of one :class:`Entry` field for the records at ``positions``
        (every record when None), as a list: the way frames, ranks and
        snapshots read a column without building whole entries.

        >>> index = pool.index
        >>> index.field("key", index.arrays()["messages"][:3])
        ['msg.alpha.1', 'msg.alpha.2', 'msg.alpha.2']
        """
        entries = self.entries
        if not isinstance(entries, list):
            return entries.field(name, positions)
        from operator import itemgetter

        get = itemgetter(Entry._fields.index(name))
        if positions is None:
            return list(map(get, entries))
        if isinstance(positions, np.ndarray):
            positions = positions.tolist()
        return [get(entries[p]) for p in positions]

    def entries_at(self, positions: Any) -> list[Any]:
        """The :class:`Entry` of each record at ``positions``."""
        entries = self.entries
        if not isinstance(entries, list):
            return entries.take(positions)
        if isinstance(positions, np.ndarray):
            positions = positions.tolist()
        return [entries[p] for p in positions]

    def export_state(self) -> tuple[Any, dict]:
        """What the index cache saves: one ``pyarrow.Table`` (a row per record:
        the :class:`Entry` fields, ``next``, status code, key rank and key code,
        whether its wake's filter was found consistent, whether its stored text
        may not be serde's bytes) and a small dict of the fold's scalars, damaged records, duplicates and oddities
        (plain values).  :meth:`restore_state` is its inverse."""
        import pyarrow as pa

        from .cache import entries_table

        for namespace in ("messages", "wakes", "members"):
            self.rank(namespace)
        table = entries_table(self)
        # the wakes whose filter was found consistent, checked or restored: doctor need not read them again
        checked = np.union1d(self._checked_filters, np.asarray(self.verified_filters or (), dtype=np.int64))
        seqs = self.arrays()["seq"]
        table = table.append_column("filter_checked", pa.array(np.isin(seqs, checked)))
        # the messages and wakes whose stored text may not be serde's bytes (a column: a log of a newer
        # SDK, whose every record the typed tier refuses, would make a list in the manifest too long)
        table = table.append_column("uncertain", pa.array(np.isin(seqs, np.asarray(self.uncertain, dtype=np.int64))))
        state = self._state
        meta = {
            "config": state.config,
            "config_seq": state.config_seq,
            "conflict_seq": state.conflict_seq,
            "created_seq": state.created_seq,
            "cursor": state.cursor,
            "count": state.count,
            "problems": {seq: (type(e).__name__, e.problem, e.code) for seq, e in self.problems.items()},
            "duplicates": list(self.duplicates),
            "oddities": dict(self.oddities),
        }
        return table, meta

    @gc_paused()
    def restore_state(self, table: Any, meta: dict) -> None:
        """Take over a state :meth:`export_state` saved (columns memory-mapped,
        nothing decoded: entries are made from the columns when read)."""
        from . import errors
        from .cache import CachedEntries

        entries = CachedEntries(table)
        self.entries = entries
        seqs = entries.column_numpy("seq")
        self.seqs = seqs.tolist()
        self._next_base = entries.column_numpy("next")
        self._next_list = None
        state = PoolFold()
        for name in ("config", "config_seq", "conflict_seq", "created_seq", "cursor", "count"):
            setattr(state, name, meta[name])
        self._state = state
        self._fold_pending = True
        self.problems = {}
        for seq, (name, problem, code) in meta["problems"].items():
            kind = getattr(errors, name, None)
            if not (isinstance(kind, type) and issubclass(kind, RecordError)):
                kind = CorruptRecordError
            error = kind(problem, path=self.path, pool_id=self.pool_id, seq=seq, code=code)
            self.problems[int(seq)] = error
        self.duplicates = list(meta["duplicates"])
        self.oddities = {int(seq): [(code, text) for code, text in found] for seq, found in meta["oddities"].items()}
        checked = table.column("filter_checked").to_numpy(zero_copy_only=False)
        self._checked_filters = seqs[checked]
        self.uncertain = seqs[table.column("uncertain").to_numpy(zero_copy_only=False)].tolist()
        kind = entries.kind_array()
        arrays = {
            "seq": seqs,
            "kind": kind,
            "next": self._next_base,
            **_positions_by_namespace(kind),
            "status": entries.status_codes(),
        }
        self._arrays = arrays
        self._behind = []
        rank, code = entries.column_numpy("rank"), entries.column_numpy("code")
        self._ranks = {namespace: rank[arrays[namespace]] for namespace in ("messages", "wakes", "members")}
        for namespace in ("messages", "wakes"):
            self._ranks[f"codes:{namespace}"] = code[arrays[namespace]]

    @gc_paused()
    def _rebuild_fold(self) -> None:
        """The fold's key -> position dicts of a restored index, from its columns
        (the records folded on top included): the current record of each key is
        the one nothing replaced, a dedupe key points at its latest record."""
        self._fold_pending = False
        self._seeded = None
        self._seed_live = {}
        state = self._state
        arrays = self.arrays()
        kind, nexts = arrays["kind"], arrays["next"]
        for namespace, code in (("members", MEMBER_JOINED), ("messages", RUN_MESSAGE), ("wakes", WAKE)):
            live = np.flatnonzero((kind == code) & (nexts == NEVER))
            setattr(state, namespace, dict(zip(self.field("key", live), live.tolist())))
        for namespace, code in (("message_dedupe", RUN_MESSAGE), ("wake_dedupe", WAKE)):
            positions = np.flatnonzero(kind == code)
            setattr(state, namespace, dict(zip(self.field("idem", positions), positions.tolist())))

    def _seed(self, entries: list[Entry]) -> None:
        """Before folding ``entries`` on top of a restored index whose key dicts
        are not rebuilt yet: put into the dicts the current position of each
        key these entries touch for the first time (looked up in the cached
        columns), so that the fold costs what is appended, not the whole pool.
        The dedupe dicts are only written by the fold; they, and the rest of
        the dicts, are rebuilt from the columns when :attr:`fold` is read."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self._seeded is None:
            self._seeded = {"members": set(), "messages": set(), "wakes": set()}
            self._seed_live = {}
        cached = self.entries
        state = self._state
        for namespace, code, kinds in (
            ("members", MEMBER_JOINED, (MEMBER_JOINED, MEMBER_LEFT)),
            ("messages", RUN_MESSAGE, (RUN_MESSAGE,)),
            ("wakes", WAKE, (WAKE,)),
        ):
            known = self._seeded[namespace]
            wanted = {e[1] for e in entries if e[0] in kinds and e[1] not in known}
            if not wanted:
                continue
            known.update(wanted)
            # keys not touched since the restore: their current record is the cached one nothing
            # replaced (found once per restore; a key touched since is in ``known``)
            if namespace not in self._seed_live:
                base = cached.base_rows
                nexts = self._next_base if self._next_base is not None else np.zeros(0, dtype=np.int64)
                kind = cached.column_numpy("kind")
                live = np.flatnonzero((kind == code) & (nexts[:base] == NEVER))
                self._seed_live[namespace] = (live, cached.column("key").take(live))
            live, keys = self._seed_live[namespace]
            hit = pc.is_in(keys, value_set=pa.array(list(wanted), type=pa.string())).to_numpy(zero_copy_only=False)
            found = live[hit]
            getattr(state, namespace).update(zip(self.field("key", found), found.tolist()))

    # ----------------------------------------------------------- building
    def load(self, conn: sqlite3.Connection, progress: bool | None = None) -> int:
        """Read the records after the current head from ``conn``; return how many
        were added (see :func:`poolscope.load.load`)."""
        from .load import load

        duplicates, fresh = len(self.duplicates), not self.seqs
        if self.read_mark is None:
            from .source import change_mark

            self.read_mark = (len(self), change_mark(self.path))
        try:
            added = load(self, conn, progress)
        finally:
            self._repeats.clear()  # wakes remembered while decoding: not kept with the index
        if added and (fresh or self.counted is not None):
            # every row after the old head was read: the count grows by what was read (a row the
            # load cannot place -- a seq that is not a positive integer -- is not counted, so the
            # index cache, comparing with the file's own count, keeps no entry for such a pool)
            before = 0 if fresh or self.counted is None else self.counted[1]
            self.counted = (self.head, before + added + len(self.duplicates) - duplicates)
        return added

    def append_rows(self, rows: Iterable[tuple]) -> int:
        """Decode, flatten and fold ``(seq, kind, typeof, payload)`` rows that
        follow the head, as SQLite returns them (``kind`` and ``payload`` as
        ``str`` or UTF-8 ``bytes``, ``typeof`` the payload's storage class);
        rows at or before the head are skipped.  Returns how many were added.

        >>> index = PoolIndex(Path("demo.db"), "p")
        >>> index.append_rows([(1, "pool_created", "text", '{"type":"pool_created"}')])
        1
        >>> index.head, index.fold.created_seq
        (1, 1)
        """
        seqs, entries = self.decode(rows, self.head)
        self.extend(seqs, entries)
        return len(seqs)

    def extend(self, seqs: list[int], entries: list[Entry]) -> None:
        """Fold entries made by :meth:`decode` (``seqs`` ascending, after the
        head) and record which earlier record each replaces."""
        if not seqs:
            return
        start = len(self.seqs)
        if self._fold_pending and len(entries) + len(self.entries) - self.entries.base_rows <= SEED_LIMIT:
            self._seed(entries)  # restored from the cache: look up only the keys these records touch
            state = self._state
        else:
            state = self.fold
        prevs = state.apply_many(start, seqs, entries)
        if self._next_list is None:
            # restored from the cache: the ``next`` column stays numpy (no million-item list)
            self._next_base = _grown_next(self._next_base, start, seqs, prevs)
        else:
            next_seq = self._next_list
            next_seq.extend([NEVER] * len(entries))
            for seq, prev in zip(seqs, prevs):
                if prev >= 0:
                    next_seq[prev] = seq
        self.seqs.extend(seqs)
        self.entries.extend(entries)
        # the numpy columns take these records in when next read (:meth:`_catch_up`: what they
        # add, not the whole pool again -- a live pool grows by small batches); ranks are rebuilt
        self._ranks = {}
        if self._arrays is not None:
            self._behind.append((seqs, prevs))

    def _catch_up(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` extended by the records folded since they were made."""
        covered, n = len(arrays["seq"]), len(self.seqs)
        seqs = [seq for part, _ in self._behind for seq in part]
        prevs = [prev for _, part in self._behind for prev in part]
        self._behind = []
        positions = np.arange(covered, n)
        kind = np.asarray(self.field("kind", positions), dtype=np.int8)
        restored_next = self._next_base if self._next_list is None else None
        grown = {
            "seq": np.concatenate([arrays["seq"], np.asarray(seqs, dtype=np.int64)]),
            "kind": np.concatenate([arrays["kind"], kind]),
            "next": restored_next if restored_next is not None else _grown_next(arrays["next"], covered, seqs, prevs),
        }
        for namespace, added in _positions_by_namespace(kind, covered).items():
            grown[namespace] = np.concatenate([arrays[namespace], added])
        if "status" in arrays:
            added = status_codes_of(kind, self.field("status", positions))
            grown["status"] = np.concatenate([arrays["status"], added.astype(np.int8)])
        return grown

    def decode(
        self, rows: Iterable[tuple], last: int, *, entry_type: type = Entry, keep: bool = True
    ) -> tuple[list[int], list[Entry]]:
        """Decode and flatten ``(seq, kind, typeof, payload)`` rows with seq > ``last``.

        This is the hot loop of every load.  The two bulk kinds (run_message,
        wake) are read in up to three tiers, each giving the same entry: first
        with msgspec's types (:mod:`poolscope.wire_types`; taken only if they
        write the record back byte for byte), then with orjson and the checks
        by hand, then the careful way (:func:`decode_row` and :func:`extract`,
        which handle every other kind and say what is wrong with a damaged
        record).  In the first tier, a wake whose bytes repeat a recent wake's
        up to its registration (a later record of the same wake) has only its
        registration read and written back.  Strings that repeat are shared,
        and the cyclic garbage collector is paused meanwhile.
        ``keep=False`` is for entries converted at once and dropped, as in
        :func:`poolscope.load.scan`: equal recipient lists and filters are not shared (that
        saves memory only for entries that are kept), and messages and wakes
        get no ``extra`` (expiry, response contract, content ref; timeout,
        resume policy, filter), which only the index's frames read.
        """
        batch_seqs: list[int] = []
        batch: list[Entry] = []
        add_seq, add = batch_seqs.append, batch.append
        loads, dumpb = wire.orjson.loads, wire.orjson.dumps
        resumes, integer = _RESUME, int
        brackets = wire.OPENING
        readers = {"run_message": wire_types.MESSAGE.decode, "wake": wire_types.WAKE.decode}
        wakes_seen, wake_head, wake_start = self._repeats, wire_types.WAKE_HEAD, len(wire_types.WAKE_HEAD)
        last_key, read_last = wire_types.REGISTRATION_KEY, wire_types.REGISTRATION.decode
        encode = wire_types.encode
        held_control = wire_types.may_hold_control
        id_fine = wire.id_fine
        # the first tier is tried until it has refused TYPED_TRIAL records without taking one (a log
        # it never reads -- say, of a newer SDK with fields these types do not know -- is not slowed)
        typed = self._typed[0] > 0 or self._typed[1] < TYPED_TRIAL
        verified, filters = self.verified_filters, self._filters
        taken = tried = 0
        refused, target_of = wire_types.Refused, _TARGET_OF
        new = tuple.__new__
        share = self._shared.setdefault
        uncertain = self.uncertain.append
        tuples = self._shared_tuples

        shared_tuple: Callable[[list], tuple]
        typed_tuple: Callable[[list], tuple]
        if keep:

            def shared_tuple(value: list) -> tuple:
                # recipient lists and wake filters repeat: one tuple per distinct value (its items
                # checked once, when it is first seen: lists of strings)
                if value.__class__ is not list:
                    raise TypeError("not a list of strings")
                items = tuple(value)
                found = tuples.get(items)
                if found is None:
                    found = tuples[items] = str_tuple(value)
                return found

            def typed_tuple(value: list) -> tuple:
                # the same for a list msgspec read as list[str]
                items = tuple(value)
                return tuples.setdefault(items, items)

        else:
            shared_tuple = str_tuple
            typed_tuple = tuple
        # whether any payload of the batch may hold a control character (wire_types.may_hold_control),
        # asked once of the whole batch's bytes: a log the SDK wrote seldom holds even an escape, and
        # only the records of a batch that does are looked at one by one before the typed tier
        if rows.__class__ is not list:
            rows = list(rows)
        try:
            screen = wire_types.control_suspect(b"".join([row[3] for row in rows]))
        except TypeError:  # text (not bytes) from a caller, or a NULL: each record is looked at
            screen = True
        with gc_paused():
            for seq, kind_raw, typ, payload_raw in rows:
                if type(seq) is not int or seq <= last:
                    if type(seq) is int and seq == last:
                        self.duplicates.append(seq)
                    continue
                entry: Any = None
                typed_ok = False
                kind = kind_raw.decode("utf-8", "surrogateescape") if kind_raw.__class__ is bytes else kind_raw
                if typ == "text":
                    try:
                        stored_bytes = payload_raw if payload_raw.__class__ is bytes else payload_raw.encode()
                        # first tier: msgspec's types of the two bulk kinds (wire_types), which check every
                        # field serde checks while parsing; the record is taken only if writing it back
                        # gives its stored bytes exactly (no repeated key, no unknown field)
                        # (msgspec's types refuse an empty identifier and one over 128 characters; a record
                        # whose bytes may hold a control character -- wire_types.may_hold_control, asked only
                        # in a batch that holds a suspect byte -- is left to the next tiers, which look at
                        # each identifier)
                        reader = readers.get(kind) if typed else None
                        if reader is not None:
                            tried += 1
                            # a wake's later records (triggered, timed out, ...) repeat the bytes of its first
                            # one up to the registration: when a recent wake with the same condition id was
                            # taken whole and this one begins with its bytes up to there, only the registration
                            # is read and written back (the rest is serde's bytes, known to give that entry)
                            hint = verdict = None
                            if kind == "wake" and stored_bytes.startswith(wake_head):
                                hint = stored_bytes[wake_start : stored_bytes.find(b'"', wake_start)]
                                known = wakes_seen.get(hint)
                                if known is not None:
                                    prefix, template, verdict = known
                                    at = len(prefix)
                                    if (
                                        stored_bytes.startswith(prefix)
                                        and stored_bytes.startswith(last_key, at)
                                        and stored_bytes.endswith(b"}}")
                                        and (not keep or template[12] is not None)
                                        and (verified is None or verdict is not None)
                                    ):
                                        tail = stored_bytes[at + len(last_key) : -2]
                                        try:
                                            part = None if screen and held_control(tail) else read_last(tail)
                                        except refused:
                                            part = None
                                        if (
                                            part is not None
                                            and encode(part) == tail
                                            and part.condition_id == template[1]
                                        ):
                                            entry = new(
                                                entry_type,
                                                (
                                                    WAKE,
                                                    template[1],
                                                    _WAKE_STATUS[part.status],
                                                    template[3],
                                                    template[4],
                                                    None,
                                                    None,
                                                    None,
                                                    None,
                                                    (),
                                                    None,
                                                    part.journal_cursor,
                                                    template[12] if keep else None,
                                                ),
                                            )
                                            if verdict and verified is not None:
                                                verified.append(seq)
                        if reader is not None and entry is None:
                            verdict = None
                            try:
                                record = None if screen and held_control(stored_bytes) else reader(stored_bytes)
                            except refused:
                                record = None
                            if record is not None and encode(record) == stored_bytes:
                                stored = record.stored
                                if kind == "run_message":
                                    message = stored.message
                                    receipt = stored.receipt
                                    key = message.message_id
                                    if receipt.message_id == key:
                                        target = message.to.target
                                        ttype, id_field = target_of[target.__class__]
                                        tid = getattr(target, id_field)
                                        sender = message.from_
                                        contract = message.response_contract
                                        entry = new(
                                            entry_type,
                                            (
                                                RUN_MESSAGE,
                                                key,
                                                _MESSAGE_STATUS[receipt.status],
                                                message.idempotency_key,
                                                None,
                                                None,
                                                share(sender, sender),
                                                ttype,
                                                share(tid, tid),
                                                typed_tuple(receipt.delivered_to),
                                                message.reply_to,
                                                receipt.journal_cursor,
                                                (
                                                    message.expires_at_millis,
                                                    None if contract is None else contract.expected_responses,
                                                    None if contract is None else contract.timeout_millis,
                                                    message.content_ref,
                                                )
                                                if keep
                                                else None,
                                            ),
                                        )
                                else:
                                    condition = stored.condition
                                    registration = stored.registration
                                    key = condition.condition_id
                                    if registration.condition_id == key:
                                        run_id = condition.run_id
                                        criteria = stored.compiled_filter.criteria
                                        families, kinds, runs = criteria.families, criteria.kinds, criteria.run_ids
                                        entry = new(
                                            entry_type,
                                            (
                                                WAKE,
                                                key,
                                                _WAKE_STATUS[registration.status],
                                                condition.idempotency_key,
                                                share(run_id, run_id),
                                                None,
                                                None,
                                                None,
                                                None,
                                                (),
                                                None,
                                                registration.journal_cursor,
                                                (
                                                    condition.timeout_millis,
                                                    condition.resume_with,
                                                    None if families == "any" else typed_tuple(families.include),
                                                    None if kinds == "any" else typed_tuple(kinds.include),
                                                    None if runs == "any" else typed_tuple(runs.include),
                                                )
                                                if keep
                                                else None,
                                            ),
                                        )
                                        if verified is not None:
                                            verdict = _filter_consistent(stored, stored_bytes, filters)
                                            if verdict:
                                                verified.append(seq)
                            if entry is not None and hint is not None:
                                if len(wakes_seen) >= REPEATS:
                                    wakes_seen.clear()
                                wakes_seen[hint] = (stored_bytes[: stored_bytes.rfind(last_key)], entry, verdict)
                        if reader is not None:
                            taken += entry is not None
                            typed_ok = entry is not None
                        if entry is None:  # second tier: orjson and the checks by hand
                            payload = loads(payload_raw)
                            if kind == "run_message":
                                stored = payload["stored"]
                                message = stored["message"]
                                receipt = stored["receipt"]
                                target = message["to"]["target"]
                                ttype = target["type"]
                                status = receipt["status"]
                                key = message["message_id"]
                                contract = message.get("response_contract")
                                idem = message["idempotency_key"]
                                sender = message["from"]
                                reply = message.get("reply_to")
                                journal = receipt.get("journal_cursor")
                                expires = message.get("expires_at_millis")
                                expected = None if contract is None else contract["expected_responses"]
                                timeout = None if contract is None else contract.get("timeout_millis")
                                content = message["content_ref"]
                                # the SDK's types, checked on the values read anyway (else: extract() says what is
                                # wrong); counts need no upper bound: orjson reads an integer past u64 as a float
                                if (
                                    payload["type"] == "run_message"
                                    and status in _MESSAGE_STATUS
                                    and receipt["message_id"] == key
                                    and id_fine(key)
                                    and ttype in _TARGET_FIELD
                                    and id_fine(idem)
                                    and id_fine(sender)
                                    and id_fine(content)
                                    and (reply is None or id_fine(reply))
                                    and (journal is None or id_fine(journal))
                                    and (expires is None or (expires.__class__ is integer and expires >= 0))
                                    and (contract is None or (expected.__class__ is integer and 0 <= expected <= _U32))
                                    and (timeout is None or (timeout.__class__ is integer and timeout >= 0))
                                ):
                                    check_unread(kind, payload)  # what the entry does not keep
                                    tid = target.get(_TARGET_FIELD[ttype])
                                    if not id_fine(tid):  # every target has its id (serde: no default)
                                        raise TypeError
                                    delivered = shared_tuple(receipt.get("delivered_to", _NO_ITEMS))
                                    for recipient in delivered:
                                        if not id_fine(recipient):
                                            raise TypeError
                                    entry = new(
                                        entry_type,
                                        (
                                            RUN_MESSAGE,
                                            key,
                                            _MESSAGE_STATUS[status],
                                            idem,
                                            None,
                                            None,
                                            share(sender, sender),
                                            _TARGET_TYPE[ttype],
                                            share(tid, tid),
                                            delivered,
                                            reply,
                                            journal,
                                            (expires, expected, timeout, content) if keep else None,
                                        ),
                                    )
                            elif kind == "wake":
                                stored = payload["stored"]
                                condition = stored["condition"]
                                registration = stored["registration"]
                                status = registration["status"]
                                key = condition["condition_id"]
                                criteria = stored["compiled_filter"]["criteria"]
                                families = criteria.get("families")
                                kinds = criteria.get("kinds")
                                runs = criteria.get("run_ids")
                                idem = condition["idempotency_key"]
                                run_id = condition["run_id"]
                                journal = registration.get("journal_cursor")
                                timeout = condition.get("timeout_millis")
                                resume = condition["resume_with"]
                                if (
                                    payload["type"] == "wake"
                                    and status in _WAKE_STATUS
                                    and registration["condition_id"] == key
                                    and id_fine(key)
                                    and id_fine(idem)
                                    and id_fine(run_id)
                                    and resume in resumes
                                    and (journal is None or id_fine(journal))
                                    and (timeout is None or (timeout.__class__ is integer and timeout >= 0))
                                ):
                                    check_unread(kind, payload)
                                    # the filter sets are checked (lists of strings) whether or not they are kept
                                    families = shared_tuple(families["include"]) if families.__class__ is dict else None
                                    kinds = shared_tuple(kinds["include"]) if kinds.__class__ is dict else None
                                    runs = shared_tuple(runs["include"]) if runs.__class__ is dict else None
                                    entry = new(
                                        entry_type,
                                        (
                                            WAKE,
                                            key,
                                            _WAKE_STATUS[status],
                                            idem,
                                            share(run_id, run_id),
                                            None,
                                            None,
                                            None,
                                            None,
                                            (),
                                            None,
                                            journal,
                                            (timeout, resume, families, kinds, runs) if keep else None,
                                        ),
                                    )
                            if entry is None:
                                entry = extract(kind, payload)
                                odd = oddities(kind, entry, payload)
                                if odd:
                                    self.oddities[seq] = odd
                            # what serde refuses and orjson reads (wire.payload_problem), looked at closely
                            # only for a text that is not serde's own bytes (a key may repeat) or that has
                            # enough brackets to nest too deep
                            if (
                                dumpb(payload) != stored_bytes
                                or len(stored_bytes) > _SHALLOW
                                and len(stored_bytes) - len(stored_bytes.translate(None, brackets)) > _MAX_DEPTH
                            ):
                                found, as_serde = wire.serde_read(payload_raw, payload)
                                if found is not None or as_serde is not payload:
                                    raise ValueError  # the careful path says what serde refuses, or reads a -0
                    except Exception:
                        entry = None
                if entry is None:
                    entry = self._slow_entry(seq, kind_raw, typ, payload_raw)
                if not typed_ok and (entry[0] == RUN_MESSAGE or entry[0] == WAKE):
                    uncertain(seq)
                add_seq(seq)
                add(entry)
                last = seq
        self._typed[0] += taken
        self._typed[1] += tried
        return batch_seqs, batch

    def _slow_entry(self, seq: int, kind_raw: Any, typ: str, payload_raw: Any) -> Entry:
        """Decode one row the careful way; a damaged row becomes a DAMAGED entry and a problem."""
        try:
            kind, payload = decode_row(kind_raw, typ, payload_raw)
            entry = extract(kind, payload)
            found = oddities(kind, entry, payload)
            if found:
                self.oddities[seq] = found
            return entry
        except RecordError as error:
            problem: RecordError = error
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            code = "invalid_utf8" if isinstance(error, UnicodeDecodeError) else "bad_shape"
            problem = CorruptRecordError(f"cannot decode record ({error})", code=code)
        self.oddities.pop(seq, None)  # a damaged record is reported as such alone
        problem.path, problem.pool_id, problem.seq = str(self.path), self.pool_id, seq
        problem.args = (problem._format(),)
        self.problems[seq] = problem
        return Entry(DAMAGED)

    # --------------------------------------------------------------- columns
    @property
    def head(self) -> int:
        """Seq of the last record (0 for an empty pool), or :attr:`log_end` when later."""
        last = self.seqs[-1] if self.seqs else 0
        return last if last >= self.log_end else self.log_end

    def __len__(self) -> int:
        return len(self.seqs)

    def entry_columns(self, upto: int | None = None) -> tuple[list[int], list[list]]:
        """The seqs of the records with ``seq <= upto`` (all by default) and their
        entries transposed: one list per :class:`Entry` field, in seq order.

        >>> index = PoolIndex(Path("demo.db"), "p")
        >>> index.append_rows([(1, "pool_created", "text", '{"type":"pool_created"}')])
        1
        >>> seqs, columns = index.entry_columns()
        >>> seqs, columns[Entry._fields.index("kind")]
        ([1], [1])
        """
        n = len(self.seqs) if upto is None else self.position(upto)
        entries = self.entries
        if not isinstance(entries, list):  # restored from the cache: a column at a time
            chosen = None if n == len(entries) else np.arange(n)
            return self.seqs[:n], [entries.field(name, chosen) for name in Entry._fields]
        columns: list[list] = [[] for _ in Entry._fields]
        for start in range(0, n, TRANSPOSE_BATCH):
            transpose(entries[start : min(start + TRANSPOSE_BATCH, n)], columns)
        return self.seqs[:n], columns

    def arrays(self) -> dict[str, np.ndarray]:
        """Numpy columns: ``seq``, ``kind``, ``next`` and, per namespace, the
        positions of the records that can be live (``members``, ``messages``,
        ``wakes``)."""
        if self._behind:
            self._arrays = self._catch_up(self._arrays)  # type: ignore[arg-type]
        if self._arrays is None:
            entries = self.entries
            if isinstance(entries, list):
                kind = np.fromiter((e.kind for e in entries), dtype=np.int8, count=len(entries))
            else:
                kind = entries.kind_array()
            nexts = self._next_list if self._next_list is not None else self._next_base
            self._arrays = {
                "seq": np.asarray(self.seqs, dtype=np.int64),
                "kind": kind,
                "next": np.asarray(nexts, dtype=np.int64),
                **_positions_by_namespace(kind),
            }
        return self._arrays

    def status_codes(self) -> np.ndarray:
        """Per record, the code of its status (``wire.MESSAGE_STATUSES`` index for
        messages, ``wire.WAKE_STATUSES`` index for wakes, -1 otherwise); built
        on first use (diffs and frames need it, a snapshot does not)."""
        arrays = self.arrays()
        if "status" not in arrays:
            from operator import itemgetter

            if not isinstance(self.entries, list):
                arrays["status"] = self.entries.status_codes()
                return arrays["status"]
            arrays["status"] = status_codes_of(arrays["kind"], list(map(itemgetter(2), self.entries)))
        return arrays["status"]

    def kind_mask(self, kind: str) -> np.ndarray:
        """Per record, whether it is of ``kind`` (a name of :data:`wire.KINDS`, or ``"damaged"``).

        >>> index = PoolIndex(Path("demo.db"), "p")
        >>> index.append_rows([(1, "pool_created", "text", '{"type":"pool_created"}')])
        1
        >>> index.kind_mask("pool_created").tolist(), index.kind_mask("wake").tolist()
        ([True], [False])
        """
        if kind == "damaged":
            code = DAMAGED
        elif kind in wire.KINDS:
            code = wire.KINDS.index(kind)
        else:
            raise InvalidInputError(f"unknown kind {kind!r} (kinds: {', '.join((*wire.KINDS, 'damaged'))})")
        return self.arrays()["kind"] == code

    def status_mask(self, status: str, namespace: str | None = None) -> np.ndarray:
        """Per record, whether it is a message or wake with ``status`` (``failed``
        is both), or only of ``namespace`` (``"messages"`` or ``"wakes"``)."""
        namespaces = STATUS_NAMES if namespace is None else (_namespace(namespace),)
        if not any(status in STATUS_CODES[ns] for ns in STATUS_NAMES):
            statuses = ", ".join(dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES))
            raise InvalidInputError(f"unknown status {status!r} (statuses: {statuses})")
        kind, codes = self.arrays()["kind"], self.status_codes()
        out = np.zeros(len(kind), dtype=bool)
        for ns in namespaces:
            code = STATUS_CODES[ns].get(status)
            if code is not None:
                out |= (kind == NAMESPACE_KIND[ns]) & (codes == code)
        return out

    def status_counts(self, namespace: str, positions: np.ndarray | None = None) -> dict[str, int]:
        """How many records of a namespace (``"messages"`` or ``"wakes"``) have
        each status: among ``positions`` (positions of that namespace's records),
        or among all its records -- *records by status*, each status transition
        counted once.  Every status is a key, in the SDK's order.  For the
        *current status* of each message or wake at a cursor, see
        :meth:`current_status_counts`.

        >>> index = PoolIndex(Path("demo.db"), "p")
        >>> index.status_counts("wakes")
        {'registered': 0, 'triggered': 0, 'timed_out': 0, 'cancelled': 0, 'failed': 0}
        """
        namespace = _namespace(namespace)
        if positions is None:
            positions = self.arrays()[namespace]
        names = STATUS_NAMES[namespace]
        codes = self.status_codes()[positions]
        counted = np.bincount(codes[codes >= 0].astype(np.int64), minlength=len(names))
        return {name: int(counted[code]) for code, name in enumerate(names)}

    def current_status_counts(self, namespace: str, cursor: int) -> dict[str, int]:
        """How many messages (wakes) are in each status at ``cursor``: the status
        of their current record (see :meth:`status_counts`)."""
        namespace = _namespace(namespace)
        return self.status_counts(namespace, self.live_positions(namespace, cursor, ordered=False))

    def rank(self, namespace: str) -> np.ndarray:
        """For each position in ``arrays()[namespace]``, the byte-wise rank of its key.

        Python compares ``str`` by code point, which is the byte order of UTF-8:
        the order of the SDK's ``BTreeMap<String, _>``.
        """
        if namespace not in self._ranks:
            positions = self.arrays()[namespace]
            if namespace in ("messages", "wakes"):
                # one key per chain code (codes 0..n-1 in order of first appearance): sort only those
                codes = self.key_codes(namespace)
                first = np.unique(codes, return_index=True)[1]
                keys = self.field("key", positions[first])
                rank_of_code = np.empty(len(keys), dtype=np.int64)
                rank_of_code[sorted(range(len(keys)), key=keys.__getitem__)] = np.arange(len(keys))
                self._ranks[namespace] = rank_of_code[codes]
            else:
                keys = self.field("key", positions)
                order = {key: i for i, key in enumerate(sorted(set(keys)))}
                self._ranks[namespace] = np.fromiter((order[k] for k in keys), dtype=np.int64, count=len(keys))
        return self._ranks[namespace]

    def key_codes(self, namespace: str) -> np.ndarray:
        """For each position in ``arrays()[namespace]``, a code per distinct key
        (in order of first appearance; cheaper than :meth:`rank` when only
        grouping is needed).

        For messages and wakes (records of a key are never removed, so each
        replaces the previous one of its key) the codes follow the chains the
        fold recorded in ``next``, with numpy; other namespaces hash the keys.
        """
        cache_key = f"codes:{namespace}"
        if cache_key not in self._ranks:
            positions = self.arrays()[namespace]
            if namespace in ("messages", "wakes"):
                self._ranks[cache_key] = self._chain_codes(positions)
            else:
                import pandas as pd

                keys = np.array(self.field("key", positions), dtype=object)
                self._ranks[cache_key] = pd.factorize(keys)[0].astype(np.int64) if len(keys) else np.zeros(0, np.int64)
        return self._ranks[cache_key]

    def _chain_codes(self, positions: np.ndarray) -> np.ndarray:
        """Codes of the chains of records that replace each other (``next``) among ``positions``."""
        m = len(positions)
        if not m:
            return np.zeros(0, dtype=np.int64)
        arrays = self.arrays()
        following = arrays["next"][positions]
        replaced = np.flatnonzero(following != NEVER)
        # the record that replaced each of them, as an index into positions
        successor = np.searchsorted(positions, np.searchsorted(arrays["seq"], following[replaced]))
        root = np.arange(m, dtype=np.int64)
        root[successor] = replaced  # each record points at the one it replaced ...
        while True:  # ... and, jumping pointers, at the first record of its key
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped
        return np.unique(root, return_inverse=True)[1].astype(np.int64).reshape(-1)

    def rank_of(self, namespace: str, positions: np.ndarray) -> np.ndarray:
        """Byte-wise key rank of the records at ``positions`` (positions of that namespace)."""
        candidates = self.arrays()[namespace]
        return self.rank(namespace)[np.searchsorted(candidates, positions)]

    def position(self, cursor: int) -> int:
        """Number of records with ``seq <= cursor``."""
        return int(np.searchsorted(self.arrays()["seq"], cursor, side="right"))

    def live_positions(self, namespace: str, cursor: int, *, ordered: bool = True) -> np.ndarray:
        """Positions of the records current at ``cursor`` in a namespace
        (``members``, ``messages`` or ``wakes``), in the SDK's key order."""
        arrays = self.arrays()
        candidates = arrays[namespace]
        upto = int(np.searchsorted(candidates, self.position(cursor), side="left"))
        selected = np.flatnonzero(arrays["next"][candidates[:upto]] > cursor)
        if ordered and len(selected) > 1:
            selected = selected[np.argsort(self.rank(namespace)[selected], kind="stable")]
        return candidates[selected]

    def count_live(self, namespace: str, cursor: int) -> int:
        """How many keys of a namespace are current at ``cursor`` (no sorting)."""
        arrays = self.arrays()
        candidates = arrays[namespace]
        upto = int(np.searchsorted(candidates, self.position(cursor), side="left"))
        return int(np.count_nonzero(arrays["next"][candidates[:upto]] > cursor))

    def check_cursor(self, cursor: Any, name: str | None = None) -> int:
        """``cursor`` as an ``int``; :class:`CursorError` unless it is an integer in
        ``0..head`` (``name`` tells which cursor in the message, e.g. ``"a"``).

        >>> PoolIndex(Path("demo.db"), "p").check_cursor(3)
        Traceback (most recent call last):
        ...
        poolscope.errors.CursorError: file demo.db, pool 'p': cursor 3 is outside 0..0
        """
        label = "cursor" if name is None else f"cursor {name}"
        from .arguments import whole_number

        value = whole_number(cursor)
        if value is None:
            raise CursorError(
                f"{label} must be an integer, not {type(cursor).__name__}", path=self.path, pool_id=self.pool_id
            )
        if not 0 <= value <= self.head:
            shown = f"{label} {value}" if name is None else f"{label}={value}"
            raise CursorError(f"{shown} is outside 0..{self.head}", path=self.path, pool_id=self.pool_id)
        return value

    def check_replay(self, cursor: int, *, strict: bool = True, opened: bool = True) -> None:
        """Fail where the SDK fails to rebuild the snapshot of the log cut at
        ``cursor``: with ``strict``, at a damaged record (its
        :class:`RecordError`) or a conflicting second ``pool_opened``
        (:class:`ConfigConflictError`); with ``opened``, when no ``pool_opened``
        came yet (:class:`PoolNotOpenedError`)."""
        if strict:
            problem = self.first_problem(cursor)
            if problem is not None:
                raise problem
            conflict = self.conflict_at(cursor)
            if conflict is not None:
                raise ConfigConflictError(
                    "the log contains conflicting pool_opened records (the SDK refuses to replay it)",
                    path=self.path,
                    pool_id=self.pool_id,
                    seq=conflict,
                )
        if opened and self.config_at(cursor)[0] is None:
            raise PoolNotOpenedError(
                f"the store has not opened this pool (no pool_opened record at or before cursor {cursor})",
                path=self.path,
                pool_id=self.pool_id,
                seq=cursor if cursor else None,
            )

    def first_problem(self, cursor: int) -> RecordError | None:
        """The first damaged record at or before ``cursor``, if any."""
        if not self.problems:
            return None
        first = min(self.problems)
        return self.problems[first] if first <= cursor else None

    def config_at(self, cursor: int) -> tuple[dict | None, int | None]:
        """The config (and the seq of its ``pool_opened``) in force at ``cursor``."""
        fold = self._state
        if fold.config_seq is None or fold.config_seq > cursor:
            return None, None
        return fold.config, fold.config_seq

    def conflict_at(self, cursor: int) -> int | None:
        """Seq of the first conflicting ``pool_opened`` at or before ``cursor``."""
        seq = self._state.conflict_seq
        return seq if seq is not None and seq <= cursor else None

    def created_at(self, cursor: int) -> bool:
        seq = self._state.created_seq
        return seq is not None and seq <= cursor


#: Names that moved to :mod:`poolscope.load`, still importable from here.
_MOVED_TO_LOAD = frozenset(
    {
        "BATCH",
        "FAST_SCAN_SQL",
        "FREEZE_THRESHOLD",
        "LOAD_CHUNK",
        "LOAD_PARENT_SHARE",
        "ORDER",
        "PARALLEL_THRESHOLD",
        "PARENT_SHARE",
        "PROGRESS_THRESHOLD",
        "SCAN_CHUNK",
        "SCAN_SQL",
        "fetch_payloads",
        "scan",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_LOAD:
        from . import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
