"""The persistent index cache (poolscope.cache): same answers with and without
it, never a stale or wrong history, nothing written where it must not be."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import append_copy, assert_same_arrays, raw_snapshot_lines

import poolscope
from poolscope import cache as cache_module
from poolscope.cache import CachedEntries, IndexCache, entry_key
from poolscope.cli import cli
from poolscope.generate import generate
from poolscope.index import PoolIndex


# ------------------------------------------------------------------ helpers
def snapshot_text(history, cursor: int) -> str:
    """The snapshot's JSON, or the name and text of the error the SDK would give."""
    try:
        return history.snapshot(cursor).to_json()
    except poolscope.PoolscopeError as error:
        return f"{type(error).__name__}: {error}"


@contextmanager
def decodes() -> Iterator[list[int]]:
    """Meanwhile, the seqs ``PoolIndex.decode`` is asked to decode (those after the head it is given)."""
    decoded: list[int] = []
    original = PoolIndex.decode

    def counting(self, rows_, last, *args, **kwargs):
        rows_ = list(rows_)
        decoded.extend(r[0] for r in rows_ if r[0] > last)
        return original(self, rows_, last, *args, **kwargs)

    PoolIndex.decode = counting  # type: ignore[method-assign]
    try:
        yield decoded
    finally:
        PoolIndex.decode = original  # type: ignore[method-assign]


def cached(history) -> bool:
    return isinstance(history.index.entries, CachedEntries)


def listing(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder``: size, mtime and bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            info = path.stat()
            out[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns, path.read_bytes())
    return out


def rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT pool_id, seq, kind, payload_json FROM agent_pool_records ORDER BY rowid").fetchall()
    finally:
        conn.close()


def write_rows(path: Path, records: list[tuple]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO agent_pool_records (pool_id, seq, kind, payload_json) VALUES (?, ?, ?, ?)", records
        )
    conn.close()


@pytest.fixture
def store(tmp_path) -> IndexCache:
    return IndexCache(tmp_path / "cache")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cachegen") / "gen.db"
    generate(path, pools=2, records=600, seed=5)
    return path


@pytest.fixture
def gen_copy(generated, tmp_path) -> Path:
    target = tmp_path / "db" / "gen.db"
    target.parent.mkdir()
    shutil.copy(generated, target)
    return target


def open_both(path: Path, store: IndexCache):
    """(opened without a cache, opened through ``store``)."""
    return poolscope.open(path, cache=False), poolscope.open(path, cache=store.root)


def assert_same_everywhere(plain, via_cache, cursors=None) -> None:
    for pool_id in plain.pool_ids:
        a, b = plain.pool(pool_id), via_cache.pool(pool_id)
        assert a.head == b.head and a.index.seqs == b.index.seqs
        chosen = range(0, a.head + 1) if cursors is None else cursors(a.head)
        for cursor in chosen:
            assert snapshot_text(a, cursor) == snapshot_text(b, cursor), (pool_id, cursor)


# --------------------------------------------------------- same answers
def test_every_snapshot_of_every_oracle_history_is_the_same_from_the_cache(oracle, store):
    path = oracle / "pool.db"
    first = poolscope.open(path, cache=store.root)
    for pool_id in first.pool_ids:
        assert not cached(first.pool(pool_id))  # built, and saved
    assert len(store.entries()) == len(first.pool_ids)
    plain, again = open_both(path, store)
    expected = {(p, c): text for p, c, text in raw_snapshot_lines(oracle)}
    for pool_id in plain.pool_ids:
        history = again.pool(pool_id)
        assert cached(history)
        for cursor in range(0, history.head + 1):
            text = snapshot_text(history, cursor)
            assert text == snapshot_text(plain.pool(pool_id), cursor), (pool_id, cursor)
            if (pool_id, cursor) in expected:
                assert text == expected[(pool_id, cursor)]
        # the SDK's own snapshots after every record, straight from the cache
        assert any(p == pool_id for p, _ in expected)


def test_frames_diff_activity_and_check_are_the_same_from_the_cache(gen_copy, store):
    for pool_id in poolscope.open(gen_copy).pool_ids:
        poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    plain, again = open_both(gen_copy, store)
    for pool_id in plain.pool_ids:
        a, b = plain.pool(pool_id), again.pool(pool_id)
        assert cached(b)
        for name in ("records_df", "members_df", "messages_df", "wakes_df"):
            for upto in (None, a.head // 3):
                pd.testing.assert_frame_equal(getattr(a, name)(upto), getattr(b, name)(upto))
        pd.testing.assert_frame_equal(a.activity(), b.activity())
        for x, y in ((1, a.head), (a.head, a.head // 2)):
            assert a.diff(x, y).to_dict() == b.diff(x, y).to_dict()
        snap_a, snap_b = a.snapshot(), b.snapshot()
        assert snap_a.messages.ids == snap_b.messages.ids and snap_a.wakes.statuses == snap_b.wakes.statuses
        assert list(a.index.entries) == list(b.index.entries)
        assert a.index.fold.messages == b.index.fold.messages
        assert a.index.fold.message_dedupe == b.index.fold.message_dedupe
        assert a.index.fold.members == b.index.fold.members
    assert [x.code for x in plain.check()] == [x.code for x in again.check()]
    pd.testing.assert_frame_equal(plain.records_df(), again.records_df())


def test_random_cursors_of_generated_histories(tmp_path, store):
    rng = random.Random(3)
    for seed in (1, 2):
        path = tmp_path / f"g{seed}.db"
        generate(path, pools=2, records=500, seed=seed)
        for pool_id in poolscope.open(path, cache=store.root).pool_ids:
            poolscope.open(path, cache=store.root).pool(pool_id).load()
        plain, again = open_both(path, store)
        assert_same_everywhere(plain, again, lambda head: rng.sample(range(head + 1), 60) + [head])


# ----------------------------------------------------------- a grown file
def test_a_grown_file_folds_only_the_new_records_and_saves_the_extended_index(gen_copy, store):
    everything = rows(gen_copy)
    pool_id = everything[0][0]
    mine = [r for r in everything if r[0] == pool_id]
    kept, appended = mine[:-150], mine[-150:]
    conn = sqlite3.connect(gen_copy)
    with conn:
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, kept[-1][1]))
    conn.close()
    first = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert first.head == kept[-1][1] and not cached(first)
    write_rows(gen_copy, appended)  # another process appends

    with decodes() as decoded:
        grown = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
        assert cached(grown)
    assert decoded == [r[1] for r in appended]  # only the new records were decoded
    assert len(grown.index.entries.tail) == len(appended)
    plain = poolscope.open(gen_copy, cache=False).pool(pool_id)
    for cursor in list(range(0, grown.head + 1, 7)) + [first.head, first.head + 1, grown.head]:
        assert snapshot_text(grown, cursor) == snapshot_text(plain, cursor)
    pd.testing.assert_frame_equal(grown.records_df(), plain.records_df())
    pd.testing.assert_frame_equal(grown.messages_df(), plain.messages_df())
    for name in ("members", "messages", "wakes", "message_dedupe", "wake_dedupe", "config", "cursor", "count"):
        assert getattr(grown.index.fold, name) == getattr(plain.index.fold, name), name
    assert grown.index.next_seq == plain.index.next_seq
    assert_same_arrays(grown.index, plain.index)
    # the extended index was saved: the next open decodes nothing
    with decodes() as decoded:
        third = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
        assert cached(third)
    assert decoded == [] and third.index.entries.base_rows == len(mine)
    assert snapshot_text(third, third.head) == snapshot_text(plain, plain.head)


def test_refresh_and_follow_fold_only_what_was_appended(gen_copy, store):
    everything = rows(gen_copy)
    pool_id = everything[0][0]
    mine = [r for r in everything if r[0] == pool_id]
    conn = sqlite3.connect(gen_copy)
    with conn:
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, mine[-40][1]))
    conn.close()
    for use_cache in (store.root, store.root, False):  # built, restored from the cache, no cache
        history = poolscope.open(gen_copy, cache=use_cache).pool(pool_id)
        head = history.head
        with decodes() as decoded:
            write_rows(gen_copy, [r for r in mine if head < r[1] <= head + 10])
            assert history.refresh() == 10
            assert decoded == list(range(head + 1, head + 11))
            followed = [r.cursor for r in history.follow(idle_timeout=0.05, poll=0.01)]
            assert followed == []
        plain = poolscope.open(gen_copy, cache=False).pool(pool_id)
        assert snapshot_text(history, history.head) == snapshot_text(plain, plain.head)
        conn = sqlite3.connect(gen_copy)
        with conn:
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, head))
        conn.close()


