"""Read-only files and folders, read by an unprivileged user; a WAL file with a live writer.

The suite runs as root, for whom permissions do not stop writes, so the
readers here run as ``nobody`` (uid/gid 65534) in a subprocess.  Every read
call and CLI command must work on a folder that cannot be written, and the
files and the folder listing must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, SAMPLE_DB, load_jsonl, raw_snapshot_lines, tree_state

import poolscope

NOBODY = 65534
ROOT_USER = os.geteuid() == 0
#: Who reads: ``nobody`` when the suite runs as root (for whom permissions do not
#: stop writes), else the suite's own unprivileged user.
READER_UID, READER_GID = (NOBODY, NOBODY) if ROOT_USER else (os.getuid(), os.getgid())
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
POOLSCOPE_CLI = Path(sys.executable).parent / "poolscope"
#: The one capability ``nobody`` may keep: read and search any file or folder
#: (needed when the interpreter or this checkout is under a folder such as
#: /root, mode 0700).  It grants no write of any kind: no file can be created,
#: opened for writing, chmod-ed or removed without the write permission.
READ_SEARCH = "dac_read_search"
CAP_DAC_READ_SEARCH = 1 << 2

#: Run as nobody: every public read call on one database, then the CLI commands
#: given as JSON in argv[2] (through click's runner, in the same process to save
#: start-up time); prints a JSON summary.
READER = r"""
import json, os, sys
import poolscope
from click.testing import CliRunner
from poolscope.cli import cli

