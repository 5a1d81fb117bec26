"""Hostile files: a catalogue of files as they arrive from machines nobody here
controls, and the promise poolscope keeps on each.

This is a sibling of ``tests/test_damage.py`` (damaged *content*); the rows
here are hostile *files and layouts*: symlinks, WAL files copied without
their ``-shm``, FIFOs and devices, views that never end or return huge
values.  Each row states what must be read and that nothing beside the file
changes: the listing of every folder involved and every byte in it are
compared before and after, the CLI runs in a subprocess with a time limit,
and every test has a time limit of its own (pytest-timeout), so that a hang
fails instead of stalling the run.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import SAMPLE_DB, append_copy, tree_state

import poolscope
from poolscope import wire

#: Seconds after which a call has hung.
HANG = 60
pytestmark = pytest.mark.timeout(2 * HANG, method="thread")

ORACLE_DB = Path(__file__).parent / "sdk_histories" / "conformance" / "pool.db"
WAL_ONLY = "pool.only.in.the.wal"


# ------------------------------------------------------------------ builders
def wal_database(folder: Path, name: str = "pool.db", *, shm: bool = False) -> Path:
    """A copy of the oracle's database in WAL mode whose ``-wal`` holds one more
    pool (``WAL_ONLY``) not yet checkpointed, copied as a backup tool would
    while the writer was running (with or without its ``-shm``)."""
    folder.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f".{folder.name}-writer"
    work.mkdir(exist_ok=True)
    live = work / name
    shutil.copy(ORACLE_DB, live)
    conn = sqlite3.connect(live, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        for seq, kind, payload in (
            (1, "pool_opened", {"type": "pool_opened", "config": wire.canonical_config({})}),
            (2, "pool_created", {"type": "pool_created"}),
        ):
            conn.execute(
                "INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (WAL_ONLY, seq, kind, wire.dumps(payload))
            )
        for suffix in ("", "-wal") + (("-shm",) if shm else ()):
            shutil.copyfile(str(live) + suffix, folder / (name + suffix))
    finally:
        conn.close()
    shutil.rmtree(work)
    return folder / name


def oracle_pools() -> list[str]:
    conn = sqlite3.connect(f"file:{ORACLE_DB}?immutable=1", uri=True)
    try:
        return sorted(row[0] for row in conn.execute("SELECT DISTINCT pool_id FROM agent_pool_records"))
    finally:
        conn.close()


@dataclass
class Layout:
    """What a builder made: the path to open, the folders to watch, what must be read."""

    path: Path
    folders: list[Path]
    pools: list[str] | None = None
    #: the exception ``poolscope.open`` raises (None: it opens)
    opens: type | None = None
    #: words the error message must contain
    says: tuple[str, ...] = ()
    #: keyword arguments for ``poolscope.open``
    options: dict = field(default_factory=dict)


def wal_without_shm(tmp: Path) -> Layout:
    path = wal_database(tmp / "data")
    return Layout(path, [tmp / "data"], oracle_pools() + [WAL_ONLY])


def wal_with_copied_shm(tmp: Path) -> Layout:
    path = wal_database(tmp / "data", shm=True)
    return Layout(path, [tmp / "data"], oracle_pools() + [WAL_ONLY])


def wal_with_read_only_shm(tmp: Path) -> Layout:
    path = wal_database(tmp / "data", shm=True)
    os.chmod(str(path) + "-shm", 0o444)
    return Layout(path, [tmp / "data"], oracle_pools() + [WAL_ONLY])


def wal_in_read_only_folder(tmp: Path) -> Layout:
    path = wal_database(tmp / "data")
    os.chmod(path.parent, 0o555)
    return Layout(path, [tmp / "data"], oracle_pools() + [WAL_ONLY])


def empty_wal(tmp: Path) -> Layout:
    """A WAL file whose writer closed cleanly but left an empty ``-wal``."""
    path = tmp / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    shutil.copy(ORACLE_DB, path)
    Path(str(path) + "-wal").write_bytes(b"")
    return Layout(path, [path.parent], oracle_pools())


def symlink_to_wal_elsewhere(tmp: Path) -> Layout:
    """The link's folder has no -wal; the target's has one: its records must be read."""
    target = wal_database(tmp / "target")
    (tmp / "links").mkdir(parents=True)
    link = tmp / "links" / "pool.db"
    link.symlink_to(target)
    return Layout(link, [tmp / "target", tmp / "links"], oracle_pools() + [WAL_ONLY])


def symlink_beside_a_stray_wal(tmp: Path) -> Layout:
    """The reverse: a -wal beside the link (of another file), none beside the
    target: the target is read as it is, and nothing is created beside it."""
    (tmp / "target").mkdir(parents=True)
    target = tmp / "target" / "real.db"
    shutil.copy(ORACLE_DB, target)
    stray = wal_database(tmp / "links")
    stray.unlink()
    link = tmp / "links" / "pool.db"
    link.symlink_to(target)
    return Layout(link, [tmp / "target", tmp / "links"], oracle_pools())


def relative_symlink_chain(tmp: Path) -> Layout:
    """Two relative links in a row, the last one into a folder with the -wal."""
    wal_database(tmp / "store")
    (tmp / "a").mkdir(parents=True)
    (tmp / "a" / "first.db").symlink_to(Path("..") / "store" / "pool.db")
    (tmp / "b").mkdir(parents=True)
    (tmp / "b" / "second.db").symlink_to(Path("..") / "a" / "first.db")
    return Layout(tmp / "b" / "second.db", [tmp / "store", tmp / "a", tmp / "b"], oracle_pools() + [WAL_ONLY])


def fifo(tmp: Path) -> Layout:
    path = tmp / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    return Layout(path, [path.parent], opens=poolscope.NotADatabaseError, says=("FIFO", "not a regular file"))


def symlink_to_fifo(tmp: Path) -> Layout:
    fifo(tmp)
    link = tmp / "data" / "link.db"
    link.symlink_to("pool.db")
    return Layout(link, [link.parent], opens=poolscope.NotADatabaseError, says=("FIFO",))


def character_device(tmp: Path) -> Layout:
    link = tmp / "data" / "null.db"
    link.parent.mkdir(parents=True)
    link.symlink_to("/dev/zero")
    return Layout(link, [link.parent], opens=poolscope.NotADatabaseError, says=("character device",))


def dangling_symlink(tmp: Path) -> Layout:
    link = tmp / "data" / "pool.db"
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp / "data" / "gone.db")
    return Layout(link, [link.parent], opens=poolscope.DatabaseNotFoundError, says=("symlink",))


def endless_view(tmp: Path) -> Layout:
    """agent_pool_records is a view over a recursive CTE that never ends."""
    path = tmp / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE VIEW agent_pool_records AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
        "SELECT 'pool.a' AS pool_id, n AS seq, 'pool_created' AS kind, '{\"type\":\"pool_created\"}' AS payload_json "
        "FROM r WHERE n < 0"
    )
    conn.commit()
    conn.close()
    return Layout(path, [path.parent], opens=poolscope.QueryTimeoutError, says=("timeout",), options={"timeout": 0.5})


def endless_view_of_one_pool(tmp: Path) -> Layout:
    """A variant: the listing of pools answers, only one pool's rows never end."""
    path = tmp / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE pools (pool_id TEXT)")
    conn.execute("INSERT INTO pools VALUES ('pool.a')")
    conn.execute(
        "CREATE VIEW agent_pool_records AS SELECT pool_id, 1 AS seq, 'pool_created' AS kind, "
        '\'{"type":"pool_created"}\' AS payload_json FROM pools WHERE NOT EXISTS '
        "(WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT 1 FROM r WHERE n < 0)"
    )
    conn.commit()
    conn.close()
    return Layout(path, [path.parent], opens=poolscope.QueryTimeoutError, says=("timeout",), options={"timeout": 0.5})


def huge_view_value(tmp: Path) -> Layout:
    """A view whose payload is a 900 MB zeroblob: refused before it is materialised."""
    path = tmp / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE VIEW agent_pool_records AS SELECT 'pool.a' AS pool_id, 1 AS seq, 'pool_opened' AS kind, "
        "zeroblob(900000000) AS payload_json"
    )
    conn.commit()
    conn.close()
    return Layout(path, [path.parent], opens=poolscope.PayloadTooLargeError, says=("max_payload",))


LAYOUTS: list[Callable[[Path], Layout]] = [
    wal_without_shm,
    wal_with_copied_shm,
    wal_with_read_only_shm,
    wal_in_read_only_folder,
    empty_wal,
    symlink_to_wal_elsewhere,
    symlink_beside_a_stray_wal,
    relative_symlink_chain,
    fifo,
    symlink_to_fifo,
    character_device,
    dangling_symlink,
    endless_view,
    endless_view_of_one_pool,
    huge_view_value,
]


def state(folders: list[Path]) -> dict[str, tuple[list[str], dict[str, bytes]]]:
    """The listing of each folder (links and FIFOs included) and the bytes of its regular files."""
    out = {}
    for folder in folders:
        names = sorted(p.name for p in folder.iterdir())
        files = {
            name: data
            for name, data in tree_state(folder).items()
            if not (folder / name).is_symlink() and (folder / name).is_file()
        }
        out[str(folder)] = (names, files)
    return out


CLI = [sys.executable, "-c", "from poolscope.cli import cli; cli()"]


def run_cli(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=HANG, env=env)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temporary folder of its own for poolscope's private copies (must be empty afterwards)."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("build", LAYOUTS, ids=[b.__name__ for b in LAYOUTS])
def test_hostile_layout(build, tmp_path, private_tmp):
    layout = build(tmp_path / "case")
    before = state(layout.folders)
    try:
        if layout.opens is not None:
            with pytest.raises(layout.opens) as raised:
                poolscope.open(layout.path, **layout.options)
            text = str(raised.value)
            assert str(layout.path) in text and "\n" not in text
            for word in layout.says:
                assert word in text, text
        else:
            with poolscope.open(layout.path, **layout.options) as db:
                assert db.pool_ids == sorted(layout.pools)
                for history in db.pools():
                    assert history.snapshot().to_json()
                    assert len(history.records()) == len(history)
                assert not [a for a in db.check() if a.severity == "error"]
                only = db.pool(WAL_ONLY).records() if WAL_ONLY in layout.pools else []
                assert [r.kind for r in only] == (["pool_opened", "pool_created"] if only else [])
                assert db.refresh() == dict.fromkeys(db.pool_ids, 0)  # every pool was loaded above
        # the CLI, in a process of its own with a time limit
        if not layout.options:
            result = run_cli(["info", str(layout.path), "--json"], private_tmp)
            if layout.opens is None:
                assert result.returncode == 0, result.stderr
                assert [p["pool_id"] for p in json.loads(result.stdout)["pools"]] == sorted(layout.pools)
            else:
                assert result.returncode == 2 and "Traceback" not in result.stderr
                assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert state(layout.folders) == before, "poolscope changed a folder it read"
        assert list(private_tmp.iterdir()) == [], "a private copy was left behind"
    finally:
        for folder in layout.folders:
            os.chmod(folder, 0o755)


