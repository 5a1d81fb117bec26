"""The explorer's logic, driven from Python: panels against the SDK's own
snapshots (the oracle) and against ``pool.snapshot`` / ``pool.diff``, jumps
against seqs computed independently from ``records_df``, live mode against a
``PoolStore`` writer.  The browser rendering is tests/test_browser.py."""

from __future__ import annotations

import html
import json
import random
import sqlite3
import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from helpers import SAMPLE_DB, add_rows_no_pool_reads, raw_snapshot_lines

import poolscope
from poolscope import wire
from poolscope.explore import MESSAGE_FAILURES, TABLE_ROWS, WAKE_FAILURES, Explorer

EVERY_KIND_AND_STATUS = (
    [(k, None) for k in wire.KINDS]
    + [(None, s) for s in dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES)]
    + [("run_message", "failed"), ("wake", "failed"), ("wake", "timed_out"), ("run_message", "registered")]
)


@pytest.fixture(scope="module")
def sample() -> Iterator[Explorer]:
    """One explorer on sample_data/demo.db for the read-only tests (check disabled: faster)."""
    with poolscope.open(SAMPLE_DB) as db:
        yield poolscope.explore(db, check=False)


def frame(pool) -> pd.DataFrame:
    df = pool.records_df()
    df["delivered"] = [
        set(d) if isinstance(d, (list, tuple, np.ndarray)) else set() for d in df["delivered_to"].tolist()
    ]
    return df


def expected_mask(df: pd.DataFrame, kind=None, status=None, run=None, agent=None) -> np.ndarray:
    """The documented filter semantics, computed from records_df alone."""
    m = np.ones(len(df), dtype=bool)
    if kind:
        m &= (df["kind"] == kind).to_numpy()
    if status:
        m &= ((df["message_status"] == status) | (df["wake_status"] == status)).to_numpy()

    def of_runs(runs: set) -> np.ndarray:
        return (
            df["run_id"].isin(runs)
            | df["sender"].isin(runs)
            | ((df["target_type"] == "run") & df["target_id"].isin(runs))
            | df["delivered"].map(lambda d: bool(d & runs))
        ).to_numpy()

    if run:
        m &= of_runs({run})
    if agent:
        runs = set(df.loc[df["agent_id"] == agent, "run_id"].astype(str))
        m &= (
            (df["agent_id"] == agent).to_numpy()
            | ((df["target_type"] == "agent") & (df["target_id"] == agent)).to_numpy()
            | of_runs(runs)
        )
    return m


def expected_jump(df: pd.DataFrame, mask: np.ndarray, cursor: int, forward: bool) -> int | None:
    seqs = df["seq"].to_numpy()
    hits = seqs[mask & ((seqs > cursor) if forward else (seqs < cursor))]
    if not len(hits):
        return None
    return int(hits.min() if forward else hits.max())


# ------------------------------------------------------------ snapshot panels
@pytest.mark.slow
def test_panels_match_the_sdk_snapshot_at_every_cursor(oracle):
    explorer = poolscope.explore(oracle / "pool.db", check=False)
    seen = 0
    for pool_id, cursor, text in sorted(raw_snapshot_lines(oracle), key=lambda line: line[0]):
        if explorer.pool.pool_id != pool_id:
            explorer.select_pool(pool_id)
        explorer.set_cursor(cursor)
        sdk = json.loads(text)
        shown = explorer.shown
        assert shown["pool_id"] == pool_id and shown["cursor"] == cursor == explorer.cursor
        assert shown["member_ids"] == [m["run_id"] for m in sdk["members"]]
        assert shown["counts"] == {
            "members": len(sdk["members"]),
            "topics": len(sdk["topics"]),
            "messages": len(sdk.get("messages", [])),
            "wakes": len(sdk.get("wakes", [])),
        }
        statuses = pd.Series([m["receipt"]["status"] for m in sdk.get("messages", [])], dtype=object)
        assert shown["message_statuses"] == statuses.value_counts().to_dict()
        assert len(shown["latest_messages"]) == min(TABLE_ROWS, len(sdk.get("messages", [])))
        assert set(shown["latest_messages"]) <= {m["message"]["message_id"] for m in sdk.get("messages", [])}
        counts = explorer.counts_panel.value
        assert f"data-cursor='{cursor}'" in counts and f"data-members='{len(sdk['members'])}'" in counts
        for member in sdk["members"][:50]:
            assert html.escape(member["run_id"]) in explorer.members_panel.value
        for topic in sdk["topics"][:100]:
            assert html.escape(topic) in explorer.topics_panel.value
        seen += 1
    assert seen > 0