# ------------------------------------------------- a different file, same path
def _same_length_edit(text: str) -> str:
    """Change one character of a string value, keeping the JSON valid and its length."""
    at = text.index('"content_ref":"') + len('"content_ref":"')
    return text[:at] + ("X" if text[at] != "X" else "Y") + text[at + 1 :]


@pytest.mark.parametrize("how", ["rewritten in place", "replaced", "truncated", "vacuumed", "restored from a backup"])
def test_a_changed_file_is_never_served_from_a_stale_entry(gen_copy, tmp_path, store, how):
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    backup = tmp_path / "backup.db"
    shutil.copy(gen_copy, backup)
    before = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert before.head and len(store.entries()) == 1  # used: its index built and saved
    info = os.stat(gen_copy)
    if how == "rewritten in place":
        conn = sqlite3.connect(gen_copy)
        seq, text = conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'run_message' "
            "ORDER BY seq LIMIT 1 OFFSET 100",
            (pool_id,),
        ).fetchone()
        with conn:
            conn.execute(
                "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
                (_same_length_edit(text), pool_id, seq),
            )
        conn.close()
    elif how == "replaced":
        other = tmp_path / "other.db"
        generate(other, pools=2, records=600, seed=6)
        shutil.copy(other, gen_copy)
    elif how == "truncated":
        conn = sqlite3.connect(gen_copy)
        with conn:
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, before.head - 30))
        conn.close()
    elif how == "vacuumed":
        conn = sqlite3.connect(gen_copy)
        with conn:
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, before.head - 5))
        conn.execute("VACUUM")
        conn.close()
    else:  # a newer state first (opened and cached), then the older backup copied back
        write_rows(gen_copy, [])
        shutil.copy(backup, tmp_path / "newer.db")
        conn = sqlite3.connect(gen_copy)
        with conn:
            conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, before.head - 50))
        conn.close()
        poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
        shutil.copy(backup, gen_copy)
    if os.stat(gen_copy).st_size == info.st_size:
        os.utime(gen_copy, ns=(info.st_atime_ns, info.st_mtime_ns))  # same size and same mtime too
    plain, again = open_both(gen_copy, store)
    assert_same_everywhere(plain, again, lambda head: range(0, head + 1))
    if how == "rewritten in place":
        assert plain.pool(pool_id).head == before.head
    # the entry was rebuilt for the new content: used as is next time
    third = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(third), third.db.cache.last_miss
    assert third.head == plain.pool(pool_id).head and third.index.entries.tail == []


# ------------------------------------------------------------ a bad entry
def _data_file(store: IndexCache) -> Path:
    (data,) = store.root.glob("*.arrow")
    return data


