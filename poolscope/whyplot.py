"""Plots of the why and compare views; re-exported by :mod:`poolscope.plot`.

* :func:`flows` -- who messages whom: a sender x recipient matrix, colour =
  messages, a red ring = the share that failed, timed out or expired;
* :func:`latency` -- cursors between statuses, per agent (or run), one box
  per status reached;
* :func:`compare` -- the activity of two pools on shared axes, the first
  divergence marked.

Like every plot of :mod:`poolscope.plot` each takes ``ax=`` and returns the
Axes; the x axis of timelines is the cursor (the SDK records no time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from . import palette
from .arguments import plot_arguments
from .index import gc_paused

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .compare import Comparison
    from .history import PoolHistory

__all__ = ["flows", "latency", "compare"]

#: Senders (recipients) drawn in the flow matrix; the rest are summed into "(others)".
MAX_FLOW_LABELS = 25


def _top(matrix: pd.DataFrame, axis: int, limit: int) -> pd.DataFrame:
    labels = matrix.index if axis == 0 else matrix.columns
    if len(labels) <= limit:
        return matrix
    keep = list(labels[: limit - 1])
    rest = [label for label in labels if label not in keep]
    if axis == 0:
        others = matrix.loc[rest].sum(axis=0).to_frame("(others)").T
        return pd.concat([matrix.loc[keep], others])
    others = matrix[rest].sum(axis=1).to_frame("(others)")
    return pd.concat([matrix[keep], others], axis=1)


@plot_arguments
@gc_paused()
def flows(pool: PoolHistory, by: str = "agent", *, upto: int | None = None, ax: Axes | None = None) -> Axes:
    """Who messages whom (:func:`poolscope.flows.flow_matrix`): one row per
    sender, one column per recipient; the colour of a cell is how many
    messages went that way (log scale), the red ring's size the share of
    them that failed, timed out or expired, with the share written in cells
    where it is not zero.  Messages delivered to nobody are in the column
    ``(nobody)``.  At most :data:`MAX_FLOW_LABELS` rows and columns (the
    rest summed into ``(others)``).

    >>> from poolscope import plot
    >>> ax = plot.flows(pool, by="agent")
    >>> ax.get_title()
    'pool.alpha: messages sender → recipient\\ncolour: messages · red ring: share failed, timed out or expired'
    """
    from .flows import FAILURE_STATUSES, flows_df
    from .plot import _new_axes, label_text

    frame = flows_df(pool, upto, by=by)
    frame = frame.assign(
        sender=frame["sender"].astype(object).fillna("(unknown)"),
        recipient=frame["recipient"].astype(object).fillna("(nobody)"),
        failed=np.where(frame["status"].isin(FAILURE_STATUSES), frame["messages"], 0),
    )
    volume = frame.pivot_table(index="sender", columns="recipient", values="messages", aggfunc="sum", fill_value=0)
    failed = frame.pivot_table(index="sender", columns="recipient", values="failed", aggfunc="sum", fill_value=0)
    if len(volume):
        rows = volume.sum(axis=1).sort_values(ascending=False).index
        cols = volume.sum(axis=0).sort_values(ascending=False).index
        volume, failed = volume.loc[rows, cols], failed.loc[rows, cols]
        volume = _top(_top(volume, 0, MAX_FLOW_LABELS), 1, MAX_FLOW_LABELS)
        failed = _top(_top(failed, 0, MAX_FLOW_LABELS), 1, MAX_FLOW_LABELS)
    n_rows, n_cols = volume.shape
    if ax is None:
        ax = _new_axes((max(5.0, 1.6 + 0.42 * n_cols), max(3.0, 1.4 + 0.34 * n_rows)))
    if not n_rows:
        ax.text(0.5, 0.5, "no messages", ha="center", va="center", transform=ax.transAxes, gid="flows.empty")
        ax.set_axis_off()
        return ax
    values = volume.to_numpy(dtype=float)
    shown = np.where(values > 0, values, np.nan)
    image = ax.imshow(
        shown,
        cmap="Blues",
        norm=mcolors.LogNorm(vmin=1, vmax=max(2.0, float(np.nanmax(shown)))),
        aspect="auto",
        interpolation="nearest",
        gid="flows.matrix",
    )
    share = np.divide(failed.to_numpy(dtype=float), values, out=np.zeros_like(values), where=values > 0)
    ys, xs = np.nonzero(share > 0)
    if len(ys):
        ax.scatter(
            xs,
            ys,
            s=20 + 280 * share[ys, xs],
            facecolors="none",
            edgecolors=palette.MESSAGE_COLORS["failed"],
            linewidths=1.4,
            gid="flows.failure",
            zorder=3,
        )
        if n_rows * n_cols <= 150:
            for y, x in zip(ys.tolist(), xs.tolist()):
                ax.text(
                    x,
                    y + 0.32,
                    f"{share[y, x]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color=palette.MESSAGE_COLORS["failed"],
                )
    ax.set_xticks(np.arange(n_cols))
    ax.set_xticklabels([label_text(c) for c in volume.columns], rotation=45, ha="right", fontsize=7.5)
    ax.set_yticks(np.arange(n_rows))
    ax.set_yticklabels([label_text(r) for r in volume.index], fontsize=7.5)
    ax.set_xlabel(f"recipient ({by})")
    ax.set_ylabel(f"sender ({by})")
    ax.set_title(
        f"{label_text(pool.pool_id)}: messages sender → recipient\n"
        "colour: messages · red ring: share failed, timed out or expired",
        fontsize=9,
    )
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    colorbar.set_label("messages", fontsize=8)
    colorbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    colorbar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
    return ax


@plot_arguments
@gc_paused()
def latency(
    pool: PoolHistory,
    by: str = "agent",
    *,
    kind: str = "message",
    upto: int | None = None,
    ax: Axes | None = None,
    limit: int = 15,
) -> Axes:
    """Cursors between statuses (:func:`poolscope.flows.latency_df`), one row
    per agent (``by="run"``: per run; ``by="status"``: per transition), one
    horizontal box per status reached, coloured by that status.  ``kind`` is
    ``"message"`` or ``"wake"``.  The x axis counts cursors, the only clock
    the SDK records (symmetric log scale).  At most ``limit`` rows (the
    busiest; at least 1).

    >>> from poolscope import plot
    >>> ax = plot.latency(pool, by="agent")
    >>> ax.get_title()
    'pool.alpha: message latency by agent'
    """
    from .arguments import choice_argument, count_argument
    from .flows import latency_df
    from .palette import MESSAGE_COLORS, WAKE_COLORS
    from .plot import _new_axes, label_text

    by = choice_argument(by, "by", ("agent", "run", "status"))
    kind = choice_argument(kind, "kind", ("message", "wake"))
    limit = count_argument(limit, "limit")
    frame = latency_df(pool, upto)
    frame = frame[frame["kind"] == kind]
    column = {"agent": "agent_id", "run": "run_id", "status": "from_status"}[by]
    groups = frame[column].astype(object).fillna("(unknown)")
    order = groups.value_counts().index[:limit].tolist()
    statuses = [s for s in frame["to_status"].cat.categories if (frame["to_status"] == s).any()]
    colors = {**WAKE_COLORS, **MESSAGE_COLORS} if kind == "message" else {**MESSAGE_COLORS, **WAKE_COLORS}
    if ax is None:
        ax = _new_axes((9.0, max(2.6, 1.2 + 0.5 * len(order) * max(1, len(statuses)) ** 0.5)))
    if not order:
        ax.text(0.5, 0.5, f"no {kind} reached two statuses", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    height = 0.8 / max(1, len(statuses))
    handles = []
    for j, status in enumerate(statuses):
        data, positions = [], []
        for i, group in enumerate(order):
            values = frame["cursors"][(groups == group).to_numpy() & (frame["to_status"] == status).to_numpy()]
            if len(values):
                data.append(values.to_numpy())
                positions.append(i - 0.4 + height * (j + 0.5))
        if not data:
            continue
        parts = ax.boxplot(
            data,
            positions=positions,
            widths=height * 0.85,
            orientation="horizontal",
            patch_artist=True,
            showfliers=True,
            flierprops={"markersize": 2, "markeredgecolor": colors.get(status, "#555")},
            medianprops={"color": "#222"},
            manage_ticks=False,
        )
        for box in parts["boxes"]:
            box.set_facecolor(colors.get(status, "#999"))
            box.set_alpha(0.75)
            box.set_gid(f"latency.{status}")
        handles.append(Patch(facecolor=colors.get(status, "#999"), alpha=0.75, label=f"→ {status}"))
    ax.set_yticks(np.arange(len(order)))
    ax.set_yticklabels([label_text(g) for g in order], fontsize=8)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel("cursors between statuses (records appended in between; the SDK records no time)")
    ax.set_title(f"{label_text(pool.pool_id)}: {kind} latency by {by}", fontsize=10)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.legend(
        handles=handles, title="to status", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    return ax


_FAILURES = {"message": ("failed", "timed_out", "expired"), "wake": ("timed_out", "failed")}


@plot_arguments
@gc_paused()
def compare(
    a: Any,
    b: Any = None,
    *,
    window: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The activity of two pools on shared axes: per window of cursors, the
    records of each (solid: a, dashed: b) and their failures (failed, timed
    out, expired messages; timed-out and failed wakes) in red; the first
    divergence marked.  ``a`` is a :class:`~poolscope.compare.Comparison`, or
    two pools (or ``(pool, cursor)`` pairs) to compare.

    >>> from poolscope import plot
    >>> ax = plot.compare(poolscope.compare(pool, pool.without(runs="run.alpha.planner-2")))
    >>> ax.get_title()
    'first divergence: cursor 4 in a, 5 in b'
    """
    from .activity import activity, default_window
    from .arguments import window_argument
    from .compare import Comparison
    from .compare import compare as make
    from .plot import XLABEL, _new_axes, _style_x, label_text

    comparison: Comparison = a if isinstance(a, Comparison) else make(a, b)
    end = max(comparison.cursor_a, comparison.cursor_b, 1)
    window = window_argument(window)
    window = default_window(end) if window is None else min(window, end)
    if ax is None:
        ax = _new_axes((11.0, 3.6))
    for history, cursor, style, label in (
        (comparison.a, comparison.cursor_a, "-", f"a: {comparison.label_a}"),
        (comparison.b, comparison.cursor_b, "--", f"b: {comparison.label_b}"),
    ):
        frame = activity(history, window, upto=cursor)
        records = frame[frame["series"] == "record"].groupby("window_start")["count"].sum()
        failures = frame[
            ((frame["series"] == "message") & frame["name"].isin(_FAILURES["message"]))
            | ((frame["series"] == "wake") & frame["name"].isin(_FAILURES["wake"]))
        ]
        failures = failures.groupby("window_start")["count"].sum()
        starts = np.arange(1, cursor + 1, window)
        x = starts + (window - 1) / 2
        ax.plot(
            x,
            records.reindex(starts, fill_value=0).to_numpy(),
            style,
            color="#3b75af",
            label=f"records, {label_text(label)}",
            gid="compare.records",
        )
        ax.plot(
            x,
            failures.reindex(starts, fill_value=0).to_numpy(),
            style,
            color="#d62728",
            label=f"failures, {label_text(label)}",
            gid="compare.failures",
        )
    if comparison.first_divergence is not None:
        for where, style in zip(comparison.first_divergence, ("-", "--")):
            if where is not None:
                ax.axvline(where, color=palette.CURSOR, linestyle=style, linewidth=1.0, gid="compare.divergence")
        ca, cb = comparison.first_divergence
        ax.set_title(
            f"first divergence: cursor {'end' if ca is None else ca} in a, {'end' if cb is None else cb} in b",
            fontsize=9,
        )
    else:
        ax.set_title("the two logs agree event for event", fontsize=9)
    _style_x(ax, end)
    ax.set_xlabel(XLABEL)
    ax.set_ylabel(f"per {window:,} cursors")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)
    return ax
