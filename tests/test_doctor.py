"""``check()`` and ``poolscope doctor``: clean on what the SDK writes, precise on what it does not."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner
from helpers import SAMPLE_DB, load_jsonl, tree_state

import poolscope
from poolscope import wire
from poolscope.check import CODES, SEVERITIES, Anomaly
from poolscope.cli import cli


def doctor(*args: str):
    result = CliRunner().invoke(cli, ["doctor", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# ------------------------------------------------------------ clean histories
def test_the_sdk_oracle_is_clean(oracle):
    before = tree_state(oracle)
    db = poolscope.open(oracle / "pool.db")
    assert db.check() == []
    db.close()
    result = doctor(oracle / "pool.db")
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings, 0 info" in result.stdout
    report = json.loads(doctor(oracle / "pool.db", "--json").stdout)
    assert report["anomalies"] == [] and report["counts"] == {"error": 0, "warning": 0, "info": 0}
    assert tree_state(oracle) == before


def test_the_oracle_contains_what_the_sdk_allows(oracle):
    """The oracle exercises the transitions check() must accept; make sure they are really there."""
    seen_message: dict = {}
    seen_wake: dict = {}
    transitions, wake_transitions, failed_without_cursor = set(), set(), 0
    for record in load_jsonl(oracle / "records.jsonl"):
        payload, key = record["payload"], record["pool_id"]
        if payload["type"] == "run_message":
            mid = (key, payload["stored"]["message"]["message_id"])
            transitions.add((seen_message.get(mid), payload["stored"]["receipt"]["status"]))
            seen_message[mid] = payload["stored"]["receipt"]["status"]
        elif payload["type"] == "wake":
            registration = payload["stored"]["registration"]
            wid = (key, registration["condition_id"])
            wake_transitions.add((seen_wake.get(wid), registration["status"]))
            seen_wake[wid] = registration["status"]
            failed_without_cursor += registration["status"] == "failed" and "journal_cursor" not in registration
    assert {(None, "failed"), (None, "expired"), ("delivered", "timed_out"), ("timed_out", "responded")} <= transitions
    assert ("responded", "responded") in transitions
    assert ("cancelled", "cancelled") in wake_transitions
    assert failed_without_cursor > 0


def test_sample_and_generated_databases_are_clean(small_db, tmp_path):
    from poolscope.generate import generate

    paths = [SAMPLE_DB, small_db]
    for seed in (1, 2):
        path = tmp_path / f"gen{seed}.db"
        generate(path, pools=2, records=250, seed=seed)
        paths.append(path)
    for path in paths:
        anomalies = poolscope.open(path).check()
        assert [a for a in anomalies if a.severity != "info"] == [], (path, anomalies)
        assert doctor(path).exit_code == 0


def _message(message_id: str) -> dict:
    return {
        "message_id": message_id,
        "from": "run.a",
        "to": {
            "target": {"type": "run", "run_id": "run.b"},
            "destination_ref": {
                "kind": "agent",
                "id": "run.b",
                "privacy": "content_refs_only",
                "retention": "host_policy",
            },
        },
        "content_ref": f"content.{message_id}",
        "idempotency_key": f"idem.{message_id}",
    }


def _wake(condition_id: str, status: str, cursor: str | None = "journal.1") -> tuple[dict, dict, dict]:
    condition = {
        "condition_id": condition_id,
        "run_id": "run.b",
        "idempotency_key": f"idem.{condition_id}",
        "filter": {"run_ids": {"include": ["run.a"]}},
    }
    registration = {"condition_id": condition_id, "run_id": "run.b", "status": status}
    if cursor:
        registration["journal_cursor"] = cursor
    return condition, wire.compile_filter(condition["filter"]), registration


def test_what_the_sdk_store_allows_is_not_an_anomaly(tmp_path):
    """Transitions the SDK's store accepts (and its coordinator writes) are facts, not anomalies."""
    path = tmp_path / "allowed.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("pool.a", {})
        store.record_pool_created("pool.a")
        store.join_member("pool.a", {"run_id": "run.a", "agent_id": "agent.a"})
        store.join_member("pool.a", {"run_id": "run.b", "agent_id": "agent.b", "topics": ["t"]})
        store.join_member("pool.a", {"run_id": "run.b", "agent_id": "agent.b"})  # re-join updates
        for status in ("accepted", "delivered", "timed_out", "responded", "responded", "cancelled", "timed_out"):
            store.record_message("pool.a", _message("msg.1"), {"message_id": "msg.1", "status": status})
        store.record_message("pool.a", _message("msg.2"), {"message_id": "msg.2", "status": "failed"})
        store.record_message("pool.a", _message("msg.3"), {"message_id": "msg.3", "status": "expired"})
        for status in ("registered", "triggered", "cancelled", "cancelled"):
            store.record_wake("pool.a", *_wake("wake.1", status))
        store.record_wake("pool.a", *_wake("wake.2", "registered"))
        store.record_wake("pool.a", *_wake("wake.2", "failed", cursor=None))
        store.leave_member("pool.a", "run.b")
        store.join_member("pool.a", {"run_id": "run.b", "agent_id": "agent.b"})
        store.next_event_sequence("pool.a")
    assert poolscope.open(path).check() == []
    assert doctor(path).exit_code == 0


