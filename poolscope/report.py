"""A one-file HTML report of a pool database: summary, timelines, snapshots, anomalies.

:func:`report` writes ONE self-contained HTML page -- no request leaves it: no
CDN, no remote fonts or scripts; the plots are embedded as base64 PNG.  It
holds a summary table of every pool (:meth:`Database.summary`, with the
anomaly counts), and for each pool: the four timelines of
:mod:`poolscope.plot`, the snapshot at the head (counts, members, topics,
latest messages and wakes) and the anomalies :meth:`Database.check` found.
The anomalies of no pool (the whole file's, and those of rows no pool reads,
such as a pool id that is not UTF-8) are listed apart, as file-wide ones.
The database is only read (it may be read-only).

Example::

    >>> from poolscope.report import report
    >>> report("sample_data/demo.db", "report.html")
    PosixPath('report.html')

or, from a shell::

    $ poolscope report sample_data/demo.db -o report.html --pool pool.alpha
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import palette
from . import render as _html
from .arguments import names_argument
from .check import file_wide
from .errors import PoolscopeError

if TYPE_CHECKING:  # pragma: no cover
    from .history import Database, PoolHistory

__all__ = ["report", "render"]

#: Resolution of the embedded plots.
DPI = 90
#: Failures explained per pool (the most recent).
FAILURES_EXPLAINED = 10
#: Anomalies listed per pool (the rest are counted).
MAX_ANOMALIES = 500

_PAGE_CSS = f"""
body {{ font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       color: {palette.INK}; background: {palette.PAPER}; }}
header {{ background: {palette.HEADER}; color: #fff; padding: 18px 32px; }}
header h1 {{ margin: 0 0 4px 0; font-size: 22px; overflow-wrap: anywhere; }}
header p {{ margin: 0; color: {palette.HEADER_TEXT}; font-size: 13px; overflow-wrap: anywhere; }}
main {{ padding: 12px 32px 48px 32px; max-width: 1500px; }}
nav {{ font-size: 14px; margin: 10px 0 18px 0; }}
nav a {{ margin-right: 14px; }}
h2 {{ border-bottom: 2px solid {palette.HEADER_TEXT}; padding-bottom: 4px; margin-top: 36px; overflow-wrap: anywhere; }}
h3 {{ margin: 22px 0 8px 0; color: {palette.HEADING}; }}
table {{ border-collapse: collapse; font-size: 12.5px; margin: 6px 0 10px 0; background: #fff; }}
th, td {{ border: 1px solid {palette.RULE}; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: {palette.TABLE_HEAD}; }}
.ps-summary {{ font-size: 11px; }}
.ps-summary th, .ps-summary td {{ padding: 2px 3px; }}
.ps-summary td.bad {{ color: {palette.SEVERITY_COLORS["error"][1]}; font-weight: 600; }}
.ps-summary th.group {{ text-align: center; border-bottom: 2px solid {palette.GROUP_RULE}; }}
.ps-summary td.pool {{ max-width: 14em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }}
.ps-scroll {{ overflow-x: auto; }}
figure {{ margin: 6px 0 14px 0; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid {palette.RULE}; background: #fff; }}
.note {{ color: {palette.NOTE}; font-size: 13px; }}
.problem {{ color: {palette.SEVERITY_COLORS["error"][1]}; }}
.poolscope-snapshot {{ background: #fff; border: 1px solid {palette.RULE}; padding: 8px 12px; font-size: 13px; }}
details summary {{ cursor: pointer; margin: 4px 0; }}
"""


_esc = _html.esc


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot_html(pool: PoolHistory, name: str, draw: Callable, height: float) -> str:
    """One plot as an embedded PNG (or a note saying why it could not be drawn)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, height), layout="constrained")
    try:
        draw(pool, ax=fig.add_subplot())
        data = _png(fig)
    except Exception as error:  # a damaged pool must not stop the whole report
        return f"<p class='problem'>The {_esc(name)} plot could not be drawn: {_esc(error)}</p>"
    alt = f"{name} of {_html.shorten(pool.pool_id, 200)}"
    return f"<figure><img alt='{_esc(alt)}' src='data:image/png;base64,{data}'></figure>"


def _lanes(pool: PoolHistory) -> int:
    from .plot import member_lanes

    return len(member_lanes(pool))


def _height(lanes: int) -> float:
    return float(min(max(0.2 * lanes + 1.6, 2.6), 13.0))


def _summary_html(db: Database, anomalies: list, selected: list[str]) -> str:
    """:meth:`Database.summary` as a table with the anomaly counts of each pool;
    the ``selected`` pools, which have a section, are linked to it (no link leads nowhere)."""
    shown = set(selected)
    return _html.summary_html(
        db.summary(), anomalies, link=lambda pool_id: _anchor(db, pool_id) if pool_id in shown else None
    )


def _anchor(db: Database, pool_id: str) -> str:
    return f"pool-{db.pool_ids.index(pool_id) + 1}" if pool_id in db.pool_ids else "pool-unknown"


def _anomalies_html(anomalies: list, empty: str) -> str:
    return _html.anomalies_html(anomalies, empty=empty, limit=MAX_ANOMALIES)


def _file_wide_html(anomalies: list) -> str:
    """The anomalies of no pool listed (see :func:`poolscope.check.file_wide`), with a pool column when
    some are of rows that no pool reads: every anomaly ``doctor`` finds is on the page."""
    if not any(a.pool_id is not None for a in anomalies):
        return _anomalies_html(anomalies, "No file-wide anomaly.")
    return (
        "<p class='note'>With those of the whole file: the anomalies of rows that no pool reads (a pool id "
        "that is not text, or not UTF-8), named by their pool id as <code>poolscope doctor</code> names them.</p>"
        + _html.anomalies_html(anomalies, limit=MAX_ANOMALIES, pools=True)
    )


def _snapshot_html(pool: PoolHistory) -> str:
    from .errors import PoolscopeError as _Error

    try:
        return _html.snapshot_html(pool.snapshot(), opened=True)
    except _Error as error:
        try:
            lenient = _html.snapshot_html(pool.snapshot(strict=False), opened=True)
        except _Error:
            return f"<p class='problem'>No snapshot at the head: {_esc(error)}</p>"
        return (
            f"<p class='problem'>The SDK could not replay this pool to its head ({_esc(error)}); "
            f"below is the lenient snapshot (damaged records skipped).</p>{lenient}"
        )


def _flows_height(pool: PoolHistory) -> float:
    """Height of the flow matrix: a row per sending agent."""
    try:
        agents = pool.members_df()["agent_id"].nunique()
    except PoolscopeError:
        agents = 4
    return max(3.2, 1.8 + 0.36 * min(agents + 1, 25))


def _failures_html(pool: PoolHistory) -> str:
    """The most recent failed, timed-out and expired messages and wakes, each explained."""
    from .why import recent_failures

    try:
        failures = recent_failures(pool, FAILURES_EXPLAINED)
    except PoolscopeError as error:
        return f"<p class='problem'>The failures could not be listed: {_esc(error)}</p>"
    if not len(failures):
        return "<p class='note'>No message failed, timed out or expired, and no wake timed out or failed.</p>"
    parts = [
        f"<p class='note'>The {len(failures)} most recent messages that failed, timed out or expired and wakes "
        "that timed out or failed, latest first, each told from the records alone; the cursors in brackets are "
        "the records each sentence rests on (<code>pool.explain(key)</code>).</p>"
    ]
    for row in failures.itertuples(index=False):
        try:
            parts.append(_html.explanation_html(pool.explain(row.id, key_type=row.kind)))
        except PoolscopeError as error:
            parts.append(f"<p class='problem'>{_esc(row.id)}: {_esc(error)}</p>")
    return "".join(parts)


def _pool_section(db: Database, pool: PoolHistory, anomalies: list | None, check_note: str) -> str:
    from . import plot

    lanes = _lanes(pool)
    plots: list[tuple[str, str, Callable[..., Any], float]] = [
        ("Membership", "membership", plot.members, _height(lanes if lanes <= 60 else 8)),
        ("Messages", "messages", plot.messages, _height(min(lanes + 2, 60))),
        ("Wakes", "wakes", plot.wakes, _height(min(lanes, 60))),
        ("Activity", "activity", plot.activity, 3.4),
        ("Who messages whom", "flows", plot.flows, _flows_height(pool)),
    ]
    body = [
        f"<section id='{_anchor(db, pool.pool_id)}'><h2>Pool {_html.ident(pool.pool_id, 120)}</h2>"
        f"<p class='note'>{len(pool):,} records, head cursor {pool.head:,}. "
        f"The x axis of every plot is the cursor (seq): there is no wall-clock time in the records.</p>"
    ]
    for title, name, draw, height in plots:
        body.append(f"<h3>{title}</h3>{_plot_html(pool, name, draw, height)}")
    body.append(f"<h3>Snapshot at the head</h3>{_snapshot_html(pool)}")
    body.append(f"<h3>Failures explained</h3>{_failures_html(pool)}")
    body.append("<h3>Anomalies</h3>")
    if anomalies is None:
        body.append(f"<p class='note'>{_esc(check_note)}</p>")
    else:
        body.append(_anomalies_html(anomalies, "No anomaly found in this pool."))
    body.append("</section>")
    return "".join(body)


def render(db: Database, pools: str | Iterable[str] | None = None, *, title: str | None = None) -> str:
    """The report's HTML text for an open :class:`~poolscope.Database`.

    ``pools`` (one pool id or several) limits the per-pool sections: the
    summary still lists every pool, so that the selected ones can be compared
    with the rest, but links only the selected ones to their sections (every
    link of the page leads to something on it).

    >>> text = render(db, ["pool.alpha"])
    >>> text.startswith("<!DOCTYPE html>"), "pool.alpha" in text
    (True, True)
    """
    from . import __version__

    chosen = names_argument(pools, "pools", "pool id")
    selected = list(dict.fromkeys(db.pool_ids if chosen is None else chosen))  # a pool named twice is shown once
    for pool_id in selected:
        db.pool(pool_id)  # raises PoolNotFoundError for an unknown pool, before any work
    anomalies: list | None
    check_note = ""
    try:
        anomalies = list(db.check())
    except (AttributeError, ImportError):
        anomalies, check_note = None, "The anomaly check is not available in this version of poolscope."
    except PoolscopeError as error:
        anomalies, check_note = None, f"The anomaly check could not run: {error}"
    name = title or f"poolscope report — {db.path.name}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        GENERATOR,
        f"<title>{_esc(name)}</title><style>{_PAGE_CSS}{_html.CSS}</style></head><body>",
        f"<header><h1>{_esc(name)}</h1><p>{_esc(db.path)} · {len(db.pool_ids):,} pool(s) · "
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')} by poolscope {_esc(__version__)}</p></header><main>",
    ]
    if selected:
        links = "".join(f"<a href='#{_anchor(db, p)}'>{_html.ident(p, 40)}</a>" for p in selected)
        parts.append(f"<nav>Pools: {links}<a href='#anomalies-file'>file-wide anomalies</a></nav>")
    parts.append("<h2>Summary</h2>")
    parts.append(_summary_html(db, anomalies or [], selected) if db.pool_ids else "<p>No pool in this database.</p>")
    unshown = len(set(db.pool_ids) - set(selected))
    parts.append(
        "<p class='note'>Messages and wakes are counted by their status at the head. "
        "Errors and warnings come from the anomaly check (<code>poolscope doctor</code>)."
        + (
            f" This report has a section for {len(selected):,} of the {len(db.pool_ids):,} pools (linked above); "
            f"the other {unshown:,} are listed for comparison only."
            if unshown
            else ""
        )
        + "</p>"
    )
    parts.append("<h2 id='anomalies-file'>File-wide anomalies</h2>")
    if anomalies is None:
        parts.append(f"<p class='note'>{_esc(check_note)}</p>")
    else:
        parts.append(_file_wide_html(file_wide(anomalies, db.pool_ids)))
    for pool_id in selected:
        mine = None if anomalies is None else [a for a in anomalies if a.pool_id == pool_id]
        parts.append(_pool_section(db, db.pool(pool_id), mine, check_note))
    parts.append("</main></body></html>")
    return "\n".join(parts)


#: The line every report's head carries: a report may overwrite a file that has it (its own earlier output).
GENERATOR = "<meta name='generator' content='poolscope report'>"


def report(
    db_or_path: Database | str | os.PathLike,
    out_path: str | os.PathLike,
    pools: str | Iterable[str] | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write the HTML report of a database (or of its ``pools``: one pool id or several) to ``out_path``.

    ``db_or_path`` is an open :class:`~poolscope.Database` or the path of a
    database, which is opened read-only.  Returns the path written.  Missing
    parent folders are created; an existing file is overwritten only if it is
    an earlier report or with ``force``, and never through a symlink (see
    :mod:`poolscope.output`).

    >>> report("sample_data/demo.db", "alpha.html", pools=["pool.alpha"])
    PosixPath('alpha.html')
    """
    from .history import Database
    from .history import open as open_db

    db = db_or_path if isinstance(db_or_path, Database) else open_db(db_or_path, progress=False)
    from . import output

    out = output.target(out_path, file=True)
    output.check_file(out, force=force, own=GENERATOR.encode())  # before the work
    text = render(db, pools)
    with output.writing(out, force=force, own=GENERATOR.encode()) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a file name that is not UTF-8
    return Path(out_path)
