"""An interactive explorer for a pool's history (ipywidgets; Jupyter, JupyterLab, Voilà).

:func:`explore` returns an :class:`Explorer`; make it the last expression of a
cell to show it::

    >>> import poolscope
    >>> poolscope.explore("sample_data/demo.db")
    <poolscope.Explorer 'sample_data/demo.db' pool='pool.alpha' cursor=1201>
    >>> ex = poolscope.explore("sample_data/demo.db", "pool.alpha", live=True)   # follows a growing file
    >>> ex.set_cursor(120); ex.next_failure()
    120
    121
    >>> ex.stop()

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
* the anomalies of the pool;
* the why panel: pick or type a message, wake or run id (or call
  :meth:`Explorer.select`) to see every record that touched it up to the
  cursor and what the records say about it (``history_of``, ``explain``).

Controls: the pool picker, the cursor slider with a Play control, one-record
steps, jumps to the previous/next record matching the filters (kind, status,
run, agent), and to the previous/next failure (a ``failed``, ``expired`` or
``timed_out`` message; a ``timed_out`` or ``failed`` wake).

Moving the cursor costs the size of the state at the cursor, never of the log:
the panels are filled from the pool's columnar index (counts, ids, statuses,
a few rows) with no payload read except the record at the cursor, and the
timeline figure is drawn once per pool and filter -- a cursor move only moves
the marker.  Every panel is an ``HTML`` or ``Image`` widget whose value is
replaced at once, so nothing flickers.

The parts: :mod:`~poolscope.explore.app` (the controller: controls, state,
one handler), :mod:`~poolscope.explore.panels` (one class per panel, and the
:class:`~poolscope.explore.panels.View` they are drawn from),
:mod:`~poolscope.explore.timeline` (the figure and its marker) and
:mod:`~poolscope.explore.live` (following a growing file).  The HTML is
:mod:`poolscope.render`'s, the colours :mod:`poolscope.palette`'s, the filters
and jumps :mod:`poolscope.filters`'.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import palette
from ..filters import STATUS_NAMES
from ..render import ITEM_ROWS as TABLE_ROWS
from .app import CHECK_EAGER_RECORDS, Explorer
from .panels import JSON_AUTO_ITEMS, JSON_CHARS, HTMLPanel, Panel, View
from .timeline import FIGURES_KEPT, STRIP_BINS, TIMELINE_REDRAW_SECONDS

if TYPE_CHECKING:  # pragma: no cover
    from ..fleet import Fleet
    from ..history import Database, PoolHistory

__all__ = [
    "explore",
    "Explorer",
    "Panel",
    "HTMLPanel",
    "View",
    "STATUS_NAMES",
    "MESSAGE_FAILURES",
    "WAKE_FAILURES",
    "TABLE_ROWS",
    "CHECK_EAGER_RECORDS",
    "JSON_AUTO_ITEMS",
    "JSON_CHARS",
    "STRIP_BINS",
    "FIGURES_KEPT",
    "TIMELINE_REDRAW_SECONDS",
]

#: Message statuses counted as failures by :meth:`Explorer.next_failure`.
MESSAGE_FAILURES: tuple[str, ...] = palette.FAILURE_STATUSES["message"]
#: Wake statuses counted as failures by :meth:`Explorer.next_failure`.
WAKE_FAILURES: tuple[str, ...] = palette.FAILURE_STATUSES["wake"]


def explore(
    db_or_path: Database | PoolHistory | Fleet | str | os.PathLike,
    pool_id: str | None = None,
    live: bool = False,
    *,
    interval: float = 1.0,
    check: bool | None = None,
    source: str | os.PathLike | None = None,
) -> Explorer:
    """An interactive explorer of a pool database (see :class:`Explorer`).

    ``db_or_path`` is a :class:`~poolscope.Database`, a path (opened
    read-only), a :class:`~poolscope.PoolHistory` (its database, that pool
    first) or a :class:`~poolscope.Fleet` (a
    :class:`~poolscope.explore.fleet.FleetExplorer`: pick a source, then a
    pool; ``source`` is the database shown first, by default the one with
    the pool with the most failures, and that pool); ``pool_id`` the pool
    shown first (default: the first);
    ``live=True`` follows a database still being written, polling every
    ``interval`` seconds; ``check`` lists the anomalies ``db.check()``
    finds (``None``: at once for databases up to :data:`CHECK_EAGER_RECORDS`
    records, else when its button is pressed; ``False``: only on the button).

    >>> import poolscope
    >>> ex = poolscope.explore("sample_data/demo.db", "pool.bravo")
    >>> ex
    <poolscope.Explorer 'sample_data/demo.db' pool='pool.bravo' cursor=1200>
    """
    from ..arguments import flag_argument
    from ..fleet import Fleet
    from ..history import Database, PoolHistory
    from ..history import open as open_db

    live = flag_argument(live, "live")
    check = None if check is None else flag_argument(check, "check")

    if isinstance(db_or_path, Fleet):
        # a fleet: pick a source, then a pool
        from .fleet import FleetExplorer

        return FleetExplorer(  # type: ignore[return-value]
            db_or_path, source, pool_id, live=live, interval=interval, check=check
        )
    histories = None
    if isinstance(db_or_path, PoolHistory):
        db, pool_id = db_or_path.db, db_or_path.pool_id if pool_id is None else pool_id
        if db._pools.get(db_or_path.pool_id) is not db_or_path:  # a what-if: shown instead of its pool
            histories = {db_or_path.pool_id: db_or_path}
    else:
        owns_db = not isinstance(db_or_path, Database)
        db = db_or_path if isinstance(db_or_path, Database) else open_db(db_or_path)
        try:
            return Explorer(db, pool_id, live=live, interval=interval, check=check, owns_db=owns_db)
        except BaseException:
            if owns_db:
                db.close()  # opened here for an explorer that could not be made (an unknown pool ...)
            raise
    return Explorer(db, pool_id, live=live, interval=interval, check=check, histories=histories)
