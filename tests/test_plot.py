"""poolscope.plot draws exactly what the frames say, on the bundled sample
(sample_data/demo.db) and on a generated database -- no SDK history needed.

Every figure is also written to tests/artifacts/ to be looked at.
"""

from __future__ import annotations

from collections import Counter

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from helpers import SAMPLE_DB, long_ids_database
from matplotlib.figure import Figure

import poolscope
from poolscope import plot, wire
from poolscope.render import natural_key

# ---------------------------------------------------------------- helpers
L = plot.label_text  # how an id is written on a plot


@pytest.fixture(params=["sample", "generated"])
def db(request, small_db):
    """The bundled sample, then a generated 3-pool database."""
    database = poolscope.open(SAMPLE_DB if request.param == "sample" else small_db)
    yield database
    database.close()


def artists(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def offsets(ax, gid):
    """All scatter points with this gid, as an (n, 2) array."""
    found = [c.get_offsets() for c in artists(ax, gid)]
    return np.concatenate(found) if found else np.empty((0, 2))


def lanes(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def lane_at(ax, y):
    return lanes(ax)[int(round(y))]


def cursor_x(ax):
    lines = artists(ax, "cursor")
    assert len(lines) == 1
    xs = lines[0].get_xdata()
    assert xs[0] == xs[1]
    return xs[0]


def legend_labels(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def save(ax_or_fig, artifacts, name):
    fig = ax_or_fig if isinstance(ax_or_fig, Figure) else ax_or_fig.figure
    fig.savefig(artifacts / name, dpi=100)


def natural_order(frame):
    """The runs of a members frame as lanes: natural order (worker-3 before worker-11)."""
    return [L(r) for r in sorted(set(frame["run_id"].astype(str)), key=natural_key)]


# ---------------------------------------------------------------- members
def test_members_draws_one_lane_per_run_and_one_bar_per_interval(db, artifacts):
    for pool in db.pools():
        frame = pool.members_df()
        ax = plot.members(pool)
        assert lanes(ax) == natural_order(frame)
        bars = artists(ax, "members.interval")
        assert len(bars) == len(frame)
        drawn = sorted(
            (lane_at(ax, b.get_y() + b.get_height() / 2), int(b.get_x()), int(round(b.get_x() + b.get_width())))
            for b in bars
        )
        expected = sorted(
            (L(r.run_id), int(r.joined_at), pool.head if pd.isna(r.left_at) else int(r.left_at))
            for r in frame.itertuples()
        )
        assert drawn == expected
        # re-joins: a run with two intervals has two bars on the same lane
        assert max(Counter(run for run, _, _ in drawn).values()) == frame["run_id"].value_counts().max()
        # join updates (a join of a run already a member) are ticks on their lane, inside an interval
        ticks = offsets(ax, "members.update")
        assert len(ticks) == int((frame["joins"] - 1).sum())
        for x, y in ticks:
            run = lane_at(ax, y)
            rows = frame[frame["run_id"].astype(str).map(L) == run]
            assert ((rows["joined_at"] < x) & (rows["left_at"].fillna(pool.head) >= x)).any()
        agents = [L(a) for a in sorted(frame["agent_id"].astype(str).unique())]
        assert legend_labels(ax) == agents + (["join update"] if len(ticks) else [])
        assert ax.get_xlabel() == "cursor (seq)"
        assert pool.pool_id in ax.get_title(loc="left")
        save(ax, artifacts, f"plot_members_{db.path.stem}_{pool.pool_id}.png")


def test_members_upto_cuts_the_history_and_open_intervals_end_there(db):
    pool = db.pool(db.pool_ids[0])
    k = pool.head // 2
    frame = pool.members_df(upto=k)
    ax = plot.members(pool, upto=k, cursor=k // 2)
    bars = artists(ax, "members.interval")
    assert len(bars) == len(frame)
    assert max(b.get_x() + b.get_width() for b in bars) <= k + 0.6
    open_ends = offsets(ax, "members.open")
    members_at_k = pool.snapshot(k).member_ids
    assert sorted(lane_at(ax, y) for _, y in open_ends) == sorted(L(r) for r in members_at_k)
    assert set(open_ends[:, 0]) == {k}
    assert cursor_x(ax) == k // 2
    assert ax.get_xlim()[1] < k * 1.02 + 1


def test_members_filters_by_run_and_agent(db):
    pool = db.pool(db.pool_ids[1])
    frame = pool.members_df()
    rejoined = frame["run_id"].value_counts()
    runs = [str(rejoined.index[0]), str(frame["run_id"].iloc[-1])]
    ax = plot.members(pool, runs=runs)
    assert set(lanes(ax)) == {L(r) for r in runs}
    assert len(artists(ax, "members.interval")) == int(frame["run_id"].astype(str).isin(runs).sum())

    agent = str(frame["agent_id"].value_counts().index[0])
    ax = plot.members(pool, agents=[agent])
    picked = frame[frame["agent_id"].astype(str) == agent]
    assert lanes(ax) == natural_order(picked)
    assert len(artists(ax, "members.interval")) == len(picked)
    assert legend_labels(ax)[0] == L(agent)


def test_members_aggregates_beyond_max_lanes_into_members_per_agent(db, artifacts):
    pool = db.pool(db.pool_ids[2])
    ax = plot.members(pool, max_lanes=3, cursor=pool.head // 3)
    assert not artists(ax, "members.interval")
    (total,) = artists(ax, "members.total")
    xs, ys = np.asarray(total.get_xdata()), np.asarray(total.get_ydata())
    for k in range(1, pool.head + 1, 7):
        drawn = ys[np.searchsorted(xs, k, side="right") - 1]  # steps-post: the value from x on
        assert drawn == len(pool.snapshot(k).members), k
    areas = artists(ax, "members.area")
    assert sorted(a.get_label() for a in areas) == sorted(
        L(a) for a in pool.members_df()["agent_id"].astype(str).unique()
    )
    assert "all members" in legend_labels(ax)
    save(ax, artifacts, "plot_members_aggregated.png")


def many_agents_pool(path, agents=30):
    """A pool of ``agents`` agents: agent.0 .. agent.8 with 12 .. 4 runs, the others with 1 to 3; runs
    join in a shuffled order and every third one leaves later, so each agent's count goes up and down."""
    import random

    runs = [(f"run.{i}.{j}", f"agent.{i}") for i in range(agents) for j in range(12 - i if i < 9 else 1 + i % 3)]
    random.Random(7).shuffle(runs)
    store = poolscope.PoolStore(path)
    try:
        with store.batch():
            store.open_pool("pool.wide", {})
            for n, (run, agent) in enumerate(runs):
                store.join_member("pool.wide", {"run_id": run, "agent_id": agent})
                if n % 3 == 2:
                    store.leave_member("pool.wide", runs[n - 2][0])
    finally:
        store.close()
    return path


def band_height(area, x: float, most: int) -> int:
    """How many members a stacked step area holds at ``x`` (between two seqs): the unit cells of
    its column that lie inside its polygon (its bottom and top are whole numbers)."""
    (path,) = area.get_paths()
    return sum(path.contains_point((x, h + 0.5)) for h in range(most))


def test_members_aggregated_draws_the_top_agents_and_lumps_the_rest_as_other(tmp_path, artifacts):
    """3,000 runs of one agent each drew 3,000 stacked areas and a 3,000-entry legend (45 s, 855 MB
    for one picture).  Past MAX_AGENT_BANDS agents, the MAX_AGENT_BANDS - 1 with the most runs keep
    a band each and the rest are one "other (N agents)" band; the bands still add up, at every
    cursor, to what members_df says."""
    with poolscope.open(many_agents_pool(tmp_path / "wide.db"), cache=False) as db:
        pool = db.pool("pool.wide")
        frame = pool.members_df().astype({"run_id": object, "agent_id": object})
        runs = frame.groupby("agent_id")["run_id"].nunique()
        assert len(runs) == 30 > plot.MAX_AGENT_BANDS
        top = sorted(runs.index, key=lambda a: (-runs[a], natural_key(a)))[: plot.MAX_AGENT_BANDS - 1]
        assert set(top) == {f"agent.{i}" for i in range(9)}  # the runs counted independently
        kept = sorted(top, key=natural_key)
        ax = plot.members(pool, max_lanes=3, cursor=pool.head // 2)
        other = f"other ({len(runs) - len(top)} agents)"
        areas = artists(ax, "members.area")
        assert [a.get_label() for a in areas] == [L(a) for a in kept] + [other]
        assert legend_labels(ax) == [L(a) for a in kept] + [other, "all members"]
        assert len(areas) == plot.MAX_AGENT_BANDS
        colours = [tuple(a.get_facecolor()[0][:3]) for a in areas]
        assert len(set(colours)) == len(colours)  # one colour each; "other" in the palette's grey
        assert colours[-1] == matplotlib.colors.to_rgb(poolscope.palette.GHOST)
        (total,) = artists(ax, "members.total")
        most = int(max(total.get_ydata()))
        for k in range(1, pool.head + 1, 5):
            live = frame[(frame["joined_at"] <= k) & (frame["left_at"].isna() | (frame["left_at"] > k))]
            per_agent = live.groupby("agent_id").size()
            expected = [int(per_agent.get(a, 0)) for a in kept]
            expected.append(int(per_agent[~per_agent.index.isin(kept)].sum()))
            assert [band_height(a, k + 0.5, most) for a in areas] == expected, k
            assert sum(expected) == len(live) == len(pool.snapshot(k).members), k
        save(ax, artifacts, "plot_members_other_agents.png")
        # up to MAX_AGENT_BANDS agents, every agent keeps its band and there is no "other"
        ax = plot.members(pool, max_lanes=3, agents=kept)
        assert [a.get_label() for a in artists(ax, "members.area")] == [L(a) for a in kept]


# --------------------------------------------------------------- messages
@pytest.mark.slow
def test_messages_draw_a_mark_per_message_and_a_flow_per_recipient(db, artifacts):
    for pool in db.pools():
        frame = pool.messages_df()
        ax = plot.messages(pool, ghosts="each")
        marks = offsets(ax, "messages.mark")
        assert len(marks) == len(frame)
        # one scatter per status, with exactly that status's messages
        counts = frame["status"].astype(str).value_counts()
        for collection in artists(ax, "messages.mark"):
            assert len(collection.get_offsets()) == counts[collection.get_label()]
        # each mark sits at (first_seq, sender lane)
        drawn = sorted((int(x), lane_at(ax, y)) for x, y in marks)
        assert drawn == sorted(zip(frame["first_seq"].astype(int), frame["sender"].astype(str).map(L)))
        # flows: one segment per recipient, from the sender's lane to the recipient's lane
        (flows,) = artists(ax, "messages.flow")
        segments = flows.get_segments()
        assert len(segments) == int(frame["recipients"].list.len().sum())
        ends = Counter((lane_at(ax, s[0][1]), lane_at(ax, s[1][1]), int(s[1][0])) for s in segments)
        expected = Counter(
            (L(r.sender), L(recipient), int(r.first_seq if pd.isna(r.delivered_at) else r.delivered_at))
            for r in frame.itertuples()
            for recipient in r.recipients
        )
        assert ends == expected
        assert len(offsets(ax, "messages.head")) == len(segments)
        # lanes: members first in natural order, then the ghosts
        members = natural_order(pool.members_df())
        touched = {L(r) for r in set(frame["sender"].astype(str)) | {r for rs in frame["recipients"] for r in rs}}
        assert lanes(ax)[: len(touched & set(members))] == [r for r in members if r in touched]
        assert set(lanes(ax)) == touched
        labels = legend_labels(ax)
        present = [s for s in wire.MESSAGE_STATUSES if s in counts.index and counts[s]]
        assert labels[: len(present)] == [f"{s} ({counts[s]:,})" for s in present]
        save(ax, artifacts, f"plot_messages_{db.path.stem}_{pool.pool_id}.png")


def test_messages_alert_statuses_are_large_red_orange_and_on_top(db):
    pool = db.pool(db.pool_ids[0])
    ax = plot.messages(pool)
    by_status = {c.get_label(): c for c in artists(ax, "messages.mark")}
    assert {"failed", "timed_out", "expired", "delivered"} <= set(by_status)
    for status in ("failed", "timed_out", "expired"):
        assert by_status[status].get_sizes()[0] > 2 * by_status["delivered"].get_sizes()[0]
        assert by_status[status].get_zorder() > by_status["delivered"].get_zorder()
    assert tuple(by_status["failed"].get_facecolor()[0][:3]) == pytest.approx(matplotlib.colors.to_rgb("#d62728"))
    assert tuple(by_status["timed_out"].get_facecolor()[0][:3]) == pytest.approx(matplotlib.colors.to_rgb("#ff7f0e"))


def test_messages_ghost_runs_share_one_lane_when_many(db):
    for pool in db.pools():
        frame = pool.messages_df()
        members = set(pool.members_df()["run_id"].astype(str))
        ghosts = (set(frame["sender"].astype(str)) | {r for rs in frame["recipients"] for r in rs}) - members
        merged = lanes(plot.messages(pool, ghosts="merge"))
        each = lanes(plot.messages(pool, ghosts="each"))
        if ghosts:
            assert merged[-1] == f"non-members ({len(ghosts):,} runs)"
            assert len(each) == len(merged) - 1 + len(ghosts)
        auto = lanes(plot.messages(pool))
        assert auto == (merged if len(ghosts) > 3 else each)


def test_messages_filters(db):
    pool = db.pool(db.pool_ids[2])
    frame = pool.messages_df()
    status = frame["status"].astype(str)

    ax = plot.messages(pool, statuses=["failed", "expired", "timed_out"])
    assert len(offsets(ax, "messages.mark")) == int(status.isin(["failed", "expired", "timed_out"]).sum())
    assert {c.get_label() for c in artists(ax, "messages.mark")} <= {"failed", "expired", "timed_out"}

    ax = plot.messages(pool, kinds="pool")
    assert len(offsets(ax, "messages.mark")) == int((frame["target_type"] == "pool").sum())

    run = str(frame["sender"].value_counts().index[0])
    touching = frame[(frame["sender"].astype(str) == run) | frame["recipients"].apply(lambda rs: run in list(rs))]
    ax = plot.messages(pool, runs=[run])
    assert len(offsets(ax, "messages.mark")) == len(touching) < len(frame)

    members = pool.members_df()
    agent = str(members["agent_id"].iloc[0])
    agent_runs = set(members.loc[members["agent_id"].astype(str) == agent, "run_id"].astype(str))
    by_agent = frame[
        frame["sender"].astype(str).isin(agent_runs) | frame["recipients"].apply(lambda rs: bool(agent_runs & set(rs)))
    ]
    ax = plot.messages(pool, agents=agent)
    assert len(offsets(ax, "messages.mark")) == len(by_agent) < len(frame)


def test_messages_upto_shows_the_status_at_that_cursor(db):
    pool = db.pool(db.pool_ids[1])
    k = pool.head // 2
    frame = pool.messages_df(upto=k)
    ax = plot.messages(pool, upto=k, cursor=k)
    counts = frame["status"].astype(str).value_counts()
    for collection in artists(ax, "messages.mark"):
        assert len(collection.get_offsets()) == counts[collection.get_label()]
    assert len(offsets(ax, "messages.mark")) == len(frame)
    assert cursor_x(ax) == k


def test_messages_aggregate_into_status_strips_on_big_pools(db, artifacts):
    pool = db.pool(db.pool_ids[0])
    frame = pool.messages_df()
    ax = plot.messages(pool, max_marks=10, cursor=100, window=10)
    assert not artists(ax, "messages.mark")
    counts = frame["status"].astype(str).value_counts()
    strips = {a.get_gid().rsplit(".", 1)[1]: a for a in ax.images}
    assert set(strips) == {s for s in wire.MESSAGE_STATUSES if counts.get(s, 0)}
    for status, image in strips.items():
        row = np.asarray(image.get_array())[0]
        assert row.sum() == counts[status]
        # the cell of window w counts the messages whose first seq is in it
        starts = frame.loc[frame["status"] == status, "first_seq"]
        assert row[0] == int((starts <= 10).sum())
    assert [t.split(" (")[0] for t in lanes(ax)] == list(strips)
    assert cursor_x(ax) == 100
    save(ax, artifacts, "plot_messages_aggregated.png")


# ------------------------------------------------------------------ wakes
def test_wakes_draw_a_span_per_condition_and_a_marker_per_outcome(db, artifacts):
    for pool in db.pools():
        frame = pool.wakes_df()
        ax = plot.wakes(pool)
        spans = artists(ax, "wakes.span")
        assert len(spans) == len(frame)
        assert sorted(set(lanes(ax))) == sorted(L(r) for r in frame["run_id"].astype(str).unique())
        drawn = sorted(
            (lane_at(ax, s.get_y() + s.get_height() / 2), int(s.get_x()), round(s.get_x() + s.get_width(), 1))
            for s in spans
        )
        expected = []
        for r in frame.itertuples():
            start = int(r.first_seq if pd.isna(r.registered_at) else r.registered_at)
            end = pool.head if pd.isna(r.terminal_at) else int(r.terminal_at)
            expected.append((L(r.run_id), start, round(max(end, start + 0.8), 1)))
        assert drawn == sorted(expected)
        counts = frame["status"].astype(str).value_counts()
        outcomes = {c.get_label(): c for c in artists(ax, "wakes.outcome")}
        assert set(outcomes) == {s for s in wire.WAKE_STATUSES[1:] if counts.get(s, 0)}
        for status, collection in outcomes.items():
            xs = sorted(collection.get_offsets()[:, 0].astype(int))
            assert xs == sorted(frame.loc[frame["status"] == status, "terminal_at"].astype(int))
        assert len(offsets(ax, "wakes.open")) == counts.get("registered", 0)
        labels = legend_labels(ax)
        if counts.get("registered", 0):  # the SDK's status names, as in the tables
            assert f"registered ({counts['registered']:,})" in labels
        assert all(f"{s} ({counts[s]:,})" in labels for s in outcomes)
        assert {label.split(" (")[0] for label in labels} <= set(wire.WAKE_STATUSES)
        save(ax, artifacts, f"plot_wakes_{db.path.stem}_{pool.pool_id}.png")


def test_wakes_filters_and_upto(db):
    pool = db.pool(db.pool_ids[1])
    frame = pool.wakes_df()
    ax = plot.wakes(pool, statuses=["timed_out", "failed"])
    assert len(artists(ax, "wakes.span")) == int(frame["status"].isin(["timed_out", "failed"]).sum())
    assert {c.get_label() for c in artists(ax, "wakes.outcome")} <= {"timed_out", "failed"}

    run = str(frame["run_id"].value_counts().index[0])
    ax = plot.wakes(pool, runs=run)
    assert lanes(ax) == [L(run)]
    assert len(artists(ax, "wakes.span")) == int((frame["run_id"] == run).sum())

    k = pool.head // 2
    at_k = pool.wakes_df(upto=k)
    ax = plot.wakes(pool, upto=k, cursor=k - 5)
    assert len(artists(ax, "wakes.span")) == len(at_k)
    assert len(offsets(ax, "wakes.open")) == int((at_k["status"] == "registered").sum())
    assert set(offsets(ax, "wakes.open")[:, 0]) <= {k}
    assert cursor_x(ax) == k - 5


def test_wakes_aggregate_into_outcomes_per_window(db, artifacts):
    pool = db.pool(db.pool_ids[2])
    frame = pool.wakes_df()
    ax = plot.wakes(pool, max_marks=5, window=20, cursor=pool.head // 2)
    assert not artists(ax, "wakes.span")
    counts = frame["status"].astype(str).value_counts()
    for status in wire.WAKE_STATUSES[1:]:
        bars = artists(ax, f"wakes.ended.{status}")
        assert sum(b.get_height() for b in bars) == counts.get(status, 0)
    (registered,) = artists(ax, "wakes.registered")
    assert registered.get_ydata()[-1] == counts.get("registered", 0)
    assert {label.split(" (")[0] for label in legend_labels(ax)} <= set(wire.WAKE_STATUSES)
    save(ax, artifacts, "plot_wakes_aggregated.png")


# --------------------------------------------------------------- activity
def stacked(ax, gid):
    """(window start -> count) drawn by the StepPatch with this gid."""
    (patch,) = artists(ax, gid)
    values, edges, baseline = patch.get_data()
    return {int(round(edge + 0.5)): int(abs(v - b)) for v, b, edge in zip(values, baseline, edges[:-1]) if v != b}


def test_activity_stacks_are_the_activity_counts(db, artifacts):
    for pool in db.pools():
        ax = plot.activity(pool, window=25, cursor=pool.head // 2)
        frame = pool.activity(25)
        for series, sign in (("message", 1), ("wake", -1)):
            sub = frame[frame["series"] == series]
            expected = {(int(r.window_start), str(r.name)): int(r.count) for r in sub.itertuples()}
            drawn = {}
            bottom = None
            for status in wire.MESSAGE_STATUSES if series == "message" else wire.WAKE_STATUSES:
                if not artists(ax, f"activity.{series}.{status}"):
                    assert status not in set(sub["name"].astype(str))
                    continue
                (patch,) = artists(ax, f"activity.{series}.{status}")
                values, edges, baseline = patch.get_data()
                assert np.all(sign * (values - baseline) >= 0)  # messages above the axis, wakes below
                if bottom is not None:
                    assert np.array_equal(baseline, bottom)  # stacked on the previous status
                bottom = values
                for start, count in stacked(ax, f"activity.{series}.{status}").items():
                    drawn[(start, status)] = count
                assert patch.get_label() == f"{series}: {status}"
            assert drawn == expected
        assert cursor_x(ax) == pool.head // 2
        labels = legend_labels(ax)
        assert labels[0] == "messages ↑" and "wakes ↓" in labels
        assert set(labels) - {"messages ↑", "wakes ↓"} <= set(wire.MESSAGE_STATUSES) | set(wire.WAKE_STATUSES)
        save(ax, artifacts, f"plot_activity_{db.path.stem}_{pool.pool_id}.png")


def test_activity_one_series_and_upto(db):
    pool = db.pool(db.pool_ids[0])
    k = pool.head // 2
    ax = plot.activity(pool, upto=k, series=("message",))
    assert not any(str(a.get_gid()).startswith("activity.wake.") for a in ax.get_children())
    total = sum(
        sum(stacked(ax, a.get_gid()).values()) for a in ax.get_children() if str(a.get_gid()).startswith("activity.")
    )
    assert total == int((pool.records_df(upto=k)["kind"] == "run_message").sum())
    assert ax.get_ylim()[0] == 0
    with pytest.raises(ValueError):
        plot.activity(pool, series=("message", "nope"))


# ----------------------------------------------------------------- common
@pytest.mark.parametrize("name", ["members", "messages", "wakes", "activity"])
def test_every_plot_uses_the_given_axes_and_marks_the_cursor(db, name):
    pool = db.pool(db.pool_ids[0])
    fig = Figure(figsize=(8, 4))
    given = fig.add_subplot()
    returned = getattr(plot, name)(pool, ax=given, cursor=77)
    assert returned is given
    assert fig.axes == [given]
    assert cursor_x(given) == 77
    assert given.get_xlabel() == "cursor (seq)"
    assert given.get_title(loc="left")
    without = getattr(plot, name)(pool)
    assert without.figure is not fig
    assert not artists(without, "cursor")


def test_label_text_spells_out_what_the_font_cannot_draw():
    assert L("run.review.delta") == "run.review.delta"
    assert L("agent.é") == "agent.é"  # DejaVu Sans has it
    rocket = L("run.review.\U0001f680-delta")
    assert rocket in ("run.review.\U0001f680-delta", "run.review.<U+1F680>-delta")
    assert rocket == "run.review.<U+1F680>-delta" or 0x1F680 in plot._drawable("sans-serif")


def test_control_characters_in_ids_are_spelled_out_not_drawn_as_missing_glyphs(tmp_path):
    """An ESC, a newline or a C1 control in a pool id (the SDK refuses them; a hostile file
    holds them): labels spell them ``<U+001B>``, and drawing warns of no missing glyph."""
    import shutil
    import sqlite3
    import warnings

    assert [L(t) for t in ("a\x1bb", "a\nb", "a\x85b", "a\x7fb")] == [
        "a<U+001B>b",
        "a<U+000A>b",
        "a<U+0085>b",
        "a<U+007F>b",
    ]
    path = shutil.copy(SAMPLE_DB, tmp_path / "pool.db")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE agent_pool_records SET pool_id = 'pool\x1b[31m.alpha' WHERE pool_id = 'pool.alpha'")
    conn.close()
    with poolscope.open(path, cache=False) as hostile, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax = plot.members(hostile.pool("pool\x1b[31m.alpha"), ax=Figure().add_subplot())
        ax.figure.canvas.draw()
    assert ax.get_title(loc="left").startswith("pool<U+001B>[31m.alpha")
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []


def test_messages_rejects_an_unknown_ghosts_mode(db):
    with pytest.raises(ValueError):
        plot.messages(db.pool(db.pool_ids[0]), ghosts="hide")


@pytest.mark.slow
def test_dashboard_stacks_the_four_plots_on_one_shared_x(db, artifacts):
    for pool in db.pools():
        fig = plot.dashboard(pool, cursor=pool.head // 2)
        axes = fig.axes
        assert len(axes) == 4
        assert [a.get_xlabel() for a in axes] == ["", "", "", "cursor (seq)"]
        for ax in axes:
            assert cursor_x(ax) == pool.head // 2
            assert ax.get_shared_x_axes().joined(ax, axes[0])
        assert "membership" in axes[0].get_title(loc="left") and "activity" in axes[3].get_title(loc="left")
        save(fig, artifacts, f"plot_dashboard_{db.path.stem}_{pool.pool_id}.png")


def test_plots_take_every_argument_after_the_pool_by_keyword(db):
    pool = db.pool(db.pool_ids[0])
    for name in ("members", "messages", "wakes", "activity", "dashboard"):
        with pytest.raises(TypeError):
            getattr(plot, name)(pool, None)
    # the dashboard's arguments are the plots' own, in their order
    import inspect

    names = list(inspect.signature(plot.dashboard).parameters)
    assert names == ["pool", "fig", "upto", "cursor"]
    assert list(inspect.signature(plot.members).parameters)[:4] == ["pool", "ax", "upto", "cursor"]
    fig = plot.dashboard(pool, upto=pool.head // 2, cursor=pool.head // 3)
    assert all(cursor_x(ax) == pool.head // 3 for ax in fig.axes)


# ------------------------------------------------------- lanes and long ids
def numbered_pool(path, runs, pool_id="pool.n", agent="agent.worker"):
    """A pool whose members join in the order given."""
    store = poolscope.PoolStore(path)
    try:
        with store.batch():
            store.open_pool(pool_id, {})
            store.record_pool_created(pool_id)
            for run in runs:
                store.join_member(pool_id, {"run_id": run, "agent_id": agent, "topics": ["t"]})
    finally:
        store.close()
    return path


def test_member_lanes_sort_naturally(tmp_path):
    runs = ["run.worker-11", "run.worker-3", "run.worker-2", "run.planner-10", "run.planner-9", "run.worker-1"]
    path = numbered_pool(tmp_path / "n.db", runs)
    with poolscope.open(path) as db:
        pool = db.pool("pool.n")
        expected = ["run.planner-9", "run.planner-10", "run.worker-1", "run.worker-2", "run.worker-3", "run.worker-11"]
        assert plot.member_lanes(pool) == expected
        assert lanes(plot.members(pool)) == expected
        assert lanes(plot.dashboard(pool).axes[0]) == expected


@pytest.fixture(scope="module")
def long_ids(tmp_path_factory):
    """300 members with 500-character run ids and agent ids, in a pool whose id is 10 KB."""
    path = tmp_path_factory.mktemp("long") / "long.db"
    pool_id, runs = long_ids_database(path)
    return path, pool_id, runs


# a hostile input (issue 10): a hang (or the 88 s drawing of long ids coming back) fails instead of stalling
@pytest.mark.timeout(30, method="thread")
def test_long_ids_are_shortened_on_the_plots(long_ids):
    path, pool_id, runs = long_ids
    with poolscope.open(path) as db:
        pool = db.pool(pool_id)
        # aggregated (300 lanes): the legend names the agents, shortened
        ax = plot.members(pool)
        labels = legend_labels(ax)
        assert len(labels) == 5 and all(len(label) <= plot.LABEL_CHARS for label in labels)
        assert len(ax.get_title(loc="left")) < plot.TITLE_ID_CHARS + 80
        # one lane per run: 300 distinct labels, each the head and tail of its id
        ax = plot.members(pool, max_lanes=400)
        drawn = lanes(ax)
        assert len(drawn) == len(set(drawn)) == 300
        assert all(len(label) <= plot.LABEL_CHARS for label in drawn)
        assert drawn[:3] == [L(runs[0]), L(runs[1]), L(runs[2])]
        assert drawn[0].startswith("run.0.rrr") and "…" in drawn[0]
        # the full ids stay in the data
        assert set(pool.members_df()["run_id"].astype(str)) == set(runs)
        fig = plot.dashboard(pool)
        texts = [t.get_text() for ax in fig.axes for t in ax.texts + ax.get_yticklabels()]
        texts += [ax.get_title(loc="left") for ax in fig.axes] + [t for ax in fig.axes for t in legend_labels(ax)]
        assert max(len(t) for t in texts) < 200


@pytest.mark.slow
def test_readmes_pictures_are_made_from_the_sample_by_a_command(tmp_path):
    """docs/make_images.py draws dashboard.png from sample_data/ (the committed picture is its output)."""
    import subprocess
    import sys

    from helpers import ROOT
    from PIL import Image

    script = ROOT / "docs" / "make_images.py"
    done = subprocess.run(
        [sys.executable, str(script), "--only", "dashboard", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    made = tmp_path / "dashboard.png"
    assert done.stdout.strip() == str(made)
    committed = ROOT / "docs" / "images" / "dashboard.png"
    with Image.open(made) as fresh, Image.open(committed) as stored:
        assert fresh.size == stored.size
    assert "docs/make_images.py" in (ROOT / "README.md").read_text(encoding="utf-8")
