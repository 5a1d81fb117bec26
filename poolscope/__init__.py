"""poolscope: explore agent-pool histories written by the Rust agent SDK.

>>> import poolscope
>>> db = poolscope.open("sample_data/demo.db")   # doctest: +SKIP
>>> db.pool(db.pool_ids[0]).snapshot(10)          # doctest: +SKIP
"""

from .errors import (
    ConfigConflictError,
    CorruptRecordError,
    CursorError,
    DatabaseChangedError,
    DatabaseError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    InvalidInputError,
    NotADatabaseError,
    NotAMemberError,
    PoolNotFoundError,
    PoolNotOpenedError,
    PoolscopeError,
    RecordError,
    ReplayError,
    SchemaError,
    UnknownRecordKindError,
)
from .history import Database, PoolHistory, Record, open
from .snapshot import Snapshot
from .store import PoolStore
from .frames import records_df, members_df, messages_df, wakes_df
from .activity import activity, summary
from .diff import Diff, diff

__version__ = "0.1.0"

__all__ = [
    "open",
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
    "PoolscopeError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "NotADatabaseError",
    "SchemaError",
    "DatabaseLockedError",
    "DatabaseChangedError",
    "PoolNotFoundError",
    "RecordError",
    "CorruptRecordError",
    "UnknownRecordKindError",
    "ReplayError",
    "PoolNotOpenedError",
    "ConfigConflictError",
    "CursorError",
    "NotAMemberError",
    "InvalidInputError",
]
from .explore import explore  # noqa: E402
