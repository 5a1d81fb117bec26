"""The one palette of every picture and page: plots, the explorer, the report.

Statuses keep the SDK's names everywhere (``registered``, never "waiting");
:data:`STATUS_DESCRIPTIONS` says in plain words what each one means, for
legends, tooltips and tables that want a friendlier word beside the name.

>>> from poolscope import palette
>>> palette.status_color("failed") == palette.MESSAGE_COLORS["failed"] == palette.WAKE_COLORS["failed"]
True
>>> palette.status_color("registered", "wake")
'#17becf'
>>> palette.describe("registered", "wake")
'waiting for its event'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import wire

__all__ = [
    "MESSAGE_COLORS",
    "WAKE_COLORS",
    "ALERT_STATUSES",
    "FAILURE_STATUSES",
    "STATUS_DESCRIPTIONS",
    "SEVERITY_COLORS",
    "KIND_COLORS",
    "AGENT_COLORS",
    "GHOST",
    "CURSOR",
    "MATCHES",
    "ANOMALY",
    "OK",
    "INK",
    "MUTED",
    "RULE",
    "WARN",
    "MARK",
    "GRID",
    "STRIPE",
    "PAPER",
    "HEADER",
    "HEADER_TEXT",
    "HEADING",
    "TABLE_HEAD",
    "GROUP_RULE",
    "NOTE",
    "status_color",
    "describe",
    "agent_colors",
]

#: Colour of each message status; the statuses that need attention are strong.
MESSAGE_COLORS: dict[str, str] = {
    "accepted": "#9ecae1",
    "delivered": "#3b75af",
    "responded": "#2ca02c",
    "failed": "#d62728",
    "timed_out": "#ff7f0e",
    "expired": "#c51b8a",
    "cancelled": "#8c8c8c",
}
#: Colour of each wake status (the names a wake shares with messages keep their colour).
WAKE_COLORS: dict[str, str] = {
    "registered": "#17becf",
    "triggered": "#2ca02c",
    "timed_out": MESSAGE_COLORS["timed_out"],
    "cancelled": MESSAGE_COLORS["cancelled"],
    "failed": MESSAGE_COLORS["failed"],
}
#: Message statuses drawn large and on top, and shown in bold.
ALERT_STATUSES: frozenset[str] = frozenset({"failed", "timed_out", "expired"})
#: What counts as a failure, per namespace (the explorer's failure jumps, the timeline's strip).
FAILURE_STATUSES: dict[str, tuple[str, ...]] = {
    "message": ("failed", "expired", "timed_out"),
    "wake": ("timed_out", "failed"),
}

#: Each status in plain words: ``(namespace, status) -> description``.
STATUS_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("message", "accepted"): "accepted, not yet delivered",
    ("message", "delivered"): "delivered to its recipients",
    ("message", "responded"): "answered",
    ("message", "failed"): "delivery failed",
    ("message", "timed_out"): "no response in time",
    ("message", "expired"): "expired before delivery",
    ("message", "cancelled"): "cancelled",
    ("wake", "registered"): "waiting for its event",
    ("wake", "triggered"): "its event came: the run was woken",
    ("wake", "timed_out"): "no event in time",
    ("wake", "cancelled"): "cancelled",
    ("wake", "failed"): "failed",
}

#: Severity of an anomaly: (text colour, background).
SEVERITY_COLORS: dict[str, tuple[str, str]] = {
    "error": ("#ffffff", "#c62828"),
    "warning": ("#222222", "#ffb300"),
    "info": ("#222222", "#e3f2fd"),
}

#: Categorical colours (agents, record kinds): Tableau 10.
AGENT_COLORS: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#e15759",
    "#bab0ac",
)
#: Colour of each record kind (damaged records in the failure red).
KIND_COLORS: dict[str, str] = dict(zip(wire.KINDS, AGENT_COLORS)) | {"damaged": MESSAGE_COLORS["failed"]}

#: Runs that never were members, unknown agents.
GHOST = "#9a9a9a"
#: The cursor marker, titles, text.
CURSOR = "#222222"
INK = "#222222"
#: Secondary text ("… 12 more"), rules and stripes.
MUTED = "#6c757d"
RULE = "#e0e0e0"
#: Records matching the explorer's filters.
MATCHES = "#1f77b4"
#: Anomalies found by ``db.check()`` on a timeline.
ANOMALY = "#ff7f0e"
#: Good news ("no anomaly", the live dot).
OK = "#2e7d32"
#: Text that warns (a damaged record skipped, a filter that matches nothing).
WARN = "#b35900"
#: Marks drawn in ink but quieter than it (open intervals, the zero line, flow legends).
MARK = "#444444"
#: Grid lines, every other lane's stripe.
GRID = "#e6e6e6"
STRIPE = "#f6f6f6"
#: The pages' chrome: background, header band and its text, headings, table heads.
PAPER = "#fafafa"
HEADER = "#263238"
HEADER_TEXT = "#cfd8dc"
HEADING = "#37474f"
TABLE_HEAD = "#eceff1"
GROUP_RULE = "#b0bec5"
NOTE = "#616161"


def status_color(status: str | None, namespace: str | None = None) -> str:
    """The colour of a status; ``namespace`` (``"message"`` or ``"wake"``)
    decides for the names only one of them has (any name works without it).

    >>> status_color("accepted"), status_color("nope")
    ('#9ecae1', '#222222')
    """
    if status is None:
        return MUTED
    if namespace == "wake":
        return WAKE_COLORS.get(status) or MESSAGE_COLORS.get(status, INK)
    return MESSAGE_COLORS.get(status) or WAKE_COLORS.get(status, INK)


def describe(status: str, namespace: str | None = None) -> str:
    """The plain-words description of a status (``""`` for an unknown one)."""
    if namespace is None:
        namespace = "wake" if status in WAKE_COLORS and status not in MESSAGE_COLORS else "message"
    return STATUS_DESCRIPTIONS.get((namespace, status), "")


def agent_colors(agents: Iterable[Any]) -> dict[Any, str]:
    """A colour per agent id (missing ones left out), in sorted order, cycling through :data:`AGENT_COLORS`."""
    ordered = sorted({a for a in agents if a is not None and a == a}, key=str)
    return {agent: AGENT_COLORS[i % len(AGENT_COLORS)] for i, agent in enumerate(ordered)}
