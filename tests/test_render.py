"""One renderer and one palette: the explorer, the report and the ``_repr_html_``
methods show the same fragments, escape every value, shorten long ids (the full
id in a tooltip) and colour a status the same way as the plots."""

from __future__ import annotations

import html
import re

import matplotlib

matplotlib.use("Agg")

import pytest
from helpers import SAMPLE_DB, long_ids_database

import poolscope
from poolscope import palette, plot, render, wire
from poolscope.history import Record
from poolscope.report import render as report_page


@pytest.fixture
def db():
    database = poolscope.open(SAMPLE_DB)
    yield database
    database.close()


def test_the_palette_is_the_plots_and_the_explorers(db):
    # the plots use the palette's colours, and a status shared by messages and wakes has one colour
    assert plot.MESSAGE_COLORS is palette.MESSAGE_COLORS and plot.WAKE_COLORS is palette.WAKE_COLORS
    for name in set(wire.MESSAGE_STATUSES) & set(wire.WAKE_STATUSES):
        assert palette.MESSAGE_COLORS[name] == palette.WAKE_COLORS[name]
    # every status of the SDK has a colour and a description
    for namespace, names in (("message", wire.MESSAGE_STATUSES), ("wake", wire.WAKE_STATUSES)):
        for name in names:
            assert palette.status_color(name, namespace) != palette.INK
            assert palette.describe(name, namespace)
    # the explorer's tables colour timed_out as the plots do (it was orange there, red here)
    ex = poolscope.explore(db, "pool.alpha", check=False)
    statuses = ex.shown["message_statuses"]
    assert "timed_out" in statuses or "failed" in statuses
    counts = ex.counts_panel.value
    for name in statuses:
        assert f"color:{palette.MESSAGE_COLORS[name]}" in counts
    shown = re.findall(r"style='color:(#[0-9a-f]{6})[^']*'[^>]*>([a-z_]+)</span>", ex.messages_panel.value)
    assert shown and all(colour == palette.MESSAGE_COLORS[name] for colour, name in shown)


@pytest.mark.slow
def test_explorer_report_and_repr_share_the_fragments(db):
    pool = db.pool("pool.bravo")
    snap = pool.snapshot()
    fragment = render.snapshot_html(snap)
    assert snap._repr_html_() == fragment
    assert render.snapshot_html(snap, opened=True) in report_page(db, ["pool.bravo"])
    d = pool.diff(10, 60)
    assert d._repr_html_() == render.diff_html(d)
    ex = poolscope.explore(pool, check=False)  # a pool: its database, that pool first
    assert ex.pool is pool
    ex.set_cursor(60)
    ex.set_cursor(10)
    assert render.diff_html(pool.diff(60, 10)) in ex.diff_panel.value
    assert render.members_table(pool.snapshot(10).members) == ex.members_panel.value
    assert render.items_table(pool.snapshot(10).messages) == ex.messages_panel.value
    assert db._repr_html_().startswith(f"<div class='poolscope-database'><b>{html.escape(str(db.path))}</b>")


def test_database_repr_html_escapes_its_path(tmp_path):
    folder = tmp_path / "<b onmouseover='x'>&"
    folder.mkdir()
    path = folder / "a<i>.db"
    path.write_bytes(SAMPLE_DB.read_bytes())
    with poolscope.open(path) as db:
        text = db._repr_html_()
    assert "<b onmouseover" not in text and "<i>" not in text
    assert html.escape(str(path)) in text


# a hostile input (issue 10): a hang (or the 88 s drawing of long ids coming back) fails instead of stalling
@pytest.mark.timeout(30, method="thread")
def test_long_ids_are_shortened_with_the_full_id_in_a_tooltip():
    long = "run." + "x" * 4096 + "<&>"
    shown = render.ident(long)
    assert f"title='{html.escape(long)}'" in shown
    visible = re.sub(r"<[^>]+>", "", shown.split(">", 1)[1])
    assert len(html.unescape(visible)) <= render.ID_CHARS
    assert html.unescape(visible).startswith("run.x") and html.unescape(visible).endswith("<&>")
    assert render.ident("run.7") == "run.7"
    assert render.shorten("a" * 10, 4) == "aa…a" and len(render.shorten("b" * 1000)) == render.ID_CHARS


def test_every_value_is_escaped():
    evil = "<script>alert(1)</script>"
    assert "<script>" not in render.status(evil)
    assert "<script>" not in render.table([evil], [[render.esc(evil)]], 3, evil)
    assert "<script>" not in render.members_table([{"run_id": evil, "agent_id": evil, "topics": [evil]}])
    assert "<script>" not in render.topics_list([evil])