@pytest.mark.parametrize(
    "damage",
    [
        "truncated data",
        "flipped bytes",
        "empty data",
        "data deleted",
        "garbage manifest",
        "older format",
        "wrong python",
        # shapes another program (or an edit with its checksum made again) could leave:
        # every command that reads the cache, ``cache info`` and ``cache clear`` included,
        # went down with a traceback on them (found by fuzzing)
        "print a list",
        "records a string",
        "head infinite",
        "format a string",
        "samples not pairs",
        "body a list",
        # a manifest no reader should read: nested deeper than the parser's recursion (every
        # reader raised RecursionError), or longer than any this module writes (read whole)
        "nested manifest",
        "oversized manifest",
    ],
)
def test_a_truncated_corrupt_or_old_entry_is_ignored_and_rewritten(gen_copy, store, damage, monkeypatch):
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    (entry,) = store.entries()
    data = _data_file(store)
    blob = data.read_bytes()
    if damage == "truncated data":
        data.write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped bytes":
        middle = len(blob) // 2
        data.write_bytes(blob[:middle] + bytes(b ^ 0x5A for b in blob[middle : middle + 64]) + blob[middle + 64 :])
    elif damage == "empty data":
        data.write_bytes(b"")
    elif damage == "data deleted":
        data.unlink()
    elif damage == "garbage manifest":
        entry.manifest.write_bytes(b"\x00{not json")
    elif damage == "nested manifest":
        entry.manifest.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    elif damage == "oversized manifest":  # valid, checksum and all, but padded past the limit
        text = entry.manifest.read_bytes()
        monkeypatch.setattr(cache_module, "MAX_MANIFEST", len(text) + 100)
        entry.manifest.write_bytes(text + b" " * 200)
    else:
        outer = json.loads(entry.manifest.read_text())
        body = outer["body"]
        if damage == "older format":
            body["format"] = cache_module.FORMAT - 1
        elif damage == "wrong python":
            body["python"] = [2, 7]
        elif damage == "print a list":
            body["print"] = []
        elif damage == "records a string":
            body["print"]["records"] = "x"
        elif damage == "head infinite":
            body["print"]["head"] = float("inf")
        elif damage == "format a string":
            body["format"] = "four"
        elif damage == "samples not pairs":
            body["print"]["samples"] = [[1]]
        else:
            outer["body"] = [body]
        import hashlib

        from click.testing import CliRunner

        from poolscope.cli import cli

        text = json.dumps(outer["body"], sort_keys=True).encode()
        outer["sha256"] = hashlib.sha256(text).hexdigest()
        entry.manifest.write_text(json.dumps(outer))
        listed = CliRunner().invoke(cli, ["cache", "info", "--json"], env={"POOLSCOPE_CACHE_DIR": str(store.root)})
        assert listed.exit_code == 0 and listed.exception is None, listed.output
        assert [e.key for e in store.entries()] == [entry.key]
    if "manifest" in damage:
        from click.testing import CliRunner

        from poolscope.cli import cli

        listed = CliRunner().invoke(cli, ["cache", "info", "--json"], env={"POOLSCOPE_CACHE_DIR": str(store.root)})
        assert listed.exit_code == 0 and listed.exception is None, listed.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain, again = open_both(gen_copy, store)
        history = again.pool(pool_id)
    assert not cached(history)  # rebuilt from the log ...
    assert_same_everywhere(plain, again, lambda head: range(0, head + 1, 3))
    (rewritten,) = [e for e in store.entries() if e.pool_id == pool_id]  # ... and saved again
    assert rewritten.format == cache_module.FORMAT
    assert cached(poolscope.open(gen_copy, cache=store.root).pool(pool_id))
    readable = damage in (
        "truncated data",
        "flipped bytes",
        "empty data",
        "data deleted",
        "older format",
        "wrong python",
    )
    if readable:  # else the old data file is unnamed: removed once a minute old
        assert len(list(store.root.glob("*.arrow"))) == len(store.entries())


# --------------------------------------------------------- two at once
def test_two_processes_opening_the_same_pool_at_once_both_work(gen_copy, store):
    plain = poolscope.open(gen_copy, cache=False)
    pool_id = plain.pool_ids[0]
    expected = plain.pool(pool_id).snapshot().to_json()
    code = (
        "import sys, poolscope, poolscope.cache as c\n"
        "c.BACKGROUND_THRESHOLD = 0\n"
        "for _ in range(3):\n"
        "    db = poolscope.open(sys.argv[1], cache=sys.argv[2])\n"
        "    print(db.pool(sys.argv[3]).snapshot().to_json())\n"
    )
    args = [sys.executable, "-c", code, str(gen_copy), str(store.root), pool_id]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.splitlines() == [expected] * 3
        assert "Traceback" not in err
    assert not list(store.root.glob("*.tmp")) and not list(store.root.glob(".*"))
    (entry,) = store.entries()
    again = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(again) and again.snapshot().to_json() == expected


def test_a_large_index_is_saved_by_a_helper_process(gen_copy, store, monkeypatch):
    monkeypatch.setattr(cache_module, "BACKGROUND_THRESHOLD", 1)
    plain = poolscope.open(gen_copy, cache=False)
    pool_id = plain.pool_ids[0]
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    cache_module.wait()
    again = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(again)
    assert snapshot_text(again, again.head) == snapshot_text(plain.pool(pool_id), again.head)


# ------------------------------------------------- where it lives, or not
def test_the_database_and_its_folder_never_change(gen_copy, store):
    folder = gen_copy.parent
    before = listing(folder)
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    try:
        for _ in range(2):
            db = poolscope.open(gen_copy, cache=store.root)
            for history in db.pools():
                history.snapshot()
            db.close()
    finally:
        folder.chmod(mode)
    assert listing(folder) == before
    assert store.entries() and not str(store.root).startswith(str(folder))


def test_cache_dir_env_var_then_xdg_then_home(tmp_path, gen_copy, monkeypatch):
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    poolscope.open(gen_copy).pool(pool_id).load()
    assert len(IndexCache(tmp_path / "explicit").entries()) == 1
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()
    monkeypatch.delenv("POOLSCOPE_CACHE_DIR")
    poolscope.open(gen_copy).pool(pool_id).load()
    assert len(IndexCache(tmp_path / "xdg" / "poolscope").entries()) == 1
    monkeypatch.delenv("XDG_CACHE_HOME")
    poolscope.open(gen_copy).pool(pool_id).load()
    assert len(IndexCache(tmp_path / "home" / ".cache" / "poolscope").entries()) == 1
    assert cache_module.default_dir() == tmp_path / "home" / ".cache" / "poolscope"


