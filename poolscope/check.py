"""Checking a database for damage and for histories the SDK would not write.

:func:`check` (also :meth:`poolscope.Database.check` and ``poolscope doctor``)
returns a list of :class:`Anomaly`, each with a severity:

* ``error``: the SDK cannot replay the pool past this record, or the record
  contradicts itself (damaged payloads, records of an unopened pool, a
  conflicting ``pool_opened``, a wake filter whose fingerprint is wrong, a
  duplicated seq);
* ``warning``: the SDK can replay it, but its own coordinator never writes it
  (a gap in the seqs, ``member_left`` for a run that is not a member, a status
  change for a message or wake that was never recorded);
* ``info``: worth knowing, harmless (no ``agent_pool_event_seq`` table, a
  repeated identical ``pool_opened``).

Histories written by the real SDK are clean.  What the SDK's store lets
through is not reported: a ``delivered`` message that later becomes
``timed_out``, ``cancelled`` or ``responded`` in any order and more than once,
a wake cancelled twice, a message recorded straight as ``failed`` or
``expired``, a ``failed`` wake without ``journal_cursor``.

The check works from the pool indexes (one pass over their entries: a load has
already kept out of the fold, as damaged, every record serde_json would refuse,
:func:`poolscope.wire.payload_problem` and :func:`poolscope.fold.check_unread`
included), and reads each wake's compiled filter once more (the rest of its
payload skipped, its criteria as text, each distinct text looked at once) to
recompute their filter fingerprints.

Example::

    >>> import poolscope
    >>> with poolscope.open("sample_data/demo.db") as db:
    ...     [a.code for a in db.check()]
    []
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import wire
from .errors import (
    DatabaseChangedError,
    DatabaseError,
    DatabaseLockedError,
    PoolscopeError,
    RecordError,
)
from .fold import DAMAGED, MEMBER_JOINED, MEMBER_LEFT, POOL_OPENED, RUN_MESSAGE, WAKE, configs_equal
from .index import MAX_SEQ, NEVER, too_big
from .source import EVENT_SEQ_TABLE, RECORDS_TABLE, keepalive, sql_name
from .sqlite_errors import sqlite_errors

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database, PoolHistory

SEVERITIES = ("error", "warning", "info")
#: At most this many anomalies of one code are listed per pool; the rest are summed up in one more.
MAX_PER_CODE = 200

#: Every anomaly code, its severity and what it means.
CODES: dict[str, tuple[str, str]] = {
    "bad_json": ("error", "payload_json is not valid JSON"),
    "invalid_utf8": ("error", "payload_json is not valid UTF-8 text"),
    "blob_payload": ("error", "payload_json is stored as a BLOB, not TEXT"),
    "null_payload": ("error", "payload_json is NULL"),
    "bad_shape": ("error", "the payload is JSON but not the SDK's shape for its kind"),
    "payload_too_large": ("error", "a payload larger than the max_payload limit (not read)"),
    "duplicate_key": ("error", "a key repeated in one JSON object of the payload (serde rejects a repeated field)"),
    "too_deep": ("error", f"a payload nesting more than {wire.MAX_DEPTH} levels (serde_json's recursion limit)"),
    "unknown_kind": ("error", "a record type this SDK version does not know (written by a newer SDK?)"),
    "unknown_status": ("error", "a message or wake status this SDK version does not know"),
    "duplicate_seq": ("error", "two rows of one pool share a seq"),
    "bad_seq": ("error", "a seq that is not an integer, or one no record can have (0 or less, 2^63-1)"),
    "bad_pool_id": (
        "error",
        "a pool_id that is NULL, not text, or not an id the SDK reads (empty, too long, a control character)",
    ),
    "pool_not_opened": ("error", "a pool with records but no pool_opened"),
    "record_before_open": ("error", "records before the pool's pool_opened"),
    "config_conflict": ("error", "a second pool_opened with a different config"),
    "wake_filter_mismatch": ("error", "a wake's compiled filter fingerprint or id does not match its criteria"),
    "unreadable": ("error", "SQLite could not read part of the file"),
    "kind_mismatch": (
        "warning",
        "a kind column that does not name the payload's type (the SDK reads the payload: it is folded as one)",
    ),
    "receipt_mismatch": ("warning", "a message whose receipt is for another message id (folded by the message's)"),
    "registration_mismatch": (
        "warning",
        "a wake whose registration is for another condition id (folded by the condition's)",
    ),
    "seq_gap": ("warning", "seqs missing between two records"),
    "out_of_range": ("warning", "a u64 value past 2^63-1: exact in records and snapshots, missing in the frames"),
    "member_left_not_member": ("warning", "member_left for a run that is not a member"),
    "message_never_sent": ("warning", "a status change for a message never recorded"),
    "delivered_without_accepted": ("warning", "a message delivered without being accepted first"),
    "wake_never_registered": ("warning", "a status change for a wake condition never registered"),
    "too_many": ("warning", "more anomalies of one code than are listed"),
    "repeated_pool_opened": ("info", "a second pool_opened with the same config"),
    "no_event_seq_table": ("info", "the agent_pool_event_seq table is missing"),
    "bad_event_seq": (
        "warning",
        "an agent_pool_event_seq row the SDK cannot count on from (not one integer 0..2^63-2 per text pool_id)",
    ),
}

#: First statuses the SDK's coordinator writes for a new message.
_MESSAGE_FIRST = frozenset({"accepted", "failed", "expired"})
_WAKE_FIRST = frozenset({"registered"})


@dataclass(frozen=True)
class Anomaly:
    """One finding: ``severity`` ("error", "warning" or "info"), ``code`` (see
    :data:`CODES`), where (``pool_id``, ``seq``; ``None`` for the whole file)
    and ``message``, a plain explanation."""

    severity: str
    code: str
    pool_id: str | None
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = []
        if self.pool_id is not None:
            where.append(f"pool {self.pool_id!r}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        return f"{self.severity}: {self.code}" + (f" ({', '.join(where)})" if where else "") + f": {self.message}"


def _anomaly(code: str, pool_id: str | None, seq: int | None, message: str) -> Anomaly:
    return Anomaly(CODES[code][0], code, pool_id, seq, message)


def problem_code(error: RecordError) -> str:
    """The anomaly code for a damaged record the index reported: the error's
    own ``code``, set where it was raised (``bad_shape`` for one this module
    has no code for)."""
    return error.code if error.code in CODES else "bad_shape"


# --------------------------------------------------------------------- checks
def check(db: Database) -> list[Anomaly]:
    """Every anomaly found in ``db`` (a :class:`poolscope.Database`), file-wide
    ones first, then pool by pool in seq order.

    Raises :class:`DatabaseLockedError` / :class:`DatabaseChangedError` when the
    file cannot be read right now; other read failures become ``unreadable``
    anomalies.
    """
    found: list[Anomaly] = list(_file_checks(db))
    for pool_id in db.pool_ids:
        try:
            # a pool loaded here checks its wakes' filters as it decodes them (read once, not twice)
            history = db.pool(pool_id).load(verify_filters=True)
            found.extend(_capped(_pool_checks(history)))
            index = history.index
            if index.unsaved_checks and db.cache is not None:
                # wakes read again here (the pool was loaded, or its entry saved, without checking
                # them): saved with its entry, the next check from it reads none of them.  The save
                # makes sure the index is still the file's (a restored one's records hash as its
                # entry says; the records decoded here decode again the same if the file changed)
                db.cache.save(index, db.conn)
        except (DatabaseLockedError, DatabaseChangedError):
            raise
        except DatabaseError as error:
            found.append(_anomaly("unreadable", pool_id, error.seq, error.problem))
    return found


def _capped(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    out: list[Anomaly] = []
    counts: dict[str, int] = {}
    for anomaly in anomalies:
        n = counts[anomaly.code] = counts.get(anomaly.code, 0) + 1
        if n <= MAX_PER_CODE:
            out.append(anomaly)
    for code, n in counts.items():
        if n > MAX_PER_CODE:
            pool_id = next(a.pool_id for a in out if a.code == code)
            out.append(
                _anomaly(
                    "too_many", pool_id, None, f"{n - MAX_PER_CODE} more {code} anomalies in this pool are not listed"
                )
            )
    return out


def _file_checks(db: Database) -> Iterable[Anomaly]:
    conn, path = db.conn, db.path
    with sqlite_errors(path):
        tables = {sql_name(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # only the key columns: SQLite answers from the primary-key index
        odd = conn.execute(
            f"SELECT typeof(pool_id), CAST(pool_id AS BLOB), typeof(seq), CAST(seq AS BLOB) FROM {RECORDS_TABLE} "
            "WHERE typeof(pool_id) != 'text' OR typeof(seq) != 'integer' LIMIT ?",
            (MAX_PER_CODE + 1,),
        ).fetchall()
        # integer seqs no record can have: 0 and below (the SDK counts from 1), and 2^63-1 (the index's mark)
        unplaced = conn.execute(
            f"SELECT CAST(pool_id AS BLOB), seq FROM {RECORDS_TABLE} "
            "WHERE typeof(seq) = 'integer' AND (seq <= 0 OR seq > ?) ORDER BY pool_id, seq LIMIT ?",
            (MAX_SEQ, MAX_PER_CODE + 1),
        ).fetchall()
    for pool_raw, seq in unplaced[:MAX_PER_CODE]:
        yield _anomaly(
            "bad_seq",
            _text(pool_raw),
            seq,
            f"seq {seq} is outside 1..{MAX_SEQ}: no record can be placed there, poolscope leaves it out "
            "(the other records' state is computed without it)",
        )
    if EVENT_SEQ_TABLE not in tables:
        yield _anomaly(
            "no_event_seq_table",
            None,
            None,
            f"the database has no {EVENT_SEQ_TABLE} table (the SDK creates it; pool event numbering starts afresh)",
        )
    else:
        yield from _event_seq_checks(conn, path)
    for pool_type, pool_raw, seq_type, seq_raw in odd[:MAX_PER_CODE]:
        pool_id = _text(pool_raw)
        if pool_type != "text":
            yield _anomaly(
                "bad_pool_id", pool_id, None, f"a row's pool_id is {pool_type.upper()}, not text: no pool can read it"
            )
        if seq_type != "integer":
            yield _anomaly(
                "bad_seq",
                pool_id,
                None,
                f"a row's seq is {seq_type.upper()} {_text(seq_raw)!r}, not an integer: poolscope and the SDK skip it",
            )
    for raw in db._undecodable_pool_ids[: max(0, MAX_PER_CODE - len(odd))]:
        yield _anomaly(
            "bad_pool_id",
            _text(raw),
            None,
            f"a pool_id is TEXT that is not UTF-8 ({raw[:60]!r}): the SDK reads a pool by its UTF-8 id, "
            "so no pool can read these rows (poolscope leaves them out)",
        )
    if len(odd) + len(db._undecodable_pool_ids) > MAX_PER_CODE:
        yield _anomaly("too_many", None, None, "more rows with a bad pool_id or seq are not listed")
    # text ids the SDK's PoolId refuses (empty, over 512 bytes, a control character): no SDK call names them
    refused = [(pool_id, problem) for pool_id in db.pool_ids if (problem := wire.identifier_problem(pool_id))]
    for pool_id, problem in refused[:MAX_PER_CODE]:
        yield _anomaly(
            "bad_pool_id",
            pool_id,
            None,
            f"the pool id is not one the SDK's PoolId reads ({problem}): no SDK call can name this pool "
            "(poolscope reads its records as they are)",
        )
    if len(refused) > MAX_PER_CODE:
        yield _anomaly(
            "too_many", None, None, f"{len(refused) - MAX_PER_CODE} more pool ids the SDK refuses are not listed"
        )


def _event_seq_checks(conn: sqlite3.Connection, path: Any) -> Iterable[Anomaly]:
    """Rows of the event numbering the SDK's ``next_event_sequence`` could not
    count on from: a pool_id that is not text, a seq that is not an integer in
    0..MAX_SEQ-1, or two rows for one pool (a table made without the SDK's
    primary key).  The records are not affected; the SDK's (and
    :meth:`PoolStore.next_event_sequence`'s) next event number of that pool is."""
    try:
        with sqlite_errors(path):
            columns = {sql_name(row[1]) for row in conn.execute(f"PRAGMA table_info({EVENT_SEQ_TABLE})")}
            if not {"pool_id", "seq"} <= columns:
                yield _anomaly(
                    "bad_event_seq",
                    None,
                    None,
                    f"the {EVENT_SEQ_TABLE} table has no pool_id and seq columns: "
                    "the SDK cannot number any pool's events",
                )
                return
            keyed = any(
                unique
                and [sql_name(row[2]) for row in conn.execute(f"PRAGMA index_info({_quoted(name)})")] == ["pool_id"]
                for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({EVENT_SEQ_TABLE})")
            )
            if not keyed:
                yield _anomaly(
                    "bad_event_seq",
                    None,
                    None,
                    f"the {EVENT_SEQ_TABLE} table has no unique key on pool_id (the SDK's primary key): the SDK's "
                    "INSERT OR IGNORE adds a row at every event number it hands out, so no pool's numbering holds",
                )
            rows = conn.execute(
                f"SELECT typeof(pool_id), CAST(pool_id AS BLOB), typeof(seq), CAST(seq AS BLOB) "
                f"FROM {EVENT_SEQ_TABLE} "
                "WHERE typeof(pool_id) != 'text' OR typeof(seq) != 'integer' OR seq < 0 OR seq >= ?1 "
                f"OR pool_id IN (SELECT pool_id FROM {EVENT_SEQ_TABLE} GROUP BY pool_id HAVING count(*) > 1) "
                "ORDER BY pool_id LIMIT ?2",
                (MAX_SEQ, MAX_PER_CODE + 1),
            ).fetchall()
    except (DatabaseLockedError, DatabaseChangedError):
        raise
    except DatabaseError as error:
        yield _anomaly("unreadable", None, None, f"the {EVENT_SEQ_TABLE} table cannot be read: {error.problem}")
        return
    for pool_type, pool_raw, seq_type, seq_raw in rows[:MAX_PER_CODE]:
        pool_id = _text(pool_raw) if pool_type == "text" else None
        if pool_type != "text":
            why = f"its pool_id is {pool_type.upper()} {_text(pool_raw)!r}"[:120] + ", not text"
        elif seq_type != "integer":
            why = f"its seq is {seq_type.upper()} {_text(seq_raw)!r}"[:120] + ", not an integer"
        elif not 0 <= int(seq_raw) < MAX_SEQ:
            why = f"its seq {int(seq_raw)} is outside 0..{MAX_SEQ - 1}"
        else:
            why = f"another row numbers the same pool (this one holds {int(seq_raw)})"
        yield _anomaly(
            "bad_event_seq",
            pool_id,
            None,
            f"an {EVENT_SEQ_TABLE} row the SDK cannot count on from: {why}; the pool's records are not "
            "affected, but the SDK cannot number its next event",
        )
    if len(rows) > MAX_PER_CODE:
        yield _anomaly("too_many", None, None, f"more bad {EVENT_SEQ_TABLE} rows are not listed")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw)