def test_a_records_repr_shortens_its_payload():
    payload = {"type": "run_message", "stored": {"text": "y" * 100_000}}
    record = Record("pool." + "p" * 10_000, 7, "run_message", payload)
    text = repr(record)
    assert len(text) < 400
    assert text.startswith("Record(") and "cursor=7" in text and "run_message" in text
    assert "…" in text and "chars" in text
    small = Record("p", 2, "pool_created", {"type": "pool_created"})
    assert repr(small) == "Record(pool_id='p', cursor=2, kind='pool_created', payload={'type': 'pool_created'})"


@pytest.fixture(scope="module")
def long_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.db"
    pool_id, runs = long_ids_database(path)
    return path, pool_id, runs


def visible_text(fragment: str) -> str:
    """What a browser shows of an HTML fragment (tags and their attributes left out)."""
    return html.unescape(re.sub(r"<[^>]*>", " ", fragment))


# a hostile input (issue 10): a hang (or the 88 s drawing of long ids coming back) fails instead of stalling
@pytest.mark.timeout(30, method="thread")
def test_long_ids_in_the_report_and_the_explorer(long_db, tmp_path):
    path, pool_id, runs = long_db
    from poolscope.report import report

    text = report(path, tmp_path / "long.html").read_text(encoding="utf-8")
    shown = visible_text(text)
    # no id is shown whole: the longest word a reader sees is a shortened one
    assert max(len(word) for word in shown.split()) <= 200
    # the full ids are in the tooltips (title attributes) of the snapshot's members table and the headings
    titles = {html.unescape(t) for t in re.findall(r"title='([^']*)'", text)}
    assert pool_id in titles
    with poolscope.open(path) as db:
        listed = db.pool(pool_id).snapshot().member_ids[:50]  # the members listed: the first 50, in the SDK's order
    assert set(listed) <= titles and set(listed) <= set(runs)
    # the explorer: the same, panel by panel
    ex = poolscope.explore(path, check=False)
    for panel in (ex.counts_panel, ex.members_panel, ex.status_line):
        assert max(len(word) for word in visible_text(panel.value).split()) <= 200
    assert all(f"title='{html.escape(run)}'" in ex.members_panel.value for run in ex.shown["member_ids"][:50])
    assert ex.shown["member_ids"][:50] == listed
    assert len(repr(ex)) < 300
    ex.db.close()


# a hostile input (issue 10): a hang (or the 88 s drawing of long ids coming back) fails instead of stalling
@pytest.mark.timeout(30, method="thread")
def test_the_progress_bar_names_a_long_pool_shortly(long_db):
    import io

    from poolscope.load import _progress_bar

    _, pool_id, _ = long_db
    bar = _progress_bar(pool_id, 10, True)
    try:
        bar.fp = io.StringIO()
        assert len(bar.desc) <= len("loading ") + 60 and bar.desc.startswith("loading pool.ppp")
    finally:
        bar.close()


BIDI = "\u202e"


def test_a_bidi_control_in_an_id_reaches_no_page_raw(tmp_path):
    """An id may hold a right-to-left override (the SDK takes it: it is no control character):
    on a page it would reverse what follows it ("3 records" read backwards).  Every page and
    fragment shows it as its escape, as the terminal does."""
    from poolscope.report import report

    path = tmp_path / "bidi.db"
    pool_id, run = f"pool.{BIDI}evil", f"run.{BIDI}x"
    with poolscope.PoolStore(path) as store:
        store.open_pool(pool_id, {})
        store.join_member(pool_id, {"run_id": run, "agent_id": "agent.a"})
    with poolscope.open(path, cache=False) as db:
        pool = db.pool(pool_id)
        assert pool.snapshot().member_ids == [run]  # the id itself is kept as stored
        pages = {
            "database": db._repr_html_(),
            "snapshot": pool.snapshot()._repr_html_(),
            "diff": pool.diff(0, pool.head)._repr_html_(),
            "report": report(db, tmp_path / "bidi.html").read_text(encoding="utf-8"),
        }
        ex = poolscope.explore(db, check=False)
        pages |= {"status": ex.status_line.value, "counts": ex.counts_panel.value, "members": ex.members_panel.value}
        ex.close()
    fleet = poolscope.fleet([path])
    pages["fleet"] = fleet._repr_html_()
    fleet.close()
    for name, page in pages.items():
        assert BIDI not in page, name
    assert "\\u202eevil" in pages["database"] and "\\u202ex" in pages["members"]