def test_cache_false_reads_and_writes_nothing_anywhere(tmp_path, gen_copy, monkeypatch):
    for name in ("POOLSCOPE_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = listing(gen_copy.parent)
    db = poolscope.open(gen_copy, cache=False)
    for history in db.pools():
        history.snapshot()
        history.records_df()
        assert not cached(history)
    assert db.cache is None and db.cache_entries() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
    assert listing(gen_copy.parent) == before
    # an existing entry is not read either
    poolscope.open(gen_copy).pool(db.pool_ids[0]).load()
    assert len(cache_module.entries()) == 1
    assert not cached(poolscope.open(gen_copy, cache=False).pool(db.pool_ids[0]))


def test_a_cache_folder_that_cannot_be_written_means_no_cache_and_one_warning(tmp_path, gen_copy):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    pool_ids = poolscope.open(gen_copy, cache=False).pool_ids
    cache_module._warned.clear()
    with pytest.warns(cache_module.CacheWarning) as caught:
        db = poolscope.open(gen_copy, cache=blocker / "cache")
        for pool_id in pool_ids:
            assert not cached(db.pool(pool_id))
            db.pool(pool_id).snapshot()
        poolscope.open(gen_copy, cache=blocker / "cache").pool(pool_ids[0])
    assert len(caught) == 1 and "cache" in str(caught[0].message)
    assert blocker.read_text() == "not a folder"


def test_a_cache_folder_whose_files_cannot_be_written_means_no_cache_and_one_warning(tmp_path, gen_copy, monkeypatch):
    """A folder that passes the access check but takes no new file (a full disk, a quota, NFS's
    root squash): one warning for the process, not one per pool; no file of the failed tries
    left behind; and no more tries into that folder."""
    import errno

    root = tmp_path / "full"
    real_replace = os.replace
    tries = []

    def full(src, dst, *args, **kwargs):
        if Path(os.fsdecode(dst)).parent == root:
            tries.append(dst)
            raise OSError(errno.ENOSPC, "No space left on device", os.fsdecode(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    pool_ids = poolscope.open(gen_copy, cache=False).pool_ids
    assert len(pool_ids) == 2
    cache_module._warned.clear()
    cache_module._unwritable.discard(str(root))
    with pytest.warns(cache_module.CacheWarning) as caught:
        for _ in range(2):
            db = poolscope.open(gen_copy, cache=root)
            for pool_id in pool_ids:
                db.pool(pool_id).snapshot()
                cache_module.wait()
    assert len(caught) == 1 and "No space left on device" in str(caught[0].message)
    assert str(root) in str(caught[0].message)
    assert len(tries) == 1  # the first save found it full; none tried after it
    assert list(root.iterdir()) == []
    cache_module._unwritable.discard(str(root))


# A read-only cache folder (an entry used, none written): tests/test_readonly.py reads it as nobody.


def test_a_read_only_cache_location_works_without_a_cache(tmp_path, gen_copy, monkeypatch):
    # /proc is read-only for everyone, root included
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", "/proc/poolscope-cache")
    cache_module._warned.clear()
    with pytest.warns(cache_module.CacheWarning):
        db = poolscope.open(gen_copy)
        history = db.pool(db.pool_ids[0])
        history.load()  # built, and the cache found unwritable
    assert not cached(history) and history.snapshot().cursor == history.head


def test_a_cache_folder_that_is_the_databases_folder_gets_no_entry(tmp_path, gen_copy, monkeypatch):
    """``$POOLSCOPE_CACHE_DIR`` a symlink to the database's own folder: nothing
    is written beside the database (one warning); reading works as usual."""
    link = tmp_path / "cache-link"
    link.symlink_to(gen_copy.parent, target_is_directory=True)
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(link))
    before = listing(gen_copy.parent)
    cache_module._warned.clear()
    with pytest.warns(cache_module.CacheWarning, match="database's folder"):
        db = poolscope.open(gen_copy)
        for pool_id in db.pool_ids:
            assert db.pool(pool_id).snapshot().cursor == db.pool(pool_id).head
    cache_module.wait()
    assert listing(gen_copy.parent) == before


@pytest.mark.parametrize("linked", ["manifest", "data"])
def test_an_entry_file_that_is_a_symlink_is_never_used_nor_touched(tmp_path, gen_copy, store, linked):
    """A manifest (or data file) moved out of the cache folder and linked back: the restore set the
    outside file's modification time (os.utime followed the link); the entry is now a miss, its
    target left as it is, and the pool is read from the file."""
    first = poolscope.open(gen_copy, cache=store.root)
    pool_id = first.pool_ids[0]
    expected = first.pool(pool_id).snapshot().to_json()
    cache_module.wait()
    first.close()
    suffix = ".json" if linked == "manifest" else ".arrow"
    (entry,) = [
        p for p in store.root.iterdir() if p.suffix == suffix and p.name.startswith(entry_key(gen_copy, pool_id))
    ]
    outside = tmp_path / f"outside{suffix}"
    shutil.move(str(entry), str(outside))
    entry.symlink_to(outside)
    os.utime(outside, (1_577_836_800, 1_577_836_800))
    with poolscope.open(gen_copy, cache=store.root) as again:
        history = again.pool(pool_id)
        assert history.snapshot().to_json() == expected
        assert not cached(history) and "symlink" in again.cache.last_miss
    assert outside.stat().st_mtime == 1_577_836_800


def test_clear_says_so_when_entries_cannot_be_removed(gen_copy, store, monkeypatch):
    """A cache folder whose files cannot be removed (read-only, another user's): clear() said it
    removed every entry, all still there; it now raises an OutputError saying how many were not."""
    with poolscope.open(gen_copy, cache=store.root) as db:
        for pool_id in db.pool_ids:
            db.pool(pool_id).snapshot()
    cache_module.wait()
    entries = len(store.entries())
    assert entries == 2

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(poolscope.OutputError, match=f"removed 0 entries, but {entries} could not be removed"):
        store.clear()
    monkeypatch.undo()
    assert len(store.entries()) == entries
    assert store.clear(gen_copy) == entries and store.entries() == []


def test_a_folder_at_a_manifests_name_is_no_entry(gen_copy, store):
    """A folder where an entry's manifest would be (made by hand, or another program): it is not
    listed as an entry, ``clear()`` leaves it alone without saying the cache is unwritable (it
    raised "could not be removed (is the cache folder writable?)"), opens still work, and only
    that entry goes unsaved (saving it turned the whole cache off, with a warning naming the folder)."""
    with poolscope.open(gen_copy, cache=store.root) as db:
        first, second = db.pool_ids
        expected = db.pool(first).snapshot().to_json()
    cache_module.wait()
    (entry,) = store.entries()
    assert store.clear() == 1
    entry.manifest.mkdir()
    (entry.manifest / "theirs.txt").write_text("kept")
    assert store.entries() == [] and store.clear() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache_module.CacheWarning)
        for _ in range(2):
            with poolscope.open(gen_copy, cache=store.root) as db:
                assert db.pool(first).snapshot().to_json() == expected
            cache_module.wait()
        assert store.entries() == []
        with poolscope.open(gen_copy, cache=store.root) as db:
            db.pool(second).snapshot()
        cache_module.wait()
    assert [e.pool_id for e in store.entries()] == [second]
    assert store.clear() == 1 and store.entries() == []
    assert (entry.manifest / "theirs.txt").read_text() == "kept"


def test_only_an_entrys_own_files_are_counted_evicted_or_tidied(tmp_path, gen_copy, monkeypatch):
    """A cache folder shared with other files (hours old, named ``*.tmp``,
    ``*.arrow``, ``*.json``): saving, evicting and ``clear()`` remove only
    files named as an entry's are, and the cap counts only those."""
    root = tmp_path / "shared"
    root.mkdir()
    theirs = {
        "backup.tmp": b"SQLite format 3\x00" + bytes(100),
        "data.arrow": b"someone's table",
        "notes.json": b"{}",
        "0123456789abcdef0123456789abcdef.arrow": b"not ours: no token",
        ".0123456789abcdef0123456789abcdef.tmp": b"not ours either",
    }
    old = time.time() - 7200
    for name, data in theirs.items():
        (root / name).write_bytes(data)
        os.utime(root / name, (old, old))
    # files of a crashed writer, hours old: tidied away
    crashed = [
        ".0123456789abcdef0123456789abcdef.0123456789ab.arrow.4242.tmp",
        "0123456789abcdef0123456789abcdef.0123456789ab.arrow",
    ]
    for name in crashed:
        (root / name).write_bytes(b"x" * 10)
        os.utime(root / name, (old, old))
    store = IndexCache(root)
    cache_module._tidied.discard(root)
    monkeypatch.setenv("POOLSCOPE_CACHE_SIZE", "10GB")
    db = poolscope.open(gen_copy, cache=store)
    db.pool(db.pool_ids[0]).load()
    cache_module.wait()
    assert store.entries() and not any((root / name).exists() for name in crashed)
    ours = sum(p.stat().st_size for p in root.iterdir() if p.name not in theirs)
    assert store.size() == ours
    monkeypatch.setenv("POOLSCOPE_CACHE_SIZE", "0")
    assert store.evict() == 1 and store.clear() == 0
    assert {p.name: p.read_bytes() for p in root.iterdir()} == theirs


# ------------------------------------------------------------- managing
def test_least_recently_used_entries_go_first_under_the_size_cap(tmp_path, store, monkeypatch):
    paths = []
    for i in range(3):
        path = tmp_path / f"lru{i}.db"
        generate(path, pools=1, records=300, seed=20 + i)
        paths.append(path)
    poolscope.open(paths[0], cache=store.root).pool(poolscope.open(paths[0], cache=False).pool_ids[0]).load()
    one = store.size()
    monkeypatch.setenv("POOLSCOPE_CACHE_SIZE", str(int(one * 2.5)))
    for path in paths[1:]:
        poolscope.open(path, cache=store.root).pool(poolscope.open(path, cache=False).pool_ids[0]).load()
    kept = {e.db for e in store.entries()}
    assert kept == {str(paths[1].resolve()), str(paths[2].resolve())}
    assert store.size() <= int(one * 2.5)
    monkeypatch.setenv("POOLSCOPE_CACHE_SIZE", "0")
    assert store.evict() == 2 and store.entries() == []


def test_cache_info_and_clear_on_the_command_line(tmp_path, monkeypatch, generated):
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(tmp_path / "c"))
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    shutil.copy(generated, a)
    shutil.copy(generated, b)
    for path in (a, b):
        db = poolscope.open(path)
        for history in db.pools():
            history.snapshot()
    runner = CliRunner()
    result = runner.invoke(cli, ["cache", "info"])
    assert result.exit_code == 0, result.output
    assert str(a.resolve()) in result.output and str(b.resolve()) in result.output
    assert str(tmp_path / "c") in result.output
    result = runner.invoke(cli, ["cache", "info", "--json"])
    info = json.loads(result.output)
    assert len(info["entries"]) == 4 and info["folder"] == str(tmp_path / "c") and info["state"] == "ok"
    assert all(e["bytes"] > 0 and e["records"] > 0 for e in info["entries"])
    result = runner.invoke(cli, ["cache", "clear", str(a)])
    assert result.exit_code == 0 and "2" in result.output
    assert {e.db for e in cache_module.entries()} == {str(b.resolve())}
    a.unlink()  # an entry of a deleted database can still be cleared by its path
    result = runner.invoke(cli, ["cache", "clear"])
    assert result.exit_code == 0 and cache_module.entries() == []
    assert poolscope.open(b).cache_entries() == []
    # a cache "folder" that is a file: no entries, and said to be no folder (it read as an empty cache)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(tmp_path / "file"))
    result = runner.invoke(cli, ["cache", "info"])
    assert (
        result.exit_code == 0
        and "0 entries" in result.output
        and "not a folder: the index cache is off" in result.output
    )
    assert json.loads(runner.invoke(cli, ["cache", "info", "--json"]).output)["state"] == "not a folder"


