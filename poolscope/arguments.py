"""Arguments checked where they come in: a typed error naming the argument,
never a ``TypeError`` or ``OverflowError`` from deep inside ``sqlite3``,
numpy, pandas, matplotlib or ``os``.

Every public entry point that takes a database path, a timeout or a size
limit (:func:`poolscope.open`, :class:`poolscope.PoolStore`,
:func:`poolscope.fleet`) checks them here; so do the frames, plots and
what-ifs for their cursors, windows, selections of names or seqs, flags
(``strict``) and choices (``by``, ``key_type``), and every plot for its pool,
``ax=`` and ``fig=`` (:func:`plot_arguments`).

    >>> path_argument("pool.db")
    PosixPath('pool.db')
    >>> seconds_argument(2, "timeout")
    2.0
    >>> path_argument(5)
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: path must be a file path (str or os.PathLike), not int 5
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from .errors import CursorError, InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

#: The largest ``max_payload`` SQLite can take (its limits are C ints); a
#: larger one means "no limit beyond SQLite's own", so it is lowered to this.
MAX_BYTE_LIMIT = 2**31 - 1
#: The longest name of one file or folder (bytes) the usual file systems take (ext4, xfs, btrfs, tmpfs).
NAME_MAX = 255
#: The longest wait SQLite's busy handler can take (a C int of milliseconds), about 24 days.
MAX_SECONDS = (2**31 - 1) / 1000


def shown_value(value: Any) -> str:
    """A value as an error message shows it: its type, then its repr cut at 60 characters.

    >>> shown_value([1, 2])
    'list [1, 2]'
    """
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:60] + '…'}"


def whole_number(value: Any) -> int | None:
    """``value`` as an ``int`` if it is one (a numpy integer too), else None:
    ``True``, ``5.0``, ``"5"``, ``pd.NA`` and arrays are not whole numbers,
    a numpy array of no dimension (``np.array(5)``) included.

    >>> import numpy as np
    >>> whole_number(np.int32(5)), whole_number(5.0), whole_number(True), whole_number(np.array([1, 2]))
    (5, None, None, None)
    >>> whole_number(np.array(5)) is None
    True
    """
    if isinstance(value, bool | np.ndarray) or not hasattr(value, "__index__"):
        return None
    try:
        return operator.index(value)
    except TypeError:  # an array of more than one value
        return None


def path_argument(value: Any, name: str = "path") -> Path:
    """``value`` as a :class:`~pathlib.Path`: a ``str`` or ``os.PathLike`` (bytes
    are decoded as ``os.fsdecode`` does) without a NUL character.

    >>> path_argument("a\\x00b")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: path 'a\\x00b' holds a NUL character, which no file name can
    """
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str | os.PathLike):
        raise InvalidInputError(f"{name} must be a file path (str or os.PathLike), not {shown_value(value)}")
    try:
        text = os.fspath(value)
    except TypeError as error:  # a PathLike whose __fspath__ returns something else
        raise InvalidInputError(f"{name}: {error}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\x00" in text:
        raise InvalidInputError(f"{name} {text[:60]!r} holds a NUL character, which no file name can")
    if not text:
        raise InvalidInputError(f"{name} is empty")
    try:
        os.fsencode(text)
    except UnicodeEncodeError as error:  # half a surrogate pair (U+D800 alone): no file name holds it
        raise InvalidInputError(
            f"{name} {text[:60]!r} cannot be encoded as a file name ({sys.getfilesystemencoding()} "
            f"cannot encode {text[error.start : error.end]!r}: {error.reason})"
        ) from None
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InvalidInputError(
                f"{name} holds a name of {len(os.fsencode(part))} bytes ({part[:40]!r}…): "
                f"no file system takes more than {NAME_MAX}"
            )
    return Path(text)


def seconds_argument(value: Any, name: str) -> float:
    """A duration in seconds: a finite number, 0 or more (SQLite takes its busy
    wait in whole milliseconds of a C int, so a longer one is lowered to that).

    >>> seconds_argument("1", "timeout")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: timeout must be a number of seconds (0 or more), not str '1'
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name} must be a number of seconds (0 or more), not {shown_value(value)}")
    return min(float(value), MAX_SECONDS)


