"""poolscope: explore agent-pool histories written by the Rust agent SDK.

>>> import poolscope
>>> db = poolscope.open("sample_data/demo.db")
>>> db.pool(db.pool_ids[0]).snapshot(10)
<Snapshot 'pool.alpha' @ 10: 2 members, 2 topics, 1 messages, 3 wakes>
"""

from __future__ import annotations

import sys as _sys
from importlib import import_module as _import_module
from importlib import metadata as _metadata
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigConflictError,
    CorruptRecordError,
    CursorError,
    DatabaseAccessError,
    DatabaseChangedError,
    DatabaseClosedError,
    DatabaseError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    InvalidInputError,
    NotADatabaseError,
    NotAMemberError,
    OutputError,
    PayloadTooLargeError,
    PoolNotFoundError,
    PoolNotOpenedError,
    PoolscopeError,
    QueryTimeoutError,
    RecordError,
    ReplayError,
    SchemaError,
    UnknownKeyError,
    UnknownRecordKindError,
    WriteRefusedError,
)

#: The public names defined in submodules, and where: each is imported on first
#: use, so that ``import poolscope`` (and every fleet worker) pays only for the
#: parts it uses -- the frames need pandas, the explorer ipywidgets, the plots
#: matplotlib; opening a database and folding its log need none of them.
_LAZY = {
    "activity": "activity",
    "summary": "activity",
    "Comparison": "compare",
    "compare": "compare",
    "Diff": "diff",
    "diff": "diff",
    "explore": "explore",
    "Fleet": "fleet",
    "fleet": "fleet",
    "describe_columns": "frames",
    "members_df": "frames",
    "messages_df": "frames",
    "records_df": "frames",
    "wakes_df": "frames",
    "Database": "history",
    "PoolHistory": "history",
    "Record": "history",
    "open": "history",
    "Snapshot": "snapshot",
    "PoolStore": "store",
}

if TYPE_CHECKING:
    from .activity import activity, summary
    from .compare import Comparison, compare
    from .diff import Diff, diff
    from .explore import explore
    from .fleet import Fleet, fleet
    from .frames import describe_columns, members_df, messages_df, records_df, wakes_df
    from .history import Database, PoolHistory, Record, open
    from .snapshot import Snapshot
    from .store import PoolStore


def __getattr__(name: str) -> Any:
    """A public name (imported from its submodule now), else a submodule
    (``poolscope.plot``, ``poolscope.cache``, ...)."""
    home = _LAZY.get(name)
    if home is not None:
        value = getattr(_import_module(f".{home}", __name__), name)
        globals()[name] = value  # found in the module's namespace from now on
        return value
    if not name.startswith("__"):
        try:
            return _import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(_ModuleType):
    """This package's module type: five public functions share their
    submodule's name (``activity``, ``compare``, ``diff``, ``explore``,
    ``fleet``); importing the submodule must not rebind ``poolscope.<name>``
    to it (the import system does so after loading a submodule), so the name
    stays the function's (the submodule is ``sys.modules["poolscope.<name>"]``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if _LAZY.get(name) == name and isinstance(value, _ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

try:
    __version__ = _metadata.version("poolscope")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "open",
    "explore",
    "fleet",
    "Fleet",
    "describe_columns",
    "__version__",
    "Database",
    "PoolHistory",
    "Record",
    "Snapshot",
    "PoolStore",
    "records_df",
    "members_df",
    "messages_df",
    "wakes_df",
    "activity",
    "summary",
    "diff",
    "Diff",
    "compare",
    "Comparison",
    "UnknownKeyError",
    "PoolscopeError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "NotADatabaseError",
    "SchemaError",
    "DatabaseLockedError",
    "DatabaseChangedError",
    "DatabaseAccessError",
    "DatabaseClosedError",
    "QueryTimeoutError",
    "WriteRefusedError",
    "OutputError",
    "PoolNotFoundError",
    "RecordError",
    "CorruptRecordError",
    "PayloadTooLargeError",
    "UnknownRecordKindError",
    "ReplayError",
    "PoolNotOpenedError",
    "ConfigConflictError",
    "CursorError",
    "NotAMemberError",
    "InvalidInputError",
]