def test_a_live_writer_is_followed_through_its_shared_memory(tmp_path, private_tmp):
    """With a live writer (its -shm locked), poolscope reads like any SQLite
    reader: no private copy, records committed after open() are seen on
    refresh(), and neither the file nor its -wal is written."""
    path = tmp_path / "data" / "pool.db"
    path.parent.mkdir(parents=True)
    shutil.copy(ORACLE_DB, path)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute(
            "INSERT INTO agent_pool_records VALUES (?, 1, 'pool_created', '{\"type\":\"pool_created\"}')", (WAL_ONLY,)
        )
        db = poolscope.open(path)
        assert db.source.mode == "ro" and WAL_ONLY in db.pool_ids
        main = path.read_bytes()
        writer.execute(
            "INSERT INTO agent_pool_records VALUES (?, 2, 'pool_created', '{\"type\":\"pool_created\"}')", (WAL_ONLY,)
        )
        wal = Path(str(path) + "-wal").read_bytes()
        history = db.pool(WAL_ONLY)
        assert history.head == 2
        db.close()
        assert path.read_bytes() == main and Path(str(path) + "-wal").read_bytes() == wal
        assert list(private_tmp.iterdir()) == []
    finally:
        writer.close()


def test_a_copied_wal_is_read_through_a_private_copy_that_follows_changes(tmp_path, private_tmp):
    path = wal_database(tmp_path / "data")
    db = poolscope.open(path)
    assert db.source.mode == "private" and db.source.copy is not None and db.source.copy.parent == private_tmp
    assert db.pool(WAL_ONLY).head == 2
    # someone appends to the copied files (a later backup): refresh() reads a fresh copy
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(
        "INSERT INTO agent_pool_records VALUES (?, 3, 'pool_created', '{\"type\":\"pool_created\"}')", (WAL_ONLY,)
    )
    conn.close()  # checkpoints and removes the -wal: the file changed, the copy must follow
    assert db.refresh()[WAL_ONLY] == 1
    db.close()
    assert list(private_tmp.iterdir()) == []


def test_a_stored_payload_over_the_limit_is_one_damaged_record(tmp_path):
    """A table row larger than ``max_payload`` is a damaged record naming pool
    and seq; the other records and pools are read."""
    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id, seq, payload = conn.execute(
        "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = 'member_left' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    big = json.loads(payload)
    big["member"]["note"] = "x" * 300_000  # a field serde skips (an identifier is at most 512 bytes)
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (wire.dumps(big), pool_id, seq)
    )
    conn.close()
    before = tree_state(tmp_path)
    with poolscope.open(path, max_payload=100_000) as db:
        history = db.pool(pool_id)
        problem = history.index.problems[seq]
        assert isinstance(problem, poolscope.PayloadTooLargeError)
        assert problem.pool_id == pool_id and problem.seq == seq and f"seq {seq}" in str(problem)
        assert [r.cursor for r in history.records() if r.problem is None] == [s for s in history.index.seqs if s != seq]
        with pytest.raises(poolscope.PayloadTooLargeError):
            history.snapshot()
        assert history.snapshot(seq - 1).to_json()
        found = [(a.code, a.pool_id, a.seq) for a in db.check() if a.severity == "error"]
        assert found == [("payload_too_large", pool_id, seq)]
        for other in db.pool_ids:
            if other != pool_id:
                assert db.pool(other).snapshot().to_json()
    with poolscope.open(path) as db:  # under the default limit it is an ordinary record
        assert not db.pool(pool_id).index.problems
    assert tree_state(tmp_path) == before


# ------------------------------------------------- what the CLI prints and writes
#: Pool and run ids as an attacker would write them: an OSC 8 hyperlink, colours,
#: a forged line, a bidi override, a C1 control introducer, spreadsheet formulas.
EVIL_POOL = "pool.\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x1b[31m"
FORGED_LINE = "pool.b\nError: forged line"
BIDI = "pool.\u202eexe.txt"
C1 = "pool.\x9b31m"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
#: what a terminal may receive: no C0 control but newline, no DEL, no C1, no bidi control
RAW = __import__("re").compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


#: the formulas that are identifiers the SDK reads (its ids hold no control character)
ID_FORMULAS = [f for f in FORMULAS if wire.identifier_problem(f) is None]


@pytest.fixture(scope="module")
def evil_db(tmp_path_factory) -> Path:
    """Four pools with hostile ids; members whose run and agent ids are formulas.  The SDK's
    AgentPoolId refuses a control character, so the pools are written under plain ids and
    renamed in the file: a file can hold any pool id, and poolscope shows what it holds."""
    from poolscope import PoolStore

    path = tmp_path_factory.mktemp("evil") / "evil.db"
    store = PoolStore(path)
    hostile = {f"pool.hostile{i}": pool_id for i, pool_id in enumerate((EVIL_POOL, FORGED_LINE, BIDI, C1))}
    for pool_id in hostile:
        store.open_pool(pool_id, {})
        store.record_pool_created(pool_id)
        for i, formula in enumerate(ID_FORMULAS):
            store.join_member(pool_id, {"run_id": formula, "agent_id": f"{formula}.agent{i}"})
    store.close()
    conn = sqlite3.connect(path)
    for plain, pool_id in hostile.items():
        for table in ("agent_pool_records", "agent_pool_event_seq"):
            conn.execute(f"UPDATE {table} SET pool_id = ? WHERE pool_id = ?", (pool_id, plain))
    conn.commit()
    conn.close()
    return path


def test_cli_text_never_prints_control_or_bidi_characters(evil_db, tmp_path):
    from poolscope.terminal import escape

    info = run_cli(["info", str(evil_db)], tmp_path)
    assert info.returncode == 0, info.stderr
    assert not RAW.search(info.stdout + info.stderr)
    head = 2 + len(ID_FORMULAS)  # pool_opened, pool_created and the members
    for pool_id in (EVIL_POOL, FORGED_LINE, BIDI, C1):
        assert f"\n{escape(pool_id)}  head={head}  records={head}\n" in info.stdout
    assert f"pool.\\x1b]8;;http://evil.example\\x07click\\x1b]8;;\\x07\\x1b[31m  head={head}" in info.stdout
    assert f"pool.b\\nError: forged line  head={head}" in info.stdout and "pool.\\u202eexe.txt" in info.stdout
    assert "pool.\\x9b31m" in info.stdout
    # a pool that does not exist: one line, the known pools escaped
    missing = run_cli(["snapshot", str(evil_db), "--pool", "pool.nope"], tmp_path)
    assert missing.returncode == 2 and not RAW.search(missing.stderr)
    assert len(missing.stderr.splitlines()) == 1 and "pool.b\\\\nError: forged line" in missing.stderr
    # doctor's text
    doctor = run_cli(["doctor", str(evil_db)], tmp_path)
    assert not RAW.search(doctor.stdout + doctor.stderr)
    # ids with a control character are ones the SDK's PoolId refuses: errors (bad_pool_id), exit 1
    assert doctor.returncode == 1 and doctor.stdout.count("bad_pool_id") == 3, doctor.stdout
    # JSON stays exact: the SDK's record lines, byte for byte, and parseable --json
    records = run_cli(["records", str(evil_db), "--pool", FORGED_LINE], tmp_path)
    with poolscope.open(evil_db) as db:
        expected = "".join(r.to_json() + "\n" for r in db.pool(FORGED_LINE).records())
        snapshot = db.pool(EVIL_POOL).snapshot().to_json() + "\n"
    assert records.stdout == expected and '"pool_id":"pool.b\\nError: forged line"' in records.stdout
    assert run_cli(["snapshot", str(evil_db), "--pool", EVIL_POOL], tmp_path).stdout == snapshot
    shown = json.loads(run_cli(["info", str(evil_db), "--json"], tmp_path).stdout)
    assert sorted(p["pool_id"] for p in shown["pools"]) == sorted([EVIL_POOL, FORGED_LINE, BIDI, C1])


@pytest.mark.parametrize(
    "args",
    [
        ["history", "{db}", FORMULAS[0], "--pool", EVIL_POOL],
        ["history", "{db}", "\x1b[31mno.such.key", "--pool", EVIL_POOL],
        ["compare", "{db}::" + EVIL_POOL, "{db}::" + FORGED_LINE],
        ["fleet", "info", "{db}", "--workers", "1"],
        ["fleet", "doctor", "{db}", "--workers", "1"],
        ["records", "{db}", "--pool", EVIL_POOL, "--after", "99"],
        ["snapshot", "{db}", "--pool", BIDI, "--cursor", "99"],
    ],
    ids=["history", "history of a hostile key", "compare", "fleet info", "fleet doctor", "records", "snapshot"],
)
def test_other_commands_print_hostile_ids_escaped(evil_db, tmp_path, args):
    """The commands the issue does not name print hostile ids escaped too (text and errors),
    an error on one line."""
    from poolscope.terminal import escape

    result = run_cli([a.replace("{db}", str(evil_db)) for a in args], tmp_path)
    # fleet doctor: 1, for the ids with a control character, which the SDK's PoolId refuses (bad_pool_id)
    assert result.returncode == 1 if args[1] == "doctor" else result.returncode in (0, 2), result.stderr
    assert not RAW.search(result.stdout + result.stderr), (result.stdout + result.stderr)[:2000]
    if result.returncode == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if args[0] == "fleet" and args[1] == "info":
        assert escape(EVIL_POOL) in result.stdout and escape(FORGED_LINE) in result.stdout


