"""PoolStore: the SDK's error paths, dedupe, canonical JSON, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

import poolscope
from poolscope import wire

MEMBER = {"run_id": "run.a", "agent_id": "agent.x"}


def _message(n: int, *, key: str | None = None) -> dict:
    return {
        "message_id": f"msg.{n}",
        "from": "run.a",
        "to": {
            "target": {"type": "run", "run_id": "run.b"},
            "destination_ref": {
                "kind": "agent",
                "id": "run.b",
                "privacy": "content_refs_only",
                "retention": "host_policy",
            },
            "related_refs": [{"kind": "run", "id": "run.b", "privacy": "content_refs_only"}],
        },
        "content_ref": f"content.{n}",
        "correlation": {},
        "idempotency_key": key or f"idem.{n}",
    }


@pytest.fixture
def store(tmp_path):
    with poolscope.PoolStore(tmp_path / "store.db") as s:
        yield s


def test_open_pool_with_an_equal_config_appends_nothing(store):
    first = store.open_pool("p", {"message_policy": {"include_sender_in_pool_broadcast": False}})
    # the SDK compares after its defaults: an omitted list equals an empty one
    again = store.open_pool(
        "p",
        {
            "policy_refs": [],
            "wake_policy": {"envelope_only": True},
            "message_policy": {"required_policy_refs": [], "include_sender_in_pool_broadcast": False},
        },
    )
    assert first.cursor == again.cursor == 1
    assert [r.kind for r in store.watch("p")] == ["pool_opened"]


def test_open_pool_with_a_different_config_is_an_error(store):
    store.open_pool("p", {})
    with pytest.raises(poolscope.ConfigConflictError, match="conflicts with existing pool") as info:
        store.open_pool("p", {"wake_policy": {"envelope_only": False}})
    assert info.value.pool_id == "p" and "store.db" in str(info.value)
    assert len(store.watch("p")) == 1


def test_snapshot_of_an_unopened_pool_is_an_error(store):
    with pytest.raises(poolscope.PoolNotOpenedError, match="has not opened this pool"):
        store.snapshot("nope")
    with pytest.raises(poolscope.PoolNotOpenedError):
        store.join_member("nope", MEMBER)
    # like the SDK, record_pool_created does not check
    assert store.record_pool_created("nope") == 1


def test_leaving_twice_is_an_error(store):
    store.open_pool("p", {})
    store.join_member("p", MEMBER)
    member, cursor = store.leave_member("p", "run.a")
    assert member == MEMBER and cursor == 3
    with pytest.raises(poolscope.NotAMemberError, match="not a member"):
        store.leave_member("p", "run.a")
    with pytest.raises(poolscope.NotAMemberError):
        store.leave_member("p", "run.never")
    assert [r.kind for r in store.watch("p")] == ["pool_opened", "member_joined", "member_left"]


def test_record_pool_created_appends_on_every_call(store):
    store.open_pool("p", {})
    assert [store.record_pool_created("p") for _ in range(3)] == [2, 3, 4]
    assert store.snapshot("p").created is True


def test_message_dedupe_returns_the_latest_receipt(store):
    store.open_pool("p", {})
    assert store.message_receipt("p", "idem.1") is None
    store.record_message("p", _message(1), {"message_id": "msg.1", "status": "accepted", "delivered_to": ["run.b"]})
    store.record_message("p", _message(1), {"message_id": "msg.1", "status": "delivered", "delivered_to": ["run.b"]})
    assert store.message_receipt("p", "idem.1") == {
        "message_id": "msg.1",
        "status": "delivered",
        "delivered_to": ["run.b"],
    }
    # a second message under the same key replaces the dedupe entry, as in the SDK
    store.record_message("p", _message(2, key="idem.1"), {"message_id": "msg.2", "status": "failed"})
    assert store.message_receipt("p", "idem.1")["message_id"] == "msg.2"
    assert len(store.snapshot("p").messages) == 2


def test_wake_dedupe_and_lookup(store):
    store.open_pool("p", {})
    condition = wire.canonical_condition({"condition_id": "w.1", "run_id": "run.a", "idempotency_key": "k.1"})
    compiled = wire.compile_filter(condition["filter"])
    store.record_wake("p", condition, compiled, {"condition_id": "w.1", "run_id": "run.a", "status": "registered"})
    store.record_wake("p", condition, compiled, {"condition_id": "w.1", "run_id": "run.a", "status": "cancelled"})
    store.record_wake("p", condition, compiled, {"condition_id": "w.1", "run_id": "run.a", "status": "cancelled"})
    assert store.wake_registration("p", "k.1")["status"] == "cancelled"
    assert store.wake("p", "w.1")["compiled_filter"] == compiled
    assert store.wake("p", "w.2") is None
    assert store.wake_registration("p", "k.2") is None


def test_values_are_written_in_serde_order_whatever_the_input_order(store):
    store.open_pool("p", {})
    store.join_member("p", {"topics": ["t"], "policy_refs": [], "agent_id": "agent.x", "run_id": "run.a"})
    row = store.conn.execute("SELECT payload_json FROM agent_pool_records WHERE seq = 2").fetchone()[0]
    assert row == '{"type":"member_joined","member":{"run_id":"run.a","agent_id":"agent.x","topics":["t"]}}'


def test_a_run_address_refs_are_written_as_the_sdk_types_write_them(store):
    """``to.destination_ref`` and ``to.related_refs`` are the SDK's DestinationRef and
    EntityRef (domain/refs.rs): written in their declaration order, a null option and
    an empty correlation left out; what serde cannot read is refused, naming the field."""
    store.open_pool("p", {})
    to = {
        "related_refs": [
            {
                "redacted_summary": None,
                "privacy": "internal",
                "source": {
                    "privacy": "public",
                    "trust": "sdk_generated",
                    "id": "src.1",
                    "kind": "sdk",
                    "correlation": [],
                },
                "id": "run.b",
                "kind": "run",
            }
        ],
        "destination_ref": {
            "redacted_summary": "to b",
            "correlation": [{"value": "v", "key": "k"}],
            "retention": "durable",
            "privacy": "sensitive",
            "id": "agent.b",
            "kind": "agent",
        },
        "target": {"type": "agent", "agent_id": "agent.b"},
    }
    store.record_message("p", {**_message(1), "to": to}, {"message_id": "msg.1", "status": "accepted"})
    row = store.conn.execute("SELECT payload_json FROM agent_pool_records WHERE seq = 2").fetchone()[0]
    expected = (
        '"to":{"target":{"type":"agent","agent_id":"agent.b"},'
        '"destination_ref":{"kind":"agent","id":"agent.b","privacy":"sensitive","retention":"durable",'
        '"correlation":[{"key":"k","value":"v"}],"redacted_summary":"to b"},'
        '"related_refs":[{"kind":"run","id":"run.b",'
        '"source":{"kind":"sdk","id":"src.1","trust":"sdk_generated","privacy":"public"},"privacy":"internal"}]}'
    )
    assert expected in row
    refused = [
        ({"kind": "agent", "id": "a"}, None, r"message.to.destination_ref: DestinationRef needs field 'privacy'"),
        (
            {"kind": "run", "id": "a", "privacy": "internal", "retention": "durable"},
            None,
            r"message.to.destination_ref.kind: 'run' is not one of agent, ",
        ),
        (
            {"kind": "agent", "id": "", "privacy": "internal", "retention": "durable"},
            None,
            r"message.to.destination_ref.id: identifier is empty",
        ),
        (None, [{"kind": "agent", "id": "a"}], r"message.to.related_refs\[0\]: EntityRef needs field 'privacy'"),
        (
            None,
            [{"kind": "robot", "id": "a", "privacy": "internal"}],
            r"message.to.related_refs\[0\].kind: 'robot' is not one of run, ",
        ),
        (
            None,
            [
                {
                    "kind": "run",
                    "id": "a",
                    "privacy": "internal",
                    "source": {"kind": "sdk", "id": "s", "privacy": "public"},
                }
            ],
            r"message.to.related_refs\[0\].source: SourceRef needs field 'trust'",
        ),
        (
            {"kind": "agent", "id": "a", "privacy": "internal", "retention": "durable", "note": "x"},
            None,
            r"message.to.destination_ref: DestinationRef has no field 'note'",
        ),
    ]
    for destination, related, match in refused:
        address = dict(_message(2)["to"])
        if destination is not None:
            address["destination_ref"] = destination
        if related is not None:
            address["related_refs"] = related
        with pytest.raises(poolscope.InvalidInputError, match=match):
            store.record_message("p", {**_message(2), "to": address}, {"message_id": "msg.2", "status": "accepted"})
    assert len(store.watch("p")) == 2


def test_bad_values_are_typed_errors_and_write_nothing(store):
    store.open_pool("p", {})
    with pytest.raises(poolscope.InvalidInputError, match="needs field 'agent_id'"):
        store.join_member("p", {"run_id": "run.a"})
    # a list field may be left out, not given as None: serde reads a missing Vec as empty, refuses null
    with pytest.raises(poolscope.InvalidInputError, match=r"member.topics: expected a list, got null"):
        store.join_member("p", {**MEMBER, "topics": None})
    with pytest.raises(poolscope.InvalidInputError, match="not one of"):
        store.record_message("p", _message(1), {"message_id": "msg.1", "status": "lost"})
    with pytest.raises(poolscope.InvalidInputError, match="must equal"):
        store.record_message("p", _message(1), {"message_id": "msg.9", "status": "failed"})
    assert len(store.watch("p")) == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda store: store.open_pool("pool\n2", {}), r"pool_id: identifier contains control character at byte 4"),
        (lambda store: store.join_member("p", {**MEMBER, "run_id": ""}), r"member.run_id: identifier is empty"),
        (lambda store: store.join_member("p", {**MEMBER, "topics": ["t\x85"]}), r"member.topics\[0\]: .*byte 1"),
        (
            lambda store: store.record_message(
                "p", {**_message(1), "from": "r" * 513}, {"message_id": "msg.1", "status": "accepted"}
            ),
            r"message.from: identifier length 513 exceeds max 512",
        ),
        (
            lambda store: store.record_message(
                "p", _message(1), {"message_id": "msg.1", "status": "delivered", "delivered_to": ["é" * 257]}
            ),
            r"receipt.delivered_to\[0\]: identifier length 514",
        ),
        (
            lambda store: store.record_message(
                "p",
                {**_message(1), "correlation": {"entries": [{"key": "k", "value": ""}]}},
                {"message_id": "msg.1", "status": "accepted"},
            ),
            r"correlation.entries\[0\].value: identifier is empty",
        ),
        (
            lambda store: store.record_message(
                "p",
                {**_message(1), "to": {**_message(1)["to"], "target": {"type": "agent", "agent_id": "a\x7f"}}},
                {"message_id": "msg.1", "status": "accepted"},
            ),
            r"target.agent_id: identifier contains control character",
        ),
    ],
)
def test_identifiers_the_sdk_refuses_are_typed_errors_and_write_nothing(store, call, match):
    """The SDK's id newtypes (RunId, MessageId, TopicId, ... JournalCursor) refuse an empty id,
    one over 512 UTF-8 bytes and one holding a control character when they are made or read: the
    SDK can never write such a record, so neither does the store."""
    store.open_pool("p", {})
    before = store.watch("p")
    with pytest.raises(poolscope.InvalidInputError, match=match):
        call(store)
    assert store.watch("p") == before
    assert store.conn.execute("SELECT count(*) FROM agent_pool_records").fetchone()[0] == 1
    # at the limit: 512 bytes (256 two-byte characters) is an identifier
    store.join_member("p", {**MEMBER, "run_id": "é" * 256})
    assert [m["run_id"] for m in store.snapshot("p").to_dict()["members"]] == ["é" * 256]


def test_keys_the_sdks_types_cannot_carry_are_refused_not_dropped(store, oracle):
    """The SDK's AgentPoolStoreConfig (and every other type) has fixed fields:
    a key it has none for would be lost on the way to the file."""
    from helpers import load_jsonl

    with pytest.raises(poolscope.InvalidInputError, match="'max_members'") as raised:
        store.open_pool("p", {"max_members": 3})
    assert raised.value.code == "invalid_input" and "AgentPoolStoreConfig" in str(raised.value)
    with pytest.raises(poolscope.InvalidInputError, match=r"config.message_policy: .* 'max_hops'"):
        store.open_pool("p", {"message_policy": {"include_sender_in_pool_broadcast": True, "max_hops": 2}})
    with pytest.raises(poolscope.InvalidInputError, match=r"config.policy_refs\[0\]: .* 'note'"):
        store.open_pool("p", {"policy_refs": [{"kind": "permission", "id": "x", "note": "y"}]})
    assert store.watch("p") == []  # nothing written
    store.open_pool("p", {})
    with pytest.raises(poolscope.InvalidInputError, match="'role'"):
        store.join_member("p", {**MEMBER, "role": "lead"})
    with pytest.raises(poolscope.InvalidInputError, match="'priority'"):
        store.record_message("p", {**_message(1), "priority": 1}, {"message_id": "msg.1", "status": "accepted"})
    # a run target carries its type and that type's id, nothing else (an extra key was silently dropped)
    target = {"type": "run", "run_id": "run.b", "agent_id": "agent.x"}
    with pytest.raises(poolscope.InvalidInputError, match=r"message.to.target: a run target has no field 'agent_id'"):
        store.record_message(
            "p",
            {**_message(1), "to": {**_message(1)["to"], "target": target}},
            {"message_id": "msg.1", "status": "accepted"},
        )
    assert len(store.watch("p")) == 1
    # every config the SDK wrote is accepted as it is, and written back byte for byte
    for n, record in enumerate(
        r for r in load_jsonl(oracle / "records.jsonl") if r["payload"]["type"] == "pool_opened"
    ):
        store.open_pool(f"copy.{n}", record["payload"]["config"])
        row = store.conn.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? AND seq = 1", (f"copy.{n}",)
        ).fetchone()[0]
        assert row == wire.dumps(record["payload"])


def test_next_event_sequence_counts_per_pool(store):
    assert [store.next_event_sequence("p") for _ in range(3)] == [1, 2, 3]
    assert store.next_event_sequence("q") == 1


def _rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT pool_id, seq, typeof(seq), kind FROM agent_pool_records ORDER BY pool_id, rowid"
        ).fetchall()
        rows += conn.execute("SELECT pool_id, seq, typeof(seq), 'event_seq' FROM agent_pool_event_seq").fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("top", [5.5, "zzz", b"\x01", 2**63 - 1, 2**63 - 2])
def test_a_damaged_top_seq_is_refused_before_anything_is_written(tmp_path, top):
    """The SDK's next seq is MAX(seq) + 1: over a REAL, TEXT, BLOB or maximal seq
    that writes a REAL seq, repeats one (UNIQUE fails on every later call) or
    writes one no reader can place.  poolscope refuses, with the row's type."""
    path = tmp_path / "damaged.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        store.open_pool("q", {})
        store.conn.execute(
            "INSERT INTO agent_pool_records VALUES ('p', ?, 'pool_created', '{\"type\":\"pool_created\"}')", (top,)
        )
        before = _rows(path)
        for _ in range(2):  # and again: nothing was left half-done
            with pytest.raises(poolscope.CorruptRecordError, match="top seq is") as raised:
                store.record_pool_created("p")
            assert raised.value.code == "bad_seq" and raised.value.pool_id == "p"
        assert _rows(path) == before
        # other pools of the file are not affected
        assert store.record_pool_created("q") == 2
    shown = {float: "REAL 5.5", str: "TEXT 'zzz'", bytes: "BLOB"}.get(type(top), str(top))
    assert shown in str(raised.value)


