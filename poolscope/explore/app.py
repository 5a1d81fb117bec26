"""The explorer's controller: the widgets that navigate, the state, one handler.

:class:`Explorer` owns the controls (pool picker, cursor slider and Play,
steps, jumps, filters) and the state (pool, cursor, filters, anomalies).
Every control reports to one handler (:meth:`Explorer._on_event`), which
changes the state and tells the panels what changed; each panel
(:mod:`poolscope.explore.panels`, :mod:`poolscope.explore.timeline`) draws
itself from a :class:`~poolscope.explore.panels.View` of that state.  The
data comes from the index (:class:`poolscope.filters.RecordFilter` for
filters and jumps) and the HTML from :mod:`poolscope.render`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from .. import render
from ..arguments import shown_value, whole_number
from ..errors import CursorError, DatabaseChangedError, DatabaseClosedError, InvalidInputError, PoolscopeError
from ..filters import KIND_NAMES, STATUS_NAMES, RecordFilter
from ..render import ITEM_ROWS
from .live import Follower, polling_interval
from .panels import (
    AnomaliesPanel,
    CountsPanel,
    DiffPanel,
    JsonPanel,
    MembersPanel,
    MessagesPanel,
    Panel,
    RecordPanel,
    TopicsPanel,
    View,
    WakesPanel,
)
from .timeline import TimelinePanel
from .why import WhyPanel

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from ..diff import Diff
    from ..history import Database, PoolHistory

__all__ = ["Explorer", "default_panels", "CHECK_EAGER_RECORDS", "FILTER_OPTIONS"]

#: ``check=None`` runs ``db.check()`` at once only for databases of at most
#: this many records (it reads every pool); above it, a button runs it.
CHECK_EAGER_RECORDS = 200_000
#: Runs and agents offered in the filter boxes (any other can be typed).
FILTER_OPTIONS = 5000

_ANY = object()  # "take this filter from the filter widgets"


def default_panels() -> list[Panel]:
    """The panels of a new explorer, in order."""
    return [
        TimelinePanel(),
        CountsPanel(),
        MembersPanel(),
        TopicsPanel(),
        MessagesPanel(),
        WakesPanel(),
        WhyPanel(),
        DiffPanel(),
        RecordPanel(),
        JsonPanel(),
        AnomaliesPanel(),
    ]


class Explorer:
    """The interactive explorer of one database (see :func:`poolscope.explore`).

    Controls (attributes): ``pool_picker``, ``slider``, ``play``,
    ``step_back``, ``step_forward``, ``prev_match``, ``next_match``,
    ``prev_failure_button``, ``next_failure_button``, ``kind_filter``,
    ``status_filter``, ``run_filter``, ``agent_filter``, ``status_line``,
    ``head_label``.  Panels: ``panels`` (by name: ``timeline``, ``counts``,
    ``members``, ``topics``, ``messages``, ``wakes``, ``diff``, ``record``,
    ``json``, ``anomalies``) and, for their widgets, ``counts_panel``,
    ``members_panel``, ``topics_panel``, ``messages_panel``, ``wakes_panel``,
    ``diff_panel``, ``record_panel``, ``anomalies_panel`` (``HTML``),
    ``timeline`` (``Image``), ``json_panel`` (``Accordion``) with
    ``json_view`` inside; ``widget`` is the whole app.

    What is shown is also kept as data: ``cursor``, ``pool``, ``diff`` (the
    :class:`~poolscope.Diff` in the diff panel), ``shown`` (a dict:
    ``pool_id``, ``cursor``, ``snapshot_cursor``, ``counts``, ``member_ids``,
    ``message_statuses`` and ``wake_statuses`` (counts), ``latest_messages``
    and ``latest_wakes`` (ids in the tables), ``record_seq``),
    ``last_render_ms`` and ``timeline_draws`` (figure draws; a cursor move
    only moves the marker).

    >>> ex = poolscope.explore("sample_data/demo.db")
    >>> ex.set_cursor(300); ex.shown["counts"]
    300
    {'members': 12, 'topics': 3, 'messages': 119, 'wakes': 32}
    >>> ex.jump("next", kind="wake", status="timed_out")
    341
    """

    def __init__(
        self,
        db: Database,
        pool_id: str | None = None,
        *,
        live: bool = False,
        interval: float = 1.0,
        check: bool | None = None,
        panels: Sequence[Panel] | None = None,
        histories: dict[str, PoolHistory] | None = None,
        owns_db: bool = False,
    ) -> None:
        self.db = db
        #: the explorer opened ``db`` itself (from a path): :meth:`close` closes it
        self._owns_db = owns_db
        self._closed = False
        self.pool: PoolHistory | None = None
        self.selected: str | None = None
        self._histories = dict(histories or {})  # pools shown instead of the database's (a what-if)
        self.diff: Diff | None = None
        self.shown: dict[str, Any] = {}
        self.last_render_ms: float | None = None
        self.anomalies: list[Any] | None = None
        self.check_error: str | None = None
        self._check = self._eager_check() if check is None else bool(check)
        self._filter: RecordFilter | None = None
        self._filters: dict[str, RecordFilter] = {}
        self._shown_cursor: int | None = None
        self._busy = 0  # > 0 while the explorer itself changes widgets (their observers stay quiet)
        self._lock = threading.RLock()
        self._follower = Follower(self.poll, self._live_error, interval)
        self.panels: dict[str, Panel] = {}
        self._build_controls()
        self.widget = W.VBox(layout=W.Layout(width="100%"))
        self.widget.add_class("poolscope-explorer")
        for panel in default_panels() if panels is None else panels:
            self.add_panel(panel, _layout=False)
        self._layout()
        ids = db.pool_ids
        if ids:
            self.select_pool(pool_id if pool_id is not None else ids[0])
        else:
            self.status_line.value = "<span class='ps-warn'>this database holds no pool</span>"
        if live:
            self.start()

    # ------------------------------------------------------------- controls
    def _build_controls(self) -> None:
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

        def button(text: str, tip: str, width: str = "36px") -> W.Button:
            return W.Button(description=text, tooltip=tip, layout=W.Layout(width=width))

        failure = "failure (failed/expired/timed_out message, timed_out/failed wake)"
        self.step_back = button("◀", "previous record")
        self.step_forward = button("▶", "next record")
        self.prev_match = button("« match", "previous record matching the filters", "82px")
        self.next_match = button("match »", "next record matching the filters", "82px")
        self.prev_failure_button = button("⚠ ◀", f"previous {failure}", "56px")
        self.next_failure_button = button("⚠ ▶", f"next {failure}", "56px")
        self.kind_filter = W.Dropdown(
            options=[("any kind", "")] + [(k, k) for k in KIND_NAMES],
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

        def combo(placeholder: str, description: str, width: str) -> W.Combobox:
            return W.Combobox(
                placeholder=placeholder,
                description=description,
                ensure_option=False,
                continuous_update=False,
                layout=W.Layout(width="240px"),
                style={"description_width": width},
            )

        self.run_filter = combo("any run", "run", "30px")
        self.agent_filter = combo("any agent", "agent", "40px")
        self.status_line = W.HTML()
        # what each button does; every control reports to _on_event
        self._actions: dict[W.Button, Callable[[], Any]] = {
            self.step_back: lambda: self.step(-1),
            self.step_forward: lambda: self.step(1),
            self.prev_match: lambda: self.jump("previous"),
            self.next_match: lambda: self.jump("next"),
            self.prev_failure_button: lambda: self.next_failure("previous"),
            self.next_failure_button: lambda: self.next_failure("next"),
        }
        for control in self._actions:
            control.on_click(self._on_event)
        for control in (self.pool_picker, self.slider, self.kind_filter, self.status_filter):
            control.observe(self._on_event, "value")
        for control in (self.run_filter, self.agent_filter):
            control.observe(self._on_event, "value")

    def add_panel(self, panel: Panel, *, _layout: bool = True) -> Panel:
        """Add a panel (see :mod:`poolscope.explore.panels`); it is drawn at once
        for the pool and cursor shown, then on every change it follows."""
        if not isinstance(panel, Panel):
            raise InvalidInputError(f"panel must be a Panel (poolscope.explore.panels), not {shown_value(panel)}")
        if panel.name in self.panels:
            raise InvalidInputError(f"the explorer already has a panel named {panel.name!r}")
        self.panels[panel.name] = panel
        panel.attach(self)
        if isinstance(panel, JsonPanel):
            panel.widget.observe(self._on_event, "selected_index")
            panel.button.on_click(self._on_event)
            self._actions[panel.button] = lambda: self._render_json(True)
        elif isinstance(panel, AnomaliesPanel):
            panel.button.on_click(self._on_event)
            self._actions[panel.button] = self.run_check
        elif isinstance(panel, WhyPanel):
            panel.key_box.observe(self._on_event, "value")
        if _layout:
            self._layout()
            if self.pool is not None:
                with self._lock:
                    self._guard(self._update_panels, [panel], set(panel.follows) | {"pool"})
        return panel

    def remove_panel(self, name: str) -> Panel:
        """Take a panel out of the explorer (see :meth:`add_panel`); returns it."""
        panel = self.panels.get(name)
        if panel is None:
            raise InvalidInputError(f"the explorer has no panel named {name!r} (panels: {', '.join(self.panels)})")
        del self.panels[name]
        for widget in vars(panel).values():  # its buttons no longer act
            if isinstance(widget, W.Button):
                self._actions.pop(widget, None)
        self._layout()
        return panel

    def _layout(self) -> None:
        def row(children: list, **kw: Any) -> W.Box:
            return W.Box(children, layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center", **kw))

        def area(name: str) -> list[W.Widget]:
            return [p.widget for p in self.panels.values() if p.area == name]

        bottom: list[W.Widget] = []
        for panel in self.panels.values():
            if panel.area == "bottom":
                if panel.title:
                    bottom.append(W.HTML(f"<h4 style='margin:6px 0 0 0'>{render.esc(panel.title)}</h4>"))
                bottom.append(panel.widget)
        navigation = [
            self.prev_failure_button,
            self.prev_match,
            self.step_back,
            self.slider,
            self.step_forward,
            self.next_match,
            self.next_failure_button,
            self.play,
        ]
        self.widget.children = [
            W.HTML(f"<style>{render.CSS}</style>"),
            row([self.pool_picker, self.head_label]),
            row(navigation),
            row([self.kind_filter, self.status_filter, self.run_filter, self.agent_filter]),
            self.status_line,
            *area("top"),
            W.HBox(
                [
                    W.VBox(area("left"), layout=W.Layout(width="42%")),
                    W.VBox(area("right"), layout=W.Layout(width="58%")),
                ]
            ),
            *bottom,
        ]

    # widgets of the built-in panels, by their old names
    def _panel_widget(self, name: str, attribute: str = "widget") -> Any:
        return getattr(self.panels[name], attribute)

    counts_panel = property(lambda self: self._panel_widget("counts"))
    members_panel = property(lambda self: self._panel_widget("members"))
    topics_panel = property(lambda self: self._panel_widget("topics"))
    messages_panel = property(lambda self: self._panel_widget("messages"))
    wakes_panel = property(lambda self: self._panel_widget("wakes"))
    diff_panel = property(lambda self: self._panel_widget("diff"))
    record_panel = property(lambda self: self._panel_widget("record"))
    anomalies_panel = property(lambda self: self._panel_widget("anomalies", "html"))
    check_button = property(lambda self: self._panel_widget("anomalies", "button"))
    json_panel = property(lambda self: self._panel_widget("json"))
    json_view = property(lambda self: self._panel_widget("json", "view_html"))
    json_button = property(lambda self: self._panel_widget("json", "button"))
    timeline = property(lambda self: self._panel_widget("timeline", "image"))
    timeline_box = property(lambda self: self._panel_widget("timeline", "box"))
    timeline_marker = property(lambda self: self._panel_widget("timeline", "marker"))

    @property
    def timeline_draws(self) -> int:
        """How many times the timeline figure was drawn (a cursor move only moves its marker)."""
        panel = self.panels.get("timeline")
        return panel.draws if isinstance(panel, TimelinePanel) else 0

    # ------------------------------------------------------- display hooks
    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._closed:  # its widgets are gone: a line saying so
            display(self._repr_mimebundle_(), raw=True)
        else:
            display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        show = getattr(self.widget, "_repr_mimebundle_", None)
        if self._closed or show is None:  # ipywidgets drops a closed widget's
            return {"text/plain": f"{self!r} (closed)"}
        return show(**kwargs)

    def __repr__(self) -> str:
        pool = self.pool.pool_id if self.pool is not None else None
        return f"<poolscope.Explorer {str(self.db.path)!r} pool={render.shorten(pool)!r} cursor={self.cursor}>"

    # -------------------------------------------------------------- state
    @property
    def cursor(self) -> int:
        """The cursor on the slider."""
        return int(self.slider.value)

    @property
    def filters(self) -> dict[str, str | None]:
        """The filters in force: ``kind``, ``status``, ``run``, ``agent`` (``None``: any)."""
        return {
            "kind": self.kind_filter.value or None,
            "status": self.status_filter.value or None,
            "run": self.run_filter.value.strip() or None,
            "agent": self.agent_filter.value.strip() or None,
        }

    def _view(self, cursor: int) -> View:
        assert self.pool is not None and self._filter is not None
        previous = self._shown_cursor
        if previous is None or previous > self.pool.head:
            index = self.pool.index
            n = index.position(cursor)
            previous = index.seqs[n - 2] if n >= 2 else 0
        view = View(
            db=self.db,
            pool=self.pool,
            filter=self._filter,
            cursor=cursor,
            previous=previous,
            filters=self.filters,
            anomalies=self.anomalies,
            selected=self.selected,
        )
        if self.check_error:
            view.extra["check_error"] = self.check_error
        return view

    # ------------------------------------------------------------ handler
    def _on_event(self, event: Any) -> None:
        """The one handler of every control: a button press or a widget's change."""
        if isinstance(event, W.Button):
            action = self._actions.get(event)
            if action is not None:
                self._guard(action)
            return
        owner, new = event["owner"], event["new"]
        json = self.panels.get("json")
        if isinstance(json, JsonPanel) and owner is json.widget:
            if new == 0:
                self._guard(self._render_json, True)
            else:
                json.clear()
            return
        if self._busy:
            return
        why = self.panels.get("why")
        if isinstance(why, WhyPanel) and owner is why.key_box:
            if self.pool is not None:
                self._guard(self.select, (new or "").strip() or None)
            return
        if owner is self.pool_picker:
            if new is not None:
                self._guard(self.select_pool, new)
        elif self.pool is None:
            return
        elif owner is self.slider:
            with self._lock:
                self._guard(self._render, int(new))
        else:  # a filter
            with self._lock:
                self._on_filter()

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a UI action; show an error in the status line instead of losing it."""
        try:
            return fn(*args)
        except PoolscopeError as error:
            self._say(f"<span class='ps-err'>{render.esc(error)}</span>")
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

    def _on_filter(self) -> None:
        f = self.filters
        if self._filter is None:  # no pool shown: nothing to filter
            return
        if f["run"] and f["run"] not in self._filter.runs:
            self._say(f"<span class='ps-warn'>no run {render.ident(f['run'])} in this pool</span>")
        if f["agent"] and f["agent"] not in self._filter.agents:
            self._say(f"<span class='ps-warn'>no agent {render.ident(f['agent'])} in this pool</span>")
        self._update({"filters"})

    # ------------------------------------------------------------ panels
    def _update_panels(self, panels: Sequence[Panel], changed: set[str], view: View | None = None) -> View:
        view = view or self._view(self.cursor)
        for panel in panels:
            if panel.follows & changed:
                panel.update(view, changed)
        timeline = self.panels.get("timeline")
        if isinstance(timeline, TimelinePanel) and timeline.error and changed & {"pool", "filters", "anomalies"}:
            self._say(f"<span class='ps-warn'>{render.esc(timeline.error)}</span>")
        return view

    def _update(self, changed: set[str], cursor: int | None = None) -> None:
        """Tell every panel following one of ``changed`` to draw the state at ``cursor``."""
        if self.pool is None:  # no pool shown (a database without one): nothing to draw
            return
        started = time.perf_counter()
        k = self.cursor if cursor is None else cursor
        view = self._update_panels(list(self.panels.values()), changed, self._view(k))
        if changed & {"pool", "cursor", "records"}:
            self.diff = view.diff
            self._shown_cursor = k
            self.shown = self._shown(view)  # published whole, once every panel shows k
            self.last_render_ms = (time.perf_counter() - started) * 1000

    def _render(self, k: int) -> None:
        """Fill every panel for cursor ``k``."""
        self._update({"cursor"}, k)

    @staticmethod
    def _shown(view: View) -> dict[str, Any]:
        seq = view.record_seq
        shown: dict[str, Any] = {
            "pool_id": view.pool.pool_id,
            "cursor": view.cursor,
            "snapshot_cursor": seq,
            "record_seq": seq,
        }
        snap = view.snapshot
        if snap is None:
            shown.update(
                counts=None, member_ids=[], latest_messages=[], latest_wakes=[], message_statuses={}, wake_statuses={}
            )
            return shown
        shown.update(
            counts=snap.counts(),
            member_ids=snap.member_ids,
            message_statuses=snap.messages.status_counts(),
            wake_statuses=snap.wakes.status_counts(),
            latest_messages=[r["id"] for r in snap.messages.latest(ITEM_ROWS)],
            latest_wakes=[r["id"] for r in snap.wakes.latest(ITEM_ROWS)],
        )
        return shown

    def _render_json(self, force: bool) -> None:
        panel = self.panels.get("json")
        if isinstance(panel, JsonPanel) and self.pool is not None:
            panel.render(self._view(self.cursor), force)

    # ---------------------------------------------------------- navigation
    def select_pool(self, pool_id: str) -> None:
        """Show another pool: the slider's range becomes its seqs, the cursor its head.

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.select_pool("pool.bravo")
        >>> ex.pool.pool_id, ex.cursor == ex.pool.head
        ('pool.bravo', True)
        """
        with self._lock:
            # PoolNotFoundError if unknown (or not a string: Database.pool says so)
            history = self._histories.get(pool_id) if isinstance(pool_id, str) else None
            if history is None:  # (not `or`: a history of no records is falsy, and a what-if may keep none)
                history = self.db.pool(pool_id)
            self.pool = history
            self.selected = None
            found = self._filters.get(pool_id)
            if found is None:
                found = self._filters[pool_id] = RecordFilter(history)
            else:
                found.extend()
            self._filter = found
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
            if self._check and self.anomalies is None:
                self._find_anomalies()
            self._say(f"pool <b>{render.ident(pool_id)}</b>: {len(index):,} records")
            self._update({"pool", "cursor", "filters", "anomalies"}, head)

    def select(self, key: str | None) -> None:
        """Show the history and the explanation of a message, wake or run id
        (``None``: none) in the why panel, up to the cursor; they follow the
        cursor as it moves.

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.select("msg.alpha.17")
        >>> ex.selected
        'msg.alpha.17'
        """
        if key is not None and not isinstance(key, str):
            raise InvalidInputError(f"key must be a message, wake or run id (a string) or None, not {shown_value(key)}")
        with self._lock:
            self.selected = key
            why = self.panels.get("why")
            if isinstance(why, WhyPanel) and why.key_box.value != (key or ""):
                self._busy += 1
                try:
                    why.key_box.value = key or ""
                finally:
                    self._busy -= 1
            self._update({"selection"})

    def set_cursor(self, k: int) -> int:
        """Move the cursor to ``k`` (a seq between the pool's first and its
        head) and update every panel; return the cursor.

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.set_cursor(120)
        120
        """
        if isinstance(k, bool) or not hasattr(k, "__index__"):
            raise CursorError(f"cursor must be an integer, not {type(k).__name__}")
        k = int(k)
        with self._lock:
            if self.pool is None:
                raise self._no_pool()
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
                self.slider.value = k  # the handler renders
            return k

    def _no_pool(self) -> CursorError:
        """What moving the cursor raises while no pool is shown (a database without one)."""
        return CursorError("no pool selected", path=self.db.path)

    def step(self, n: int = 1) -> int:
        """Move ``n`` records forward (negative: back), stopping at the ends."""
        if self.pool is None:
            raise self._no_pool()
        steps = whole_number(n)
        if steps is None:
            raise InvalidInputError(f"step takes a whole number of records, not {shown_value(n)}")
        n = steps
        seqs = self.pool.index.arrays()["seq"]
        if not len(seqs):
            return self.cursor
        import numpy as np

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

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.set_cursor(100)
        100
        >>> ex.jump("next", kind="wake", status="timed_out")
        112
        >>> ex.jump("previous", kind="run_message", status="failed")
        104
        """
        forward = self._direction(direction)
        chosen = self.filters
        for name, value in (("kind", kind), ("status", status), ("run", run), ("agent", agent)):
            if value is not _ANY:
                chosen[name] = value or None
        with self._lock:
            if self._filter is None:
                raise self._no_pool()
            mask = self._filter.mask(chosen["kind"], chosen["status"], chosen["run"], chosen["agent"])
            target = self._filter.find(mask, self.cursor, forward)
            what = ", ".join(f"{k}={v}" for k, v in chosen.items() if v) or "any record"
            return self._go(target, forward, f"record with {what}")

    def next_failure(self, direction: str = "next") -> int | None:
        """Move to the first failure after the cursor (``"previous"``: the
        last one before it): a ``failed``, ``expired`` or ``timed_out``
        message, or a ``timed_out`` or ``failed`` wake, of the run and agent
        in the filters if any.  Returns the new cursor or ``None``.

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.set_cursor(1); ex.next_failure()
        1
        6
        """
        forward = self._direction(direction)
        with self._lock:
            if self._filter is None:
                raise self._no_pool()
            f = self.filters
            mask = self._filter.failures()
            extra = self._filter.mask(None, None, f["run"], f["agent"])
            if extra is not None:
                mask = mask & extra
            return self._go(self._filter.find(mask, self.cursor, forward), forward, "failure")

    def previous_failure(self) -> int | None:
        """The last failure before the cursor; see :meth:`next_failure`."""
        return self.next_failure("previous")

    @staticmethod
    def _direction(direction: str) -> bool:
        if direction in ("next", "forward", "+"):
            return True
        if direction in ("previous", "prev", "back", "-"):
            return False
        raise InvalidInputError(f"direction must be 'next' or 'previous', not {direction!r}")

    def _go(self, target: int | None, forward: bool, what: str) -> int | None:
        if target is None:
            where = "after" if forward else "before"
            self._say(f"<span class='ps-warn'>no {render.esc(what)} {where} cursor {self.cursor}</span>")
            return None
        self.set_cursor(target)
        self._say(f"{'next' if forward else 'previous'} {render.esc(what)}: cursor {target}")
        return target

    # ----------------------------------------------------------- anomalies
    def _eager_check(self) -> bool:
        """Whether the database is small enough to check at once (``check=None``)."""
        try:
            total = sum(self.db.record_counts().values())
        except PoolscopeError:  # an odd file: let the check itself say what is wrong
            return True
        return total <= CHECK_EAGER_RECORDS

    def _find_anomalies(self) -> None:
        try:
            self.anomalies = list(self.db.check())
        except (ImportError, AttributeError) as error:  # the checker is not there
            self.anomalies, self.check_error = [], str(error)

    def run_check(self) -> list[Any]:
        """Run ``db.check()`` (once) and show the anomalies of the selected
        pool, in their panel and on the timeline; returns all of them."""
        with self._lock:
            self._check = True
            self.anomalies = None
            self._find_anomalies()
            if self.pool is not None:
                self._update({"anomalies"})
            return list(self.anomalies or [])

    # ----------------------------------------------------------- live mode
    def poll(self) -> int:
        """Load records appended since (``db.refresh()``, and a what-if's own
        ``refresh()`` when one is shown: it is folded again); extend the
        slider to the pool's head, follow the head if the cursor was there.
        Returns how many more records the pool shown holds than the explorer
        showed (a what-if folded again can hold fewer: then it is negative).
        Live mode calls it every ``interval`` seconds.

        The explorer compares what it shows with the pool, whoever refreshed
        the database (another cell's ``db.refresh()``, ``pool.follow()``);
        pools created since join the picker, and an explorer that showed no
        pool (its database held none yet) shows the first of them.

        >>> ex = poolscope.explore(db, "pool.alpha")
        >>> ex.poll()
        0
        """
        with self._lock:
            pool = self.pool
            try:
                self.db.refresh()
                if pool is not None and self._histories.get(pool.pool_id) is pool:
                    pool.refresh()  # a what-if: refreshes its base, folds again
            except DatabaseChangedError as error:
                self.stop()
                self._say(f"<span class='ps-err'>live mode stopped: {render.esc(error)}</span>")
                return 0
            ids = self.db.pool_ids
            if list(self.pool_picker.options) != ids:
                self._busy += 1
                try:
                    self.pool_picker.options = ids
                    self.pool_picker.value = pool.pool_id if pool is not None else None
                finally:
                    self._busy -= 1
            if pool is None:
                if not ids:
                    return 0
                self.select_pool(ids[0])  # the database's first pool, written since
                assert self.pool is not None
                return len(self.pool.index)
            assert self._filter is not None
            before, replaced = self._filter.n, self._filter.index is not pool.index
            self._filter.extend()  # starts again from a what-if's new index
            index = pool.index
            head = pool.head
            if not replaced and len(index) == before and self.slider.max == head:
                return 0
            at_head = self.slider.value == self.slider.max
            lo = index.seqs[0] if index.seqs else 0
            cursor = head if at_head else min(max(self.slider.value, lo), head)
            if replaced:  # a what-if folded again: records before the cursor may have left it too
                self._shown_cursor = None  # the diff is from the record before the cursor
            self._set_slider(lo, head, cursor)
            self._update_head_label()
            self._update_filter_options()
            changed = {"records"}
            if replaced:
                changed |= {"pool", "cursor"}  # drawn again as a pool picked anew (the timeline too)
            elif at_head or cursor != self._shown_cursor:
                changed.add("cursor")
            self._update(changed, cursor)
            return len(index) - before

    @property
    def interval(self) -> float:
        """Seconds between two polls in live mode."""
        return self._follower.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self._follower.interval = polling_interval(value)

    @property
    def live(self) -> bool:
        """Whether the explorer follows the database (see :meth:`start`)."""
        return self._follower.running

    @property
    def _task(self) -> asyncio.Task | None:
        return self._follower.task

    @property
    def _thread(self) -> threading.Thread | None:
        return self._follower.thread

    def start(self, interval: float | None = None) -> None:
        """Follow the database: :meth:`poll` every ``interval`` seconds, on
        the kernel's event loop when there is one (Jupyter, Voilà), else on a
        daemon thread.  :meth:`stop` ends it."""
        if self._closed:
            raise DatabaseClosedError(
                "the explorer was closed: it follows nothing more (poolscope.explore it again)", path=self.db.path
            )
        if interval is not None:
            self.interval = interval
        self._follower.start()
        self._update_head_label()

    def stop(self) -> None:
        """Stop following the database."""
        self._follower.stop()
        self._update_head_label(live=False)

    def close(self) -> None:
        """Stop following, close every widget of the explorer and, when it
        opened the database itself (:func:`poolscope.explore` given a path),
        the database.  Widgets stay registered with the kernel until closed,
        so an explorer made again and again in a notebook cell keeps each
        earlier one (and its database) alive until then; ``with
        poolscope.explore(path) as ex:`` closes it at the end.

        >>> ex = poolscope.explore("sample_data/demo.db")
        >>> ex.close(); ex.db.conn.total_changes
        Traceback (most recent call last):
        ...
        poolscope.errors.DatabaseClosedError: file sample_data/demo.db: the database was closed: nothing more is read from it (poolscope.open it again)
        """
        self._closed = True
        self._follower.stop()
        close_widgets(self.widget)
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Explorer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _live_error(self, error: Exception) -> None:
        self._say(
            f"<span class='ps-err'>live refresh failed: {render.esc(type(error).__name__)}: {render.esc(error)}</span>"
        )

    # -------------------------------------------------------- small widgets
    def _update_head_label(self, live: bool | None = None) -> None:
        if self.pool is None:
            return
        live = self.live if live is None else live
        dot = " · <span class='ps-ok'>● live</span>" if live else ""
        self.head_label.value = (
            f"<span class='ps-panel'>{len(self.pool.index):,} records · head <b>{self.pool.head}</b>{dot}</span>"
        )

    def _update_filter_options(self) -> None:
        assert self._filter is not None
        runs = sorted(self._filter.runs)[:FILTER_OPTIONS]
        agents = sorted(self._filter.agents)[:FILTER_OPTIONS]
        self._busy += 1
        try:
            if list(self.run_filter.options) != runs:
                self.run_filter.options = runs
            if list(self.agent_filter.options) != agents:
                self.agent_filter.options = agents
        finally:
            self._busy -= 1


def close_widgets(widget: Any) -> None:
    """Close ``widget`` and every widget inside it (``children``, an
    accordion's or a tab's too): ipywidgets' own ``close`` closes one."""
    for child in getattr(widget, "children", ()) or ():
        close_widgets(child)
    widget.close()
