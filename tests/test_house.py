"""The suite's own house rules: it writes nothing in the user's home, and its guard would see it."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, home_changes, home_listing

import poolscope

#: Every tool the suite runs, and where it would write under $HOME without these.
TOOL_FOLDERS = [
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "IPYTHONDIR",
    "MPLCONFIGDIR",
    "POOLSCOPE_CACHE_DIR",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
]

PROBE = r"""
import json, matplotlib, IPython.paths, jupyter_core.paths as jp
print(json.dumps({
    "matplotlib config": matplotlib.get_configdir(),
    "matplotlib cache": matplotlib.get_cachedir(),
    "ipython": IPython.paths.get_ipython_dir(),
    "jupyter config": jp.jupyter_config_dir(),
    "jupyter data": jp.jupyter_data_dir(),
    "jupyter runtime": jp.jupyter_runtime_dir(),
}))
"""


def test_every_tool_writes_to_a_temporary_folder_in_this_session_and_its_children():
    home = Path.home().resolve()
    for name in TOOL_FOLDERS:
        folder = Path(os.environ[name]).resolve()
        assert folder.is_dir() and not folder.is_relative_to(home), (name, folder)
    # a child process (a kernel, Voilà, a CLI run) resolves the same folders, none in $HOME
    found = json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=True).stdout)
    for what, folder in found.items():
        assert not Path(folder).resolve().is_relative_to(home), (what, folder)


def test_the_home_guard_sees_what_a_test_could_change(tmp_path):
    home = tmp_path / "home"
    for folder in (".cache/pip/http", ".cache/matplotlib", ".config", ".ssh", ".pyenv/versions"):
        (home / folder).mkdir(parents=True)
    (home / ".bashrc").write_text("export A=1\n")
    (home / ".cache/matplotlib/fontlist.json").write_text("{}")
    (home / ".pyenv/versions/x").write_text("toolchain")
    before = home_listing(home)
    assert home_changes(before, home_listing(home)) == []

    (home / ".bashrc").write_text("export A=2\n")  # a file at the top, changed
    (home / ".ipython").mkdir()  # a new folder at the top
    (home / ".cache/matplotlib/fontlist.json").write_text('{"a": 1}')  # a file in a watched folder
    (home / ".config/chromium").mkdir()  # a new folder in a watched folder
    (home / ".cache/pip/http/x").write_text("pip's own cache")  # ignored: pip's
    assert home_changes(before, home_listing(home)) == [
        ".bashrc: changed",
        ".cache/matplotlib/fontlist.json: changed",
        ".config/chromium: created",
        ".ipython: created",
    ]
    (home / ".cache/matplotlib/fontlist.json").unlink()
    assert ".cache/matplotlib/fontlist.json: removed" in home_changes(before, home_listing(home))


def _docstring_examples() -> list[tuple[str, doctest.Example]]:
    finder = doctest.DocTestFinder()
    found = []
    names = [poolscope.__name__] + [m.name for m in pkgutil.walk_packages(poolscope.__path__, "poolscope.")]
    for name in names:
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.filename and Path(test.filename).resolve().is_relative_to(ROOT / "poolscope"):
                found += [(f"{test.name}:{(test.lineno or 0) + ex.lineno + 1}", ex) for ex in test.examples]
    return found


def test_docstring_examples_all_run_none_is_skipped():
    """Every ``>>>`` example in poolscope's docstrings runs on sample_data/ (pytest collects them
    with --doctest-modules); one that cannot run is written without prompts, saying why."""
    examples = _docstring_examples()
    skipped = [where for where, ex in examples if ex.options.get(doctest.SKIP)]
    assert not skipped, f"skipped docstring examples: {skipped}"
    assert len({where.split(":")[0] for where, _ in examples}) >= 40  # docstrings with examples


def _code_spans(text: str) -> list[str]:
    import re

    return re.findall(r"`([^`\n]+)`", text)


def test_the_developers_guide_names_only_what_exists():
    """DEVELOPERS.md is the newcomer's map: every file, folder and ``module.name`` it
    names in code spans exists (a rename that forgets the guide fails here)."""
    import re

    guide = (ROOT / "DEVELOPERS.md").read_text(encoding="utf-8")
    spans = _code_spans(guide)
    paths = [s for s in spans if re.fullmatch(r"[\w.\-/]+/[\w.\-]*|[\w\-]+\.(py|md|toml)", s)]
    assert len(paths) >= 20
    modules = {p.name for p in (ROOT / "poolscope").rglob("*.py")} | {p.name for p in (ROOT / "tests").glob("*.py")}
    for path in paths:
        if path.startswith("../") or path.startswith("$"):
            continue
        if "/" in path:
            assert (ROOT / path.rstrip("/")).exists(), path
        else:
            assert path in modules or (ROOT / path).exists(), path
    names = [s for s in spans if re.fullmatch(r"[a-z_]+\.[A-Za-z_]+", s) and not s.endswith((".py", ".md", ".toml"))]
    assert len(names) >= 5
    for name in names:
        module, attribute = name.split(".")
        found = importlib.import_module(f"poolscope.{module}")
        # a name of the module, or of one of its classes (``index.decode``: PoolIndex.decode)
        classes = [value for value in vars(found).values() if isinstance(value, type)]
        assert hasattr(found, attribute) or any(attribute in vars(c) for c in classes), name
    # every module of the package is named in README's layout table or here
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for module in sorted((ROOT / "poolscope").glob("*.py")):
        if module.name != "__init__.py":
            assert module.name in readme or module.name in guide, module.name
