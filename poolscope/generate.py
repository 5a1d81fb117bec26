"""Sample histories: realistic pool logs of any size, written through :class:`PoolStore`.

The generator plays the SDK's coordinator (``AgentPool``) over several
interleaved pools: members join (the first join also records
``pool_created``), leave and re-join with other topics; messages are resolved
to recipients as the SDK does (run, agent, topic and pool targets, message
policy refs, sender excluded from pool broadcasts unless configured) and
recorded ``accepted`` then ``delivered`` -- or ``failed`` when nobody can
receive them, ``expired`` when ``expires_at_millis == 0`` -- and may later be
``responded``, ``timed_out`` or ``cancelled``; wakes are registered with a
filter scoped to the members and compiled like ``CompiledEventFilter::new``,
then triggered, timed out or cancelled; re-sends with an idempotency key
already used are answered from the dedupe index and write nothing.

Example::

    >>> from poolscope.generate import generate
    >>> summary = generate("demo.db", pools=3, records=500, seed=7)
    >>> summary["pools"], summary["records"]
    (['pool.alpha', 'pool.bravo', 'pool.charlie'], 1501)
"""

from __future__ import annotations

import os
import random
from typing import Any

from . import wire
from .arguments import count_argument, shown_value, whole_number
from .errors import InvalidInputError
from .store import PoolStore

PRIVACY = "content_refs_only"
NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
AGENT_ROLES = ("planner", "worker", "reviewer", "critic")
TOPIC_NAMES = ("plan", "review", "alerts", "build", "idle")
WAKE_FAMILIES = (
    ("run", ("run_completed", "run_failed")),
    ("agent_pool", ("run_message_responded", "run_message_delivered")),
    ("tool", ("tool_denied",)),
    ("turn", ("turn_completed",)),
)


def _address(kind: str, target_id: str) -> dict:
    dest_kind, rel_kind, field = {
        "run": ("agent", "run", "run_id"),
        "agent": ("agent", "agent", "agent_id"),
        "topic": ("topic", "topic", "topic_id"),
        "pool": ("agent_pool", "agent_pool", "pool_id"),
    }[kind]
    return {
        "target": {"type": kind, field: target_id},
        "destination_ref": {"kind": dest_kind, "id": target_id, "privacy": PRIVACY, "retention": "host_policy"},
        "related_refs": [{"kind": rel_kind, "id": target_id, "privacy": PRIVACY}],
    }


class _Pool:
    """Coordinator-side model of one pool (what ``AgentPool`` would know)."""

    def __init__(self, pool_id: str, name: str, config: dict) -> None:
        self.pool_id = pool_id
        self.name = name
        self.config = config
        self.created = False
        self.members: dict[str, dict] = {}
        self.departed: list[dict] = []
        self.run_counter = 0
        self.msg_counter = 0
        self.wake_counter = 0
        self.delivered: list[tuple[dict, list]] = []
        self.registered: dict[str, tuple[dict, dict]] = {}
        self.sent_keys: list[tuple[dict, dict]] = []
        self.wake_keys: list[tuple[dict, dict]] = []
        self.recent_ids: list[str] = []

    def topics(self) -> dict[str, list[str]]:
        topics: dict[str, set] = {}
        for member in self.members.values():
            for topic in member.get("topics", ()):
                topics.setdefault(topic, set()).add(member["run_id"])
        return {k: sorted(v) for k, v in topics.items()}

    def allows(self, member: dict, required: list) -> bool:
        return all(ref in member.get("policy_refs", []) for ref in required)