def test_a_seq_below_the_top_that_is_not_an_integer_leaves_appends_contiguous(store):
    store.open_pool("p", {})
    store.conn.execute(
        "INSERT INTO agent_pool_records VALUES ('p', 0.5, 'pool_created', '{\"type\":\"pool_created\"}')"
    )
    assert [store.record_pool_created("p") for _ in range(2)] == [2, 3]


@pytest.mark.parametrize("stored", [1.5, "x", 2**63 - 2, 2**63 - 1, -1])
def test_a_damaged_event_seq_is_refused_and_left_as_it_was(store, stored):
    store.conn.execute("INSERT INTO agent_pool_event_seq VALUES ('p', ?)", (stored,))
    for _ in range(2):
        with pytest.raises(poolscope.CorruptRecordError, match="agent_pool_event_seq holds") as raised:
            store.next_event_sequence("p")
        assert raised.value.code == "bad_event_seq"
    assert store.conn.execute("SELECT seq FROM agent_pool_event_seq WHERE pool_id = 'p'").fetchall() == [(stored,)]
    assert store.next_event_sequence("q") == 1  # the next pool's counter works


@pytest.mark.parametrize("pool_id", [None, 1, b"p", "", ["p"], "p\udc80"])
def test_next_event_sequence_takes_only_pool_ids_the_sdk_can_store(store, pool_id):
    with pytest.raises(poolscope.InvalidInputError, match="pool_id"):
        store.next_event_sequence(pool_id)
    assert store.conn.execute("SELECT count(*) FROM agent_pool_event_seq").fetchone()[0] == 0