# ---------------------------------------------------------- reporting damage
@pytest.fixture
def damaged(tmp_path, small_db):
    """A copy of small_db with a bad-JSON record (error) and a gap (warning) at known places,
    located with plain sqlite3 rather than poolscope."""
    path = tmp_path / "damaged.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pools = [row[0] for row in conn.execute("SELECT DISTINCT pool_id FROM agent_pool_records ORDER BY pool_id")]
    bad_pool, gap_pool = pools[0], pools[1]
    bad_seq = conn.execute(
        "SELECT min(seq) FROM agent_pool_records WHERE pool_id = ? AND seq > 50 AND kind = 'member_left'", (bad_pool,)
    ).fetchone()[0]
    gap_seq = conn.execute(
        "SELECT min(seq) FROM agent_pool_records WHERE pool_id = ? AND seq > 50 AND kind = 'run_message' "
        "AND json_extract(payload_json, '$.stored.receipt.status') = 'delivered'",
        (gap_pool,),
    ).fetchone()[0]
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = '{not json' WHERE pool_id = ? AND seq = ?", (bad_pool, bad_seq)
    )
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (gap_pool, gap_seq))
    conn.close()
    return path, (bad_pool, bad_seq), (gap_pool, gap_seq + 1)


def test_json_lists_each_anomaly_with_severity_pool_and_seq(damaged):
    path, (bad_pool, bad_seq), (gap_pool, gap_seq) = damaged
    result = doctor(path, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    found = {(a["severity"], a["code"], a["pool_id"], a["seq"]) for a in report["anomalies"]}
    assert found == {("error", "bad_json", bad_pool, bad_seq), ("warning", "seq_gap", gap_pool, gap_seq)}
    assert report["counts"] == {"error": 1, "warning": 1, "info": 0}
    assert report["path"] == str(path)
    for anomaly in report["anomalies"]:
        assert set(anomaly) == {"severity", "code", "pool_id", "seq", "message"} and anomaly["message"]


def test_text_output_names_code_pool_and_seq(damaged):
    path, (bad_pool, bad_seq), _ = damaged
    result = doctor(path)
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "bad_json" in line)
    assert line.startswith("error: bad_json") and repr(bad_pool) in line and f"seq {bad_seq}" in line
    assert "damaged (1 errors, 1 warnings, 0 info)" in result.stdout


def test_check_agrees_with_doctor(damaged):
    path, _, _ = damaged
    anomalies = poolscope.open(path).check()
    assert all(
        isinstance(a, Anomaly) and a.severity in SEVERITIES and CODES[a.code][0] == a.severity for a in anomalies
    )
    report = json.loads(doctor(path, "--json").stdout)
    assert [a.to_dict() for a in anomalies] == report["anomalies"]


def test_warnings_alone_exit_zero(tmp_path, small_db):
    path = tmp_path / "gap.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id, seq = conn.execute(
        "SELECT pool_id, min(seq) FROM agent_pool_records WHERE kind = 'run_message' AND seq > 10 "
        "AND json_extract(payload_json, '$.stored.receipt.status') = 'delivered' GROUP BY pool_id ORDER BY pool_id"
    ).fetchone()
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq))
    conn.close()
    result = doctor(path, "--json")
    assert result.exit_code == 0
    assert [(a["code"], a["pool_id"], a["seq"]) for a in json.loads(result.stdout)["anomalies"]] == [
        ("seq_gap", pool_id, seq + 1)
    ]


