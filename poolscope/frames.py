"""Pool histories as pandas DataFrames: one row per item, documented columns.

In the manner of Inspect AI's ``evals_df`` / ``samples_df`` / ``messages_df``:

* :func:`records_df` -- one row per record;
* :func:`members_df` -- one row per membership interval (a run that leaves and
  re-joins has two rows);
* :func:`messages_df` -- one row per message id;
* :func:`wakes_df` -- one row per wake condition.

Each takes ``upto=cursor`` to see the frame as it was at a past cursor, and
works on a :class:`~poolscope.PoolHistory` or on a whole
:class:`~poolscope.Database` (all pools, with a ``pool_id`` column).  Every
frame is derived from the columnar index that the one fold builds, so the
frames agree with :meth:`PoolHistory.snapshot` at every cursor.  The cyclic
garbage collector is paused while a frame is made (it makes no cycles, and a
collection would walk a large index).  Column names,
meanings and dtypes are listed in :data:`COLUMNS`.  Damaged records appear in
``records_df`` with ``kind == "damaged"`` and the reason in ``problem``.

Example::

    >>> import poolscope
    >>> db = poolscope.open("sample_data/demo.db")
    >>> failed = poolscope.messages_df(db).query("status == 'failed'")
    >>> failed.groupby("pool_id", observed=True).size()
    pool_id
    pool.alpha       68
    pool.bravo      110
    pool.charlie     97
    dtype: int64
    >>> db.pool("pool.alpha").members_df(upto=100)[["run_id", "joined_at", "left_at"]]
                     run_id  joined_at  left_at
    0  run.alpha.reviewer-1          3     <NA>
    1   run.alpha.planner-2          4     <NA>
    2    run.alpha.worker-3         81     <NA>
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import wire
from .arguments import upto_argument
from .fold import DAMAGED, MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE, Entry
from .index import MESSAGE_CODE, WAKE_CODE, gc_paused, transpose

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database, PoolHistory

KIND_DTYPE = pd.CategoricalDtype(list(wire.KINDS) + ["damaged"])
MESSAGE_STATUS_DTYPE = pd.CategoricalDtype(list(wire.MESSAGE_STATUSES))
WAKE_STATUS_DTYPE = pd.CategoricalDtype(list(wire.WAKE_STATUSES))
TARGET_DTYPE = pd.CategoricalDtype(list(wire.TARGET_TYPES))
RESUME_DTYPE = pd.CategoricalDtype(list(wire.RESUME_POLICIES))
STRING = pd.ArrowDtype(pa.string())
STRING_LIST = pd.ArrowDtype(pa.list_(pa.string()))
CURSOR = "Int64"

#: Every frame's columns: name -> (dtype, meaning).  ``category`` columns are
#: pandas Categoricals; cursors are nullable ``Int64`` (missing = not reached).
COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "records_df": {
        "pool_id": ("category", "pool the record belongs to"),
        "seq": ("int64", "the record's cursor (per pool, from 1)"),
        "kind": ("category", "record kind; 'damaged' when it cannot be decoded"),
        "run_id": ("category", "member run (member_joined/left) or the wake's run"),
        "agent_id": ("category", "member agent (member_joined/left)"),
        "message_id": ("string", "run_message: message id"),
        "message_status": ("category", "run_message: receipt status"),
        "sender": ("category", "run_message: sending run (`from`)"),
        "target_type": ("category", "run_message: run, agent, topic or pool"),
        "target_id": ("category", "run_message: the addressed run/agent/topic/pool id"),
        "delivered_to": ("list<string>", "run_message: receipt recipients"),
        "reply_to": ("string", "run_message: message replied to"),
        "condition_id": ("string", "wake: condition id"),
        "wake_status": ("category", "wake: registration status"),
        "idempotency_key": ("string", "run_message/wake: idempotency key"),
        "journal_cursor": ("string", "run_message/wake: source-run journal cursor"),
        "problem": ("string", "why a damaged record could not be read"),
    },
    "members_df": {
        "pool_id": ("category", "pool"),
        "run_id": ("category", "member run"),
        "agent_id": ("category", "member agent (latest join in the interval)"),
        "topics": ("list<string>", "topics (latest join in the interval)"),
        "policy_refs": ("list<string>", "policy refs as kind:id[@version]"),
        "joined_at": ("Int64", "seq of the join that started the interval"),
        "updated_at": ("Int64", "seq of the latest join in the interval (a join of a member updates it)"),
        "left_at": ("Int64", "seq of member_left ending it; missing while still a member"),
        "joins": ("int64", "member_joined records in the interval"),
    },
    "messages_df": {
        "pool_id": ("category", "pool"),
        "message_id": ("string", "message id"),
        "status": ("category", "current status at `upto`: the receipt status of its latest record"),
        "sender": ("category", "sending run"),
        "target_type": ("category", "run, agent, topic or pool"),
        "target_id": ("category", "addressed id"),
        "recipients": ("list<string>", "delivered_to of the latest receipt"),
        "reply_to": ("string", "message replied to"),
        "expected_responses": ("Int64", "response contract: expected responses"),
        "response_timeout_millis": ("Int64", "response contract: timeout"),
        "expires_at_millis": ("Int64", "expiry"),
        "content_ref": ("string", "content reference"),
        "idempotency_key": ("string", "idempotency key"),
        "first_seq": ("int64", "seq of the message's first record"),
        "last_seq": ("int64", "seq of its latest record at `upto`"),
        **{f"{s}_at": ("Int64", f"seq at which status {s} was first reached") for s in wire.MESSAGE_STATUSES},
        "records": ("int64", "how many records the message took"),
    },
    "wakes_df": {
        "pool_id": ("category", "pool"),
        "condition_id": ("string", "wake condition id"),
        "run_id": ("category", "the run waiting"),
        "status": ("category", "current status at `upto`: the registration status of its latest record"),
        "families": ("list<string>", "event families waited for (missing: any)"),
        "kinds": ("list<string>", "event kinds waited for (missing: any)"),
        "runs": ("list<string>", "runs watched, after scoping to members (missing: any)"),
        "timeout_millis": ("Int64", "timeout"),
        "resume_with": ("category", "resume input policy"),
        "idempotency_key": ("string", "idempotency key"),
        "registered_at": ("Int64", "seq of the first `registered`"),
        **{f"{s}_at": ("Int64", f"seq at which status {s} was first reached") for s in wire.WAKE_STATUSES[1:]},
        "terminal_at": ("Int64", "seq of the first terminal status"),
        "first_seq": ("int64", "seq of the condition's first record"),
        "last_seq": ("int64", "seq of its latest record at `upto`"),
        "records": ("int64", "how many records the condition took"),
    },
}


def _cat(values: Any, dtype: pd.CategoricalDtype | None = None) -> pd.Categorical:
    """Values as a Categorical: of ``dtype``'s categories, or of the values found (sorted)."""
    if dtype is not None:
        return pd.Categorical(values, dtype=dtype)
    return _found_categorical(pa.chunked_array([_text_array(values).dictionary_encode()]))


