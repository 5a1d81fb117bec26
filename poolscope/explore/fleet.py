"""Exploring a fleet: pick a source (database), then a pool, in the usual explorer.

:class:`FleetExplorer` is a small controller over :class:`~poolscope.explore.app.Explorer`:
a source picker (each database labelled with its pools and failures, from
``fleet.pools``; the fleet's worst source and pool are shown first) above the
explorer of the selected database, whose own picker chooses the pool.  A
database is opened (read-only, once) when it is first picked.

    >>> hosts = poolscope.fleet("sample_data/", workers=1)
    >>> ex = poolscope.explore(hosts, "pool.alpha", source="sample_data/demo.db")
    >>> ex.explorer.set_cursor(1); ex.explorer.next_failure()
    1
    6
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import PoolNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from ..fleet import Fleet
    from .app import Explorer


class FleetExplorer:
    """A source picker and the :class:`Explorer` of the selected database.

    ``select_source(source, pool_id=None)`` changes both from code; ``explorer``
    is the explorer shown (its ``select_pool``, ``set_cursor``,
    ``next_failure`` ... work as usual)."""

    def __init__(
        self, fleet: Fleet, source: str | os.PathLike | None = None, pool_id: str | None = None, **options: Any
    ) -> None:
        import ipywidgets as W

        self.fleet = fleet
        self.options = options
        self._explorers: dict[str, Explorer] = {}
        if not fleet.databases:
            raise PoolNotFoundError("the fleet has no database to explore")
        pools = fleet.pools
        per_source = pools.groupby("source", observed=False).agg(
            pools=("pool_id", "size"), failures=("failures", "sum"), errors=("errors", "sum")
        )
        self._worst_pool = {
            str(s): str(group.sort_values(["failures", "errors"], ascending=False, kind="stable").iloc[0]["pool_id"])
            for s, group in pools.groupby("source", observed=True)
        }
        labels = []
        for path in fleet.databases:
            if path in per_source.index:
                row = per_source.loc[path]
                text = f"{path} — {int(row['pools'])} pools, {int(row['failures']):,} failures"
                if row["errors"]:
                    text += f", {int(row['errors']):,} anomaly errors"
            else:
                text = f"{path} — not read"
            labels.append((text, path))
        if source is None and len(pools):
            worst = pools.sort_values(["failures", "errors"], ascending=False, kind="stable").iloc[0]
            source, pool_id = str(worst["source"]), pool_id or str(worst["pool_id"])
        self.source_picker = W.Dropdown(
            options=labels,
            description="source",
            layout=W.Layout(width="min(100%, 760px)"),
            style={"description_width": "initial"},
        )
        self.status = W.HTML()
        self.body = W.VBox()
        self.widget = W.VBox([W.HBox([self.source_picker, self.status]), self.body], layout=W.Layout(width="100%"))
        self.widget.add_class("poolscope-fleet-explorer")
        self.explorer: Explorer | None = None
        self.select_source(fleet.databases[0] if source is None else source, pool_id)
        self.source_picker.observe(self._on_source, names="value")

    def _on_source(self, change: dict) -> None:
        if change.get("new") and change["new"] != getattr(self, "source", None):
            try:
                self.select_source(change["new"])
            except Exception as error:  # an unreadable database: say so, keep the picker usable
                from .. import render

                shown = getattr(self, "source", None)
                if shown is not None:  # the picker names the database shown, not the one that failed
                    self.source_picker.value = shown
                self.status.value = f"<span style='color:#c62828'>{render.esc(error)}</span>"

    def select_source(self, source: str | os.PathLike, pool_id: str | None = None) -> Explorer:
        """Show the explorer of ``source`` (a database of the fleet), at ``pool_id``
        (default: that database's pool with the most failures)."""
        from .app import Explorer

        key = self.fleet._source(source)  # PoolNotFoundError for a path not in the fleet
        explorer = self._explorers.get(key)
        if explorer is None:
            db = self.fleet.database(key)
            explorer = Explorer(db, pool_id or self._worst_pool.get(key), **self.options)
            self._explorers[key] = explorer
        elif pool_id is not None:
            explorer.select_pool(pool_id)
        self.source = key
        self.explorer = explorer
        self.status.value = ""
        if self.source_picker.value != key:
            self.source_picker.value = key
        self.body.children = [explorer.widget]
        return explorer

    def close(self) -> None:
        """Close the widgets of the picker and of every database's explorer
        (the fleet, and the databases it opened, stay open: ``fleet.close()``)."""
        from .app import close_widgets

        for explorer in self._explorers.values():
            explorer.close()
        close_widgets(self.widget)

    def __enter__(self) -> FleetExplorer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pool(self) -> Any:
        """The pool shown (a :class:`~poolscope.PoolHistory`)."""
        return None if self.explorer is None else self.explorer.pool

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if getattr(self.widget, "_repr_mimebundle_", None) is None:  # closed: a line saying so
            display(self._repr_mimebundle_(), raw=True)
        else:
            display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        show = getattr(self.widget, "_repr_mimebundle_", None)
        if show is None:  # ipywidgets drops a closed widget's (see close)
            return {"text/plain": f"{self!r} (closed)"}
        return show(**kwargs)

    def __repr__(self) -> str:
        pool = None if self.pool is None else self.pool.pool_id
        return f"<poolscope.FleetExplorer source={getattr(self, 'source', None)!r} pool={pool!r}>"
