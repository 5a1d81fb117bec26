"""Fleet.export: a hive-partitioned Parquet dataset, read back by pyarrow and DuckDB."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pytest
from helpers import append_copy

import poolscope
from poolscope.fleet.dataset import MANIFEST, open_dataset, partition_dir, schema
from poolscope.generate import generate

duckdb = pytest.importorskip("duckdb")

FRAMES = ("records", "members", "messages", "wakes")
KEYS = {
    "records": ("seq",),
    "members": ("joined_at", "run_id"),
    "messages": ("first_seq",),
    "wakes": ("first_seq",),
}


def _key(frame: str):
    def key(row: dict) -> tuple:
        return (row["source"], row["pool_id"], *(row[k] for k in KEYS[frame]))

    return key


def frame_rows(frame: pd.DataFrame, name: str) -> list[dict]:
    rows = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False).to_pylist()
    return sorted(rows, key=_key(name))


def duckdb_rows(out, name: str) -> list[dict]:
    relation = duckdb.sql(
        f"SELECT * FROM read_parquet('{out}/{name}/*/*/*.parquet', hive_partitioning = true, "
        "hive_types_autocast = false, union_by_name = true)"
    )
    return sorted(relation.arrow().read_all().to_pylist(), key=_key(name))


@pytest.fixture
def fleet_dir(oracle, tmp_path):
    folder = tmp_path / "hosts"
    (folder / "rack 1").mkdir(parents=True)
    generate(folder / "rack 1" / "a.db", pools=2, records=250, seed=1)
    generate(folder / "b.db", pools=1, records=300, seed=2)
    shutil.copyfile(oracle / "pool.db", folder / "sdk.db")
    return folder


def test_dataset_reads_back_as_the_frames(fleet_dir, tmp_path):
    out = tmp_path / "dataset"
    with poolscope.fleet(fleet_dir, workers=2) as hosts:
        done = hosts.export(out)
        n_pools = len(hosts.pools)
        assert done["partitions"] == n_pools and done["unchanged"] == 0 and len(done["written"]) == 4 * n_pools
        for name in FRAMES:
            expected = frame_rows(hosts.frame(name), name)
            table = open_dataset(out, name).to_table()
            assert sorted(table.to_pylist(), key=_key(name)) == expected, name
            assert duckdb_rows(out, name) == expected, name
        # one file per frame kind and partition, values URI-encoded
        source = str(fleet_dir / "rack 1" / "a.db")
        folder = partition_dir(out, "records", source, "pool.alpha")
        assert (folder / "part-0.parquet").is_file() and "%20" in folder.parent.name


def test_export_again_rewrites_only_what_changed(fleet_dir, tmp_path):
    out = tmp_path / "dataset"
    grown = fleet_dir / "b.db"
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        hosts.export(out)
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    generate(grown, pools=1, records=400, seed=2)  # appends to b.db's pool
    with poolscope.fleet(fleet_dir, workers=2) as hosts:
        again = hosts.export(out)
        assert again["partitions"] == 1 and again["removed"] == 0
        assert all(f"source={str(grown).replace('/', '%2F')}" in w for w in again["written"])
        changed = {p for p, mtime in files.items() if p.stat().st_mtime_ns != mtime}
        assert {str(p) for p in changed} == set(again["written"])
        for name in FRAMES:
            assert sorted(open_dataset(out, name).to_table().to_pylist(), key=_key(name)) == frame_rows(
                hosts.frame(name), name
            )
        assert hosts.export(out)["partitions"] == 0
    # a database no longer in the fleet: its partitions go, the others stay
    (fleet_dir / "sdk.db").unlink()
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        last = hosts.export(out)
        assert last["removed"] == 3 and last["partitions"] == 0
        assert not any("sdk.db" in str(p) for p in out.rglob("*.parquet"))
        assert duckdb_rows(out, "records") == frame_rows(hosts.records_df(), "records")
    # another cursor: everything is written again
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        assert hosts.export(out, upto=50)["partitions"] == len(hosts.pools)
        assert max(open_dataset(out, "records").to_table().column("seq").to_pylist()) == 50


def test_export_target_must_be_a_folder(fleet_dir, tmp_path):
    """A file, a path under a file, or a symlink is refused as every writer
    refuses it (poolscope.output): an OutputError, nothing written anywhere."""
    target = tmp_path / "file.parquet"
    target.write_text("x")
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "link").symlink_to(elsewhere)
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        for out in (target, target / "below", tmp_path / "link"):
            with pytest.raises(poolscope.OutputError):
                hosts.export(out)
        with pytest.raises(poolscope.InvalidInputError):
            hosts.export(tmp_path / "out", format="csv")
    assert target.read_text() == "x" and not elsewhere.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.parquet", "hosts", "link"]


def test_export_writes_no_file_through_a_symlink_inside_the_dataset(fleet_dir, tmp_path):
    """Partitions and the manifest are written beside their target and renamed
    over it, never through a symlink: a link planted in the dataset makes its
    source's export fail with an OutputError (the rest goes on); a FIFO in the
    manifest's place is not waited on, nor replaced (an OutputError)."""
    out = tmp_path / "out"
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        done = hosts.export(out)
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep")
        planted = Path(done["written"][0])
        planted.unlink()
        planted.symlink_to(victim)
        manifest = out / MANIFEST
        assert manifest.exists()
        manifest.unlink()
        os.mkfifo(manifest)  # the next export cannot read it: everything is written again, but not it
        with pytest.raises(poolscope.OutputError, match="not a regular file"):
            hosts.export(out)
        assert stat.S_ISFIFO(os.lstat(manifest).st_mode)
        manifest.unlink()
        again = hosts.export(out)
        assert hosts.errors == []  # (every database was read)
    assert victim.read_bytes() == b"keep" and planted.is_symlink()
    # the source with the planted link is reported as not written (an OutputError), before any of
    # its files was; the others written again in full
    assert again["errors"] == [] and [type(e.error).__name__ for e in again["failed"]] == ["OutputError"]
    source = again["failed"][0].source
    assert "symlink" in str(again["failed"][0].error)
    assert manifest.is_file() and 0 < len(again["written"]) < len(done["written"])
    assert not any(f"source={quote(source, safe='')}" in path for path in again["written"])