def _constant(value: str, n: int) -> pd.Categorical:
    """``n`` times the same category (a frame's ``pool_id``)."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])


def _strings(values: Any) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.ArrowExtensionArray(_text_array(values))


def _lists(values: Sequence) -> pd.api.extensions.ExtensionArray:
    """Sequences of strings (or None) as an Arrow ``list<string>`` column."""
    return pd.arrays.ArrowExtensionArray(_list_array(values))


#: The largest value an ``Int64`` column holds; the SDK's ``u64`` counts and times go up to 2^64-1.
INT64_MAX = 2**63 - 1


def _cursors(values: Sequence) -> pd.api.extensions.ExtensionArray:
    """Non-negative integers or None as a nullable ``Int64`` column; a value
    beyond it (a ``u64`` past 2^63-1, which ``doctor`` reports as
    ``out_of_range``) is missing there, not an overflow.

    >>> _cursors([3, None, 2**64 - 1]).tolist()
    [3, <NA>, <NA>]
    """
    try:
        data = np.fromiter((-1 if v is None else v for v in values), dtype=np.int64, count=len(values))
    except OverflowError:
        data = np.fromiter((-1 if v is None or v > INT64_MAX else v for v in values), dtype=np.int64, count=len(values))
    return _masked(data)


def _masked(data: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """int64 values with -1 meaning missing, as a nullable ``Int64`` column."""
    return pd.arrays.IntegerArray(data.astype(np.int64, copy=False), data < 0)


# ---------------------------------------------------------------- records
_TARGET_CODE = {s: i for i, s in enumerate(wire.TARGET_TYPES)}


def _text_array(values: list, null: np.ndarray | None = None) -> pa.Array:
    """Strings (or None) as an Arrow string array, null also where ``null`` is
    true; a value of another JSON type (a payload the SDK would not write, but
    that still parses) becomes its JSON text."""
    try:
        return pa.array(values, type=pa.string(), mask=null)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        texts = [v if v is None or type(v) is str else wire.dumps(v) for v in values]
        return pa.array(texts, type=pa.string(), mask=null)


def _codes(values: list, table: dict, where: np.ndarray | None = None) -> np.ndarray:
    """Per value its code in ``table`` (-1 when absent), optionally only ``where`` true."""
    try:
        codes = np.fromiter(map(table.get, values, repeat(-1)), dtype=np.int8, count=len(values))
    except TypeError:  # an unhashable value where a string belongs
        codes = np.fromiter((table.get(v, -1) if v.__class__ is str else -1 for v in values), np.int8, len(values))
    if where is not None:
        codes[~where] = -1
    return codes


def _list_array(values: Sequence, where: np.ndarray | None = None) -> pa.Array:
    """Sequences of strings as a ``list<string>`` array, null where a value is
    None or ``where`` is false; built from one flat array and offsets (much
    faster than item by item).  (Converting only the distinct tuples the
    index shares and spreading them with ``take`` was measured slower: a third
    of the recipient lists of a large pool are distinct.)
    """
    n = len(values)
    if where is None:
        where = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    every = bool(where.all())
    kept = values if every else [v for v, w in zip(values, where.tolist()) if w]
    lengths = np.zeros(n, dtype=np.int64)
    lengths[where] = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = _text_array(list(chain.from_iterable(kept)))
    return pa.ListArray.from_arrays(pa.array(offsets), flat, mask=None if every else pa.array(~where))


def _records_table(seqs: list[int], columns: list[list], problems: dict[int, str]) -> pa.Table:
    """The records_df columns of one pool's records, as an Arrow table (codes
    for kinds and statuses, dictionaries for the run, agent, sender and target
    ids): what :func:`records_df` stacks and converts.

    ``columns`` holds one list per :class:`~poolscope.fold.Entry` field, in seq
    order (see :func:`poolscope.load.scan`); ``problems`` maps the seq of a
    damaged record to why.
    """
    (kind, key, status, idem, run_id, agent_id, sender, ttype, tid, delivered, reply, journal, _extra) = (
        columns if columns and columns[0] else [[] for _ in Entry._fields]
    )
    n = len(seqs)
    seq_array = np.asarray(seqs, dtype=np.int64)
    kinds = np.asarray(kind, dtype=np.int8)
    is_message = kinds == RUN_MESSAGE
    is_wake = kinds == WAKE
    problem: list[str | None] = [None] * n
    for seq, text in problems.items():
        pos = int(np.searchsorted(seq_array, seq))
        if pos < n and seqs[pos] == seq:
            problem[pos] = text
    return pa.table(
        {
            "seq": seq_array,
            "kind": np.where(kinds == DAMAGED, len(wire.KINDS), kinds).astype(np.int8),
            "run_id": _text_array(run_id).dictionary_encode(),
            "agent_id": _text_array(agent_id).dictionary_encode(),
            "message_id": _text_array(key, ~is_message),
            "message_status": _codes(status, MESSAGE_CODE, is_message),
            "sender": _text_array(sender).dictionary_encode(),
            "target_type": _codes(ttype, _TARGET_CODE),
            "target_id": _text_array(tid).dictionary_encode(),
            "delivered_to": _list_array(delivered, is_message),
            "reply_to": _text_array(reply),
            "condition_id": _text_array(key, ~is_wake),
            "wake_status": _codes(status, WAKE_CODE, is_wake),
            "idempotency_key": _text_array(idem),
            "journal_cursor": _text_array(journal),
            "problem": _text_array(problem),
        }
    )


def _found_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """A dictionary-encoded column (one dictionary per chunk) as a Categorical
    whose categories are the values found, sorted."""
    chunks = column.unify_dictionaries().chunks if column.num_chunks else []
    values = chunks[0].dictionary.to_pylist() if chunks else []
    order = sorted(range(len(values)), key=values.__getitem__)
    recode = np.empty(len(values) + 1, dtype=np.int32)
    recode[np.asarray(order, dtype=np.int64)] = np.arange(len(values), dtype=np.int32)
    recode[-1] = -1  # missing
    indices = [c.indices.fill_null(len(values)).to_numpy(zero_copy_only=False) for c in chunks]
    codes = recode[np.concatenate(indices).astype(np.int64, copy=False)] if indices else np.zeros(0, np.int32)
    return pd.Categorical.from_codes(codes, categories=[values[i] for i in order])


def _records_frame(tables: list[pa.Table], pool_codes: list[int], pool_ids: list[str]) -> pd.DataFrame:
    """Stack :func:`_records_table` results (pool ``pool_ids[pool_codes[i]]`` for
    ``tables[i]``) into the documented records_df."""
    table = pa.concat_tables(tables) if len(tables) != 1 else tables[0]
    sizes = [t.num_rows for t in tables]
    pool_code = np.repeat(np.asarray(pool_codes, dtype=np.int32), sizes) if tables else np.zeros(0, np.int32)

    def fixed(name: str, dtype: pd.CategoricalDtype) -> pd.Categorical:
        return pd.Categorical.from_codes(table.column(name).to_numpy(), dtype=dtype)

    def text(name: str) -> pd.api.extensions.ExtensionArray:
        return pd.arrays.ArrowExtensionArray(table.column(name))

    return pd.DataFrame(
        {
            "pool_id": pd.Categorical.from_codes(pool_code, categories=pool_ids),
            "seq": table.column("seq").to_numpy(),
            "kind": fixed("kind", KIND_DTYPE),
            "run_id": _found_categorical(table.column("run_id")),
            "agent_id": _found_categorical(table.column("agent_id")),
            "message_id": text("message_id"),
            "message_status": fixed("message_status", MESSAGE_STATUS_DTYPE),
            "sender": _found_categorical(table.column("sender")),
            "target_type": fixed("target_type", TARGET_DTYPE),
            "target_id": _found_categorical(table.column("target_id")),
            "delivered_to": text("delivered_to"),
            "reply_to": text("reply_to"),
            "condition_id": text("condition_id"),
            "wake_status": fixed("wake_status", WAKE_STATUS_DTYPE),
            "idempotency_key": text("idempotency_key"),
            "journal_cursor": text("journal_cursor"),
            "problem": text("problem"),
        }
    )


def _index_records_table(history: PoolHistory, upto: int | None) -> pa.Table:
    """:func:`_records_table` of a loaded pool, from its index."""
    index = history.index
    entries = index.entries
    if not isinstance(entries, list):  # restored from the cache: Arrow to Arrow
        n = index.position(upto) if upto is not None else len(index)
        problems = {seq: error.problem for seq, error in index.problems.items()}
        base = min(n, entries.base_rows)
        tables = [_cached_records_table(entries.base_table().slice(0, base), problems, entries.base_rows)]
        if n > base:
            columns: list[list] = [[] for _ in Entry._fields]
            transpose(entries.tail[: n - base], columns)
            tables.append(_records_table(index.seqs[base:n], columns, problems))
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    seqs, columns = index.entry_columns(upto)
    problems = {seq: error.problem for seq, error in index.problems.items()}
    return _records_table(seqs, columns, problems)


def _cached_records_table(table: pa.Table, problems: dict[int, str], full_rows: int) -> pa.Table:
    """:func:`_records_table` from the columns of an index cache entry
    (:mod:`poolscope.cache`): the same table, made with Arrow compute instead
    of from Python lists."""
    import pyarrow.compute as pc

    seq = table.column("seq").to_numpy()
    n = len(seq)
    kinds = table.column("kind").to_numpy()
    is_message = kinds == RUN_MESSAGE
    is_wake = kinds == WAKE
    status = table.column("status_code").to_numpy()
    key = table.column("key")
    problem: list = [None] * n
    for at, text in problems.items():
        pos = int(np.searchsorted(seq, at))
        if pos < n and seq[pos] == at:
            problem[pos] = text
    ttype = table.column("target_type").combine_chunks()
    ttype_codes = np.asarray([_TARGET_CODE.get(v, -1) for v in ttype.dictionary.to_pylist()] + [-1], dtype=np.int8)
    delivered = table.column("delivered_to").combine_chunks()
    recipients = delivered.values
    flat = recipients.dictionary.take(recipients.indices) if len(recipients) else pa.array([], type=pa.string())
    no_message = pa.array(~is_message)

    def found(name: str) -> pa.Array:  # a slice's dictionary keeps only the values in it
        column = table.column(name).combine_chunks()
        return column.dictionary_decode().dictionary_encode() if sliced else column

    sliced = table.num_rows < full_rows
    return pa.table(
        {
            "seq": seq,
            "kind": np.where(kinds == DAMAGED, len(wire.KINDS), kinds).astype(np.int8),
            "run_id": found("run_id"),
            "agent_id": found("agent_id"),
            "message_id": pc.if_else(pa.array(is_message), key, pa.scalar(None, pa.string())),
            "message_status": np.where(is_message, status, -1).astype(np.int8),
            "sender": found("sender"),
            "target_type": ttype_codes[ttype.indices.fill_null(len(ttype.dictionary)).to_numpy(zero_copy_only=False)],
            "target_id": found("target_id"),
            "delivered_to": pa.ListArray.from_arrays(delivered.offsets, flat, mask=no_message),
            "reply_to": table.column("reply_to"),
            "condition_id": pc.if_else(pa.array(is_wake), key, pa.scalar(None, pa.string())),
            "wake_status": np.where(is_wake, status, -1).astype(np.int8),
            "idempotency_key": table.column("idem"),
            "journal_cursor": table.column("journal_cursor"),
            "problem": _text_array(problem),
        }
    )


def _scanned_records_tables(db: Database, pool_id: str, upto: int | None) -> list[pa.Table]:
    """:func:`_records_table` parts of a pool that is not loaded: decoded straight from the
    log (both cores for a large pool), without building its index."""
    from .index import PoolIndex
    from .load import scan

    return scan(PoolIndex(db.path, pool_id), db.conn, _records_table, upto=upto, progress=db.progress)


def _history_records_tables(history: PoolHistory, upto: int | None) -> list[pa.Table]:
    """A pool's records tables: from its index when it is in memory or in the
    index cache, else straight from the file (no index is built for a frame)."""
    if history.loaded or history._try_cache():
        return [_index_records_table(history, upto)]
    return _scanned_records_tables(history.db, history.pool_id, upto)


def _pool_records(history: PoolHistory, upto: int | None) -> pd.DataFrame:
    tables = _history_records_tables(history, upto) or [_records_table([], [], {})]
    return _records_frame(tables, [0] * len(tables), [history.pool_id])


@gc_paused()
def records_df(source: PoolHistory | Database, upto: int | None = None) -> pd.DataFrame:
    """One row per record (see ``COLUMNS["records_df"]``).

    On a :class:`~poolscope.PoolHistory` the rows come from its index (as
    loaded: ``refresh()`` reads newer records).  On a
    :class:`~poolscope.Database`, pools already opened with ``db.pool()`` come
    from their index too; the others are decoded straight from the file
    without building an index (a large pool on both cores), which is the
    quickest way from a database to a frame.  If the file grew since a pool
    was opened, that pool's rows stop where its index does (``db.refresh()``
    first to include the newer ones).

    >>> records_df(db).groupby("kind", observed=True).size()
    kind
    pool_opened         3
    pool_created        3
    member_joined     125
    member_left        72
    run_message      2598
    wake              801
    dtype: int64
    """
    upto = upto_argument(upto)
    from .history import Database

    if not isinstance(source, Database):
        return _pool_records(source, upto)
    tables: list[pa.Table] = []
    codes: list[int] = []
    for code, pool_id in enumerate(source.pool_ids):
        opened = source._pools.get(pool_id)
        if opened is None and pool_id in source._indexes:
            opened = source.pool(pool_id)
        parts = (
            _history_records_tables(opened, upto)
            if opened is not None
            else _scanned_records_tables(source, pool_id, upto)
        )
        tables.extend(parts)
        codes.extend([code] * len(parts))
    if not tables:
        return _empty(_pool_records)
    return _records_frame(tables, codes, source.pool_ids)


# ---------------------------------------------------------------- members
def _policy_ref_text(ref: Any) -> str:
    if isinstance(ref, dict):
        text = f"{ref.get('kind')}:{ref.get('id')}"
        return text + (f"@{ref['version']}" if ref.get("version") is not None else "")
    return str(ref)


def membership_intervals(history: PoolHistory, upto: int | None = None) -> tuple[list[dict], list[tuple[int, int]]]:
    """The membership intervals of a pool up to ``upto``, from the index.

    Returns ``(rows, updates)``: one dict per interval in order of joining
    (``run_id``, ``member`` -- the latest join's member dict, ``joined_at``,
    ``updated_at``, ``left_at`` (None while a member), ``joins``), and the
    ``(seq, row)`` of every join that updated a run that was already a member.
    :func:`members_df` and the membership plot are both drawn from this.

    >>> rows, updates = membership_intervals(pool, upto=100)
    >>> [(row["run_id"], row["joined_at"], row["left_at"]) for row in rows], updates
    ([('run.alpha.reviewer-1', 3, None), ('run.alpha.planner-2', 4, None), ('run.alpha.worker-3', 81, None)], [(12, 1), (48, 0)])
    """
    index = history.index
    arrays = index.arrays()
    n = index.position(upto) if upto is not None else len(index)
    changes = arrays["member_changes"]
    changes = changes[: int(np.searchsorted(changes, n, side="left"))]
    seqs = index.seqs
    open_rows: dict[str, int] = {}
    rows: list[dict] = []
    updates: list[tuple[int, int]] = []
    for pos, entry in zip(changes.tolist(), index.entries_at(changes)):
        seq = seqs[pos]
        if entry.kind == MEMBER_JOINED:
            at = open_rows.get(entry.key)
            if at is None:
                open_rows[entry.key] = len(rows)
                rows.append(
                    {
                        "run_id": entry.key,
                        "member": entry.extra,
                        "joined_at": seq,
                        "updated_at": seq,
                        "left_at": None,
                        "joins": 1,
                    }
                )
            else:
                row = rows[at]
                row["member"], row["updated_at"] = entry.extra, seq
                row["joins"] += 1
                updates.append((seq, at))
        elif entry.kind == MEMBER_LEFT:
            at = open_rows.pop(entry.key, None)
            if at is not None:
                rows[at]["left_at"] = seq
    return rows, updates


def _pool_members(history: PoolHistory, upto: int | None) -> pd.DataFrame:
    rows, _ = membership_intervals(history, upto)
    members = [r["member"] for r in rows]
    return pd.DataFrame(
        {
            "pool_id": _constant(history.pool_id, len(rows)),
            "run_id": _cat([r["run_id"] for r in rows]),
            "agent_id": _cat([m.get("agent_id") for m in members]),
            "topics": _lists([list(m.get("topics", [])) for m in members]),
            "policy_refs": _lists([[_policy_ref_text(p) for p in m.get("policy_refs", [])] for m in members]),
            "joined_at": _cursors([r["joined_at"] for r in rows]),
            "updated_at": _cursors([r["updated_at"] for r in rows]),
            "left_at": _cursors([r["left_at"] for r in rows]),
            "joins": np.asarray([r["joins"] for r in rows], dtype=np.int64),
        }
    )


@gc_paused()
def members_df(source: PoolHistory | Database, upto: int | None = None) -> pd.DataFrame:
    """One row per membership interval (see ``COLUMNS["members_df"]``).

    The rows with no ``left_at`` at ``upto=k`` are exactly ``snapshot(k).members``.

    >>> members_df(pool, upto=50).query("left_at.isna()")[["run_id", "agent_id", "joined_at"]]
                     run_id              agent_id  joined_at
    0  run.alpha.reviewer-1  agent.alpha.reviewer          3
    1   run.alpha.planner-2   agent.alpha.planner          4
    """
    upto = upto_argument(upto)
    return _combine(source, _pool_members, upto)


# ------------------------------------------------------ messages and wakes
class Groups:
    """The records of one namespace (``"messages"`` or ``"wakes"``) up to
    ``upto``, grouped by key with numpy: one group per message or wake
    condition, in order of first appearance.  The frames, the plots and the
    flows are all built from it.

    ``first``/``last`` are positions (in the index) of each key's first and
    latest record, ``count`` how many records it took, ``status`` the latest
    status code, ``reached[s]`` the seq at which status code ``s`` was first
    reached (-1: never), ``first_seq``/``last_seq`` the seqs of the first and
    latest record; :meth:`terminal_at` the first terminal status reached,
    :meth:`columns` fields of the latest record.

    >>> groups = Groups(pool, None, "wakes")
    >>> groups.columns("key")[0][:2], groups.terminal_at()[:2]
    (['wake.alpha.1', 'wake.alpha.2'], array([ 7, 62]))
    """

    def __init__(self, history: PoolHistory, upto: int | None, namespace: str, n_statuses: int | None = None) -> None:
        self.namespace = namespace
        self.statuses: tuple[str, ...] = wire.MESSAGE_STATUSES if namespace == "messages" else wire.WAKE_STATUSES
        if n_statuses is None:
            n_statuses = len(self.statuses)
        index = history.index
        arrays = index.arrays()
        n = index.position(upto) if upto is not None else len(index)
        candidates = arrays[namespace]
        m = int(np.searchsorted(candidates, n, side="left"))
        positions = candidates[:m]
        codes = index.key_codes(namespace)[:m] if m else np.zeros(0, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = (
            np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if m else np.zeros(0, dtype=np.int64)
        )
        ends = np.r_[starts[1:] - 1, m - 1] if m else np.zeros(0, dtype=np.int64)
        first = positions[order[starts]]
        by_appearance = np.argsort(first, kind="stable")
        self.first = first[by_appearance]
        self.last = positions[order[ends]][by_appearance]
        self.count = (ends - starts + 1)[by_appearance]
        seqs = arrays["seq"]
        statuses = index.status_codes()[positions]
        group_of = np.empty(m, dtype=np.int64)
        group_of[order] = np.repeat(np.arange(len(starts)), ends - starts + 1) if m else group_of[:0]
        rank_of_group = np.empty(len(starts), dtype=np.int64)
        rank_of_group[by_appearance] = np.arange(len(starts))
        self.reached = {}
        for code in range(n_statuses):
            hits = np.flatnonzero(statuses == code)
            out = np.full(len(starts), -1, dtype=np.int64)
            if len(hits):
                groups = rank_of_group[group_of[hits]]
                unique, where = np.unique(groups, return_index=True)
                out[unique] = seqs[positions[hits[where]]]
            self.reached[code] = out
        self.status = index.status_codes()[self.last]
        self.first_seq = seqs[self.first]
        self.last_seq = seqs[self.last]
        self._index = index

    def status_names(self) -> np.ndarray:
        """The latest status of each key, by name."""
        names = np.asarray([*self.statuses, None], dtype=object)  # code -1 (none): None
        return names[self.status]

    def terminal_at(self) -> np.ndarray:
        """The seq at which each key first reached a terminal status (-1: never)."""
        terminal_names = wire.MESSAGE_TERMINAL if self.namespace == "messages" else wire.WAKE_TERMINAL
        terminal = np.full(len(self.first), -1, dtype=np.int64)
        for code, status in enumerate(self.statuses):
            if status in terminal_names:
                reached = self.reached[code]
                better = (reached >= 0) & ((terminal < 0) | (reached < terminal))
                terminal[better] = reached[better]
        return terminal

    def columns(self, *fields: str) -> list[list]:
        """Fields of the latest entry of each key: one list per field named
        (a field at a time: cheaper than transposing whole entries)."""
        index = self._index
        if isinstance(index.entries, list):
            entries = index.entries
            latest = [entries[p] for p in self.last.tolist()]
            return [list(map(itemgetter(Entry._fields.index(f)), latest)) for f in fields]
        return [index.field(f, self.last) for f in fields]


_Groups = Groups  # the name it had


def _reached(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return _masked(values)


def _pool_messages(history: PoolHistory, upto: int | None) -> pd.DataFrame:
    groups = Groups(history, upto, "messages")
    n = len(groups.last)
    key, idem, sender, ttype, tid, delivered, reply, extra = groups.columns(
        "key", "idem", "sender", "target_type", "target_id", "delivered_to", "reply_to", "extra"
    )
    expires, expected, timeout, content = zip(*extra) if n else ((),) * 4
    return pd.DataFrame(
        {
            "pool_id": _constant(history.pool_id, n),
            "message_id": _strings(key),
            "status": pd.Categorical.from_codes(groups.status, dtype=MESSAGE_STATUS_DTYPE),
            "sender": _cat(sender),
            "target_type": pd.Categorical.from_codes(_codes(ttype, _TARGET_CODE), dtype=TARGET_DTYPE),
            "target_id": _cat(tid),
            "recipients": _lists(delivered),
            "reply_to": _strings(reply),
            "expected_responses": _cursors(expected),
            "response_timeout_millis": _cursors(timeout),
            "expires_at_millis": _cursors(expires),
            "content_ref": _strings(content),
            "idempotency_key": _strings(idem),
            "first_seq": groups.first_seq.astype(np.int64),
            "last_seq": groups.last_seq.astype(np.int64),
            **{f"{s}_at": _reached(groups.reached[i]) for i, s in enumerate(wire.MESSAGE_STATUSES)},
            "records": groups.count.astype(np.int64),
        }
    )


@gc_paused()
def messages_df(source: PoolHistory | Database, upto: int | None = None) -> pd.DataFrame:
    """One row per message id, ordered by first appearance (see ``COLUMNS["messages_df"]``).

    >>> messages_df(pool).query("status in ['failed', 'expired']")[["message_id", "status", "sender"]].head(3)
        message_id  status               sender
    0  msg.alpha.1  failed  run.alpha.planner-2
    6  msg.alpha.7  failed    run.alpha.ghost-7
    8  msg.alpha.9  failed  run.alpha.planner-2
    """
    upto = upto_argument(upto)
    return _combine(source, _pool_messages, upto)


def _pool_wakes(history: PoolHistory, upto: int | None) -> pd.DataFrame:
    groups = Groups(history, upto, "wakes")
    n = len(groups.last)
    key, idem, run_id, extra = groups.columns("key", "idem", "run_id", "extra")
    timeout, resume, families, kinds, runs = zip(*extra) if n else ((),) * 5
    terminal = groups.terminal_at()
    return pd.DataFrame(
        {
            "pool_id": _constant(history.pool_id, n),
            "condition_id": _strings(key),
            "run_id": _cat(run_id),
            "status": pd.Categorical.from_codes(groups.status, dtype=WAKE_STATUS_DTYPE),
            "families": _lists(families),
            "kinds": _lists(kinds),
            "runs": _lists(runs),
            "timeout_millis": _cursors(timeout),
            "resume_with": _cat(resume, RESUME_DTYPE),
            "idempotency_key": _strings(idem),
            **{f"{s}_at": _reached(groups.reached[i]) for i, s in enumerate(wire.WAKE_STATUSES)},
            "terminal_at": _reached(terminal),
            "first_seq": groups.first_seq.astype(np.int64),
            "last_seq": groups.last_seq.astype(np.int64),
            "records": groups.count.astype(np.int64),
        }
    )


@gc_paused()
def wakes_df(source: PoolHistory | Database, upto: int | None = None) -> pd.DataFrame:
    """One row per wake condition, ordered by first appearance (see ``COLUMNS["wakes_df"]``).

    >>> wakes_df(pool).query("status == 'timed_out'")[["condition_id", "run_id", "registered_at", "terminal_at"]].head(3)
         condition_id                run_id  registered_at  terminal_at
    0    wake.alpha.1  run.alpha.reviewer-1              5            7
    9   wake.alpha.10   run.alpha.planner-2            111          112
    14  wake.alpha.15  run.alpha.reviewer-5            171          172
    """
    upto = upto_argument(upto)
    return _combine(source, _pool_wakes, upto)


# ----------------------------------------------------------------- common
def _combine(source: Any, build: Callable[[PoolHistory, int | None], pd.DataFrame], upto: int | None) -> pd.DataFrame:
    from .history import Database

    if isinstance(source, Database):
        frames = [build(history, upto) for history in source.pools()]
        if not frames:
            return _empty(build)
        with_ids = source.pool_ids
        combined = pd.concat(frames, ignore_index=True)
        combined["pool_id"] = pd.Categorical(combined["pool_id"].astype(object), categories=with_ids)
        return _restore(combined, frames[0])
    return build(source, upto)


def _restore(combined: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``concat`` turns categoricals with different categories into object: make them categorical again."""
    for column in combined.columns:
        if isinstance(like[column].dtype, pd.CategoricalDtype) and not isinstance(
            combined[column].dtype, pd.CategoricalDtype
        ):
            fixed = (
                like[column].dtype
                if column in ("kind", "message_status", "wake_status", "status", "target_type", "resume_with")
                else None
            )
            combined[column] = pd.Categorical(combined[column].astype(object), dtype=fixed)
    return combined