def _numbering(path, doctor_found):
    """Pools whose next event ``PoolStore.next_event_sequence`` refuses to number (typed
    ``bad_event_seq``), and the bad_event_seq anomalies ``check()`` found."""
    refused = []
    with poolscope.PoolStore(path) as store:
        for pool_id in doctor_found:
            try:
                store.next_event_sequence(pool_id)
            except poolscope.PoolscopeError as error:
                assert error.code == "bad_event_seq"
                refused.append(pool_id)
    return refused


def _loose_event_seq(conn):
    conn.execute("CREATE TABLE loose (pool_id, seq)")
    conn.execute("INSERT INTO loose SELECT * FROM agent_pool_event_seq")
    conn.execute("DROP TABLE agent_pool_event_seq")
    conn.execute("ALTER TABLE loose RENAME TO agent_pool_event_seq")


def test_event_numbering_doctor_reports_is_what_the_store_refuses_to_count_on(tmp_path, small_db, open_db):
    """Each agent_pool_event_seq row that ``next_event_sequence`` cannot count on from is one
    ``bad_event_seq`` warning naming its pool (a pool_id that is not text: no pool); the pools doctor
    names are exactly those the store refuses to number, and the others it numbers."""
    path = tmp_path / "numbering.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pools = [row[0] for row in conn.execute("SELECT pool_id FROM agent_pool_event_seq ORDER BY pool_id")]
    assert len(pools) == 3
    conn.execute("UPDATE agent_pool_event_seq SET seq = 4.5 WHERE pool_id = ?", (pools[0],))
    conn.execute("UPDATE agent_pool_event_seq SET seq = -2 WHERE pool_id = ?", (pools[1],))
    conn.execute("INSERT INTO agent_pool_event_seq VALUES (X'00ff', 1)")
    conn.execute("INSERT INTO agent_pool_event_seq VALUES ('pool.never', 9223372036854775806)")
    conn.close()
    found = [a for a in open_db(path).check() if a.code == "bad_event_seq"]
    assert len(found) == 4 and all(a.severity == "warning" and a.seq is None for a in found)
    named = sorted(a.pool_id for a in found if a.pool_id is not None)
    assert named == [pools[0], pools[1], "pool.never"]
    assert "BLOB" in next(a for a in found if a.pool_id is None).message
    assert "REAL" in next(a for a in found if a.pool_id == pools[0]).message
    assert _numbering(path, [*pools, "pool.never"]) == named
    assert doctor(path).exit_code == 0  # warnings: the records themselves are fine


def test_event_numbering_without_the_sdk_key_is_reported_for_the_file(tmp_path, small_db, open_db):
    """Without the primary key on pool_id, the SDK's INSERT OR IGNORE adds a row each time: one
    file-wide warning, one for a pool that already has two rows, and the store numbers no pool."""
    path = tmp_path / "loose.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pools = [row[0] for row in conn.execute("SELECT pool_id FROM agent_pool_event_seq ORDER BY pool_id")]
    _loose_event_seq(conn)
    conn.execute("INSERT INTO agent_pool_event_seq VALUES (?, 9)", (pools[1],))
    conn.close()
    found = [a for a in open_db(path).check() if a.code == "bad_event_seq"]
    assert [a.pool_id for a in found] == [None, pools[1], pools[1]]
    assert "unique key" in found[0].message and "another row" in found[1].message
    assert _numbering(path, pools) == pools
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM agent_pool_event_seq").fetchone()[0] == 4  # nothing written
    conn.close()


@pytest.mark.parametrize("make", ["missing", "folder", "text"])
def test_a_file_that_cannot_be_opened_exits_two(tmp_path, make):
    path = tmp_path / "x.db"
    if make == "folder":
        path.mkdir()
    elif make == "text":
        path.write_text("hello")
    for args in ([path], [path, "--json"]):
        result = doctor(*args)
        assert result.exit_code == 2
        assert "Error:" in result.stderr and str(path) in result.stderr
    assert path.exists() == (make != "missing")