def test_records_folded_in_several_steps_on_a_restored_index_equal_a_full_load(gen_copy, store):
    everything = rows(gen_copy)
    pool_id = everything[0][0]
    mine = [r for r in everything if r[0] == pool_id]
    cut = len(mine) // 2
    conn = sqlite3.connect(gen_copy)
    with conn:
        conn.execute("DELETE FROM agent_pool_records WHERE pool_id = ? AND seq > ?", (pool_id, mine[cut][1]))
    conn.close()
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    history = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(history)
    for chunk in (mine[cut + 1 : cut + 2], mine[cut + 2 : cut + 60], mine[cut + 60 :]):
        write_rows(gen_copy, chunk)
        assert history.refresh() == len(chunk)
        plain = poolscope.open(gen_copy, cache=False).pool(pool_id)
        assert history.index.next_seq == plain.index.next_seq
        assert snapshot_text(history, history.head) == snapshot_text(plain, plain.head)
    for name in ("members", "messages", "wakes", "message_dedupe", "wake_dedupe", "count", "cursor"):
        assert getattr(history.index.fold, name) == getattr(plain.index.fold, name), name
    write_rows(gen_copy, [])
    assert [snapshot_text(history, k) for k in range(0, history.head + 1, 5)] == [
        snapshot_text(plain, k) for k in range(0, plain.head + 1, 5)
    ]