def _pool_checks(history: PoolHistory) -> Iterable[Anomaly]:
    index = history.index
    pool_id = history.pool_id
    seqs = index.seqs
    # damaged records and duplicates, as the index found them
    for seq in sorted(index.problems):
        error = index.problems[seq]
        yield _anomaly(problem_code(error), pool_id, seq, error.problem)
    for seq in sorted(index.oddities):
        for code, message in index.oddities[seq]:
            yield _anomaly(code, pool_id, seq, message)
    for seq in sorted(set(index.duplicates)):
        yield _anomaly(
            "duplicate_seq",
            pool_id,
            seq,
            "more than one row has this seq (the SDK's primary key forbids it); the first is used",
        )
    if not seqs:
        return
    # gaps
    arrays = index.arrays()  # (its seq column is the seqs; its other columns serve the order checks below)
    array = arrays["seq"]
    if array[0] != 1:
        yield _anomaly(
            "seq_gap", pool_id, int(array[0]), f"seqs 1..{int(array[0]) - 1} are missing before the first record"
        )
    for pos in np.flatnonzero(np.diff(array) > 1)[: MAX_PER_CODE + 1]:
        before, after = int(array[pos]), int(array[pos + 1])
        missing = f"seq {before + 1} is" if after - before == 2 else f"seqs {before + 1}..{after - 1} are"
        yield _anomaly("seq_gap", pool_id, after, f"{missing} missing (records deleted?)")
    # opening
    fold = index.fold
    if fold.config_seq is None:
        yield _anomaly(
            "pool_not_opened",
            pool_id,
            seqs[0],
            f"the pool has {len(seqs)} record(s) but no pool_opened: the SDK refuses to snapshot it",
        )
    elif seqs[0] < fold.config_seq:
        before = int(np.searchsorted(array, fold.config_seq))
        yield _anomaly(
            "record_before_open",
            pool_id,
            seqs[0],
            f"{before} record(s) come before the pool_opened at seq {fold.config_seq}: "
            "the SDK opens a pool before anything else",
        )
    # the entries, no payloads: messages and wakes (nearly every record) a column at a time, with the
    # fold's chains; the few membership and opening records one by one.  Each anomaly is kept with
    # its seq and put in seq order at the end (at one seq: a number out of range, then the status).
    kinds, seq_column = arrays["kind"], array
    damaged_seqs = seq_column[kinds == DAMAGED]

    def lost(seq: int) -> str:  # a damaged record before it may be the lost one that explains a warning
        before = int(np.searchsorted(damaged_seqs, seq)) - 1
        if before < 0:
            return ""
        return f" (the damaged record at seq {int(damaged_seqs[before])} may be the one that recorded it)"

    found: list[tuple[int, int, Anomaly]] = []
    statuses = index.status_codes()
    # the records some record of their key came before (the fold chained one to them)
    following = arrays["next"]
    targets = following[following != NEVER]
    at = np.searchsorted(seq_column, targets)
    inside = at < len(seq_column)  # (every target is a record of the pool; checked, not assumed)
    at, targets = at[inside], targets[inside]
    chained = np.zeros(len(kinds), dtype=bool)
    chained[at[seq_column[at] == targets]] = True
    for namespace, kind in (("messages", RUN_MESSAGE), ("wakes", WAKE)):
        positions = arrays[namespace]
        if not len(positions):
            continue
        # numbers past 2^63-1 (rare: found with one comparison a record)
        extras = index.field("extra", positions)
        if kind == RUN_MESSAGE:
            beyond = [
                i
                for i, extra in enumerate(extras)
                if extra is not None and max(extra[0] or 0, extra[1] or 0, extra[2] or 0) > _INT64_MAX
            ]
        else:
            beyond = [i for i, extra in enumerate(extras) if extra is not None and (extra[0] or 0) > _INT64_MAX]
        for at in beyond:
            seq = int(seq_column[positions[at]])
            found.extend((seq, 0, anomaly) for anomaly in _out_of_range(pool_id, seq, kind, extras[at]))
        # a key's first record (no record of its key before it: the fold chained none to it) in a
        # status that cannot come first
        first = positions[~chained[positions]]
        names = wire.MESSAGE_STATUSES if kind == RUN_MESSAGE else wire.WAKE_STATUSES
        can_come_first = _MESSAGE_FIRST if kind == RUN_MESSAGE else _WAKE_FIRST
        odd = first[~np.isin(statuses[first], [names.index(status) for status in can_come_first])]
        for position, key, status in zip(odd.tolist(), index.field("key", odd), index.field("status", odd)):
            if status in can_come_first:  # (a status without a code: none is, the decode refuses others)
                continue
            seq = int(seq_column[position])
            if kind == WAKE:
                anomaly = _anomaly(
                    "wake_never_registered",
                    pool_id,
                    seq,
                    f"wake condition {key!r} changes to {status} but was never registered{lost(seq)}",
                )
            elif status == "delivered":
                anomaly = _anomaly(
                    "delivered_without_accepted",
                    pool_id,
                    seq,
                    f"message {key!r} is recorded delivered but was never accepted{lost(seq)}",
                )
            else:
                anomaly = _anomaly(
                    "message_never_sent",
                    pool_id,
                    seq,
                    f"message {key!r} changes to {status} but was never recorded before{lost(seq)}",
                )
            found.append((seq, 1, anomaly))
    config = None
    members: set[str | None] = set()  # keys as the entries hold them
    others = np.flatnonzero((kinds == MEMBER_JOINED) | (kinds == MEMBER_LEFT) | (kinds == POOL_OPENED))
    for position, entry in zip(others.tolist(), index.entries_at(others)):
        seq = int(seq_column[position])
        if entry.kind == MEMBER_JOINED:
            members.add(entry.key)
        elif entry.kind == MEMBER_LEFT:
            if entry.key in members:
                members.discard(entry.key)
            else:
                message = f"run {entry.key!r} leaves but is not a member (the SDK's leave_member refuses this)"
                found.append((seq, 0, _anomaly("member_left_not_member", pool_id, seq, message + lost(seq))))
        elif config is None:
            config = entry.extra
        elif configs_equal(config, entry.extra):
            message = "pool_opened again with the same config (harmless)"
            found.append((seq, 0, _anomaly("repeated_pool_opened", pool_id, seq, message)))
        else:
            message = "pool_opened again with a different config: the SDK refuses to replay the pool from here on"
            found.append((seq, 0, _anomaly("config_conflict", pool_id, seq, message)))
    found.sort(key=lambda item: item[:2])
    for _, _, anomaly in found:
        yield anomaly
    wake_seqs = seq_column[arrays["wakes"]].tolist()
    yield from _payload_checks(history, wake_seqs)