def byte_limit_argument(value: Any, name: str) -> int:
    """A size limit in bytes: a positive integer; above SQLite's own limit, lowered to it.

    >>> byte_limit_argument(2**40, "max_payload") == MAX_BYTE_LIMIT
    True
    >>> byte_limit_argument(0, "max_payload")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: max_payload must be a positive number of bytes, not int 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive number of bytes, not {shown_value(value)}")
    return min(value, MAX_BYTE_LIMIT)


def count_argument(value: Any, name: str, most: int | None = None, *, least: int = 1) -> int:
    """A count of at least 1 (workers, rows per partition, a window of cursors),
    and at most ``most`` if given; a numpy integer is taken as the int it holds.
    ``least=0`` takes 0 as well (rows of context, a position in a log).

    >>> import numpy as np
    >>> count_argument(np.int64(2), "workers"), count_argument(0, "context", least=0)
    (2, 0)
    >>> count_argument(7, "pools", most=5)
    Traceback (most recent call last):
    poolscope.errors.InvalidInputError: pools must be a whole number between 1 and 5, not int 7
    >>> count_argument(-1, "start", least=0)
    Traceback (most recent call last):
    poolscope.errors.InvalidInputError: start must be a whole number of at least 0, not int -1
    """
    number = whole_number(value)
    if number is None or number < least or (most is not None and number > most):
        bounds = f"of at least {least}" if most is None else f"between {least} and {most:,}"
        raise InvalidInputError(f"{name} must be a whole number {bounds}, not {shown_value(value)}")
    return number


def _items(values: Any, name: str, noun: str) -> list:
    """The items of a selection given as a list (any iterable but text, bytes
    and dicts); anything else, a 0-d numpy array included (it has ``__iter__``
    but no items), is an :class:`~poolscope.errors.InvalidInputError`."""
    try:
        items = None if isinstance(values, str | bytes | dict) else iter(values)
    except TypeError:
        items = None
    if items is None:
        article = "an" if noun[0] in "aeiou" else "a"
        raise InvalidInputError(f"{name} must be {article} {noun} or a list of {noun}s, not {shown_value(values)}")
    return list(items)


def names_argument(values: Any, name: str, noun: str = "id") -> list[str] | None:
    """A selection of names: None (no selection), one name, or several (any
    iterable of strings), as a list.

    >>> names_argument("run.a", "runs"), names_argument(("a", "b"), "runs"), names_argument(None, "runs")
    (['run.a'], ['a', 'b'], None)
    >>> names_argument([5], "kinds", "kind")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: kinds must hold kinds (strings), not int 5
    >>> import numpy as np
    >>> names_argument(np.array("wake"), "kinds", "kind")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: kinds must be a kind or a list of kinds, not ndarray array('wake', dtype='<U4')
    """
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    chosen = _items(values, name, noun)
    for value in chosen:
        if not isinstance(value, str):
            raise InvalidInputError(f"{name} must hold {noun}s (strings), not {shown_value(value)}")
    return chosen


def seqs_argument(values: Any, name: str = "records") -> list[int] | None:
    """A selection of seqs: None (no selection), one seq, or several (any
    iterable of whole numbers, numpy integers included), as a list of ints.

    >>> import numpy as np
    >>> seqs_argument(np.int64(5)), seqs_argument(np.array([3, 4])), seqs_argument(None)
    ([5], [3, 4], None)
    >>> seqs_argument(np.array(5))
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: records must be a seq or a list of seqs, not ndarray array(5)
    """
    if values is None:
        return None
    single = whole_number(values)
    if single is not None:
        return [single]
    chosen = _items(values, name, "seq")
    for at, value in enumerate(chosen):
        number = whole_number(value)
        if number is None:
            raise InvalidInputError(f"{name} must hold seqs (integers), not {shown_value(value)}")
        chosen[at] = number
    return chosen


def upto_argument(value: Any, name: str = "upto", *, path: Any = None, pool_id: str | None = None) -> int | None:
    """A frame's ``upto``: None (the head) or a cursor, 0 or more.

    Frames and fleets take any cursor from 0 on: beyond a pool's head it is
    that pool's head (a database's or fleet's pools have different heads),
    so a cursor past 64 bits is lowered to the largest seq.  ``path`` and
    ``pool_id``, when given, are the error's (see :class:`~poolscope.errors.PoolscopeError`).  Anything that is
    not an integer (``"5"``, ``5.0``, ``True``) is a
    :class:`~poolscope.errors.CursorError`, never an empty frame.

    >>> upto_argument(None), upto_argument(7), upto_argument(2**70) == 2**63 - 2
    (None, 7, True)
    >>> upto_argument(-1)
    Traceback (most recent call last):
    ...
    poolscope.errors.CursorError: upto -1 is before the first record: a cursor is 0 or more
    """
    from .index import MAX_SEQ

    if value is None:
        return None
    cursor = whole_number(value)
    if cursor is None:
        raise CursorError(f"{name} must be an integer cursor, not {shown_value(value)}", path=path, pool_id=pool_id)
    if cursor < 0:
        raise CursorError(
            f"{name} {cursor} is before the first record: a cursor is 0 or more", path=path, pool_id=pool_id
        )
    return min(cursor, MAX_SEQ)


def window_argument(value: Any, name: str = "window") -> int | None:
    """A window of cursors (activity, the plots' aggregation): None (a default
    chosen from the head) or a count of at least 1.  A window wider than any
    log is lowered to the largest seq, so that the arithmetic on windows stays
    in int64.

    >>> import numpy as np
    >>> window_argument(None), window_argument(np.int64(50)), window_argument(10**30) == 2**63 - 2
    (None, 50, True)
    >>> window_argument(0.5)
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: window must be a whole number of at least 1, not float 0.5
    """
    from .index import MAX_SEQ

    return None if value is None else min(count_argument(value, name), MAX_SEQ)


def flag_argument(value: Any, name: str) -> bool:
    """A yes-or-no argument: ``True`` or ``False`` (a ``numpy.bool_`` too), nothing
    else: ``"no"`` would be taken as true and ``None`` as false.

    >>> import numpy as np
    >>> flag_argument(np.bool_(False), "strict")
    False
    >>> flag_argument("no", "strict")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: strict must be True or False, not str 'no'
    """
    if not isinstance(value, bool | np.bool_):
        raise InvalidInputError(f"{name} must be True or False, not {shown_value(value)}")
    return bool(value)


def choice_argument(value: Any, name: str, choices: Sequence[str], **where: Any) -> str:
    """One of a few names (``by="agent"``): a ``str`` among ``choices``; ``where``
    (``path``, ``pool_id``) is the error's (see :class:`~poolscope.errors.PoolscopeError`).
    Anything else, ``pd.NA`` included, is an :class:`~poolscope.errors.InvalidInputError`.

    >>> choice_argument("run", "by", ("run", "agent"))
    'run'
    >>> import pandas as pd
    >>> choice_argument(pd.NA, "by", ("run", "agent", "status"))
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: by must be 'run', 'agent' or 'status', not NAType <NA>
    """
    if isinstance(value, str) and value in choices:
        return str(value)
    listed = ", ".join(repr(choice) for choice in choices[:-1])
    listed = f"{listed} or {choices[-1]!r}" if listed else repr(choices[-1])
    raise InvalidInputError(f"{name} must be {listed}, not {shown_value(value)}", **where)


def instance_argument(value: Any, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is a ``kind`` (an Axes for ``ax=``, a pool's history),
    else an :class:`~poolscope.errors.InvalidInputError` saying ``what`` it
    must be and what was given.

    >>> instance_argument("pool.alpha", "pool", int, "a number")
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: pool must be a number, not str 'pool.alpha'
    """
    if not isinstance(value, kind):
        raise InvalidInputError(f"{name} must be {what}, not {shown_value(value)}")
    return value


