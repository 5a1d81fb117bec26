"""Text for a terminal: what comes from a database never reaches it raw.

Pool ids, run ids, paths and error messages come from files nobody here
wrote.  An id holding an ANSI or OSC escape sequence could recolour the
terminal, forge a hyperlink or rewrite earlier lines; a newline could forge a
line of output; a bidi control could make ``evil.db`` read as ``bd.live``.
:func:`escape` shows every such character as a visible escape (``\\x1b``,
``\\n``, ``\\u202e``), so one value stays on one line and reads as stored.
JSON output is not passed through here: it stays the SDK's exact JSON.

Example::

    >>> escape("pool\\x1b[31mred\\nsecond line\\u202e")
    'pool\\\\x1b[31mred\\\\nsecond line\\\\u202e'
    >>> shorten("pool." + "x" * 100, 20)
    'pool.xxxxxxxxxxxxxx…'
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: C0 and C1 controls, DEL, and the format characters that change how text
#: around them is shown (bidi embeddings, overrides and isolates, zero-width
#: characters, the byte-order mark, line and paragraph separators, tags).
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f]"
)


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}" if match.group() not in "\n\r\t" else repr(match.group())[1:-1]
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: Any) -> str:
    """``str(text)`` with every control, bidi and invisible format character
    shown as an escape, so that it is shown on one line as it is stored."""
    text = str(text)
    if text.isprintable():
        return text
    return UNSAFE.sub(_visible, text)


def shorten(text: Any, width: int = 60) -> str:
    """:func:`escape`, cut to ``width`` characters with an ellipsis (for a
    progress bar's description or a one-line listing)."""
    shown = escape(text)
    return shown if len(shown) <= width else shown[: max(width - 1, 1)] + "…"


@contextmanager
def escaped_warnings() -> Iterator[None]:
    r"""Meanwhile, warnings (matplotlib's "Glyph missing" ones quote the
    character) are shown with their message escaped, one line each: the
    warning's kind and its message, not the file, line and source line of
    the code that warned (a command's user reads what happened, not where).

    >>> import sys; sys.stderr = sys.stdout
    >>> with escaped_warnings():
    ...     warnings.warn("cache off for caf\x1b[31m", UserWarning)
    UserWarning: cache off for caf\x1b[31m
    >>> sys.stderr = sys.__stderr__
    """
    original = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        import sys

        out = file if file is not None else sys.stderr
        try:
            out.write(f"{category.__name__}: {escape(message)}\n")
        except (OSError, ValueError):  # a closed or broken stream: the warning is lost, as Python's is
            pass

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original