@pytest.mark.parametrize("key", [["run.a"], {"a": 1}, None, 3])
def test_lookups_take_string_keys(store, key):
    store.open_pool("p", {})
    store.join_member("p", MEMBER)
    for lookup, name in (
        (store.leave_member, "run_id"),
        (store.message_receipt, "idempotency_key"),
        (store.wake_registration, "idempotency_key"),
        (store.wake, "condition_id"),
    ):
        with pytest.raises(poolscope.InvalidInputError, match=f"{name} must be a string"):
            lookup("p", key)
    assert len(store.snapshot("p").members) == 1


def test_text_with_a_lone_surrogate_is_refused_not_half_written(store):
    """A lone surrogate (a file name mis-decoded with surrogateescape) cannot be
    stored as UTF-8: a typed error names the field, and nothing is written."""
    with pytest.raises(poolscope.InvalidInputError, match=r"pool_id: .* lone surrogate at index 1"):
        store.open_pool("p\udc80", {})
    store.open_pool("p", {})
    with pytest.raises(poolscope.InvalidInputError, match=r"member.agent_id: .* lone surrogate"):
        store.join_member("p", {"run_id": "run.a", "agent_id": "agent\ud800"})
    message = _message(1)
    message["content_ref"] = "c\udcff"
    with pytest.raises(poolscope.InvalidInputError, match=r"content_ref: .* lone surrogate"):
        store.record_message("p", message, {"message_id": "msg.1", "status": "accepted"})
    assert [r.kind for r in store.watch("p")] == ["pool_opened"]
    with pytest.raises(poolscope.InvalidInputError, match="lone surrogate"):
        store.watch("p\udc80")
    assert store.conn.execute("SELECT count(DISTINCT pool_id) FROM agent_pool_records").fetchone()[0] == 1


