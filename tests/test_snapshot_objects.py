"""What a snapshot or a diff hands out is the user's and stays as it was made:
editing its members or config changes no other snapshot, frame or diff, and a
what-if refreshed since (a new fold, new positions) does not change it."""

from __future__ import annotations

import shutil
from typing import Any

from reference import reference_snapshot

import poolscope
from poolscope import wire

REF = {"kind": "permission", "id": "policy.m"}
CONFIG = {
    "message_policy": {"required_policy_refs": [REF], "include_sender_in_pool_broadcast": True},
    "policy_refs": [{"kind": "permission", "id": "policy.p"}],
}


def _message(message_id: str, sender: str, to_run: str) -> dict:
    return {
        "message_id": message_id,
        "from": sender,
        "to": {
            "target": {"type": "run", "run_id": to_run},
            "destination_ref": {
                "kind": "agent",
                "id": to_run,
                "privacy": "content_refs_only",
                "retention": "host_policy",
            },
        },
        "content_ref": f"content.{message_id}",
        "idempotency_key": f"idem.{message_id}",
    }


def _receipt(message_id: str, status: str) -> dict:
    return {"message_id": message_id, "status": status}


def _edit(value: Any) -> None:
    """Change every dict and list inside ``value``, as a notebook cell might."""
    if isinstance(value, dict):
        for inner in list(value.values()):
            _edit(inner)
        value["note"] = "edited"
    elif isinstance(value, list):
        for inner in value:
            _edit(inner)
        value.reverse()
        value.append("edited")


def test_editing_members_and_config_handed_out_changes_no_later_snapshot_frame_or_diff(tmp_path, open_db):
    path = tmp_path / "members.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", CONFIG)  # 1
        store.join_member("p", {"run_id": "r1", "agent_id": "a1", "topics": ["t.b", "t.a"], "policy_refs": [REF]})
        store.join_member("p", {"run_id": "r2", "agent_id": "a2", "topics": ["t.c"]})  # 3
        store.join_member("p", {"run_id": "r1", "agent_id": "a1", "topics": ["t.d"]})  # 4: r1 updated
        store.leave_member("p", "r2")  # 5
    pool = open_db(path, cache=False).pool("p")
    records = [record.to_dict() for record in pool.records()]
    expected = {k: reference_snapshot("p", records, k) for k in range(1, pool.head + 1)}

    for k in range(1, pool.head + 1):
        snap = pool.snapshot(k)
        _edit(snap.members)
        _edit(snap.config)
        _edit(snap.to_dict())
        for a in range(pool.head + 1):
            change = pool.diff(a, k)
            _edit(change.joined)
            _edit(change.left)
            _edit(change.updated)
        # the edited snapshot's own to_json is still the SDK's bytes
        assert snap.to_json() == wire.dumps(expected[k])

    for k in range(1, pool.head + 1):
        assert pool.snapshot(k).to_dict() == expected[k]
        assert pool.snapshot(k).to_json() == wire.dumps(expected[k])
    frame = pool.members_df()
    current = frame[frame["left_at"].isna()]
    assert [list(topics) for topics in current["topics"]] == [["t.d"]]
    assert current["run_id"].tolist() == ["r1"]
    change = pool.diff(1, pool.head)
    assert change.joined == expected[pool.head]["members"]
    change = pool.diff(3, 4)
    assert change.updated == [{"run_id": "r1", "agent_id": "a1", "topics": ["t.d"]}]
    assert pool.diff(3, 5).left == [{"run_id": "r2", "agent_id": "a2", "topics": ["t.c"]}]


def test_a_what_ifs_snapshots_and_diffs_stay_as_made_after_it_is_refreshed(tmp_path, open_db):
    """A run that joins later as a removed agent takes its earlier records out of the
    re-fold: the positions a held snapshot or diff keeps then belong to other records."""
    path = tmp_path / "whatif.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})  # 1
        store.join_member("p", {"run_id": "r0", "agent_id": "aX"})  # 2
        store.join_member("p", {"run_id": "r1", "agent_id": "aY"})  # 3
        store.record_message("p", _message("m.a", "r5", "r1"), _receipt("m.a", "accepted"))  # 4: r5 not joined yet
        store.record_message("p", _message("m.b", "r1", "r1"), _receipt("m.b", "failed"))  # 5
        store.record_message("p", _message("m.b", "r1", "r1"), _receipt("m.b", "delivered"))  # 6
    before = tmp_path / "before.db"
    shutil.copy(path, before)

    alt = open_db(path, cache=False).pool("p").without(agents=["aX"])
    head = alt.head
    snaps = {k: alt.snapshot(k) for k in range(1, head + 1)}  # nothing read from them yet
    diffs = {(a, b): alt.diff(a, b) for a in range(head + 1) for b in range(head + 1)}
    with poolscope.PoolStore(path) as store:
        store.join_member("p", {"run_id": "r5", "agent_id": "aX"})  # 7: r5 is a run of aX now
        for n in range(3):
            store.record_message("p", _message(f"m.{n}", "r1", "r1"), _receipt(f"m.{n}", "delivered"))
    alt.refresh()
    assert "m.a" not in alt.snapshot(head).messages.ids  # the re-fold took m.a out

    as_made = open_db(before, cache=False).pool("p").without(agents=["aX"])
    for k, snap in snaps.items():
        truth = as_made.snapshot(k)
        assert snap.messages.ids == truth.messages.ids
        assert snap.messages.statuses == truth.messages.statuses
        assert snap.messages.seqs == truth.messages.seqs
        assert snap.messages.latest(5) == truth.messages.latest(5)
        assert snap.to_json() == truth.to_json()
    for (a, b), change in diffs.items():
        assert change.to_dict() == as_made.diff(a, b).to_dict()