def test_damaged_records_keep_their_problem_and_code_in_the_cache(gen_copy, store):
    conn = sqlite3.connect(gen_copy)
    pool_id, seq = conn.execute(
        "SELECT pool_id, seq FROM agent_pool_records ORDER BY rowid LIMIT 1 OFFSET 50"
    ).fetchone()
    with conn:
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = '{not json' WHERE pool_id = ? AND seq = ?", (pool_id, seq)
        )
        conn.execute(
            'UPDATE agent_pool_records SET payload_json = \'{"type":"wake"}\' WHERE pool_id = ? AND seq = ?',
            (pool_id, seq + 3),
        )
    conn.close()
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    plain, again = open_both(gen_copy, store)
    a, b = plain.pool(pool_id), again.pool(pool_id)
    assert cached(b) and len(a.index.problems) == 2
    for at, error in a.index.problems.items():
        restored = b.index.problems[at]
        assert (type(restored), restored.code, str(restored)) == (type(error), error.code, str(error))
    assert [x.to_dict() for x in plain.check()] == [x.to_dict() for x in again.check()]
    assert snapshot_text(a, seq) == snapshot_text(b, seq)


def test_oddities_are_kept_in_the_cache(gen_copy, store):
    """A record filed under another kind is folded as its payload says and reported:
    the same from an entry as from the log."""
    conn = sqlite3.connect(gen_copy)
    pool_id, seq = conn.execute(
        "SELECT pool_id, seq FROM agent_pool_records WHERE kind = 'run_message' ORDER BY rowid LIMIT 1 OFFSET 50"
    ).fetchone()
    with conn:
        conn.execute("UPDATE agent_pool_records SET kind = 'wake' WHERE pool_id = ? AND seq = ?", (pool_id, seq))
    conn.close()
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    plain, again = open_both(gen_copy, store)
    a, b = plain.pool(pool_id), again.pool(pool_id)
    assert cached(b) and list(a.index.oddities) == [seq] and b.index.oddities == a.index.oddities
    assert [x.to_dict() for x in plain.check()] == [x.to_dict() for x in again.check()]
    assert [x.code for x in again.check() if x.seq == seq] == ["kind_mismatch"]
    assert snapshot_text(a, seq) == snapshot_text(b, seq)


def test_a_load_counts_the_rows_it_read_the_way_the_file_counts_them(gen_copy, tmp_path, store):
    """The count an entry is checked against comes from the load (no second
    count of the whole pool); a row the load cannot place makes the counts
    differ, and then no entry is kept (the pool is still read as always)."""
    with poolscope.open(gen_copy, cache=False) as db:
        for pool_id in db.pool_ids:
            index = db.pool(pool_id).index
            assert index.counted == (index.head, cache_module.count_upto(db.conn, pool_id, index.head)[0])
    odd = tmp_path / "odd.db"
    shutil.copy(gen_copy, odd)
    conn = sqlite3.connect(odd)
    pool_id = conn.execute("SELECT min(pool_id) FROM agent_pool_records").fetchone()[0]
    with conn:
        conn.execute(
            "INSERT INTO agent_pool_records VALUES (?, 0, 'pool_created', '{\"type\":\"pool_created\"}')", (pool_id,)
        )
    conn.close()
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()  # the same pool without that row ...
    history = poolscope.open(odd, cache=store.root).pool(pool_id).load()
    cache_module.wait()
    assert [e.db for e in store.entries()] == [str(gen_copy.resolve())]  # ... gets an entry; this one not
    plain = poolscope.open(odd, cache=False).pool(pool_id)
    assert snapshot_text(history, history.head) == snapshot_text(plain, plain.head)


def test_pools_below_the_size_threshold_are_not_saved(gen_copy, store, monkeypatch):
    """Small pools load faster than an entry pays back: by default a pool under
    10,000 records gets none (a fleet of small files leaves the folder empty);
    $POOLSCOPE_CACHE_MIN_RECORDS moves the threshold."""
    with poolscope.open(gen_copy, cache=False) as db:
        sizes = {pool_id: len(db.pool(pool_id)) for pool_id in db.pool_ids}
    monkeypatch.delenv("POOLSCOPE_CACHE_MIN_RECORDS")
    assert cache_module.min_records() == cache_module.DEFAULT_MIN_RECORDS > max(sizes.values())
    for pool_id in sizes:
        poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    cache_module.wait()
    assert store.entries() == []
    threshold = min(sizes.values())
    monkeypatch.setenv("POOLSCOPE_CACHE_MIN_RECORDS", str(threshold))
    for pool_id in sizes:
        poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    cache_module.wait()
    assert sorted(e.pool_id for e in store.entries()) == sorted(sizes)  # at the threshold: saved


