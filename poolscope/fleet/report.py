"""One self-contained HTML page comparing the pools of a fleet.

:func:`render` ranks every pool of the fleet by failures and anomalies, and
breaks them down per source (database) and per agent, with the plots that
make the comparison visible -- failures per source by status, message volume
against failure rate, the worst pools, and failures per sending agent.  It
uses the page style, the escaping and the PNG embedding of
:mod:`poolscope.report` and the status colours of :mod:`poolscope.plot`, so
a fleet page looks like a database's page.  No request leaves it.

Example::

    >>> from poolscope.fleet.report import report
    >>> report(poolscope.fleet("sample_data/", workers=1), "fleet.html")
    PosixPath('fleet.html')
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..palette import MESSAGE_COLORS, MUTED, RULE, SEVERITY_COLORS, WAKE_COLORS
from ..plot import label_text
from ..render import CSS
from ..render import esc as _esc
from ..report import _PAGE_CSS, _png

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from . import Fleet

__all__ = ["render", "report", "agent_breakdown"]

#: Pools listed in the ranking.
TOP_POOLS = 50
#: Sources and agents drawn in a plot (the rest are in the tables).
TOP_BARS = 25
FAILED = [
    ("messages", "failed"),
    ("messages", "timed_out"),
    ("messages", "expired"),
    ("wakes", "failed"),
    ("wakes", "timed_out"),
]

_EXTRA_CSS = f"""
.cards {{ display: flex; gap: 14px; flex-wrap: wrap; margin: 12px 0; }}
.card {{ background: #fff; border: 1px solid {RULE}; padding: 8px 14px; min-width: 110px; }}
.card b {{ display: block; font-size: 20px; }}
.card span {{ color: {MUTED}; font-size: 12px; }}
.card.bad b {{ color: {SEVERITY_COLORS["error"][1]}; }}
"""


def _figure(width: float, height: float) -> tuple[Any, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _img(fig: Any, alt: str) -> str:
    return f"<figure><img alt='{_esc(alt)}' src='data:image/png;base64,{_png(fig)}'></figure>"


def _color(namespace: str, status: str) -> str:
    return (MESSAGE_COLORS if namespace == "messages" else WAKE_COLORS)[status]


def _failure_bars(frame: pd.DataFrame, label: str, title: str) -> str:
    """Horizontal stacked bars: failures by status, one bar per row of ``frame``."""
    rows = frame.head(TOP_BARS).iloc[::-1]
    fig, ax = _figure(11, max(2.2, 0.32 * len(rows) + 1.2))
    left = np.zeros(len(rows))
    y = np.arange(len(rows))
    for namespace, status in FAILED:
        values = rows[f"{namespace}_{status}"].to_numpy(dtype=float)
        if values.any():
            # wakes share the messages' colours for the same status: hatched apart
            hatch = "///" if namespace == "wakes" else None
            ax.barh(
                y,
                values,
                left=left,
                color=_color(namespace, status),
                hatch=hatch,
                edgecolor="white",
                linewidth=0,
                label=f"{namespace[:-1]} {status}",
            )
            left += values
    ax.set_yticks(y, [label_text(v) for v in rows[label]], fontsize=8)
    ax.set_xlabel("failures at the head")
    ax.set_title(title, loc="left", fontsize=10)
    if left.any():
        ax.legend(fontsize=8, loc="lower right")
    return _img(fig, title)


def _volume_scatter(sources: pd.DataFrame) -> str:
    """Messages (x) against the failure rate (y) per source; the area grows with anomalies."""
    fig, ax = _figure(11, 4.2)
    messages = sources["messages"].to_numpy(dtype=float)
    rate = sources["failure_rate"].to_numpy(dtype=float)
    size = 20 + 8 * np.sqrt(sources["anomalies"].to_numpy(dtype=float))
    bad = sources["errors"].to_numpy() > 0
    if (~bad).any():
        ax.scatter(
            messages[~bad], rate[~bad], s=size[~bad], color=MESSAGE_COLORS["delivered"], alpha=0.7, label="no error"
        )
    if bad.any():
        ax.scatter(
            messages[bad], rate[bad], s=size[bad], color=MESSAGE_COLORS["failed"], alpha=0.8, label="anomaly errors"
        )
    worst = sources.nlargest(min(5, len(sources)), "failure_rate")
    for _, row in worst.iterrows():
        ax.annotate(label_text(Path(str(row["source"])).name), (row["messages"], row["failure_rate"]), fontsize=7)
    ax.set_xlabel("messages at the head")
    ax.set_ylabel("failure rate")
    ax.set_title("Message volume against failure rate, per source (area: anomalies)", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    return _img(fig, "volume against failure rate per source")


def agent_breakdown(fleet: Fleet) -> pd.DataFrame:
    """Per agent (the agent of the sending run, from the pools' memberships):
    ``messages`` sent, ``failed``, ``timed_out``, ``expired``, ``failures``,
    ``failure_rate``, ``sources`` and ``pools`` it sent from.  Senders that
    never joined are grouped as ``(not a member)``."""
    messages = fleet.messages_df()
    members = fleet.members_df()
    if messages.empty:
        return pd.DataFrame(
            columns=[
                "agent_id",
                "messages",
                "failed",
                "timed_out",
                "expired",
                "failures",
                "failure_rate",
                "sources",
                "pools",
            ]
        )
    agents = (
        members.sort_values("updated_at")
        .drop_duplicates(["source", "pool_id", "run_id"], keep="last")[["source", "pool_id", "run_id", "agent_id"]]
        .astype({"source": object, "pool_id": object, "run_id": object, "agent_id": object})
    )
    sent = messages[["source", "pool_id", "sender", "status"]].astype(
        {"source": object, "pool_id": object, "sender": object, "status": object}
    )
    joined = sent.merge(
        agents, left_on=["source", "pool_id", "sender"], right_on=["source", "pool_id", "run_id"], how="left"
    )
    joined["agent_id"] = joined["agent_id"].fillna("(not a member)")
    grouped = joined.groupby("agent_id")
    out = pd.DataFrame(
        {
            "messages": grouped.size(),
            **{
                s: grouped["status"].apply(lambda v, s=s: int((v == s).sum()))
                for s in ("failed", "timed_out", "expired")
            },
            "sources": grouped["source"].nunique(),
            "pools": grouped.apply(lambda g: len(set(zip(g["source"], g["pool_id"]))), include_groups=False),
        }
    ).reset_index()
    out["failures"] = out["failed"] + out["timed_out"] + out["expired"]
    out["failure_rate"] = out["failures"] / out["messages"]
    columns = ["agent_id", "messages", "failed", "timed_out", "expired", "failures", "failure_rate", "sources", "pools"]
    return out[columns].sort_values(["failures", "messages"], ascending=False).reset_index(drop=True)


def _agent_bars(agents: pd.DataFrame) -> str:
    rows = agents.head(TOP_BARS).iloc[::-1]
    fig, ax = _figure(11, max(2.2, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for status in ("failed", "timed_out", "expired"):
        values = rows[status].to_numpy(dtype=float)
        ax.barh(y, values, left=left, color=MESSAGE_COLORS[status], label=status)
        left += values
    ax.set_yticks(y, [label_text(v) for v in rows["agent_id"]], fontsize=8)
    for yi, (total, rate) in enumerate(zip(rows["messages"], rows["failure_rate"])):
        ax.annotate(f" {rate:.0%} of {total:,}", (left[yi], yi), fontsize=7, va="center")
    ax.set_xlabel("failed messages sent (at the head)")
    ax.set_title("Failed messages per sending agent, across the fleet", loc="left", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _img(fig, "failed messages per agent")


def _table(frame: pd.DataFrame, numbers: list[str], percent: tuple[str, ...] = (), bad: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th{' class=num' if c in numbers or c in percent else ''}>{_esc(c)}</th>" for c in frame.columns)
    body = []
    for record in frame.to_dict("records"):
        cells = []
        for column, value in record.items():
            if column in percent:
                cells.append(f"<td class=num>{value:.1%}</td>")
            elif column in numbers:
                alert = " bad" if column in bad and value else ""
                cells.append(f"<td class='num{alert}'>{int(value):,}</td>")
            else:
                cells.append(f"<td>{_esc('' if value is None or value is pd.NA else value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='ps-scroll'><table class='ps-summary'><tr>{head}</tr>{''.join(body)}</table></div>"


def _rate(failures: pd.Series, total: pd.Series) -> pd.Series:
    return (failures / total.where(total > 0)).fillna(0.0)


def render(fleet: Fleet, *, title: str | None = None) -> str:
    """The fleet page's HTML text."""
    from .. import __version__

    pools = fleet.pools.copy()
    pools["source"] = pools["source"].astype(object)
    pools["failure_rate"] = _rate(pools["failures"], pools["messages"] + pools["wakes"])
    ranked = pools.sort_values(["failures", "errors", "anomalies", "failure_rate"], ascending=False, kind="stable")
    summary = fleet.summary()
    fail_columns = [f"{n}_{s}" for n, s in FAILED]
    per_source = pools.groupby("source", sort=False)[["messages", "wakes", *fail_columns]].sum()
    sources = summary[summary["status"] == "ok"].merge(per_source, left_on="source", right_index=True, how="left")
    sources = sources.drop(columns=[c for c in ("messages_y", "wakes_y") if c in sources]).rename(
        columns={"messages_x": "messages", "wakes_x": "wakes"}
    )
    sources["failure_rate"] = _rate(sources["failures"], sources["messages"] + sources["wakes"])
    sources = sources.sort_values(["failures", "errors", "anomalies"], ascending=False, kind="stable")
    agents = agent_breakdown(fleet)
    anomalies = fleet.check()
    name = title or f"poolscope fleet report — {len(fleet.databases):,} databases"

    def card(label: str, value: int, alert: bool = False) -> str:
        return f"<div class='card{' bad' if alert and value else ''}'><b>{value:,}</b><span>{_esc(label)}</span></div>"

    errors = fleet.errors
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        GENERATOR,
        f"<title>{_esc(name)}</title><style>{_PAGE_CSS}{CSS}{_EXTRA_CSS}</style></head><body>",
        f"<header><h1>{_esc(name)}</h1><p>{len(fleet.databases):,} databases · {len(pools):,} pools · "
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')} by poolscope {_esc(__version__)}</p></header><main>",
        "<nav><a href='#pools'>worst pools</a><a href='#sources'>per source</a><a href='#agents'>per agent</a>"
        "<a href='#anomalies'>anomalies</a><a href='#unread'>unread files</a></nav>",
        "<div class='cards'>",
        card("databases", len(fleet.databases)),
        card("pools", len(pools)),
        card("records", int(pools["records"].sum())),
        card("failures at the head", int(pools["failures"].sum()), True),
        card("anomaly errors", int(summary["errors"].sum()), True),  # the pools' and the files' own
        card("unreadable databases", len(errors), True),
        card("skipped files", len(fleet.skipped)),
        "</div>",
        "<p class='note'>Failures: messages failed, timed out or expired and wakes failed or timed out, "
        "counted by their status at the head of each pool. Anomalies come from <code>poolscope doctor</code>'s "
        "check; the failure rate is failures over messages and wakes.</p>",
        f"<h2 id='pools'>Pools ranked by failures and anomalies (top {min(TOP_POOLS, len(ranked))} of {len(ranked):,})</h2>",
    ]
    if len(ranked):
        parts.append(
            _failure_bars(
                ranked.assign(label=ranked["source"].map(lambda s: Path(s).name) + " · " + ranked["pool_id"]),
                "label",
                "The worst pools: failures by status",
            )
        )
        top = ranked.head(TOP_POOLS)[
            [
                "source",
                "pool_id",
                "records",
                "messages",
                "wakes",
                "failures",
                "failure_rate",
                "errors",
                "warnings",
                "damaged",
            ]
        ]
        top.insert(0, "rank", range(1, len(top) + 1))
        parts.append(
            _table(
                top,
                ["rank", "records", "messages", "wakes", "failures", "errors", "warnings", "damaged"],
                ("failure_rate",),
                ("failures", "errors", "damaged"),
            )
        )
        parts.append(
            "<p class='note'>Open one with <code>fleet.pool(source, pool_id)</code>, or "
            "<code>poolscope report SOURCE</code> for its timelines.</p>"
        )
    else:
        parts.append("<p>No pool in this fleet.</p>")
    parts.append("<h2 id='sources'>Per source</h2>")
    if len(sources):
        parts.append(_failure_bars(sources, "source", "Failures per source, by status"))
        parts.append(_volume_scatter(sources))
        shown = sources[
            [
                "source",
                "pools",
                "records",
                "members",
                "messages",
                "wakes",
                "failures",
                "failure_rate",
                "anomalies",
                "errors",
                "warnings",
            ]
        ]
        parts.append(
            _table(
                shown,
                ["pools", "records", "members", "messages", "wakes", "failures", "anomalies", "errors", "warnings"],
                ("failure_rate",),
                ("failures", "errors"),
            )
        )
    parts.append("<h2 id='agents'>Per agent</h2>")
    if len(agents):
        parts.append(_agent_bars(agents))
        parts.append(
            _table(
                agents.head(TOP_POOLS),
                ["messages", "failed", "timed_out", "expired", "failures", "sources", "pools"],
                ("failure_rate",),
                ("failures",),
            )
        )
    else:
        parts.append("<p>No message in this fleet.</p>")
    parts.append("<h2 id='anomalies'>Anomalies by code and source</h2>")
    if len(anomalies):
        pivot = (
            anomalies.assign(source=anomalies["source"].astype(object))
            .pivot_table(index="source", columns="code", values="message", aggfunc="count", fill_value=0)
            .reset_index()
        )
        codes = [c for c in pivot.columns if c != "source"]
        parts.append(_table(pivot, codes, (), tuple(codes)))
    else:
        parts.append("<p class='ps-ok'>No anomaly in any database.</p>")
    parts.append("<h2 id='unread'>Databases that could not be read, and files skipped</h2>")
    if errors:
        frame = pd.DataFrame(
            [{"source": e.source, "error": type(e.error).__name__, "problem": e.error.problem} for e in errors]
        )
        parts.append(_table(frame, []))
    else:
        parts.append("<p class='ps-ok'>Every database was read.</p>")
    if fleet.skipped:
        skipped = pd.DataFrame([{"file": s.source, "reason": s.reason} for s in fleet.skipped])
        parts.append(f"<details><summary>{len(skipped):,} files skipped</summary>{_table(skipped, [])}</details>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


#: Marks a page as a fleet report, which a later report may overwrite without ``force``.
GENERATOR = "<meta name='generator' content='poolscope fleet report'>"


def report(fleet: Fleet, out_path: str | os.PathLike, *, title: str | None = None, force: bool = False) -> Path:
    """Write the fleet page to ``out_path``; return the path written.

    As :func:`poolscope.report.report` writes: missing parent folders are
    created; an existing file is replaced only if it is an earlier fleet
    report or with ``force``, atomically (a temporary file, then a rename),
    and never through a symlink (see :mod:`poolscope.output`).
    """
    from .. import output

    out = output.target(out_path, file=True)
    output.check_file(out, force=force, own=GENERATOR.encode())  # before the work
    text = render(fleet, title=title)
    with output.writing(out, force=force, own=GENERATOR.encode()) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a file name that is not UTF-8
    return Path(out_path)
