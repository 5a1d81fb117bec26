"""history_of, explain, flows, latencies and what-if replay, against facts computed
independently from the records (records.jsonl of the SDK histories, the raw rows
of generated databases)."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import load_jsonl

import poolscope
from poolscope import wire
from poolscope.errors import InvalidInputError, UnknownKeyError
from poolscope.why import recent_failures


# ------------------------------------------------------------------ facts
def _records(source: Path) -> dict[str, list[tuple[int, dict]]]:
    """pool_id -> [(seq, payload)] from records.jsonl (an SDK history) or from the raw rows."""
    out: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    if source.is_dir():
        for record in load_jsonl(source / "records.jsonl"):
            out[record["pool_id"]].append((record["cursor"]["sequence"], record["payload"]))
        return out
    conn = sqlite3.connect(f"file:{source}?immutable=1", uri=True)
    try:
        for pool_id, seq, text in conn.execute(
            "SELECT pool_id, seq, payload_json FROM agent_pool_records ORDER BY pool_id, seq"
        ):
            out[pool_id].append((seq, json.loads(text)))
    finally:
        conn.close()
    return out


def _values(column) -> list:
    """A column as a list, missing values as None."""
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in column.tolist()]


class Facts:
    """Everything the tests need about one pool, from its payloads alone."""

    def __init__(self, records: list[tuple[int, dict]]) -> None:
        self.records = records
        self.messages: dict[str, list[tuple[int, dict, dict]]] = defaultdict(list)  # id -> [(seq, message, receipt)]
        self.wakes: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        self.membership: dict[str, list[tuple[int, str, dict]]] = defaultdict(list)
        self.idem: dict[str, list[int]] = defaultdict(list)
        self.replies: dict[str, list[int]] = defaultdict(list)
        self.run_mentions: dict[str, set[int]] = defaultdict(set)
        for seq, payload in records:
            kind = payload["type"]
            if kind == "run_message":
                message, receipt = payload["stored"]["message"], payload["stored"]["receipt"]
                self.messages[message["message_id"]].append((seq, message, receipt))
                self.idem[message["idempotency_key"]].append(seq)
                if message.get("reply_to") is not None:
                    self.replies[message["reply_to"]].append(seq)
                self.run_mentions[message["from"]].add(seq)
                target = message["to"]["target"]
                if target["type"] == "run":
                    self.run_mentions[target["run_id"]].add(seq)
                for run in receipt.get("delivered_to", []):
                    self.run_mentions[run].add(seq)
            elif kind == "wake":
                stored = payload["stored"]
                self.wakes[stored["condition"]["condition_id"]].append((seq, stored))
                self.idem[stored["condition"]["idempotency_key"]].append(seq)
                self.run_mentions[stored["condition"]["run_id"]].add(seq)
            elif kind in ("member_joined", "member_left"):
                member = payload["member"]
                self.membership[member["run_id"]].append((seq, kind, member))
                self.run_mentions[member["run_id"]].add(seq)

    def first_reached(self, chain: list[tuple[int, str]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for seq, status in chain:
            out.setdefault(status, seq)
        return out


def _has_role(frame: pd.DataFrame, role: str) -> pd.Series:
    """Rows of a history whose role (roles joined with '+') includes ``role``."""
    return frame["role"].map(lambda roles: role in str(roles).split("+")).astype(bool)


def _run_message(message_id: str, sender: str, to: str, reply_to: str | None = None) -> dict:
    message = {
        "message_id": message_id,
        "from": sender,
        "to": {
            "target": {"type": "run", "run_id": to},
            "destination_ref": {"kind": "agent", "id": to, "privacy": "content_refs_only", "retention": "host_policy"},
        },
        "content_ref": f"content.{message_id}",
        "idempotency_key": f"idem.{message_id}",
    }
    return message if reply_to is None else {**message, "reply_to": reply_to}


@pytest.fixture(params=["oracle", "generated"])
def source(request, oracle, small_db):
    return (oracle, oracle / "pool.db") if request.param == "oracle" else (small_db, small_db)


# ---------------------------------------------------------------- history_of
@pytest.mark.slow
def test_history_of_lists_exactly_the_records_that_mention_the_key(source):
    facts_from, path = source
    db = poolscope.open(path)
    for pool_id, records in _records(facts_from).items():
        facts = Facts(records)
        pool = db.pool(pool_id)
        messages = pool.messages_df().set_index("message_id")
        wakes = pool.wakes_df().set_index("condition_id")
        for message_id, chain in facts.messages.items():
            frame = pool.history_of(message_id)
            expected = sorted({s for s, _, _ in chain} | set(facts.replies.get(message_id, [])))
            assert frame["cursor"].tolist() == expected, message_id
            own = frame[_has_role(frame, "message")]
            statuses = [r["status"] for _, _, r in chain]
            assert own["status_after"].tolist() == statuses
            assert _values(own["status_before"]) == [None, *statuses[:-1]]
            assert own["status_after"].iloc[-1] == messages.loc[message_id, "status"]
            assert own["recipients"].tolist() == [list(r.get("delivered_to", [])) for _, _, r in chain]
            assert (frame[_has_role(frame, "reply")]["reply_to"] == message_id).all()
            assert frame.key_type == "message"
        for condition_id, chain in facts.wakes.items():
            frame = pool.history_of(condition_id)
            assert frame["cursor"].tolist() == [s for s, _ in chain]
            statuses = [w["registration"]["status"] for _, w in chain]
            assert frame["status_after"].tolist() == statuses
            assert _values(frame["status_before"]) == [None, *statuses[:-1]]
            assert statuses[-1] == wakes.loc[condition_id, "status"]
        for run_id, seqs in facts.run_mentions.items():
            if run_id in facts.messages or run_id in facts.wakes:
                continue
            frame = pool.history_of(run_id, key_type="run")
            assert frame["cursor"].tolist() == sorted(seqs), run_id
            joins = frame[frame.kind.isin(["member_joined", "member_left"])]
            expected_after = [
                "member" if k == "member_joined" else "not a member" for _, k, _ in facts.membership[run_id]
            ]
            assert joins["status_after"].tolist() == expected_after
        for key, seqs in list(facts.idem.items())[:50]:
            assert pool.history_of(key, key_type="idempotency_key")["cursor"].tolist() == seqs


@pytest.mark.parametrize("colliding", [False, True], ids=["real hashes", "every hash the same"])
def test_records_grouped_by_text_are_exactly_those_holding_it(source, monkeypatch, colliding):
    """Idempotency keys and replied-to ids, looked up by hash: exactly the
    records holding the value, ascending, also when every hash collides."""
    from poolscope import relations as relations_module

    if colliding:
        monkeypatch.setattr(relations_module, "hash", lambda value: 7, raising=False)
    facts_from, path = source
    with poolscope.open(path, cache=False) as db:
        for pool_id, records in _records(facts_from).items():
            index = db.pool(pool_id).index
            rel = relations_module.Relations(index)
            seq = index.arrays()["seq"]
            expected: dict[str, dict] = {"idem": defaultdict(list), "reply_to": defaultdict(list)}
            for cursor, payload in records:
                stored = payload.get("stored", {})
                if payload["type"] == "run_message":
                    message = stored["message"]
                    expected["idem"][message["idempotency_key"]].append(cursor)
                    if message.get("reply_to") is not None:
                        expected["reply_to"][message["reply_to"]].append(cursor)
                elif payload["type"] == "wake":
                    expected["idem"][stored["condition"]["idempotency_key"]].append(cursor)
            for field, groups in expected.items():
                found = rel.by_text(field)
                for value, cursors in groups.items():
                    assert seq[found.get(value)].tolist() == cursors, (field, value)
                assert found.get("no such value") is None and found.get(None) is None and found.get(5) is None


def test_history_of_stops_at_upto_and_matches_the_frames_there(oracle):
    db = poolscope.open(oracle / "pool.db")
    rng = random.Random(3)
    for pool_id in db.pool_ids:
        pool = db.pool(pool_id)
        for _ in range(10):
            upto = rng.randint(1, pool.head)
            messages = pool.messages_df(upto=upto)
            for row in messages.sample(min(10, len(messages)), random_state=1).itertuples():
                frame = pool.history_of(row.message_id, upto=upto)
                assert frame["cursor"].max() <= upto
                own = frame[_has_role(frame, "message")]
                assert own["status_after"].iloc[-1] == row.status
                assert own["cursor"].iloc[-1] == row.last_seq
                assert len(own) == row.records


def test_history_of_a_message_replied_to_before_its_first_record_is_the_whole_history_cut_at_upto(tmp_path):
    """Replies recorded before the message they reply to are its history at every cursor (history_of and
    explain); a message replying to itself is one row per record, role 'message+reply'."""
    path = tmp_path / "replies.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})  # 1
        store.join_member("p", {"run_id": "r1", "agent_id": "a1"})  # 2
        store.join_member("p", {"run_id": "r2", "agent_id": "a2"})  # 3
        for seq, (message_id, sender, to, reply_to, status) in enumerate(
            [
                ("m.early", "r2", "r1", "m.orig", "delivered"),  # 4: replies to m.orig before it exists
                ("m.x", "r2", "r1", None, "delivered"),  # 5
                ("m.orig", "r1", "r2", None, "accepted"),  # 6
                ("m.self", "r1", "r1", "m.self", "accepted"),  # 7: replies to itself
                ("m.late", "r2", "r1", "m.orig", "delivered"),  # 8
                ("m.orig", "r1", "r2", None, "delivered"),  # 9
                ("m.self", "r1", "r1", "m.self", "responded"),  # 10
            ],
            start=4,
        ):
            receipt = {"message_id": message_id, "status": status, "delivered_to": [to]}
            assert store.record_message("p", _run_message(message_id, sender, to, reply_to), receipt) == seq
    pool = poolscope.open(path).pool("p")
    expected = {  # cursor -> role, by hand
        "m.orig": {4: "reply", 6: "message", 8: "reply", 9: "message"},
        "m.self": {7: "message+reply", 10: "message+reply"},
    }
    for key, rows in expected.items():
        for upto in range(1, pool.head + 1):
            shown = {c: r for c, r in rows.items() if c <= upto}
            if not shown:
                with pytest.raises(UnknownKeyError) as caught:
                    pool.history_of(key, upto=upto)
                assert str(caught.value).endswith(f"its first record is at seq {min(rows)}")
                continue
            frame = pool.history_of(key, upto=upto)
            assert dict(zip(frame["cursor"].tolist(), frame["role"].tolist())) == shown, (key, upto)
            assert frame.key_type == "message"
            explanation = pool.explain(key, at=upto)
            replies = {"m.orig": [("m.early", 4), ("m.late", 8)], "m.self": [("m.self", 7)]}[key]
            assert explanation.facts["replies"] == [(i, c) for i, c in replies if c <= upto]
            own = [c for c, r in shown.items() if "message" in r.split("+")]
            assert [c for _, c in explanation.facts["statuses"]] == own
    self_rows = pool.history_of("m.self")
    assert _values(self_rows["status_before"]) == [None, "accepted"]
    assert self_rows["status_after"].tolist() == ["accepted", "responded"]
    assert "has no record of its own at or before 5" in pool.explain("m.orig", at=5).text


def test_unknown_keys_are_typed_errors_with_suggestions(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    with pytest.raises(UnknownKeyError) as caught:
        pool.history_of("msg.audit.1x")
    assert "msg.audit.1" in caught.value.suggestions
    assert "did you mean" in str(caught.value)
    assert isinstance(caught.value, KeyError)
    with pytest.raises(UnknownKeyError):
        pool.explain("nothing-like-this-at-all")
    with pytest.raises(UnknownKeyError) as caught:  # a message id is not a run: says what it is
        pool.history_of("msg.audit.1", key_type="run")
    assert str(caught.value).endswith("it is a message (key_type='message')")
    assert caught.value.suggestions == []  # (it suggested the very key it was given)
    with pytest.raises(UnknownKeyError) as caught:  # not yet at cursor 3: says when, suggests nothing
        pool.history_of("msg.audit.1", upto=3)
    first = int(pool.history_of("msg.audit.1")["cursor"].iloc[0])
    assert first > 3 and str(caught.value).endswith(f"at or before cursor 3; its first record is at seq {first}")
    assert caught.value.suggestions == []
    with pytest.raises(InvalidInputError):
        pool.history_of(17)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        pool.history_of("msg.audit.1", key_type="topic")
    # upto as the frames take it: past the head is the head; not a cursor is a CursorError
    whole = pool.history_of("msg.audit.1")
    for past in (pool.head + 1, 2**80):
        pd.testing.assert_frame_equal(pool.history_of("msg.audit.1", upto=past), whole)
        pd.testing.assert_frame_equal(recent_failures(pool, upto=past), recent_failures(pool))
    for bad in (-1, "3", 2.5, True):
        with pytest.raises(poolscope.CursorError):
            pool.history_of("msg.audit.1", upto=bad)
        with pytest.raises(poolscope.CursorError):
            recent_failures(pool, upto=bad)
    with pytest.raises(poolscope.CursorError):  # explain's `at` is a cursor of the pool, as snapshot's
        pool.explain("msg.audit.1", at=pool.head + 1)


def test_history_renders_html(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    frame = pool.history_of("msg.audit.1")
    page = frame._repr_html_()
    assert "history of message msg.audit.1" in page and "→" in page
    assert isinstance(frame.head(2), type(frame))


# ------------------------------------------------------------------ explain
def test_explain_states_the_facts_of_every_message(oracle):
    db = poolscope.open(oracle / "pool.db")
    for pool_id, records in _records(oracle).items():
        facts = Facts(records)
        pool = db.pool(pool_id)
        every = {seq for seq, _ in records}
        for message_id, chain in facts.messages.items():
            explanation = pool.explain(message_id)
            got = explanation.facts
            assert got["statuses"] == [(r["status"], s) for s, _, r in chain]
            first_message = chain[0][1]
            assert got["sender"] == first_message["from"]
            target = first_message["to"]["target"]
            assert got["target_type"] == target["type"]
            assert got["recipients"] == chain[-1][2].get("delivered_to", [])
            assert [rid for rid, _ in got["replies"]] == list(
                dict.fromkeys(
                    m["message_id"]
                    for s, p in records
                    if p["type"] == "run_message"
                    for m in [p["stored"]["message"]]
                    if m.get("reply_to") == message_id
                )
            )
            # every status and its cursor is said
            for _status, seq in got["statuses"][1:]:
                assert f"at {seq}" in explanation.text
            assert str(chain[0][0]) in explanation.sentences[0].text
            # the cited cursors are records of this pool, at or before the explanation's cursor
            assert set(explanation.cursors) <= every
            if target["type"] == "run":
                joined_before = [s for s, k, _ in facts.membership.get(target["run_id"], []) if s <= chain[0][0]]
                was_member = (
                    bool(joined_before)
                    and facts.membership[target["run_id"]][len(joined_before) - 1][1] == "member_joined"
                )
                assert (
                    "was not a member" in explanation.text and f"target {target['run_id']}" in explanation.text
                ) == (not was_member)


def test_explain_wakes_and_runs(oracle):
    db = poolscope.open(oracle / "pool.db")
    for pool_id, records in _records(oracle).items():
        facts = Facts(records)
        pool = db.pool(pool_id)
        for condition_id, chain in facts.wakes.items():
            explanation = pool.explain(condition_id)
            assert explanation.facts["statuses"] == [(w["registration"]["status"], s) for s, w in chain]
            assert explanation.facts["run_id"] == chain[0][1]["condition"]["run_id"]
            assert explanation.sentences[0].cursors == (chain[0][0],)
        final = {mid: chain[-1] for mid, chain in facts.messages.items()}
        for run_id, changes in facts.membership.items():
            explanation = pool.explain(run_id)
            sent = Counter(r["status"] for _, m, r in final.values() if m["from"] == run_id)
            received = Counter(r["status"] for _, _, r in final.values() if run_id in r.get("delivered_to", []))
            assert explanation.facts["sent"] == dict(sent)
            assert explanation.facts["received"] == dict(received)
            assert explanation.facts["membership"] == [
                ("joined" if k == "member_joined" else "left", s) for s, k, _ in changes
            ]
            assert explanation.facts["member"] == (changes[-1][1] == "member_joined")


def test_explain_wake_names_the_join_that_started_the_membership(tmp_path):
    """The waiting run 'joined at' the start of its membership (members_df's joined_at), not at a
    later join that only updated it; that update is named beside it."""
    path = tmp_path / "joins.db"

    def wake(condition_id: str) -> int:
        condition = {"condition_id": condition_id, "run_id": "r1", "idempotency_key": f"idem.{condition_id}"}
        condition["filter"] = {"families": {"include": ["agent_pool"]}}
        registration = {"condition_id": condition_id, "run_id": "r1", "status": "registered"}
        return store.record_wake("p", condition, wire.compile_filter(condition["filter"]), registration)

    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        assert store.join_member("p", {"run_id": "r1", "agent_id": "a"}) == 2
        assert store.join_member("p", {"run_id": "r1", "agent_id": "a", "topics": ["t"]}) == 3  # an update
        assert wake("w1") == 4
        assert store.leave_member("p", "r1")[1] == 5
        assert store.join_member("p", {"run_id": "r1", "agent_id": "a"}) == 6  # a new membership
        assert wake("w2") == 7
    pool = poolscope.open(path).pool("p")
    for condition_id, cursor, said in (("w1", 4, "(joined at 2, updated at 3)"), ("w2", 7, "(joined at 6)")):
        member = pool.members_df(upto=cursor).iloc[-1]  # the interval that holds the cursor
        assert (member.joined_at, member.updated_at) == ((2, 3) if cursor == 4 else (6, 6))
        for at, left in ((cursor, ""), (pool.head, " and left at 5" if cursor == 4 else "")):
            explanation = pool.explain(condition_id, at=at)
            sentence = next(s for s in explanation.sentences if "was a member when it was registered" in s.text)
            assert (
                sentence.text
                == f"r1 was a member when it was registered {said}{left}{', while it was pending' if left else ''}."
            )
            cited = (*dict.fromkeys((member.joined_at, member.updated_at)), *((5,) if left else ()))
            assert sentence.cursors == cited
    # the run's own account: an update is no second join; a join after a leave is
    said = pool.explain("r1").sentences[0].text
    assert said.startswith("r1 joined at 2 as a, updated at 3, left at 5 and joined again at 6; at 7 it was a member.")


def test_explain_at_a_past_cursor_uses_only_the_records_up_to_it(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    full = pool.explain("msg.audit.1")
    early = pool.explain("msg.audit.1", at=10)
    assert early.at == 10 and max(early.cursors) <= 10
    assert [s for s, _ in early.facts["statuses"]] == ["accepted", "delivered"]
    assert len(full.facts["statuses"]) > 2
    assert "msg.audit.1" in full._repr_html_()
    by_idem = pool.explain("idem.audit.msg.7")
    assert by_idem.key_type == "idempotency_key" and "msg.audit.7" in by_idem.sentences[0].text


# -------------------------------------------------------------------- flows
def test_flows_count_every_message_recipient_pair(source):
    facts_from, path = source
    db = poolscope.open(path)
    for pool_id, records in _records(facts_from).items():
        facts = Facts(records)
        pool = db.pool(pool_id)
        flows = pool.flows_df()
        expected: Counter = Counter()
        for chain in facts.messages.values():
            _, message, receipt = chain[-1]
            recipients = receipt.get("delivered_to", [])
            for run in recipients:
                expected[(message["from"], run, receipt["status"])] += 1
            if not recipients:
                expected[(message["from"], None, receipt["status"])] += 1
        got = Counter()
        for row in flows.itertuples():
            got[(row.sender, None if pd.isna(row.recipient) else row.recipient, row.status)] += row.messages
        assert got == expected
        pairs = sum(len(chain[-1][2].get("delivered_to", [])) for chain in facts.messages.values())
        assert flows.dropna(subset=["recipient"]).messages.sum() == pairs
        by_agent = pool.flows_df(by="agent")
        assert by_agent.messages.sum() == flows.messages.sum()


def test_flows_by_agent_and_upto(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.review.s1")
    agent_of = {}
    for row in pool.members_df().itertuples():
        agent_of.setdefault(row.run_id, row.agent_id)
    runs = pool.flows_df()
    agents = pool.flows_df(by="agent")
    mapped = runs.assign(
        sender=runs.sender.map(agent_of),
        recipient=runs.recipient.map(lambda r: agent_of.get(r) if isinstance(r, str) else r),
    )
    left = mapped.groupby(["sender", "recipient", "status"], observed=True, dropna=False).messages.sum()
    right = agents.groupby(["sender", "recipient", "status"], observed=True, dropna=False).messages.sum()
    assert left.sort_index().equals(right.sort_index())
    early = pool.flows_df(upto=100)
    assert early.messages.sum() <= runs.messages.sum()
    with pytest.raises(InvalidInputError):
        pool.flows_df(by="topic")


# ---------------------------------------------------------------- latencies
def test_latencies_are_differences_of_the_first_cursors_of_each_status(source):
    facts_from, path = source
    db = poolscope.open(path)
    for pool_id, records in _records(facts_from).items():
        facts = Facts(records)
        pool = db.pool(pool_id)
        latency = pool.latency_df()
        expected = set()
        for kind, chains in (
            ("message", {k: [(s, r["status"]) for s, _, r in v] for k, v in facts.messages.items()}),
            ("wake", {k: [(s, w["registration"]["status"]) for s, w in v] for k, v in facts.wakes.items()}),
        ):
            for key, chain in chains.items():
                reached = sorted((seq, status) for status, seq in facts.first_reached(chain).items())
                for (a, sa), (b, sb) in zip(reached, reached[1:]):
                    expected.add((kind, key, sa, sb, a, b, b - a))
        got = {
            (r.kind, r.id, r.from_status, r.to_status, r.from_cursor, r.to_cursor, r.cursors)
            for r in latency.itertuples()
        }
        assert got == expected
        assert len(latency) == len(expected)
        # and against the frame's *_at columns
        messages = pool.messages_df().set_index("message_id")
        for r in latency[latency.kind == "message"].head(50).itertuples():
            row = messages.loc[r.id]
            assert row[f"{r.to_status}_at"] - row[f"{r.from_status}_at"] == r.cursors


# ------------------------------------------------------------------ what-if
def _physical_copy(path: Path, tmp_path: Path, pool_id: str, seqs: list[int], name: str) -> Path:
    target = tmp_path / name
    source = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    copy = sqlite3.connect(target)
    source.backup(copy)
    source.close()
    copy.executemany("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", [(pool_id, s) for s in seqs])
    copy.commit()
    copy.close()
    return target


def _snapshot_or_error(pool, k):
    try:
        return pool.snapshot(k).to_json()
    except poolscope.PoolscopeError as error:
        return type(error).__name__


def _removals(pool, rng):
    members = pool.members_df()
    runs = members.run_id.astype(str).unique().tolist()
    agents = members.agent_id.astype(str).unique().tolist()
    sample = rng.sample(range(1, pool.head + 1), min(15, pool.head))
    return [
        {"runs": [runs[0]]},
        {"runs": rng.sample(runs, min(3, len(runs)))},
        {"agents": [agents[-1]]},
        {"records": sample},
        {"runs": [runs[-1]], "records": sample[:5]},
    ]


@pytest.mark.slow
def test_a_what_if_snapshot_equals_that_of_a_physically_filtered_copy_at_every_cursor(source, tmp_path):
    _, path = source
    db = poolscope.open(path)
    rng = random.Random(13)
    for pool_id in db.pool_ids:
        pool = db.pool(pool_id)
        for i, removal in enumerate(_removals(pool, rng)):
            alt = pool.without(**removal)
            copy = _physical_copy(path, tmp_path, pool_id, alt.removed.tolist(), f"{pool_id}-{i}.db")
            real = poolscope.open(copy).pool(pool_id)
            # cursors keep the log's values: the what-if's head is the log's, whatever was removed
            assert alt.head == pool.head and len(alt) == len(real)
            for k in range(0, pool.head + 1):
                # past the copy's last record (the log's last records removed): the copy's whole log
                expected = _snapshot_or_error(real, min(k, real.head))
                assert _snapshot_or_error(alt, k) == expected, (pool_id, removal, k)
            with pytest.raises(poolscope.CursorError):
                alt.snapshot(pool.head + 1)
            assert alt.messages_df().equals(real.messages_df())
            assert alt.members_df().equals(real.members_df())
            assert [r.cursor for r in alt.records()] == [r.cursor for r in real.records()]


def test_a_what_if_without_the_logs_last_records_keeps_the_logs_head(tmp_path):
    """Removing the log's last records (a run that joined last, the last seqs) leaves the
    log's later cursors to the what-if: its head is the pool's, and a snapshot there is the
    copy's without those rows (its cursor the last kept record's), as at a removed seq in the
    middle.  The what-if's head was the last kept seq: ``alt.snapshot(pool.head)`` and
    ``alt.diff(0, pool.head)`` raised CursorError."""
    path = tmp_path / "tail.db"
    store = poolscope.PoolStore(path)
    store.open_pool("pool.a", {})
    store.record_pool_created("pool.a")
    for run in ("run.1", "run.2", "run.3"):
        store.join_member("pool.a", {"run_id": run, "agent_id": "agent.x"})
    store.close()
    with poolscope.open(path, cache=False) as db:
        pool = db.pool("pool.a")
        assert pool.head == 5
        for removal, removed in (({"records": [4, 5]}, [4, 5]), ({"runs": ["run.3"]}, [5])):
            alt = pool.without(**removal)
            assert alt.head == pool.head and alt.removed.tolist() == removed
            copy = _physical_copy(path, tmp_path, "pool.a", removed, f"tail-{len(removed)}.db")
            with poolscope.open(copy, cache=False) as real_db:
                real = real_db.pool("pool.a")
                assert real.head == 5 - len(removed)
                for k in range(1, pool.head + 1):
                    assert alt.snapshot(k).to_json() == real.snapshot(min(k, real.head)).to_json()
                assert alt.snapshot().cursor == real.head
            changed = alt.diff(0, pool.head)
            assert [m["run_id"] for m in changed.joined] == ["run.1", "run.2", "run.3"][: 3 - len(removed)]
            assert len(alt.records_df()) == 5 - len(removed)


def test_without_removes_what_it_says(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    facts = Facts(_records(oracle)["pool.audit.s1"])
    run = "run.audit.delta"
    alt = pool.without(runs=run)
    expected = sorted(
        {s for s, _, _ in facts.membership[run]}
        | {s for chain in facts.messages.values() for s, m, _ in chain if m["from"] == run}
        | {s for chain in facts.wakes.values() for s, w in chain if w["condition"]["run_id"] == run}
    )
    assert alt.removed.tolist() == expected
    assert alt.runs == (run,) and alt.removed_runs == (run,)
    assert run not in alt.snapshot().member_ids
    # orphans: kept messages whose latest receipt still delivers to the removed run
    delivered = {
        mid
        for mid, chain in facts.messages.items()
        if chain[0][1]["from"] != run and run in chain[-1][2].get("delivered_to", [])
    }
    orphans = alt.orphans
    assert set(orphans[orphans.reason == "delivered to removed run"].id) == delivered
    assert "orphans" in alt._repr_html_() or "refer to what was removed" in alt._repr_html_()
    # cursors keep their values, and a what-if answers every question a history does
    assert alt.head == pool.head
    assert alt.history_of("msg.audit.1")["cursor"].tolist()[:2] == [7, 8]
    assert alt.explain(run).facts["sent"] == {}
    by_agent = pool.without(agents="agent.audit.worker")
    workers = set(pool.members_df().query("agent_id == 'agent.audit.worker'").run_id.astype(str))
    assert set(by_agent.removed_runs) == workers
    with pytest.raises(UnknownKeyError):
        pool.without(runs="run.audit.nobody")
    with pytest.raises(UnknownKeyError):
        pool.without(agents="agent.nobody")
    with pytest.raises(InvalidInputError):
        pool.without(records=[10_000])


def test_orphans_flag_status_changes_whose_earlier_records_were_removed(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    alt = pool.without(records=[8, 3])  # msg.audit.1's delivery; run.audit.alpha's first join
    orphans = alt.orphans
    follows = orphans[orphans.reason == "follows removed record"]
    assert (26, "msg.audit.1", "8") in set(zip(follows.cursor, follows.id, follows.removed))
    # run.audit.alpha's later join replaces the removed one; it leaves at 242 after re-joining at 204: not an orphan
    assert "left without its join" not in set(orphans.reason)
    alone = pool.without(records=[204])
    left = alone.orphans[alone.orphans.reason == "left without its join"]
    assert left.cursor.tolist() == [242]


@pytest.mark.parametrize("refreshed_by", ["the what-if", "the database"])
def test_a_what_if_refreshes_with_its_base_whoever_refreshed_it(sample_copy, refreshed_by):
    db = poolscope.open(sample_copy, cache=False)
    pool = db.pool("pool.alpha")
    run = pool.members_df().run_id.astype(str).iloc[0]
    alt = pool.without(runs=run)
    before = len(alt)
    with poolscope.PoolStore(sample_copy) as store:
        store.join_member("pool.alpha", {"run_id": "run.extra", "agent_id": "agent.extra"})
        store.join_member("pool.alpha", {"run_id": "run.more", "agent_id": "agent.extra"})
    if refreshed_by == "the database":  # the base is refreshed first, not by the what-if
        assert db.refresh() == {"pool.alpha": 2}
    assert alt.refresh() == 2
    fresh = db.pool("pool.alpha").without(runs=run)
    assert len(alt) == len(fresh) == before + 2 and alt.head == fresh.head == pool.head
    assert "run.extra" in alt.snapshot().member_ids
    assert alt.snapshot().to_json() == fresh.snapshot().to_json()
    assert alt.refresh() == 0
    db.close()


def test_a_what_if_s_records_are_those_it_folded_whatever_the_base_read_since(tmp_path):
    """records() is the what-if's own fold (records_df) also once the base was refreshed past it, and
    refresh() counts the kept records added after the head it was folded from."""
    path = tmp_path / "whatif.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})  # 1
        store.join_member("p", {"run_id": "r1", "agent_id": "a1"})  # 2
        store.join_member("p", {"run_id": "r2", "agent_id": "a2"})  # 3
        store.record_message("p", _run_message("m.r9", "r9", "r1"), {"message_id": "m.r9", "status": "failed"})  # 4
    db = poolscope.open(path, cache=False)
    by_run, by_agent = db.pool("p").without(runs=["r2"]), db.pool("p").without(agents=["a2"])
    kept = {by_run: [1, 2, 4], by_agent: [1, 2, 4]}
    with poolscope.PoolStore(path) as store:
        store.record_message("p", _run_message("m.r2", "r2", "r1"), {"message_id": "m.r2", "status": "failed"})  # 5
        store.leave_member("p", "r2")  # 6
        store.join_member("p", {"run_id": "r9", "agent_id": "a2"})  # 7: r9 is a run of a2 now, 4 leaves by_agent
        store.record_message("p", _run_message("m.r1", "r1", "r1"), {"message_id": "m.r1", "status": "failed"})  # 8
    assert db.refresh() == {"p": 4}
    for alt, seqs in kept.items():  # base refreshed, the what-ifs not yet
        assert [r.cursor for r in alt.records()] == alt.records_df().seq.tolist() == seqs
        assert [r.cursor for r in alt.iter_records(after=1, upto=100)] == seqs[1:]
    assert by_run.refresh() == 2 and by_agent.refresh() == 1  # 7 and 8; 8 (by_agent also takes 4 and 7 out)
    for alt, seqs in ((by_run, [1, 2, 4, 7, 8]), (by_agent, [1, 2, 8])):
        assert [r.cursor for r in alt.records()] == alt.records_df().seq.tolist() == seqs
        assert alt.refresh() == 0
        assert [r.cursor for r in alt.records(limit=np.int64(2))] == seqs[:2]
        assert alt.records(limit=0) == []
        for bad in ("2", -1, 2.0, True):  # as the base's records() takes limit
            for history in (alt, alt.base):
                with pytest.raises(InvalidInputError, match="limit must be a whole number"):
                    history.records(limit=bad)
    db.close()


def test_explain_names_the_policy_refs_a_failed_message_lacked(oracle, small_db):
    """For every message that reached nobody: the refs the pool's message policy requires and the
    message lacked (from its pool_opened config and its payload), as in the explanation's facts."""
    checked = 0
    for facts_from, path in ((oracle, oracle / "pool.db"), (small_db, small_db)):
        db = poolscope.open(path)
        for pool_id, records in _records(facts_from).items():
            config = next(p["config"] for _, p in records if p["type"] == "pool_opened")
            required = config.get("message_policy", {}).get("required_policy_refs", [])
            pool = db.pool(pool_id)
            for message_id, chain in Facts(records).messages.items():
                _, message, receipt = chain[-1]
                if receipt.get("delivered_to"):
                    continue
                explanation = pool.explain(message_id)
                refs = chain[0][1].get("policy_refs", [])
                missing = [r for r in required if r not in refs]
                assert len(explanation.facts["missing_policy_refs"]) == len(missing), message_id
                assert ("missing" in explanation.text) == bool(missing)
                assert "delivered to nobody" in explanation.text
                checked += 1
    assert checked > 20


def test_grouping_by_text_passes_over_values_that_are_not_text():
    """A value of another JSON type (a list cannot even be hashed) names nothing; text still does."""
    import numpy as np

    from poolscope.relations import Groups

    class Columns:
        values = ["a", ["x"], "b", "a", None, {"k": 1}]

        def field(self, name, positions):
            return [self.values[p] for p in np.asarray(positions).tolist()]

    groups = Groups(Columns(), "idem", np.arange(6))  # type: ignore[arg-type]
    assert groups.get("a").tolist() == [0, 3] and groups.get("b").tolist() == [2]
    assert groups.get("x") is None and groups.get(None) is None and groups.get(["x"]) is None