def test_json_panel_renders_the_sdk_text_only_when_open(oracle):
    explorer = poolscope.explore(oracle / "pool.db", check=False)
    lines = list(raw_snapshot_lines(oracle))
    picks = sorted(lines[:: max(1, len(lines) // 12)], key=lambda line: line[0])
    assert explorer.json_panel.selected_index is None and explorer.json_view.value == ""
    explorer.json_panel.selected_index = 0
    for pool_id, cursor, text in picks:
        if explorer.pool.pool_id != pool_id:
            explorer.select_pool(pool_id)
        explorer.set_cursor(cursor)
        assert f"data-cursor='{cursor}'>{html.escape(text)}</pre>" in explorer.json_view.value
    explorer.json_panel.selected_index = None
    assert explorer.json_view.value == ""
    explorer.step(-1)
    assert explorer.json_view.value == ""  # closed: nothing rendered on a move


def test_tables_show_the_latest_items_first_and_count_the_rest(sample):
    pool = sample.pool
    k = pool.head // 2
    sample.set_cursor(k)
    snap = pool.snapshot(k)
    order = np.argsort(snap.messages.seqs)[::-1]
    expected = [snap.messages.ids[i] for i in order[:TABLE_ROWS]]
    assert sample.shown["latest_messages"] == expected
    assert f"… {len(snap.messages) - TABLE_ROWS:,} more messages" in sample.messages_panel.value
    order = np.argsort(snap.wakes.seqs)[::-1]
    assert sample.shown["latest_wakes"] == [snap.wakes.ids[i] for i in order[:TABLE_ROWS]]
    positions = [sample.messages_panel.value.index(f"<td>{html.escape(i)}</td>") for i in expected]
    assert positions == sorted(positions)  # in that order on screen


def test_record_panel_shows_the_record_at_the_cursor(sample):
    pool = sample.pool
    for k in (1, 2, pool.head // 3, pool.head):
        sample.set_cursor(k)
        record = pool.records(after=k - 1, upto=k)[0]
        assert sample.shown["record_seq"] == k
        assert f"data-seq='{k}'" in sample.record_panel.value
        assert html.escape(json.dumps(record.to_dict(), indent=1, ensure_ascii=False)) in sample.record_panel.value


# ------------------------------------------------------------------- diffs
def test_diff_panel_is_the_diff_from_the_previous_position(sample):
    pool = sample.pool
    rng = random.Random(5)
    previous = sample.cursor
    for _ in range(25):
        k = rng.randint(1, pool.head)
        if k == previous:
            continue
        sample.set_cursor(k)
        expected = pool.diff(previous, k)
        assert sample.diff == expected and (sample.diff.a, sample.diff.b) == (previous, k)
        assert expected._repr_html_() in sample.diff_panel.value
        previous = k


def test_steps_and_buttons_move_one_record(sample):
    pool = sample.pool
    sample.set_cursor(10)
    sample.step_forward.click()
    assert sample.cursor == 11 and sample.shown["cursor"] == 11
    sample.step_back.click()
    sample.step_back.click()
    assert sample.cursor == 9
    sample.set_cursor(pool.head)
    sample.step_forward.click()
    assert sample.cursor == pool.head
    sample.set_cursor(sample.slider.min)
    sample.step(-1)
    assert sample.cursor == sample.slider.min


def test_set_cursor_rejects_a_cursor_outside_the_slider(sample):
    with pytest.raises(poolscope.CursorError):
        sample.set_cursor(sample.pool.head + 1)
    with pytest.raises(poolscope.CursorError):
        sample.set_cursor("12")


@pytest.mark.parametrize("kind,status", EVERY_KIND_AND_STATUS)
def test_jumps_land_on_the_next_and_previous_match(sample, kind, status):
    pool = sample.pool
    df = frame(pool)
    mask = expected_mask(df, kind, status)
    for start in (1, pool.head // 4, pool.head // 2, pool.head - 3, pool.head):
        for forward in (True, False):
            sample.set_cursor(start)
            want = expected_jump(df, mask, start, forward)
            got = sample.jump("next" if forward else "previous", kind=kind, status=status, run=None, agent=None)
            assert got == want, (kind, status, start, forward)
            assert sample.cursor == (want if want is not None else start)


def test_jumps_by_run_and_agent(sample):
    pool = sample.pool
    df = frame(pool)
    runs = sorted(df.loc[df["kind"] == "member_joined", "run_id"].astype(str).unique())
    agents = sorted(df["agent_id"].dropna().astype(str).unique())
    cases = [{"run": r, "agent": None} for r in runs[:: max(1, len(runs) // 4)]]
    cases += [{"run": None, "agent": a} for a in agents]
    cases += [
        {"run": runs[0], "agent": agents[0], "kind": "wake"},
        {"run": None, "agent": agents[-1], "status": "failed"},
    ]
    for case in cases:
        case = {"kind": None, "status": None, **case}
        mask = expected_mask(df, **case)
        for start in (1, pool.head // 3, 2 * pool.head // 3, pool.head):
            for forward in (True, False):
                sample.set_cursor(start)
                got = sample.jump("next" if forward else "previous", **case)
                assert got == expected_jump(df, mask, start, forward), (case, start, forward)


def test_the_match_buttons_jump_by_the_filter_widgets(sample):
    pool = sample.pool
    df = frame(pool)
    run = sorted(df.loc[df["kind"] == "member_joined", "run_id"].astype(str).unique())[0]
    mask = expected_mask(df, "run_message", None, run, None)
    seqs = df["seq"].to_numpy()
    assert mask.sum() > 1
    try:
        sample.kind_filter.value = "run_message"
        sample.run_filter.value = run
        assert sample.filters == {"kind": "run_message", "status": None, "run": run, "agent": None}
        sample.set_cursor(1)
        visited = []
        while True:
            before = sample.cursor
            sample.next_match.click()
            if sample.cursor == before:
                break
            visited.append(sample.cursor)
        assert visited == seqs[mask].tolist()
        sample.prev_match.click()
        assert sample.cursor == visited[-2]
        sample.set_cursor(1)
        assert sample.jump("next", kind="wake") == expected_jump(df, expected_mask(df, "wake", None, run), 1, True)
    finally:
        for control in (sample.kind_filter, sample.status_filter, sample.run_filter, sample.agent_filter):
            control.value = ""


def test_next_failure_is_the_first_failure_after_the_cursor(oracle):
    explorer = poolscope.explore(oracle / "pool.db", check=False)
    for pool_id in explorer.db.pool_ids:
        explorer.select_pool(pool_id)
        df = frame(explorer.pool)
        failures = (
            ((df["kind"] == "run_message") & df["message_status"].isin(MESSAGE_FAILURES))
            | ((df["kind"] == "wake") & df["wake_status"].isin(WAKE_FAILURES))
        ).to_numpy()
        seqs = df["seq"].to_numpy()
        assert failures.any()
        explorer.set_cursor(1)
        walked = []
        while (k := explorer.next_failure()) is not None:
            walked.append(k)
        assert walked == seqs[failures].tolist()
        assert explorer.cursor == walked[-1]
        explorer.set_cursor(explorer.pool.head)
        back = []
        while (k := explorer.previous_failure()) is not None:
            back.append(k)
        assert back == seqs[failures & (seqs < explorer.pool.head)].tolist()[::-1]
        explorer.set_cursor(int(seqs[failures][0]) - 1)
        explorer.next_failure_button.click()
        assert explorer.cursor == int(seqs[failures][0])


def test_a_jump_with_no_match_leaves_the_cursor_and_says_so(sample):
    sample.set_cursor(sample.pool.head)
    assert sample.jump("next", kind="wake", status=None) is None
    assert sample.cursor == sample.pool.head
    assert "no record with kind=wake after cursor" in sample.status_line.value
    with pytest.raises(ValueError):
        sample.jump("sideways")
    with pytest.raises(ValueError):
        sample.jump("next", kind="no_such_kind")


# -------------------------------------------------------------- pools, timeline
def test_pool_picker_switches_pool_and_resets_the_slider():
    explorer = poolscope.explore(SAMPLE_DB, check=False)
    db = explorer.db
    first, second = db.pool_ids[0], db.pool_ids[1]
    assert explorer.pool.pool_id == first
    explorer.set_cursor(40)
    explorer.pool_picker.value = second
    pool = db.pool(second)
    assert explorer.pool is pool
    assert (explorer.slider.min, explorer.slider.max, explorer.cursor) == (pool.index.seqs[0], pool.head, pool.head)
    assert (explorer.play.min, explorer.play.max) == (explorer.slider.min, explorer.slider.max)
    assert explorer.shown["pool_id"] == second
    assert explorer.shown["member_ids"] == pool.snapshot().member_ids
    assert explorer.diff.pool_id == second
    explorer.select_pool(first)
    assert explorer.pool_picker.value == first and explorer.cursor == db.pool(first).head
    with pytest.raises(poolscope.PoolNotFoundError):
        explorer.select_pool("pool.nope")
    explorer.pool_picker.value = db.pool_ids[2]
    assert explorer.shown["pool_id"] == db.pool_ids[2]


def marker_left(explorer: Explorer) -> float:
    style = explorer.timeline_marker.value
    return float(style.split("::after{", 1)[1].split("left:calc(", 1)[1].split("%", 1)[0])


def test_timeline_is_redrawn_for_filters_but_only_its_marker_moves_with_the_cursor(sample):
    draws = sample.timeline_draws
    image = sample.timeline.value
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    head = sample.pool.head
    sample.set_cursor(head // 3)
    third = marker_left(sample)
    assert f"content:'{head // 3}'" in sample.timeline_marker.value
    sample.set_cursor(2 * head // 3)
    two_thirds = marker_left(sample)
    sample.set_cursor(head)
    end = marker_left(sample)
    assert sample.timeline_draws == draws and sample.timeline.value == image  # nothing redrawn or re-sent
    assert 0 < third < two_thirds < end < 100
    assert two_thirds - third == pytest.approx(end - two_thirds, rel=0.02)  # linear in the cursor
    sample.status_filter.value = "failed"
    try:
        assert sample.timeline_draws == draws + 1 and sample.timeline.value != image
    finally:
        sample.status_filter.value = ""
    assert sample.timeline.value == image and marker_left(sample) == end  # the figure kept from before


# ---------------------------------------------------------------- live mode
def member(i: int) -> dict:
    return {"run_id": f"run.live.{i}", "agent_id": "agent.live", "topics": ["topic.live"]}


def test_poll_extends_the_slider_and_follows_the_head(sample_copy):
    explorer = poolscope.explore(sample_copy, "pool.alpha", check=False)
    head = explorer.pool.head
    assert explorer.cursor == head
    store = poolscope.PoolStore(sample_copy)
    try:
        assert explorer.poll() == 0
        store.join_member("pool.alpha", member(1))
        assert explorer.poll() == 1
        assert explorer.slider.max == head + 1 and explorer.cursor == head + 1
        assert "run.live.1" in explorer.shown["member_ids"]
        assert [m["run_id"] for m in explorer.diff.joined] == ["run.live.1"]
        explorer.set_cursor(head - 5)  # not at the head: stay there
        store.join_member("pool.alpha", member(2))
        store.leave_member("pool.alpha", "run.live.1")
        assert explorer.poll() == 2
        assert explorer.slider.max == head + 3 and explorer.cursor == head - 5
        explorer.set_cursor(head + 3)
        assert explorer.shown["member_ids"] == explorer.pool.snapshot(head + 3).member_ids
        assert "run.live.2" in explorer.shown["member_ids"] and "run.live.1" not in explorer.shown["member_ids"]
    finally:
        store.close()


def test_live_mode_sees_records_appended_by_a_writer(sample_copy):
    explorer = poolscope.explore(sample_copy, "pool.bravo", live=True, interval=0.05, check=False)
    try:
        assert explorer.live
        head = explorer.pool.head
        store = poolscope.PoolStore(sample_copy)
        try:
            for i in range(3):
                store.join_member("pool.bravo", member(i))
        finally:
            store.close()
        done = threading.Event()
        for _ in range(400):  # bounded: at most ~20 s
            if explorer.slider.max == head + 3 and explorer.shown.get("cursor") == head + 3:
                done.set()
                break
            done.wait(0.05)
        assert done.is_set(), (explorer.slider.max, explorer.shown.get("cursor"), explorer.status_line.value)
        assert {"run.live.0", "run.live.1", "run.live.2"} <= set(explorer.shown["member_ids"])
        assert "live" in explorer.head_label.value
    finally:
        explorer.stop()
    assert not explorer.live and "live" not in explorer.head_label.value


@pytest.mark.parametrize("loader", ["db.refresh", "pool.refresh", "pool.follow"])
def test_poll_follows_records_loaded_by_another_refresh(sample_copy, loader):
    """Whoever loaded the new records first (another cell's refresh, follow()),
    poll shows the pool as it now is, not only when its own refresh found them."""
    with poolscope.explore(sample_copy, "pool.alpha", check=False) as explorer:
        head = explorer.pool.head
        store = poolscope.PoolStore(sample_copy)
        try:
            store.join_member("pool.alpha", member(1))
            store.join_member("pool.alpha", member(2))
        finally:
            store.close()
        pool = explorer.db.pool("pool.alpha")
        if loader == "db.refresh":
            assert explorer.db.refresh()["pool.alpha"] == 2
        elif loader == "pool.refresh":
            assert pool.refresh() == 2
        else:
            assert len(list(pool.follow(after=head, poll=0.01, limit=2))) == 2
        with poolscope.open(sample_copy, cache=False) as fresh:
            expected = fresh.pool("pool.alpha")
            assert expected.head == head + 2
            assert explorer.poll() == 2
            assert explorer.slider.max == expected.head and explorer.cursor == expected.head
            assert explorer.shown["cursor"] == expected.head
            assert explorer.shown["member_ids"] == expected.snapshot().member_ids
            assert f"head <b>{expected.head}</b>" in explorer.head_label.value
            assert explorer.jump("previous", kind=None, status=None, run="run.live.1", agent=None) == head + 1
            assert explorer.poll() == 0 and explorer.cursor == head + 1


def test_poll_folds_a_shown_what_if_again(tmp_path):
    """explore(what_if) in live mode: the what-if is folded again with the base's
    new records, and a run that now joins as a removed agent leaves it -- its
    earlier records too (the index is replaced, not appended to)."""
    path = tmp_path / "whatif.db"
    store = poolscope.PoolStore(path)
    try:
        store.open_pool("p", {})
        store.record_pool_created("p")
        store.join_member("p", {"run_id": "r1", "agent_id": "a"})  # 3
        store.join_member("p", {"run_id": "r2", "agent_id": "b"})  # 4: removed
        store.join_member("p", {"run_id": "r3", "agent_id": "a"})  # 5: removed once r3 joins as b
    finally:
        store.close()
    with poolscope.open(path) as db:
        alt = db.pool("p").without(agents=["b"])
        explorer = poolscope.explore(alt, check=False)
        try:
            assert explorer.pool is alt and explorer.slider.max == explorer.cursor == 5
            assert explorer.shown["member_ids"] == ["r1", "r3"]
            explorer.set_cursor(3)
            assert explorer.jump("next", kind=None, status=None, run="r3", agent=None) == 5
            writer = poolscope.PoolStore(path)
            try:
                writer.join_member("p", {"run_id": "r3", "agent_id": "b"})  # 6
                writer.join_member("p", {"run_id": "r4", "agent_id": "a"})  # 7
            finally:
                writer.close()
            with poolscope.open(path, cache=False) as fresh_db:
                fresh = fresh_db.pool("p").without(agents=["b"])
                assert fresh.index.seqs == [1, 2, 3, 7]
                draws = explorer.timeline_draws
                explorer.poll()
                assert explorer.timeline_draws == draws + 1  # the new fold's figure, not the old one's
                assert explorer.slider.max == fresh.head == 7 and explorer.cursor == 7
                assert explorer.shown["member_ids"] == fresh.snapshot().member_ids == ["r1", "r4"]
                assert f"head <b>{fresh.head}</b>" in explorer.head_label.value
                # the filters answer for the new fold: r3's records are gone, r4's are there
                explorer.set_cursor(3)
                assert explorer.jump("next", kind=None, status=None, run="r3", agent=None) is None
                assert explorer.jump("next", kind=None, status=None, run="r4", agent=None) == 7
                explorer.set_cursor(6)
                assert explorer.shown["member_ids"] == fresh.snapshot(6).member_ids == ["r1"]
                explorer.set_cursor(7)
                assert explorer.step(-1) == 3  # 5 and 6 left the what-if
                assert explorer.poll() == 0 and explorer.cursor == 3
            writer = poolscope.PoolStore(path)
            try:
                writer.join_member("p", {"run_id": "r1", "agent_id": "b"})  # 8: r1 leaves the what-if
            finally:
                writer.close()
            with poolscope.open(path, cache=False) as fresh_db:
                fresh = fresh_db.pool("p").without(agents=["b"])
                assert fresh.index.seqs == [1, 2, 7]
                explorer.poll()  # away from the head: the cursor stays, the state there is the new fold's
                # the log's head, though its last record left the what-if
                assert explorer.cursor == 3 and explorer.slider.max == fresh.head == 8
                assert explorer.shown["cursor"] == 3
                assert explorer.shown["member_ids"] == fresh.snapshot(3).member_ids == []
        finally:
            explorer.close()


def test_a_what_if_that_keeps_no_record_is_shown_not_its_base(tmp_path):
    """explore(what_if) of a what-if that removed every record shows the what-if (nothing, the
    log's cursors), not its base pool: a history of no records is falsy, and the explorer took
    ``histories.get(p) or db.pool(p)``, silently showing the base's members instead."""
    path = tmp_path / "empty-whatif.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("p", {})
        store.record_pool_created("p")
        store.join_member("p", {"run_id": "r1", "agent_id": "a"})
    with poolscope.open(path, cache=False) as db:
        base = db.pool("p")
        for alt in (base.without(records=[1, 2, 3]), base.without(runs=["r1"])):
            with poolscope.explore(alt, check=False) as explorer:
                assert explorer.pool is alt and explorer.slider.max == alt.head == base.head == 3
                explorer.set_cursor(3)
                expected = [] if len(alt) == 0 else alt.snapshot(3).member_ids
                assert explorer.shown["member_ids"] == expected == []
                assert explorer.shown["counts"] == (None if len(alt) == 0 else alt.snapshot(3).counts())


def test_poll_shows_the_first_pool_written_into_an_empty_database(tmp_path):
    path = tmp_path / "later.db"
    poolscope.PoolStore(path).close()  # the SDK's tables, no pool yet
    with poolscope.explore(path, check=False) as explorer:
        assert explorer.pool is None and explorer.poll() == 0 and list(explorer.pool_picker.options) == []
        store = poolscope.PoolStore(path)
        try:
            store.open_pool("q", {})
            store.open_pool("p", {})
            store.record_pool_created("p")
            store.join_member("p", {"run_id": "r1", "agent_id": "a"})
        finally:
            store.close()
        with poolscope.open(path, cache=False) as fresh:
            ids, first = fresh.pool_ids, fresh.pool(fresh.pool_ids[0])
            assert ids == ["p", "q"]
            assert explorer.poll() == len(first) == 3
            assert list(explorer.pool_picker.options) == ids and explorer.pool_picker.value == "p"
            assert explorer.pool.pool_id == "p" and explorer.slider.max == explorer.cursor == first.head
            assert explorer.shown["member_ids"] == first.snapshot().member_ids == ["r1"]
            assert "no pool" not in explorer.status_line.value
            assert explorer.poll() == 0


# ------------------------------------------------------------ damage, anomalies
def test_damaged_records_are_shown_not_fatal(sample_copy):
    with sqlite3.connect(sample_copy) as conn:
        conn.execute("UPDATE agent_pool_records SET payload_json = '{oops' WHERE pool_id = 'pool.alpha' AND seq = 40")
        conn.execute("UPDATE agent_pool_records SET payload_json = '[' WHERE pool_id = 'pool.bravo' AND seq = 1")
    db = poolscope.open(sample_copy)
    explorer = poolscope.explore(db, check=True)
    expected = [a for a in db.check() if a.pool_id == "pool.alpha"]
    assert expected and f"data-count='{len(expected)}'" in explorer.anomalies_panel.value
    assert any(a.seq == 40 for a in expected) and "<td class='num'>40</td>" in explorer.anomalies_panel.value
    explorer.set_cursor(40)
    assert "damaged" in explorer.record_panel.value and "damaged record at seq 40" in explorer.counts_panel.value
    assert explorer.shown["counts"] == db.pool("pool.alpha").snapshot(40, strict=False).counts()
    explorer.set_cursor(1)
    assert explorer.jump("next", kind="damaged", status=None) == 40
    explorer.select_pool("pool.bravo")  # its pool_opened is unreadable: no snapshot anywhere
    assert explorer.shown["counts"] is None and "has not been opened" in explorer.counts_panel.value


def test_the_anomalies_of_rows_no_pool_reads_are_shown_with_the_file_wide_ones(small_db, tmp_path):
    """Rows whose pool_id is a BLOB or TEXT that is not UTF-8 are in no pool, and doctor reports each
    as ``bad_pool_id``; the panel kept pool_id None only, so these errors were never shown.  Now they
    are, on every pool, with a pool column naming them (as the report lists them)."""
    import shutil

    path = tmp_path / "odd.db"
    shutil.copy(small_db, path)
    add_rows_no_pool_reads(path)
    with poolscope.open(path, cache=False) as db:
        found = db.check()
        pool_ids = db.pool_ids
    outside = [a for a in found if a.pool_id not in pool_ids]
    assert sorted(a.code for a in outside if a.pool_id is not None) == ["bad_pool_id", "bad_pool_id"]
    explorer = poolscope.explore(path, check=True)
    for pool_id in pool_ids[:2]:
        explorer.select_pool(pool_id)
        mine = [a for a in found if a.pool_id == pool_id] + outside
        shown = explorer.anomalies_panel.value
        assert f"data-count='{len(mine)}'" in shown and "<th>pool</th>" in shown
        for anomaly in outside:
            assert anomaly.message in html.unescape(shown)
            if anomaly.pool_id is not None:
                assert f"<td>{anomaly.pool_id}</td>" in html.unescape(shown)


def test_check_runs_on_demand(sample_copy):
    explorer = poolscope.explore(sample_copy, check=False)
    assert explorer.anomalies is None and "not checked" in explorer.anomalies_panel.value
    assert explorer.check_button.layout.display != "none"
    found = explorer.run_check()
    assert found == explorer.db.check() and "data-count=" in explorer.anomalies_panel.value
    assert explorer.check_button.layout.display == "none"


# ------------------------------------------------------------------ display
def test_the_explorer_displays_as_its_widget(sample):
    bundle = sample._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == sample.widget.model_id
    assert isinstance(sample.widget, __import__("ipywidgets").VBox)
    assert "poolscope.Explorer" in repr(sample)
    assert sample.slider.continuous_update is False


def test_a_closed_explorer_displays_as_text(sample_copy, monkeypatch):
    """``with poolscope.explore(path) as ex: ...`` then ``ex`` in a cell: a line of text, no traceback."""
    import IPython.display

    with poolscope.explore(sample_copy, "pool.alpha", check=False) as explorer:
        assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    text = {"text/plain": f"{explorer!r} (closed)"}
    assert explorer._repr_mimebundle_() == text and "poolscope.Explorer" in text["text/plain"]
    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **kw: shown.append((a, kw)))
    explorer._ipython_display_()  # what IPython calls first
    assert shown == [((text,), {"raw": True})]


def test_empty_database_shows_a_message(tmp_path):
    path = tmp_path / "empty.db"
    poolscope.PoolStore(path).close()
    explorer = poolscope.explore(path)
    assert explorer.pool is None and "no pool" in explorer.status_line.value
    # moving the cursor says there is no pool, in a typed error; the rest does nothing
    for move in (
        lambda: explorer.step(),
        lambda: explorer.jump("next", kind="wake"),
        lambda: explorer.next_failure(),
        lambda: explorer.set_cursor(1),
    ):
        with pytest.raises(poolscope.CursorError, match="no pool selected"):
            move()
    explorer.select("msg.1")
    explorer.kind_filter.value = "wake"
    assert explorer.selected == "msg.1" and explorer.pool is None and explorer.cursor == 0


# ------------------------------------------------------------- in a kernel
@pytest.mark.slow
def test_in_a_kernel_it_displays_as_a_widget_and_follows_on_the_event_loop(sample_copy):
    """The last expression of a cell shows the app; live mode polls on the kernel's own loop.
    (The kernel: ipykernel's own "python3", this interpreter; see the root conftest.py.)"""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        f"import asyncio, poolscope\nex = poolscope.explore({str(sample_copy)!r}, 'pool.alpha', live=True, interval=0.05)\n"
        "head = ex.pool.head\nex",
        "print(type(ex._task).__name__, ex._thread is None)",
        f"store = poolscope.PoolStore({str(sample_copy)!r})\n"
        "store.join_member('pool.alpha', {'run_id': 'run.kernel', 'agent_id': 'agent.kernel', 'topics': []})\n"
        "store.close()\n"
        "for _ in range(400):\n"
        "    await asyncio.sleep(0.05)\n"
        "    if ex.shown['cursor'] == head + 1:\n"
        "        break\n"
        "print(ex.slider.max - head, ex.shown['cursor'] - head, 'run.kernel' in ex.shown['member_ids'])",
        "ex.stop()\nprint(ex.live)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    shown = nb.cells[0].outputs
    assert [o["output_type"] for o in shown] == ["display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
    texts = ["".join(o.get("text", "") for o in cell.outputs).strip() for cell in nb.cells[1:]]
    assert texts == ["Task True", "1 1 True", "False"]


# ------------------------------------------------------------- extension
def test_a_panel_is_one_small_piece_added_to_the_explorer(sample):
    """A new panel: a class with an update(view, changed); the explorer draws it
    at once and again on each change it follows, and lays it out in its area."""
    from poolscope import render
    from poolscope.explore import HTMLPanel

    seen = []

    class Heads(HTMLPanel):
        name, title, follows = "heads", "heads of every pool", frozenset({"pool", "cursor"})

        def update(self, view, changed):
            seen.append((view.pool.pool_id, view.cursor, frozenset(changed)))
            self.widget.value = f"<div data-cursor='{view.cursor}'>{render.summary_html(view.db.summary())}</div>"

    panel = sample.add_panel(Heads())
    try:
        assert sample.panels["heads"] is panel and panel.widget in sample.widget.children
        assert seen[-1][:2] == (sample.pool.pool_id, sample.cursor)  # drawn at once
        k = sample.pool.head // 2
        sample.set_cursor(k)
        assert seen[-1][:2] == (sample.pool.pool_id, k) and "cursor" in seen[-1][2]
        assert f"data-cursor='{k}'" in panel.widget.value and "ps-summary" in panel.widget.value
        draws = len(seen)
        sample.status_filter.value = "failed"  # a change it does not follow
        sample.status_filter.value = ""
        assert len(seen) == draws
        with pytest.raises(ValueError):
            sample.add_panel(Heads())  # one panel per name
    finally:
        assert sample.remove_panel("heads") is panel
    assert "heads" not in sample.panels and panel.widget not in sample.widget.children


def _descriptors_of(path) -> int:
    """How many descriptors this process has open on the file at ``path``."""
    import os

    want = os.stat(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            info = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        count += (info.st_dev, info.st_ino) == (want.st_dev, want.st_ino)
    return count


def test_close_closes_the_widgets_and_the_database_the_explorer_opened(sample_copy):
    """An explorer made from a path opened the database itself: ``close()`` (or
    the end of a ``with`` block) closes it and every widget; an explorer of a
    database the caller opened leaves that database open."""
    from ipywidgets.widgets.widget import _instances

    before = _descriptors_of(sample_copy)
    with poolscope.explore(sample_copy, "pool.bravo") as ex:
        ex.set_cursor(300)
        assert _descriptors_of(sample_copy) == before + 1
        widgets = [ex.widget, ex.slider, ex.pool_picker, ex.timeline, ex.json_panel, ex.json_view]
        assert all(w.comm is not None for w in widgets)
        live = len(_instances)
    assert _descriptors_of(sample_copy) == before
    assert all(w.comm is None for w in widgets)
    assert len(_instances) < live - 20  # every widget of the app, not only the outer box
    with pytest.raises(poolscope.DatabaseClosedError):
        ex.db.conn.execute("SELECT 1")

    with poolscope.open(sample_copy) as db:
        ex = poolscope.explore(db, "pool.alpha")
        ex.close()
        assert db.pool("pool.alpha").snapshot(5).cursor == 5  # the caller's database is still open
        assert ex.widget.comm is None


def test_an_explorer_that_cannot_be_made_closes_the_database_it_opened(sample_copy):
    before = _descriptors_of(sample_copy)
    with pytest.raises(poolscope.PoolNotFoundError):
        poolscope.explore(sample_copy, "no.such.pool")
    assert _descriptors_of(sample_copy) == before


def test_a_key_that_is_no_id_and_a_panel_that_is_none_are_typed_errors(sample_db):
    ex = poolscope.explore(sample_db, "pool.alpha", check=False)
    ex.select("msg.alpha.17")
    for key in (5, ["msg.alpha.17"], b"msg.alpha.17"):
        with pytest.raises(poolscope.InvalidInputError, match="^key must be"):
            ex.select(key)
    assert ex.selected == "msg.alpha.17" and ex.panels["why"].key_box.value == "msg.alpha.17"  # unchanged
    with pytest.raises(poolscope.InvalidInputError, match="^panel must be a Panel"):
        ex.add_panel(None)
    ex.close()


def test_a_closed_explorer_follows_nothing(sample_copy):
    ex = poolscope.explore(sample_copy, "pool.alpha", check=False)
    ex.close()
    with pytest.raises(poolscope.DatabaseClosedError):
        ex.start(0.05)
    assert not ex.live


def test_checking_at_once_is_decided_by_the_records_not_the_heads(tmp_path, monkeypatch):
    """A small database whose seqs start late (a restored tail) is checked at once."""
    from poolscope.explore import app

    path = tmp_path / "late.db"
    with poolscope.PoolStore(path) as store:
        store.open_pool("pool.late", {})
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE agent_pool_records SET seq = 1000001")
    conn.close()
    monkeypatch.setattr(app, "CHECK_EAGER_RECORDS", 1000)
    with poolscope.open(path, cache=False) as db:
        assert db.heads() == {"pool.late": 1000001} and db.record_counts() == {"pool.late": 1}
        ex = poolscope.explore(db, check=None)
        assert ex.anomalies is not None and {a.code for a in ex.anomalies} >= {"seq_gap"}
        ex.close()