class Generator:
    """Drives a :class:`PoolStore` like the SDK's coordinator would."""

    def __init__(self, store: PoolStore, *, seed: int = 0, members_cap: int | None = None) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.members_cap = members_cap
        self.journal = 0

    def _cursor(self) -> str:
        self.journal += 1
        return f"journal.{self.journal}"

    def _event(self, pool: _Pool) -> None:
        self.store.next_event_sequence(pool.pool_id)

    # ---------------------------------------------------------- membership
    def join(self, pool: _Pool, member: dict) -> None:
        if not pool.created:
            self._event(pool)
            self.store.record_pool_created(pool.pool_id)
            pool.created = True
        self.store.join_member(pool.pool_id, member)
        pool.members[member["run_id"]] = wire.canonical_member(member)
        self._event(pool)

    def new_member(self, pool: _Pool) -> dict:
        rng = self.rng
        pool.run_counter += 1
        role = rng.choice(AGENT_ROLES)
        member: dict[str, Any] = {
            "run_id": f"run.{pool.name}.{role}-{pool.run_counter}",
            "agent_id": f"agent.{pool.name}.{role}",
        }
        refs = list(pool.config.get("message_policy", {}).get("required_policy_refs", []))
        if rng.random() < 0.3:
            refs.append({"kind": "permission", "id": f"policy.{pool.name}.extra"})
        if refs and rng.random() < 0.85:
            member["policy_refs"] = refs
        topics = rng.sample([f"topic.{pool.name}.{t}" for t in TOPIC_NAMES[:4]], k=rng.randint(0, 2))
        if topics:
            member["topics"] = topics
        return member

    def leave(self, pool: _Pool, run_id: str) -> None:
        member, _ = self.store.leave_member(pool.pool_id, run_id)
        pool.members.pop(run_id, None)
        pool.departed.append(member)
        self._event(pool)

    # ------------------------------------------------------------ messages
    def resolve(self, pool: _Pool, message: dict) -> list[str]:
        members = pool.members
        policy = pool.config["message_policy"]
        required = policy.get("required_policy_refs", [])
        msg_refs = message.get("policy_refs", [])
        if message["from"] not in members or not all(r in msg_refs for r in required):
            return []
        target = message["to"]["target"]
        kind = target["type"]
        if kind == "run":
            candidates = [target["run_id"]]
        elif kind == "agent":
            candidates = [r for r, m in members.items() if m["agent_id"] == target["agent_id"]]
        elif kind == "topic":
            candidates = list(pool.topics().get(target["topic_id"], []))
        else:
            candidates = list(members) if target["pool_id"] == pool.pool_id else []
        candidates = [
            r for r in candidates if r in members and all(x in members[r].get("policy_refs", []) for x in msg_refs)
        ]
        if kind == "pool" and not policy["include_sender_in_pool_broadcast"]:
            candidates = [r for r in candidates if r != message["from"]]
        return sorted(set(candidates))

    def record_status(self, pool: _Pool, message: dict, status: str, delivered_to: list[str]) -> None:
        receipt: dict[str, Any] = {
            "message_id": message["message_id"],
            "status": status,
            "delivered_to": delivered_to,
            "journal_cursor": self._cursor(),
        }
        self._event(pool)
        self.store.record_message(pool.pool_id, message, receipt)

    def send(self, pool: _Pool, message: dict) -> None:
        if self.store.message_receipt(pool.pool_id, message["idempotency_key"]) is not None:
            return
        delivered_to = self.resolve(pool, message)
        if message.get("expires_at_millis") == 0:
            self.record_status(pool, message, "expired", [])
        elif not delivered_to:
            self.record_status(pool, message, "failed", [])
        else:
            self.record_status(pool, message, "accepted", delivered_to)
            self.record_status(pool, message, "delivered", delivered_to)
            pool.delivered.append((message, delivered_to))
        pool.sent_keys.append((message, {}))
        pool.recent_ids.append(message["message_id"])

    def new_message(self, pool: _Pool) -> dict:
        rng = self.rng
        pool.msg_counter += 1
        n = pool.msg_counter
        senders = list(pool.members)
        sender = rng.choice(senders) if senders and rng.random() < 0.95 else f"run.{pool.name}.ghost-{n}"
        roll = rng.random()
        if roll < 0.5:
            run = rng.choice(senders) if senders and rng.random() < 0.9 else f"run.{pool.name}.ghost-{n}"
            to = _address("run", run)
        elif roll < 0.7:
            to = _address("agent", f"agent.{pool.name}.{rng.choice(AGENT_ROLES)}")
        elif roll < 0.87:
            to = _address("topic", f"topic.{pool.name}.{rng.choice(TOPIC_NAMES)}")
        else:
            to = _address("pool", pool.pool_id)
        message: dict[str, Any] = {
            "message_id": f"msg.{pool.name}.{n}",
            "from": sender,
            "to": to,
            "content_ref": f"content.{pool.name}.msg.{n}",
            "correlation": {},
            "idempotency_key": f"idem.{pool.name}.msg.{n}",
        }
        if rng.random() < 0.1:
            message["correlation"] = {"entries": [{"key": "thread", "value": f"thr-{n % 7}"}]}
        if pool.recent_ids and rng.random() < 0.15:
            message["reply_to"] = rng.choice(pool.recent_ids[-20:])
        if rng.random() < 0.1:
            message["response_contract"] = {"expected_responses": rng.randint(1, 2), "timeout_millis": 30000}
        if rng.random() < 0.05:
            message["expires_at_millis"] = 0
        elif rng.random() < 0.05:
            message["expires_at_millis"] = 4102444800000
        required = pool.config["message_policy"].get("required_policy_refs", [])
        if required and rng.random() < 0.9:
            message["policy_refs"] = list(required)
        return message

    def follow_up(self, pool: _Pool) -> None:
        message, delivered_to = pool.delivered.pop(self.rng.randrange(len(pool.delivered)))
        if message["from"] not in pool.members:
            return
        status = self.rng.choices(("responded", "timed_out", "cancelled"), (6, 2, 1))[0]
        self.record_status(pool, message, status, delivered_to)

    # --------------------------------------------------------------- wakes
    def register(self, pool: _Pool) -> None:
        rng = self.rng
        run_id = rng.choice(list(pool.members))
        pool.wake_counter += 1
        n = pool.wake_counter
        family, kinds = rng.choice(WAKE_FAMILIES)
        event_filter: dict[str, Any] = {"families": {"include": [family]}, "kinds": {"include": [rng.choice(kinds)]}}
        if rng.random() < 0.6:
            watched = rng.sample(list(pool.members), k=min(len(pool.members), rng.randint(1, 2)))
            event_filter["run_ids"] = {"include": watched}
        if rng.random() < 0.2:
            event_filter["terminal_only"] = True
        event_filter["payload_access"] = rng.choice(("envelope_only", "payload_refs", "redacted_summary"))
        condition: dict[str, Any] = {
            "condition_id": f"wake.{pool.name}.{n}",
            "run_id": run_id,
            "filter": event_filter,
            "resume_with": rng.choice(("matching_event_refs", "redacted_summary", "none")),
            "idempotency_key": f"idem.{pool.name}.wake.{n}",
        }
        if rng.random() < 0.4:
            condition["timeout_millis"] = 0 if rng.random() < 0.25 else 60000
        condition = wire.canonical_condition(condition)
        if self.store.wake_registration(pool.pool_id, condition["idempotency_key"]) is not None:
            return
        compiled = wire.compile_filter(self.scope(pool, condition["filter"]))
        self.wake_status(pool, condition, compiled, "registered")
        if condition.get("timeout_millis") == 0:
            self.wake_status(pool, condition, compiled, "timed_out")
        elif rng.random() < 0.1:
            self.wake_status(pool, condition, compiled, "triggered")
        else:
            pool.registered[condition["condition_id"]] = (condition, compiled)
        pool.wake_keys.append((condition, compiled))

    def scope(self, pool: _Pool, event_filter: dict) -> dict:
        """``AgentPool::scope_filter``: run ids limited to observable members, envelope only by policy."""
        scoped = dict(event_filter)
        allowed = sorted(r for r, m in pool.members.items() if pool.allows(m, pool.config.get("policy_refs", [])))
        runs = event_filter["run_ids"]
        scoped["run_ids"] = {"include": allowed if runs == "any" else [r for r in runs["include"] if r in allowed]}
        if pool.config["wake_policy"]["envelope_only"]:
            scoped["payload_access"] = "envelope_only"
        return scoped

    def wake_status(self, pool: _Pool, condition: dict, compiled: dict, status: str, cursor: bool = True) -> None:
        registration: dict[str, Any] = {
            "condition_id": condition["condition_id"],
            "run_id": condition["run_id"],
            "status": status,
        }
        if cursor:
            registration["journal_cursor"] = self._cursor()
            self._event(pool)
        self.store.record_wake(pool.pool_id, condition, compiled, registration)

    def settle(self, pool: _Pool) -> None:
        condition_id = self.rng.choice(list(pool.registered))
        condition, compiled = pool.registered.pop(condition_id)
        if condition["run_id"] not in pool.members:
            return
        roll = self.rng.random()
        if roll < 0.03:
            # no coordinator path: written through the store trait, without a journal cursor
            self.wake_status(pool, condition, compiled, "failed", cursor=False)
        else:
            self.wake_status(
                pool, condition, compiled, "triggered" if roll < 0.6 else ("cancelled" if roll < 0.85 else "timed_out")
            )

    # ----------------------------------------------------------------- run
    def step(self, pool: _Pool) -> None:
        rng = self.rng
        members = pool.members
        if len(members) < 2:
            self.join(pool, self.new_member(pool))
            return
        if self.members_cap and len(members) > self.members_cap:
            # a steady pool: at the cap, runs leave as others join
            self.leave(pool, rng.choice(list(members)))
            return
        roll = rng.random()
        if roll < 0.05:
            if pool.departed and rng.random() < 0.5:
                member = dict(pool.departed.pop(rng.randrange(len(pool.departed))))
                member["topics"] = [f"topic.{pool.name}.{rng.choice(TOPIC_NAMES[:4])}"]
                self.join(pool, member)
            elif rng.random() < 0.2:
                member = dict(members[rng.choice(list(members))])
                member["topics"] = sorted(set(member.get("topics", [])) | {f"topic.{pool.name}.alerts"})
                self.join(pool, member)
            else:
                self.join(pool, self.new_member(pool))
        elif roll < 0.08 and len(members) > 3:
            self.leave(pool, rng.choice(list(members)))
        elif roll < 0.55:
            if pool.sent_keys and rng.random() < 0.05:
                self.send(pool, rng.choice(pool.sent_keys)[0])  # an idempotent re-send: deduped
            else:
                self.send(pool, self.new_message(pool))
        elif roll < 0.68 and pool.delivered:
            self.follow_up(pool)
        elif roll < 0.85:
            if pool.wake_keys and rng.random() < 0.05:
                condition = pool.wake_keys[-1][0]
                self.store.wake_registration(pool.pool_id, condition["idempotency_key"])
            else:
                self.register(pool)
        elif pool.registered:
            self.settle(pool)
        else:
            self.send(pool, self.new_message(pool))