def _empty(build: Callable) -> pd.DataFrame:
    name = {
        _pool_records: "records_df",
        _pool_members: "members_df",
        _pool_messages: "messages_df",
        _pool_wakes: "wakes_df",
    }[build]
    return empty_frame(name)


#: Categorical columns with a fixed list of categories, per frame.
FIXED_CATEGORIES: dict[str, dict[str, pd.CategoricalDtype]] = {
    "records_df": {
        "kind": KIND_DTYPE,
        "message_status": MESSAGE_STATUS_DTYPE,
        "wake_status": WAKE_STATUS_DTYPE,
        "target_type": TARGET_DTYPE,
    },
    "members_df": {},
    "messages_df": {"status": MESSAGE_STATUS_DTYPE, "target_type": TARGET_DTYPE},
    "wakes_df": {"status": WAKE_STATUS_DTYPE, "resume_with": RESUME_DTYPE},
}
#: The dtype pandas gives an index of strings (``str`` from pandas 3, ``object`` before).
TEXT_INDEX = pd.Index(["x"]).dtype


def text_categories(values: object) -> pd.CategoricalDtype:
    """A categorical dtype of these categories, held as pandas holds strings."""
    return pd.CategoricalDtype(pd.Index(values, dtype=TEXT_INDEX))


def dtype_of(name: str, column: str) -> object:
    """The pandas dtype of a documented column of frame ``name`` (a fleet's
    ``source`` too); a categorical column whose categories are the values
    found has none yet.

    >>> dtype_of("records_df", "seq"), dtype_of("records_df", "kind") == KIND_DTYPE
    ('int64', True)
    """
    if column == "source":
        return text_categories([])
    kind = COLUMNS[name][column][0]
    if kind == "category":
        return FIXED_CATEGORIES[name].get(column, text_categories([]))
    return {"string": STRING, "list<string>": STRING_LIST}.get(kind, kind)


def empty_frame(name: str, source: bool = False) -> pd.DataFrame:
    """A frame ``name`` with no row and the documented columns and dtypes (a
    database with no pool gives it; ``source``: a fleet's, ``source`` first).

    >>> empty_frame("members_df").dtypes["joined_at"]
    Int64Dtype()
    """
    columns = (["source"] if source else []) + list(COLUMNS[name])
    return pd.DataFrame({c: pd.Series(dtype=dtype_of(name, c)) for c in columns})


def describe_columns(frame: str | None = None) -> pd.DataFrame:
    """The documented columns (frame, column, dtype, meaning) as a DataFrame.

    >>> describe_columns("members_df").loc[0, "column"]
    'pool_id'
    """
    rows = [
        {"frame": name, "column": column, "dtype": dtype, "meaning": meaning}
        for name, columns in COLUMNS.items()
        if frame is None or name == frame
        for column, (dtype, meaning) in columns.items()
    ]
    return pd.DataFrame(rows)