def test_many_anomalies_of_one_kind_are_capped(tmp_path, small_db, monkeypatch):
    from poolscope import check as check_module

    monkeypatch.setattr(check_module, "MAX_PER_CODE", 3)
    path = tmp_path / "gaps.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id = conn.execute("SELECT min(pool_id) FROM agent_pool_records").fetchone()[0]
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > 10 AND seq % 2 = 0", (pool_id,))
    conn.close()
    anomalies = poolscope.open(path).check()
    gaps = [a for a in anomalies if a.code == "seq_gap"]
    assert [a.seq for a in gaps] == [13, 15, 17]
    (summary,) = [a for a in anomalies if a.code == "too_many" and "seq_gap" in a.message]
    assert summary.pool_id == pool_id and summary.severity == "warning"
    assert all(sum(a.code == code for a in anomalies) <= 3 for code in CODES if code != "too_many")


# ------------------------------------------- wake filters, however the pool loaded
#: How a wake's compiled filter is made to contradict itself, and how doctor's message begins.
FILTER_EDITS = [
    ("criteria changed", lambda c: c["criteria"].update(tags={"include": ["tampered"]}), "filter_fingerprint is "),
    ("filter_id changed", lambda c: c.update(filter_id="filter." + "0" * 64), "filter_id is "),
    # (criteria serde cannot read, such as run_ids 5, make the record damaged: bad_shape, not this)
    (
        "criteria queue changed",
        lambda c: c["criteria"].update(queue={"capacity": 8, "terminal_reserve": 1, "overflow": "drop_progress"}),
        "filter_fingerprint is ",
    ),
]


@pytest.mark.parametrize(
    "how",
    [
        "one process",
        "forked helper",
        "from the cache",
        "refreshed",
        "loaded by doctor",
        "loaded by doctor, forked",
        "loaded by doctor, from its cache entry",
    ],
)
def test_wake_filter_mismatches_are_found_however_the_pool_loads(tmp_path, small_db, monkeypatch, how):
    """Three wakes late in a pool get a compiled filter that contradicts itself; doctor
    names exactly those whether the pool loaded in one process, with a forked helper
    decoding the late records, from the index cache, by a refresh that folded the
    appended records, or by doctor itself -- which checks the filters while it decodes
    the wakes (here and in the forked helper) and reads none of them again, nor when
    it restores the pool from an entry its own load saved.  The first
    edited wake shares its fingerprint with a later, intact one, which must stay clean."""
    from poolscope import load as load_module

    path = tmp_path / "pool.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id = conn.execute(
        "SELECT pool_id FROM agent_pool_records GROUP BY pool_id ORDER BY count(*) DESC, pool_id LIMIT 1"
    ).fetchone()[0]
    wakes = conn.execute(
        "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' ORDER BY seq", (pool_id,)
    ).fetchall()
    head = conn.execute("SELECT max(seq) FROM agent_pool_records WHERE pool_id = ?", (pool_id,)).fetchone()[0]
    fingerprints = [json.loads(text)["stored"]["compiled_filter"]["filter_fingerprint"] for _, text in wakes]
    late = [i for i, (seq, _) in enumerate(wakes) if seq > head * 0.6]
    shared = next(i for i in late if fingerprints[i] in fingerprints[i + 1 :])  # an intact wake follows with it
    chosen = [shared] + [i for i in late if i != shared and fingerprints[i] not in fingerprints[shared:i]][-2:]
    assert len(chosen) == 3
    expected, changed = {}, {}
    for i, (_, edit, prefix) in zip(chosen, FILTER_EDITS):
        seq, text = wakes[i]
        payload = json.loads(text)
        edit(payload["stored"]["compiled_filter"])
        expected[seq] = prefix
        changed[seq] = wire.dumps(payload)
    first = min(expected)
    if how == "refreshed":  # the records from the first edited wake on are appended after the load
        tail = conn.execute(
            "SELECT pool_id, seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ? AND seq >= ? ORDER BY seq",
            (pool_id, first),
        ).fetchall()
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq >= ?", (pool_id, first))
    else:
        tail = []
        for seq, text in changed.items():
            conn.execute(
                "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (text, pool_id, seq)
            )
    forks = []
    if how in ("forked helper", "loaded by doctor, forked"):
        monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
        start = load_module._OtherHalf.start.__func__

        def counted(cls, index, *args, **kwargs):
            helper = start(cls, index, *args, **kwargs)
            if index.pool_id == pool_id:
                forks.append(helper is not None and helper.split <= first)
            return helper

        monkeypatch.setattr(load_module._OtherHalf, "start", classmethod(counted))
    cached = how in ("from the cache", "loaded by doctor, from its cache entry")
    if cached:  # an entry saved by an open (or by doctor's, which checks the filters as it loads)
        with poolscope.open(path) as warm:
            warm.pool(pool_id).load(verify_filters=how != "from the cache")
        poolscope.cache.wait()
    by_doctor = how.startswith("loaded by doctor")
    reads = []
    if by_doctor:
        from poolscope import check as check_module

        rows = check_module._payload_rows
        monkeypatch.setattr(
            check_module, "_payload_rows", lambda h, seqs=None: reads.append(h.pool_id) or rows(h, seqs)
        )
    with poolscope.open(path, cache=cached) as db:
        history = db.pool(pool_id) if by_doctor else db.pool(pool_id).load()
        if how == "refreshed":
            for row in tail:
                text = changed.get(row[1], row[3])
                conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (*row[:3], text))
            assert db.refresh() and history.head == head
        found = [a for a in db.check() if a.pool_id == pool_id]
        assert [(a.code, a.seq, a.severity) for a in found] == [("wake_filter_mismatch", s, "error") for s in expected]
        for anomaly in found:
            assert anomaly.message.startswith(expected[anomaly.seq]), anomaly.message
        if cached:
            assert not isinstance(history.index.entries, list)  # restored, not decoded
        verified = history.index.verified_filters
        if by_doctor:  # every intact wake checked while decoded (or so saved); only the three edited ones read again
            assert sorted(verified) == sorted({s for s, _ in wakes} - set(expected))
            assert reads.count(pool_id) == 1
        else:
            assert verified is None
    if how in ("forked helper", "loaded by doctor, forked"):
        assert forks == [True]  # the edited wakes were in the helper's part
    conn.close()