def test_cache_and_fleet_export_lines_print_hostile_ids_and_paths_escaped(evil_db, tmp_path, monkeypatch):
    """``poolscope cache info`` lists pool ids as the files spelled them, and
    ``fleet export`` and ``cache clear`` print folders the user named: escaped."""
    cache = tmp_path / "cache\x1b[2J"
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(cache))
    with poolscope.open(evil_db) as db:
        for pool_id in db.pool_ids:
            db.pool(pool_id).snapshot()
    poolscope.cache.wait()
    for args in (["cache", "info"], ["fleet", "export", str(evil_db), str(tmp_path / "out\nx")], ["cache", "clear"]):
        result = run_cli(args, tmp_path)
        assert result.returncode == 0, result.stderr
        assert not RAW.search(result.stdout + result.stderr), result.stdout
        if args[1] == "info":
            assert "pool.b\\nError: forged line" in result.stdout and "cache\\x1b[2J" in result.stdout


def test_a_hostile_path_is_escaped_in_every_message(tmp_path):
    folder = tmp_path / "x\x1b[2Jy\nz"
    folder.mkdir()
    result = run_cli(["info", str(folder / "missing.db")], tmp_path)
    assert result.returncode == 2 and not RAW.search(result.stderr) and len(result.stderr.splitlines()) == 1
    assert "x\\x1b[2Jy\\nz" in result.stderr


def test_progress_bar_description_is_short_and_escaped(monkeypatch):
    from poolscope import load

    seen = {}

    class Bar:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr("tqdm.auto.tqdm", Bar)
    load._progress_bar("pool." + "\x1b[31m" + "x" * 10_000, 10, True)
    assert seen["desc"] == "loading pool.\\x1b[31m" + "x" * 26 + "…"
    assert len(seen["desc"]) <= 48 and not RAW.search(seen["desc"])


def test_report_warnings_are_escaped(evil_db, tmp_path):
    result = run_cli(["report", str(evil_db), "-o", str(tmp_path / "r.html"), "--pool", BIDI], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not RAW.search(result.stdout + result.stderr)


def test_csv_export_neutralises_formulas_and_keeps_parquet_and_json_exact(evil_db, tmp_path):
    import pandas as pd

    from poolscope.export import export

    with poolscope.open(evil_db) as db:
        csv = export(db, tmp_path / "csv", format="csv", pools=[BIDI])
        parquet = export(db, tmp_path / "parquet", format="parquet", pools=[BIDI])
        jsonl = export(db, tmp_path / "json", format="json", pools=[BIDI])
        members = db.pool(BIDI).members_df()
    assert [p.name for p in csv] == ["records.csv", "members.csv", "messages.csv", "wakes.csv", "summary.csv"]
    read = pd.read_csv(tmp_path / "csv" / "members.csv", keep_default_na=False)
    # every cell that started like a formula starts with ' now, and nothing else changed
    assert sorted(read["run_id"]) == sorted("'" + f for f in ID_FORMULAS)
    assert sorted(read["agent_id"]) == sorted(f"'{f}.agent{i}" for i, f in enumerate(ID_FORMULAS))
    assert set(read["pool_id"]) == {BIDI}
    with open(tmp_path / "csv" / "members.csv", encoding="utf-8", newline="") as handle:
        rows = list(__import__("csv").reader(handle))
    assert len(rows) == 1 + len(ID_FORMULAS)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert pd.read_parquet(parquet[1])["run_id"].tolist() == members["run_id"].tolist()
    assert [json.loads(line)["run_id"] for line in jsonl[1].read_text().splitlines()] == members["run_id"].tolist()


def test_csv_export_neutralises_formulas_in_every_file_and_column(tmp_path):
    """Not only members: a pool id, a sender, a target, a content ref, an idempotency key and
    a wake's run id that start like formulas are neutralised in every CSV file (summary,
    records, messages, wakes), categorical columns included; nothing else changes."""
    import csv

    from poolscope import PoolStore
    from poolscope.export import FORMULA_STARTS, export

    path = tmp_path / "formulas.db"
    pool_id = '=HYPERLINK("http://evil.example")'
    store = PoolStore(path)
    store.open_pool(pool_id, {})
    store.join_member(pool_id, {"run_id": "-run", "agent_id": "@agent"})
    message = {
        "message_id": "+msg",
        "from": "@SUM(A1)",
        "to": {
            "target": {"type": "run", "run_id": "-run"},
            "destination_ref": {
                "kind": "agent",
                "id": "-run",
                "privacy": "content_refs_only",
                "retention": "host_policy",
            },
        },
        "content_ref": "=content",
        "idempotency_key": "+idem",
    }
    store.record_message(pool_id, message, {"message_id": "+msg", "status": "accepted"})
    condition = {"condition_id": "=wake", "run_id": "-run", "idempotency_key": "-wake"}
    compiled = wire.compile_filter({})
    registration = {"condition_id": "=wake", "run_id": "-run", "status": "registered"}
    store.record_wake(pool_id, condition, compiled, registration)
    # a tab or a carriage return cannot begin an identifier the SDK reads (no control character):
    # only a pool id (which the file holds as it is) can, in a pool written under a plain id first
    for start in ("\t", "\r"):
        store.open_pool(f"pool.{ord(start)}", {})
    store.close()
    conn = sqlite3.connect(path)
    for start in ("\t", "\r"):
        conn.execute(
            "UPDATE agent_pool_records SET pool_id = ? WHERE pool_id = ?", (f"{start}pool", f"pool.{ord(start)}")
        )
    conn.commit()
    conn.close()
    with poolscope.open(path, cache=False) as db:
        written = export(db, tmp_path / "csv", format="csv")
    texts = set()
    for file in written:
        with open(file, encoding="utf-8", newline="") as handle:
            for row in list(csv.reader(handle))[1:]:
                for cell in row:
                    assert not cell.startswith(FORMULA_STARTS), (file.name, row)
                    texts.add(cell)
    expected = {"'" + pool_id, "'-run", "'@agent", "'+msg", "'@SUM(A1)", "'=content", "'+idem", "'=wake", "'-wake"}
    expected |= {"'\tpool", "'\rpool"}
    assert expected <= texts, expected - texts


def test_export_help_says_how_csv_is_neutralised():
    from click.testing import CliRunner

    from poolscope.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["export", "--help"]).output.split())
    assert "OWASP" in text and "leading '" in text