def test_watch_returns_records_after_a_cursor(store):
    store.open_pool("p", {})
    for _ in range(5):
        store.record_pool_created("p")
    assert [r.cursor for r in store.watch("p", 3)] == [4, 5, 6]
    assert store.watch("p", 6) == []


def test_two_stores_on_one_file_see_each_other(tmp_path):
    path = tmp_path / "shared.db"
    one, two = poolscope.PoolStore(path), poolscope.PoolStore(path)
    one.open_pool("p", {})
    assert two.open_pool("p", {}).cursor == 1
    two.join_member("p", MEMBER)
    assert one.leave_member("p", "run.a")[1] == 3
    assert two.snapshot("p").members == []


def _append_many(path: str, worker: int, count: int) -> None:
    store = poolscope.PoolStore(path, timeout=60)
    for n in range(count):
        store.join_member("p", {"run_id": f"run.{worker}.{n}", "agent_id": f"agent.{worker}"})
    store.close()


@pytest.mark.slow
def test_concurrent_appends_from_several_processes_are_contiguous(tmp_path):
    path = str(tmp_path / "concurrent.db")
    poolscope.PoolStore(path).open_pool("p", {})
    workers = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(path, w, 150)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    seqs = [
        row[0]
        for row in sqlite3.connect(path).execute("SELECT seq FROM agent_pool_records WHERE pool_id='p' ORDER BY seq")
    ]
    assert seqs == list(range(1, 4 * 150 + 2))
    snap = poolscope.open(path).pool("p").snapshot()
    assert len(snap.members) == 600