def test_export_neither_writes_nor_deletes_through_a_linked_folder_inside_the_dataset(tmp_path):
    """A folder of the dataset replaced by a symlink to another place: the partitions of a source
    no longer in the fleet are not deleted there (they were, every file of the linked folder, and
    the export then failed with a traceback), and no partition is written there; the export says
    which link, as an OutputError."""
    oracle = Path(__file__).parent / "sdk_histories" / "conformance" / "pool.db"
    hosts, out, elsewhere = tmp_path / "hosts", tmp_path / "out", tmp_path / "elsewhere"
    hosts.mkdir()
    for name in ("a.db", "b.db"):
        shutil.copyfile(oracle, hosts / name)
    a, b = str(hosts / "a.db"), str(hosts / "b.db")
    with poolscope.fleet([a, b], workers=1) as both:
        both.export(out)
    # b's records moved elsewhere and linked back, with a file of someone's beside them
    linked = next((out / "records").glob("source=*b.db"))
    shutil.move(str(linked), str(elsewhere))
    linked.symlink_to(elsewhere)
    (elsewhere / "notes.txt").write_text("keep")
    before = sorted(str(p.relative_to(elsewhere)) for p in elsewhere.rglob("*"))
    with poolscope.fleet([a], workers=1) as only_a, pytest.raises(poolscope.OutputError, match="symlink") as raised:
        only_a.export(out)
    assert raised.value.path == str(linked) or str(linked) in str(raised.value)
    assert sorted(str(p.relative_to(elsewhere)) for p in elsewhere.rglob("*")) == before
    assert (elsewhere / "notes.txt").read_text() == "keep"
    linked.unlink()  # (while it is there, every export refuses to remove b's partitions through it)
    # a whole frame's folder linked elsewhere: nothing is written there
    target = tmp_path / "target"
    target.mkdir()
    shutil.rmtree(out / "members")
    (out / "members").symlink_to(target)
    with poolscope.fleet([a], workers=1) as only_a:
        done = only_a.export(out, upto=5)  # another cursor: every partition is written again
        assert only_a.errors == [] and [type(e.error).__name__ for e in done["failed"]] == ["OutputError"]
    assert list(target.iterdir()) == []