def _reads_again(monkeypatch, pool_id: str) -> list[int]:
    """The seqs of ``pool_id``'s records that doctor reads again from the file
    (``check._payload_rows``), appended as it reads them."""
    from poolscope import check as check_module

    read: list[int] = []
    rows = check_module._payload_rows

    def counted(history, seqs=None):
        for seq, raw in rows(history, seqs):
            if history.pool_id == pool_id:
                read.append(seq)
            yield seq, raw

    monkeypatch.setattr(check_module, "_payload_rows", counted)
    return read


def test_wakes_doctor_reads_again_are_saved_with_the_cache_entry(tmp_path, small_db, monkeypatch):
    """An entry saved by a plain open knows nothing of the wakes' filters, so doctor
    restoring it reads every wake again; it then saves them with the entry, and the
    next doctor reads none but the one whose filter contradicts itself (never
    marked consistent) -- with the same anomalies each time."""

    path = tmp_path / "pool.db"
    shutil.copy(small_db, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id = conn.execute("SELECT min(pool_id) FROM agent_pool_records").fetchone()[0]
    wakes = conn.execute(
        "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' ORDER BY seq", (pool_id,)
    ).fetchall()
    tampered, text = wakes[len(wakes) // 2]
    payload = json.loads(text)
    payload["stored"]["compiled_filter"]["filter_id"] = "filter." + "0" * 64
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (wire.dumps(payload), pool_id, tampered),
    )
    conn.close()
    with poolscope.open(path, cache=False) as db:
        uncached = [(a.code, a.pool_id, a.seq) for a in db.check()]
    assert ("wake_filter_mismatch", pool_id, tampered) in uncached
    with poolscope.open(path) as db:  # a plain open saves the entry: no wake checked
        db.pool(pool_id).load()
    poolscope.cache.wait()

    read = _reads_again(monkeypatch, pool_id)
    checked, reads = [], []
    for _ in range(3):
        read.clear()
        with poolscope.open(path) as db:
            anomalies = [(a.code, a.pool_id, a.seq) for a in db.check()]
            index = db.pool(pool_id).index
            assert not isinstance(index.entries, list)  # restored from the entry, not decoded
            checked.append(sorted(index.consistent_filters()))
        poolscope.cache.wait()
        reads.append(list(read))
        assert anomalies == uncached
        if len(checked) == 1:  # every wake read: all but the tampered one now known consistent
            assert checked[0] == sorted(seq for seq, _ in wakes if seq != tampered)
    assert checked[1] == checked[2] == checked[0]
    # the first check read every wake; the later ones found the others in the entry and read the tampered one only
    assert reads[0] == [seq for seq, _ in wakes]
    assert reads[1] == reads[2] == [tampered]


def test_wakes_checked_after_a_plain_load_in_the_same_process_are_saved(tmp_path, small_db, monkeypatch):
    """A pool loaded without checking its wakes (a notebook's first ``db.pool(p)``) and
    then checked in the same process: the wakes doctor read are saved with its entry,
    so the next doctor, restoring it, reads none of them again."""

    path = tmp_path / "pool.db"
    shutil.copy(small_db, path)
    with poolscope.open(path) as db:
        pool_id = db.pool_ids[0]
        index = db.pool(pool_id).load().index
        assert not index.restored and not index.consistent_filters()
        poolscope.cache.wait()
        first = [(a.code, a.pool_id, a.seq) for a in db.check()]
        assert not index.unsaved_checks  # saved with the entry
        known = sorted(index.consistent_filters())
    poolscope.cache.wait()
    assert known  # the pool has wakes, every one read and found consistent

    read = _reads_again(monkeypatch, pool_id)
    with poolscope.open(path) as db:
        again = [(a.code, a.pool_id, a.seq) for a in db.check()]
        restored = db.pool(pool_id).index
        assert restored.restored and sorted(restored.consistent_filters()) == known
    assert again == first
    assert read == []


def test_a_wake_read_again_in_an_unusual_shape_is_read_whole(small_db, monkeypatch):
    """Doctor reads only a wake's compiled filter again (msgspec); a text that reader
    refuses (here: rows as if the file changed after the load) is read whole, with
    the same verdicts: a compiled filter without criteria is reported, a text that is
    not JSON is left to the index (it was read as damaged, or changed since)."""
    from poolscope import check as check_module

    with poolscope.open(small_db, cache=False) as db:  # no wake known consistent from an entry
        pool_id = db.pool_ids[0]
        history = db.pool(pool_id).load()
        wakes = [
            (seq, text.encode())
            for seq, text in db.conn.execute(
                "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' ORDER BY seq",
                (pool_id,),
            )
        ]
        (first, text), (second, _), (third, other) = wakes[:3]
        payload = json.loads(text)
        del payload["stored"]["compiled_filter"]["criteria"]
        pretty = json.dumps(json.loads(other), indent=1).encode()  # refused by neither reader: whitespace
        rows = [(first, wire.dumps(payload).encode()), (second, b"{not json"), (third, pretty)]
        monkeypatch.setattr(check_module, "_payload_rows", lambda _history, _seqs=None: iter(rows))
        found = list(check_module._payload_checks(history, [first, second, third]))
    assert [(a.code, a.seq) for a in found] == [("wake_filter_mismatch", first)]
    assert "lacks 'criteria'" in found[0].message


def test_a_wake_read_again_nested_too_deep_for_the_reader_is_left_to_the_index(small_db, monkeypatch):
    """msgspec refuses a text nested thousands of levels deep with a RecursionError,
    not its usual error (found by fuzzing: a file rewritten under a loaded pool);
    the wake is read whole like any refused text, where orjson's depth limit leaves
    it to the index.  No traceback, no verdict on it, the other wakes checked."""
    from poolscope import check as check_module

    with poolscope.open(small_db, cache=False) as db:
        pool_id = db.pool_ids[0]
        history = db.pool(pool_id).load()
        (deep_seq, text), (plain_seq, plain) = [
            (seq, raw.encode())
            for seq, raw in db.conn.execute(
                "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' "
                "ORDER BY seq LIMIT 2",
                (pool_id,),
            )
        ]
        at = text.rfind(b',"registration":')
        deep = text[:at] + b',"registration":' + b"[" * 5000 + b"]" * 5000 + b"}}"
        rows = [(deep_seq, deep), (plain_seq, plain)]
        read = []
        monkeypatch.setattr(check_module, "_payload_rows", lambda _history, _seqs=None: iter(rows))
        monkeypatch.setattr(history.index, "add_checked_filters", read.extend)
        assert list(check_module._payload_checks(history, [deep_seq, plain_seq])) == []
    assert read == [plain_seq]  # the plain wake was checked and found consistent


def test_a_wake_filter_verdict_depends_on_the_wake_alone(small_db, monkeypatch):
    """Three wakes share criteria written in an order serde does not use.  The one whose
    fingerprint is the hash of the criteria as written is taken as written (whichever
    SDK release wrote them), the one with the fingerprint the SDK compiles them to is
    clean too, and the one with neither is reported against the compiled fingerprint
    -- in every order of the three (a verdict once remembered by criteria must not
    carry over to another wake)."""
    import hashlib
    import itertools

    from poolscope import check as check_module

    with poolscope.open(small_db, cache=False) as db:  # no wake known consistent from an entry
        pool_id = db.pool_ids[0]
        history = db.pool(pool_id).load()
        (first, text), (second, _), (third, _) = db.conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' ORDER BY seq LIMIT 3",
            (pool_id,),
        ).fetchall()
        payload = json.loads(text)
        compiled = payload["stored"]["compiled_filter"]
        criteria = dict(reversed(list(compiled["criteria"].items())))  # not serde's order
        as_written = "sha256:" + hashlib.sha256(wire.dumpb(criteria)).hexdigest()
        canonical = wire.compile_filter(criteria)
        assert canonical["filter_fingerprint"] != as_written

        def wake(fingerprint: str, filter_id: str) -> bytes:
            compiled.update(criteria=criteria, filter_fingerprint=fingerprint, filter_id=filter_id)
            return wire.dumps(payload).encode()

        texts = [
            wake(as_written, wire.filter_id(as_written)),
            wake(canonical["filter_fingerprint"], canonical["filter_id"]),
            wake("sha256:" + "0" * 64, "filter.x"),
        ]
        # the verdicts on these made-up payloads are not kept between orders (each reads all three)
        monkeypatch.setattr(history.index, "add_checked_filters", lambda seqs: None)
        for order in itertools.permutations(range(3)):
            rows = [(seq, texts[i]) for seq, i in zip((first, second, third), order)]
            monkeypatch.setattr(check_module, "_payload_rows", lambda _history, _seqs=None, rows=rows: iter(rows))
            found = list(check_module._payload_checks(history, [first, second, third]))
            bad = (first, second, third)[order.index(2)]
            assert [(a.code, a.seq) for a in found] == [("wake_filter_mismatch", bad)], order
            assert found[0].message.endswith(f"hash to {canonical['filter_fingerprint']!r}")


