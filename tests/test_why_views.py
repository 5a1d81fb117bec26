"""The why views in the explorer and the report: a selected message, wake or run
shows its history and explanation; the report explains the latest failures and
draws the flow matrix."""

from __future__ import annotations

import html

import pytest
from helpers import SAMPLE_DB

import poolscope
from poolscope.report import render
from poolscope.why import recent_failures


@pytest.fixture(scope="module")
def db():
    with poolscope.open(SAMPLE_DB) as database:
        yield database


def test_selecting_a_message_shows_its_history_and_explanation_at_the_cursor(db):
    ex = poolscope.explore(db, "pool.bravo", check=False)
    pool = db.pool("pool.bravo")
    panel = ex.panels["why"]
    assert "type or pick" in panel.html.value and panel.shown == {}
    failed = pool.messages_df().query("status == 'failed'").iloc[-1]
    ex.select(failed.message_id)
    assert panel.key_box.value == failed.message_id
    history = pool.history_of(failed.message_id, ex.cursor)
    assert panel.shown["cursors"] == history["cursor"].tolist()
    assert panel.shown["sentences"] == [s.text for s in pool.explain(failed.message_id, ex.cursor).sentences]
    assert html.escape(failed.message_id) in panel.html.value and "failed" in panel.html.value
    # it follows the cursor: before the message existed, the panel says so (with suggestions, no error)
    ex.set_cursor(int(failed.first_seq) - 1)
    assert panel.shown == {"key": failed.message_id, "found": False}
    assert "no record names" in panel.html.value
    ex.set_cursor(pool.head)
    assert panel.shown["found"]
    # typing in the box selects (the one handler), a run too
    run = str(pool.members_df().run_id.iloc[0])
    panel.key_box.value = run
    assert ex.selected == run and panel.shown["key_type"] == "run"
    assert panel.shown["cursors"] == pool.history_of(run)["cursor"].tolist()
    # the box offers the message, wake or run of the record at the cursor first, then the
    # snapshot's latest messages and wakes and its members
    for record in pool.records(after=40, upto=80):
        ex.set_cursor(record.cursor)
        payload = record.payload
        key = {
            "run_message": lambda: payload["stored"]["message"]["message_id"],
            "wake": lambda: payload["stored"]["registration"]["condition_id"],
            "member_joined": lambda: payload["member"]["run_id"],
            "member_left": lambda: payload["member"]["run_id"],
        }.get(record.kind)
        assert key is not None, record.kind  # only keyed kinds after the first records
        offered = panel.key_box.options
        assert offered[0] == key(), record.cursor
        snap = pool.snapshot(record.cursor)
        assert set(snap.member_ids[:15]) <= set(offered)
        assert {m["id"] for m in snap.messages.latest(15)} <= set(offered)
    ex.select_pool("pool.alpha")
    assert ex.selected is None and panel.shown == {}


def test_a_what_if_is_explored_as_itself(db):
    pool = db.pool("pool.alpha")
    run = str(pool.members_df().run_id.iloc[0])
    alt = pool.without(runs=run)
    ex = poolscope.explore(alt, check=False)
    assert ex.pool is alt
    assert run not in ex.shown["member_ids"]
    assert ex.shown["counts"] == alt.snapshot().counts()
    ex.select(run)
    assert (
        ex.panels["why"].shown["found"] is False
        or ex.panels["why"].shown["cursors"] == alt.history_of(run)["cursor"].tolist()
    )


def test_the_report_explains_the_latest_failures_and_draws_the_flows(db):
    page = render(db, ["pool.bravo"])
    assert "<h3>Failures explained</h3>" in page and "<h3>Who messages whom</h3>" in page
    assert "alt='flows of pool.bravo'" in page
    pool = db.pool("pool.bravo")
    failures = recent_failures(pool, 10)
    assert len(failures) == 10
    assert failures["cursor"].is_monotonic_decreasing
    for row in failures.itertuples():
        explanation = pool.explain(row.id, key_type=row.kind)
        assert html.escape(explanation.sentences[0].text) in page
    # the failures listed are the latest ones: nothing failing is more recent than the 10th
    messages = pool.messages_df()
    failing = messages[messages.status.isin(["failed", "timed_out", "expired"])]
    latest = failing.last_seq.sort_values(ascending=False).head(10).tolist()
    wakes = pool.wakes_df()
    failing_wakes = wakes[wakes.status.isin(["timed_out", "failed"])]
    latest += failing_wakes.last_seq.sort_values(ascending=False).head(10).tolist()
    assert failures["cursor"].tolist() == sorted(latest, reverse=True)[:10]


def test_reprs_use_the_one_renderer(db):
    pool = db.pool("pool.charlie")
    key = pool.messages_df().message_id.iloc[3]
    assert "ps-history" in pool.history_of(key)._repr_html_()
    assert "ps-why" in pool.explain(key)._repr_html_()
    alt = pool.without(records=[int(pool.history_of(key)["cursor"].iloc[0])])
    assert "ps-whatif" in alt._repr_html_()
    assert "ps-compare" in poolscope.compare(pool, alt)._repr_html_()
