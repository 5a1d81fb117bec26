"""The notebooks in notebooks/ run top to bottom and show what they claim.

Each notebook is executed end to end with nbclient on a copy (the stored one,
with its outputs, is never rewritten), in a kernel running this interpreter
with notebooks/ as the working directory -- as Jupyter runs them.  The kernel is
ipykernel's own ``python3`` spec, which runs this virtualenv's interpreter (no
kernel spec is installed anywhere; the root conftest.py points Jupyter's and
IPython's folders at temporary ones).  The
notebooks contain their own ``assert`` cells (the frames agree with the
snapshots, the CLI prints the same bytes as ``to_json()``, ...), so "no cell
errored" already proves behaviour; the tests also look at a few outputs.
Afterwards sample_data/ must be byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
SAMPLE_DIR = ROOT / "sample_data"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120
MAX_BYTES = 1_500_000
#: ipykernel's own spec, installed in this virtualenv (never in the user's home): this interpreter
KERNEL_NAME = "python3"

pytestmark = pytest.mark.slow


def sample_state() -> dict[str, str | None]:
    """Every file in sample_data/ with the sha256 of its bytes (a new -wal/-shm file shows up
    too, and fails the comparison)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SAMPLE_DIR.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run every notebook once (on a copy); {name: executed notebook}."""
    before = sample_state()
    stored = {path.name: path.read_bytes() for path in NOTEBOOKS}
    out = tmp_path_factory.mktemp("executed")
    results = {}
    for path in NOTEBOOKS:
        copy = out / path.name
        shutil.copyfile(path, copy)
        nb = nbformat.read(copy, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        )
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as error:
            pytest.fail(f"{path.name}: a cell failed:\n{error}")
        finally:
            nbformat.write(nb, copy)  # for a look at what ran: pytest's tmp folder
        results[path.name] = nb
    assert sample_state() == before, "running the notebooks changed sample_data/"
    assert {path.name: path.read_bytes() for path in NOTEBOOKS} == stored, "a stored notebook was rewritten"
    return results


def cell(nb, cell_id: str):
    found = [c for c in nb.cells if c.get("id") == cell_id]
    assert found, f"no cell {cell_id!r}"
    return found[0]


def text_of(c) -> str:
    """Everything a code cell printed or displayed as text."""
    parts = []
    for output in c.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
            parts.append(output.data.get("text/html", ""))
    return "\n".join(parts)


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_the_python3_kernel_is_this_interpreter_and_writes_nothing_home():
    """What the notebooks run in: ipykernel's spec from this virtualenv (or its built-in
    one), started as this very interpreter, with Jupyter's and IPython's folders temporary."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    assert spec.argv[0] in ("python", "python3", sys.executable), spec.argv
    assert Path(spec.resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve()) or "ipykernel" in str(
        spec.resource_dir
    ), spec.resource_dir
    nb = nbformat.v4.new_notebook()
    probe = "import os, sys, IPython\nprint(sys.executable)\nprint(IPython.paths.get_ipython_dir())"
    probe += "\nimport jupyter_core.paths as p\nprint(p.jupyter_runtime_dir())\nprint(p.jupyter_data_dir())"
    nb.cells = [nbformat.v4.new_code_cell(probe)]
    nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT).execute()
    executable, *folders = "".join(o.get("text", "") for o in nb.cells[0].outputs).split()
    assert executable == sys.executable
    home = Path.home().resolve()
    for folder in folders:
        assert not Path(folder).resolve().is_relative_to(home), folders


def test_there_are_the_notebooks():
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01_explore_a_pool_history.ipynb",
        "02_replay_to_a_past_cursor.ipynb",
        "03_message_and_wake_activity.ipynb",
        "04_a_fleet_of_hosts.ipynb",
        "05_why_did_this_fail.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebook_is_executed_documentation(path):
    """What a code host shows: a title, prose, every code cell run in order with its outputs, no error; not too big."""
    assert path.stat().st_size < MAX_BYTES
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not executed top to bottom"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert images(nb) >= 1
    if "sample_data" in "".join(c.source for c in code):  # the notebooks that read the sample find it robustly
        assert "def find_sample" in code[0].source, "the sample's path is not resolved robustly"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_without_error(executed, path):
    nb = executed[path.name]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    # the notebooks check themselves: real asserts, and they passed
    assert sum(c.source.count("assert ") for c in code) >= 3