def test_a_wake_whose_criteria_nest_too_deep_is_reported_not_raised(small_db, monkeypatch):
    """A wake row changed after the load so that its criteria nest past what orjson writes
    (255 levels; serde reads 128): reported as criteria that are no EventFilter, never a
    TypeError from the encoder."""
    from poolscope import check as check_module

    with poolscope.open(small_db, cache=False) as db:  # no wake known consistent from an entry
        pool_id = db.pool_ids[0]
        history = db.pool(pool_id).load()
        first, text = db.conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'wake' ORDER BY seq LIMIT 1",
            (pool_id,),
        ).fetchone()
        payload = json.loads(text)
        payload["stored"]["compiled_filter"]["criteria"] = "@"
        deep = wire.dumps(payload).replace('"@"', "[" * 300 + "]" * 300).encode()
        monkeypatch.setattr(check_module, "_payload_rows", lambda _history, _seqs=None: iter([(first, deep)]))
        found = list(check_module._payload_checks(history, [first]))
    assert [(a.code, a.seq) for a in found] == [("wake_filter_mismatch", first)]
    assert "not a valid EventFilter" in found[0].message and "nest too deep" in found[0].message


@pytest.mark.parametrize("which", ["oracle", "generated"])
def test_checking_filters_while_decoding_finds_what_reading_them_again_finds(oracle, small_db, monkeypatch, which):
    """doctor checks the wakes' compiled filters as it loads a pool, and reads only the others
    again: every anomaly is the same as when it reads every wake again, on the SDK's own
    history and on a generated one (each pool large enough to fork the load's helper)."""
    from poolscope import load as load_module
    from poolscope.index import PoolIndex

    path = oracle / "pool.db" if which == "oracle" else small_db
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 50)

    def anomalies() -> tuple[list, list]:
        with poolscope.open(path, cache=False) as db:
            found = [a.to_dict() for a in db.check()]
            verified = [db.pool(p).index.verified_filters for p in db.pool_ids]
        return found, verified

    checked, verified = anomalies()
    wakes = 0
    with poolscope.open(path, cache=False) as db:
        for pool_id in db.pool_ids:
            wakes += int(db.pool(pool_id).index.kind_mask("wake").sum())
    assert sum(len(v) for v in verified) == wakes > 0  # every SDK wake checked while decoded
    monkeypatch.setattr(PoolIndex, "verify_filters", lambda self: self)
    again, unverified = anomalies()
    assert all(v is None for v in unverified)
    assert checked == again