def plot_arguments(function: F) -> F:
    """Check, before a plot function draws, the arguments every plot takes:
    its pool's history (the first argument, when it is named ``pool``),
    ``ax=`` (a matplotlib Axes) and ``fig=`` (a Figure).  A slip -- a Figure
    for ``ax``, an Axes for ``fig``, the Database or a pool id for the pool --
    is an :class:`~poolscope.errors.InvalidInputError` naming the argument and
    what was given, not an ``AttributeError`` from deep inside the drawing.

    >>> from poolscope import plot
    >>> plot.members(db)
    Traceback (most recent call last):
    ...
    poolscope.errors.InvalidInputError: pool must be a pool's history (db.pool(pool_id)), not Database <poolscope.Database ...
    """
    takes_pool = next(iter(inspect.signature(function).parameters), None) == "pool"

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from matplotlib.axes import Axes
        from matplotlib.figure import FigureBase

        from .history import PoolHistory

        if takes_pool and (args or "pool" in kwargs):
            pool = args[0] if args else kwargs["pool"]
            instance_argument(pool, "pool", PoolHistory, "a pool's history (db.pool(pool_id))")
        if kwargs.get("ax") is not None:
            instance_argument(kwargs["ax"], "ax", Axes, "a matplotlib Axes (figure.add_subplot())")
        if kwargs.get("fig") is not None:
            instance_argument(kwargs["fig"], "fig", FigureBase, "a matplotlib Figure (a Figure or SubFigure)")
        return function(*args, **kwargs)

    return cast(F, checked)
