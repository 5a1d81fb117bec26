"""The explorer's panels: each one a widget and how to fill it from a :class:`View`.

A panel says where it goes (``area``), which changes it follows
(``follows``) and draws itself in :meth:`Panel.update`; the HTML comes from
:mod:`poolscope.render`.  To add one, subclass :class:`Panel` (or
:class:`HTMLPanel`) and pass it to :meth:`Explorer.add_panel
<poolscope.explore.Explorer.add_panel>`::

    class Heads(HTMLPanel):
        name, title, follows = "heads", "heads of every pool", frozenset({"pool", "records"})

        def update(self, view, changed):
            self.widget.value = render.summary_html(view.db.summary())

    ex.add_panel(Heads())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as W

from .. import render, wire
from ..check import file_wide
from ..errors import PoolscopeError
from ..fold import DAMAGED

if TYPE_CHECKING:  # pragma: no cover
    from ..diff import Diff
    from ..filters import RecordFilter
    from ..history import Database, PoolHistory
    from ..snapshot import Snapshot

__all__ = [
    "View",
    "Panel",
    "HTMLPanel",
    "CountsPanel",
    "MembersPanel",
    "TopicsPanel",
    "MessagesPanel",
    "WakesPanel",
    "DiffPanel",
    "RecordPanel",
    "JsonPanel",
    "AnomaliesPanel",
    "CHANGES",
]

#: What can change between two updates: the pool shown, the cursor, the
#: filters, the anomalies found, the records loaded (live mode), the message,
#: wake or run selected (the why panel).
CHANGES = frozenset({"pool", "cursor", "filters", "anomalies", "records", "selection"})

#: The JSON panel re-renders by itself on a cursor move only for snapshots
#: with at most this many messages and wakes (above it: a button).
JSON_AUTO_ITEMS = 5000
#: Characters of JSON shown (the rest is counted).
JSON_CHARS = 100_000


@dataclass
class View:
    """What the explorer shows, as data: every panel is drawn from it.

    ``previous`` is the cursor shown before (the diff is from there);
    ``snapshot`` the lenient snapshot at the cursor (``None`` before the
    pool's ``pool_opened``); ``anomalies`` what ``db.check()`` found (``None``:
    not checked).
    """

    db: Database
    pool: PoolHistory
    filter: RecordFilter
    cursor: int
    previous: int
    filters: dict[str, str | None]
    anomalies: list[Any] | None = None
    checking: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    selected: str | None = None

    @property
    def record_seq(self) -> int:
        """Seq of the record at the cursor (the last one at or before it; 0: none)."""
        index = self.pool.index
        n = index.position(self.cursor)
        return index.seqs[n - 1] if n else 0

    @cached_property
    def snapshot(self) -> Snapshot | None:
        try:
            return self.pool.snapshot(self.cursor, strict=False)
        except PoolscopeError:  # not opened yet at this cursor
            return None

    @cached_property
    def diff(self) -> Diff:
        return self.pool.diff(self.previous, self.cursor)

    def pool_anomalies(self) -> list[Any]:
        """The anomalies of the pool shown, and the file-wide ones: those of the
        whole file and of rows that no pool reads (:func:`poolscope.check.file_wide`)."""
        found = self.anomalies or ()
        return [a for a in found if a.pool_id == self.pool.pool_id] + file_wide(found, self.db.pool_ids)


class Panel:
    """One piece of the explorer (see the module's docstring).

    ``area``: ``"left"`` / ``"right"`` (the two columns under the timeline),
    ``"top"`` (above them) or ``"bottom"`` (below, full width, in order);
    ``title`` is shown above a bottom panel; ``follows`` the changes
    (:data:`CHANGES`) that make the explorer call :meth:`update`.
    """

    name: ClassVar[str] = "panel"
    area: ClassVar[str] = "bottom"
    title: ClassVar[str | None] = None
    follows: ClassVar[frozenset[str]] = frozenset({"pool", "cursor", "records"})

    widget: W.Widget

    def attach(self, explorer: Any) -> None:
        """Called once when the panel is added (the explorer, to ask it for things)."""
        self.explorer = explorer

    def update(self, view: View, changed: set[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear(self) -> None:
        """Show nothing (no pool, or no snapshot at the cursor)."""


class HTMLPanel(Panel):
    """A panel that is one ``HTML`` widget, replaced whole on each update (no flicker)."""

    def __init__(self) -> None:
        self.widget = W.HTML(layout=W.Layout(width="100%"))

    def clear(self) -> None:
        self.widget.value = ""


def _record_kind(view: View) -> str:
    index = view.pool.index
    n = index.position(view.cursor)
    if not n:
        return "—"
    kind = index.entries[n - 1].kind
    return "damaged" if kind == DAMAGED else wire.KINDS[kind]


class CountsPanel(HTMLPanel):
    """The snapshot at the cursor: counts, statuses and warnings."""

    name, area = "counts", "left"

    def update(self, view: View, changed: set[str]) -> None:
        snap = view.snapshot
        if snap is None:
            self.widget.value = render.no_snapshot_html(view.cursor)
            return
        index = view.pool.index
        warnings = []
        problem = index.first_problem(view.cursor)
        if problem is not None:
            warnings.append(f"damaged record at seq {problem.seq} (skipped here; the SDK stops there)")
        conflict = index.conflict_at(view.cursor)
        if conflict is not None:
            warnings.append(f"conflicting pool_opened at seq {conflict} (the SDK refuses this log)")
        self.widget.value = render.snapshot_counts(
            snap, cursor=view.cursor, head=view.pool.head, record_kind=_record_kind(view), warnings=warnings
        )


class MembersPanel(HTMLPanel):
    name, area = "members", "left"

    def update(self, view: View, changed: set[str]) -> None:
        snap = view.snapshot
        self.widget.value = "" if snap is None else render.members_table(snap.members)


class TopicsPanel(HTMLPanel):
    name, area = "topics", "left"

    def update(self, view: View, changed: set[str]) -> None:
        snap = view.snapshot
        self.widget.value = "" if snap is None else render.topics_list(snap.topics)


class MessagesPanel(HTMLPanel):
    """The latest messages of the snapshot, latest first."""

    name, area = "messages", "right"

    def update(self, view: View, changed: set[str]) -> None:
        snap = view.snapshot
        self.widget.value = "" if snap is None else render.items_table(snap.messages)


class WakesPanel(HTMLPanel):
    name, area = "wakes", "right"

    def update(self, view: View, changed: set[str]) -> None:
        snap = view.snapshot
        self.widget.value = "" if snap is None else render.items_table(snap.wakes)


class DiffPanel(HTMLPanel):
    """The change from the previous cursor position."""

    name, title = "diff", "change from the previous cursor position"

    def update(self, view: View, changed: set[str]) -> None:
        self.widget.value = f"<div class='ps-panel'>{render.diff_html(view.diff)}</div>"


class RecordPanel(HTMLPanel):
    """The record at the cursor (its payload is the only one read on a move)."""

    name, title = "record", "record at the cursor"

    def update(self, view: View, changed: set[str]) -> None:
        seq = view.record_seq
        records = view.pool.records(after=seq - 1, upto=seq) if seq > 0 else []
        self.widget.value = render.record_html(records[0] if records else None, seq)


class JsonPanel(Panel):
    """The SDK's snapshot JSON at the cursor, rendered only while its section is open."""

    name = "json"

    def __init__(self) -> None:
        self.view_html = W.HTML(layout=W.Layout(width="100%"))
        self.button = W.Button(description="render JSON here", layout=W.Layout(width="220px", display="none"))
        self.widget = W.Accordion(children=[W.VBox([self.button, self.view_html])], selected_index=None)
        self.widget.set_title(0, "snapshot JSON (the SDK's exact text)")
        self.stale = True

    @property
    def is_open(self) -> bool:
        return self.widget.selected_index == 0

    def clear(self) -> None:
        self.view_html.value = ""
        self.button.layout.display = "none"
        self.stale = True

    def update(self, view: View, changed: set[str]) -> None:
        if self.is_open:
            self.render(view, force=False)

    def render(self, view: View, force: bool) -> None:
        if not self.is_open:
            return
        k = view.cursor
        snap = view.snapshot
        items = 0 if snap is None else len(snap.messages) + len(snap.wakes)
        if not force and items > JSON_AUTO_ITEMS:
            self.button.description = f"render JSON at cursor {k}"
            self.button.layout.display = "block"
            self.view_html.value = (
                f"<div class='ps-panel ps-more'>the snapshot at cursor {k} holds {items:,} messages and wakes; "
                "press the button to render it</div>"
            )
            self.stale = True
            return
        try:
            text = view.pool.snapshot(k, strict=False).to_json()
        except PoolscopeError as error:
            self.view_html.value = f"<div class='ps-panel ps-err'>{render.esc(error)}</div>"
            return
        cut = (
            f"\n… {len(text) - JSON_CHARS:,} more characters (all of it: pool.snapshot({k}).to_json())"
            if len(text) > JSON_CHARS
            else ""
        )
        self.button.layout.display = "none"
        self.view_html.value = (
            f"<div class='ps-panel'><div>{len(text):,} characters at cursor {k}</div>"
            f"<pre class='ps-json' data-cursor='{k}'>{render.esc(text[:JSON_CHARS])}{cut}</pre></div>"
        )
        self.stale = False


class AnomaliesPanel(Panel):
    """The anomalies ``db.check()`` finds in the pool (and file-wide), with a
    button that runs the check when the explorer did not at once."""

    name = "anomalies"
    follows = frozenset({"pool", "anomalies"})

    def __init__(self) -> None:
        self.button = W.Button(description="check the database (db.check())", layout=W.Layout(width="260px"))
        self.html = W.HTML(layout=W.Layout(width="100%"))
        self.widget = W.VBox([self.button, self.html], layout=W.Layout(width="100%"))

    def clear(self) -> None:
        self.html.value = ""

    def update(self, view: View, changed: set[str]) -> None:
        if view.anomalies is None:
            self.button.layout.display = "block"
            self.html.value = (
                "<div class='ps-panel ps-anomalies ps-more'>anomalies: not checked yet "
                "(a large database; the button runs db.check())</div>"
            )
            return
        self.button.layout.display = "none"
        if view.extra.get("check_error"):
            self.html.value = f"<div class='ps-panel ps-more'>no anomaly check available ({render.esc(view.extra['check_error'])})</div>"
            return
        mine = view.pool_anomalies()
        others = any(a.pool_id not in (None, view.pool.pool_id) for a in mine)  # rows no pool reads: say whose
        self.html.value = (
            f"<div class='ps-panel'><h4>anomalies ({len(mine):,})</h4>"
            f"{render.anomalies_html(mine, empty='none found by db.check()', limit=50, pools=others)}</div>"
        )