def test_bulk_readers_use_entries_but_save_none(generated, tmp_path, monkeypatch):
    """A fleet's workers and its dataset export read the pools once, on every core: they use valid
    entries (of the cache the calling process reads now, whatever the workers' environment) but
    write none."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(folder))  # after the suite's fork server started
    sources = []
    for name in ("a.db", "b.db"):
        shutil.copyfile(generated, tmp_path / name)
        sources.append(str(tmp_path / name))

    def survey() -> tuple:
        with poolscope.fleet(sources, workers=2) as hosts:
            hosts.records_df()
            hosts.messages_df()
            hosts.export(tmp_path / "dataset")
            return hosts.pools.to_dict("records"), hosts.check().to_dict("records")

    before = survey()
    assert not folder.exists() or not list(folder.iterdir())
    # entries saved by opening a.db's pools here; their last use is set in the past
    with poolscope.open(sources[0]) as db:
        for history in db.pools():
            history.load()
    poolscope.cache.wait()
    manifests = sorted(folder.glob("*.json"))
    assert len(manifests) == 2
    for manifest in manifests:
        os.utime(manifest, (1_000_000_000, 1_000_000_000))
    assert survey() == before
    assert sorted(folder.glob("*.json")) == manifests  # nothing saved for b.db's pools
    assert all(manifest.stat().st_mtime > 1_000_000_000 for manifest in manifests)  # a.db's were used


def _gated_save_script(gate: Path, db: Path) -> str:
    """A program that opens ``db``'s first pool and saves its entry from a helper that writes only
    once ``gate`` exists."""
    return (
        "import os, sys, time\n"
        "import poolscope, poolscope.cache as cache\n"
        "original = cache._write_in_child\n"
        "def gated(*args):\n"
        f"    while not os.path.exists({str(gate)!r}):\n"
        "        time.sleep(0.01)\n"
        "    original(*args)\n"
        "cache._write_in_child = gated\n"
        "cache.BACKGROUND_THRESHOLD = 1\n"
        f"db = poolscope.open({str(db)!r})\n"
        "db.pool(db.pool_ids[0]).load()\n"
        "print(len(cache._helpers))\n"
    )


def test_a_program_ends_without_waiting_for_its_entry_which_is_written_after(gen_copy, tmp_path):
    folder, gate = tmp_path / "cache", tmp_path / "gate"
    env = {**os.environ, "POOLSCOPE_CACHE_DIR": str(folder), "POOLSCOPE_CACHE_MIN_RECORDS": "0"}
    try:
        # capture_output: the helper must not hold the program's stdout or stderr open either
        done = subprocess.run(
            [sys.executable, "-c", _gated_save_script(gate, gen_copy)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["1"]  # one helper was writing when the program ended
        assert not list(folder.glob("*.json"))  # ... and has written nothing yet
    finally:
        gate.touch()  # a failure above must not leave the helper waiting forever
    deadline = time.monotonic() + 60
    while not list(folder.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(folder.glob("*.json"))) == 1
    poolscope.cache.wait()  # (no helper of this process)
    again = poolscope.open(gen_copy, cache=folder)
    history = again.pool(again.pool_ids[0])
    assert cached(history)
    plain = poolscope.open(gen_copy, cache=False).pool(history.pool_id)
    assert snapshot_text(history, history.head) == snapshot_text(plain, history.head)


@pytest.fixture
def gate(tmp_path, monkeypatch) -> Path:
    """Every large index is saved by a helper, which writes only once the returned
    path exists (the test must create it, also when it fails: ``finally``)."""
    gate = tmp_path / "gate"
    original = cache_module._write_in_child

    def gated(*args):  # runs in the forked helper
        while not gate.exists():
            time.sleep(0.01)
        original(*args)

    monkeypatch.setattr(cache_module, "_write_in_child", gated)
    monkeypatch.setattr(cache_module, "BACKGROUND_THRESHOLD", 1)
    return gate


def test_wait_waits_for_the_helpers_or_for_its_timeout(gen_copy, store, gate):
    db = poolscope.open(gen_copy, cache=store.root)
    db.pool(db.pool_ids[0]).load()
    try:
        assert len(cache_module._helpers) == 1
        # background work: the helper runs at a lower priority than its caller
        nice = lambda pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])  # noqa: E731
        deadline = time.monotonic() + 10
        while nice(cache_module._helpers[0]) == nice(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.01)  # (the helper lowers it as it starts)
        assert nice(cache_module._helpers[0]) == min(19, nice(os.getpid()) + cache_module.HELPER_NICENESS)
        started = time.monotonic()
        cache_module.wait(timeout=0.3)
        assert time.monotonic() - started < 10 and len(cache_module._helpers) == 1
        assert not list(store.root.glob("*.json"))
    finally:
        gate.touch()  # a failure above must not leave the helper waiting (nor the test hanging)
    cache_module.wait()
    assert cache_module._helpers == [] and len(list(store.root.glob("*.json"))) == 1


def test_no_more_helpers_write_at_once_than_allowed(gen_copy, store, gate, monkeypatch):
    """Loading many large pools in a row does not start a helper for each: while
    MAX_HELPERS write, a large pool loaded is not saved (neither by another helper nor
    in the caller), and a later open saves it."""
    monkeypatch.setattr(cache_module, "MAX_HELPERS", 1)
    first, second = poolscope.open(gen_copy, cache=False).pool_ids
    db = poolscope.open(gen_copy, cache=store.root)
    try:
        db.pool(first).load()
        assert len(cache_module._helpers) == 1
        db.pool(second).load()
        assert len(cache_module._helpers) == 1  # the helper is busy: the second pool is not saved
    finally:
        gate.touch()  # a failure above must not leave the helper waiting (nor the test hanging)
    cache_module.wait()
    assert [e.pool_id for e in store.entries()] == [first]
    again = poolscope.open(gen_copy, cache=store.root)
    assert cached(again.pool(first)) and not cached(again.pool(second))  # the second one loaded and saved now
    cache_module.wait()
    assert sorted(e.pool_id for e in store.entries()) == sorted([first, second])
    assert cached(poolscope.open(gen_copy, cache=store.root).pool(second))


def test_an_index_restored_before_the_file_was_rewritten_is_not_saved_over_it(gen_copy, store):
    """doctor saves a restored pool's entry again after reading its wakes; if a record
    the entry covers was rewritten in place meanwhile (same file, same size), the
    entry's hashes disagree with the file's and nothing is saved -- an entry of the old
    records with the new file's hashes would pass every later check and serve them."""
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    cache_module.wait()
    written = lambda: [  # noqa: E731
        json.loads(e.manifest.read_text())["body"]["data"] for e in store.entries() if e.pool_id == pool_id
    ]
    before = written()
    db = poolscope.open(gen_copy, cache=store.root)
    history = db.pool(pool_id)
    assert cached(history)
    conn = sqlite3.connect(gen_copy)
    with conn:
        seq, text = conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'member_joined' "
            "ORDER BY seq LIMIT 1",
            (pool_id,),
        ).fetchone()
        agent = json.loads(text)["member"]["agent_id"]
        changed = text.replace(f'"agent_id":"{agent}"', f'"agent_id":"{agent[:-1]}!"')
        assert len(changed) == len(text) and changed != text
        conn.execute(
            "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (changed, pool_id, seq)
        )
    conn.close()
    db.check()  # reads every wake again (the entry knew none) and tries to save them with it
    assert history.index.restored and not history.index.unsaved_checks  # it tried
    cache_module.wait()
    assert written() == before  # not saved over the rewritten file
    fresh = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    plain = poolscope.open(gen_copy, cache=False).pool(pool_id)
    for cursor in (seq, plain.head):
        assert snapshot_text(fresh, cursor) == snapshot_text(plain, cursor)
    assert f'"agent_id":"{agent[:-1]}!"' in snapshot_text(fresh, seq)  # the rewritten record, not the entry's


def _hash_after(monkeypatch, change) -> None:
    """Make the cache read a save's hashes only after ``change()`` has changed the
    file: what a writer does in the seconds a large pool's helper takes to get there."""
    monkeypatch.setattr(cache_module, "BACKGROUND_THRESHOLD", 0)  # saved in this process, where the change is placed
    hashes = IndexCache._hashes

    def changed_then_hashed(self, index, print_):
        change()
        return hashes(self, index, print_)

    monkeypatch.setattr(IndexCache, "_hashes", changed_then_hashed)