def test_export_again_sees_a_database_grown_in_place_with_its_mtime_set_back(tmp_path):
    """A database overwritten in place by the same history with one record more
    (it fits in the last pages: the same size) and its modification time set back
    is not taken for unchanged: its change time moved, its pool is written again."""
    oracle = Path(__file__).parent / "sdk_histories" / "conformance" / "pool.db"
    folder, out, grown = tmp_path / "hosts", tmp_path / "dataset", tmp_path / "grown.db"
    folder.mkdir()
    path = folder / "host.db"
    shutil.copyfile(oracle, path)
    shutil.copyfile(oracle, grown)
    conn = sqlite3.connect(grown)
    pool_id = conn.execute("SELECT min(pool_id) FROM agent_pool_records").fetchone()[0]
    last = append_copy(conn, pool_id) - 1
    conn.close()
    data = grown.read_bytes()
    assert len(data) == path.stat().st_size
    with poolscope.fleet(folder, workers=1) as hosts:
        hosts.export(out)
    before = path.stat()
    time.sleep(0.05)  # past the file system's time resolution
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with poolscope.fleet(folder, workers=1) as hosts:
        again = hosts.export(out)
        assert again["partitions"] == 1
        seqs = open_dataset(out, "records").to_table().to_pandas().query("pool_id == @pool_id")["seq"]
        assert seqs.max() == last + 1


def hive_off_rows(out, name: str) -> list[dict]:
    """DuckDB's rows with ``source`` and ``pool_id`` from the files (hive partitioning off)."""
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{out}/{name}/*/*/*.parquet', hive_partitioning = false)")
    return sorted(relation.arrow().read_all().to_pylist(), key=_key(name))


def test_long_ids_long_paths_and_names_that_are_not_utf8_are_exported(tmp_path):
    """A pool id the SDK accepts (up to 512 bytes) or a deep path can encode to
    a folder name no file system takes, and a file name that is not UTF-8
    cannot be URI-encoded as given: such databases were not exported at all
    (errors, orphan partitions).  Now every folder name is at most
    FOLDER_NAME_MAX bytes (a long value: a prefix and a hash), the files hold
    the true source (as the frames show it) and pool_id, and the dataset read
    back with hive partitioning off equals the fleet's frames."""
    from poolscope.fleet.dataset import FOLDER_NAME_MAX, folder_value

    deep = tmp_path / "hosts" / "/".join(f"level-{'é' * 30}-{k}" for k in range(4))
    deep.mkdir(parents=True)
    long_ids = ["tenant-" + "é" * 40, "プール" * 10, "p" * 500]  # (+ ".alpha": up to 506 bytes)
    for k, pool_id in enumerate(long_ids):
        generate(deep / "long.db", pools=1, records=40, seed=k + 1, prefix=pool_id)
    generate(deep / "long.db", pools=1, records=40, seed=9)  # and pool.alpha
    odd = tmp_path / "hosts" / "caf\udce9.db"
    generate(odd, pools=2, records=60, seed=3)
    out = tmp_path / "out"
    with poolscope.fleet(tmp_path / "hosts", workers=1) as hosts:
        pools = hosts.pools
        assert len(pools) == 6 and hosts.errors == []
        done = hosts.export(out)
        assert done["errors"] == [] and done["failed"] == [] and done["partitions"] == 6
        for name in FRAMES:
            expected = frame_rows(hosts.frame(name), name)
            assert sorted(open_dataset(out, name).to_table().to_pylist(), key=_key(name)) == expected, name
            assert hive_off_rows(out, name) == expected, name
        labels = set(hosts.records_df()["source"])
    assert {str(odd).replace("\udce9", "\\xe9"), str(deep / "long.db")} == labels
    names = {p.name for p in out.rglob("*") if p.is_dir()}
    assert max(len(os.fsencode(n)) for n in names) <= FOLDER_NAME_MAX
    # one folder per value: the long ones shortened (a prefix and a hash), distinct; short ones as they were
    pool_folders = {p.name for p in (out / "records").glob("*/pool_id=*")}
    assert pool_folders == {f"pool_id={folder_value(p)}" for p in pools["pool_id"]} and len(pool_folders) == 5
    assert "pool_id=pool.alpha" in pool_folders
    assert folder_value(long_ids[2]).startswith("p" * 100) and folder_value(long_ids[2]) != long_ids[2]
    assert folder_value("x~0123456789abcdef") != "x~0123456789abcdef"  # (it only looks shortened)
    # with hive partitioning on, the short values come from the folder names as they are
    short = duckdb_rows(out, "wakes")
    assert {r["pool_id"] for r in short} >= {"pool.alpha"}
    # again: nothing changed, nothing written
    with poolscope.fleet(tmp_path / "hosts", workers=1) as hosts:
        again = hosts.export(out)
        assert again["partitions"] == 0 and again["unchanged"] == 6 and again["removed"] == 0


