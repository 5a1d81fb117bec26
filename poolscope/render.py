"""The one HTML renderer: snapshots, diffs, records, anomalies and summaries.

The explorer's panels, the report and the ``_repr_html_`` of
:class:`~poolscope.Snapshot`, :class:`~poolscope.Diff` and
:class:`~poolscope.Database` are all made of these pieces, so a status has
one colour (:mod:`poolscope.palette`) and an id one way of being shown
everywhere.  Every function returns an HTML fragment in which every value
from the database is escaped; long ids are shortened for display
(:func:`shorten`) with the full id in the element's ``title`` (a tooltip).
The classes (``ps-*``) are styled by :data:`CSS`, which the explorer and the
report include; the fragments read well without it too (Jupyter).

>>> from poolscope import render
>>> render.ident("run.7")
'run.7'
>>> render.ident("run." + "x" * 100)[:40]
"<span class='ps-id' title='run.xxxxxxxxx"
>>> render.status("failed")
"<span class='ps-status' style='color:#d62728;font-weight:600' title='delivery failed'>failed</span>"
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import palette, wire

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .diff import Change, Diff
    from .history import Database, Record
    from .snapshot import Snapshot, StoredList

__all__ = [
    "CSS",
    "ID_CHARS",
    "esc",
    "shorten",
    "natural_key",
    "ident",
    "status",
    "table",
    "status_breakdown",
    "snapshot_counts",
    "members_table",
    "topics_list",
    "items_table",
    "snapshot_html",
    "no_snapshot_html",
    "diff_html",
    "record_html",
    "anomalies_html",
    "summary_html",
    "database_html",
    "cursor_chips",
    "explanation_html",
    "history_html",
    "whatif_html",
    "comparison_html",
]

#: Characters of an id shown before it is shortened (the rest is in its tooltip).
ID_CHARS = 48
#: Members listed in a snapshot (the rest are counted).
MEMBER_ROWS = 50
#: Topics listed in a snapshot.
TOPIC_ROWS = 100
#: Latest messages and wakes listed in a snapshot.
ITEM_ROWS = 15
#: Changes listed per kind in a diff.
CHANGE_ROWS = 50
#: Characters of a record's JSON shown.
RECORD_CHARS = 20_000
#: Anomalies listed (the rest are counted).
ANOMALY_ROWS = 500

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _severity_css() -> str:
    rules = []
    for severity, (ink, background) in palette.SEVERITY_COLORS.items():
        rules.append(f".ps-sev-{severity} td.ps-sev {{ color: {ink}; background: {background}; font-weight: 600; }}")
    return "\n".join(rules)


#: The stylesheet of every fragment (the explorer puts it in a ``<style>``, the report in its page).
CSS = f"""
.ps-panel {{ font-size: 12px; line-height: 1.35; }}
.ps-panel table, table.ps-table {{ border-collapse: collapse; margin: 2px 0 4px 0; }}
.ps-panel th, .ps-panel td, table.ps-table th, table.ps-table td {{ padding: 1px 6px;
  border-bottom: 1px solid {palette.RULE}; text-align: left; white-space: nowrap; max-width: 22em;
  overflow: hidden; text-overflow: ellipsis; }}
.ps-panel th, table.ps-table th {{ background: {palette.TABLE_HEAD}; }}
.ps-panel h4 {{ margin: 4px 0 2px 0; font-size: 13px; }}
.ps-more {{ color: {palette.MUTED}; font-style: italic; }}
.ps-counts b {{ font-size: 14px; }}
.ps-warn {{ color: {palette.WARN}; }}
.ps-err {{ color: {palette.SEVERITY_COLORS["error"][1]}; }}
.ps-ok {{ color: {palette.OK}; font-weight: 600; }}
.ps-id {{ text-decoration: underline dotted {palette.MUTED}; }}
.ps-json, .ps-record pre {{ font-size: 11px; white-space: pre-wrap; word-break: break-all;
  max-height: 24em; overflow: auto; background: {palette.PAPER}; padding: 4px; margin: 0; }}
