"""The explorer's timeline: a figure drawn once per pool and filter, and a cursor marker.

The figure (``poolscope.plot.activity`` above a strip of failures, filter
matches and anomalies per window) is sent as a PNG; the cursor marker is a
CSS overlay on top of it, so a cursor move changes only a few bytes of CSS:
the image is neither re-rendered nor re-sent and the browser never repaints
the figure.  The last few figures are kept, so going back to a pool or a
filter already seen (with no new record since) shows its figure at once.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import numpy as np

from .. import palette
from .panels import Panel, View

if TYPE_CHECKING:  # pragma: no cover
    from ..history import PoolHistory

__all__ = ["TimelinePanel", "STRIP_BINS", "FIGURES_KEPT", "TIMELINE_REDRAW_SECONDS"]

#: Bins of the failures / filter-matches strip under the timeline.
STRIP_BINS = 200
#: Timeline figures kept for pools and filters seen before.
FIGURES_KEPT = 8
#: In live mode the timeline is redrawn at most this often (seconds).
TIMELINE_REDRAW_SECONDS = 3.0


class TimelinePanel(Panel):
    """The timeline (see the module's docstring).  ``draws`` counts the
    figures drawn (a cursor move only moves the marker)."""

    name, area = "timeline", "top"
    follows = frozenset({"pool", "cursor", "filters", "anomalies", "records"})

    def __init__(self) -> None:
        self.image = W.Image(format="png", layout=W.Layout(width="100%", height="auto", margin="0"))
        self.box = W.Box([self.image], layout=W.Layout(width="100%", margin="0", padding="0", overflow="visible"))
        self.marker = W.HTML(layout=W.Layout(margin="0", height="0px"))
        self.widget = W.VBox([self.marker, self.box], layout=W.Layout(width="100%"))
        self.css_class = f"ps-tl-{id(self):x}"
        self.box.add_class(self.css_class)
        self.marker.add_class("ps-tl-marker")
        self.error: str | None = None
        self.x_from = (0.0, 0.0, 1.0, 1.0)  # data lo, data hi -> fraction of the image width
        self.y_span = (0.0, 1.0)  # top and height of the plotting area, fractions of the image height
        self.width_px = 0
        self.draws = 0
        self.drawn_at = 0.0
        self._figures: dict[tuple, tuple] = {}  # recent figures, oldest first

    # ----------------------------------------------------------------- panel
    def update(self, view: View, changed: set[str]) -> None:
        redraw = bool(changed & {"pool", "filters", "anomalies"}) or (
            "records" in changed and time.monotonic() - self.drawn_at >= TIMELINE_REDRAW_SECONDS
        )
        if redraw:
            self.show(view)
        else:
            self.move(view.cursor)

    def show(self, view: View) -> None:
        """Show the figure of the view's pool and filters: kept from before, or drawn."""
        anomalies = sorted(
            {a.seq for a in view.anomalies or () if a.pool_id == view.pool.pool_id and a.seq is not None}
        )
        f = view.filters
        # a what-if folded again is another log under the same pool id: its head tells them apart
        key = (view.pool.pool_id, len(view.pool.index), view.pool.head, tuple(f.values()), tuple(anomalies))
        cached = self._figures.pop(key, None)
        if cached is not None:
            self.restore(cached, view.cursor)
        else:
            mask = view.filter.mask(f["kind"], f["status"], f["run"], f["agent"])
            what = ", ".join(f"{k}={v}" for k, v in f.items() if v)
            from ..render import shorten

            title = shorten(view.pool.pool_id, 80) + (f" — matching {what}" if what else "")
            self.draw(view, mask, anomalies, title)
            self.draws += 1
        self._figures[key] = self.state()
        while len(self._figures) > FIGURES_KEPT:
            self._figures.pop(next(iter(self._figures)))
        self.drawn_at = time.monotonic()

    # ---------------------------------------------------------------- figure
    def draw(self, view: View, matches: np.ndarray | None, anomalies: list[int], title: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from ..plot import activity, label_text

        history: PoolHistory = view.pool
        fig = Figure(figsize=(12.0, 4.0), dpi=80)
        canvas = FigureCanvasAgg(fig)
        top, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1], "hspace": 0.08})
        self.error = None
        seqs = history.index.arrays()["seq"]
        lo, hi = (int(seqs[0]), int(seqs[-1])) if len(seqs) else (0, 1)
        try:
            activity(history, ax=top)
        except Exception as error:  # the figure must not take the explorer down
            self.error = f"timeline: {type(error).__name__}: {error}"
            top.text(0.5, 0.5, self.error, transform=top.transAxes, ha="center", va="center", fontsize=9, wrap=True)
        top.set_xlabel("")
        top.set_title(label_text(title), fontsize=10, loc="left")
        edges = np.linspace(lo - 0.5, hi + 0.5, min(STRIP_BINS, max(hi - lo + 1, 1)) + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        failures = view.filter.failures()
        if len(failures):
            strip.fill_between(
                centres,
                view.filter.per_window(failures, edges),
                step="mid",
                color=palette.MESSAGE_COLORS["failed"],
                alpha=0.55,
                label="failures",
                lw=0,
            )
        if matches is not None and len(matches):
            strip.step(
                centres,
                view.filter.per_window(matches, edges),
                where="mid",
                color=palette.MATCHES,
                lw=1.2,
                label="matching filters",
            )
        if anomalies:
            strip.plot(
                anomalies,
                [0] * len(anomalies),
                "|",
                color=palette.ANOMALY,
                ms=12,
                mew=2,
                label="anomalies",
                clip_on=True,
            )
        strip.set_ylim(bottom=0)
        strip.set_xlim(lo - 0.5, hi + 0.5)
        strip.set_xlabel("cursor (seq)", fontsize=9)
        strip.tick_params(labelsize=8)
        top.tick_params(labelsize=8)
        handles, labels = strip.get_legend_handles_labels()
        if handles:
            strip.legend(
                handles,
                labels,
                fontsize=7,
                loc="upper left",
                ncols=len(handles),
                framealpha=0.8,
                borderaxespad=0.2,
                handlelength=1.2,
            )
        fig.subplots_adjust(left=0.06, right=0.85, top=0.92, bottom=0.12)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=fig.dpi)
        width, _ = canvas.get_width_height()
        (x0, _), (x1, _) = top.transData.transform([(lo, 0.0), (hi, 0.0)])
        upper, lower = top.get_position(), strip.get_position()
        self.x_from = (float(lo), float(hi), x0 / width, x1 / width)
        self.y_span = (1.0 - upper.y1, upper.y1 - lower.y0)
        self.width_px = width
        self.box.layout.max_width = f"{width}px"
        self.image.value = out.getvalue()
        self.move(view.cursor)

    def state(self) -> tuple[Any, ...]:
        """What :meth:`restore` needs to show this figure again."""
        return (self.image.value, self.x_from, self.y_span, self.width_px, self.error)

    def restore(self, state: tuple[Any, ...], cursor: int) -> None:
        """Show a figure drawn before (see :meth:`state`)."""
        image, self.x_from, self.y_span, self.width_px, self.error = state
        self.box.layout.max_width = f"{self.width_px}px"
        self.image.value = image
        self.move(cursor)

    # ---------------------------------------------------------------- marker
    def left(self, cursor: int) -> float:
        """Where ``cursor`` is, as a percentage of the image width."""
        lo, hi, f0, f1 = self.x_from
        frac = f0 if hi == lo else f0 + (cursor - lo) / (hi - lo) * (f1 - f0)
        return 100.0 * frac

    def move(self, cursor: int) -> None:
        """Put the marker at ``cursor`` (the image is untouched)."""
        left = self.left(cursor)
        top, height = (100.0 * v for v in self.y_span)
        c = f".{self.css_class}"
        ink = palette.CURSOR
        self.marker.value = (
            f"<style>{c}{{position:relative;}}"
            f"{c}::after{{content:'';position:absolute;pointer-events:none;left:calc({left:.3f}% - 1px);"
            f"top:{top:.2f}%;height:{height:.2f}%;border-left:2px solid {ink};}}"
            f"{c}::before{{content:'{int(cursor)}';position:absolute;pointer-events:none;left:calc({left:.3f}% + 3px);"
            f"top:calc({top:.2f}% - 15px);font:11px sans-serif;color:{ink};background:rgba(255,255,255,.85);"
            f"padding:0 2px;z-index:1;}}</style>"
        )
