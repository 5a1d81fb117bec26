"""An interactive explorer for a pool's history (ipywidgets; Jupyter, JupyterLab, Voilà).

:func:`explore` returns an :class:`Explorer`; make it the last expression of a
cell to show it::

    >>> import poolscope
    >>> poolscope.explore("sample_data/demo.db")                      # doctest: +SKIP
    >>> ex = poolscope.explore("pools.db", "pool.alpha", live=True)   # follow a growing file  # doctest: +SKIP
    >>> ex.set_cursor(120); ex.next_failure()                          # doctest: +SKIP

What it shows, for the selected pool and the cursor on the slider:

* the snapshot at the cursor: counts (members, topics, messages and wakes by
  status), members, topics, the latest messages and wakes (latest first, a few
  rows and "N more");
* the SDK's snapshot JSON, rendered only while its section is open;
* the change from the previous cursor position (a :class:`~poolscope.Diff`);
* the record at the cursor;
* a timeline of the pool's activity (``poolscope.plot.activity``) with the
  cursor marked (a CSS overlay on the figure, so moving it re-sends nothing
  but its position), the failures per window, the records matching the filters
  and the anomalies found by ``db.check()``;
* the anomalies of the pool.

Controls: the pool picker, the cursor slider with a Play control, one-record
steps, jumps to the previous/next record matching the filters (kind, status,
run, agent), and to the previous/next failure (a ``failed``, ``expired`` or
``timed_out`` message; a ``timed_out`` or ``failed`` wake).

Moving the cursor costs the size of the state at the cursor, never of the log:
the panels are filled from the pool's columnar index (counts, ids, statuses,
a few rows) with no payload read except the record at the cursor, and the
timeline figure is drawn once per pool and filter -- a cursor move only moves
the marker.  Every panel is an ``HTML`` or
``Image`` widget whose value is replaced at once, so nothing flickers.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import numpy as np

from . import wire
from .diff import Diff
from .errors import CursorError, DatabaseChangedError, PoolscopeError
from .fold import DAMAGED, KIND_CODE, MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database, PoolHistory

__all__ = ["explore", "Explorer", "STATUS_NAMES", "MESSAGE_FAILURES", "WAKE_FAILURES"]

#: Every status a record can carry (message statuses, then the wake-only ones).
STATUS_NAMES: tuple[str, ...] = tuple(dict.fromkeys(wire.MESSAGE_STATUSES + wire.WAKE_STATUSES))
STATUS_CODE: dict[str, int] = {name: code for code, name in enumerate(STATUS_NAMES)}
#: Message statuses counted as failures by :meth:`Explorer.next_failure`.
MESSAGE_FAILURES: tuple[str, ...] = ("failed", "expired", "timed_out")
#: Wake statuses counted as failures by :meth:`Explorer.next_failure`.
WAKE_FAILURES: tuple[str, ...] = ("timed_out", "failed")
#: Rows shown in the messages and wakes tables (latest first); the rest are counted.
TABLE_ROWS = 15
#: Rows shown in the members table.
MEMBER_ROWS = 50
#: Topics listed.
TOPIC_ROWS = 100
#: The JSON section re-renders by itself on a cursor move only for snapshots
#: with at most this many messages and wakes (above it: a button).
JSON_AUTO_ITEMS = 5000
#: Characters of JSON shown (the rest is counted).
JSON_CHARS = 100_000
#: Characters of the record at the cursor shown.
RECORD_CHARS = 20_000
#: Bins of the failures / filter-matches strip under the timeline.
STRIP_BINS = 200
#: ``check=None`` runs ``db.check()`` at once only for databases of at most
#: this many records (it reads every pool); above it, a button runs it.
CHECK_EAGER_RECORDS = 200_000
#: Timeline figures kept for pools and filters seen before.
FIGURES_KEPT = 8
#: In live mode the timeline is redrawn at most this often (seconds).
TIMELINE_REDRAW_SECONDS = 3.0

_ANY = object()  # "take this filter from the filter widgets"

_STATUS_COLOURS = {
    "accepted": "#6c757d",
    "registered": "#6c757d",
    "delivered": "#1f77b4",
    "responded": "#2ca02c",
    "triggered": "#2ca02c",
    "failed": "#d62728",
    "expired": "#d62728",
    "timed_out": "#d62728",
    "cancelled": "#ff7f0e",
}

_CSS = """
<style>
.ps-panel { font-size: 12px; line-height: 1.35; }
.ps-panel table { border-collapse: collapse; margin: 2px 0 4px 0; }
.ps-panel th, .ps-panel td { padding: 1px 6px; border-bottom: 1px solid #e3e3e3; text-align: left;
  white-space: nowrap; max-width: 22em; overflow: hidden; text-overflow: ellipsis; }