def test_a_compiled_filter_the_sdk_could_not_have_made_is_refused(store):
    """The SDK compiles a wake's filter from its criteria (fingerprint, id,
    indexed fields, payload access, queue); anything else is what doctor
    reports as wake_filter_mismatch, so PoolStore does not write it."""
    store.open_pool("p", {})
    criteria = {"run_ids": {"include": ["run.a"]}}
    condition = {"condition_id": "w.1", "run_id": "run.b", "idempotency_key": "k.1", "filter": criteria}
    registration = {"condition_id": "w.1", "run_id": "run.b", "status": "registered"}
    good = wire.compile_filter(criteria)
    bare = dict(good, criteria={"run_ids": ["run.a"]})  # serde writes {"include": [...]}: the same filter
    assert store.record_wake("p", condition, bare, registration) == 2
    stored = store.wake("p", "w.1")["compiled_filter"]
    assert stored == good and stored["filter_fingerprint"] == wire.filter_fingerprint(stored["criteria"])
    for change, field in (
        ({"filter_fingerprint": "sha256:" + "0" * 64}, "filter_fingerprint"),
        ({"filter_id": "filter.x"}, "filter_id"),
        ({"indexed_fields": []}, "indexed_fields"),
        ({"payload_access": "payload_refs"}, "payload_access"),  # a mode, not the one compiled
        # the fingerprint of the bare-list text is not the fingerprint of what is written
        (
            {"criteria": {"run_ids": ["run.a"]}, "filter_fingerprint": wire.filter_fingerprint({"run_ids": ["run.a"]})},
            "filter_fingerprint",
        ),
    ):
        with pytest.raises(poolscope.InvalidInputError, match=f"{field} is .* compiled: "):
            store.record_wake("p", condition, dict(good, **change), registration)
    assert len(store.watch("p")) == 2
    with poolscope.open(store.path, cache=False) as db:
        assert [a.code for a in db.check() if a.severity == "error"] == []


