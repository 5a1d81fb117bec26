"""The explorer's "why" panel: the history and the explanation of a message, wake or run."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as W

from .. import render
from ..errors import PoolscopeError, UnknownKeyError
from ..fold import MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE
from .panels import HTMLPanel, View

__all__ = ["WhyPanel"]

#: Ids offered in the key box: the latest messages and wakes of the snapshot and its members.
OFFERED = 15


def record_key(view: View) -> str | None:
    """The message id, wake condition id or run id of the record at the cursor (None: another kind)."""
    seq = view.record_seq
    index = view.pool.index
    position = index.position(seq) - 1
    if seq <= 0 or position < 0 or index.seqs[position] != seq:
        return None
    entry = index.entries_at([position])[0]
    return entry.key if entry.kind in _KEYED and isinstance(entry.key, str) else None


_KEYED = frozenset({MEMBER_JOINED, MEMBER_LEFT, RUN_MESSAGE, WAKE})


class WhyPanel(HTMLPanel):
    """Select a message, wake or run (type its id, or pick one of the snapshot's
    latest messages and wakes and its members) to see, up to the cursor, every
    record that touched it (:meth:`PoolHistory.history_of
    <poolscope.history.PoolHistory.history_of>`) and why it is where it is
    (:meth:`PoolHistory.explain <poolscope.history.PoolHistory.explain>`).  It
    follows the cursor: moving it retells the story as it stood then."""

    name, title = "why", "why: the history of a message, wake or run, and what the records say about it"
    follows: ClassVar[frozenset[str]] = frozenset({"pool", "cursor", "records", "selection"})

    def __init__(self) -> None:
        self.key_box = W.Combobox(
            placeholder="message, wake or run id",
            description="why",
            ensure_option=False,
            continuous_update=False,
            layout=W.Layout(width="460px"),
        )
        self.html = W.HTML(layout=W.Layout(width="100%"))
        self.widget = W.VBox([self.key_box, self.html], layout=W.Layout(width="100%"))
        self.key: str | None = None
        self.shown: dict[str, Any] = {}

    def clear(self) -> None:
        self.html.value = ""
        self.shown = {}

    def offer(self, view: View) -> None:
        """The ids the key box offers at this cursor: first the message, wake or
        run of the record at the cursor (the one just stepped to), then the
        snapshot's latest messages and wakes and its members."""
        snap = view.snapshot
        if snap is None:
            self.key_box.options = ()
            return
        ids = [key for key in (record_key(view),) if key is not None]
        ids += [r["id"] for r in snap.messages.latest(OFFERED)] + [r["id"] for r in snap.wakes.latest(OFFERED)]
        ids += snap.member_ids[:OFFERED]
        self.key_box.options = tuple(dict.fromkeys(str(i) for i in ids))

    def update(self, view: View, changed: set[str]) -> None:
        if changed & {"pool", "cursor", "records"}:
            self.offer(view)
        key = view.selected
        if key is None:
            self.html.value = (
                "<div class='ps-panel ps-more'>type or pick a message, wake or run id to see its history "
                "and why it is where it is</div>"
            )
            self.shown = {}
            return
        try:
            explanation = view.pool.explain(key, view.cursor)
            history = view.pool.history_of(key, view.cursor)
        except UnknownKeyError as error:
            hint = (
                f"; did you mean {', '.join(render.ident(s) for s in error.suggestions)}?" if error.suggestions else ""
            )
            self.html.value = (
                f"<div class='ps-panel ps-warn'>no record names {render.ident(key)} at or before cursor "
                f"{view.cursor:,}{hint}</div>"
            )
            self.shown = {"key": key, "found": False}
            return
        except PoolscopeError as error:
            self.html.value = f"<div class='ps-panel ps-err'>{render.esc(error)}</div>"
            self.shown = {"key": key, "found": False}
            return
        self.html.value = render.explanation_html(explanation) + render.history_html(history)
        self.shown = {
            "key": key,
            "found": True,
            "key_type": explanation.key_type,
            "cursors": history["cursor"].tolist(),
            "sentences": [s.text for s in explanation.sentences],
        }