#: The numbers of a message's and a wake's ``extra`` (see ``PoolIndex.decode``), by position.
_NUMBERS = {
    RUN_MESSAGE: ((0, "expires_at_millis"), (1, "expected_responses"), (2, "response_contract.timeout_millis")),
    WAKE: ((0, "timeout_millis"),),
}
_INT64_MAX = 2**63 - 1


def _out_of_range(pool_id: str, seq: int, kind: int, extra: tuple) -> Iterable[Anomaly]:
    for position, name in _NUMBERS[kind]:
        value = extra[position]
        if value is not None and value > _INT64_MAX:
            yield _anomaly(
                "out_of_range",
                pool_id,
                seq,
                f"{name} = {value} is beyond 2^63-1: records and snapshots keep it exactly, "
                "the frames' Int64 columns show it as missing",
            )


#: The wakes, whose payloads are read again here (the index keeps their
#: criteria in part, not their fingerprints): every record filed as a wake,
#: or (:data:`_PAYLOAD_BY_SEQ_SQL`) those at given seqs, however filed.
_PAYLOAD_BY_SEQ_SQL = (
    f"SELECT seq, CAST(payload_json AS BLOB) FROM {RECORDS_TABLE} "
    "WHERE pool_id = ? AND seq > ? AND seq <= ? AND typeof(payload_json) = 'text' ORDER BY seq"
)
_PAYLOAD_SQL = _PAYLOAD_BY_SEQ_SQL.replace(" AND typeof", " AND kind = 'wake' AND typeof")