def test_taking_a_change_mark_keeps_the_locks_sqlite_holds_in_this_process(tmp_path):
    """Every load takes the file's change mark, a store's inside its write
    transaction.  Opening and closing the file would drop the POSIX locks SQLite
    holds on it in this process, and another writer could then write under a
    transaction that believes it holds the file (records lost): the mark only stats."""
    from poolscope.source import change_mark

    path = tmp_path / "locked.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("BEGIN EXCLUSIVE")  # a rollback journal: this process holds the file's exclusive lock
    conn.execute("INSERT INTO t VALUES (1)")
    assert change_mark(path)
    code = "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0.2).execute('SELECT count(*) FROM t').fetchall()"
    other = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    conn.execute("ROLLBACK")
    conn.close()
    assert other.returncode != 0 and "locked" in other.stderr


def test_a_record_rewritten_before_a_fresh_loads_hashes_are_read_is_not_saved(gen_copy, store, monkeypatch):
    """The first save of a pool loaded afresh reads every record's hash after the
    load (a large pool's helper, seconds later).  A record rewritten in place in
    between -- same length, not one of the 64 the save samples, the file's
    modification time set back -- would be saved as decoded before the rewrite with
    the hash of the rewritten record, and served by every later open: the file's
    change mark differs, the records decode again to other entries, nothing is saved."""
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    sampled = set(cache_module._sample_seqs(poolscope.open(gen_copy, cache=False).pool(pool_id).index.seqs))
    conn = sqlite3.connect(gen_copy)
    seq, text = next(
        row
        for row in conn.execute(
            "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id = ? AND kind = 'member_joined' "
            "ORDER BY seq",
            (pool_id,),
        )
        if row[0] not in sampled
    )
    agent = json.loads(text)["member"]["agent_id"]
    changed = text.replace(f'"agent_id":"{agent}"', f'"agent_id":"{agent[:-1]}!"')
    assert len(changed) == len(text) and changed != text
    before = os.stat(gen_copy)

    def rewrite() -> None:
        with conn:
            conn.execute(
                "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?", (changed, pool_id, seq)
            )
        os.utime(gen_copy, ns=(before.st_atime_ns, before.st_mtime_ns))

    _hash_after(monkeypatch, rewrite)
    loaded = poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    assert agent in snapshot_text(loaded, seq)  # decoded before the rewrite
    conn.close()
    assert [e for e in store.entries() if e.pool_id == pool_id] == []
    monkeypatch.undo()
    fresh = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert not cached(fresh)
    assert f'"agent_id":"{agent[:-1]}!"' in snapshot_text(fresh, seq)


def test_records_appended_before_a_fresh_loads_hashes_are_read_still_let_it_save(gen_copy, store, monkeypatch):
    """A live writer that only appended between the load and the save changes the
    file's mark too; the records loaded decode again to the same entries, so the
    entry is saved (covering what was loaded) and a later open restores it and folds
    the appended record on top."""
    pool_id = poolscope.open(gen_copy, cache=False).pool_ids[0]
    conn = sqlite3.connect(gen_copy)

    def append() -> None:
        append_copy(conn, pool_id)

    _hash_after(monkeypatch, append)
    loaded = poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    conn.close()
    assert [e.pool_id for e in store.entries()] == [pool_id]
    monkeypatch.undo()
    again = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(again) and again.head == loaded.head + 1
    plain = poolscope.open(gen_copy, cache=False).pool(pool_id)
    for cursor in (loaded.head, again.head):
        assert snapshot_text(again, cursor) == snapshot_text(plain, cursor)


def test_a_few_entries_or_many_of_a_restored_index_are_the_loaded_ones(gen_copy, store):
    """A lookup of a few records on an index restored from the cache (a refresh's
    check of its ends, a why() question) decodes its text columns for those rows
    only, not every distinct value of the pool (bench_cache.py's idle refresh:
    4.3 ms -> 0.27 ms on the 1M pool); a large selection shares one string per
    value.  Both give the entries a fresh load gives, missing values included."""
    pool_id = rows(gen_copy)[0][0]
    poolscope.open(gen_copy, cache=store.root).pool(pool_id).load()
    history = poolscope.open(gen_copy, cache=store.root).pool(pool_id)
    assert cached(history)
    restored, plain = history.index, poolscope.open(gen_copy, cache=False).pool(pool_id).index
    senders = restored.entries._columns["sender"]
    assert len(senders.chunk(0).dictionary) > 12  # more distinct values than 4x the small selections
    picks = random.Random(7)
    n = len(plain)
    for size in (1, 2, 3, 10, n // 2, n):
        positions = sorted(picks.sample(range(n), size))
        assert restored.entries_at(positions) == [plain.entries[p] for p in positions], size


@pytest.mark.parametrize(
    "data", ["x\0y.arrow", "OUTSIDE", "../outside.bin", 7, None], ids=["nul", "abs", "up", "int", "none"]
)
def test_a_manifest_naming_a_data_file_elsewhere_is_listed_never_followed(tmp_path, monkeypatch, generated, data):
    """A manifest is untrusted (its checksum is no signature): a data file named with a NUL,
    by a path outside the folder, or not by a string is never stat'ed, opened or removed --
    `cache info` lists the entry (no traceback), opens ignore it, `cache clear` removes only it."""
    root = tmp_path / "c"
    root.mkdir()
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"z" * 10_000)
    if data == "OUTSIDE":
        data = str(outside)
    for format_ in (
        1,
        cache_module.FORMAT,
    ):  # another format's body is read as it is; this one's is checked field by field
        body = {"format": format_, "data": data, "db": str(generated.resolve()), "pool_id": "p"}
        outer = {"body": body, "sha256": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()}
        (root / f"{format_:032x}.json").write_text(json.dumps(outer))
    monkeypatch.setenv("POOLSCOPE_CACHE_DIR", str(root))
    runner = CliRunner()
    result = runner.invoke(cli, ["cache", "info", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["entries"]
    assert len(listed) == 2 and all(e["bytes"] < 10_000 for e in listed)  # the outside file is not counted
    with poolscope.open(generated) as db:  # opens (and saves) past the odd manifests
        for history in db.pools():
            assert history.snapshot().to_json()
    result = runner.invoke(cli, ["cache", "clear"])
    assert result.exit_code == 0, result.output
    assert cache_module.entries() == [] and outside.read_bytes() == b"z" * 10_000