OUTPUT_CASES = [
    # (name, args after the DB, what must hold afterwards)
    "report into a missing folder",
    "export through a ../ path",
    "report onto a symlink",
    "export into a symlinked folder",
    "export onto a symlinked file",
    "report over someone else's file",
    "report over its own report",
    "export over earlier files",
    "export into /proc",
    "report under /dev/null",
    "export onto a full device",
    "records after beyond 64 bits",
    "records upto negative",
    "export upto beyond the heads",
    "fleet report onto a symlink",
    "fleet report over someone else's file",
    "fleet report over its own report",
    "fleet report under /dev/null",
    "fleet report with a newline in its name",
    "fleet export under a file",
    "fleet export upto negative",
    "report over the database it reads",
    "export over the database it reads",
    "report onto a database's -wal",
    "export into a folder named as a database's -wal",
    "fleet export under a database's -journal",
    "report --force onto a FIFO",
    "fleet report --force onto a FIFO",
]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_paths(case, tmp_path):
    db = str(ORACLE_DB)
    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    pools = oracle_pools()

    def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        for word in words:
            assert word in result.stderr, result.stderr

    if case == "report into a missing folder":
        result = run_cli(["report", db, "-o", str(work / "a" / "b" / "r.html"), "--pool", pools[0]], tmp_path)
        assert result.returncode == 0, result.stderr and (work / "a" / "b" / "r.html").is_file()
    elif case == "export through a ../ path":
        result = run_cli(["export", db, str(work / "a" / ".." / "b" / ".." / "out"), "--format", "json"], tmp_path)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in work.iterdir()) == ["out"]
    elif case == "report onto a symlink":
        (work / "r.html").symlink_to(victim)
        one_line_error(run_cli(["report", db, "-o", str(work / "r.html")], tmp_path), "symlink")
    elif case == "export into a symlinked folder":
        (work / "out").symlink_to(tmp_path, target_is_directory=True)
        one_line_error(run_cli(["export", db, str(work / "out")], tmp_path), "symlink")
    elif case == "export onto a symlinked file":
        (work / "out").mkdir()
        (work / "out" / "summary.csv").symlink_to(victim)
        one_line_error(run_cli(["export", db, str(work / "out"), "--format", "csv"], tmp_path), "symlink")
        one_line_error(run_cli(["export", db, str(work / "out"), "--format", "csv", "--force"], tmp_path), "symlink")
        assert sorted(p.name for p in (work / "out").iterdir()) == ["summary.csv"]
    elif case == "report over someone else's file":
        (work / "r.html").write_text("<html>mine</html>")
        one_line_error(run_cli(["report", db, "-o", str(work / "r.html")], tmp_path), "--force")
        assert (work / "r.html").read_text() == "<html>mine</html>"
        result = run_cli(["report", db, "-o", str(work / "r.html"), "--force", "--pool", pools[0]], tmp_path)
        assert result.returncode == 0 and "poolscope report" in (work / "r.html").read_text()
    elif case == "report over its own report":
        for _ in range(2):
            result = run_cli(["report", db, "-o", str(work / "r.html"), "--pool", pools[0]], tmp_path)
            assert result.returncode == 0, result.stderr
    elif case == "export over earlier files":
        assert run_cli(["export", db, str(work / "out")], tmp_path).returncode == 0
        before = tree_state(work / "out")
        one_line_error(run_cli(["export", db, str(work / "out")], tmp_path), "--force")
        assert tree_state(work / "out") == before
        assert run_cli(["export", db, str(work / "out"), "--force"], tmp_path).returncode == 0
    elif case == "export into /proc":
        one_line_error(run_cli(["export", db, "/proc/poolscope-x"], tmp_path), "/proc/poolscope-x")
    elif case in ("report --force onto a FIFO", "fleet report --force onto a FIFO"):
        # a device or a FIFO in OUT's place was replaced by a file with --force (as root, /dev/null itself)
        os.mkfifo(work / "pipe")
        command = ["report"] if case.startswith("report") else ["fleet", "report"]
        one_line_error(run_cli([*command, db, "-o", str(work / "pipe"), "--force"], tmp_path), "not a regular file")
        assert stat.S_ISFIFO(os.lstat(work / "pipe").st_mode)
    elif case == "report under /dev/null":
        one_line_error(run_cli(["report", db, "-o", "/dev/null/x.html"], tmp_path), "/dev/null")
    elif case == "export onto a full device":
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full")
        (work / "out").mkdir()
        (work / "out" / "records.parquet").symlink_to("/dev/full")
        one_line_error(run_cli(["export", db, str(work / "out"), "--force"], tmp_path), "symlink")
    elif case == "records after beyond 64 bits":
        one_line_error(run_cli(["records", db, "--pool", pools[0], "--after", "1" + "0" * 23], tmp_path), "after")
    elif case == "records upto negative":
        one_line_error(run_cli(["records", db, "--pool", pools[0], "--upto", "-1"], tmp_path), "upto")
    elif case == "export upto beyond the heads":
        one_line_error(run_cli(["export", db, str(work / "out"), "--upto", "99999999999999999999"], tmp_path), "upto")
        assert not (work / "out").exists()
    elif case == "fleet report onto a symlink":
        (work / "f.html").symlink_to(victim)
        one_line_error(run_cli(["fleet", "report", db, "-o", str(work / "f.html")], tmp_path), "symlink")
        one_line_error(run_cli(["fleet", "report", db, "-o", str(work / "f.html"), "--force"], tmp_path), "symlink")
    elif case == "fleet report over someone else's file":
        (work / "f.html").write_text("<html>mine</html>")
        one_line_error(run_cli(["fleet", "report", db, "-o", str(work / "f.html")], tmp_path), "--force")
        assert (work / "f.html").read_text() == "<html>mine</html>"
        assert run_cli(["fleet", "report", db, "-o", str(work / "f.html"), "--force"], tmp_path).returncode == 0
        assert "poolscope fleet report" in (work / "f.html").read_text()
    elif case == "fleet report over its own report":
        for _ in range(2):
            result = run_cli(["fleet", "report", db, "-o", str(work / "f.html")], tmp_path)
            assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in work.iterdir()) == ["f.html"]  # no temporary file left
    elif case == "fleet report under /dev/null":
        one_line_error(run_cli(["fleet", "report", db, "-o", "/dev/null/f.html"], tmp_path), "/dev/null")
    elif case == "fleet report with a newline in its name":
        result = run_cli(["fleet", "report", db, "-o", str(work / "a\nb.html")], tmp_path)
        assert result.returncode == 0 and result.stdout.count("\n") == 1, result.stdout
        assert (work / "a\nb.html").is_file()
    elif case == "fleet export under a file":
        one_line_error(run_cli(["fleet", "export", db, str(victim / "out")], tmp_path), "folder")
    elif case == "fleet export upto negative":
        one_line_error(run_cli(["fleet", "export", db, str(work / "out"), "--upto", "-1"], tmp_path), "upto")
        assert not (work / "out").exists()
    elif case == "report over the database it reads":
        copy = work / "pool.db"
        shutil.copyfile(SAMPLE_DB, copy)
        for command in (["report", str(copy)], ["fleet", "report", str(copy)]):
            one_line_error(run_cli([*command, "-o", str(copy), "--force"], tmp_path), "SQLite database")
        assert copy.read_bytes() == SAMPLE_DB.read_bytes()
    elif case == "export over the database it reads":
        copy = work / "summary.csv"  # a database named as one of export's files, in the folder exported to
        shutil.copyfile(SAMPLE_DB, copy)
        one_line_error(run_cli(["export", str(copy), str(work), "--format", "csv", "--force"], tmp_path), "SQLite")
        assert copy.read_bytes() == SAMPLE_DB.read_bytes() and sorted(p.name for p in work.iterdir()) == [copy.name]
    elif case == "report onto a database's -wal":
        shutil.copyfile(SAMPLE_DB, work / "pool.db")
        one_line_error(run_cli(["report", db, "-o", str(work / "pool.db-wal")], tmp_path), "wal file")
        assert sorted(p.name for p in work.iterdir()) == ["pool.db"]
    elif case == "export into a folder named as a database's -wal":
        # a folder there makes the database unreadable, for SQLite and the SDK too (found by fuzzing)
        shutil.copyfile(SAMPLE_DB, work / "pool.db")
        one_line_error(run_cli(["export", db, str(work / "pool.db-wal"), "--format", "json"], tmp_path), "wal file")
        assert sorted(p.name for p in work.iterdir()) == ["pool.db"]
    elif case == "fleet export under a database's -journal":
        shutil.copyfile(SAMPLE_DB, work / "pool.db")
        result = run_cli(["fleet", "export", db, str(work / "pool.db-journal" / "out")], tmp_path)
        one_line_error(result, "journal file")
        assert sorted(p.name for p in work.iterdir()) == ["pool.db"]
    assert victim.read_text() == "not yours"
    assert list((tmp_path / "tmp").iterdir() if (tmp_path / "tmp").exists() else []) == []


def test_writing_to_a_full_device_is_one_error(tmp_path, monkeypatch):
    """A full device (ENOSPC while writing): one OutputError, no half-written file left."""
    import errno

    from poolscope import output

    target = tmp_path / "out" / "r.html"
    with pytest.raises(poolscope.OutputError) as raised, output.writing(target) as tmp:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "no space left" in str(raised.value) and str(target) in str(raised.value)
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_a_value_too_deep_to_write_is_a_typed_error_naming_its_record(tmp_path):
    """A run_message whose correlation nests 300 levels (serde reads 127): a damaged
    record -- its Record has the problem (to_json raises CorruptRecordError naming pool
    and seq), a snapshot holding it raises the same, doctor reports it (too_deep); the
    other pools and the snapshot before it answer."""
    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id, seq, text = conn.execute(
        "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = 'run_message' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    payload = json.loads(text)
    deep: object = "bottom"
    for _ in range(300):
        deep = [deep]
    payload["stored"]["message"]["correlation"] = {"entries": [deep]}
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (json.dumps(payload, separators=(",", ":")), pool_id, seq),
    )
    conn.close()
    with poolscope.open(path) as db:
        history = db.pool(pool_id)
        record = history.records(after=seq - 1, upto=seq)[0]
        assert record.payload is None and record.problem.code == "too_deep"
        with pytest.raises(poolscope.CorruptRecordError) as raised:
            record.to_json()
        assert raised.value.pool_id == pool_id and raised.value.seq == seq
        with pytest.raises(poolscope.CorruptRecordError) as raised:
            history.snapshot(seq).to_json()
        assert raised.value.pool_id == pool_id and raised.value.seq == seq and str(path) in str(raised.value)
        assert history.snapshot(seq - 1).to_json()
        assert [(a.code, a.pool_id, a.seq, a.severity) for a in db.check()] == [("too_deep", pool_id, seq, "error")]
        for other in db.pool_ids:
            if other != pool_id:
                assert db.pool(other).snapshot().to_json()


#: An ``EntityRef`` the SDK reads (a run address's related ref).
RELATED = {"kind": "agent", "id": "agent.x", "privacy": "content_refs_only"}