#: Rows read between two calls of ``keepalive`` in the wake pass (the query's
#: time bound is then on this many rows, a millisecond or two).
KEEPALIVE_ROWS = 256


#: Fewer wakes to read again than one in this many of the pool's: each is read by
#: its seq (an entry that knows most of them), not by reading through every wake.
SPARSE_READ = 16


def _payload_rows(history: PoolHistory, seqs: Iterable[int] | None = None) -> Iterable[tuple[int, bytes]]:
    """``(seq, payload)`` of every wake of the pool (of those at ``seqs``, if
    given), read whole, in seq order; a payload larger than ``max_payload``
    (already a damaged record) is passed over."""
    conn, pool_id = history.db.conn, history.pool_id
    spans = [(0, MAX_SEQ)] if seqs is None else [(seq - 1, seq) for seq in sorted(seqs)]
    sql = _PAYLOAD_SQL if seqs is None else _PAYLOAD_BY_SEQ_SQL
    rows = 0
    for last, upto in spans:
        while True:
            try:
                for seq, raw in conn.execute(sql, (pool_id, last, upto)):
                    rows += 1
                    if rows % KEEPALIVE_ROWS == 0:
                        keepalive(conn)
                    last = seq
                    yield seq, raw
                break
            except sqlite3.DataError as error:
                if not too_big(error):
                    raise
            # SQLite reads a row ahead: read the next row alone to learn which one it refused
            try:
                row = conn.execute(sql + " LIMIT 1", (pool_id, last, upto)).fetchone()
            except sqlite3.DataError as error:
                if not too_big(error):
                    raise
                row = conn.execute(
                    sql.replace("CAST(payload_json AS BLOB)", "NULL") + " LIMIT 1", (pool_id, last, upto)
                ).fetchone()
            if row is None:
                break
            last = row[0]
            if row[1] is not None:
                yield row


