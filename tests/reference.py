"""An independent, deliberately naive port of the SDK's ``PoolReplay``.

Used by the tests to compute expected snapshots of generated histories without
touching poolscope's fold or index: dicts keyed like the SDK's BTreeMaps,
sorted at the end.
"""

from __future__ import annotations


def reference_snapshot(pool_id: str, records: list[dict], cursor: int) -> dict:
    """The SDK's AgentPoolSnapshot JSON for the records with seq <= cursor."""
    config = None
    created = False
    members: dict = {}
    messages: dict = {}
    wakes: dict = {}
    last = None
    for record in records:
        seq = record["cursor"]["sequence"]
        if seq > cursor:
            break
        last = seq
        payload = record["payload"]
        kind = payload["type"]
        if kind == "pool_opened":
            if config is not None and config != payload["config"]:
                raise ValueError("conflicting pool open records")
            config = payload["config"]
        elif kind == "pool_created":
            created = True
        elif kind == "member_joined":
            members[payload["member"]["run_id"]] = payload["member"]
        elif kind == "member_left":
            members.pop(payload["member"]["run_id"], None)
        elif kind == "run_message":
            messages[payload["stored"]["message"]["message_id"]] = payload["stored"]
        elif kind == "wake":
            wakes[payload["stored"]["condition"]["condition_id"]] = payload["stored"]
    if config is None:
        raise LookupError("has not opened this pool")
    topics = sorted({t for m in members.values() for t in m.get("topics", [])})
    out = {
        "pool_id": pool_id,
        "created": created,
        "members": [members[k] for k in sorted(members)],
        "topics": topics,
        "message_policy": config["message_policy"],
        "wake_policy": config["wake_policy"],
    }
    if config.get("policy_refs"):
        out["policy_refs"] = config["policy_refs"]
    if messages:
        out["messages"] = [messages[k] for k in sorted(messages)]
    if wakes:
        out["wakes"] = [wakes[k] for k in sorted(wakes)]
    if last is not None:
        out["cursor"] = {"sequence": last}
    return out