def nested_lists(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _set(path_in_payload: tuple, value: object) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        holder = payload
        for step in path_in_payload[:-1]:
            holder = holder[step]
        holder[path_in_payload[-1]] = value

    return edit


MSG = ("stored", "message")
#: (name, kind, how the stored text is changed, the code doctor reports or None: clean).  Levels
#: count from the payload's own object: stored 2, message 3, to/correlation 4, target 5, ...
SERDE_TABLE = [
    (
        "type twice at the top, equal values",
        "run_message",
        ("raw", '{"type":"run_message"', '{"type":"run_message","type":"run_message"'),
        "duplicate_key",
    ),
    (
        "message_id twice inside stored.message",
        "run_message",
        ("raw", '"message":{', '"message":{"message_id":"msg.other",'),
        "duplicate_key",
    ),
    (
        "status twice inside the receipt, equal values",
        "run_message",
        ("raw", '"receipt":{', '"receipt":{"status":"delivered",'),
        "delivered_dup",
    ),
    (
        "run_id twice inside a wake's condition",
        "wake",
        ("raw", '"condition":{', '"condition":{"run_id":"run.other",'),
        "duplicate_key",
    ),
    # (in a field serde skips: correlation entries are CorrelationEntry objects, a list there is
    # refused for its type before it is deep)
    (
        "a correlation's unknown field 128 levels deep",
        "run_message",
        ("set", (*MSG, "correlation"), {"note": nested_lists(124)}),
        "too_deep",
    ),
    (
        "a correlation's unknown field 127 levels deep (serde's limit)",
        "run_message",
        ("set", (*MSG, "correlation"), {"note": nested_lists(123)}),
        None,
    ),
    (
        "to.target 128 levels deep",
        "run_message",
        ("set", (*MSG, "to", "target", "note"), nested_lists(123)),
        "too_deep",
    ),
    (
        "destination_ref 128 levels deep",
        "run_message",
        ("set", (*MSG, "to", "destination_ref", "note"), nested_lists(123)),
        "too_deep",
    ),
    (
        "related_refs 128 levels deep",
        "run_message",
        ("set", (*MSG, "to", "related_refs"), [{**RELATED, "note": nested_lists(122)}]),
        "too_deep",
    ),
    (
        "related_refs 127 levels deep (serde's limit)",
        "run_message",
        ("set", (*MSG, "to", "related_refs"), [{**RELATED, "note": nested_lists(121)}]),
        None,
    ),
    # fields serde requires in the parts a load does not read
    ("a message without correlation", "run_message", ("pop", (*MSG, "correlation")), "bad_shape"),
    ("a message without to.destination_ref", "run_message", ("pop", (*MSG, "to", "destination_ref")), "bad_shape"),
    ("a wake condition without filter", "wake", ("pop", ("stored", "condition", "filter")), "bad_shape"),
    # a type that is no string (an array, an object, a number): damaged, never a TypeError
    ("a message whose type is an array", "run_message", ("set", ("type",), [["run_message"]]), "bad_shape"),
    ("a member_left whose type is an object", "member_left", ("set", ("type",), {"a": [1]}), "bad_shape"),
    ("a member_joined whose type is a number", "member_joined", ("set", ("type",), 7), "bad_shape"),
    (
        "a wake's compiled filter 128 levels deep",
        "wake",
        ("set", ("stored", "compiled_filter", "note"), nested_lists(125)),
        "too_deep",
    ),
]


@pytest.mark.parametrize("name,kind,change,code", SERDE_TABLE, ids=[row[0] for row in SERDE_TABLE])
def test_a_message_or_wake_serde_cannot_read_is_named_wherever_it_is_read_whole(tmp_path, name, kind, change, code):
    """A message or wake with a repeated key, nesting past serde's limit or a required
    field missing in a part the index does not keep is damaged like any record the SDK
    cannot read: doctor reports it (an error naming pool and seq), its Record and a strict
    snapshot holding it raise a typed error naming pool and seq, a lenient snapshot skips
    it, the frame shows it as damaged; a payload nested up to the limit is clean; the
    snapshot before it, the other pools and the folder are untouched."""
    if code == "delivered_dup":  # the receipt's status repeated with the value it already has
        code = "duplicate_key"
        status = "delivered"
    else:
        status = None
    work = tmp_path / "work"
    work.mkdir()
    path = work / "pool.db"
    shutil.copy(ORACLE_DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    rows = conn.execute(
        "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = ? ORDER BY seq DESC", (kind,)
    ).fetchall()
    if status is not None:
        rows = [r for r in rows if json.loads(r[2])["stored"]["receipt"]["status"] == status]
    pool_id, seq, text = rows[0]
    if change[0] == "raw":
        assert change[1] in text
        changed = text.replace(change[1], change[2], 1)
    elif change[0] == "pop":
        payload = json.loads(text)
        holder = payload
        for step in change[1][:-1]:
            holder = holder[step]
        del holder[change[1][-1]]
        changed = wire.dumps(payload)
    else:
        payload = json.loads(text)
        _set(change[1], change[2])(payload)
        changed = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (changed, pool_id, seq)
    )
    conn.close()
    before = (sorted(p.name for p in work.iterdir()), tree_state(work))
    with poolscope.open(path, cache=False) as db:
        history = db.pool(pool_id)
        found = [(a.code, a.pool_id, a.seq, a.severity) for a in db.check()]
        record = history.records(after=seq - 1, upto=seq)[0]
        if code is None:
            assert found == []
            assert record.problem is None and record.to_json() == wire.dumps(record.to_dict())
            # as the SDK's watch() writes it back: a field serde skips is not written
            assert json.loads(record.to_json())["payload"] == wire.canonical_payload(kind, json.loads(changed))
            assert history.snapshot(seq).to_json()
        else:
            assert found == [(code, pool_id, seq, "error")]
            assert record.payload is None and record.problem.code == code
            with pytest.raises(poolscope.CorruptRecordError) as raised:
                record.to_dict()
            assert (raised.value.pool_id, raised.value.seq) == (pool_id, seq)
            with pytest.raises(poolscope.CorruptRecordError) as raised:
                history.snapshot(seq).to_json()
            assert (raised.value.pool_id, raised.value.seq, raised.value.code) == (pool_id, seq, code)
            assert str(path) in str(raised.value) and f"seq {seq}" in str(raised.value)
            # kept out of the fold like any damaged record: skipped when not strict, a damaged row in the frame
            lenient, before_it = history.snapshot(seq, strict=False).to_dict(), history.snapshot(seq - 1).to_dict()
            assert (lenient.pop("cursor"), before_it.pop("cursor")) == ({"sequence": seq}, {"sequence": seq - 1})
            assert lenient == before_it
            frame = history.records_df()
            row = frame[frame["seq"] == seq]
            assert row["kind"].tolist() == ["damaged"] and row["problem"].tolist() == [record.problem.problem]
        for other in db.pool_ids:
            if other != pool_id:
                assert db.pool(other).snapshot().to_json()
    if code is not None:
        doctor = run_cli(["doctor", str(path), "--json"], tmp_path)
        assert doctor.returncode == 1, doctor.stderr
        reported = json.loads(doctor.stdout)["anomalies"]
        assert [(a["code"], a["pool_id"], a["seq"]) for a in reported] == [(code, pool_id, seq)]
    assert (sorted(p.name for p in work.iterdir()), tree_state(work)) == before


def test_u64_values_past_int64_are_missing_in_the_frames_and_exact_elsewhere(tmp_path):
    """expires_at_millis = 2^64-1, a response timeout of 2^64-1, a wake timeout of 2^63 (all valid
    u64): the frames show them missing (no OverflowError), records and snapshots keep them
    exactly, doctor warns (out_of_range) naming pool and seq, report and export write."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    changed = {}
    for kind, edit in (
        ("run_message", lambda p: p["stored"]["message"].update(expires_at_millis=2**64 - 1)),
        (
            "run_message",
            lambda p: p["stored"]["message"].update(
                response_contract={"expected_responses": 2**32 - 1, "timeout_millis": 2**64 - 1}
            ),
        ),
        ("wake", lambda p: p["stored"]["condition"].update(timeout_millis=2**63)),
    ):
        pool_id, seq, text = conn.execute(
            "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (kind, len(changed)),
        ).fetchone()
        payload = json.loads(text)
        edit(payload)
        payload["stored"]["message" if kind == "run_message" else "condition"] = (
            wire.canonical_message(payload["stored"]["message"])
            if kind == "run_message"
            else wire.canonical_condition(payload["stored"]["condition"])
        )
        changed[(pool_id, seq)] = wire.dumps(payload)
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
            (changed[(pool_id, seq)], pool_id, seq),
        )
    conn.close()
    with poolscope.open(path, cache=False) as db:
        found = sorted((a.pool_id, a.seq) for a in db.check() if a.code == "out_of_range")
        assert found == sorted(changed) and all(a.severity == "warning" for a in db.check())
        messages, wakes = db.messages_df(), db.wakes_df()
        for (pool_id, seq), text in changed.items():
            history = db.pool(pool_id)
            assert history.records(after=seq - 1, upto=seq)[0].to_dict()["payload"] == json.loads(text)
            assert json.loads(text)["stored"] in json.loads(history.snapshot(seq).to_json()).get(
                "messages" if '"type":"run_message"' in text else "wakes", []
            )
        huge = messages[messages["expires_at_millis"].isna() & messages["message_id"].notna()]
        assert len(messages) and messages["expires_at_millis"].dropna().le(2**63 - 1).all()
        assert wakes["timeout_millis"].dropna().le(2**63 - 1).all() and len(huge) >= 0
    runner = CliRunner()
    assert runner.invoke(cli, ["doctor", str(path)]).exit_code == 0
    assert runner.invoke(cli, ["report", str(path), "-o", str(tmp_path / "r.html")]).exit_code == 0
    assert runner.invoke(cli, ["export", str(path), str(tmp_path / "out"), "--format", "csv"]).exit_code == 0


def endless_view(path: Path) -> Path:
    """A database whose agent_pool_records is a view over an endless recursive CTE."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE agent_pool_event_seq (pool_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
        CREATE VIEW agent_pool_records(pool_id, seq, kind, payload_json) AS
        WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
        SELECT 'pool.p', n, 'pool_created', '{"type":"pool_created"}' FROM r WHERE n < 0;
        """
    )
    conn.close()
    return path


READING_COMMANDS = [
    ["info", "{db}"],
    ["info", "{db}", "--json"],
    ["records", "{db}", "--pool", "pool.p"],
    ["snapshot", "{db}", "--pool", "pool.p"],
    ["doctor", "{db}"],
    ["export", "{db}", "{out}"],
    ["report", "{db}", "-o", "{out}/r.html"],
    ["history", "{db}", "msg.x", "--pool", "pool.p"],
    ["compare", "{db}::pool.p", "{db}::pool.p"],
]


@pytest.mark.parametrize(
    "args", READING_COMMANDS, ids=[" ".join(a[:2]) if a[1].startswith("-") else a[0] for a in READING_COMMANDS]
)
def test_every_reading_command_stops_an_endless_query_at_its_timeout(tmp_path, args):
    """--timeout bounds every query: a view that never ends is one line, exit status 2,
    well before the default 5 s; nothing is written."""
    import time

    from click.testing import CliRunner

    from poolscope.cli import cli

    db = endless_view(tmp_path / "endless.db")
    out = tmp_path / "out"
    argv = [a.format(db=db, out=out) for a in args] + ["--timeout", "0.3"]
    start = time.monotonic()
    result = CliRunner().invoke(cli, argv)
    elapsed = time.monotonic() - start
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(result.stderr.strip().splitlines()) == 1 and "timeout" in result.stderr, result.stderr
    assert elapsed < 3.0, elapsed
    assert not out.exists()


@pytest.mark.parametrize("command", ["info", "doctor"])
def test_fleet_commands_take_the_timeout(tmp_path, command):
    """``poolscope fleet info/doctor --timeout``: the endless database is named unreadable (a
    timeout), within the bound."""
    import time

    from click.testing import CliRunner

    from poolscope.cli import cli

    db = endless_view(tmp_path / "endless.db")
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["fleet", command, str(db), "--timeout", "0.3", "--workers", "1"])
    assert time.monotonic() - start < HANG
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert "QueryTimeoutError" in result.output, result.output


def test_max_payload_on_the_command_line(tmp_path):
    """--max-payload: a payload larger than it is a damaged record named by pool and seq
    (records: exit 1 and the rest printed; snapshot at it: exit 2; doctor: payload_too_large)."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    pool_id, seq, text = conn.execute(
        "SELECT pool_id, seq, payload_json FROM agent_pool_records WHERE kind = 'run_message' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    payload = json.loads(text)
    # a plain String of the SDK (an identifier, such as content_ref, is at most 512 bytes)
    payload["stored"]["message"]["to"]["destination_ref"]["redacted_summary"] = "c" * 50_000
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (wire.dumps(payload), pool_id, seq),
    )
    heads = dict(conn.execute("SELECT pool_id, count(*) FROM agent_pool_records GROUP BY pool_id").fetchall())
    conn.close()
    runner = CliRunner()
    limit = ["--max-payload", "20000"]
    records = runner.invoke(cli, ["records", str(path), "--pool", pool_id, *limit])
    assert records.exit_code == 1 and f"seq {seq}" in records.stderr and str(path) in records.stderr
    assert len(records.stdout.splitlines()) == heads[pool_id] - 1
    assert runner.invoke(cli, ["records", str(path), "--pool", pool_id]).exit_code == 0  # the default limit reads it
    snapshot = runner.invoke(cli, ["snapshot", str(path), "--pool", pool_id, "--cursor", str(seq), *limit])
    assert snapshot.exit_code == 2 and f"seq {seq}" in snapshot.stderr and "max_payload" in snapshot.stderr
    doctor = runner.invoke(cli, ["doctor", str(path), "--json", *limit])
    assert doctor.exit_code == 1
    assert [(a["code"], a["pool_id"], a["seq"]) for a in json.loads(doctor.stdout)["anomalies"]] == [
        ("payload_too_large", pool_id, seq)
    ]
    bad = runner.invoke(cli, ["info", str(path), "--max-payload", "0"])
    assert bad.exit_code == 2 and "--max-payload" in bad.stderr


