"""The package's surface: public names imported on first use, and what each entry point imports.

``import poolscope`` loads none of the heavy libraries (pandas, pyarrow, matplotlib, ipywidgets):
each public name is imported from its submodule when first used.  A fleet worker, which checks
databases, starts from ``poolscope.fleet.work`` alone; these tests hold both to what they load.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types

import pytest
from helpers import ROOT

import poolscope

HEAVY = ("pandas", "pyarrow", "matplotlib", "ipywidgets", "dask", "distributed", "duckdb")
#: Public functions that share their submodule's name.
SHADOWED = ("activity", "compare", "diff", "explore", "fleet")


def run_python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter (this environment and ``env``, the repo's folder) and
    return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADED = f"json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def test_import_poolscope_loads_no_heavy_library():
    assert run_python(f"import json, sys, poolscope; print({LOADED})") == []


def test_opening_a_pool_and_its_snapshot_load_no_frames_library():
    code = (
        "import json, sys, poolscope\n"
        "db = poolscope.open('sample_data/demo.db', cache=False)\n"
        "snap = db.pool('pool.bravo').snapshot(600)\n"
        "assert snap.cursor == 600, snap\n"
        f"print({LOADED})"
    )
    assert run_python(code) == []


def test_a_fleet_worker_checks_a_database_without_the_frames_libraries(tmp_path):
    # what a fleet worker does for fleet.check() and fleet.pools, in a fresh interpreter; the
    # index cache is looked up, in an empty folder (restoring an entry maps it with pyarrow)
    code = (
        "import json, sys\n"
        "from poolscope.fleet import work\n"
        "work._one_process_loads()\n"
        "found = work.survey('sample_data/demo.db', 5.0)\n"
        "assert [row['pool_id'] for row in found['pools']] == ['pool.alpha', 'pool.bravo', 'pool.charlie'], found\n"
        f"print({LOADED})"
    )
    cache = tmp_path / "cache"
    # the suite saves pools of any size; here pools as small as the sample's are not saved, as by default
    assert run_python(code, POOLSCOPE_CACHE_DIR=str(cache), POOLSCOPE_CACHE_MIN_RECORDS="10000") == []
    assert not cache.exists()


def test_every_public_name_is_its_submodules_object():
    for name in poolscope.__all__:
        value = getattr(poolscope, name)
        home = poolscope._LAZY.get(name)
        if home is not None:
            assert value is getattr(importlib.import_module(f"poolscope.{home}"), name), name
        elif name != "__version__":
            assert value is getattr(poolscope.errors, name), name
    assert set(poolscope.__all__) <= set(dir(poolscope))
    assert set(poolscope._LAZY) <= set(poolscope.__all__)


def test_a_function_keeps_its_name_when_its_submodule_is_imported_first():
    # in a fresh interpreter the submodules are imported before any public name is used: the
    # import system binds ``poolscope.<name>`` to each submodule, the package keeps the function
    imports = "\n".join(f"import poolscope.{name}" for name in SHADOWED)
    code = (
        "import json, sys, types\n"
        "import poolscope.fleet.work, poolscope.explore.app\n"
        f"{imports}\n"
        "from poolscope import fleet, activity\n"
        "out = {}\n"
        f"for name in {SHADOWED!r}:\n"
        "    value = getattr(poolscope, name)\n"
        "    out[name] = [callable(value), isinstance(value, types.ModuleType),\n"
        "                 value is getattr(sys.modules['poolscope.' + name], name)]\n"
        "out['from'] = [fleet is poolscope.fleet, activity is poolscope.activity]\n"
        "print(json.dumps(out))"
    )
    out = run_python(code)
    assert out.pop("from") == [True, True]
    assert out == {name: [True, False, True] for name in SHADOWED}


def test_a_function_keeps_its_name_here_too():
    for name in SHADOWED:
        importlib.import_module(f"poolscope.{name}")
        value = getattr(poolscope, name)
        assert callable(value) and not isinstance(value, types.ModuleType), name
        assert value is getattr(sys.modules[f"poolscope.{name}"], name)
    # anything else the import system (or a user) sets is kept
    poolscope.some_attribute = 1
    try:
        assert poolscope.some_attribute == 1
    finally:
        del poolscope.some_attribute


def test_submodules_are_attributes_and_unknown_names_are_attribute_errors():
    assert poolscope.plot is sys.modules["poolscope.plot"]
    assert poolscope.cache.default_dir is importlib.import_module("poolscope.cache").default_dir
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        poolscope.no_such_thing  # noqa: B018
    assert not hasattr(poolscope, "__wrapped__")
    assert not hasattr(poolscope, "nope")


def test_a_submodule_that_fails_to_import_is_not_hidden_as_a_missing_attribute(tmp_path, monkeypatch):
    # a submodule whose own import fails (a missing dependency) raises that error, not AttributeError
    monkeypatch.setattr(poolscope, "__path__", [*poolscope.__path__, str(tmp_path)])
    (tmp_path / "probe_broken.py").write_text("import no_such_dependency_anywhere\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_anywhere"):
        poolscope.probe_broken  # noqa: B018
    sys.modules.pop("poolscope.probe_broken", None)


def test_every_module_imports_first_in_a_fresh_interpreter():
    # with names imported on first use, any module may be the first a program (or a worker)
    # imports: none may depend on the order the package's __init__ used to impose
    import pkgutil
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(
        info.name
        for info in pkgutil.walk_packages(poolscope.__path__, "poolscope.")
        if not info.name.endswith("__main__")
    )
    assert "poolscope.fleet.work" in names and "poolscope.explore.app" in names

    def first_import(name: str) -> tuple[str, int, str]:
        done = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        return name, done.returncode, done.stderr[-2000:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(name, err) for name, code, err in pool.map(first_import, names) if code != 0]
    assert failed == []