def _wanted_rows(history: PoolHistory, wanted: set[int], sparse: bool) -> Iterator[tuple[int, bytes]]:
    """:func:`_payload_rows` of the wakes at ``wanted``: each read by its seq
    (``sparse``), or every row filed as a wake, then by its seq each wanted
    one that is not filed so (a wake under another kind: ``kind_mismatch``)."""
    if sparse:
        yield from _payload_rows(history, wanted)
        return
    seen = set()
    for row in _payload_rows(history):
        seen.add(row[0])
        yield row
    if wanted - seen:
        yield from _payload_rows(history, wanted - seen)


def _payload_checks(history: PoolHistory, wake_seqs: list[int]) -> Iterable[Anomaly]:
    """Read the wake payloads again (but those checked while they were
    decoded): each filter's fingerprint and id recomputed from its criteria.
    Only the compiled filter is read (msgspec,
    :data:`poolscope.wire_types.WAKE_FILTER`: the criteria as text), and each
    distinct criteria text is parsed and hashed once; a payload that reader
    refuses is read whole."""
    from . import wire_types

    pool_id = history.pool_id
    index = history.index
    # a damaged record is reported already, a wake checked while it was decoded (PoolIndex.verify_filters),
    # by an earlier check or when the index's cache entry was saved is consistent; a duplicated seq is
    # checked once (rows come in seq order)
    wanted = set(wake_seqs).difference(index.problems, index.consistent_filters())
    if not wanted:
        return
    consistent: list[int] = []
    previous = None
    by_text: dict[bytes, tuple[bytes, str]] = {}  # criteria text -> (compact JSON, its hash)
    known: dict[bytes, tuple[str, str] | str] = {}  # by the compact JSON: what the SDK compiles them to
    read_filter, refused = wire_types.WAKE_FILTER.decode, wire_types.Refused
    with sqlite_errors(history.path, pool_id):
        # an entry that knows most wakes leaves a few to read: each by its seq
        sparse = len(wanted) * SPARSE_READ < len(wake_seqs)
        for seq, raw in _wanted_rows(history, wanted, sparse):
            if seq == previous or seq not in wanted:
                continue
            previous = seq
            try:
                compiled = read_filter(raw).stored.compiled_filter
                stored = (compiled.filter_fingerprint, compiled.filter_id)
                text = bytes(compiled.criteria)
                found = by_text.get(text)
                if found is None:
                    found = by_text[text] = _hashed(wire.loads(text))
            # not the usual shape, not JSON, too deep (msgspec's recursion limit): read it whole
            except (refused, ValueError, TypeError, RecursionError):
                try:
                    payload = wire.loads(raw)
                except ValueError:
                    continue  # the index has it as damaged (a row that changed since is the file's business)
                try:
                    compiled_filter = payload["stored"]["compiled_filter"]
                    stored = (compiled_filter["filter_fingerprint"], compiled_filter["filter_id"])
                    criteria = compiled_filter["criteria"]
                except (KeyError, TypeError) as error:
                    yield _anomaly("wake_filter_mismatch", pool_id, seq, f"the compiled filter lacks {error}")
                    continue
                try:
                    found = _hashed(criteria)
                except TypeError as error:  # orjson writes at most 255 levels; serde reads 128
                    message = f"its criteria are not a valid EventFilter ({error}: they nest too deep)"
                    yield _anomaly("wake_filter_mismatch", pool_id, seq, message)
                    continue
            expected = _expected_filter(found, stored, known)
            if isinstance(expected, str):
                yield _anomaly("wake_filter_mismatch", pool_id, seq, expected)
            elif stored[0] != expected[0]:
                yield _anomaly(
                    "wake_filter_mismatch",
                    pool_id,
                    seq,
                    f"filter_fingerprint is {stored[0]!r} but the criteria hash to {expected[0]!r}",
                )
            elif stored[1] != expected[1]:
                yield _anomaly(
                    "wake_filter_mismatch",
                    pool_id,
                    seq,
                    f"filter_id is {stored[1]!r} but the fingerprint gives {expected[1]!r}",
                )
            else:
                consistent.append(seq)
    # kept with the index (and in its next cache entry): a later check need not read them again
    index.add_checked_filters(consistent)