def test_a_store_in_a_missing_folder_creates_it(tmp_path):
    """PoolStore(path) and ``poolscope generate`` create missing folders on the way, as
    export and report do; a file in the way is one OutputError naming it (CLI: one line, exit 2)."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    store = poolscope.PoolStore(tmp_path / "a" / "b" / "pool.db")
    store.open_pool("pool.x", {})
    store.close()
    with poolscope.open(tmp_path / "a" / "b" / "pool.db") as db:
        assert db.pool_ids == ["pool.x"]
    result = CliRunner().invoke(
        cli, ["generate", str(tmp_path / "c" / "d" / "g.db"), "--records", "30", "--pools", "1"]
    )
    assert result.exit_code == 0, result.output
    with poolscope.open(tmp_path / "c" / "d" / "g.db") as db:
        assert len(db.pool_ids) == 1
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(poolscope.OutputError) as raised:
        poolscope.PoolStore(tmp_path / "file" / "pool.db")
    assert str(tmp_path / "file") in str(raised.value)
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "file" / "g.db"), "--records", "30"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_store_is_never_created_at_a_databases_side_file_name(tmp_path, suffix):
    """`poolscope generate pool.db-wal` beside a database: the next writer of pool.db would take
    the new file for its WAL (journal) and delete it, losing what was written -- so PoolStore
    refuses the name (OutputError, CLI one line, exit 2) and creates nothing; beside a file that
    is not a database the name is an ordinary one."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    db = Path(shutil.copy(SAMPLE_DB, tmp_path / "pool.db"))
    before = tree_state(tmp_path)
    with pytest.raises(poolscope.OutputError, match=f"{suffix[1:]} file of the SQLite database 'pool.db'"):
        poolscope.PoolStore(tmp_path / f"pool.db{suffix}")
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / f"pool.db{suffix}"), "--records", "30"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert tree_state(tmp_path) == before
    (tmp_path / "notes.txt").write_text("not a database")
    with poolscope.PoolStore(tmp_path / f"notes.txt{suffix}") as store:
        store.open_pool("pool.x", {})
    assert db.read_bytes() == SAMPLE_DB.read_bytes()


def test_unplaceable_seqs_never_change_the_other_records_state(tmp_path):
    """Rows at seq 2^63-1, 0 and -1 are left out: the snapshot at every cursor
    is the one of the file without them, and doctor reports each (bad_seq)."""
    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    with poolscope.open(ORACLE_DB) as clean:
        pool_id = clean.pool_ids[0]
        head = clean.pool(pool_id).head
        expected = {k: clean.pool(pool_id).snapshot(k).to_json() for k in (1, head // 2, head)}
        records = [r.to_json() for r in clean.pool(pool_id).records()]
    conn = sqlite3.connect(path, isolation_level=None)
    for seq in (2**63 - 1, 0, -1):
        conn.execute(
            "INSERT INTO agent_pool_records VALUES (?, ?, 'pool_created', '{\"type\":\"pool_created\"}')",
            (pool_id, seq),
        )
    conn.close()
    with poolscope.open(path) as db:
        history = db.pool(pool_id)
        assert history.head == head
        assert {k: history.snapshot(k).to_json() for k in expected} == expected
        assert [r.to_json() for r in history.records()] == records
        assert len(db.records_df()) == sum(len(h) for h in db.pools())
        found = sorted((a.seq, a.pool_id) for a in db.check() if a.code == "bad_seq")
        assert found == [(-1, pool_id), (0, pool_id), (2**63 - 1, pool_id)]
        assert all(a.severity == "error" for a in db.check() if a.code == "bad_seq")


def test_a_file_replaced_before_a_forked_load_is_not_mixed_in(tmp_path, monkeypatch):
    """open(a); a is atomically replaced by another file; db.pool(p) (loaded by a
    parent and a forked helper) reads only the file open() opened."""
    from poolscope import load

    monkeypatch.setattr(load, "PARALLEL_THRESHOLD", 1)
    path = tmp_path / "pool.db"
    shutil.copy(ORACLE_DB, path)
    with poolscope.open(ORACLE_DB) as clean:
        pool_id = max(clean.pool_ids, key=lambda p: len(clean.pool(p)))
        expected = [r.to_json() for r in clean.pool(pool_id).records()]
        snapshot = clean.pool(pool_id).snapshot().to_json()
    other = tmp_path / "other.db"
    shutil.copy(ORACLE_DB, other)
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq % 3 = 0", (pool_id,))
    conn.execute("UPDATE agent_pool_records SET payload_json = '{}' WHERE pool_id = ? AND seq % 3 = 1", (pool_id,))
    conn.close()
    db = poolscope.open(path)
    os.replace(other, path)  # rsync, a backup restored
    history = db.pool(pool_id)
    assert not history.index.problems
    assert history.snapshot().to_json() == snapshot
    assert len(history) == len(expected)
    db.close()


def test_written_files_get_the_mode_the_umask_gives(tmp_path):
    """report and export write through a private temporary file, yet what they leave is an
    ordinary file: readable by others when the umask says so (not mkstemp's 0600)."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    old = os.umask(0o022)
    try:
        runner = CliRunner()
        report = tmp_path / "r.html"
        assert runner.invoke(cli, ["report", str(SAMPLE_DB), "-o", str(report)]).exit_code == 0
        out = tmp_path / "export"
        assert runner.invoke(cli, ["export", str(SAMPLE_DB), str(out), "--format", "csv"]).exit_code == 0
        written = [report, *sorted(p for p in out.rglob("*") if p.is_file())]
        assert len(written) > 1
        assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}
    finally:
        os.umask(old)


def test_a_wal_checkpointed_away_while_being_copied_is_read_as_it_is_now(tmp_path, private_tmp, monkeypatch):
    """The race a live writer makes: poolscope sees a ``-wal`` nobody holds and decides to
    read a private copy, then the writer opens, checkpoints and removes the ``-wal`` before
    it is copied.  The open chooses again (the file is whole now) instead of failing, and
    leaves no copy behind."""
    from poolscope import source as source_module

    path = wal_database(tmp_path / "data")
    choose = source_module.choose_mode
    calls = []

    def racing(real, header):
        mode = choose(real, header)
        calls.append(mode)
        if len(calls) == 1:
            assert mode == "private"
            writer = sqlite3.connect(path, isolation_level=None)
            writer.execute("SELECT count(*) FROM agent_pool_records").fetchone()
            writer.close()  # the last connection to close checkpoints and removes the -wal
            assert not Path(str(path) + "-wal").exists()
        return mode

    monkeypatch.setattr(source_module, "choose_mode", racing)
    with poolscope.open(path) as db:
        assert db.pool(WAL_ONLY).head == 2 and db.source.mode != "private"
    assert calls[:2] == ["private", "immutable"]  # chosen again once the -wal was gone
    assert list(private_tmp.iterdir()) == []


def _without_primary_key(path: Path, extra_rows: list[tuple]) -> None:
    """The records table rebuilt without its primary key (so a seq can repeat), rows in seq
    order, then ``extra_rows`` appended after them."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "ALTER TABLE agent_pool_records RENAME TO old;"
        "CREATE TABLE agent_pool_records (pool_id TEXT, seq INTEGER, kind TEXT, payload_json TEXT);"
        "INSERT INTO agent_pool_records SELECT * FROM old ORDER BY pool_id, seq; DROP TABLE old;"
    )
    conn.executemany("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", extra_rows)
    conn.close()


@pytest.mark.parametrize(
    "kind,payload",
    [("pool_created", '{"type":"pool_created"}'), ("run_message", '{"type":"run_message","stored":')],
    ids=["another kind", "cut short"],
)
def test_a_seq_stored_twice_is_read_again_as_the_load_took_it(tmp_path, kind, payload):
    """A second row at the head's seq (another kind, or JSON cut short): doctor reports the
    duplicate, and every payload read again -- a snapshot's messages, its JSON -- is the row the
    load took (the first), not the later one (found by fuzzing: a KeyError and an orjson error)."""
    clean = tmp_path / "clean.db"
    shutil.copy(SAMPLE_DB, clean)
    path = tmp_path / "twice.db"
    shutil.copy(SAMPLE_DB, path)
    _without_primary_key(path, [("pool.alpha", 1201, kind, payload)])
    before = tree_state(tmp_path)
    with poolscope.open(path, cache=False) as db, poolscope.open(clean, cache=False) as reference:
        assert [(a.code, a.seq) for a in db.check() if a.code == "duplicate_seq"] == [("duplicate_seq", 1201)]
        history, expected = db.pool("pool.alpha"), reference.pool("pool.alpha")
        assert history.snapshot().to_json() == expected.snapshot().to_json()
        assert history.payloads([1200, 1201]) == expected.payloads([1200, 1201])
    assert tree_state(tmp_path) == before


def test_payloads_read_again_are_checked_against_the_load(tmp_path):
    """``payloads()``: a seq the pool does not have is a CursorError; a payload that no longer
    decodes is a CorruptRecordError naming its seq (was orjson's own error); a row rewritten
    since the load as another record is a DatabaseChangedError."""
    path = tmp_path / "pool.db"
    shutil.copy(SAMPLE_DB, path)
    with poolscope.open(path, cache=False) as db:
        history = db.pool("pool.alpha").load()
        kinds = dict(db.conn.execute("SELECT seq, kind FROM agent_pool_records WHERE pool_id = 'pool.alpha'"))
        with pytest.raises(poolscope.CursorError) as raised:
            history.payloads([1, history.head + 1])
        assert raised.value.seq == history.head + 1
        message = next(s for s in sorted(kinds) if kinds[s] == "run_message" and s > 10)
        wake = next(s for s in sorted(kinds) if kinds[s] == "wake" and s > 10)
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = 'pool.alpha' AND seq = ?",
            ('{"type":"run_message","stored":', message),
        )
        other = next(s for s in sorted(kinds) if kinds[s] != kinds[wake] and s > wake)
        text = writer.execute(
            "SELECT payload_json FROM agent_pool_records WHERE pool_id = 'pool.alpha' AND seq = ?", (other,)
        ).fetchone()[0]
        writer.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = 'pool.alpha' AND seq = ?", (text, wake)
        )
        writer.close()
        with pytest.raises(poolscope.CorruptRecordError) as raised:
            history.payloads([message])
        assert (raised.value.seq, raised.value.code) == (message, "bad_json")
        with pytest.raises(poolscope.DatabaseChangedError) as raised:
            history.payloads([wake])
        assert raised.value.seq == wake