path = sys.argv[1]
out = {"uid": os.getuid(), "pools": {}}
db = poolscope.open(path)
out["pool_ids"] = db.pool_ids
for history in db.pools():
    head = history.head
    records = history.records()
    middle = head // 2
    out["pools"][history.pool_id] = {
        "head": head,
        "records": [r.to_json() for r in records],
        "between": [r.cursor for r in history.records(after=middle // 2, upto=middle)],
        "wakes": len(list(history.iter_records(kinds="wake"))),
        "snapshot_head": history.snapshot().to_json(),
        "snapshot_middle": history.snapshot(middle).to_json(),
        "snapshot_lenient": history.snapshot(middle, strict=False).to_json(),
        "followed": [r.cursor for r in history.follow(after=head - 3, poll=0.05, idle_timeout=0.2)],
    }
out["anomalies"] = [a.to_dict() for a in db.check()]
out["refresh"] = db.refresh()
frames = {}
for name in ("records_df", "members_df", "messages_df", "wakes_df"):
    if hasattr(db, name):  # the frames, where this version has them
        frames[name] = len(getattr(db, name)())
out["frames"] = frames
db.close()
out["cli"] = []
for args in json.loads(sys.argv[2]) if len(sys.argv) > 2 else []:
    result = CliRunner().invoke(cli, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    out["cli"].append({"args": args, "exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                       "crashed": repr(result.exception) if crashed else None})
print(json.dumps(out))
"""


def _drop(capabilities: str) -> list[str]:
    """setpriv's arguments: become nobody, no groups, only ``capabilities`` ("" for none) kept."""
    caps = f"-all,+{capabilities}" if capabilities else "-all"
    drop = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", f"--bounding-set={caps}"]
    drop += [f"--inh-caps={caps}", "--no-new-privs"]
    return drop + ([f"--ambient-caps={caps}"] if capabilities else [])


_CAPABILITIES: list[str] = []


def reader_capabilities() -> str:
    """The capabilities nobody needs to run this interpreter: none where it can read the
    checkout and the virtualenv, else only CAP_DAC_READ_SEARCH (e.g. a clone under /root)."""
    if not _CAPABILITIES:
        probe = "import poolscope, pandas, matplotlib, nbformat"
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
        errors = []
        for capabilities in ("", READ_SEARCH):
            run = subprocess.run(_drop(capabilities) + [sys.executable, "-c", probe], env=env, capture_output=True)
            if run.returncode == 0:
                _CAPABILITIES.append(capabilities)
                break
            errors.append(run.stderr.decode(errors="replace")[-1000:])
        else:
            pytest.fail(f"nobody cannot run {sys.executable}, even with CAP_DAC_READ_SEARCH:\n" + "\n".join(errors))
    return _CAPABILITIES[0]


def as_nobody(args: list[str], extra_env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``args`` as the unprivileged reader.

    As root: uid/gid 65534, no supplementary groups, no capability but (where
    the interpreter cannot otherwise be read) CAP_DAC_READ_SEARCH, which lets
    it read but never write.  ``setpriv`` rather than a ``preexec_fn``, so the
    exec itself happens as nobody.  As any other user: that user, whom the
    permissions already stop.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"}
    env.update(extra_env or {})
    drop = _drop(reader_capabilities()) if ROOT_USER else []
    return subprocess.run(drop + args, env=env, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture
def readonly_folder():
    """A folder the reader cannot write (0o555, files 0o444), but can reach; removed afterwards."""
    if ROOT_USER and not Path(SETPRIV).exists():
        pytest.fail("running as root needs setpriv (util-linux) to read as the unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="poolscope-ro-"))
    top.chmod(0o755)
    folder = top / "data"
    folder.mkdir()
    yield folder
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755)
    shutil.rmtree(top)


def lock_down(folder: Path) -> tuple[list[str], dict[str, bytes]]:
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    return sorted(p.name for p in folder.iterdir()), tree_state(folder)


def read_as_nobody(path: Path, commands: list[list[str]] = ()) -> dict:
    result = as_nobody([sys.executable, "-c", READER, str(path), json.dumps(list(commands))])
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["uid"] == READER_UID
    for run in got["cli"]:
        assert run["crashed"] is None, run
    return got


def cli_as_nobody(*args: str) -> subprocess.CompletedProcess:
    return as_nobody([str(POOLSCOPE_CLI), *args])


#: As the reader: every way of changing a locked-down folder, each expected to be refused.
WRITE_PROBES = r"""
import json, os, sys
folder = sys.argv[1]
db = os.path.join(folder, "demo.db")
probes = {
    "create a file": lambda: open(os.path.join(folder, "x"), "w"),
    "create a -wal": lambda: os.open(db + "-wal", os.O_CREAT | os.O_WRONLY, 0o644),
    "open the database for writing": lambda: open(db, "r+b"),
    "append to the database": lambda: open(db, "ab"),
    "chmod the database": lambda: os.chmod(db, 0o666),
    "chmod the folder": lambda: os.chmod(folder, 0o777),
    "remove the database": lambda: os.remove(db),
    "rename the database": lambda: os.rename(db, db + ".moved"),
    "make a folder": lambda: os.mkdir(os.path.join(folder, "sub")),
    "touch the database": lambda: os.utime(db),
}
refused = {}
for name, probe in probes.items():
    try:
        probe()
        refused[name] = None
    except PermissionError as error:
        refused[name] = error.strerror
status = {k: v.split() for k, v in (line.split(":", 1) for line in open("/proc/self/status")) if k.startswith("Cap")}
print(json.dumps({"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
                  "refused": refused, "caps": {k: int(v[0], 16) for k, v in status.items()},
                  "reads": len(open(db, "rb").read())}))
"""


@pytest.mark.slow
def test_nobody_cannot_write_there(readonly_folder):
    """The setup really is read-only for the reader (otherwise the other tests prove nothing):
    who it runs as, which capabilities it holds (at most CAP_DAC_READ_SEARCH, which reads and
    never writes), and that every kind of change to the folder and its files is refused."""
    shutil.copy(SAMPLE_DB, readonly_folder / "demo.db")
    names, state = lock_down(readonly_folder)
    result = as_nobody([sys.executable, "-c", WRITE_PROBES, str(readonly_folder)])
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["ids"] == [READER_UID, READER_UID, READER_GID, READER_GID, [] if ROOT_USER else os.getgroups()]
    refusals = {"Permission denied", "Operation not permitted"}  # EACCES, EPERM (chmod by a non-owner)
    assert len(got["refused"]) == 10 and all(why in refusals for why in got["refused"].values()), got["refused"]
    assert got["reads"] == SAMPLE_DB.stat().st_size
    if ROOT_USER:
        allowed = CAP_DAC_READ_SEARCH if reader_capabilities() else 0
        assert got["caps"]["CapEff"] == got["caps"]["CapPrm"] == allowed
        assert got["caps"]["CapBnd"] == got["caps"]["CapAmb"] == got["caps"]["CapInh"] == allowed
    assert sorted(p.name for p in readonly_folder.iterdir()) == names
    assert tree_state(readonly_folder) == state


@pytest.mark.slow
def test_oracle_read_only_as_nobody(readonly_folder, oracle):
    path = readonly_folder / "pool.db"
    shutil.copy(oracle / "pool.db", path)
    names, state = lock_down(readonly_folder)

    expected = load_jsonl(oracle / "records.jsonl")
    first = sorted({r["pool_id"] for r in expected})[0]
    commands = [
        ["records", str(path), "--pool", first],
        ["snapshot", str(path), "--pool", first],
        ["info", str(path)],
        ["info", str(path), "--json"],
        ["doctor", str(path)],
        ["doctor", str(path), "--json"],
    ]
    got = read_as_nobody(path, commands)
    raw = (oracle / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert got["pool_ids"] == sorted({r["pool_id"] for r in expected})
    final = {}
    for pool_id, cursor, text in raw_snapshot_lines(oracle):
        final[pool_id] = (cursor, text) if cursor >= final.get(pool_id, (0, ""))[0] else final[pool_id]
    for pool_id, pool in got["pools"].items():
        lines = [line for line, record in zip(raw, expected) if record["pool_id"] == pool_id]
        assert pool["records"] == lines
        assert pool["head"] == final[pool_id][0]
        assert pool["snapshot_head"] == final[pool_id][1]
        assert pool["followed"] == list(range(pool["head"] - 2, pool["head"] + 1))
    assert got["anomalies"] == []
    assert got["refresh"] == dict.fromkeys(got["pool_ids"], 0)

    records, snapshot, info, info_json, doctor, doctor_json = got["cli"]
    assert [run["exit"] for run in got["cli"]] == [0] * len(commands), got["cli"]
    assert records["stdout"].splitlines() == [line for line, r in zip(raw, expected) if r["pool_id"] == first]
    assert snapshot["stdout"].rstrip("\n") == final[first][1]
    assert [p["head"] for p in json.loads(info_json["stdout"])["pools"]] == [
        got["pools"][p]["head"] for p in got["pool_ids"]
    ]
    assert json.loads(doctor_json["stdout"])["anomalies"] == []
    # and the installed console script itself
    console = cli_as_nobody("doctor", str(path))
    assert console.returncode == 0 and "0 errors, 0 warnings, 0 info" in console.stdout

    assert sorted(p.name for p in readonly_folder.iterdir()) == names
    assert tree_state(readonly_folder) == state


@pytest.mark.slow
def test_sample_read_only_as_nobody(readonly_folder, sample_db):
    path = readonly_folder / "demo.db"
    shutil.copy(SAMPLE_DB, path)
    names, state = lock_down(readonly_folder)

    pool_id = sample_db.pool_ids[-1]
    commands = [
        ["info", str(path)],
        ["info", str(path), "--json"],
        ["records", str(path), "--pool", pool_id, "--after", "10", "--upto", "20"],
        ["snapshot", str(path), "--pool", pool_id, "--cursor", "40"],
        ["snapshot", str(path), "--pool", pool_id, "--lenient", "--pretty"],
        ["doctor", str(path)],
        ["doctor", str(path), "--json"],
    ]
    got = read_as_nobody(path, commands)
    # what root reads from the original sample, in this process
    db = sample_db
    assert got["pool_ids"] == db.pool_ids
    for history in db.pools():
        pool = got["pools"][history.pool_id]
        middle = history.head // 2
        assert pool["head"] == history.head
        assert pool["records"] == [r.to_json() for r in history.records()]
        assert pool["between"] == list(range(middle // 2 + 1, middle + 1))
        assert pool["snapshot_head"] == history.snapshot().to_json()
        assert pool["snapshot_middle"] == pool["snapshot_lenient"] == history.snapshot(middle).to_json()
    assert got["anomalies"] == []
    assert [run["exit"] for run in got["cli"]] == [0] * len(commands), got["cli"]
    lines = got["cli"][2]["stdout"].splitlines()
    assert lines == [r.to_json() for r in db.pool(pool_id).records(after=10, upto=20)]
    assert got["cli"][3]["stdout"].rstrip("\n") == db.pool(pool_id).snapshot(40).to_json()
    console = cli_as_nobody("snapshot", str(path), "--pool", pool_id, "--cursor", "40")
    assert console.returncode == 0 and console.stdout == got["cli"][3]["stdout"]

    assert sorted(p.name for p in readonly_folder.iterdir()) == names
    assert tree_state(readonly_folder) == state


@pytest.mark.slow
def test_errors_in_a_read_only_folder_are_typed(readonly_folder):
    """Bad paths in a folder nobody can write: typed errors, exit status 2, and no file appears."""
    (readonly_folder / "text.db").write_text("not a database")
    names, state = lock_down(readonly_folder)
    paths = [str(readonly_folder / "missing.db"), str(readonly_folder / "text.db"), str(readonly_folder)]
    script = (
        "import json, sys, poolscope\n"
        "from click.testing import CliRunner\n"
        "from poolscope.cli import cli\n"
        "out = []\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        poolscope.open(path)\n"
        "        out.append(None)\n"
        "    except poolscope.PoolscopeError as error:\n"
        "        result = CliRunner().invoke(cli, ['doctor', path])\n"
        "        out.append([type(error).__name__, str(error), result.exit_code, result.stderr])\n"
        "print(json.dumps(out))\n"
    )
    result = as_nobody([sys.executable, "-c", script, *paths])
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert [g[0] for g in got] == ["DatabaseNotFoundError", "NotADatabaseError", "NotADatabaseError"]
    for path, (_, message, status, stderr) in zip(paths, got):
        assert path in message and status == 2 and path in stderr
    console = cli_as_nobody("info", paths[0])
    assert console.returncode == 2 and paths[0] in console.stderr
    assert sorted(p.name for p in readonly_folder.iterdir()) == names
    assert tree_state(readonly_folder) == state


# --------------------------------------------------------- a live WAL writer
def _writer_with_unchecked_wal(path: Path, pool_id: str) -> tuple[poolscope.PoolStore, int]:
    store = poolscope.PoolStore(path)
    store.conn.execute("PRAGMA wal_autocheckpoint = 0")
    store.open_pool(pool_id, {})
    store.record_pool_created(pool_id)
    for k in range(40):
        store.join_member(pool_id, {"run_id": f"run.{k:02d}", "agent_id": "agent.a", "topics": ["t"]})
    store.leave_member(pool_id, "run.07")
    return store, 43


def _main_file_seqs(path: Path, pool_id: str) -> list[int]:
    """What the main file alone holds (ignoring the -wal), read from a private copy."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "main.db"
        shutil.copy(path, copy)
        conn = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)
        try:
            return [r[0] for r in conn.execute("SELECT seq FROM agent_pool_records WHERE pool_id = ?", (pool_id,))]
        except sqlite3.Error:
            return []
        finally:
            conn.close()


def test_wal_with_a_live_writer(tmp_path):
    path = tmp_path / "live.db"
    store, head = _writer_with_unchecked_wal(path, "pool.w")
    try:
        wal = Path(f"{path}-wal")
        assert wal.exists() and wal.stat().st_size > 0
        assert len(_main_file_seqs(path, "pool.w")) < head  # the records are in the -wal only
        names = sorted(p.name for p in tmp_path.iterdir())
        main_bytes, wal_bytes = path.read_bytes(), wal.read_bytes()

        db = poolscope.open(path)
        pool = db.pool("pool.w")
        assert pool.head == head
        assert [r.cursor for r in pool.records()] == list(range(1, head + 1))
        snap = pool.snapshot()
        assert len(snap.members) == 39 and "run.07" not in snap.member_ids
        assert db.check() == []
        store.join_member("pool.w", {"run_id": "run.late", "agent_id": "agent.b"})
        assert db.refresh() == {"pool.w": 1}
        assert "run.late" in pool.snapshot().member_ids
        db.close()

        assert sorted(p.name for p in tmp_path.iterdir()) == names  # no new file
        assert path.read_bytes() == main_bytes  # the reader checkpointed nothing
        assert wal.read_bytes()[: len(wal_bytes)] == wal_bytes  # only the writer appended
    finally:
        store.close()


@pytest.mark.slow
def test_wal_with_a_live_writer_read_by_nobody(readonly_folder):
    """A writer (root) keeps records in its -wal; nobody, who cannot write the folder
    or any of the files, still sees them."""
    readonly_folder.chmod(0o755)
    path = readonly_folder / "live.db"
    store, head = _writer_with_unchecked_wal(path, "pool.w")
    try:
        readonly_folder.chmod(0o555)
        names = sorted(p.name for p in readonly_folder.iterdir())
        main_bytes = path.read_bytes()
        got = read_as_nobody(path)
        assert got["pools"]["pool.w"]["head"] == head
        assert got["anomalies"] == []
        assert cli_as_nobody("doctor", str(path)).returncode == 0
        assert sorted(p.name for p in readonly_folder.iterdir()) == names
        assert path.read_bytes() == main_bytes
    finally:
        store.close()
        readonly_folder.chmod(0o755)


#: As nobody: the HTML report and a Parquet export of a read-only database,
#: written to a folder of nobody's own, then every notebook executed with the
#: sample it finds in a read-only tree.  Prints a JSON summary.
MAIN_JOBS = r"""
import json, os, sys, pathlib
from click.testing import CliRunner
from poolscope.cli import cli

db, out, notebooks = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
runner = CliRunner()
report = runner.invoke(cli, ["report", db, "-o", str(out / "report.html")])
export = runner.invoke(cli, ["export", db, str(out / "export")])
results = {"uid": os.getuid(), "report": report.exit_code, "export": export.exit_code,
           "report_error": repr(report.exception), "notebooks": {}}
# the cells run in an in-process IPython shell, top to bottom (quicker than a
# kernel; tests/test_notebooks.py runs them in kernels)
import nbformat
import matplotlib
matplotlib.use("Agg")
from IPython.core.interactiveshell import InteractiveShell

class Shell(InteractiveShell):
    def enable_gui(self, gui=None):  # `%matplotlib inline` without a front end
        pass

# A notebook cell that runs the `poolscope` console script gets it run in this
# process instead, by click's runner, with the same argv (the console script
# itself is tested as nobody in test_oracle_read_only_as_nobody, exec'd by setpriv).
import subprocess
_run = subprocess.run

# shutil.which() checks with the real ids (os.access's default), which ignores the
# reader's CAP_DAC_READ_SEARCH (see as_nobody) that lets exec reach a checkout under
# a 0700 folder: look with the effective ids and capabilities, as exec does.
import shutil

def which(cmd, mode=os.F_OK | os.X_OK, path=None):
    for folder in (os.environ.get("PATH", os.defpath) if path is None else path).split(os.pathsep):
        candidate = os.path.join(folder, cmd)
        if os.path.isfile(candidate) and os.access(candidate, mode, effective_ids=True):
            return candidate
    return None

shutil.which = which

def run_in_process(command, *args, **kwargs):
    if isinstance(command, (list, tuple)) and os.path.basename(str(command[0])) == "poolscope":
        result = runner.invoke(cli, [str(c) for c in command[1:]])
        if kwargs.get("check") and result.exit_code:
            raise subprocess.CalledProcessError(result.exit_code, command, result.stdout, result.stderr)
        return subprocess.CompletedProcess(command, result.exit_code, result.stdout, result.stderr)
    return _run(command, *args, **kwargs)

subprocess.run = run_in_process

for path in sorted(notebooks.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    Shell.clear_instance()
    shell = Shell.instance()
    os.chdir(notebooks)
    errors = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outcome = shell.run_cell(cell.source, silent=True)
        if not outcome.success:
            errors.append(repr(outcome.error_in_exec or outcome.error_before_exec)[:300])
            break
    results["notebooks"][path.name] = errors
print(json.dumps(results))
"""


@pytest.mark.slow
def test_report_export_and_notebooks_as_nobody_on_a_read_only_tree(readonly_folder, sample_db):
    """The main job (report), export and the notebooks, as an unprivileged user,
    against a sample in a folder nobody can write: they work and change nothing."""
    tree = readonly_folder  # plays the repository: notebooks/ and sample_data/ side by side
    (tree / "sample_data").mkdir()
    shutil.copy(SAMPLE_DB, tree / "sample_data" / "demo.db")
    (tree / "notebooks").mkdir()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, tree / "notebooks" / notebook.name)
    for folder in (tree / "sample_data", tree / "notebooks"):
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
    tree.chmod(0o555)
    before = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}

    scratch = Path(tempfile.mkdtemp(prefix="poolscope-nobody-"))
    os.chown(scratch, NOBODY, NOBODY)
    try:
        result = as_nobody(
            [
                sys.executable,
                "-c",
                MAIN_JOBS,
                str(tree / "sample_data" / "demo.db"),
                str(scratch),
                str(tree / "notebooks"),
            ],
            extra_env={
                "HOME": str(scratch / "home"),
                "JUPYTER_RUNTIME_DIR": str(scratch / "rt"),
                "IPYTHONDIR": str(scratch / "ipy"),
                "MPLCONFIGDIR": str(scratch / "mpl"),
            },
        )
        assert result.returncode == 0, result.stderr[-3000:]
        got = json.loads(result.stdout.strip().splitlines()[-1])
        assert got["uid"] == READER_UID
        assert got["report"] == 0, got["report_error"]
        assert got["export"] == 0
        html = (scratch / "report.html").read_text(encoding="utf-8")
        assert all(pool_id in html for pool_id in sample_db.pool_ids)
        assert sorted(p.name for p in (scratch / "export").iterdir()) == [
            "members.parquet",
            "messages.parquet",
            "records.parquet",
            "summary.parquet",
            "wakes.parquet",
        ]
        assert len(got["notebooks"]) == len(list((ROOT / "notebooks").glob("*.ipynb"))) and all(
            errors == [] for errors in got["notebooks"].values()
        ), got["notebooks"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    after = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert after == before


CACHE_READER = r"""
import json, sys, warnings
import poolscope
from poolscope.cache import CacheWarning, CachedEntries
db_path, other_path, cache_dir, pool_id = sys.argv[1:5]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with poolscope.open(db_path, cache=cache_dir) as db:
        history = db.pool(pool_id)
        hit = isinstance(history.index.entries, CachedEntries)
        snapshot = history.snapshot().to_json()
    with poolscope.open(other_path, cache=cache_dir) as db:
        miss = isinstance(db.pool(pool_id).index.entries, CachedEntries)
print(json.dumps({"uid": __import__("os").geteuid(), "hit": hit, "miss_cached": miss, "snapshot": snapshot,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]}))
"""


def test_a_read_only_cache_folder_read_by_nobody(readonly_folder):
    """An entry in a cache folder the reader cannot write is still used; a pool it has
    no entry for is read without a cache (one warning); nothing in the folder changes."""
    from poolscope.generate import generate

    db_path, other = readonly_folder / "gen.db", readonly_folder / "other.db"
    generate(db_path, pools=1, records=600, seed=5)
    shutil.copy(db_path, other)
    cache = readonly_folder / "cache"
    with poolscope.open(db_path, cache=cache) as db:
        pool_id = db.pool_ids[0]
        expected = db.pool(pool_id).snapshot().to_json()  # saves the entry
    assert any(cache.iterdir())
    for path in cache.iterdir():
        path.chmod(0o444)
    cache.chmod(0o555)
    for path in (db_path, other):
        path.chmod(0o444)
    readonly_folder.chmod(0o555)
    before = {p.name: (p.stat().st_size, p.read_bytes()) for p in cache.iterdir()}
    result = as_nobody(
        [sys.executable, "-c", CACHE_READER, str(db_path), str(other), str(cache), pool_id],
        extra_env={"POOLSCOPE_CACHE_MIN_RECORDS": "0"},  # a pool this small is saved too: the folder refuses it
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["uid"] == READER_UID
    assert got["hit"] and not got["miss_cached"]
    assert got["snapshot"] == expected
    assert len(got["warnings"]) == 1 and str(cache) in got["warnings"][0]
    assert {p.name: (p.stat().st_size, p.read_bytes()) for p in cache.iterdir()} == before
    cache.chmod(0o755)
    for path in cache.iterdir():
        path.chmod(0o644)


def test_a_kind_the_sdk_does_not_write_is_read_as_asked_with_a_warning(tmp_path):
    """records(kinds=...) with a name that is no SDK kind (a typo, or the kind of a
    newer SDK's records) warns, and reads exactly the records stored with it."""
    path = tmp_path / "kinds.db"
    shutil.copyfile(SAMPLE_DB, path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE agent_pool_records SET kind = 'pool_archived', payload_json = ? WHERE pool_id = ? AND seq = 7",
            ('{"type":"pool_archived"}', "pool.alpha"),
        )
    conn.close()
    with poolscope.open(path) as db:
        history = db.pool("pool.alpha")
        with pytest.warns(UserWarning, match="'pool_archvied' is not a record kind of the SDK"):
            assert history.records(kinds="pool_archvied") == []
        with pytest.warns(UserWarning, match="'pool_archived' is not a record kind"):
            found = history.records(kinds=["pool_archived", "wake"])
        assert [r.cursor for r in found if r.kind == "pool_archived"] == [7]
        archived = next(r for r in found if r.cursor == 7)
        assert archived.problem is not None  # a kind the SDK cannot read: damaged, but listed
        assert len(found) == 1 + sum(r.kind == "wake" for r in history.records())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert {r.kind for r in history.records(kinds=["wake", "member_left"])} == {"wake", "member_left"}


def _header_readers(path: Path) -> dict[str, Any]:
    """Every place poolscope reads a database file's first bytes itself (not through SQLite)."""
    import importlib

    from poolscope import cache, output, source

    discover = importlib.import_module("poolscope.fleet.discover")

    return {
        "read_start": lambda: source.read_start(path),
        "check_file": lambda: source.check_file(path),
        "cache.header_fields": lambda: cache.header_fields(path),
        "cache._file_state": lambda: cache._file_state(path),
        "output._starts_like_sqlite": lambda: output._starts_like_sqlite(path),
        "fleet discover": lambda: not discover._readable_and_not_sqlite(str(path)),
    }


@pytest.mark.parametrize("reader", list(_header_readers(Path("x"))))
def test_reading_a_header_keeps_the_locks_sqlite_holds_in_this_process(tmp_path, small_db, reader):
    """POSIX locks belong to the process and the file: closing any descriptor of
    the file drops every lock the process holds on it.  With a write transaction
    open in this process (a rollback journal: SQLite holds the file's exclusive
    lock), reading the header must not let another process read (or write) under
    it -- the bytes are read through SQLite's own descriptor, which stays open."""
    path = tmp_path / "pool.db"
    shutil.copy(small_db, path)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=DELETE")
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE agent_pool_event_seq SET seq = seq + 1")
        header = _header_readers(path)[reader]()
        assert header not in (None, False, b"")
        code = (
            "import sqlite3, sys; "
            "sqlite3.connect(sys.argv[1], timeout=0.2).execute('SELECT count(*) FROM agent_pool_records').fetchall()"
        )
        other = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert other.returncode != 0 and "locked" in other.stderr, other