def _hashed(criteria: Any) -> tuple[bytes, str]:
    """Criteria's compact JSON (in their order) and its fingerprint (no parsed
    criteria are kept: thousands of dicts would slow every collection)."""
    key = wire.dumpb(criteria)
    return key, wire.fingerprint_of(key)


def _expected_filter(found: tuple[bytes, str], stored: tuple, known: dict) -> tuple[str, str] | str:
    """The fingerprint and id a wake's criteria should have (or why they cannot
    have one), for ``found`` (:func:`_hashed`) and the ``stored`` (fingerprint,
    id).  Criteria whose compact JSON hashes to the stored fingerprint are taken
    as written (whichever SDK release wrote them); any others must hash as the
    SDK compiles them -- remembered in ``known`` by their compact JSON.  The
    verdict depends on the wake alone, not on which wakes came before.

    >>> criteria = wire.canonical_event_filter({"kinds": {"include": ["done"]}})
    >>> found = _hashed(criteria)
    >>> _expected_filter(found, (found[1], "x"), {}) == (found[1], wire.filter_id(found[1]))
    True
    >>> _expected_filter(_hashed({"kinds": "any"}), ("sha256:0", "x"), {}) == _expected_filter(
    ...     _hashed(wire.canonical_event_filter({})), ("sha256:1", "x"), {})
    True
    """
    key, as_written = found
    if stored[0] == as_written:
        return as_written, wire.filter_id(as_written)
    expected = known.get(key)
    if expected is None:
        try:
            compiled_again = wire.compile_filter(wire.loads(key))
            expected = (compiled_again["filter_fingerprint"], compiled_again["filter_id"])
        except PoolscopeError as error:
            expected = f"its criteria are not a valid EventFilter ({error.problem})"
        known[key] = expected
    return expected


