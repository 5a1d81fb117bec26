"""poolscope fleet info|doctor|export|report, and the fleet report page."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

import poolscope
from poolscope.cli import cli
from poolscope.fleet.dataset import open_dataset
from poolscope.fleet.report import agent_breakdown, render
from poolscope.generate import generate


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-fleet")
    generate(folder / "east.db", pools=2, records=200, seed=7)
    generate(folder / "west.db", pools=1, records=300, seed=8)
    (folder / "README.txt").write_text("collected on Monday\n")
    return folder


@pytest.fixture
def damaged_dir(clean_dir, tmp_path):
    folder = tmp_path / "hosts"
    shutil.copytree(clean_dir, folder)
    conn = sqlite3.connect(folder / "west.db")
    pool_id, seq = conn.execute(
        "SELECT pool_id, max(seq) FROM agent_pool_records WHERE kind = 'member_left'"
    ).fetchone()
    conn.execute("UPDATE agent_pool_records SET payload_json = '[' WHERE pool_id = ? AND seq = ?", (pool_id, seq))
    conn.commit()
    conn.close()
    return folder, pool_id, seq


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_info_lists_databases_pools_and_skipped_files(clean_dir):
    result = run("fleet", "info", str(clean_dir), "--workers", "1")
    assert result.exit_code == 0
    assert result.output.startswith("2 database(s), 3 pool(s)")
    assert "README.txt" in result.output and "skipped" in result.output
    document = json.loads(run("fleet", "info", str(clean_dir), "--json", "--workers", "2").output)
    with poolscope.fleet(clean_dir, workers=1) as hosts:
        expected = hosts.pools
    assert document["databases"] == [str(clean_dir / "east.db"), str(clean_dir / "west.db")]
    assert [(p["source"], p["pool_id"], p["records"], p["failures"]) for p in document["pools"]] == list(
        expected[["source", "pool_id", "records", "failures"]]
        .astype({"source": object})
        .itertuples(index=False, name=None)
    )
    assert document["skipped"][0]["source"].endswith("README.txt")


def test_doctor_exit_status(clean_dir, damaged_dir, tmp_path):
    clean = run("fleet", "doctor", str(clean_dir))
    assert clean.exit_code == 0, clean.output
    assert "ok (0 errors" in clean.output
    folder, pool_id, seq = damaged_dir
    damaged = run("fleet", "doctor", str(folder), "--json")
    assert damaged.exit_code == 1
    document = json.loads(damaged.output)
    assert document["counts"]["error"] >= 1
    assert {
        "source": str(folder / "west.db"),
        "pool_id": pool_id,
        "seq": seq,
        "severity": "error",
        "code": "bad_json",
    }.items() <= next(a for a in document["anomalies"] if a["code"] == "bad_json").items()
    text = run("fleet", "doctor", str(folder))
    assert text.exit_code == 1 and "bad_json" in text.output and "damaged" in text.output.splitlines()[-1]
    # a database that cannot be opened is an error too
    missing = run("fleet", "doctor", str(clean_dir), str(tmp_path / "gone.db"))
    assert missing.exit_code == 1 and "DatabaseNotFoundError" in missing.output


def test_export_writes_then_skips_unchanged(clean_dir, tmp_path):
    out = tmp_path / "dataset"
    first = run("fleet", "export", str(clean_dir), str(out))
    assert first.exit_code == 0 and "3 partition(s) written, 0 unchanged" in first.output
    second = run("fleet", "export", str(clean_dir), str(out))
    assert "0 partition(s) written, 3 unchanged" in second.output
    with poolscope.fleet(clean_dir, workers=1) as hosts:
        assert open_dataset(out, "messages").count_rows() == len(hosts.messages_df())


def test_export_of_long_pool_ids_and_an_unwritable_database(clean_dir, tmp_path):
    """A pool id of 30 Japanese characters (90 bytes; the SDK allows 512) made a
    partition folder name of 278 bytes: its database went to the errors, with
    partitions already written, and the command exited 0.  Now it is written
    (a shortened folder name, the true id in the files); a database whose
    partitions cannot be written is one line on stderr and exit status 2."""
    from poolscope.fleet.dataset import MANIFEST

    folder = tmp_path / "hosts"
    shutil.copytree(clean_dir, folder)
    pool_id = "プール" * 10
    generate(folder / "east.db", pools=1, records=30, seed=9, prefix=pool_id)
    out = tmp_path / "dataset"
    first = run("fleet", "export", str(folder), str(out))
    assert first.exit_code == 0 and "4 partition(s) written, 0 unchanged" in first.output
    assert len(list(out.rglob("*.parquet"))) == 16
    with poolscope.fleet(folder, workers=1) as hosts:
        ids = open_dataset(out, "records").to_table().column("pool_id").to_pylist()
        assert sorted(set(ids)) == sorted(set(hosts.pools["pool_id"])) and f"{pool_id}.alpha" in ids
    # a symlink planted in west.db's partition: west.db is not written (nothing of it), east.db is
    west = next(p for p in out.glob("records/*/*/part-0.parquet") if "west.db" in str(p))
    west.unlink()
    west.symlink_to(tmp_path / "elsewhere")
    (out / MANIFEST).unlink()  # (everything is written again)
    second = run("fleet", "export", str(folder), str(out))
    assert second.exit_code == 2
    assert "3 partition(s) written" in second.stdout and "west.db: not written" in second.stderr
    assert "symlink" in second.stderr and not (tmp_path / "elsewhere").exists()


def test_report_ranks_pools_and_breaks_down_sources_and_agents(damaged_dir, tmp_path):
    folder, _, _ = damaged_dir
    out = tmp_path / "fleet.html"
    result = run("fleet", "report", str(folder), str(tmp_path / "missing.db"), "-o", str(out))
    assert result.exit_code == 0 and result.output.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # self-contained
    assert page.count("data:image/png;base64,") >= 4
    for section in ("id='pools'", "id='sources'", "id='agents'", "id='anomalies'", "id='unread'"):
        assert section in page
    assert "missing.db" in page and "DatabaseNotFoundError" in page and "README.txt" in page
    with poolscope.fleet(folder, workers=1) as hosts:
        pools = hosts.pools.astype({"source": object})
        pools["rate"] = pools["failures"] / (pools["messages"] + pools["wakes"])
        pools = pools.sort_values(["failures", "errors", "anomalies", "rate"], ascending=False, kind="stable")
        ranking = page[page.index("id='pools'") : page.index("id='sources'")]
        listed = re.findall(r"<tr><td class='num'>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>", ranking)
        assert [(s, p) for _, s, p in listed] == list(pools[["source", "pool_id"]].itertuples(index=False, name=None))
        assert [int(r) for r, _, _ in listed] == list(range(1, len(pools) + 1))
        # per agent: every message counted once, failures as messages_df says
        agents = agent_breakdown(hosts)
        messages = hosts.messages_df()
        assert agents["messages"].sum() == len(messages)
        assert agents["failed"].sum() == (messages["status"] == "failed").sum()
        members = hosts.members_df()
        agent = agents.iloc[0]["agent_id"]
        runs = members[members["agent_id"] == agent][["source", "pool_id", "run_id"]].astype(object)
        mine = messages.astype({"source": object, "pool_id": object, "sender": object}).merge(
            runs, left_on=["source", "pool_id", "sender"], right_on=["source", "pool_id", "run_id"]
        )
        assert agents.iloc[0]["messages"] == len(mine)
        assert agents.iloc[0]["failures"] == mine["status"].isin(["failed", "timed_out", "expired"]).sum()
        assert render(hosts).count("<h2") == page.count("<h2")


def test_the_anomalies_of_rows_no_pool_reads_are_counted_with_their_source(clean_dir, tmp_path):
    """Rows whose pool_id is a BLOB or TEXT that is not UTF-8 are in no pool, and doctor reports each
    as ``bad_pool_id``, an error.  summary() added to a source's counts only the anomalies whose
    pool_id is None, and the page's "anomaly errors" card only the pools': both said 0 errors.  Now
    every anomaly of fleet.check() is counted with its source, and the card counts them all."""
    from helpers import add_rows_no_pool_reads

    folder = tmp_path / "hosts"
    shutil.copytree(clean_dir, folder)
    add_rows_no_pool_reads(folder / "west.db")
    with poolscope.fleet(folder, workers=1) as hosts:
        found = hosts.check().astype({"source": object, "severity": object})
        assert (found["code"] == "bad_pool_id").sum() == 2
        summary = hosts.summary().set_index("source")
        for source in summary.index:
            mine = found[found["source"] == source]
            assert summary.loc[source, "anomalies"] == len(mine), source
            for severity in ("error", "warning"):
                assert summary.loc[source, f"{severity}s"] == (mine["severity"] == severity).sum(), source
        errors = int((found["severity"] == "error").sum())
        assert errors >= 2
        assert f"<b>{errors:,}</b><span>anomaly errors</span>" in render(hosts)


def test_fleet_workers_never_import_a_module_of_the_working_folder(clean_dir, tmp_path):
    """The fleet's fork server (a ``python -c`` on Python 3.11, whose path starts with the working
    folder) found a ``poolscope.py`` lying among the collected databases first and ran it: the
    workers now import the calling process's poolscope, and the folder's code never runs."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "collected"
    shutil.copytree(clean_dir, folder)
    (folder / "poolscope.py").write_text(
        "import os\nopen(os.path.join(os.getcwd(), 'RAN'), 'w').write('the folder code ran')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONSAFEPATH", "PYTHONPATH"))}
    env["POOLSCOPE_CACHE_DIR"] = str(tmp_path / "cache")
    # this process imports poolscope before it moves into the folder (as the installed ``poolscope``
    # command, whose path does not start with the working folder)
    script = f"import os; from poolscope.cli import cli; os.chdir({str(folder)!r}); cli()"
    done = subprocess.run(
        [sys.executable, "-c", script, "fleet", "doctor", "east.db", "west.db", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert not (folder / "RAN").exists()
    assert "Traceback" not in done.stderr and "RuntimeWarning" not in done.stderr, done.stderr
    assert "2 database(s)" in done.stdout
