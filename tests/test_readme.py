"""README.md's Python examples run, so they cannot rot.

Every ```python block runs, in order and in one namespace, as a reader would
type them at the repository root: in a temporary working directory that holds
``sample_data/`` (the repository's own, which the session guard keeps
unchanged).  A line that shows its value (``expr  # -> value``) must show
exactly that ``repr``.  A block that cannot run on ``sample_data/`` is preceded
by ``<!-- not executed: the reason -->``; it is still parsed and counted.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import pytest
from helpers import ROOT

import poolscope

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_EXECUTED = re.compile(r"<!--\s*not executed:\s*(.*?)\s*-->\s*$", re.S)
SHOWN = re.compile(r"#\s*->\s*(.+?)\s*$")


@dataclass
class Block:
    line: int  # where the code starts in README.md (1-based)
    code: str
    skipped: str | None  # why it is not executed


def python_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) not in ("python", "py"):
            continue
        before = text[: match.start()].rstrip("\n")
        reason = NOT_EXECUTED.search(before.rsplit("\n", 1)[-1])
        line = text.count("\n", 0, match.start(2)) + 1
        blocks.append(Block(line, match.group(2), reason.group(1) if reason else None))
    return blocks


def run_block(block: Block, namespace: dict) -> list[tuple[int, str, str]]:
    """Execute one block statement by statement; (README line, shown, actual repr) for each ``# ->``."""
    tree = ast.parse(block.code, filename=f"README.md:{block.line}")
    lines = block.code.splitlines()
    shown = []
    for statement in tree.body:
        where = f"README.md, line {block.line + statement.lineno - 1}"
        last = lines[statement.end_lineno - 1]
        expected = SHOWN.search(last)
        if expected and isinstance(statement, ast.Expr):
            value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
            shown.append((block.line + statement.end_lineno - 1, expected.group(1), repr(value)))
        else:
            assert not expected, f"{where}: '# ->' after a statement that is not an expression"
            exec(compile(ast.Module([statement], type_ignores=[]), where, "exec"), namespace)
    return shown


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_examples_and_says_why_any_is_not_run():
    assert len(BLOCKS) >= 3
    for block in BLOCKS:
        ast.parse(block.code)  # even a block that is not run is valid Python
        assert block.skipped is None or len(block.skipped) > 10, f"README.md:{block.line}: give a reason"
    assert sum(block.skipped is None for block in BLOCKS) >= 3


def test_the_parser_sees_fences_reasons_and_shown_values():
    text = (
        "intro\n```python\nx = 1\nx  # -> 1\n```\n"
        "<!-- not executed: needs a live writer process -->\n```python\nwatch()\n```\n"
        "```bash\nls\n```\n"
    )
    first, second = python_blocks(text)
    assert (first.line, first.code, first.skipped) == (3, "x = 1\nx  # -> 1\n", None)
    assert (second.code, second.skipped) == ("watch()\n", "needs a live writer process")
    assert run_block(first, {}) == [(4, "1", "1")]


def test_readme_examples_run_on_the_sample(tmp_path, monkeypatch):
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("matplotlib").use("Agg")
    namespace: dict = {"__name__": "__readme__"}
    shown = []
    try:
        for block in BLOCKS:
            if block.skipped is None:
                shown += run_block(block, namespace)
    finally:
        for value in list(namespace.values()):
            if isinstance(value, poolscope.Database | poolscope.PoolStore):
                value.close()  # the databases and stores the examples opened
        import matplotlib.pyplot as plt

        plt.close("all")
    assert shown, "README shows no value to check (expr  # -> value)"
    mismatches = [f"README.md:{line}: shows {want}, gives {got}" for line, want, got in shown if want != got]
    assert not mismatches, mismatches
