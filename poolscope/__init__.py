"""poolscope: explore agent-pool histories written by the Rust agent SDK.

>>> import poolscope
>>> db = poolscope.open("sample_data/demo.db")
>>> db.pool(db.pool_ids[0]).snapshot(10)
<Snapshot 'pool.alpha' @ 10: 2 members, 2 topics, 1 messages, 3 wakes>
"""

from importlib import metadata as _metadata

from .activity import activity, summary
from .compare import Comparison, compare
from .diff import Diff, diff
from .errors import (
    ConfigConflictError,
    CorruptRecordError,
    CursorError,
    DatabaseAccessError,
    DatabaseChangedError,
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
from .explore import explore
from .fleet import Fleet, fleet
from .frames import describe_columns, members_df, messages_df, records_df, wakes_df
from .history import Database, PoolHistory, Record, open
from .snapshot import Snapshot
from .store import PoolStore

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