@pytest.mark.parametrize(
    "kind,payload,says",
    [
        ("run_message", {"stored": {"message": None}}, "stored.message: RunMessage must be an object, not null"),
        ("run_message", {"stored": [1]}, "stored is JSON array, not an object"),
        ("run_message", {}, "stored is missing"),
        ("wake", {"stored": {"condition": 5}}, "stored.condition: WakeCondition must be an object, not number"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_explained_in_its_own_terms(kind, payload, says):
    """What is wrong is said with the payload's paths and JSON's types, never Python's message
    ("'NoneType' object is not subscriptable", found by fuzzing)."""
    from poolscope.fold import extract

    with pytest.raises(poolscope.CorruptRecordError) as raised:
        extract(kind, {"type": kind, **payload})
    assert says in raised.value.problem
    assert "NoneType" not in raised.value.problem and "subscriptable" not in raised.value.problem


# ------------------------------------------------ writing, finding, caching
@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (lambda p: os.mkfifo(p), poolscope.NotADatabaseError, "FIFO"),
        (lambda p: p.write_bytes(b"x"), poolscope.NotADatabaseError, "not an SQLite database"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(600)), poolscope.NotADatabaseError, "wrong file header"),
        (lambda p: p.symlink_to(p.parent / "nowhere.db"), poolscope.OutputError, "symlink"),
        (lambda p: p.symlink_to("/dev/zero"), poolscope.NotADatabaseError, "character device"),
    ],
    ids=["fifo", "one byte", "a zip file", "dangling symlink", "symlink to a device"],
)
def test_a_store_refuses_what_it_would_block_on_or_overwrite(tmp_path, make, error, says):
    """PoolStore (and ``poolscope generate``, which writes through it) checks the
    path before SQLite opens it: a FIFO would block the open, a file that is
    not SQLite would be overwritten, a dangling link would get a new file
    behind it.  Each is one typed error, and the folder is left as it was."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    path = tmp_path / "data" / "pool.db"
    path.parent.mkdir()
    make(path)
    before = state([path.parent])
    with pytest.raises(error, match=says):
        poolscope.PoolStore(path)
    result = CliRunner().invoke(cli, ["generate", str(path), "--records", "20", "--pools", "1"])
    assert result.exit_code == 2 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert state([path.parent]) == before


def test_an_empty_file_is_a_new_store_as_sqlite_takes_it(tmp_path):
    path = tmp_path / "pool.db"
    path.write_bytes(b"")
    with poolscope.PoolStore(path) as store:
        assert store.open_pool("p", {}).cursor == 1


def test_a_fifo_in_a_fleet_folder_is_skipped_without_waiting(tmp_path):
    """A folder is searched file by file: a FIFO (or a link to a device) in it
    is listed as skipped, with the reason; opening it for a look would block."""
    folder = tmp_path / "hosts"
    folder.mkdir()
    shutil.copyfile(SAMPLE_DB, folder / "a.db")
    os.mkfifo(folder / "pipe.db")
    (folder / "zero.db").symlink_to("/dev/zero")
    with poolscope.fleet(folder, workers=1) as hosts:
        assert hosts.databases == [str(folder / "a.db")]
        reasons = {Path(s.source).name: s.reason for s in hosts.skipped}
    assert "FIFO" in reasons["pipe.db"] and "character device" in reasons["zero.db"]


def test_a_recursive_pattern_does_not_follow_a_symlink_cycle(tmp_path):
    """``**`` descends into folders, not into symlinks to folders (as a folder
    source is searched): a link back up the tree is not gone round for ever,
    and the databases under it are found once."""
    root = tmp_path / "hosts"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copyfile(SAMPLE_DB, root / "a" / "b" / "x.db")
    shutil.copyfile(SAMPLE_DB, root / "top.db")
    (root / "a" / "b" / "up").symlink_to("..")
    (root / "a" / "loop").symlink_to(root)
    (root / ".hidden").mkdir()
    shutil.copyfile(SAMPLE_DB, root / ".hidden" / "h.db")
    for pattern, expected in (
        (f"{root}/**/*.db", ["a/b/x.db", "top.db"]),
        (f"{root}/**", [".hidden/h.db", "a/b/x.db", "top.db"]),  # a folder matched is searched whole
        (f"{root}/.*/**/*.db", [".hidden/h.db"]),
    ):
        with poolscope.fleet(pattern, workers=1) as hosts:
            found = sorted(os.path.relpath(p, root) for p in hosts.databases)
        assert found == expected, pattern


def test_a_cache_entry_replaced_by_a_fifo_is_a_miss_not_a_hang(tmp_path):
    """Every file of an entry is opened without blocking and must be a regular
    file: a FIFO (or a folder) in its place is an unreadable entry, rebuilt."""
    db_path = tmp_path / "pool.db"
    shutil.copyfile(SAMPLE_DB, db_path)
    cache = tmp_path / "cache"
    with poolscope.open(db_path, cache=cache) as db:
        expected = db.pool("pool.alpha").snapshot().to_json()
    poolscope.cache.wait()
    data = [p for p in cache.iterdir() if p.suffix != ".json"]
    manifests = [p for p in cache.iterdir() if p.suffix == ".json"]
    assert data and manifests
    for victim in (data[0], manifests[0]):
        victim.unlink()
        os.mkfifo(victim)
        with poolscope.open(db_path, cache=cache) as db:
            assert db.pool("pool.alpha").snapshot().to_json() == expected
            assert db.cache.last_miss is not None
        poolscope.cache.wait()
        if victim.exists() and not victim.is_file():
            victim.unlink()


def test_a_store_where_it_may_not_write_is_an_access_error_before_sqlite_opens(tmp_path, monkeypatch):
    """Without write access (a read-only file, or a new file in a read-only
    folder) SQLite would open, then fail, and leave ``-wal``/``-shm`` files or
    say "unable to open": PoolStore says so first and creates nothing.  (The
    tests run as root, where every access is granted, so access is denied
    through ``os.access``, which PoolStore asks.)"""
    real_access = os.access
    denied: set[str] = set()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: os.fspath(p) not in denied and real_access(p, mode, **kw))
    existing = tmp_path / "ro.db"
    poolscope.PoolStore(existing).close()
    before = state([tmp_path])
    denied.update({str(existing), str(tmp_path / "locked")})
    with pytest.raises(poolscope.DatabaseAccessError, match="read-only") as raised:
        poolscope.PoolStore(existing)
    assert raised.value.code == "read_only"
    (tmp_path / "locked").mkdir()
    with pytest.raises(poolscope.DatabaseAccessError, match="not writable"):
        poolscope.PoolStore(tmp_path / "locked" / "new.db")
    assert list((tmp_path / "locked").iterdir()) == []
    denied.discard(str(tmp_path / "locked"))
    poolscope.PoolStore(tmp_path / "locked" / "there.db").close()
    denied.add(str(tmp_path / "locked"))  # a writable file in a folder SQLite cannot put its -wal in
    with pytest.raises(poolscope.DatabaseAccessError, match="-wal and -shm"):
        poolscope.PoolStore(tmp_path / "locked" / "there.db")
    (tmp_path / "locked" / "there.db").unlink()
    (tmp_path / "locked").rmdir()
    assert state([tmp_path]) == before


def test_a_database_whose_file_name_is_not_utf8(tmp_path):
    """A name made of bytes that are not UTF-8 (Python keeps them as lone
    surrogates, which no text column, page or JSON can hold): the frames and
    pages show the bytes escaped, and either form finds the database again."""
    folder = tmp_path / "hosts"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.db")
    shutil.copyfile(SAMPLE_DB, folder / name)
    for args in (
        ["report", str(folder / name), "-o", str(tmp_path / "r.html")],
        ["fleet", "info", str(folder)],
        ["fleet", "doctor", str(folder), "--json"],
        ["fleet", "report", str(folder), "-o", str(tmp_path / "f.html")],
    ):
        result = run_cli(args, tmp_path)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "caf\\xe9.db" in (tmp_path / "f.html").read_text(encoding="utf-8")
    with poolscope.fleet(folder, workers=1) as hosts:
        label = str(folder / "caf\\xe9.db")
        assert list(hosts.pools["source"].unique()) == [label]
        assert set(hosts.records_df()["source"]) == {label}
        assert hosts.pool(label, "pool.alpha").head == hosts.pool(str(folder / name), "pool.alpha").head == 1201


def test_a_record_appended_in_place_with_the_mtime_set_back_is_seen_by_refresh(tmp_path):
    """A WAL-mode file that no process holds is read through an immutable view,
    opened again when the file changes.  Its bytes overwritten in place by the
    same history with one record appended (it fits in the last pages: the size
    stays) and its modification time set back: the change time still differs,
    so refresh() reads the record, as a fresh open does (found by fuzzing)."""
    path, grown = tmp_path / "pool.db", tmp_path / "grown.db"
    shutil.copyfile(ORACLE_DB, path)
    shutil.copyfile(ORACLE_DB, grown)
    pool_id = oracle_pools()[0]
    conn = sqlite3.connect(grown)
    last = append_copy(conn, pool_id) - 1
    conn.close()
    data = grown.read_bytes()
    assert len(data) == path.stat().st_size and not Path(str(grown) + "-wal").exists()
    with poolscope.open(path, cache=False) as db:
        assert db.source.mode == "immutable"
        history = db.pool(pool_id)
        assert history.head == last
        before = os.stat(path)
        time.sleep(0.05)  # past the file system's time resolution
        with open(path, "r+b") as handle:
            handle.write(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert db.refresh()[pool_id] == 1
        assert history.head == last + 1
        with poolscope.open(path, cache=False) as fresh:
            assert history.snapshot().to_json() == fresh.pool(pool_id).snapshot().to_json()


def test_rows_whose_seq_is_no_integer_stay_out_of_every_reading(tmp_path):
    """A REAL seq (2.5; in a column without the SDK's INTEGER affinity 2.0 would
    equal the integer 2 in SQL and in Python) and a TEXT seq that is not UTF-8 are
    no record's: the pool opens, its records, head and
    snapshots are those of the file without them, and ``heads()`` agrees with
    each pool's head (found by fuzzing: the text made the pool unreadable, the
    real one was listed with a cursor of 2.5 and read back as a record's payload)."""
    clean, dirty = tmp_path / "clean.db", tmp_path / "dirty.db"
    shutil.copyfile(ORACLE_DB, clean)
    shutil.copyfile(ORACLE_DB, dirty)
    pool_id = oracle_pools()[0]
    conn = sqlite3.connect(dirty)
    with conn:
        for seq, kind, text in conn.execute(
            "SELECT seq, kind, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'run_message' "
            "ORDER BY seq LIMIT 2",
            (pool_id,),
        ).fetchall():
            other = text.replace('"status":"', '"status":"x', 1)  # another receipt at the same place
            conn.execute("INSERT INTO agent_pool_records VALUES (?, ?, ?, ?)", (pool_id, seq + 0.5, kind, other))
        conn.execute(
            "INSERT INTO agent_pool_records VALUES (?, CAST(X'35FF' AS TEXT), 'run_message', '{}')", (pool_id,)
        )
    conn.close()
    with poolscope.open(clean, cache=False) as good, poolscope.open(dirty, cache=False) as db:
        history, expected = db.pool(pool_id), good.pool(pool_id)
        assert history.head == expected.head and db.heads() == good.heads()
        assert [r.to_json() for r in history.records()] == [r.to_json() for r in expected.records()]
        for cursor in range(1, expected.head + 1, 7):
            assert history.snapshot(cursor).to_json() == expected.snapshot(cursor).to_json()
        assert history.snapshot().to_json() == expected.snapshot().to_json()


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_fifo_where_sqlite_keeps_a_side_file_is_refused_not_waited_on(tmp_path, journal_mode, suffix):
    """SQLite opens the file's ``-journal`` (to see whether it is hot), ``-wal``
    and ``-shm`` beside it with a blocking open(2): a FIFO there hung every
    reader and writer for ever, where no timeout reaches (found by fuzzing).
    Reading, the CLI, a fleet and a store each refuse it with one typed error
    (a WAL file with no ``-wal`` to read is read ``immutable``: SQLite opens
    none of them, and it is read as usual); nothing in the folder changes."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "pool.db"
    shutil.copyfile(SAMPLE_DB, path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.close()
    os.mkfifo(side := folder / ("pool.db" + suffix))
    before = state([folder])
    immutable = journal_mode == "wal"  # and no -wal to read: immutable, SQLite opens no side file
    if immutable:
        with poolscope.open(path) as db:
            assert db.source.mode == "immutable" and db.pool("pool.alpha").head == 1201
    else:
        with pytest.raises(poolscope.NotADatabaseError, match=f"pool.db{suffix} beside it, .* is a FIFO"):
            poolscope.open(path, timeout=1)
        result = CliRunner().invoke(cli, ["info", str(path)])
        assert result.exit_code == 2 and "FIFO" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        with poolscope.fleet([str(path)], workers=1) as hosts:
            assert [type(e.error) for e in hosts.errors] == [poolscope.NotADatabaseError]
    with pytest.raises(poolscope.NotADatabaseError, match="FIFO"):
        poolscope.PoolStore(path)
    assert state([folder]) == before and stat.S_ISFIFO(os.stat(side).st_mode)


def test_numbers_in_a_field_serde_ignores_are_read_and_left_out(tmp_path):
    """A key a run address's ``destination_ref`` has no field for (the SDK's
    ``DestinationRef``) may hold any JSON number: serde reads it (``-0`` and one
    past u64 as floats) and ignores it, so doctor finds nothing wrong and records
    and snapshots leave it out, as the SDK writes the ref back.  serde_json
    writes a float with a positive exponent as ``1e16`` (orjson: ``1e+16``) and
    ``-0.0`` as such (orjson: 0), as :func:`wire.dumps` does (found by fuzzing)."""
    path = tmp_path / "pool.db"
    shutil.copyfile(SAMPLE_DB, path)
    conn = sqlite3.connect(path)
    seq, text = conn.execute(
        "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = 'pool.alpha' AND kind = 'run_message' "
        "AND payload_json LIKE '%\"destination_ref\":{%' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    # as stored: -0 an integer, and an integer past u64 (serde_json reads both as floats)
    written = "[1e16,1e22,1.7976931348623157e308,1.5e-7,0.00001,-0,0.5,100.0,18446744073709551616]"
    stored = text.replace('"destination_ref":{', '"destination_ref":{"weights":' + written + ",", 1)
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = 'pool.alpha' AND seq = ?", (stored, seq)
    )
    conn.commit()
    conn.close()
    with poolscope.open(path, cache=False) as db:
        pool = db.pool("pool.alpha")
        (record,) = pool.records(after=seq - 1, upto=seq)
        assert record.problem is None
        assert record.to_json().endswith(f'"payload":{text}}}')  # the SDK's bytes, as before the edit
        assert "weights" not in pool.snapshot(seq).to_json()
        assert not [a for a in db.check() if a.seq == seq]
    assert wire.dumps([1e16, -0.0, "e+1"]) == '[1e16,-0.0,"e+1"]'


def test_a_hot_journal_is_left_for_a_writer_to_roll_back_and_said_so(tmp_path):
    """A rollback journal a writer left behind (a crash mid-transaction) must be
    rolled back before the file can be read, which only a writer may do:
    poolscope says so (it said "read-only") and changes nothing; once a writer
    opened it, it reads as usual."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "pool.db"
    shutil.copyfile(SAMPLE_DB, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=delete")
    conn.close()
    # a journal's header (its magic), as a crashed writer leaves it
    (folder / "pool.db-journal").write_bytes(bytes.fromhex("d9d505f920a163d7") + bytes(504))
    before = state([folder])
    with pytest.raises(poolscope.DatabaseAccessError, match="unfinished") as raised:
        poolscope.open(path)
    assert raised.value.code == "hot_journal"
    assert state([folder]) == before
    sqlite3.connect(path).execute("SELECT count(*) FROM agent_pool_records").fetchone()  # a writer recovers it
    with poolscope.open(path) as db:
        assert db.pool("pool.alpha").head == 1201


def test_a_limit_below_the_schemas_own_text_still_reads_the_file(tmp_path):
    """SQLite reads the CREATE statements under the same length limit: a max_payload
    smaller than the SDK's CREATE TABLE text (~270 bytes) must not make the whole
    file unreadable -- each record over it is one damaged record, as any other."""
    path = Path(shutil.copy(SAMPLE_DB, tmp_path / "pool.db"))
    conn = sqlite3.connect(path)
    schema = max(len(sql) for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))
    lengths = dict(
        conn.execute(
            "SELECT seq, length(CAST(payload_json AS BLOB)) FROM agent_pool_records WHERE pool_id = 'pool.alpha'"
        )
    )
    conn.close()
    limit = 150
    assert limit < schema
    with poolscope.open(path, max_payload=limit, cache=False) as db:
        assert db.pool_ids == ["pool.alpha", "pool.bravo", "pool.charlie"]
        history = db.pool("pool.alpha")
        damaged = {
            seq
            for seq, problem in history.index.problems.items()
            if isinstance(problem, poolscope.PayloadTooLargeError)
        }
        assert damaged == {seq for seq, n in lengths.items() if n > limit} != set()
        assert len(history.index.seqs) == len(lengths)


