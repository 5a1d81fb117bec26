"""Fleets: many databases read as one (poolscope.fleet).

The fleet frames are checked against the per-database frames of
``poolscope.open()`` (with ``source`` added), on SDK histories copied into
several files and on generated databases, read in this process and by worker
processes; damaged, foreign and missing files are reported and skipped.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import poolscope
from poolscope.frames import COLUMNS
from poolscope.generate import generate

FRAMES = ("records_df", "members_df", "messages_df", "wakes_df")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    """Three generated databases (different seeds, pool counts and sizes)."""
    folder = tmp_path_factory.mktemp("generated")
    paths = []
    for seed, pools, records in ((1, 2, 300), (2, 1, 500), (3, 3, 150)):
        path = folder / f"host-{seed}.db"
        generate(path, pools=pools, records=records, seed=seed)
        paths.append(path)
    return paths


@pytest.fixture
def oracle_fleet(oracle, tmp_path) -> list[str]:
    """The SDK history's pool.db copied into three files, one in a subfolder."""
    names = [tmp_path / "east.db", tmp_path / "west.db", tmp_path / "sub" / "north.db"]
    for name in names:
        name.parent.mkdir(exist_ok=True)
        shutil.copyfile(oracle / "pool.db", name)
    return [str(n) for n in names]


def rows(frame: pd.DataFrame) -> list[dict]:
    """Plain values of every row (categoricals as their values, lists as lists)."""
    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False).to_pylist()


def per_database(sources: list[str], name: str, upto: int | None = None) -> list[dict]:
    out = []
    for source in sources:
        with poolscope.open(source, progress=False) as db:
            frame = getattr(db, name)(upto)
        frame.insert(0, "source", source)
        out.extend(rows(frame))
    return out