def test_export_drops_partitions_no_longer_in_the_fleet_whatever_manifest_was_there(fleet_dir, tmp_path):
    """Another upto, no manifest, or a manifest of the earlier format: the
    partitions of databases and pools no longer in the fleet went unremoved
    (the dataset mixed a dropped database's rows with the new export's).  Every
    partition the export does not write now is removed, other files kept."""
    a, b = str(fleet_dir / "rack 1" / "a.db"), str(fleet_dir / "b.db")
    for spoil in ("upto", "missing", "version"):
        out = tmp_path / spoil
        with poolscope.fleet([a, b], workers=1) as both:
            both.export(out, upto=100)
        [b_folder] = (out / "records").glob(f"source={quote(b, safe='')}/pool_id=*")
        (b_folder / "_notes.txt").write_text("keep")  # someone's file in a partition's folder
        manifest = out / MANIFEST
        if spoil == "missing":
            manifest.unlink()
        elif spoil == "version":
            manifest.write_text(manifest.read_text().replace('"version": 2', '"version": 1'))
        with poolscope.fleet([a], workers=1) as only_a:
            done = only_a.export(out, upto=None if spoil == "upto" else 100)
            assert done["removed"] == 1, spoil  # b's one pool
            for name in FRAMES:
                expected = frame_rows(only_a.frame(name, upto=None if spoil == "upto" else 100), name)
                assert sorted(open_dataset(out, name).to_table().to_pylist(), key=_key(name)) == expected
                assert duckdb_rows(out, name) == expected
        assert not any("b.db" in str(p) for p in out.rglob("*.parquet")), spoil
        assert [p.name for p in out.rglob("*") if "b.db" in str(p) and p.is_file()] == ["_notes.txt"]
        assert (b_folder / "_notes.txt").read_text() == "keep"


def test_a_database_whose_partitions_cannot_all_be_written_leaves_none_and_is_an_output_failure(
    fleet_dir, tmp_path, monkeypatch
):
    """A partition that cannot be written (here the third file, after two were)
    used to leave the database's first partitions on disk, listed nowhere, and
    file the database among those that could not be read.  Its new partitions
    are taken back, it is reported in ``failed`` (an OutputError), the other
    databases are exported, and the next export writes it."""
    from poolscope.fleet import dataset

    out = tmp_path / "out"
    real = dataset._write
    calls = []

    def failing(table, folder):
        calls.append(folder)
        if len(calls) == 3:
            raise poolscope.OutputError("cannot write the file (no space left on the device)", path=folder)
        return real(table, folder)

    monkeypatch.setattr(dataset, "_write", failing)
    with poolscope.fleet(fleet_dir, workers=1) as hosts:
        done = hosts.export(out)
        assert hosts.errors == [] and done["errors"] == []
        [failure] = done["failed"]
        assert isinstance(failure.error, poolscope.OutputError) and "no space" in str(failure.error)
        label = f"source={quote(failure.source, safe='')}"
        with poolscope.open(failure.source) as db:
            its_pools = len(db.pool_ids)
        files = list(out.rglob("part-0.parquet"))
        assert files and not any(label in str(p) for p in files)
        assert len(files) == 4 * (len(hosts.pools) - its_pools)
        monkeypatch.setattr(dataset, "_write", real)
        again = hosts.export(out)
        assert again["failed"] == [] and again["partitions"] == its_pools
        assert duckdb_rows(out, "records") == frame_rows(hosts.records_df(), "records")


def test_open_dataset_checks_its_arguments_and_reads_an_empty_export(tmp_path):
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts" / "notes.txt").write_text("not a database")
    out = tmp_path / "out"
    with poolscope.fleet(tmp_path / "hosts", workers=1) as hosts:
        done = hosts.export(out)
    assert done["partitions"] == 0 and sorted(p.name for p in out.iterdir()) == [MANIFEST, *sorted(FRAMES)]
    for name in FRAMES:
        table = open_dataset(out, name).to_table()
        assert table.num_rows == 0 and table.schema == schema(name)
    shutil.rmtree(out / "wakes")  # (an export of nothing by an earlier version: only the manifest)
    assert open_dataset(out, "wakes").count_rows() == 0
    for args in ((out, None), (out, "snapshots"), (None, "records"), ("", "records"), (tmp_path / "hosts", "records")):
        with pytest.raises(poolscope.InvalidInputError):
            open_dataset(*args)


def test_export_checks_its_folder_argument(fleet_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with poolscope.fleet(fleet_dir / "b.db", workers=1) as hosts:
        for out in (None, 5, "", "a\x00b"):
            with pytest.raises(poolscope.InvalidInputError, match="out"):
                hosts.export(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]
