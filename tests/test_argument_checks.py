"""Arguments are checked at the door: a bad one is a typed error naming it
(never a traceback from numpy, pandas, matplotlib or os), and a valid edge
value (a numpy integer, an ``upto`` beyond the head) gives what its plain
equivalent gives.  One section per defect found by fuzzing (round 4)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from helpers import SAMPLE_DB
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import poolscope
from poolscope import plot
from poolscope.errors import InvalidInputError


@pytest.fixture
def pool(sample_db):
    return sample_db.pool("pool.alpha")


def picture(draw) -> np.ndarray:
    """The pixels of what ``draw`` puts on the Axes of a fresh figure (drawn by Agg; no pyplot, nothing to close)."""
    fig = Figure(figsize=(8, 5))
    canvas = FigureCanvasAgg(fig)
    draw(fig.add_subplot())
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


# ------------------------------------------ plot.messages / plot.wakes window=
BAD_WINDOWS = [0, -3, 0.5, 2.5, True, "x", "40", float("nan"), np.float64(40.0), np.array(5)]


@pytest.mark.parametrize("draw", [plot.messages, plot.wakes], ids=["messages", "wakes"])
@pytest.mark.parametrize("window", BAD_WINDOWS, ids=repr)
def test_a_plot_window_is_a_whole_number_of_at_least_one(pool, draw, window):
    """As plot.activity checks it, whether the plot aggregates (max_marks=1) or not."""
    for max_marks in (1, 10**6):
        with pytest.raises(InvalidInputError, match=r"^window must be a whole number of at least 1, not "):
            draw(pool, max_marks=max_marks, window=window, ax=Figure().add_subplot())


@pytest.mark.parametrize("draw", [plot.messages, plot.wakes], ids=["messages", "wakes"])
def test_a_plot_window_as_a_numpy_integer_draws_what_the_int_draws(pool, draw):
    as_int = picture(lambda ax: draw(pool, ax=ax, max_marks=1, window=40))
    assert np.array_equal(picture(lambda ax: draw(pool, ax=ax, max_marks=1, window=np.int64(40))), as_int)
    assert np.array_equal(picture(lambda ax: draw(pool, ax=ax, max_marks=1, window=np.uint8(40))), as_int)
    assert not np.array_equal(picture(lambda ax: draw(pool, ax=ax, max_marks=1, window=41)), as_int)


@pytest.mark.parametrize("draw", [plot.messages, plot.wakes], ids=["messages", "wakes"])
def test_a_plot_window_wider_than_any_log_is_one_window(pool, draw):
    ax = draw(pool, ax=Figure().add_subplot(), max_marks=1, window=10**30)
    assert ax.get_ylabel().endswith(f"(window = {2**63 - 2:,})")


def test_every_window_is_checked_by_the_same_rule(pool):
    """pool.activity, plot.activity, plot.compare, plot.messages and plot.wakes say the same."""
    said = set()
    for call in (
        lambda: pool.activity(window=2.5),
        lambda: plot.activity(pool, window=2.5, ax=Figure().add_subplot()),
        lambda: plot.compare(pool, pool, window=2.5, ax=Figure().add_subplot()),
        lambda: plot.messages(pool, window=2.5, ax=Figure().add_subplot()),
        lambda: plot.wakes(pool, window=2.5, ax=Figure().add_subplot()),
    ):
        with pytest.raises(InvalidInputError) as caught:
            call()
        said.add(str(caught.value))
    assert said == {"window must be a whole number of at least 1, not float 2.5"}


# ------------------------------------- flows / latency: upto beyond the head
def same_frame(a, b) -> None:
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs


@pytest.mark.parametrize("beyond", [1, 10**6, 2**70], ids=["head+1", "head+1e6", "2**70"])
def test_flows_and_latency_take_an_upto_beyond_the_head_as_the_head(pool, beyond):
    """As every other frame does: records_df, members_df, ..., activity."""
    upto = pool.head + beyond
    for by in ("run", "agent"):
        same_frame(pool.flows_df(upto=upto, by=by), pool.flows_df(upto=pool.head, by=by))
        same_frame(pool.flows_df(upto=np.int64(min(upto, 2**63 - 1)), by=by), pool.flows_df(by=by))
    same_frame(pool.latency_df(upto=upto), pool.latency_df(upto=pool.head))
    same_frame(pool.latency_df(upto=upto), pool.latency_df())
    volume, share = poolscope.flows.flow_matrix(pool, upto)
    at_head = poolscope.flows.flow_matrix(pool, pool.head)
    same_frame(volume, at_head[0])
    same_frame(share, at_head[1])


@pytest.mark.parametrize("draw", [plot.flows, plot.latency], ids=["flows", "latency"])
def test_flow_and_latency_plots_take_an_upto_beyond_the_head_as_the_head(pool, draw):
    at_head = picture(lambda ax: draw(pool, upto=pool.head, ax=ax))
    assert np.array_equal(picture(lambda ax: draw(pool, upto=pool.head + 1, ax=ax)), at_head)
    assert np.array_equal(picture(lambda ax: draw(pool, upto=np.int64(pool.head + 1), ax=ax)), at_head)
    assert not np.array_equal(picture(lambda ax: draw(pool, upto=pool.head // 2, ax=ax)), at_head)


@pytest.mark.parametrize("upto", [-1, "5", 5.0, True, np.array([1, 2])], ids=repr)
def test_flows_and_latency_say_which_upto_is_wrong_as_the_frames_do(pool, upto):
    for call in (
        lambda: pool.flows_df(upto=upto),
        lambda: pool.latency_df(upto=upto),
        lambda: plot.flows(pool, upto=upto, ax=Figure().add_subplot()),
        lambda: plot.latency(pool, upto=upto, ax=Figure().add_subplot()),
    ):
        with pytest.raises(poolscope.CursorError, match=r"pool 'pool.alpha': upto "):
            call()


# ------------------------------------------- plots: the pool, ax= and fig=
def _pool_plots():
    return [
        plot.members,
        plot.messages,
        plot.wakes,
        plot.activity,
        plot.dashboard,
        plot.flows,
        plot.latency,
        plot.member_lanes,
    ]


@pytest.mark.parametrize("draw", _pool_plots(), ids=lambda f: f.__name__)
def test_a_plot_says_when_its_pool_is_not_a_pool(sample_db, draw):
    for wrong, shown in ((sample_db, "Database <poolscope.Database "), ("pool.alpha", "str 'pool.alpha'")):
        with pytest.raises(InvalidInputError) as caught:
            draw(wrong)
        assert str(caught.value).startswith(f"pool must be a pool's history (db.pool(pool_id)), not {shown}")
    with pytest.raises(InvalidInputError, match=r"^pool must be a pool's history .* not NoneType None"):
        draw(pool=None)


@pytest.mark.parametrize(
    "draw",
    [f for f in _pool_plots() if f not in (plot.dashboard, plot.member_lanes)] + [plot.compare],
    ids=lambda f: f.__name__,
)
def test_a_plot_says_when_ax_is_not_an_axes(pool, draw):
    fig = Figure()
    with pytest.raises(InvalidInputError) as caught:
        if draw is plot.compare:
            draw(pool, pool, ax=fig)
        else:
            draw(pool, ax=fig)
    assert str(caught.value).startswith("ax must be a matplotlib Axes (figure.add_subplot()), not Figure <Figure size")
    assert not fig.axes  # nothing drawn


def test_dashboard_says_when_fig_is_not_a_figure(pool):
    ax = Figure().add_subplot()
    with pytest.raises(InvalidInputError) as caught:
        plot.dashboard(pool, fig=ax)
    assert str(caught.value).startswith("fig must be a matplotlib Figure (a Figure or SubFigure), not Axes ")
    with pytest.raises(InvalidInputError, match="^fig must be a matplotlib Figure .* not str 'fig'"):
        plot.dashboard(pool, fig="fig")


def test_the_plots_take_what_they_always_took(pool):
    """An Axes, a Figure or SubFigure, a what-if (a pool history too), the pool given by keyword."""
    alt = pool.without(runs="run.alpha.planner-2")
    for draw in (plot.members, plot.messages, plot.wakes, plot.activity, plot.flows, plot.latency):
        ax = Figure().add_subplot()
        assert draw(pool, ax=ax) is ax
        assert draw(pool=alt, ax=Figure().add_subplot()).figure is not None
    fig = Figure(figsize=(10, 12))
    (left,) = fig.subfigures(1, 1, squeeze=False)[0]
    assert plot.dashboard(pool, fig=left) is left and len(left.axes) == 4
    assert plot.member_lanes(pool=alt) == plot.member_lanes(alt)


# ---------------------------------------- 0-d arrays, pd.NA, flags, paths
def test_a_0d_array_is_neither_one_value_nor_a_list(pool):
    with pytest.raises(InvalidInputError, match=r"^records must be a seq or a list of seqs, not ndarray array\(5\)"):
        pool.without(records=np.array(5))
    with pytest.raises(InvalidInputError, match=r"^runs must be a run id or a list of run ids, not ndarray"):
        pool.without(runs=np.array("run.alpha.planner-2"))
    with pytest.raises(InvalidInputError, match=r"^agents must hold agent ids \(strings\), not int 5"):
        pool.without(agents=[5])
    with pytest.raises(InvalidInputError, match=r"^kinds must be a kind or a list of kinds, not ndarray array\('wake'"):
        pool.records(kinds=np.array("wake"))
    with pytest.raises(poolscope.CursorError, match=r"seq must be an integer cursor, not ndarray array\(5\)"):
        pool.payloads([np.array(5)])
    with pytest.raises(poolscope.CursorError, match=r"upto must be an integer cursor, not ndarray array\(5\)"):
        pool.records_df(upto=np.array(5))


def test_seqs_and_names_as_numpy_values_are_taken_as_the_plain_ones(pool):
    plain = pool.without(records=5)
    for records in (np.int64(5), [np.int32(5)], np.array([5]), (5,)):
        alt = pool.without(records=records)
        assert alt.records_removed == plain.records_removed == (5,)
        assert alt.snapshot().to_json() == plain.snapshot().to_json()
    assert pool.records(kinds=np.str_("wake"), upto=50) == pool.records(kinds="wake", upto=50)
    assert pool.records(kinds=np.array(["wake"]), upto=50) == pool.records(kinds=["wake"], upto=50)


def test_a_choice_given_pd_na_is_an_invalid_input(pool):
    with pytest.raises(InvalidInputError) as caught:
        pool.history_of("run.alpha.reviewer-1", key_type=pd.NA)
    assert str(caught.value).endswith("key_type must be 'message', 'wake', 'run' or 'idempotency_key', not NAType <NA>")
    with pytest.raises(InvalidInputError, match=r"^by must be 'run' or 'agent', not NAType <NA>$"):
        pool.flows_df(by=pd.NA)
    with pytest.raises(InvalidInputError, match=r"^by must be 'agent', 'run' or 'status', not NAType <NA>$"):
        plot.latency(pool, by=pd.NA)
    with pytest.raises(InvalidInputError, match=r"^kind must be 'message' or 'wake', not NAType <NA>$"):
        plot.latency(pool, kind=pd.NA)
    with pytest.raises(InvalidInputError, match=r"^ghosts must be 'auto', 'each' or 'merge', not NAType <NA>$"):
        plot.messages(pool, ghosts=pd.NA)
    key = "run.alpha.reviewer-1"
    same_frame(pool.history_of(key, key_type=np.str_("run")), pool.history_of(key, key_type="run"))
    same_frame(pool.flows_df(by=np.str_("agent")), pool.flows_df(by="agent"))


@pytest.mark.parametrize("strict", ["no", "", None, 0, 1, np.array(True)], ids=repr)
def test_strict_is_true_or_false(pool, strict):
    with pytest.raises(InvalidInputError, match=r"^strict must be True or False, not "):
        pool.snapshot(50, strict=strict)


@pytest.mark.parametrize(
    "name, call",
    [
        ("verify_filters", lambda db, tmp, flag: db.pool("pool.bravo").load(verify_filters=flag)),
        ("reconnect", lambda db, tmp, flag: db.pool("pool.alpha").refresh(reconnect=flag)),
        ("progress", lambda db, tmp, flag: poolscope.open(SAMPLE_DB, progress=flag)),
        ("force", lambda db, tmp, flag: poolscope.report.report(db, tmp / "r.html", force=flag)),
        ("force", lambda db, tmp, flag: poolscope.export.export(db, tmp / "out", force=flag)),
        ("live", lambda db, tmp, flag: poolscope.explore(db, live=flag)),
        ("check", lambda db, tmp, flag: poolscope.explore(db, check=flag)),
    ],
)
def test_every_yes_or_no_argument_is_true_or_false(sample_db, tmp_path, name, call):
    """``"no"`` taken as true, ``None`` or ``0`` as false: each flag of a public call is a bool or refused."""
    for flag in ("no", "", 0, np.array(True)):
        with pytest.raises(InvalidInputError, match=rf"^{name} must be True or False, not "):
            call(sample_db, tmp_path, flag)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_strict_as_a_numpy_bool_is_the_bool(pool):
    for flag in (True, False):
        assert pool.snapshot(50, strict=np.bool_(flag)).to_json() == pool.snapshot(50, strict=flag).to_json()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: poolscope.open("\ud800"), "path"),
        (lambda: poolscope.open(f"{SAMPLE_DB.parent}/\ud800.db"), "path"),
        (lambda: poolscope.open(SAMPLE_DB, cache="\ud800"), "the cache folder"),
        (lambda: poolscope.PoolStore("\ud800"), "path"),
    ],
    ids=["open", "open-in-a-folder", "cache", "PoolStore"],
)
def test_a_path_that_cannot_be_encoded_is_an_invalid_input(call, name):
    with pytest.raises(InvalidInputError) as caught:
        call()
    assert str(caught.value).startswith(f"{name} ")
    assert "cannot be encoded as a file name" in str(caught.value) and "'\\ud800'" in str(caught.value)


def test_a_path_holding_an_undecodable_byte_is_still_a_path(tmp_path):
    """``\\udcff`` is how Python spells the byte 0xff of a file name (surrogateescape): a name, not an error."""
    with pytest.raises(poolscope.DatabaseNotFoundError):
        poolscope.open(tmp_path / "\udcff.db")


# ---------------------- compare's alignment/events, plot.latency's limit, plot statuses (round 6)
BAD_COUNTS = ["3", 2.0, True, -1, None, np.array(5)]


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=repr)
def test_compare_and_latency_say_which_count_is_wrong(pool, bad):
    """Not a raw TypeError from numpy or pandas slicing, nor a negative or bool count taken as an int."""
    c = poolscope.compare(pool, pool.without(runs="run.alpha.planner-2"))
    for call, said in (
        (lambda: c.alignment(context=bad), "context must be a whole number of at least 0"),
        (lambda: c.alignment(window=bad), "window must be a whole number of at least 1"),
        (lambda: c.events("a", start=bad), "start must be a whole number of at least 0"),
        (
            lambda: plot.latency(pool, limit=bad, ax=Figure().add_subplot()),
            "limit must be a whole number of at least 1",
        ),
    ):
        with pytest.raises(InvalidInputError, match=f"^{said}, not "):
            call()
    if bad is not None:  # stop=None is the end
        with pytest.raises(InvalidInputError, match="^stop must be a whole number of at least 0, not "):
            c.events("b", stop=bad)
    for call in (lambda: c.alignment(window=0), lambda: plot.latency(pool, limit=0, ax=Figure().add_subplot())):
        with pytest.raises(InvalidInputError, match="must be a whole number of at least 1, not int 0"):
            call()


def test_compare_and_latency_take_numpy_integers_and_zero_as_the_ints(pool):
    c = poolscope.compare(pool, pool.without(runs="run.alpha.planner-2"))
    every = c.events("a")
    same_frame(c.events("a", start=np.int64(3), stop=np.uint8(9)), every.iloc[3:9].reset_index(drop=True))
    assert (
        c.events("a", start=0, stop=0).columns.tolist() == every.columns.tolist()
        and c.events("a", start=0, stop=0).empty
    )
    same_frame(c.alignment(context=np.int64(2), window=np.int32(30)), c.alignment(context=2, window=30))
    # no agreeing event before the divergence with context=0: the first row is the first divergence
    aligned = c.alignment(context=0, window=10)
    assert aligned.op.iloc[0] != "equal" and aligned.cursor_a.iloc[0] == every.cursor.iloc[c.common_prefix]
    assert (c.alignment(context=3, window=10).op.iloc[:3] == "equal").all()
    busiest = pool.latency_df().query("kind == 'message'").agent_id.astype(object).fillna("(unknown)")
    ax = plot.latency(pool, limit=np.int64(2), ax=Figure().add_subplot())
    assert [t.get_text() for t in ax.get_yticklabels()] == busiest.value_counts().index[:2].tolist()


@pytest.mark.parametrize(
    "draw, unknown, known",
    [(plot.messages, ["nope"], ["failed", "expired"]), (plot.wakes, ["accepted"], ["timed_out", "failed"])],
    ids=["messages", "wakes"],
)
def test_a_plot_s_statuses_are_statuses_of_what_it_draws(pool, draw, unknown, known):
    """An unknown status (or a message status for wakes) is an error naming the argument, as the
    explorer's jump(status=) says, not a plot of nothing."""
    for statuses in (unknown, unknown[0], [*known, *unknown]):
        with pytest.raises(InvalidInputError, match=rf"^statuses must be '.*', not str '{unknown[0]}'$"):
            draw(pool, statuses=statuses, ax=Figure().add_subplot())
    as_list = picture(lambda ax: draw(pool, statuses=known, ax=ax))
    assert np.array_equal(picture(lambda ax: draw(pool, statuses=np.array(known), ax=ax)), as_list)