def assert_fleet_frames(hosts: poolscope.Fleet, sources: list[str], upto: int | None = None) -> None:
    for name in FRAMES:
        frame = getattr(hosts, name)(upto)
        assert list(frame.columns) == ["source", *COLUMNS[name]], name
        assert rows(frame) == per_database(sources, name, upto), name
        with poolscope.open(sources[0], progress=False) as db:
            single = getattr(db, name)(upto)
        for column in single.columns:
            assert str(frame[column].dtype) == str(single[column].dtype), (name, column)
        assert isinstance(frame["source"].dtype, pd.CategoricalDtype)
        assert list(frame["source"].cat.categories) == sources
        # categories that are the values found: sorted, as in a single database's frame
        for column in ("pool_id", "run_id"):
            if column in frame and isinstance(frame[column].dtype, pd.CategoricalDtype):
                categories = list(frame[column].cat.categories)
                assert categories == sorted(categories)
                assert set(frame[column].dropna()) <= set(categories)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_oracle_copies_stack_like_single_databases(oracle_fleet, workers):
    with poolscope.fleet(oracle_fleet, workers=workers) as hosts:
        assert hosts.databases == oracle_fleet
        assert hosts.errors == [] and hosts.skipped == []
        assert_fleet_frames(hosts, oracle_fleet)
        head = int(hosts.pools["head"].min())
        assert_fleet_frames(hosts, oracle_fleet, upto=head // 2)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_generated_databases_stack_like_single_databases(generated, workers):
    sources = [str(p) for p in generated]
    with poolscope.fleet(sources, workers=workers) as hosts:
        assert_fleet_frames(hosts, sources)
        assert_fleet_frames(hosts, sources, upto=100)


def test_folder_is_searched_recursively_and_sources_are_paths_as_given(generated, tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copyfile(generated[0], tmp_path / "a" / "one.db")
    shutil.copyfile(generated[1], tmp_path / "a" / "b" / "two.sqlite")
    monkeypatch.chdir(tmp_path)
    with poolscope.fleet("a", workers=1) as hosts:
        assert hosts.databases == ["a/b/two.sqlite", "a/one.db"]
        assert set(hosts.records_df()["source"].unique()) == {"a/b/two.sqlite", "a/one.db"}
    with poolscope.fleet("a/**/*.db", workers=1) as hosts:
        assert hosts.databases == ["a/one.db"]
    # the same file named twice is read once
    with poolscope.fleet(["a/one.db", "a", str(tmp_path / "a" / "one.db")], workers=1) as hosts:
        assert hosts.databases == ["a/one.db", "a/b/two.sqlite"]
    # a hard link is another name of the same file (it was read as a second database)
    os.link(tmp_path / "a" / "one.db", tmp_path / "linked.db")
    with poolscope.fleet(["a/one.db", "linked.db"], workers=1) as hosts:
        assert hosts.databases == ["a/one.db"]


def test_pools_check_and_summary_agree_with_each_database(generated, oracle_fleet):
    sources = [str(p) for p in generated] + oracle_fleet[:1]
    with poolscope.fleet(sources, workers=2) as hosts:
        pools = hosts.pools
        assert list(pools[["source", "pool_id"]].itertuples(index=False, name=None)) == [
            (s, p) for s in sources for p in poolscope.open(s).pool_ids
        ]
        for source in sources:
            db = poolscope.open(source, progress=False)
            summary = db.summary().set_index("pool_id")
            mine = pools[pools["source"] == source].set_index("pool_id")
            for column in ("head", "records", "damaged", "members", "messages", "wakes", "messages_failed"):
                assert mine[column].tolist() == summary.loc[mine.index, column].tolist(), column
            failures = sum(summary[f"messages_{s}"] for s in ("failed", "timed_out", "expired"))
            failures += summary["wakes_failed"] + summary["wakes_timed_out"]
            assert mine["failures"].tolist() == failures.loc[mine.index].tolist()
            anomalies = db.check()
            found = hosts.check()
            found = found[found["source"] == source]
            assert [(a.pool_id, a.seq, a.severity, a.code, a.message) for a in anomalies] == [
                (None if pd.isna(p) else p, None if pd.isna(s) else int(s), str(v), c, m)
                for p, s, v, c, m in found[["pool_id", "seq", "severity", "code", "message"]].itertuples(
                    index=False, name=None
                )
            ]
            for pool_id in db.pool_ids:
                assert mine.loc[pool_id, "anomalies"] == sum(1 for a in anomalies if a.pool_id == pool_id)
        summary = hosts.summary()
        assert summary["source"].tolist() == sources
        assert (summary["status"] == "ok").all()
        assert summary["records"].sum() == pools["records"].sum()
        assert "4 databases" in repr(hosts) and "<table" in hosts._repr_html_()


def test_pool_opens_the_usual_history(generated):
    sources = [str(p) for p in generated]
    with poolscope.fleet(sources, workers=1) as hosts:
        pool_id = poolscope.open(sources[1]).pool_ids[0]
        history = hosts.pool(sources[1], pool_id)
        assert isinstance(history, poolscope.PoolHistory)
        assert history.snapshot().to_json() == poolscope.open(sources[1]).pool(pool_id).snapshot().to_json()
        assert hosts.pool(Path(sources[1]), pool_id) is history
        with pytest.raises(poolscope.PoolNotFoundError):
            hosts.pool("elsewhere.db", pool_id)
        with pytest.raises(poolscope.PoolNotFoundError):
            hosts.pool(sources[1], "no.such.pool")


def _damaged_record(path: Path) -> tuple[str, int]:
    conn = sqlite3.connect(path)
    pool_id, seq = conn.execute(
        "SELECT pool_id, max(seq) FROM agent_pool_records WHERE kind = 'run_message' GROUP BY pool_id LIMIT 1"
    ).fetchone()
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = '{\"type\": ' WHERE pool_id = ? AND seq = ?", (pool_id, seq)
    )
    conn.commit()
    conn.close()
    return pool_id, seq


def _unreadable_pages(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(bytes(range(256)) * ((size - size // 2) // 256))


@pytest.mark.parametrize("workers", [1, 2])
def test_damaged_foreign_and_missing_files_are_reported_and_skipped(generated, tmp_path, workers):
    folder = tmp_path / "hosts"
    folder.mkdir()
    good = folder / "good.db"
    shutil.copyfile(generated[0], good)
    damaged = folder / "damaged.db"
    shutil.copyfile(generated[1], damaged)
    pool_id, seq = _damaged_record(damaged)
    broken = folder / "broken.db"
    shutil.copyfile(generated[2], broken)
    _unreadable_pages(broken)
    (folder / "notes.txt").write_text("not a database\n")
    (folder / "empty.db").write_bytes(b"")
    other = sqlite3.connect(folder / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    missing = tmp_path / "missing.db"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    with poolscope.fleet([folder, missing], workers=workers) as hosts:
        skipped = {Path(s.source).name: s.reason for s in hosts.skipped}
        assert set(skipped) == {"notes.txt", "empty.db", "other.sqlite"}
        assert "no agent_pool_records table" in skipped["other.sqlite"]
        assert "not an SQLite database" in skipped["notes.txt"]
        errors = {Path(e.source).name: e.error for e in hosts.errors}
        assert isinstance(errors["missing.db"], poolscope.DatabaseNotFoundError)
        assert sorted(Path(p).name for p in hosts.databases) == ["broken.db", "damaged.db", "good.db"]

        records = hosts.records_df()
        # the damaged database is read exactly as poolscope.open() reads it
        mine = records[records["source"] == str(damaged)].drop(columns="source")
        assert rows(mine) == rows(poolscope.open(damaged).records_df())
        bad = mine[(mine["pool_id"] == pool_id) & (mine["seq"] == seq)]
        assert bad["kind"].tolist() == ["damaged"] and "JSON" in bad["problem"].iloc[0]
        # the unreadable one is an error, the others go on
        errors = {Path(e.source).name: e.error for e in hosts.errors}
        assert isinstance(errors["broken.db"], poolscope.NotADatabaseError)
        assert errors["broken.db"].path == str(broken)
        assert set(records["source"].unique()) == {str(good), str(damaged)}
        assert str(broken) in str(hosts.errors[-1])

        anomalies = hosts.check()
        assert (
            (anomalies["source"] == str(damaged)) & (anomalies["code"] == "bad_json") & (anomalies["seq"] == seq)
        ).any()
        row = hosts.pools.query("source == @damaged.__str__() and pool_id == @pool_id").iloc[0]
        assert row["damaged"] == 1 and row["errors"] >= 1
        summary = hosts.summary().set_index("source")
        assert summary.loc[str(missing), "status"] == "DatabaseNotFoundError"
        assert summary.loc[str(good), "status"] == "ok"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written beside them


def test_folders_and_files_that_cannot_be_read_are_errors_not_silently_left_out(generated, tmp_path, monkeypatch):
    """A subfolder this process may not list, and a database it may not read, found in a searched
    folder: the fleet said nothing of the first (its databases silently missing) and skipped the
    second as "not a database"; both are now errors (DatabaseAccessError for the folder), so that
    ``fleet doctor`` exits 1 (permissions are simulated: the suite may run as root)."""
    import importlib
    import os

    from poolscope.errors import NotADatabaseError

    discover_module = importlib.import_module("poolscope.fleet.discover")

    folder = tmp_path / "hosts"
    (folder / "locked").mkdir(parents=True)
    shutil.copyfile(generated[0], folder / "a.db")
    shutil.copyfile(generated[1], folder / "locked" / "b.db")
    shutil.copyfile(generated[2], folder / "c.db")
    locked, unreadable = str(folder / "locked"), str(folder / "c.db")
    real_scandir, real_connect = os.scandir, discover_module.connect_readonly

    def scandir(path=".", *args):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path, *args)

    def read_start(path, size=100):
        raise PermissionError(13, "Permission denied", path)

    def connect(path, **kwargs):
        if path == unreadable:
            raise NotADatabaseError("cannot be read (permission denied)", path=path)
        return real_connect(path, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(discover_module, "read_start", read_start)
    monkeypatch.setattr(discover_module, "connect_readonly", connect)
    found = discover_module.discover(str(folder))
    assert found.databases == [str(folder / "a.db")] and found.skipped == []
    assert sorted((e.source, type(e.error).__name__) for e in found.errors) == [
        (unreadable, "NotADatabaseError"),
        (locked, "DatabaseAccessError"),
    ]


def test_progress_bar_over_databases(generated, capsys):
    with poolscope.fleet([str(p) for p in generated], workers=1, progress=True) as hosts:
        hosts.records_df()
    err = capsys.readouterr().err
    assert "reading records" in err and "3/3" in err
    with poolscope.fleet([str(p) for p in generated], workers=1, progress=False) as hosts:
        hosts.records_df()
    assert "reading records" not in capsys.readouterr().err


@pytest.mark.parametrize("empty_first", [False, True])
def test_a_database_with_no_pool_stacks_with_the_others(generated, tmp_path, empty_first):
    """A host whose store has its tables and no record yet: its empty frames
    stack with the others' (they were ``object`` columns, and the stacking of
    a categorical column failed inside pandas -- ``fleet report`` too)."""
    empty = tmp_path / "new-host.db"
    poolscope.PoolStore(empty).close()
    sources = [str(empty), str(generated[0])] if empty_first else [str(generated[0]), str(empty)]
    with poolscope.fleet(sources, workers=1) as hosts:
        assert hosts.errors == [] and hosts.databases == sources
        assert_fleet_frames(hosts, sources)
        assert len(hosts.pools) == len(poolscope.open(generated[0]).pool_ids)


def test_empty_fleet_has_typed_empty_frames(tmp_path):
    with poolscope.fleet(tmp_path) as hosts:
        assert hosts.databases == [] and hosts.errors == []
        for name in FRAMES:
            frame = getattr(hosts, name)()
            assert list(frame.columns) == ["source", *COLUMNS[name]] and len(frame) == 0
        assert len(hosts.pools) == 0 and len(hosts.check()) == 0 and len(hosts.summary()) == 0
    with poolscope.fleet(str(tmp_path / "*.db")) as hosts:
        assert isinstance(hosts.errors[0].error, poolscope.DatabaseNotFoundError)


def test_sources_whose_names_look_alike_keep_distinct_labels(generated, tmp_path):
    """A file name that is not UTF-8 shows its bytes escaped; a file literally
    named with that escape (or any name with a backslash) shows its backslash
    doubled, so the two are two sources (one label made the ``source``
    categories collide and every frame fail inside pandas)."""
    raw = tmp_path / "caf\udce9.db"
    literal = tmp_path / "caf\\xe9.db"
    shutil.copyfile(generated[0], raw)
    shutil.copyfile(generated[1], literal)
    with poolscope.fleet([str(raw), str(literal)], workers=1) as hosts:
        labels = [f"{tmp_path}/caf\\xe9.db", f"{tmp_path}/caf\\\\xe9.db"]
        frame = hosts.records_df()
        assert list(frame["source"].cat.categories) == labels
        sizes = frame.groupby("source", observed=True).size()
        for label, path in zip(labels, (generated[0], generated[1]), strict=True):
            with poolscope.open(path, progress=False) as db:
                assert sizes[label] == len(db.records_df())
        assert sorted(set(hosts.pools["source"])) == sorted(labels)
        assert len(hosts.messages_df()) and len(hosts.check()) >= 0
        # a label names its own database
        assert [str(hosts.database(label).path) for label in labels] == [str(raw), str(literal)]


def test_fleet_arguments_are_checked(generated):
    from poolscope.fleet import MAX_WORKERS

    for options in ({"progress": "x"}, {"progress": 1}, {"workers": 10**9}, {"workers": MAX_WORKERS + 1}):
        with pytest.raises(poolscope.InvalidInputError, match=next(iter(options))):
            poolscope.fleet(str(generated[0]), **options)
    with poolscope.fleet(str(generated[0]), workers=MAX_WORKERS, progress=False) as hosts:
        assert hosts.workers == MAX_WORKERS and len(hosts.records_df()) > 0


def test_refresh_refreshes_every_opened_database_then_raises_the_first_error(generated, tmp_path):
    """A database replaced since it was opened made refresh() raise at once,
    leaving the databases opened after it unrefreshed."""
    replaced, grown = tmp_path / "replaced.db", tmp_path / "grown.db"
    shutil.copyfile(generated[0], replaced)
    shutil.copyfile(generated[1], grown)
    with poolscope.fleet([str(replaced), str(grown)], workers=1) as hosts:
        hosts.pool(str(replaced), "pool.alpha").snapshot()
        before = hosts.pool(str(grown), "pool.alpha").head
        generate(grown, pools=1, records=700, seed=2)  # appends to grown.db's pool
        with poolscope.open(grown, cache=False) as db:
            after = db.pool("pool.alpha").head
        assert after > before
        os.replace(shutil.copyfile(generated[2], tmp_path / "other.db"), replaced)
        with pytest.raises(poolscope.DatabaseChangedError):
            hosts.refresh()
        assert hosts.pool(str(grown), "pool.alpha").head == after


def test_frame_by_name_checks_the_name(generated):
    with poolscope.fleet([str(generated[0])], workers=1) as hosts:
        assert len(hosts.frame("wakes")) == len(hosts.wakes_df())
        with pytest.raises(poolscope.InvalidInputError):
            hosts.frame("snapshots")


@pytest.mark.slow
def test_large_pool_in_a_worker_process(tmp_path):
    """A pool over the loader's fork threshold, read by a fleet worker (one process there)."""
    big = tmp_path / "big.db"
    generate(big, pools=1, records=21_000, seed=5, members_cap=20)
    small = tmp_path / "small.db"
    generate(small, pools=1, records=200, seed=6)
    sources = [str(big), str(small)]
    with poolscope.fleet(sources, workers=2) as hosts:
        assert rows(hosts.records_df()) == per_database(sources, "records_df")
        assert hosts.pools["records"].tolist()[0] >= 21_000


def assert_read_here(generated, warning: str) -> None:
    """A two-worker fleet warns (``warning``) and reads every database in this process, as one would."""
    sources = [str(p) for p in generated]
    with poolscope.fleet(sources, workers=2) as hosts:
        with pytest.warns(RuntimeWarning, match=warning):
            frame = hosts.records_df()
        assert rows(frame) == per_database(sources, "records_df")
        assert hosts.workers == 1 and hosts.errors == []


def test_workers_that_cannot_start_fall_back_to_this_process(generated, monkeypatch):
    """Where no worker process can be started (a sandbox), the fleet reads everything here."""
    from poolscope.fleet import work

    def refuse(self, *args):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(work.Workers, "_submit", refuse)
    assert_read_here(generated, "reading in this process")


def test_workers_that_import_another_poolscope_are_not_used(generated, monkeypatch):
    """A fork server started from a folder that holds another copy of poolscope imports that copy
    (its path starts with the working folder): such workers run nothing, the fleet reads here."""
    from poolscope.fleet import work

    # the workers see a calling process whose poolscope came from another folder
    monkeypatch.setattr(work, "package_folder", lambda: "/elsewhere/poolscope-checkout")
    assert_read_here(generated, "imported poolscope from .*, this process from /elsewhere")


def test_a_worker_that_dies_loses_no_database(generated):
    """Every group a dead worker held (and every group not yet read) is read again here."""
    import os

    from helpers import size_unless_in_a_worker

    from poolscope.fleet import work

    sources = [str(p) for p in generated] * 3  # more groups than workers
    workers = work.Workers(2)
    try:
        with pytest.warns(RuntimeWarning, match="reading in this process"):
            found = list(workers.map(size_unless_in_a_worker, sources, (os.getpid(),)))
    finally:
        workers.close()
    assert sorted(path for path, _, _ in found) == sorted(sources)
    assert all(ok and size == os.path.getsize(path) for path, ok, size in found)


def test_many_files_are_checked_by_the_workers_alike(generated, tmp_path, monkeypatch):
    import sys

    fleet_module = sys.modules["poolscope.fleet"]  # (poolscope.fleet is the function)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        shutil.copyfile(generated[i], folder / f"host-{i}.db")
    (folder / "notes.txt").write_text("x")
    (folder / "empty.db").write_bytes(b"")
    broken = folder / "broken.db"
    shutil.copyfile(generated[0], broken)
    with open(broken, "r+b") as handle:
        handle.seek(0)
        handle.write(b"SQLite format 3\x00" + b"\xff" * 84)  # a header SQLite refuses
    sources = [folder, tmp_path / "missing.db"]

    def sorted_found(hosts):
        return (
            hosts.databases,
            sorted((s.source, s.reason) for s in hosts.skipped),
            sorted((e.source, type(e.error).__name__) for e in hosts.errors),
        )

    with poolscope.fleet(sources, workers=2) as serial:
        expected = sorted_found(serial)
    monkeypatch.setattr(fleet_module, "PARALLEL_DISCOVERY", 1)
    with poolscope.fleet(sources, workers=2) as parallel:
        assert sorted_found(parallel) == expected
    assert len(expected[0]) == 3 and len(expected[1]) == 2
    assert (str(broken), "NotADatabaseError") in expected[2]


def test_groups_are_largest_first_and_shrink_to_single_databases(tmp_path, monkeypatch):
    """Guided scheduling: every database in exactly one group, largest first, groups shrinking
    so that the last ones are single databases; a group never exceeds MAX_GROUP."""
    from poolscope.fleet import work

    sizes = [1000] * 30 + [5000, 20] + [1] * 7
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"h{i:02}.db"
        path.write_bytes(b"x" * size)
        paths.append(str(path))
    out = work.groups(paths, 2)
    flat = [p for g in out for p in g]
    assert sorted(flat) == sorted(paths)
    assert flat[0].endswith("h30.db")  # the largest
    weights = [sum(Path(p).stat().st_size for p in g) for g in out]
    assert weights[0] >= max(weights[1:])
    assert [len(g) for g in out[-3:-1]] == [1, 1]  # the tail is handed out one database at a time
    left = sum(sizes)
    for weight in weights[:-1]:  # each group about a third of what is left per worker, never much more
        assert weight <= max(left / 6, max(sizes)) + 1000
        left -= weight

    monkeypatch.setattr(work, "MAX_GROUP", 4)
    assert max(len(g) for g in work.groups(paths, 2)) == 4


def test_a_databases_work_runs_with_the_collector_paused_until_it_is_freed(sample_copy):
    """A pool's load switched the cyclic collector back on while its index was in
    memory, and the collections that followed (during the check, the summary rows)
    walked every object of it.  A fleet now runs each database's work with the
    collector paused, and switches it back on once that work has returned."""
    import gc

    from poolscope.fleet import work

    collections: list[int] = []

    def noted(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    def surveyed(path: str, timeout: float) -> dict:
        gc.callbacks.append(noted)
        try:
            return work.survey(path, timeout)
        finally:
            gc.callbacks.remove(noted)

    assert gc.isenabled()
    ((path, ok, result),) = work.run_group(surveyed, [str(sample_copy)], (30.0,))
    assert ok and [row["pool_id"] for row in result["pools"]] == poolscope.open(sample_copy).pool_ids
    assert collections == []
    assert gc.isenabled()