#: The checks made from the order of the records (what comes first for each key), and the
#: sentence each is told in (``lost``: the damaged record before it, if any).
ORDER_CODES = ("message_never_sent", "delivered_without_accepted", "wake_never_registered", "member_left_not_member")


def _order_anomalies_by_hand(history) -> list[tuple[str, int, str]]:
    """What the order checks should find in a pool, from its records read one by one (Record
    payloads, not the index): for each key the first record, each membership change in turn."""
    out = []
    messages, wakes, members = set(), set(), set()
    lost = ""
    for record in history.records():
        seq = record.cursor
        if record.problem is not None:
            lost = f" (the damaged record at seq {seq} may be the one that recorded it)"
            continue
        payload = record.payload
        if record.kind == "run_message":
            key, status = payload["stored"]["message"]["message_id"], payload["stored"]["receipt"]["status"]
            if key not in messages and status not in ("accepted", "failed", "expired"):
                if status == "delivered":
                    text = f"message {key!r} is recorded delivered but was never accepted"
                    out.append(("delivered_without_accepted", seq, text + lost))
                else:
                    text = f"message {key!r} changes to {status} but was never recorded before"
                    out.append(("message_never_sent", seq, text + lost))
            messages.add(key)
        elif record.kind == "wake":
            key, status = payload["stored"]["condition"]["condition_id"], payload["stored"]["registration"]["status"]
            if key not in wakes and status != "registered":
                text = f"wake condition {key!r} changes to {status} but was never registered"
                out.append(("wake_never_registered", seq, text + lost))
            wakes.add(key)
        elif record.kind == "member_joined":
            members.add(payload["member"]["run_id"])
        elif record.kind == "member_left":
            key = payload["member"]["run_id"]
            if key in members:
                members.discard(key)
            else:
                text = f"run {key!r} leaves but is not a member (the SDK's leave_member refuses this)"
                out.append(("member_left_not_member", seq, text + lost))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_order_checks_agree_with_the_records_read_one_by_one(tmp_path, seed):
    # the sample with records deleted here and there (first records of messages, wakes and
    # memberships among them) and some payloads damaged; check() against a plain reading
    import random

    path = tmp_path / "holes.db"
    shutil.copyfile(SAMPLE_DB, path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT pool_id, seq FROM agent_pool_records WHERE seq > 2").fetchall()
    for pool_id, seq in rng.sample(rows, len(rows) // 4):
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq))
    rows = conn.execute("SELECT pool_id, seq FROM agent_pool_records WHERE seq > 2").fetchall()
    for pool_id, seq in rng.sample(rows, 6):
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = '{\"type\": oops' WHERE pool_id = ? AND seq = ?",
            (pool_id, seq),
        )
    conn.commit()
    conn.close()
    db = poolscope.open(path, cache=False)
    try:
        found = [(a.code, a.seq, a.message) for a in db.check() if a.code in ORDER_CODES]
        expected = []
        for pool_id in db.pool_ids:
            expected += _order_anomalies_by_hand(db.pool(pool_id))
    finally:
        db.close()
    assert {code for code, _, _ in expected} == set(ORDER_CODES)  # the holes made every kind of finding
    assert any("damaged record at seq" in text for _, _, text in expected)
    assert found == expected