def test_01_explore(executed):
    nb = executed["01_explore_a_pool_history.ipynb"]
    assert "['pool.alpha', 'pool.bravo', 'pool.charlie']" in text_of(cell(nb, "pool-ids"))
    # opening and reading created no -wal/-shm file next to the sample
    assert text_of(cell(nb, "files-unchanged")).strip() == "files created next to the sample: none"
    assert "run.alpha.reviewer-8" in text_of(cell(nb, "members-now"))
    for plot_cell in ("plot-members", "plot-messages", "plot-wakes"):
        assert any("image/png" in o.get("data", {}) for o in cell(nb, plot_cell).outputs), plot_cell
    explorer = [c for c in nb.cells if c.get("id") == "explorer"]
    if explorer:
        data = [o.get("data", {}) for o in explorer[0].outputs]
        assert any("application/vnd.jupyter.widget-view+json" in d for d in data), "the explorer displayed no widget"


def test_02_replay(executed):
    nb = executed["02_replay_to_a_past_cursor.ipynb"]
    assert "300 → 600" in text_of(cell(nb, "diff"))
    assert "5 joined, 4 left" in text_of(cell(nb, "diff-consistent"))  # backwards: the same change reversed
    cli = text_of(cell(nb, "cli-snapshot"))
    assert "$ poolscope snapshot ../sample_data/demo.db --pool pool.alpha --cursor 300" in cli
    assert "identical:" in cli
    assert "1201" in text_of(cell(nb, "frames-agree"))
    assert "run.alpha.notebook-1" in text_of(cell(nb, "store-leave"))
    assert "sample_data/demo.db unchanged" in text_of(cell(nb, "sample-unchanged"))


def test_03_activity(executed):
    nb = executed["03_message_and_wake_activity.ipynb"]
    assert "failed" in text_of(cell(nb, "activity-table"))
    assert any("image/png" in o.get("data", {}) for o in cell(nb, "plot-activity").outputs)
    assert "timed_out" in text_of(cell(nb, "wake-latency"))
    assert "Empty DataFrame" in text_of(cell(nb, "check-sample"))
    damaged = text_of(cell(nb, "check-damaged"))
    assert "bad_json" in damaged and "seq_gap" in damaged
    assert images(nb) >= 4


def test_04_fleet(executed):
    nb = executed["04_a_fleet_of_hosts.ipynb"]
    pools = text_of(cell(nb, "fleet-pools"))
    assert "host-3.db" in pools and "failures" in pools
    assert "host-3.db" in text_of(cell(nb, "worst-pool"))
    assert any("image/png" in o.get("data", {}) for o in cell(nb, "plot-worst").outputs)
    assert "host-0.db" in text_of(cell(nb, "dask-kinds"))
    assert text_of(cell(nb, "dask-collect")).strip().endswith(", 5)")  # collected here: every row of the 5 hosts
    everything = "\n".join(text_of(c) for c in nb.cells if c.cell_type == "code")
    assert "damaged (" in everything and "NOTES.txt" in everything


def test_05_why(executed):
    nb = executed["05_why_did_this_fail.ipynb"]
    assert "run.bravo.planner-2" in text_of(cell(nb, "failures"))
    explained = text_of(cell(nb, "explain-checked"))
    assert "delivered to nobody" in explained and "requires the policy refs" in explained
    assert "history of message" in text_of(cell(nb, "history"))
    for plot_cell in ("plot-flows", "plot-latency", "plot-compare"):
        assert any("image/png" in o.get("data", {}) for o in cell(nb, plot_cell).outputs), plot_cell
    assert "reached nobody" in text_of(cell(nb, "whatif-rates"))
    assert "refer to what was removed" in text_of(cell(nb, "whatif"))
    assert "messages failed" in text_of(cell(nb, "compare-healthy"))
    assert "$ poolscope history" in text_of(cell(nb, "cli-history"))
