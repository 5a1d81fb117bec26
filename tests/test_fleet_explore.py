"""poolscope.explore(fleet): pick a source, then a pool."""

from __future__ import annotations

import shutil

import pytest

import poolscope
from poolscope.explore.fleet import FleetExplorer
from poolscope.generate import generate

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore-fleet")
    generate(folder / "a.db", pools=2, records=150, seed=21)
    generate(folder / "b.db", pools=3, records=200, seed=22)
    shutil.copyfile(folder / "a.db", folder / "c.db")
    return folder


@pytest.fixture
def hosts(folder):
    # per test: the databases a test opens are closed after it (tests/conftest.py)
    with poolscope.fleet(folder, workers=1) as fleet:
        yield fleet


def test_starts_at_the_worst_pool_and_lists_every_source(hosts):
    ex = poolscope.explore(hosts)
    assert isinstance(ex, FleetExplorer)
    worst = hosts.pools.sort_values(["failures", "errors"], ascending=False, kind="stable").iloc[0]
    assert (ex.source, ex.pool.pool_id) == (worst.source, worst.pool_id)
    assert [value for _, value in ex.source_picker.options] == hosts.databases
    for label, value in ex.source_picker.options:
        failures = int(hosts.pools.loc[hosts.pools["source"] == value, "failures"].sum())
        assert label.startswith(value) and f"{failures:,} failures" in label
    assert ex.body.children == (ex.explorer.widget,)


def test_picking_a_source_then_a_pool(hosts):
    ex = poolscope.explore(hosts)
    other = next(s for s in hosts.databases if s != ex.source)
    ex.source_picker.value = other  # as a click would
    assert ex.source == other and ex.explorer.db.path == hosts.database(other).path
    assert list(ex.explorer.pool_picker.options) == poolscope.open(other).pool_ids
    pool_id = poolscope.open(other).pool_ids[-1]
    ex.explorer.pool_picker.value = pool_id
    assert ex.pool.pool_id == pool_id
    k = ex.explorer.set_cursor(ex.pool.head // 2)
    assert ex.pool.snapshot(k).to_json() == poolscope.open(other).pool(pool_id).snapshot(k).to_json()
    # back to the first source: its explorer was kept
    first = ex.select_source(hosts.databases[0])
    assert ex.select_source(hosts.databases[0]) is first


def test_explicit_source_and_pool(hosts):
    source = hosts.databases[1]
    pool_id = poolscope.open(source).pool_ids[1]
    ex = poolscope.explore(hosts, pool_id, source=source)
    assert (ex.source, ex.pool.pool_id) == (source, pool_id)
    with pytest.raises(poolscope.PoolNotFoundError):
        ex.select_source("elsewhere.db")
    assert "FleetExplorer" in repr(ex)


def test_close_closes_every_explorer_widget_and_leaves_the_fleet_open(hosts):
    with poolscope.explore(hosts) as ex:
        other = next(s for s in hosts.databases if s != ex.source)
        first = ex.explorer
        second = ex.select_source(other)
        assert ex.widget.comm is not None and first.slider.comm is not None
    assert ex.widget.comm is None and ex.source_picker.comm is None
    assert first.slider.comm is None and second.slider.comm is None
    pool_id = hosts.database(other).pool_ids[0]
    assert hosts.pool(other, pool_id).snapshot(3).cursor == 3  # the fleet's databases stay open


def test_a_source_that_cannot_be_opened_leaves_the_picker_on_the_one_shown(tmp_path):
    generate(tmp_path / "a.db", pools=1, records=100, seed=3)
    generate(tmp_path / "b.db", pools=1, records=100, seed=4)
    with poolscope.fleet(tmp_path, workers=1) as fleet:
        a, b = (str(tmp_path / name) for name in ("a.db", "b.db"))
        ex = poolscope.explore(fleet, source=a)
        (tmp_path / "b.db").unlink()  # the host's file goes away after the survey
        ex.source_picker.value = b  # as a click would
        assert ex.source == a and ex.source_picker.value == a  # the picker names what is shown
        assert ex.status.value  # the error is said
        ex.close()


def test_a_live_source_follows_records_loaded_by_the_fleet_refresh(tmp_path):
    """fleet.refresh() loads the new records of every database it opened: the
    explorer's next poll shows them (it compares with the pool, not with what
    its own refresh found)."""
    generate(tmp_path / "a.db", pools=1, records=60, seed=5)
    with poolscope.fleet(tmp_path, workers=1) as fleet, poolscope.explore(fleet) as ex:
        explorer, pool_id = ex.explorer, ex.pool.pool_id
        head = ex.pool.head
        assert explorer.cursor == head
        store = poolscope.PoolStore(tmp_path / "a.db")
        try:
            store.join_member(pool_id, {"run_id": "run.fleet.new", "agent_id": "agent.fleet"})
        finally:
            store.close()
        fleet.refresh()
        with poolscope.open(tmp_path / "a.db", cache=False) as fresh:
            expected = fresh.pool(pool_id)
            assert expected.head == head + 1
            assert explorer.poll() == 1
            assert explorer.slider.max == explorer.cursor == expected.head
            assert explorer.shown["member_ids"] == expected.snapshot().member_ids
            assert "run.fleet.new" in explorer.shown["member_ids"]


def test_a_closed_fleet_explorer_displays_as_text(hosts, monkeypatch):
    import IPython.display

    with poolscope.explore(hosts) as ex:
        assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    text = {"text/plain": f"{ex!r} (closed)"}
    assert ex._repr_mimebundle_() == text
    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **kw: shown.append((a, kw)))
    ex._ipython_display_()
    assert shown == [((text,), {"raw": True})]