def test_editing_what_the_store_hands_out_changes_nothing_it_writes(store):
    """Snapshots and the member leave_member returns are the caller's copies: the
    rows written after they were edited are the SDK's for the same calls."""
    store.open_pool("p", {})
    store.join_member("p", {"run_id": "r1", "agent_id": "a1", "topics": ["t"]})
    for snap in (store.snapshot("p"), store.open_pool("p", {})):
        snap.members[0]["topics"].append("x")
        snap.members[0]["agent_id"] = "edited"
        snap.config["wake_policy"]["envelope_only"] = False
        snap.config["message_policy"]["include_sender_in_pool_broadcast"] = True
    member, seq = store.leave_member("p", "r1")
    assert member == {"run_id": "r1", "agent_id": "a1", "topics": ["t"]}
    member["topics"].clear()
    store.join_member("p", {"run_id": "r1", "agent_id": "a1", "topics": ["t"]})
    _, again = store.leave_member("p", "r1")
    assert store.open_pool("p", {}).cursor == again  # the stored config, not the edited one: no conflict
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute("SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = 'p'").fetchall()
    finally:
        conn.close()
    left = '{"type":"member_left","member":{"run_id":"r1","agent_id":"a1","topics":["t"]}}'
    assert (
        rows[0][1]
        == '{"type":"pool_opened","config":{"message_policy":{"include_sender_in_pool_broadcast":false},"wake_policy":{"envelope_only":true}}}'
    )
    assert [(s, text) for s, text in rows if s in (seq, again)] == [(seq, left), (again, left)]