# ------------------------------------------------------------------ summary
def summarize(anomalies: list[Anomaly]) -> dict[str, int]:
    """Counts by severity."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for anomaly in anomalies:
        counts[anomaly.severity] += 1
    return counts


def file_wide(anomalies: Iterable[Anomaly], pool_ids: Iterable[str]) -> list[Anomaly]:
    """The anomalies of no pool in ``pool_ids`` (a database's): those of the
    whole file (``pool_id`` None) and those of rows that no pool reads, named
    by their pool id as ``doctor`` names them (a BLOB pool id, or TEXT that is
    not UTF-8: ``bad_pool_id``), which :attr:`Database.pool_ids` leaves out.
    A page that shows each pool's anomalies with the pool shows these apart.

    >>> found = [_anomaly("seq_gap", "pool.a", 5, "..."), _anomaly("bad_pool_id", "pool\ufffd", None, "...")]
    >>> [(a.code, a.pool_id) for a in file_wide(found, ["pool.a"])]
    [('bad_pool_id', 'pool\ufffd')]
    """
    listed = set(pool_ids)
    return [a for a in anomalies if a.pool_id is None or a.pool_id not in listed]


__all__ = ["Anomaly", "CODES", "SEVERITIES", "check", "file_wide", "problem_code", "summarize"]