@pytest.mark.parametrize("command", [["report", "{db}"], ["fleet", "report", "{db}"]], ids=["report", "fleet report"])
def test_an_output_path_ending_in_a_separator_is_a_folder_not_a_file(tmp_path, command):
    """`-o pages/` names a folder (as cp and mv read it): one OutputError line, exit 2,
    and no file written under the name without the slash; `-o pages/r.html` writes."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    db = shutil.copy(SAMPLE_DB, tmp_path / "pool.db")
    args = [part.format(db=db) for part in command]
    result = CliRunner().invoke(cli, [*args, "-o", f"{tmp_path / 'pages'}/"])
    assert result.exit_code == 2, result.output
    assert "ends with a path separator" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.db"]
    # pages/. and pages/r/.. name folders just the same (a file named pages was written for the first)
    for ending in (".", "r/.."):
        result = CliRunner().invoke(cli, [*args, "-o", f"{tmp_path / 'pages'}/{ending}"])
        assert result.exit_code == 2, result.output
        assert "it names a folder" in result.output and "Traceback" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.db"]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "pages" / "r.html")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pages" / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("command", [["report", "{db}"], ["fleet", "report", "{db}"]], ids=["report", "fleet report"])
def test_an_output_name_of_the_longest_length_is_written(tmp_path, command):
    """A file name of 255 bytes (the file system's limit; multi-byte characters too) is written:
    the temporary file beside it repeats only the start of the name (it was the name plus 14
    bytes: "File name too long", after the whole page was rendered), and none is left behind."""
    from click.testing import CliRunner

    from poolscope.cli import cli

    db = shutil.copy(SAMPLE_DB, tmp_path / "pool.db")
    args = [part.format(db=db) for part in command]
    for name in ("r" * 250 + ".html", "é" * 125 + ".html"):
        assert len(name.encode()) == 255
        folder = tmp_path / name[:1]
        result = CliRunner().invoke(cli, [*args, "-o", str(folder / name)])
        assert result.exit_code == 0, result.output
        assert [p.name for p in folder.iterdir()] == [name]
        assert (folder / name).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