def default_configs(names: list[str]) -> list[dict]:
    """Pool configs: the builder defaults, one with policy refs, one that loops back broadcasts."""
    configs = []
    for i, name in enumerate(names):
        if i % 3 == 1:
            configs.append(
                {
                    "message_policy": {
                        "required_policy_refs": [{"kind": "permission", "id": f"policy.{name}.message"}],
                        "include_sender_in_pool_broadcast": True,
                    },
                    "wake_policy": {"envelope_only": False},
                    "policy_refs": [{"kind": "privacy", "id": f"policy.{name}.observe", "version": "2"}],
                }
            )
        elif i % 3 == 2:
            configs.append(
                {"message_policy": {"include_sender_in_pool_broadcast": True}, "wake_policy": {"envelope_only": True}}
            )
        else:
            configs.append({})
    return [wire.canonical_config(c) for c in configs]


#: The most ``generate`` writes: pools in a file, records in all (about 1 KB and 20 µs each).
MAX_POOLS = 100_000
MAX_RECORDS = 1_000_000_000


def generate(
    path: str | os.PathLike,
    *,
    pools: int = 3,
    records: int = 1000,
    seed: int = 0,
    prefix: str = "pool",
    batch: int = 5000,
    progress: bool | None = None,
    members_cap: int | None = None,
) -> dict[str, Any]:
    """Write ``pools`` interleaved pool histories of about ``records`` records
    each into ``path`` (created if missing; existing pools are appended to).

    Without ``members_cap`` membership keeps growing (about 1.4 runs per 100
    records), and with it receipts and scoped wake filters, which list
    members; ``members_cap=50`` keeps a steady pool, as the benchmarks use.

    Returns a summary: ``{"path", "pools": [...], "records": n, "written": k}``
    (``records`` in the pools now, ``written`` by this call: fewer, or none,
    when ``path`` already holds those pools).

    >>> generate("two.db", pools=2, records=200, seed=1)["records"] >= 400
    True
    """
    pools = count_argument(pools, "pools", MAX_POOLS)
    records = count_argument(records, "records", MAX_RECORDS)
    batch = count_argument(batch, "batch")
    if pools * records > MAX_RECORDS:
        raise InvalidInputError(
            f"pools × records is {pools * records:,}: more than the {MAX_RECORDS:,} records generate writes in one file"
        )
    if members_cap is not None:
        members_cap = count_argument(members_cap, "members_cap")
    number = whole_number(seed)
    if number is None:
        raise InvalidInputError(f"seed must be a whole number, not {shown_value(seed)}")
    seed = number
    names = [f"{NAMES[i % len(NAMES)]}{'' if i < len(NAMES) else i // len(NAMES)}" for i in range(pools)]
    store = PoolStore(path)
    count_rows = "SELECT count(*) FROM agent_pool_records"
    before = store.conn.execute(count_rows).fetchone()[0]
    gen = Generator(store, seed=seed, members_cap=members_cap)
    models = []
    for name, config in zip(names, default_configs(names)):
        pool_id = f"{prefix}.{name}"
        store.open_pool(pool_id, config)
        models.append(_Pool(pool_id, name, config))
    target = records * pools
    bar = None
    if progress or (progress is None and target >= 200_000):
        from tqdm.auto import tqdm

        bar = tqdm(total=target, desc="generating", unit="rec")

    def size(model: _Pool) -> int:
        return len(store._logs[model.pool_id].index)

    done = sum(size(m) for m in models)
    open_models = [m for m in models if size(m) < records]
    while open_models:
        with store.batch():
            for _ in range(batch):
                pool = gen.rng.choice(open_models)
                gen.step(pool)
                if size(pool) >= records:
                    open_models.remove(pool)
                    if not open_models:
                        break
        now = sum(size(m) for m in models)
        if bar is not None:
            bar.update(now - done)
        done = now
    if bar is not None:
        bar.close()
    written = store.conn.execute(count_rows).fetchone()[0] - before
    store.close()
    return {"path": str(store.path), "pools": [m.pool_id for m in models], "records": done, "written": written}