def test_a_snapshot_made_in_a_batch_rolled_back_since_is_not_read_from_the_records_written_after(store):
    """The rolled-back batch's seqs are written again with other messages: the held
    snapshot keeps its ids and does not pass the new records off as its own."""
    store.open_pool("p", {})
    store.join_member("p", MEMBER)
    receipt = {"status": "accepted"}
    with pytest.raises(ValueError), store.batch():
        for n in range(2):
            store.record_message("p", _message(n), {**receipt, "message_id": f"msg.{n}"})
        held = store.snapshot("p")
        raise ValueError("the import failed")
    for n in range(10, 12):
        store.record_message("p", _message(n), {**receipt, "message_id": f"msg.{n}"})
    assert held.messages.ids == ["msg.0", "msg.1"]
    assert held.messages.seqs == [3, 4]
    with pytest.raises(poolscope.DatabaseChangedError, match="not the run_message this store folded") as info:
        held.to_json()
    assert info.value.seq == 3
    assert store.snapshot("p").messages.ids == ["msg.10", "msg.11"]


@pytest.mark.parametrize(
    ("part", "change", "match"),
    [
        ("filter", {"queue": {"capacity": 0}}, r"filter.queue.capacity: expected an integer in 1..2\^64-1"),
        ("filter", {"queue": {"terminal_reserve": 0}}, r"filter.queue.terminal_reserve: .* NonZeroUsize"),
        ("filter", {"queue": {"overflow": "drop_all"}}, r"filter.queue.overflow: 'drop_all' is not one of"),
        ("filter", {"payload_access": "everything"}, r"filter.payload_access: 'everything' is not one of"),
        ("compiled", {"payload_access": "all"}, r"compiled_filter.payload_access: 'all' is not one of"),
        ("compiled", {"indexed_fields": ["session"]}, r"indexed_fields\[0\]: 'session' is not one of"),
        ("member", {"policy_refs": [{"kind": "superuser", "id": "p"}]}, r"policy_refs\[0\].kind: 'superuser'"),
    ],
)
def test_values_the_sdks_types_refuse_are_not_written(store, part, change, match):
    """NonZeroUsize queue counts and the SDK's closed enums (PolicyKind, PayloadAccessMode,
    SubscriberOverflowPolicy, EventIndexField): serde refuses 0 and any other spelling, so the
    SDK could not replay a pool holding one; the store refuses it and writes nothing."""
    store.open_pool("p", {})
    store.join_member("p", MEMBER)
    before = store.watch("p")
    condition = {"condition_id": "w.1", "run_id": "run.a", "idempotency_key": "k.1", "filter": {}}
    compiled = wire.compile_filter({})
    registration = {"condition_id": "w.1", "run_id": "run.a", "status": "registered"}
    with pytest.raises(poolscope.InvalidInputError, match=match):
        if part == "filter":
            store.record_wake("p", dict(condition, filter=change), compiled, registration)
        elif part == "compiled":
            store.record_wake("p", condition, dict(compiled, **change), registration)
        else:
            store.join_member("p", dict(MEMBER, **change))
    assert store.watch("p") == before
    # each spelling the SDK declares is written
    for kind in wire.POLICY_KINDS:
        store.join_member("p", dict(MEMBER, policy_refs=[{"kind": kind, "id": "p"}]))
    for mode in wire.PAYLOAD_ACCESS_MODES:
        for overflow in wire.OVERFLOW_POLICIES:
            event_filter = {
                "payload_access": mode,
                "queue": {"capacity": 1, "terminal_reserve": 1, "overflow": overflow},
            }
            store.record_wake(
                "p", dict(condition, filter=event_filter), wire.compile_filter(event_filter), registration
            )
    assert len(store.watch("p")) == len(before) + len(wire.POLICY_KINDS) + 20