.ps-panel th { background: #f4f4f4; }
.ps-panel h4 { margin: 4px 0 2px 0; font-size: 13px; }
.ps-more { color: #777; font-style: italic; }
.ps-counts b { font-size: 14px; }
.ps-warn { color: #b35900; }
.ps-err { color: #c00000; }
.ps-json, .ps-record pre { font-size: 11px; white-space: pre-wrap; word-break: break-all;
  max-height: 24em; overflow: auto; background: #fafafa; padding: 4px; margin: 0; }
.ps-diff table { font-size: 11px; }
.ps-diff details { margin: 2px 0; }
</style>
"""

_esc = html.escape


# =====================================================================
# per-pool columns for filters, jumps and status counts
# =====================================================================
class _PoolView:
    """Numpy columns of one pool the explorer needs beyond the index, built
    in one pass over its entries and extended as the log grows."""

    def __init__(self, history: PoolHistory) -> None:
        self.history = history
        self.n = 0
        self.status = np.empty(0, dtype=np.int8)  # STATUS_CODE of the record's status, -1 if none
        self.runs: set[str] = set()
        self.agents: set[str] = set()
        self.runs_of_agent: dict[str, set[str]] = {}
        self._masks: dict[tuple, np.ndarray] = {}
        self._failures: np.ndarray | None = None
        self.extend()

    def extend(self) -> bool:
        """Take in records loaded since; return whether there were any."""
        entries = self.history.index.entries
        n = len(entries)
        if n == self.n:
            return False
        new = entries[self.n : n]
        codes = STATUS_CODE
        status = np.fromiter((codes.get(e.status, -1) for e in new), dtype=np.int8, count=len(new))
        self.status = np.concatenate([self.status, status])
        runs, agents, runs_of_agent = self.runs, self.agents, self.runs_of_agent
        for e in new:
            kind = e.kind
            if kind in (MEMBER_JOINED, MEMBER_LEFT):
                runs.add(e.key)
                if e.agent_id is not None:
                    agents.add(e.agent_id)
                    runs_of_agent.setdefault(e.agent_id, set()).add(e.key)
            elif kind == RUN_MESSAGE:
                if e.sender is not None:
                    runs.add(e.sender)
                if e.target_type == "run" and e.target_id is not None:
                    runs.add(e.target_id)
                elif e.target_type == "agent" and e.target_id is not None:
                    agents.add(e.target_id)
            elif kind == WAKE and e.run_id is not None:
                runs.add(e.run_id)
        self.n = n
        self._masks = {}
        self._failures = None
        return True

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return self.history.index.arrays()

    # ---------------------------------------------------------------- masks
    def failures(self) -> np.ndarray:
        """Boolean per record: a failed/expired/timed_out message or a timed_out/failed wake."""
        if self._failures is None:
            kind = self.arrays["kind"]
            message = np.isin(self.status, [STATUS_CODE[s] for s in MESSAGE_FAILURES])
            wake = np.isin(self.status, [STATUS_CODE[s] for s in WAKE_FAILURES])
            self._failures = ((kind == RUN_MESSAGE) & message) | ((kind == WAKE) & wake)
        return self._failures

    def run_mask(self, run: str) -> np.ndarray:
        """Records of a run: its member records and wakes, the messages it sent,
        and the messages addressed or delivered to it."""
        key = ("run", run)
        if key not in self._masks:
            entries = self.history.index.entries[: self.n]
            self._masks[key] = np.fromiter(
                (
                    e.run_id == run
                    or e.sender == run
                    or (e.target_type == "run" and e.target_id == run)
                    or run in e.delivered_to
                    for e in entries
                ),
                dtype=bool,
                count=len(entries),
            )
        return self._masks[key]

    def agent_mask(self, agent: str) -> np.ndarray:
        """Records of an agent: member records with that agent id, messages
        addressed to the agent, and every record of a run that joined as it
        (see :meth:`run_mask`)."""
        key = ("agent", agent)
        if key not in self._masks:
            runs = self.runs_of_agent.get(agent, set())
            entries = self.history.index.entries[: self.n]
            self._masks[key] = np.fromiter(
                (
                    e.agent_id == agent
                    or (e.target_type == "agent" and e.target_id == agent)
                    or e.run_id in runs
                    or e.sender in runs
                    or (e.target_type == "run" and e.target_id in runs)
                    or any(r in runs for r in e.delivered_to)
                    for e in entries
                ),
                dtype=bool,
                count=len(entries),
            )
        return self._masks[key]

    def mask(self, kind: str | None, status: str | None, run: str | None, agent: str | None) -> np.ndarray | None:
        """Records matching every given filter (``None``: no filter at all)."""
        out: np.ndarray | None = None

        def both(m: np.ndarray) -> None:
            nonlocal out
            out = m if out is None else (out & m)

        if kind:
            code = DAMAGED if kind == "damaged" else KIND_CODE[kind]
            both(self.arrays["kind"][: self.n] == code)
        if status:
            both(self.status == STATUS_CODE[status])
        if run:
            both(self.run_mask(run))
        if agent:
            both(self.agent_mask(agent))
        return out


# =====================================================================
# the timeline
# =====================================================================
def _activity_plot() -> Callable[..., Any]:
    from . import plot

    return plot.activity


class _Timeline:
    """The timeline: a matplotlib figure drawn once per pool and filter and
    sent as a PNG, with the cursor marker as a CSS overlay on top of it.

    A cursor move changes only the overlay's position (a few bytes of CSS in
    ``marker``), so the image is neither re-rendered nor re-sent and the
    browser never repaints the figure.
    """

    def __init__(self, image: W.Image, box: W.Box, marker: W.HTML) -> None:
        self.image = image
        self.box = box
        self.marker = marker
        self.css_class = f"ps-tl-{id(self):x}"
        box.add_class(self.css_class)
        self.error: str | None = None
        self.x_from = (0.0, 0.0, 1.0, 1.0)  # data lo, data hi -> fraction of the image width
        self.y_span = (0.0, 1.0)  # top and height of the plotting area, fractions of the image height
        self.width_px = 0

    def draw(
        self,
        history: PoolHistory,
        cursor: int,
        failures: np.ndarray,
        matches: np.ndarray | None,
        anomalies: list[int],
        title: str,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12.0, 4.0), dpi=80)
        canvas = FigureCanvasAgg(fig)
        top, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1], "hspace": 0.08})
        self.error = None
        seqs = history.index.arrays()["seq"]
        lo, hi = (int(seqs[0]), int(seqs[-1])) if len(seqs) else (0, 1)
        try:
            _activity_plot()(history, ax=top)
        except Exception as error:  # the figure must not take the explorer down
            self.error = f"timeline: {type(error).__name__}: {error}"
            top.text(0.5, 0.5, self.error, transform=top.transAxes, ha="center", va="center", fontsize=9, wrap=True)
        top.set_xlabel("")
        top.set_title(title, fontsize=10, loc="left")
        edges = np.linspace(lo - 0.5, hi + 0.5, min(STRIP_BINS, max(hi - lo + 1, 1)) + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        n = len(failures)
        if n:
            counts, _ = np.histogram(seqs[:n][failures], bins=edges)
            strip.fill_between(centres, counts, step="mid", color="#d62728", alpha=0.55, label="failures", lw=0)
        if matches is not None and n:
            counts, _ = np.histogram(seqs[:n][matches], bins=edges)
            strip.step(centres, counts, where="mid", color="#1f77b4", lw=1.2, label="matching filters")
        if anomalies:
            strip.plot(
                anomalies, [0] * len(anomalies), "|", color="#ff7f0e", ms=12, mew=2, label="anomalies", clip_on=True
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
        self.move(cursor)

    def state(self) -> tuple:
        """What :meth:`restore` needs to show this figure again."""
        return (self.image.value, self.x_from, self.y_span, self.width_px, self.error)

    def restore(self, state: tuple, cursor: int) -> None:
        """Show a figure drawn before (see :meth:`state`)."""
        image, self.x_from, self.y_span, self.width_px, self.error = state
        self.box.layout.max_width = f"{self.width_px}px"
        self.image.value = image
        self.move(cursor)

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
        self.marker.value = (
            f"<style>{c}{{position:relative;}}"
            f"{c}::after{{content:'';position:absolute;pointer-events:none;left:calc({left:.3f}% - 1px);"
            f"top:{top:.2f}%;height:{height:.2f}%;border-left:2px solid #111;}}"
            f"{c}::before{{content:'{int(cursor)}';position:absolute;pointer-events:none;left:calc({left:.3f}% + 3px);"
            f"top:calc({top:.2f}% - 15px);font:11px sans-serif;color:#111;background:rgba(255,255,255,.85);"
            f"padding:0 2px;z-index:1;}}</style>"
        )
        self.marker.add_class("ps-tl-marker")


# =====================================================================
# HTML helpers
# =====================================================================
def _status(name: str | None) -> str:
    if name is None:
        return "—"
    colour = _STATUS_COLOURS.get(name, "#333")
    return f"<span style='color:{colour}'>{_esc(name)}</span>"


def _table(headers: list[str], rows: list[list[str]], more: int = 0, what: str = "more") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    tail = f"<div class='ps-more'>… {more:,} {what}</div>" if more > 0 else ""
    return f"<table><tr>{head}</tr>{body}</table>{tail}"


def _status_breakdown(codes: np.ndarray, names: tuple[str, ...]) -> str:
    if not len(codes):
        return ""
    counted = np.bincount(codes.astype(np.int64), minlength=len(STATUS_NAMES))
    parts = [f"{_status(name)} {int(counted[STATUS_CODE[name]]):,}" for name in names if counted[STATUS_CODE[name]]]
    return " · ".join(parts)


def _target(entry: Any) -> str:
    if entry.target_type is None:
        return ""
    if entry.target_id is None:
        return _esc(entry.target_type)
    return f"{_esc(entry.target_type)}:{_esc(str(entry.target_id))}"


# =====================================================================
# the explorer
# =====================================================================
class Explorer:
    """The interactive explorer of one database (see :func:`explore`).

    Widgets (attributes, readable from Python): ``pool_picker``, ``slider``,
    ``play``, ``step_back``, ``step_forward``, ``prev_match``, ``next_match``,
    ``prev_failure_button``, ``next_failure_button``, ``kind_filter``,
    ``status_filter``, ``run_filter``, ``agent_filter``, ``status_line``,
    ``timeline`` (``Image``), ``counts_panel``, ``members_panel``,
    ``topics_panel``, ``messages_panel``, ``wakes_panel``, ``diff_panel``,
    ``record_panel``, ``anomalies_panel`` (``HTML``), ``json_panel``
    (``Accordion``) with ``json_view`` inside; ``widget`` is the whole app.

    What is shown is also kept as data: ``cursor``, ``pool``, ``diff`` (the
    :class:`Diff` in the diff panel), ``shown`` (a dict: ``pool_id``,
    ``cursor``, ``snapshot_cursor``, ``counts``, ``member_ids``,
    ``message_statuses`` and ``wake_statuses`` (counts), ``latest_messages``
    and ``latest_wakes`` (ids in the tables), ``record_seq``),
    ``last_render_ms`` and ``timeline_draws`` (figure draws; a cursor move
    only moves the marker).

    >>> ex = poolscope.explore("sample_data/demo.db")      # doctest: +SKIP
    >>> ex.set_cursor(300); ex.shown["counts"]              # doctest: +SKIP
    {'members': 9, 'topics': 4, 'messages': 107, 'wakes': 30}
    >>> ex.jump("next", kind="wake", status="failed")       # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        pool_id: str | None = None,
        *,
        live: bool = False,
        interval: float = 1.0,
        check: bool | None = None,
    ) -> None:
        self.db = db
        self.interval = float(interval)
        self.pool: PoolHistory | None = None
        self.diff: Diff | None = None
        self.shown: dict[str, Any] = {}
        self.last_render_ms: float | None = None
        self.timeline_draws = 0  # how many times the timeline figure was drawn (not counting marker moves)
        self.anomalies: list[Any] | None = None
        self._check = self._eager_check() if check is None else bool(check)
        self._view: _PoolView | None = None
        self._views: dict[str, _PoolView] = {}
        self._shown_cursor: int | None = None
        self._busy = 0  # > 0 while the explorer itself changes widgets (their observers stay quiet)
        self._lock = threading.RLock()
        self._json_stale = True
        self._timeline: _Timeline | None = None
        self._figures: dict[tuple, tuple] = {}  # recent timeline figures, oldest first
        self._timeline_drawn_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._build_widgets()
        ids = db.pool_ids
        if ids:
            self.select_pool(pool_id if pool_id is not None else ids[0])
        else:
            self.status_line.value = "<span class='ps-warn'>this database holds no pool</span>"
        if live:
            self.start()

    # ------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        ids = self.db.pool_ids
        self.pool_picker = W.Dropdown(
            options=ids, value=ids[0] if ids else None, description="pool", layout=W.Layout(width="320px")
        )
        self.head_label = W.HTML()
        self.slider = W.IntSlider(
            value=0,
            min=0,
            max=0,
            description="cursor",
            continuous_update=False,
            layout=W.Layout(width="520px"),
            style={"description_width": "48px"},
        )
        self.play = W.Play(value=0, min=0, max=0, step=1, interval=400, description="play")
        W.jslink((self.play, "value"), (self.slider, "value"))
        button = lambda text, tip, width="36px": W.Button(description=text, tooltip=tip, layout=W.Layout(width=width))  # noqa: E731
        self.step_back = button("◀", "previous record")
        self.step_forward = button("▶", "next record")
        self.prev_match = button("« match", "previous record matching the filters", "82px")
        self.next_match = button("match »", "next record matching the filters", "82px")
        self.prev_failure_button = button(
            "⚠ ◀", "previous failure (failed/expired/timed_out message, timed_out/failed wake)", "56px"
        )
        self.next_failure_button = button(
            "⚠ ▶", "next failure (failed/expired/timed_out message, timed_out/failed wake)", "56px"
        )
        self.kind_filter = W.Dropdown(
            options=[("any kind", "")] + [(k, k) for k in wire.KINDS] + [("damaged", "damaged")],
            value="",
            description="kind",
            layout=W.Layout(width="200px"),
            style={"description_width": "36px"},
        )
        self.status_filter = W.Dropdown(
            options=[("any status", "")] + [(s, s) for s in STATUS_NAMES],
            value="",
            description="status",
            layout=W.Layout(width="200px"),
            style={"description_width": "44px"},
        )
        self.run_filter = W.Combobox(
            placeholder="any run",
            description="run",
            ensure_option=False,
            continuous_update=False,
            layout=W.Layout(width="240px"),
            style={"description_width": "30px"},
        )
        self.agent_filter = W.Combobox(
            placeholder="any agent",
            description="agent",
            ensure_option=False,
            continuous_update=False,
            layout=W.Layout(width="240px"),
            style={"description_width": "40px"},
        )
        self.status_line = W.HTML()
        self.timeline = W.Image(format="png", layout=W.Layout(width="100%", height="auto", margin="0"))
        self.timeline_box = W.Box(
            [self.timeline], layout=W.Layout(width="100%", margin="0", padding="0", overflow="visible")
        )
        self.timeline_marker = W.HTML(layout=W.Layout(margin="0", height="0px"))
        panel = lambda: W.HTML(layout=W.Layout(width="100%"))  # noqa: E731
        self.counts_panel = panel()
        self.members_panel = panel()
        self.topics_panel = panel()
        self.messages_panel = panel()
        self.wakes_panel = panel()
        self.diff_panel = panel()
        self.record_panel = panel()
        self.anomalies_panel = panel()
        self.json_view = panel()
        self.json_button = W.Button(description="render JSON here", layout=W.Layout(width="220px", display="none"))
        self.json_panel = W.Accordion(children=[W.VBox([self.json_button, self.json_view])], selected_index=None)
        self.json_panel.set_title(0, "snapshot JSON (the SDK's exact text)")
        self.check_button = W.Button(description="check the database (db.check())", layout=W.Layout(width="260px"))
        self.check_button.on_click(lambda _: self._guard(self.run_check))

        self.pool_picker.observe(self._on_pool, "value")
        self.slider.observe(self._on_slider, "value")
        self.step_back.on_click(lambda _: self._guard(self.step, -1))
        self.step_forward.on_click(lambda _: self._guard(self.step, 1))
        self.prev_match.on_click(lambda _: self._guard(self.jump, "previous"))
        self.next_match.on_click(lambda _: self._guard(self.jump, "next"))
        self.prev_failure_button.on_click(lambda _: self._guard(self.next_failure, "previous"))
        self.next_failure_button.on_click(lambda _: self._guard(self.next_failure, "next"))
        for control in (self.kind_filter, self.status_filter, self.run_filter, self.agent_filter):
            control.observe(self._on_filter, "value")
        self.json_panel.observe(self._on_json_toggle, "selected_index")
        self.json_button.on_click(lambda _: self._guard(self._render_json, True))

        def box(children: list, **kw: Any) -> W.Box:
            return W.Box(children, layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center", **kw))

        left = W.VBox([self.counts_panel, self.members_panel, self.topics_panel], layout=W.Layout(width="42%"))
        right = W.VBox([self.messages_panel, self.wakes_panel], layout=W.Layout(width="58%"))
        self.widget = W.VBox(
            [
                W.HTML(_CSS),
                box([self.pool_picker, self.head_label]),
                box(
                    [
                        self.prev_failure_button,
                        self.prev_match,
                        self.step_back,
                        self.slider,
                        self.step_forward,
                        self.next_match,
                        self.next_failure_button,
                        self.play,
                    ]
                ),
                box([self.kind_filter, self.status_filter, self.run_filter, self.agent_filter]),
                self.status_line,
                self.timeline_marker,
                self.timeline_box,
                W.HBox([left, right]),
                W.HTML("<h4 style='margin:6px 0 0 0'>change from the previous cursor position</h4>"),
                self.diff_panel,
                W.HTML("<h4 style='margin:6px 0 0 0'>record at the cursor</h4>"),
                self.record_panel,
                self.json_panel,
                self.check_button,
                self.anomalies_panel,
            ],
            layout=W.Layout(width="100%"),
        )
        self.widget.add_class("poolscope-explorer")

    # ------------------------------------------------------- display hooks
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        pool = self.pool.pool_id if self.pool is not None else None
        return f"<poolscope.Explorer {str(self.db.path)!r} pool={pool!r} cursor={self.cursor}>"

    # ----------------------------------------------------------- plumbing
    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a UI action; show an error in the status line instead of losing it."""
        try:
            return fn(*args)
        except PoolscopeError as error:
            self._say(f"<span class='ps-err'>{_esc(str(error))}</span>")
        return None

    def _say(self, text: str) -> None:
        self.status_line.value = f"<div class='ps-panel'>{text}</div>"

    def _set_slider(self, lo: int, hi: int, value: int) -> None:
        """Change the slider's range and value without rendering in between."""
        self._busy += 1
        try:
            for control in (self.slider, self.play):
                control.max = max(hi, control.max)
                control.min = lo
                control.value = value
                control.max = hi
        finally:
            self._busy -= 1

    @property
    def cursor(self) -> int:
        """The cursor on the slider."""
        return int(self.slider.value)

    @property
    def filters(self) -> dict[str, str | None]:
        """The filters in force: ``kind``, ``status``, ``run``, ``agent`` (``None``: any)."""
        run = self.run_filter.value.strip() or None
        agent = self.agent_filter.value.strip() or None
        return {
            "kind": self.kind_filter.value or None,
            "status": self.status_filter.value or None,
            "run": run,
            "agent": agent,
        }

    # ---------------------------------------------------------------- API
    def select_pool(self, pool_id: str) -> None:
        """Show another pool: the slider's range becomes its seqs, the cursor its head.

        >>> ex.select_pool("pool.bravo")   # doctest: +SKIP
        """
        with self._lock:
            history = self.db.pool(pool_id)  # raises PoolNotFoundError for an unknown pool
            self.pool = history
            view = self._views.get(pool_id)
            if view is None:
                view = self._views[pool_id] = _PoolView(history)
            else:
                view.extend()
            self._view = view
            index = history.index
            for namespace in ("messages", "wakes"):
                index.rank(namespace)  # the key order diffs need, once, not on a move
            self._busy += 1
            try:
                if self.pool_picker.value != pool_id:
                    if pool_id not in self.pool_picker.options:
                        self.pool_picker.options = self.db.pool_ids
                    self.pool_picker.value = pool_id
            finally:
                self._busy -= 1
            self._update_filter_options()
            lo = index.seqs[0] if index.seqs else 0
            head = history.head
            self._shown_cursor = None
            self._set_slider(lo, head, head)
            self._update_head_label()
            self._render_anomalies()
            self._draw_timeline()
            self._say(f"pool <b>{_esc(pool_id)}</b>: {len(index):,} records")
            self._render(head)

    def set_cursor(self, k: int) -> int:
        """Move the cursor to ``k`` (a seq between the pool's first and its
        head) and update every panel; return the cursor.

        >>> ex.set_cursor(120)   # doctest: +SKIP
        120
        """
        if isinstance(k, bool) or not hasattr(k, "__index__"):
            raise CursorError(f"cursor must be an integer, not {type(k).__name__}")
        k = int(k)
        with self._lock:
            if self.pool is None:
                raise CursorError("no pool selected")
            if not self.slider.min <= k <= self.slider.max:
                raise CursorError(
                    f"cursor {k} is outside {self.slider.min}..{self.slider.max}",
                    path=self.pool.path,
                    pool_id=self.pool.pool_id,
                )
            if k == self.slider.value:
                if self._shown_cursor != k:
                    self._render(k)
            else:
                self.slider.value = k  # the observer renders
            return k

    def step(self, n: int = 1) -> int:
        """Move ``n`` records forward (negative: back), stopping at the ends."""
        assert self.pool is not None
        seqs = self.pool.index.arrays()["seq"]
        if not len(seqs):
            return self.cursor
        if n >= 0:
            i = int(np.searchsorted(seqs, self.cursor, side="right")) + n - 1
        else:
            i = int(np.searchsorted(seqs, self.cursor, side="left")) + n
        i = min(max(i, 0), len(seqs) - 1)
        return self.set_cursor(int(seqs[i]))

    def jump(
        self,
        direction: str = "next",
        *,
        kind: Any = _ANY,
        status: Any = _ANY,
        run: Any = _ANY,
        agent: Any = _ANY,
    ) -> int | None:
        """Move to the next (``"next"``) or previous (``"previous"``) record
        matching ``kind``, ``status``, ``run`` and ``agent``; a filter not
        given is taken from the filter widgets, ``None`` means any.  Returns
        the new cursor, or ``None`` (the cursor stays) when nothing matches.

        A status matches messages and wakes alike (``failed`` is both); a run
        matches its member records and wakes, the messages it sent and those
        addressed or delivered to it; an agent matches its member records,
        messages addressed to it, and the records of its runs.

        >>> ex.jump("next", kind="wake", status="timed_out")   # doctest: +SKIP
        >>> ex.jump("previous", kind="member_left", status=None)  # doctest: +SKIP
        """
        forward = self._direction(direction)
        chosen = self.filters
        for name, value in (("kind", kind), ("status", status), ("run", run), ("agent", agent)):
            if value is not _ANY:
                chosen[name] = value or None
        if chosen["kind"] is not None and chosen["kind"] not in KIND_CODE and chosen["kind"] != "damaged":
            raise ValueError(f"unknown kind {chosen['kind']!r} (kinds: {', '.join(wire.KINDS)}, damaged)")
        if chosen["status"] is not None and chosen["status"] not in STATUS_CODE:
            raise ValueError(f"unknown status {chosen['status']!r} (statuses: {', '.join(STATUS_NAMES)})")
        with self._lock:
            assert self._view is not None
            mask = self._view.mask(chosen["kind"], chosen["status"], chosen["run"], chosen["agent"])
            target = self._find(mask, forward)
            what = ", ".join(f"{k}={v}" for k, v in chosen.items() if v) or "any record"
            return self._go(target, forward, f"record with {what}")

    def next_failure(self, direction: str = "next") -> int | None:
        """Move to the first failure after the cursor (``"previous"``: the
        last one before it): a ``failed``, ``expired`` or ``timed_out``
        message, or a ``timed_out`` or ``failed`` wake, of the run and agent
        in the filters if any.  Returns the new cursor or ``None``.

        >>> ex.set_cursor(1); ex.next_failure()   # doctest: +SKIP
        """
        forward = self._direction(direction)
        with self._lock:
            assert self._view is not None
            f = self.filters
            mask = self._view.failures()
            extra = self._view.mask(None, None, f["run"], f["agent"])
            if extra is not None:
                mask = mask & extra
            return self._go(self._find(mask, forward), forward, "failure")

    def previous_failure(self) -> int | None:
        """The last failure before the cursor; see :meth:`next_failure`."""
        return self.next_failure("previous")

    @staticmethod
    def _direction(direction: str) -> bool:
        if direction in ("next", "forward", "+"):
            return True
        if direction in ("previous", "prev", "back", "-"):
            return False
        raise ValueError(f"direction must be 'next' or 'previous', not {direction!r}")

    def _find(self, mask: np.ndarray | None, forward: bool) -> int | None:
        assert self.pool is not None
        seqs = self.pool.index.arrays()["seq"]
        n = len(mask) if mask is not None else len(seqs)
        if forward:
            start = int(np.searchsorted(seqs, self.cursor, side="right"))
            if start >= n:
                return None
            if mask is None:
                return int(seqs[start])
            hit = int(np.argmax(mask[start:n]))
            return int(seqs[start + hit]) if mask[start + hit] else None
        stop = min(int(np.searchsorted(seqs, self.cursor, side="left")), n)
        if stop <= 0:
            return None
        if mask is None:
            return int(seqs[stop - 1])
        hit = int(np.argmax(mask[:stop][::-1]))
        return int(seqs[stop - 1 - hit]) if mask[stop - 1 - hit] else None

    def _go(self, target: int | None, forward: bool, what: str) -> int | None:
        if target is None:
            where = "after" if forward else "before"
            self._say(f"<span class='ps-warn'>no {_esc(what)} {where} cursor {self.cursor}</span>")
            return None
        self.set_cursor(target)
        self._say(f"{'next' if forward else 'previous'} {_esc(what)}: cursor {target}")
        return target

    # ----------------------------------------------------------- live mode
    def poll(self) -> int:
        """Load records appended since (``db.refresh()``); extend the slider,
        follow the head if the cursor was there.  Returns the new records of
        the selected pool.  Live mode calls it every ``interval`` seconds."""
        with self._lock:
            if self.pool is None:
                return 0
            known = self.db.pool_ids
            try:
                added = self.db.refresh().get(self.pool.pool_id, 0)
            except DatabaseChangedError as error:
                self.stop()
                self._say(f"<span class='ps-err'>live mode stopped: {_esc(str(error))}</span>")
                return 0
            if self.db.pool_ids != known:
                self._busy += 1
                try:
                    self.pool_picker.options = self.db.pool_ids
                    self.pool_picker.value = self.pool.pool_id
                finally:
                    self._busy -= 1
            if not added:
                return 0
            assert self._view is not None
            self._view.extend()
            index = self.pool.index
            at_head = self.slider.value == self.slider.max
            head = self.pool.head
            self._set_slider(index.seqs[0], head, head if at_head else self.slider.value)
            self._update_head_label()
            self._update_filter_options()
            if time.monotonic() - self._timeline_drawn_at >= TIMELINE_REDRAW_SECONDS:
                self._draw_timeline()
            if at_head:
                self._render(head)
            return added

    @property
    def live(self) -> bool:
        """Whether the explorer follows the database (see :meth:`start`)."""
        return (self._thread is not None and self._thread.is_alive()) or (
            self._task is not None and not self._task.done()
        )

    def start(self, interval: float | None = None) -> None:
        """Follow the database: :meth:`poll` every ``interval`` seconds, on
        the kernel's event loop when there is one (Jupyter, Voilà), else on a
        daemon thread.  :meth:`stop` ends it."""
        if interval is not None:
            self.interval = float(interval)
        if self.live:
            return
        self._stop.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._follow_async())
        else:
            self._thread = threading.Thread(target=self._follow_thread, name="poolscope-explorer-live", daemon=True)
            self._thread.start()
        self._update_head_label()

    def stop(self) -> None:
        """Stop following the database."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self._update_head_label(live=False)

    def _poll_safely(self) -> None:
        try:
            self.poll()
        except Exception as error:  # keep following; say what went wrong
            self._say(
                f"<span class='ps-err'>live refresh failed: {_esc(type(error).__name__)}: {_esc(str(error))}</span>"
            )

    def _follow_thread(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll_safely()

    async def _follow_async(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.interval)
            if self._stop.is_set():
                break
            self._poll_safely()

    # ------------------------------------------------------------ handlers
    def _on_pool(self, change: dict) -> None:
        if self._busy or change["new"] is None:
            return
        self._guard(self.select_pool, change["new"])

    def _on_slider(self, change: dict) -> None:
        if self._busy or self.pool is None:
            return
        with self._lock:
            self._guard(self._render, int(change["new"]))

    def _on_filter(self, change: dict) -> None:
        if self._busy or self.pool is None:
            return
        with self._lock:
            f = self.filters
            view = self._view
            assert view is not None
            if f["run"] and f["run"] not in view.runs:
                self._say(f"<span class='ps-warn'>no run {_esc(f['run'])} in this pool</span>")
            if f["agent"] and f["agent"] not in view.agents:
                self._say(f"<span class='ps-warn'>no agent {_esc(f['agent'])} in this pool</span>")
            self._draw_timeline()

    def _on_json_toggle(self, change: dict) -> None:
        if change["new"] == 0:
            self._guard(self._render_json, True)
        else:
            self.json_view.value = ""
            self.json_button.layout.display = "none"
            self._json_stale = True

    # ------------------------------------------------------------ rendering
    def _update_head_label(self, live: bool | None = None) -> None:
        if self.pool is None:
            return
        live = self.live if live is None else live
        dot = " · <span style='color:#2ca02c'>● live</span>" if live else ""
        self.head_label.value = (
            f"<span class='ps-panel'>{len(self.pool.index):,} records · head <b>{self.pool.head}</b>{dot}</span>"
        )

    def _update_filter_options(self) -> None:
        view = self._view
        assert view is not None
        runs, agents = sorted(view.runs), sorted(view.agents)
        self._busy += 1
        try:
            if list(self.run_filter.options) != runs[:5000]:
                self.run_filter.options = runs[:5000]
            if list(self.agent_filter.options) != agents[:5000]:
                self.agent_filter.options = agents[:5000]
        finally:
            self._busy -= 1

    def _draw_timeline(self) -> None:
        """Draw the timeline figure (pool and filters); the cursor only moves the marker.

        The last few figures are kept, so going back to a pool or a filter
        already seen (with no new record since) shows its figure at once."""
        assert self.pool is not None and self._view is not None
        view, f = self._view, self.filters
        anomalies = sorted(
            {a.seq for a in (self.anomalies or []) if a.pool_id == self.pool.pool_id and a.seq is not None}
        )
        if self._timeline is None:
            self._timeline = _Timeline(self.timeline, self.timeline_box, self.timeline_marker)
        timeline = self._timeline
        key = (self.pool.pool_id, len(self.pool.index), tuple(f.values()), tuple(anomalies))
        cached = self._figures.pop(key, None)
        if cached is not None:
            timeline.restore(cached, self.cursor)
        else:
            mask = view.mask(f["kind"], f["status"], f["run"], f["agent"])
            what = ", ".join(f"{k}={v}" for k, v in f.items() if v)
            title = f"{self.pool.pool_id}" + (f" — matching {what}" if what else "")
            timeline.draw(self.pool, self.cursor, view.failures(), mask, anomalies, title)
            self.timeline_draws += 1
        self._figures[key] = timeline.state()
        while len(self._figures) > FIGURES_KEPT:
            self._figures.pop(next(iter(self._figures)))
        self._timeline_drawn_at = time.monotonic()
        if timeline.error:
            self._say(f"<span class='ps-warn'>{_esc(self._timeline.error)}</span>")

    def _render(self, k: int) -> None:
        """Fill every panel for cursor ``k``."""
        started = time.perf_counter()
        history = self.pool
        assert history is not None and self._view is not None
        index = history.index
        n = index.position(k)
        at_seq = index.seqs[n - 1] if n else 0
        prev = self._shown_cursor
        if prev is None or prev > history.head:
            prev = index.seqs[n - 2] if n >= 2 else 0
        shown = self._render_snapshot(k, at_seq)
        self._render_diff(prev, k)
        self._render_record(at_seq)
        if self._timeline is not None:
            self._timeline.move(k)
        self._shown_cursor = k
        self.shown = shown  # published whole, once every panel shows k
        if self.json_panel.selected_index == 0:
            self._render_json(False)
        self.last_render_ms = (time.perf_counter() - started) * 1000

    def _render_snapshot(self, k: int, at_seq: int) -> dict[str, Any]:
        history = self.pool
        assert history is not None and self._view is not None
        index = history.index
        status = self._view.status
        entries, seqs = index.entries, index.seqs
        config, _ = index.config_at(k)
        shown: dict[str, Any] = {
            "pool_id": history.pool_id,
            "cursor": k,
            "snapshot_cursor": at_seq,
            "record_seq": at_seq,
        }
        if config is None:
            shown.update(
                counts=None, member_ids=[], latest_messages=[], latest_wakes=[], message_statuses={}, wake_statuses={}
            )
            note = (
                f"<div class='ps-panel ps-counts' data-cursor='{k}'><b>cursor {k}</b> — "
                "<span class='ps-warn'>no snapshot: the pool has not been opened yet "
                "(no pool_opened at or before this cursor)</span></div>"
            )
            self.counts_panel.value = note
            for panel in (self.members_panel, self.topics_panel, self.messages_panel, self.wakes_panel):
                panel.value = ""
            return shown
        member_pos = index.live_positions("members", k).tolist()
        members = [entries[p].extra for p in member_pos]
        topics = sorted({t for m in members for t in m.get("topics", ())})
        message_pos = index.live_positions("messages", k, ordered=False)
        wake_pos = index.live_positions("wakes", k, ordered=False)
        counts = {"members": len(members), "topics": len(topics), "messages": len(message_pos), "wakes": len(wake_pos)}
        message_codes, wake_codes = status[message_pos], status[wake_pos]

        def by_status(codes: np.ndarray) -> dict[str, int]:
            counted = (
                np.bincount(codes.astype(np.int64), minlength=len(STATUS_NAMES))
                if len(codes)
                else np.zeros(len(STATUS_NAMES), int)
            )
            return {name: int(counted[i]) for i, name in enumerate(STATUS_NAMES) if counted[i]}

        shown.update(
            counts=counts,
            member_ids=[m["run_id"] for m in members],
            message_statuses=by_status(message_codes),
            wake_statuses=by_status(wake_codes),
        )
        warnings = []
        problem = index.first_problem(k)
        if problem is not None:
            warnings.append(f"damaged record at seq {problem.seq} (skipped here; the SDK stops there)")
        conflict = index.conflict_at(k)
        if conflict is not None:
            warnings.append(f"conflicting pool_opened at seq {conflict} (the SDK refuses this log)")
        warn = "".join(f"<div class='ps-warn'>⚠ {_esc(w)}</div>" for w in warnings)
        n = index.position(k)
        kind = entries[n - 1].kind if n else None
        kind_name = "damaged" if kind == DAMAGED else (wire.KINDS[kind] if kind is not None else "—")
        self.counts_panel.value = (
            f"<div class='ps-panel ps-counts' data-cursor='{k}' data-members='{counts['members']}' "
            f"data-topics='{counts['topics']}' data-messages='{counts['messages']}' data-wakes='{counts['wakes']}'>"
            f"<h4>snapshot at cursor <b class='ps-cursor'>{k}</b> of {history.head}</h4>"
            f"<div>record {at_seq}: <b>{_esc(kind_name)}</b> · created: {index.created_at(k)}</div>"
            f"<div><b>{counts['members']:,}</b> members · <b>{counts['topics']:,}</b> topics · "
            f"<b>{counts['messages']:,}</b> messages · <b>{counts['wakes']:,}</b> wakes</div>"
            f"<div>messages: {_status_breakdown(message_codes, wire.MESSAGE_STATUSES) or '—'}</div>"
            f"<div>wakes: {_status_breakdown(wake_codes, wire.WAKE_STATUSES) or '—'}</div>{warn}</div>"
        )
        rows = [
            [_esc(m["run_id"]), _esc(str(m.get("agent_id", ""))), _esc(", ".join(m.get("topics", [])))]
            for m in members[:MEMBER_ROWS]
        ]
        self.members_panel.value = (
            f"<div class='ps-panel ps-members'><h4>members ({len(members):,})</h4>"
            + _table(["run", "agent", "topics"], rows, len(members) - MEMBER_ROWS, "more members")
            + "</div>"
        )
        shown_topics = ", ".join(_esc(t) for t in topics[:TOPIC_ROWS]) or "—"
        more = f" <span class='ps-more'>… {len(topics) - TOPIC_ROWS:,} more</span>" if len(topics) > TOPIC_ROWS else ""
        self.topics_panel.value = (
            f"<div class='ps-panel ps-topics'><h4>topics ({len(topics):,})</h4>{shown_topics}{more}</div>"
        )

        latest_messages = message_pos[-TABLE_ROWS:][::-1].tolist()
        rows = []
        for p in latest_messages:
            e = entries[p]
            rows.append(
                [
                    str(seqs[p]),
                    _esc(e.key),
                    _status(e.status),
                    _esc(str(e.sender)),
                    _target(e),
                    str(len(e.delivered_to)),
                ]
            )
        shown["latest_messages"] = [entries[p].key for p in latest_messages]
        self.messages_panel.value = (
            f"<div class='ps-panel ps-messages'><h4>messages ({len(message_pos):,}), latest first</h4>"
            + _table(
                ["seq", "message", "status", "from", "to", "delivered"],
                rows,
                len(message_pos) - len(latest_messages),
                "more messages",
            )
            + "</div>"
        )
        latest_wakes = wake_pos[-TABLE_ROWS:][::-1].tolist()
        rows = []
        for p in latest_wakes:
            e = entries[p]
            rows.append([str(seqs[p]), _esc(e.key), _status(e.status), _esc(str(e.run_id))])
        shown["latest_wakes"] = [entries[p].key for p in latest_wakes]
        self.wakes_panel.value = (
            f"<div class='ps-panel ps-wakes'><h4>wakes ({len(wake_pos):,}), latest first</h4>"
            + _table(["seq", "condition", "status", "run"], rows, len(wake_pos) - len(latest_wakes), "more wakes")
            + "</div>"
        )
        return shown

    def _render_diff(self, a: int, b: int) -> None:
        assert self.pool is not None and self._view is not None
        self.diff = self.pool.diff(a, b)
        self.diff_panel.value = (
            f"<div class='ps-panel ps-diff' data-a='{a}' data-b='{b}'>{self.diff._repr_html_()}</div>"
        )

    def _render_record(self, seq: int) -> None:
        assert self.pool is not None
        if seq <= 0:
            self.record_panel.value = "<div class='ps-panel ps-record'>—</div>"
            return
        records = self.pool.records(after=seq - 1, upto=seq)
        if not records:
            self.record_panel.value = f"<div class='ps-panel ps-record'>no record at {seq}</div>"
            return
        record = records[0]
        if record.problem is not None:
            body = f"<div class='ps-err'>damaged: {_esc(str(record.problem))}</div>"
        else:
            text = json.dumps(record.to_dict(), indent=1, ensure_ascii=False)
            cut = f"\n… {len(text) - RECORD_CHARS:,} more characters" if len(text) > RECORD_CHARS else ""
            body = f"<pre>{_esc(text[:RECORD_CHARS])}{cut}</pre>"
        self.record_panel.value = (
            f"<div class='ps-panel ps-record' data-seq='{seq}'><b>seq {seq}</b>: {_esc(record.kind)}{body}</div>"
        )

    def _render_json(self, force: bool) -> None:
        """The SDK's snapshot JSON at the cursor (only while the section is open)."""
        history = self.pool
        if history is None or self.json_panel.selected_index != 0:
            return
        k = self.cursor
        counts = self.shown.get("counts") or {}
        items = counts.get("messages", 0) + counts.get("wakes", 0)
        if not force and items > JSON_AUTO_ITEMS:
            self.json_button.description = f"render JSON at cursor {k}"
            self.json_button.layout.display = "block"
            self.json_view.value = (
                f"<div class='ps-panel ps-more'>the snapshot at cursor {k} holds {items:,} messages and wakes; "
                "press the button to render it</div>"
            )
            self._json_stale = True
            return
        try:
            text = history.snapshot(k, strict=False).to_json()
        except PoolscopeError as error:
            self.json_view.value = f"<div class='ps-panel ps-err'>{_esc(str(error))}</div>"
            return
        cut = (
            f"\n… {len(text) - JSON_CHARS:,} more characters (all of it: pool.snapshot({k}).to_json())"
            if len(text) > JSON_CHARS
            else ""
        )
        self.json_button.layout.display = "none"
        self.json_view.value = (
            f"<div class='ps-panel'><div>{len(text):,} characters at cursor {k}</div>"
            f"<pre class='ps-json' data-cursor='{k}'>{_esc(text[:JSON_CHARS])}{cut}</pre></div>"
        )
        self._json_stale = False

    def _eager_check(self) -> bool:
        """Whether the database is small enough to check at once (``check=None``)."""
        try:
            rows = self.db.conn.execute("SELECT max(seq) FROM agent_pool_records GROUP BY pool_id").fetchall()
            total = sum(int(r[0]) for r in rows if isinstance(r[0], int))
        except Exception:  # an odd file: let the check itself say what is wrong
            return True
        return total <= CHECK_EAGER_RECORDS

    def run_check(self) -> list[Any]:
        """Run ``db.check()`` (once) and show the anomalies of the selected
        pool, in their panel and on the timeline; returns all of them."""
        with self._lock:
            self._check = True
            self.anomalies = None
            self._render_anomalies()
            if self.pool is not None:
                self._draw_timeline()
            return list(self.anomalies or [])

    def _render_anomalies(self) -> None:
        assert self.pool is not None
        if not self._check:
            self.check_button.layout.display = "block"
            self.anomalies_panel.value = (
                "<div class='ps-panel ps-anomalies ps-more'>anomalies: not checked yet "
                "(a large database; the button runs db.check())</div>"
            )
            return
        self.check_button.layout.display = "none"
        if self.anomalies is None:
            try:
                self.anomalies = list(self.db.check())
            except (ImportError, AttributeError) as error:  # the checker is not there
                self.anomalies_panel.value = (
                    f"<div class='ps-panel ps-more'>no anomaly check available ({_esc(str(error))})</div>"
                )
                self.anomalies = []
                return
        mine = [a for a in self.anomalies if a.pool_id in (self.pool.pool_id, None)]
        if not mine:
            self.anomalies_panel.value = (
                "<div class='ps-panel ps-anomalies' data-count='0'><h4>anomalies</h4>none found by db.check()</div>"
            )
            return
        rows = [
            [
                f"<span class='{'ps-err' if a.severity == 'error' else 'ps-warn' if a.severity == 'warning' else ''}'>"
                f"{_esc(a.severity)}</span>",
                _esc(a.code),
                "" if a.seq is None else str(a.seq),
                _esc(a.message),
            ]
            for a in mine[:50]
        ]
        self.anomalies_panel.value = (
            f"<div class='ps-panel ps-anomalies' data-count='{len(mine)}'><h4>anomalies ({len(mine)})</h4>"
            + _table(["severity", "code", "seq", "message"], rows, len(mine) - 50, "more")
            + "</div>"
        )


def explore(
    db_or_path: Database | str | os.PathLike,
    pool_id: str | None = None,
    live: bool = False,
    *,
    interval: float = 1.0,
    check: bool | None = None,
) -> Explorer:
    """An interactive explorer of a pool database (see :class:`Explorer`).

    ``db_or_path`` is a :class:`~poolscope.Database` or a path (opened
    read-only); ``pool_id`` the pool shown first (default: the first);
    ``live=True`` follows a database still being written, polling every
    ``interval`` seconds; ``check`` lists the anomalies ``db.check()``
    finds (``None``: at once for databases up to :data:`CHECK_EAGER_RECORDS`
    records, else when its button is pressed; ``False``: only on the button).

    >>> import poolscope
    >>> ex = poolscope.explore("sample_data/demo.db", "pool.bravo")   # doctest: +SKIP
    >>> ex                                                             # doctest: +SKIP
    """
    from .history import Database
    from .history import open as open_db

    db = db_or_path if isinstance(db_or_path, Database) else open_db(db_or_path)
    return Explorer(db, pool_id, live=live, interval=interval, check=check)
