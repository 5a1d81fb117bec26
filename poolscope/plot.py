"""Timelines of a pool with matplotlib: members, messages, wakes and activity.

There is no wall-clock time in the records, so the x axis of every plot is the
cursor (seq).  Each function draws on ``ax`` (a new figure when ``None``),
returns the :class:`~matplotlib.axes.Axes`, never calls ``plt.show()`` and
works with any backend (``Agg`` included):

* :func:`members` -- one lane per run, a bar per membership interval, coloured
  by agent; re-joins are separate bars on the same lane, joins that update a
  member are ticks;
* :func:`messages` -- a mark per message on its sender's lane, and a flow line
  (in the manner of Perfetto's flow arrows) to each recipient's lane,
  coloured by status; failed, timed-out and expired messages stand out;
* :func:`wakes` -- a span per wake condition on its waiting run's lane, from
  registration to its terminal status, with a marker per outcome;
* :func:`activity` -- message and wake status transitions per window of
  cursors, as stacked bars (messages up, wakes down);
* :func:`dashboard` -- the four stacked, sharing the x axis.

``upto=k`` draws the pool as it was at cursor ``k`` (open intervals and spans
run to ``k``); ``cursor=k`` only draws a marker line at ``k``.  On big pools
the plots aggregate instead of drawing every item (members per agent, message
counts per window and status, wake outcomes per window), so a figure of a
1M-record pool takes about as long as one of a small pool.

The artists carry a ``gid`` (``"members.interval"``, ``"messages.mark"``,
``"wakes.span"``, ``"cursor"``, ...) so that code and tests can find what was
drawn.

Example::

    >>> import poolscope
    >>> from poolscope import plot
    >>> pool = poolscope.open("sample_data/demo.db").pool("pool.alpha")
    >>> ax = plot.members(pool, cursor=600)
    >>> ax.figure.savefig("members.png")
    >>> ax.get_title(loc="left")
    'pool.alpha — membership (28 runs, 38 intervals)'
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from . import palette, wire
from .activity import default_window
from .arguments import (
    choice_argument,
    count_argument,
    names_argument,
    plot_arguments,
    upto_argument,
    window_argument,
)
from .errors import InvalidInputError
from .frames import Groups, membership_intervals
from .index import gc_paused
from .render import natural_key, shorten

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .history import PoolHistory

__all__ = [
    "members",
    "messages",
    "wakes",
    "activity",
    "dashboard",
    "flows",
    "latency",
    "compare",
    "MESSAGE_COLORS",
    "WAKE_COLORS",
    "XLABEL",
    "label_text",
    "member_lanes",
]

#: The x axis label of every plot.
XLABEL = "cursor (seq)"
#: Characters of an id shown in a lane label or a legend (longer ones are shortened in the middle).
LABEL_CHARS = 40
#: Characters of a pool id shown in a title.
TITLE_ID_CHARS = 60

#: Colour of each message status (:data:`poolscope.palette.MESSAGE_COLORS`).
MESSAGE_COLORS: dict[str, str] = palette.MESSAGE_COLORS
#: Colour of each wake status (:data:`poolscope.palette.WAKE_COLORS`).
WAKE_COLORS: dict[str, str] = palette.WAKE_COLORS
#: Message statuses drawn large and on top.
ALERT_STATUSES: frozenset[str] = palette.ALERT_STATUSES

_MESSAGE_MARKERS = {
    "accepted": "o",
    "delivered": "o",
    "responded": "o",
    "failed": "X",
    "timed_out": "D",
    "expired": "s",
    "cancelled": "o",
}
_WAKE_MARKERS = {"triggered": r"$\checkmark$", "timed_out": "D", "cancelled": "x", "failed": "X"}
_AGENT_PALETTE = palette.AGENT_COLORS
_GHOST = palette.GHOST
#: Above this many messages (wakes) after filters, the plots aggregate.
MAX_MARKS = 3000
#: Bands of the aggregated :func:`members` plot, one colour of the palette each: past this many agents, the
#: ``MAX_AGENT_BANDS - 1`` with the most runs keep theirs and the rest are summed into one "other" band.
MAX_AGENT_BANDS = len(palette.AGENT_COLORS)


# ---------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=4)
def _drawable(family: str) -> frozenset[int]:
    from matplotlib import font_manager, ft2font

    try:
        path = font_manager.findfont(font_manager.FontProperties(family=[family]), fallback_to_default=True)
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except Exception:  # pragma: no cover - a broken font setup: draw everything as is
        return frozenset(range(0x110000))


def label_text(text: Any, limit: int = LABEL_CHARS) -> str:
    """How an id is written on the plots: shortened in the middle to at most
    ``limit`` characters (a 4 KB run id takes a lane label's room, not the
    figure's; the full id is in the frames), characters that the font in use
    cannot draw (an emoji in a run id, say) spelled ``<U+1F680>`` instead of
    an empty box, control characters (an ESC, a newline: the SDK refuses
    them, a hostile file may hold them) spelled the same way, and ``$``
    escaped so that it is not read as mathtext.

    >>> label_text("run.7")
    'run.7'
    >>> label_text("run." + "x" * 4096 + ".end")
    'run.xxxxxxxxxxxxxxxxxxxxxx…xxxxxxxxx.end'
    >>> label_text("run.\U0001f680")  # matplotlib's DejaVu Sans has no emoji
    'run.<U+1F680>'
    >>> label_text("cost$")
    'cost\\\\$'
    >>> label_text("pool\x1b[31m.x")
    'pool<U+001B>[31m.x'
    """
    text = shorten(text, limit).replace("$", r"\$")  # a "$" would start mathtext
    if text.isascii() and text.isprintable():
        return text
    from matplotlib import rcParams

    family = rcParams["font.family"][0] if rcParams["font.family"] else "sans-serif"
    drawable = _drawable(family)
    return "".join(c if ord(c) in drawable and unicodedata.category(c) != "Cc" else f"<U+{ord(c):04X}>" for c in text)


def _new_axes(figsize: tuple[float, float]) -> Axes:
    """A fresh Axes: through pyplot when the caller already uses it (so that
    Jupyter shows the figure), else a bare :class:`Figure` (no global state)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _cursors(pool: PoolHistory, upto: Any, cursor: Any) -> tuple[int | None, int | None]:
    """A plot's ``upto`` and ``cursor``, checked as the frames check ``upto``
    (an integer from 0; ``CursorError`` otherwise) and kept within the pool's
    head, where the x axis ends."""
    upto = upto_argument(upto)
    cursor = upto_argument(cursor, "cursor")
    head = pool.head
    return (None if upto is None else min(upto, head)), (None if cursor is None else min(cursor, head))


def _x_end(pool: PoolHistory, upto: int | None) -> int:
    return pool.head if upto is None else int(upto)


def _thousands(value: float, _pos: Any = None) -> str:
    return f"{int(round(value)):,}"


def _style_x(ax: Axes, x_end: int, *, label: bool = True) -> None:
    ax.set_xlim(0, max(x_end, 1) * 1.005 + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    if label:
        ax.set_xlabel(XLABEL)
    ax.grid(axis="x", color=palette.GRID, linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _cursor_line(ax: Axes, cursor: int | None) -> None:
    if cursor is None:
        return
    cursor = int(cursor)
    ax.axvline(cursor, color=palette.CURSOR, linestyle="--", linewidth=1.1, zorder=6, gid="cursor")
    ax.text(
        cursor,
        0.995,
        f" cursor {cursor:,} ",
        transform=blended_transform_factory(ax.transData, ax.transAxes),
        ha="left",
        va="top",
        fontsize=7.5,
        color=palette.INK,
        zorder=7,
        gid="cursor.label",
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )


def _finish(
    ax: Axes,
    pool: PoolHistory,
    what: str,
    x_end: int,
    cursor: int | None,
    handles: Sequence[Any] = (),
    legend: str | None = None,
) -> Axes:
    """What every timeline ends with: its title (the pool's id, then ``what``
    it shows), the cursor axis, the cursor's line and the legend of
    ``handles`` (none when empty)."""
    ax.set_title(f"{label_text(pool.pool_id, TITLE_ID_CHARS)} — {what}", fontsize=10, loc="left")
    _style_x(ax, x_end)
    _cursor_line(ax, cursor)
    _legend(ax, list(handles), legend)
    return ax


def _legend(ax: Axes, handles: list, title: str | None = None) -> None:
    if not handles:
        return
    ax.legend(
        handles=handles,
        title=title,
        loc="upper left",
        bbox_to_anchor=(1.025, 1.0),
        fontsize=8,
        title_fontsize=8,
        frameon=False,
        borderaxespad=0.0,
    )


def _as_set(values: str | Iterable[str] | None, name: str = "runs") -> set[str] | None:
    """A selection of ids: None (all), one id, or several (any iterable of strings)."""
    chosen = names_argument(values, name)
    return None if chosen is None else set(chosen)


def _statuses(values: str | Iterable[str] | None, known: tuple[str, ...]) -> set[str] | None:
    """A selection of statuses (as :func:`_as_set`), each one of ``known``: an
    unknown one is an :class:`~poolscope.errors.InvalidInputError`, not a plot of nothing."""
    chosen = _as_set(values, "statuses")
    for status in chosen or ():
        choice_argument(status, "statuses", known)
    return chosen


_agent_colors = palette.agent_colors


def _lane_font(lanes: int) -> float:
    return 8.0 if lanes <= 25 else 7.0 if lanes <= 45 else 6.0


def _lane_axis(ax: Axes, lanes: Sequence[str], ghosts: set[str] | None = None) -> None:
    """One y tick per lane, first lane at the top; ghost runs (never members) in grey italics."""
    ax.set_yticks(np.arange(len(lanes)))
    ax.set_yticklabels([label_text(lane) for lane in lanes], fontsize=_lane_font(len(lanes)))
    ax.set_ylim(max(len(lanes), 1) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    if ghosts:
        for lane, label in zip(lanes, ax.get_yticklabels()):
            if lane in ghosts:
                label.set_color(_GHOST)
                label.set_fontstyle("italic")
    for y in range(len(lanes)):
        if y % 2:
            ax.axhspan(y - 0.5, y + 0.5, color=palette.STRIPE, zorder=0, linewidth=0)


def _take(table: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[mask] for key, value in table.items()}


@gc_paused()
def _member_intervals(pool: PoolHistory, upto: int | None) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """The rows of :meth:`PoolHistory.members_df` that the plots need, straight
    from the index (fast at 1M records): ``run_id``, ``agent_id`` (latest join
    of the interval), ``joined_at``, ``left_at`` (-1 while a member), ``joins``;
    and the ``(seq, row)`` of every join that updated a member."""
    rows, updates = membership_intervals(pool, upto)
    table = {
        "run_id": np.array([r["run_id"] for r in rows], dtype=object),
        "agent_id": np.array([r["member"].get("agent_id") for r in rows], dtype=object),
        "joined_at": np.array([r["joined_at"] for r in rows], dtype=np.int64),
        "left_at": np.array([-1 if r["left_at"] is None else r["left_at"] for r in rows], dtype=np.int64),
        "joins": np.array([r["joins"] for r in rows], dtype=np.int64),
    }
    return table, updates


def _natural(values: Iterable[Any]) -> list[Any]:
    """Distinct values in natural order (``worker-3`` before ``worker-11``)."""
    return sorted(dict.fromkeys(values), key=natural_key)


def _member_runs_in_order(pool: PoolHistory, upto: int | None) -> tuple[list[str], dict[str, str]]:
    """Runs that were members up to ``upto`` in natural order, and each run's latest agent."""
    table, _ = _member_intervals(pool, upto)
    return _natural(table["run_id"].tolist()), dict(zip(table["run_id"].tolist(), table["agent_id"].tolist()))


@plot_arguments
def member_lanes(pool: PoolHistory, *, upto: int | None = None) -> list[str]:
    """The lanes of :func:`members` (before any filter): every run that was a
    member up to ``upto``, in natural order (``worker-3`` before ``worker-11``).

    >>> member_lanes(pool)[:3]
    ['run.alpha.critic-15', 'run.alpha.critic-21', 'run.alpha.critic-26']
    """
    return _member_runs_in_order(pool, upto)[0]


def _size_for(lanes: int) -> tuple[float, float]:
    return (11.0, float(np.clip(0.2 * lanes + 1.6, 2.6, 13.0)))


# ---------------------------------------------------------------- members
@plot_arguments
@gc_paused()
def members(
    pool: PoolHistory,
    *,
    ax: Axes | None = None,
    upto: int | None = None,
    cursor: int | None = None,
    runs: str | Iterable[str] | None = None,
    agents: str | Iterable[str] | None = None,
    max_lanes: int = 60,
) -> Axes:
    """Membership over the cursor: one lane per run, a bar per membership interval.

    Each row of :meth:`PoolHistory.members_df` (``upto=upto``) is a bar from
    ``joined_at`` to ``left_at`` (to ``upto``, or the head, while still a
    member), coloured by agent; a run that leaves and re-joins has several
    bars on its lane; a ``member_joined`` of a run that is already a member
    (an update) is a black tick.  Lanes are in natural order of run id
    (``worker-3`` before ``worker-11``); long ids are shortened
    (:func:`label_text`).
    ``runs``/``agents`` keep only those runs/agents.  With more than
    ``max_lanes`` runs the plot aggregates: the number of members of each
    agent over the cursor, stacked (``gid="members.area"``, labelled with the
    agent), with the total as a black line (``gid="members.total"``).  Past
    :data:`MAX_AGENT_BANDS` agents, the :data:`MAX_AGENT_BANDS` - 1 with the
    most runs keep a band each and the rest are summed into one grey band,
    ``other (N agents)``: the picture's cost and its legend stay bounded
    however many agents the pool has.

    Artists: bars ``gid="members.interval"`` (one ``BarContainer`` per agent,
    labelled with the agent), ticks ``gid="members.update"``, marker line
    ``gid="cursor"``.

    >>> ax = members(pool, cursor=120, agents=["agent.alpha.worker"])
    >>> [tick.get_text() for tick in ax.get_yticklabels()]   # one lane per run
    ['run.alpha.worker-3', 'run.alpha.worker-4', 'run.alpha.worker-6', 'run.alpha.worker-11', 'run.alpha.worker-20', 'run.alpha.worker-23']
    """
    upto, cursor = _cursors(pool, upto, cursor)
    max_lanes = count_argument(max_lanes, "max_lanes")
    x_end = _x_end(pool, upto)
    table, updates = _member_intervals(pool, upto)
    colours = _agent_colors(table["agent_id"].tolist())
    run_set, agent_set = _as_set(runs), _as_set(agents, "agents")
    keep = np.ones(len(table["run_id"]), dtype=bool)
    if run_set is not None:
        keep &= np.isin(table["run_id"], list(run_set))
    if agent_set is not None:
        keep &= np.isin(table["agent_id"], list(agent_set))
    kept_rows = np.flatnonzero(keep)
    table = _take(table, keep)
    lanes = _natural(table["run_id"].tolist())
    aggregate = len(lanes) > max_lanes
    if ax is None:
        ax = _new_axes(_size_for(8 if aggregate else len(lanes)))
    run_ids, agent_ids = table["run_id"], table["agent_id"]
    start = table["joined_at"]
    still = table["left_at"] < 0
    stop = np.where(still, x_end, table["left_at"])
    agents_drawn = _natural(agent_ids.tolist())
    handles: list = []
    if aggregate:
        handles = _members_stacked(ax, run_ids, agent_ids, start, stop, still, x_end, colours)
        what = f"members per agent ({len(lanes):,} runs, {len(agents_drawn):,} agents, {len(run_ids):,} intervals)"
        ax.set_ylabel("members")
        handles.append(Line2D([], [], color=palette.INK, linewidth=0.9, label="all members"))
    else:
        lane_of = {run: i for i, run in enumerate(lanes)}
        y = np.fromiter((lane_of[r] for r in run_ids.tolist()), dtype=float, count=len(run_ids))
        for agent in agents_drawn:
            picked = agent_ids == agent
            container = ax.barh(
                y[picked],
                np.maximum(stop[picked] - start[picked], 0.6),
                left=start[picked],
                height=0.62,
                color=colours.get(agent, _GHOST),
                edgecolor="white",
                linewidth=0.4,
                label=label_text(agent),
                gid="members.interval",
                zorder=2,
            )
            for patch in container.patches:
                patch.set_gid("members.interval")
            handles.append(Patch(color=colours.get(agent, _GHOST), label=label_text(agent)))
        if still.any():
            ax.scatter(
                np.full(int(still.sum()), x_end),
                y[still],
                marker=">",
                s=14,
                color=palette.MARK,
                zorder=3,
                gid="members.open",
                linewidths=0,
            )
        row_of = {int(r): i for i, r in enumerate(kept_rows.tolist())}
        ticks = [(seq, y[row_of[row]]) for seq, row in updates if row in row_of]
        if ticks:
            ax.scatter(
                [s for s, _ in ticks],
                [t for _, t in ticks],
                marker="|",
                s=70,
                color="black",
                linewidths=1.2,
                zorder=4,
                gid="members.update",
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    color="black",
                    marker="|",
                    linestyle="none",
                    markersize=8,
                    markeredgewidth=1.2,
                    label="join update",
                )
            )
        _lane_axis(ax, lanes)
        what = f"membership ({len(lanes):,} runs, {len(run_ids):,} intervals)"
        ax.set_ylabel("run")
    return _finish(ax, pool, what, x_end, cursor, handles, "agent")


def _agent_bands(run_ids: np.ndarray, agent_ids: np.ndarray) -> tuple[list[Any], int]:
    """The agents drawn as bands of their own in the aggregated :func:`members`
    (the :data:`MAX_AGENT_BANDS` - 1 with the most runs, ties in natural
    order; every agent when there are no more than :data:`MAX_AGENT_BANDS`),
    in natural order, and how many agents the "other" band holds."""
    agents = _natural(agent_ids.tolist())
    if len(agents) <= MAX_AGENT_BANDS:
        return agents, 0
    runs = Counter(agent for agent, _ in dict.fromkeys(zip(agent_ids.tolist(), run_ids.tolist())))
    ranked = sorted(agents, key=lambda agent: -runs[agent])  # stable: ties keep the natural order
    kept = set(ranked[: MAX_AGENT_BANDS - 1])
    return [agent for agent in agents if agent in kept], len(agents) - len(kept)


def _members_stacked(
    ax: Axes,
    run_ids: np.ndarray,
    agent_ids: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    still: np.ndarray,
    x_end: int,
    colours: dict[str, str],
) -> list:
    """Members of each agent over the cursor, as a stacked step area plus the
    total; past :data:`MAX_AGENT_BANDS` agents, those with the fewest runs
    summed into one "other" band (:func:`_agent_bands`).  Returns the legend's
    handles, one per band."""
    events = np.unique(np.concatenate([[0, x_end], start, stop[~still]]))
    if len(events) > 3000:  # a step at every join and leave is more than the pixels: sample a grid
        events = np.unique(np.linspace(0, x_end, 3000).round().astype(np.int64))
    kept, others = _agent_bands(run_ids, agent_ids)
    if others:  # one colour each among the agents drawn (the one palette has MAX_AGENT_BANDS of them)
        colours = _agent_colors(kept)
    band = {agent: i for i, agent in enumerate(kept)}
    code = np.fromiter((band.get(a, len(kept)) for a in agent_ids.tolist()), dtype=np.int64, count=len(agent_ids))
    bands = [(i, colours.get(agent, _GHOST), label_text(agent)) for i, agent in enumerate(kept)]
    if others:
        bands.append((len(kept), _GHOST, f"other ({others:,} agents)"))
    bottom = np.zeros(len(events), dtype=np.int64)
    handles: list = []
    for i, colour, label in bands:
        picked = code == i
        joined = np.searchsorted(np.sort(start[picked]), events, side="right")
        left = np.searchsorted(np.sort(stop[picked & ~still]), events, side="right")
        count = joined - left
        ax.fill_between(
            events,
            bottom,
            bottom + count,
            step="post",
            color=colour,
            alpha=0.85,
            linewidth=0,
            label=label,
            gid="members.area",
        )
        handles.append(Patch(color=colour, label=label))
        bottom = bottom + count
    ax.plot(events, bottom, drawstyle="steps-post", color=palette.INK, linewidth=0.7, gid="members.total")
    ax.set_ylim(0, max(int(bottom.max()) if len(bottom) else 1, 1) * 1.08)
    return handles


# --------------------------------------------------------------- messages
@gc_paused()
def _message_table(pool: PoolHistory, upto: int | None) -> dict[str, np.ndarray]:
    """One row per message at ``upto`` (the columns of ``messages_df`` that the
    plot needs), from the frames' grouping (:class:`poolscope.frames.Groups`)."""
    groups = Groups(pool, upto, "messages")
    (keys,) = groups.columns("key")
    return {
        "message_id": np.asarray(keys, dtype=object),
        "status": groups.status_names(),
        "first_seq": groups.first_seq.astype(np.int64),
        "delivered_at": groups.reached[wire.MESSAGE_STATUSES.index("delivered")],
        "position": groups.last,  # the latest record of each message: its sender, target, recipients
    }


@gc_paused()
def _with_details(pool: PoolHistory, table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``sender``, ``target_type`` and ``recipients`` (from each message's latest record)."""
    if "sender" in table:
        return table
    latest = pool.index.entries_at(table["position"])
    recipients = np.empty(len(latest), dtype=object)
    recipients[:] = [e.delivered_to for e in latest]
    return table | {
        "sender": np.array([e.sender for e in latest], dtype=object),
        "target_type": np.array([e.target_type for e in latest], dtype=object),
        "recipients": recipients,
    }


def _touches(table: dict[str, np.ndarray], runs: set[str]) -> np.ndarray:
    """Which messages were sent by or delivered to one of ``runs``."""
    return np.fromiter(
        (
            (s in runs) or not runs.isdisjoint(rs)
            for s, rs in zip(table["sender"].tolist(), table["recipients"].tolist())
        ),
        dtype=bool,
        count=len(table["sender"]),
    )


def _filter_messages(
    pool: PoolHistory,
    table: dict[str, np.ndarray],
    statuses: set[str] | None,
    runs: set[str] | None,
    agents: set[str] | None,
    kinds: set[str] | None,
    agent_of: dict[str, str],
) -> dict[str, np.ndarray]:
    if statuses is not None:
        table = _take(table, np.isin(table["status"], list(statuses)))
    if runs is None and agents is None and kinds is None:
        return table
    table = _with_details(pool, table)
    keep = np.ones(len(table["status"]), dtype=bool)
    if kinds is not None:
        keep &= np.isin(table["target_type"], list(kinds))
    if runs is not None:
        keep &= _touches(table, runs)
    if agents is not None:
        keep &= _touches(table, {run for run, agent in agent_of.items() if agent in agents})
    return _take(table, keep)


@plot_arguments
@gc_paused()
def messages(
    pool: PoolHistory,
    *,
    ax: Axes | None = None,
    upto: int | None = None,
    cursor: int | None = None,
    statuses: str | Iterable[str] | None = None,
    runs: str | Iterable[str] | None = None,
    agents: str | Iterable[str] | None = None,
    kinds: str | Iterable[str] | None = None,
    max_marks: int = MAX_MARKS,
    max_lanes: int = 60,
    window: int | None = None,
    ghosts: str = "auto",
) -> Axes:
    """Messages as flows between lanes: a mark per message, a line per recipient.

    For every message of :meth:`PoolHistory.messages_df` (``upto=upto``): a
    mark on its sender's lane at ``first_seq``, and a flow line from there to
    each recipient's lane at ``delivered_at`` (``first_seq`` if never
    delivered), ending in an arrow head.  Colour and marker tell the status at
    ``upto`` (:data:`MESSAGE_COLORS`); ``failed`` (red ✕), ``timed_out``
    (orange ◆) and ``expired`` (magenta ■) are large and drawn on top.  Lanes
    are runs, members first (in natural order), then runs that sent or received
    but never joined (ghosts, grey italics): one lane each with
    ``ghosts="each"``, all on one lane with ``ghosts="merge"``, and with
    ``"auto"`` (the default) one lane each unless there are more than 3.

    Filters: ``statuses`` (status at ``upto``; a status no message has is an
    :class:`~poolscope.errors.InvalidInputError`), ``runs`` (messages sent by or
    delivered to these runs), ``agents`` (sent by or delivered to a run of
    these agents), ``kinds`` (address target type: ``run``, ``agent``,
    ``topic``, ``pool``).  With more than ``max_marks`` messages or
    ``max_lanes`` lanes after filters, the plot aggregates: one strip per
    status, a cell per window of ``window`` cursors (by ``first_seq``) shaded
    by how many messages of that status started there (each strip scaled to
    its own maximum; totals in the labels).

    Artists: marks ``gid="messages.mark"`` (one scatter per status, labelled),
    flow lines ``gid="messages.flow"`` (a ``LineCollection``, one segment per
    recipient), arrow heads ``gid="messages.head"``, aggregated strips
    ``gid="messages.strip.<status>"`` (``get_array()`` holds the counts).

    >>> ax = messages(pool, statuses=["failed", "expired", "timed_out"])
    >>> sorted(c.get_label() for c in ax.collections if c.get_gid() == "messages.mark")
    ['expired', 'failed', 'timed_out']
    >>> ax = messages(pool, runs="run.alpha.worker-3", cursor=400)
    >>> ax.get_title(loc="left")
    'pool.alpha — messages (38; 232 deliveries)'
    """
    ghosts = choice_argument(ghosts, "ghosts", ("auto", "each", "merge"))
    upto, cursor = _cursors(pool, upto, cursor)
    max_marks, max_lanes = count_argument(max_marks, "max_marks"), count_argument(max_lanes, "max_lanes")
    window = window_argument(window)  # checked as activity checks it, whether the plot aggregates or not
    x_end = _x_end(pool, upto)
    member_runs, agent_of = _member_runs_in_order(pool, upto)
    table = _message_table(pool, upto)
    table = _filter_messages(
        pool,
        table,
        _statuses(statuses, wire.MESSAGE_STATUSES),
        _as_set(runs),
        _as_set(agents, "agents"),
        _as_set(kinds, "kinds"),
        agent_of,
    )
    count = len(table["status"])
    touched: dict[str, None] = {}
    if count <= max_marks:  # beyond, the plot aggregates whatever the lanes
        table = _with_details(pool, table)
        for sender, recipients in zip(table["sender"].tolist(), table["recipients"].tolist()):
            touched[sender] = None
            touched.update(dict.fromkeys(recipients))
    member_set = set(member_runs)
    ghost_runs = _natural(r for r in touched if r not in member_set and r is not None)
    merge = ghosts == "merge" or (ghosts == "auto" and len(ghost_runs) > 3)
    ghost_lane = f"non-members ({len(ghost_runs):,} runs)"
    lanes = [r for r in member_runs if r in touched] + ([ghost_lane] if merge and ghost_runs else ghost_runs)
    aggregate = count > max_marks or len(lanes) > max_lanes
    if ax is None:
        ax = _new_axes(_size_for(7 if aggregate else len(lanes)))
    if aggregate:
        _message_strips(ax, table, x_end, window)
        return _finish(ax, pool, f"{count:,} messages by status (per window of cursors, by first seq)", x_end, cursor)
    lane_of = {run: i for i, run in enumerate(lanes)}
    if merge and ghost_runs:
        lane_of.update(dict.fromkeys(ghost_runs, lane_of[ghost_lane]))
    sender_y = np.fromiter((lane_of[s] for s in table["sender"].tolist()), dtype=float, count=count)
    first = table["first_seq"]
    arrive = np.where(table["delivered_at"] >= 0, table["delivered_at"], first)
    status_arr = table["status"]
    present = [s for s in wire.MESSAGE_STATUSES if s in set(status_arr.tolist())]
    # flow lines, normal statuses under alert statuses
    segments: list = []
    seg_colours: list = []
    heads: dict[str, list] = {"v": [], "^": [], ">": []}
    head_colours: dict[str, list] = {"v": [], "^": [], ">": []}
    order = np.argsort(
        np.fromiter((s in ALERT_STATUSES for s in status_arr), dtype=bool, count=len(status_arr)), kind="stable"
    )
    recipients = table["recipients"].tolist()
    for i in order.tolist():
        colour = MESSAGE_COLORS.get(status_arr[i], _GHOST)
        y0 = sender_y[i]
        for r in recipients[i]:
            y1 = lane_of[r]
            segments.append(((first[i], y0), (arrive[i], y1)))
            seg_colours.append(colour)
            marker = ">" if y1 == y0 else ("v" if y1 > y0 else "^")  # y grows downward on screen
            heads[marker].append((arrive[i], y1))
            head_colours[marker].append(colour)
    if segments:
        ax.add_collection(
            LineCollection(segments, colors=seg_colours, linewidths=0.7, alpha=0.55, zorder=2, gid="messages.flow")
        )
    for marker, points in heads.items():
        if points:
            xs, ys = zip(*points)
            ax.scatter(
                xs,
                ys,
                marker=marker,
                s=12,
                c=head_colours[marker],
                linewidths=0,
                alpha=0.8,
                zorder=3,
                gid="messages.head",
            )
    handles: list = []
    for status in present:
        picked = status_arr == status
        alert = status in ALERT_STATUSES
        ax.scatter(
            first[picked],
            sender_y[picked],
            marker=_MESSAGE_MARKERS[status],
            s=46 if alert else 16,
            c=MESSAGE_COLORS[status],
            edgecolors="black" if alert else "white",
            linewidths=0.6 if alert else 0.3,
            zorder=5 if alert else 4,
            label=status,
            gid="messages.mark",
        )
        handles.append(
            Line2D(
                [],
                [],
                marker=_MESSAGE_MARKERS[status],
                linestyle="none",
                markerfacecolor=MESSAGE_COLORS[status],
                markeredgecolor="black" if alert else "white",
                markersize=8 if alert else 6,
                label=f"{status} ({int(picked.sum()):,})",
            )
        )
    if segments:
        handles.append(
            Line2D([], [], color=palette.MUTED, linewidth=0.9, marker="v", markersize=4, label="→ recipient")
        )
    _lane_axis(ax, lanes, {r for r in lanes if r not in member_set})
    ax.set_ylabel("run")
    return _finish(ax, pool, f"messages ({count:,}; {len(segments):,} deliveries)", x_end, cursor, handles, "status")


def _message_strips(ax: Axes, table: dict[str, np.ndarray], x_end: int, window: int | None) -> None:
    window = default_window(x_end, 150) if window is None else window
    bins = max(1, int(np.ceil(max(x_end, 1) / window)))
    first = table["first_seq"]
    status_arr = table["status"]
    labels = []
    statuses = [s for s in wire.MESSAGE_STATUSES if (status_arr == s).any()]
    for row, status in enumerate(statuses):
        picked = first[status_arr == status]
        counts = np.bincount(np.clip((picked - 1) // window, 0, bins - 1), minlength=bins).astype(float)
        cmap = mcolors.LinearSegmentedColormap.from_list(status, ["white", MESSAGE_COLORS[status]])
        ax.imshow(
            counts[None, :],
            aspect="auto",
            cmap=cmap,
            interpolation="nearest",
            norm=mcolors.PowerNorm(0.5, vmin=0, vmax=max(counts.max(), 1)),
            extent=(0.5, bins * window + 0.5, row + 0.42, row - 0.42),
            zorder=2,
            gid=f"messages.strip.{status}",
        )
        labels.append(f"{status} ({len(picked):,})")
    ax.set_yticks(np.arange(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    for tick, status in zip(ax.get_yticklabels(), statuses):
        if status in ALERT_STATUSES:
            tick.set_color(MESSAGE_COLORS[status])
            tick.set_fontweight("bold")
    ax.set_ylim(max(len(labels), 1) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel(f"status  (window = {window:,})", fontsize=9)


# ------------------------------------------------------------------ wakes
@gc_paused()
def _wake_table(pool: PoolHistory, upto: int | None) -> dict[str, np.ndarray]:
    """One row per wake condition at ``upto``: id, run, status, start (first
    ``registered``, else first record) and ``terminal_at`` (-1 while open),
    from the frames' grouping (:class:`poolscope.frames.Groups`)."""
    groups = Groups(pool, upto, "wakes")
    keys, runs = groups.columns("key", "run_id")
    registered = groups.reached[wire.WAKE_STATUSES.index("registered")]
    return {
        "condition_id": np.asarray(keys, dtype=object),
        "run_id": np.asarray(runs, dtype=object),
        "status": groups.status_names(),
        "start": np.where(registered >= 0, registered, groups.first_seq).astype(np.int64),
        "terminal_at": groups.terminal_at(),
    }


@plot_arguments
@gc_paused()
def wakes(
    pool: PoolHistory,
    *,
    ax: Axes | None = None,
    upto: int | None = None,
    cursor: int | None = None,
    statuses: str | Iterable[str] | None = None,
    runs: str | Iterable[str] | None = None,
    max_marks: int = MAX_MARKS,
    max_lanes: int = 60,
    window: int | None = None,
) -> Axes:
    """Wake conditions as spans on their waiting run's lane.

    For every row of :meth:`PoolHistory.wakes_df` (``upto=upto``): a span
    from ``registered_at`` to ``terminal_at`` (to ``upto``, or the head,
    while still registered), coloured by the status at ``upto``
    (:data:`WAKE_COLORS`), and at its end a marker per outcome: triggered ✓
    (green), timed_out ◆ (orange), cancelled × (grey), failed ✕ (red).
    ``statuses`` keeps the wakes whose status at ``upto`` is one of these
    (a status no wake has is an :class:`~poolscope.errors.InvalidInputError`);
    ``runs`` keeps the wakes of these waiting runs.

    With more than ``max_marks`` wakes or ``max_lanes`` lanes after filters,
    the plot aggregates per window of ``window`` cursors: stacked bars of the
    wakes that reached each terminal status in the window
    (``gid="wakes.ended.<status>"``) and a step line of the wakes still
    ``registered`` at the end of each window (``gid="wakes.registered"``).

    Artists: spans ``gid="wakes.span"`` (one ``BarContainer`` per status),
    outcome markers ``gid="wakes.outcome"`` (one scatter per terminal status).

    >>> ax = wakes(pool, statuses=["timed_out", "failed"], cursor=300)
    >>> ax.get_title(loc="left")
    'pool.alpha — wakes (31 conditions, 15 waiting runs)'
    """
    upto, cursor = _cursors(pool, upto, cursor)
    max_marks, max_lanes = count_argument(max_marks, "max_marks"), count_argument(max_lanes, "max_lanes")
    window = window_argument(window)  # checked as activity checks it, whether the plot aggregates or not
    x_end = _x_end(pool, upto)
    member_runs, _ = _member_runs_in_order(pool, upto)
    table = _wake_table(pool, upto)
    status_set, run_set = _statuses(statuses, wire.WAKE_STATUSES), _as_set(runs)
    if status_set is not None:
        table = _take(table, np.isin(table["status"], list(status_set)))
    if run_set is not None:
        table = _take(table, np.isin(table["run_id"], list(run_set)))
    count = len(table["status"])
    waiting = list(dict.fromkeys(table["run_id"].tolist())) if count <= max_marks else []
    member_set = set(member_runs)
    waiting_set = set(waiting)
    lanes = [r for r in member_runs if r in waiting_set] + _natural(r for r in waiting if r not in member_set)
    aggregate = count > max_marks or len(lanes) > max_lanes
    if ax is None:
        ax = _new_axes(_size_for(7 if aggregate else len(lanes)))
    if aggregate:
        _wake_bars(ax, table, x_end, window)
        return _finish(ax, pool, f"{count:,} wakes: outcomes per window and wakes registered", x_end, cursor)
    lane_of = {run: i for i, run in enumerate(lanes)}
    start = table["start"]
    end = np.where(table["terminal_at"] < 0, x_end, table["terminal_at"])
    y, height = _sub_lanes(
        np.fromiter((lane_of[r] for r in table["run_id"].tolist()), dtype=np.int64, count=count), start, end
    )
    status_arr = table["status"]
    handles: list = []
    for status in wire.WAKE_STATUSES:
        picked = status_arr == status
        if not picked.any():
            continue
        colour = WAKE_COLORS[status]
        container = ax.barh(
            y[picked],
            np.maximum(end[picked] - start[picked], 0.8),
            left=start[picked],
            height=height[picked],
            color=colour,
            alpha=0.45 if status != "registered" else 0.6,
            edgecolor=colour,
            linewidth=0.6,
            label=status,
            gid="wakes.span",
            zorder=2,
        )
        for patch in container.patches:
            patch.set_gid("wakes.span")
        if status == "registered":
            ax.scatter(end[picked], y[picked], marker=">", s=16, color=colour, zorder=4, linewidths=0, gid="wakes.open")
            handles.append(
                Line2D(
                    [],
                    [],
                    color=colour,
                    linewidth=5,
                    alpha=0.7,
                    marker=">",
                    markersize=5,
                    label=f"registered ({int(picked.sum()):,})",
                )
            )
            continue
        big = status in ("failed", "timed_out")
        ax.scatter(
            end[picked],
            y[picked],
            marker=_WAKE_MARKERS[status],
            s=60 if status == "triggered" else 40 if big else 30,
            color=colour,
            edgecolors="black" if big else None,
            linewidths=0.5 if big else 1.3,
            zorder=5,
            label=status,
            gid="wakes.outcome",
        )
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linewidth=5,
                alpha=0.45,
                marker=_WAKE_MARKERS[status],
                markersize=8,
                markerfacecolor=colour,
                markeredgecolor="black" if big else colour,
                label=f"{status} ({int(picked.sum()):,})",
            )
        )
    _lane_axis(ax, lanes, {r for r in lanes if r not in member_set})
    ax.set_ylabel("waiting run")
    return _finish(
        ax, pool, f"wakes ({count:,} conditions, {len(lanes):,} waiting runs)", x_end, cursor, handles, "status"
    )


def _sub_lanes(lane: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stack the overlapping spans of a lane into rows within it: (y centre, height) per span."""
    y = lane.astype(float)
    height = np.full(len(lane), 0.55)
    order = np.lexsort((start, lane))
    row_of = np.zeros(len(lane), dtype=np.int64)
    rows_in: dict = {}
    current: Any = None
    row_ends: list = []
    for i in order.tolist():
        if lane[i] != current:
            current, row_ends = lane[i], []
        for r, last in enumerate(row_ends):
            if last < start[i]:
                row_ends[r] = end[i]
                row_of[i] = r
                break
        else:
            row_ends.append(end[i])
            row_of[i] = len(row_ends) - 1
        rows_in[current] = len(row_ends)
    for i in range(len(lane)):
        rows = rows_in[lane[i]]
        if rows > 1:
            height[i] = 0.8 / rows
            y[i] = lane[i] - 0.4 + height[i] * (row_of[i] + 0.5)
    return y, height * 0.9


def _wake_bars(ax: Axes, table: dict[str, np.ndarray], x_end: int, window: int | None) -> None:
    window = default_window(x_end, 80) if window is None else window
    bins = max(1, int(np.ceil(max(x_end, 1) / window)))
    lefts = np.arange(bins) * window + 0.5
    terminal = table["terminal_at"]
    status_arr = table["status"]
    bottom = np.zeros(bins)
    handles: list = []
    for status in wire.WAKE_STATUSES[1:]:
        picked = terminal[(status_arr == status) & (terminal >= 0)]
        if not len(picked):
            continue
        counts = np.bincount(np.clip((picked - 1) // window, 0, bins - 1), minlength=bins)
        ax.bar(
            lefts,
            counts,
            width=window,
            bottom=bottom,
            align="edge",
            color=WAKE_COLORS[status],
            linewidth=0,
            label=status,
            gid=f"wakes.ended.{status}",
            zorder=2,
        )
        bottom = bottom + counts
        handles.append(Patch(color=WAKE_COLORS[status], label=f"{status} ({len(picked):,})"))
    # registered at the end of each window: registered by then, not yet terminal
    ends = np.minimum((np.arange(bins) + 1) * window, x_end)
    start = np.sort(table["start"])
    done = np.sort(terminal[terminal >= 0])
    registered = np.searchsorted(start, ends, side="right") - np.searchsorted(done, ends, side="right")
    ax.step(
        np.concatenate([[0.5], ends + 0.5]),
        np.concatenate([[registered[0]], registered]),
        where="pre",
        color=WAKE_COLORS["registered"],
        linewidth=1.6,
        gid="wakes.registered",
        zorder=3,
    )
    handles.append(Line2D([], [], color=WAKE_COLORS["registered"], linewidth=1.6, label="registered (at window end)"))
    ax.set_ylabel(f"wakes  (window = {window:,})", fontsize=9)
    _legend(ax, handles, "outcome")


# --------------------------------------------------------------- activity
@plot_arguments
@gc_paused()
def activity(
    pool: PoolHistory,
    *,
    ax: Axes | None = None,
    upto: int | None = None,
    cursor: int | None = None,
    window: int | None = None,
    series: Sequence[str] = ("message", "wake"),
) -> Axes:
    """Status transitions per window of cursors, as bars stacked by status.

    Draws :meth:`PoolHistory.activity` (``window``, ``upto``): every
    ``run_message`` (``wake``) record is a transition of a message (wake) to
    its status.  The first of ``series`` is drawn above the axis and the
    second, if any, below it (y tick labels are counts either way);
    ``"record"`` (records by kind) may be one of the two.  Colours are
    :data:`MESSAGE_COLORS` and :data:`WAKE_COLORS`.

    Artists: one filled ``StepPatch`` (``ax.stairs``) per series and status,
    labelled ``"<series>: <status>"`` with ``gid="activity.<series>.<status>"``;
    its ``get_data()`` gives, per window, the top (``values``) and bottom
    (``baseline``) of that status's part of the stack, so ``values -
    baseline`` are the counts (negative below the axis).

    >>> ax = activity(pool, window=50, series=("message",))
    >>> ax.get_title(loc="left")
    'pool.alpha — activity: message status per window'
    >>> ax = activity(pool, series=("record", "message"))
    >>> ax.get_title(loc="left")
    'pool.alpha — activity: record kind and message status per window'
    """
    series = (series,) if isinstance(series, str) else tuple(series)
    unknown = set(series) - {"message", "wake", "record"}
    if unknown or not 1 <= len(series) <= 2 or len(set(series)) != len(series):
        raise InvalidInputError(f"series must be one or two of 'message', 'wake', 'record', not {series!r}")
    upto, cursor = _cursors(pool, upto, cursor)
    x_end = _x_end(pool, upto)
    frame = gc_paused()(pool.activity)(window, upto=upto)
    if len(frame):
        window = int(frame["window_end"].iloc[0] - frame["window_start"].iloc[0] + 1)
    elif window is None:
        window = default_window(pool.head if upto is None else min(int(upto), pool.head))
    if ax is None:
        ax = _new_axes((11.0, 3.6))
    handles: list = []
    last = int(frame["window_end"].max()) if len(frame) else max(x_end, 1)
    bins = max(1, -(-last // window))
    edges = np.arange(bins + 1) * window + 0.5
    extent = [0, 0]  # the highest stack below and above the axis
    for number, name in enumerate(series):
        sign = 1 if number == 0 else -1
        sub = frame[frame["series"] == name]
        if name == "record":
            names = list(wire.KINDS) + ["damaged"]
            colours = palette.KIND_COLORS
        else:
            names = list(wire.MESSAGE_STATUSES if name == "message" else wire.WAKE_STATUSES)
            colours = MESSAGE_COLORS if name == "message" else WAKE_COLORS
        slot = ((sub["window_start"].to_numpy(dtype=np.int64) - 1) // window).astype(np.int64)
        labels = sub["name"].astype(str).to_numpy()
        counts = sub["count"].to_numpy(dtype=np.int64)
        bottom = np.zeros(bins, dtype=np.int64)
        drawn = []
        for status in names:
            picked = labels == status
            if not counts[picked].any():
                continue
            heights = np.bincount(slot[picked], weights=counts[picked], minlength=bins).astype(np.int64)
            ax.stairs(
                sign * (bottom + heights),
                edges,
                baseline=sign * bottom,
                fill=True,
                color=colours[status],
                linewidth=0,
                label=f"{name}: {status}",
                gid=f"activity.{name}.{status}",
                zorder=2,
            )
            bottom = bottom + heights
            drawn.append(Patch(color=colours[status], label=status))
        if drawn and len(series) == 2:
            arrow = "↑" if sign > 0 else "↓"
            handles.append(Patch(visible=False, label=f"{name}s {arrow}" if name != "record" else f"records {arrow}"))
        handles.extend(drawn)
        extent[number] = int(bottom.max())
    ax.set_ylim(-1.05 * extent[1], 1.05 * max(extent[0], 1))
    if bins <= 150:  # a thin gap between windows
        ax.vlines(edges[1:-1], 0, 1, transform=ax.get_xaxis_transform(), colors="white", linewidth=0.7, zorder=3)
    if len(series) == 2:
        ax.axhline(0, color=palette.MARK, linewidth=0.8, zorder=3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _thousands(abs(v))))
        ax.set_ylabel(f"{series[1]}s  |  {series[0]}s\n(per {window:,} cursors)", fontsize=9)
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_ylabel(f"{series[0]}s per {window:,} cursors", fontsize=9)
    what = " and ".join("record kind" if s == "record" else f"{s} status" for s in series)
    return _finish(ax, pool, f"activity: {what} per window", x_end, cursor, handles)


# -------------------------------------------------------------- dashboard
@plot_arguments
@gc_paused()
def dashboard(
    pool: PoolHistory,
    *,
    fig: Figure | None = None,
    upto: int | None = None,
    cursor: int | None = None,
) -> Figure:
    """The four plots stacked (members, messages, wakes, activity), sharing the x axis.

    Its arguments are those of the four plots, in the same order and, like
    theirs, keyword-only: ``fig`` (a new figure when ``None``; the plots take
    ``ax``), ``upto`` and ``cursor``.  Returns the :class:`~matplotlib.figure.Figure`; its ``axes`` are the four
    plots in that order.

    >>> fig = dashboard(pool, cursor=600)
    >>> fig.savefig("pool.png", dpi=110)
    >>> len(fig.axes)
    4
    """
    upto, cursor = _cursors(pool, upto, cursor)
    lanes = len(member_lanes(pool, upto=upto))
    member_rows = min(lanes, 60) if lanes <= 60 else 8
    ratios = [max(member_rows, 4) * 0.22 + 1.0, max(member_rows, 4) * 0.22 + 1.4, max(member_rows, 4) * 0.18 + 1.0, 2.6]
    if fig is None:
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(12, sum(ratios)), layout="constrained")
        else:
            fig = Figure(figsize=(12, sum(ratios)), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    members(pool, ax=axes[0], upto=upto, cursor=cursor)
    messages(pool, ax=axes[1], upto=upto, cursor=cursor)
    wakes(pool, ax=axes[2], upto=upto, cursor=cursor)
    activity(pool, ax=axes[3], upto=upto, cursor=cursor)
    for ax in axes[:-1]:
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelbottom=False)
    return fig


# the why and compare plots (poolscope/whyplot.py)
from .whyplot import compare, flows, latency  # noqa: E402