.ps-diff table {{ font-size: 11px; }}
.ps-diff details {{ margin: 2px 0; }}
.ps-cursors {{ color: {palette.MUTED}; font-size: 10.5px; }}
.ps-why ul {{ margin: 2px 0 4px 0; padding-left: 18px; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
{_severity_css()}
"""


# ------------------------------------------------------------------ pieces
#: Bidi controls (marks, embeddings, overrides, isolates): in an id from a file, one would reorder the
#: text after it on the page ("pool <b>x</b>: 3 records" shown with its count reversed).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def esc(value: Any) -> str:
    r"""``value`` as escaped HTML text (``None`` is empty), a bidi control shown
    as its escape, as a terminal shows it (:mod:`poolscope.terminal`).

    >>> esc("<b>pool.\u202eevil</b>")
    '&lt;b&gt;pool.\\u202eevil&lt;/b&gt;'
    """
    text = "" if value is None else str(value)
    if not text.isascii():
        text = _BIDI.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return html.escape(text)


def shorten(text: Any, limit: int = ID_CHARS) -> str:
    """``text`` cut in the middle to at most ``limit`` characters (plain text;
    plots use it for their labels).

    >>> shorten("run." + "x" * 4000 + ".end", 20)
    'run.xxxxxxxxx…xx.end'
    """
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    tail = max((limit - 1) // 3, 1)
    return f"{text[: limit - 1 - tail]}…{text[-tail:]}"


_DIGITS = re.compile(r"([0-9]+)")


def natural_key(text: Any) -> tuple:
    """A sort key that orders the numbers inside ids by value: ``worker-3``
    before ``worker-11`` (ids of other types sort as their text).

    >>> sorted(["worker-11", "worker-3", "planner-2", "worker-3b"], key=natural_key)
    ['planner-2', 'worker-3', 'worker-3b', 'worker-11']
    """
    parts = _DIGITS.split("" if text is None else str(text))
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def ident(value: Any, limit: int = ID_CHARS) -> str:
    """An id as HTML: escaped, and shortened with the full id in a tooltip when long."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return esc(text)
    return f"<span class='ps-id' title='{esc(text)}'>{esc(shorten(text, limit))}</span>"


def status(name: str | None, namespace: str | None = None) -> str:
    """A status in its colour, with its description as a tooltip (``—`` for none)."""
    if name is None:
        return "—"
    colour = palette.status_color(name, namespace)
    weight = ";font-weight:600" if name in palette.ALERT_STATUSES else ""
    return (
        f"<span class='ps-status' style='color:{colour}{weight}' title='{esc(palette.describe(name, namespace))}'>"
        f"{esc(name)}</span>"
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], more: int = 0, what: str = "more", cls: str = "ps-table"
) -> str:
    """A table of ready-made cells (already HTML) and a "… N more" line when rows were left out."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    tail = f"<div class='ps-more'>… {more:,} {esc(what)}</div>" if more > 0 else ""
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>{tail}"


def status_breakdown(counts: Mapping[str, int], namespace: str) -> str:
    """``accepted 3 · failed 1``: the counts in the SDK's status order (``—`` when empty)."""
    names = wire.WAKE_STATUSES if namespace == "wake" else wire.MESSAGE_STATUSES
    parts = [f"{status(name, namespace)} {counts[name]:,}" for name in names if counts.get(name)]
    return " · ".join(parts) or "—"


# ---------------------------------------------------------------- snapshots
def snapshot_counts(
    snap: Snapshot,
    *,
    cursor: int | None = None,
    head: int | None = None,
    record_kind: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """The head of a snapshot: pool, cursor, counts and statuses (class ``ps-counts``,
    the counts also as ``data-*`` attributes)."""
    cursor = snap.cursor if cursor is None else cursor
    c = snap.counts()
    data = " ".join(f"data-{name}='{value}'" for name, value in c.items())
    of = f" of {head:,}" if head is not None else ""
    record = f"record {snap.cursor}: <b>{esc(record_kind)}</b> · " if record_kind is not None else ""
    warn = "".join(f"<div class='ps-warn'>⚠ {esc(w)}</div>" for w in warnings)
    return (
        f"<div class='ps-panel ps-counts' data-cursor='{cursor}' {data}>"
        f"<h4>Snapshot of {ident(snap.pool_id)} at cursor <b class='ps-cursor'>{cursor}</b>{of}</h4>"
        f"<div>{record}created: {snap.created}</div>"
        f"<div><b>{c['members']:,}</b> members · <b>{c['topics']:,}</b> topics · "
        f"<b>{c['messages']:,}</b> messages · <b>{c['wakes']:,}</b> wakes</div>"
        f"<div>messages: {status_breakdown(snap.messages.status_counts(), 'message')}</div>"
        f"<div>wakes: {status_breakdown(snap.wakes.status_counts(), 'wake')}</div>{warn}</div>"
    )


def no_snapshot_html(cursor: int, reason: str = "the pool has not been opened yet") -> str:
    """What stands where a snapshot cannot be: before the pool's ``pool_opened``."""
    return (
        f"<div class='ps-panel ps-counts' data-cursor='{cursor}'><b>cursor <span class='ps-cursor'>{cursor}</span></b>"
        f" — <span class='ps-warn'>no snapshot: {esc(reason)} (no pool_opened at or before this cursor)</span></div>"
    )


def members_table(members: Sequence[Mapping[str, Any]], limit: int = MEMBER_ROWS) -> str:
    """The members (run, agent, topics), the first ``limit`` of them."""
    rows = [
        [ident(m.get("run_id")), ident(m.get("agent_id", "")), esc(", ".join(map(str, m.get("topics", ()))))]
        for m in members[:limit]
    ]
    return (
        f"<div class='ps-panel ps-members'><h4>members ({len(members):,})</h4>"
        + table(["run", "agent", "topics"], rows, len(members) - limit, "more members")
        + "</div>"
    )


def topics_list(topics: Sequence[str], limit: int = TOPIC_ROWS) -> str:
    shown = ", ".join(ident(t) for t in topics[:limit]) or "—"
    more = f" <span class='ps-more'>… {len(topics) - limit:,} more</span>" if len(topics) > limit else ""
    return f"<div class='ps-panel ps-topics'><h4>topics ({len(topics):,})</h4>{shown}{more}</div>"


def _target(row: Mapping[str, Any]) -> str:
    kind, target = row.get("target_type"), row.get("target_id")
    if kind is None:
        return ""
    return esc(kind) if target is None else f"{esc(kind)}:{ident(target)}"


def items_table(items: StoredList, limit: int = ITEM_ROWS, *, details: bool = False, opened: bool = False) -> str:
    """The latest messages (or wakes) of a snapshot, latest first (no payload is read).

    ``details=True`` puts the table in a ``<details>`` element (open if ``opened``).
    """
    namespace = items.namespace
    rows = items.latest(limit)
    if namespace == "message":
        headers = ["seq", "message", "status", "from", "to", "delivered"]
        cells = [
            [
                str(r["seq"]),
                ident(r["id"]),
                status(r["status"], "message"),
                ident(r["sender"]),
                _target(r),
                str(len(r["recipients"])),
            ]
            for r in rows
        ]
    else:
        headers = ["seq", "condition", "status", "run"]
        cells = [[str(r["seq"]), ident(r["id"]), status(r["status"], "wake"), ident(r["run_id"])] for r in rows]
    label = f"{namespace}s ({len(items):,}), latest first"
    body = table(headers, cells, len(items) - len(rows), f"more {namespace}s")
    if details:
        return f"<details{' open' if opened else ''}><summary>{label}</summary>{body}</details>"
    return f"<div class='ps-panel ps-{namespace}s'><h4>{label}</h4>{body}</div>"


def snapshot_html(snap: Snapshot, *, opened: bool = False) -> str:
    """A whole snapshot: counts, topics, members and the latest messages and wakes
    (in ``<details>``, unfolded with ``opened=True``)."""
    return (
        f"<div class='poolscope-snapshot'>{snapshot_counts(snap)}{topics_list(snap.topics)}"
        f"{members_table(snap.members)}"
        f"{items_table(snap.messages, details=True, opened=opened)}"
        f"{items_table(snap.wakes, details=True, opened=opened)}</div>"
    )


# -------------------------------------------------------------------- diffs
def _members_changed(label: str, items: list[dict], colour: str) -> str:
    if not items:
        return ""
    body = ", ".join(f"{ident(m.get('run_id'))} <small>({ident(m.get('agent_id', ''))})</small>" for m in items)
    return f"<li style='color:{colour}'><b>{label}</b>: {body}</li>"


def _changes(label: str, items: Sequence[Change], namespace: str) -> str:
    if not items:
        return ""
    rows = "".join(
        f"<tr><td>{ident(c.id)}</td><td>{status(c.before, namespace)}</td><td>→</td>"
        f"<td><b>{status(c.after, namespace)}</b></td><td>{c.seq if c.seq is not None else ''}</td></tr>"
        for c in items[:CHANGE_ROWS]
    )
    more = f"<tr><td colspan=5>… {len(items) - CHANGE_ROWS:,} more</td></tr>" if len(items) > CHANGE_ROWS else ""
    return (
        f"<details open><summary>{label} ({len(items):,})</summary><table class='ps-table'>"
        f"<tr><th>id</th><th>before</th><th></th><th>after</th><th>seq</th></tr>{rows}{more}</table></details>"
    )


def diff_html(d: Diff) -> str:
    """A diff: members joined, left and updated, messages and wakes added, changed and gone
    (class ``ps-diff``, the two cursors as ``data-a`` and ``data-b``)."""
    return (
        f"<div class='poolscope-diff ps-diff' data-a='{d.a}' data-b='{d.b}'>"
        f"<b>{ident(d.pool_id)}: cursor {d.a} → {d.b}</b> — {esc(d.summary())}"
        f"<ul>{_members_changed('joined', d.joined, palette.OK)}"
        f"{_members_changed('left', d.left, palette.SEVERITY_COLORS['error'][1])}"
        f"{_members_changed('updated', d.updated, palette.ANOMALY)}</ul>"
        f"{_changes('new messages', d.messages_added, 'message')}"
        f"{_changes('message status changes', d.messages_changed, 'message')}"
        f"{_changes('messages gone', d.messages_removed, 'message')}{_changes('new wakes', d.wakes_added, 'wake')}"
        f"{_changes('wake status changes', d.wakes_changed, 'wake')}{_changes('wakes gone', d.wakes_removed, 'wake')}"
        "</div>"
    )


# ------------------------------------------------------------------ records
def record_html(record: Record | None, seq: int, limit: int = RECORD_CHARS) -> str:
    """One record: its seq and kind, and its JSON (the SDK's ``AgentPoolStoreRecord``),
    or why it is damaged (class ``ps-record``, ``data-seq``)."""
    if seq <= 0:
        return "<div class='ps-panel ps-record'>—</div>"
    if record is None:
        return f"<div class='ps-panel ps-record'>no record at {seq}</div>"
    if record.problem is not None:
        body = f"<div class='ps-err'>damaged: {esc(record.problem)}</div>"
    else:
        text = json.dumps(record.to_dict(), indent=1, ensure_ascii=False)
        cut = f"\n… {len(text) - limit:,} more characters" if len(text) > limit else ""
        body = f"<pre>{esc(text[:limit])}{cut}</pre>"
    return f"<div class='ps-panel ps-record' data-seq='{seq}'><b>seq {seq}</b>: {esc(record.kind)}{body}</div>"


# ---------------------------------------------------------------- anomalies
def anomalies_html(
    anomalies: Sequence[Any], *, empty: str = "No anomaly found.", limit: int = ANOMALY_ROWS, pools: bool = False
) -> str:
    """Anomalies (``db.check()``), errors first: a count line and a table
    (class ``ps-anomalies``, ``data-count``); ``empty`` when there are none.
    With ``pools``, a ``pool`` column names each one's pool id (blank for the
    whole file)."""
    if not anomalies:
        return f"<div class='ps-anomalies' data-count='0'><p class='ps-ok'>{esc(empty)}</p></div>"
    ordered = sorted(anomalies, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 3), a.seq if a.seq is not None else -1))
    rows = "".join(
        f"<tr class='ps-sev-{esc(a.severity)}'><td class='ps-sev'>{esc(a.severity)}</td><td>{esc(a.code)}</td>"
        + (f"<td>{ident(a.pool_id, 40)}</td>" if pools else "")
        + f"<td class='num'>{'' if a.seq is None else f'{a.seq:,}'}</td><td>{esc(a.message)}</td></tr>"
        for a in ordered[:limit]
    )
    more = (
        f"<p class='ps-more'>… and {len(ordered) - limit:,} more not listed here (run <code>poolscope doctor</code>).</p>"
        if len(ordered) > limit
        else ""
    )
    counts = {s: sum(1 for a in anomalies if a.severity == s) for s in ("error", "warning", "info")}
    line = ", ".join(f"{n:,} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n)
    return (
        f"<div class='ps-anomalies' data-count='{len(anomalies)}'><p>{esc(line)}</p>"
        f"<table class='ps-table'><tr><th>severity</th><th>code</th>{'<th>pool</th>' if pools else ''}"
        "<th class='num'>seq</th>"
        f"<th>message</th></tr>{rows}</table>{more}</div>"
    )


# ---------------------------------------------------------------- summaries
_ALERT_COLUMNS = frozenset(
    {"damaged", "messages_failed", "messages_expired", "messages_timed_out", "wakes_failed", "wakes_timed_out"}
)


def summary_html(
    frame: pd.DataFrame, anomalies: Sequence[Any] | None = None, *, link: Callable[[str], str | None] | None = None
) -> str:
    """:meth:`Database.summary` as a table (class ``ps-summary``): message and wake
    statuses grouped under one header each, plus the anomaly counts of each pool
    when ``anomalies`` is given; ``link(pool_id)`` makes each pool id a link to
    the anchor it returns (a pool for which it returns None is not linked)."""
    base = [c for c in ("head", "records", "damaged", "members", "messages", "wakes") if c in frame.columns]
    groups = [
        ("messages by current status", [f"messages_{s}" for s in wire.MESSAGE_STATUSES]),
        ("wakes by current status", [f"wakes_{s}" for s in wire.WAKE_STATUSES]),
    ]
    groups = [(label, [c for c in cols if c in frame.columns]) for label, cols in groups]
    counts: dict[Any, dict[str, int]] = {}
    for anomaly in anomalies or ():
        per = counts.setdefault(anomaly.pool_id, {})
        per[anomaly.severity] = per.get(anomaly.severity, 0) + 1
    top = "<th rowspan=2>pool</th>" + "".join(f"<th rowspan=2 class=num>{esc(c)}</th>" for c in base)
    sub = ""
    if anomalies is not None:
        top += "<th colspan=2 class=group>anomalies</th>"
        sub += "<th class=num>errors</th><th class=num>warnings</th>"
    top += "".join(f"<th colspan={len(cols)} class=group>{esc(label)}</th>" for label, cols in groups if cols)
    for namespace, (_, cols) in zip(("message", "wake"), groups):
        for c in cols:
            name = c.split("_", 1)[1]
            sub += f"<th class=num title='{esc(palette.describe(name, namespace))}'>{esc(name.replace('_', ' '))}</th>"
    rows = []
    for record in frame.to_dict("records"):
        pool_id = record["pool_id"]
        shown = ident(pool_id, 28)
        anchor = None if link is None else link(pool_id)
        if anchor is not None:
            shown = f"<a href='#{esc(anchor)}'>{shown}</a>"
        cells = [f"<td class='pool'>{shown}</td>"]

        def number(column: str) -> None:
            value = int(record[column])
            cells.append(f"<td class='num{' bad' if column in _ALERT_COLUMNS and value else ''}'>{value:,}</td>")

        for column in base:
            number(column)
        if anomalies is not None:
            found = counts.get(pool_id, {})
            for severity in ("error", "warning"):
                n = found.get(severity, 0)
                cells.append(f"<td class='num{' bad' if n and severity == 'error' else ''}'>{n:,}</td>")
        for _, cols in groups:
            for column in cols:
                number(column)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='ps-scroll'><table class='ps-summary'><tr>{top}</tr><tr>{sub}</tr>{''.join(rows)}</table></div>"


def database_html(db: Database) -> str:
    """A database: its path (escaped) and the summary of its pools."""
    return f"<div class='poolscope-database'><b>{esc(db.path)}</b>{summary_html(db.summary())}</div>"


# ------------------------------------------------------- why and compare
#: Rows of a key's history shown (the rest are counted).
HISTORY_ROWS = 30


def cursor_chips(cursors: Iterable[int]) -> str:
    """The cursors a statement rests on, small and muted (``@12, @15``)."""
    cursors = list(cursors)
    if not cursors:
        return ""
    return f"<span class='ps-cursors'>[{', '.join(f'@{int(c):,}' for c in cursors)}]</span>"


def explanation_html(explanation: Any) -> str:
    """A :class:`~poolscope.why.Explanation`: its sentences, each with the cursors backing it."""
    items = "".join(f"<li>{esc(s.text)} {cursor_chips(s.cursors)}</li>" for s in explanation.sentences)
    return (
        f"<div class='ps-panel ps-why'><b>why: {esc(explanation.key_type.replace('_', ' '))} "
        f"{ident(explanation.key)}</b> <span class='ps-more'>(records up to cursor {explanation.at:,})</span>"
        f"<ul>{items}</ul></div>"
    )


def _who(row: Mapping[str, Any]) -> str:
    import pandas as pd

    def text(value: Any) -> str | None:
        return None if value is None or pd.isna(value) else str(value)

    if row.get("kind") == "run_message":
        recipients = list(row.get("recipients") or [])
        shown = ", ".join(ident(r) for r in recipients[:4]) + (
            f" +{len(recipients) - 4}" if len(recipients) > 4 else ""
        )
        return f"{ident(text(row.get('sender')))} → {esc(text(row.get('target')))}" + (
            f" (to {shown})" if recipients else ""
        )
    if row.get("kind") == "wake":
        return f"waiting: {ident(text(row.get('run_id')))}"
    run = text(row.get("run_id"))
    return f"{ident(run)} ({ident(text(row.get('agent_id')))})" if run else ""


def history_html(frame: pd.DataFrame, limit: int = HISTORY_ROWS) -> str:
    """A :class:`~poolscope.why.History`: one row per record, the status change in colour."""
    import pandas as pd

    rows = []
    for row in frame.head(limit).to_dict("records"):
        before = None if pd.isna(row["status_before"]) else str(row["status_before"])
        after = None if pd.isna(row["status_after"]) else str(row["status_after"])
        namespace = "wake" if row["kind"] == "wake" else "message"
        change = (
            f"{status(before, namespace)} → {status(after, namespace)}"
            if before is not None and before != after
            else status(after, namespace)
        )
        rows.append(
            [
                f"<span class='num'>{int(row['cursor']):,}</span>",
                esc(row["kind"]),
                esc(row["role"]),
                ident(row["id"]),
                change,
                _who(row),
                esc(", ".join(row["changed"])),
            ]
        )
    key_type = str(getattr(frame, "key_type", "") or "").replace("_", " ")
    head = (
        f"<div class='ps-panel ps-history'><b>history of {esc(key_type)} {ident(getattr(frame, 'key', ''))}</b>: "
        f"{len(frame):,} record{'s' if len(frame) != 1 else ''}"
    )
    table_html = table(
        ["cursor", "kind", "role", "id", "status", "who", "changed"],
        rows,
        more=len(frame) - len(rows),
        what="more records",
    )
    return head + table_html + "</div>"


def whatif_html(whatif: Any, limit: int = 20) -> str:
    """A :class:`~poolscope.whatif.WhatIf`: what was removed, what was kept, and its orphans."""
    orphans = whatif.orphans
    if len(orphans):
        rows = [
            [
                f"<span class='num'>{int(r['cursor']):,}</span>",
                esc(r["kind"]),
                ident(r["id"]),
                esc(r["reason"]),
                ident(r["removed"]),
            ]
            for r in orphans.head(limit).to_dict("records")
        ]
        note = (
            f"<p class='ps-warn'><b>{len(orphans):,} kept record(s) refer to what was removed</b> (<code>.orphans</code>):</p>"
            + table(["cursor", "kind", "id", "reason", "removed"], rows, more=len(orphans) - len(rows))
        )
    else:
        note = "<p class='ps-ok'>No kept record refers to what was removed.</p>"
    return (
        f"<div class='ps-panel ps-whatif'><b>What if {ident(whatif.pool_id)} had been without "
        f"{esc(whatif.removal_text())}</b>: {len(whatif.removed):,} records removed, {len(whatif.index):,} kept "
        f"(cursors keep their values; head {whatif.head:,}).{note}</div>"
    )


def _number(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float) and not float(value).is_integer():
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    try:
        number = int(value)
    except (TypeError, ValueError):
        return esc(value)
    return f"{number:+,}" if signed else f"{number:,}"


def comparison_html(comparison: Any) -> str:
    """A :class:`~poolscope.compare.Comparison`: the verdict on the two logs and the measures side by side."""
    if comparison.first_divergence is None:
        verdict = f"The two logs agree event for event ({comparison.common_prefix:,} events of (kind, agent, status))."
    else:
        ca, cb = comparison.first_divergence
        verdict = (
            f"The logs agree for {comparison.common_prefix:,} events, then diverge at cursor "
            f"<b>{'end' if ca is None else f'{ca:,}'}</b> in a and <b>{'end' if cb is None else f'{cb:,}'}</b> in b."
        )
    rows = []
    for row in comparison.summary.to_dict("records"):
        delta = row["delta"]
        style = ""
        if isinstance(delta, int | float) and delta == delta and delta != 0:
            worse = delta > 0 and (
                row["section"] in ("rates", "agents: failure rate") or row["section"].startswith("latency")
            )
            style = f" style='color:{palette.MESSAGE_COLORS['failed'] if worse else palette.MATCHES}'"
        rows.append(
            [
                esc(row["section"]),
                esc(row["metric"]),
                f"<span class='num'>{_number(row['a'])}</span>",
                f"<span class='num'>{_number(row['b'])}</span>",
                f"<span class='num'{style}>{_number(delta, True)}</span>",
            ]
        )
    return (
        f"<div class='ps-panel ps-compare'><b>a</b> = {esc(comparison.label_a)} (cursor {comparison.cursor_a:,}) · "
        f"<b>b</b> = {esc(comparison.label_b)} (cursor {comparison.cursor_b:,})<p>{verdict}</p>"
        + table(["section", "measure", "a", "b", "b − a"], rows)
        + "</div>"
    )
