"""Every `poolscope` command, through click's test runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import load_jsonl, raw_snapshot_lines

import poolscope
from poolscope.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_every_command_has_help(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = list(cli.commands)
    assert {"info", "records", "snapshot", "generate", "export"} <= set(commands)
    for name in commands:
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, name
        assert "Usage:" in sub.output and cli.commands[name].help.split("\n")[0][:20] in sub.output


def test_info_counts_kinds_and_statuses(runner, oracle):
    records = load_jsonl(oracle / "records.jsonl")
    result = runner.invoke(cli, ["info", str(oracle / "pool.db"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for pool in data["pools"]:
        mine = [r for r in records if r["pool_id"] == pool["pool_id"]]
        assert pool["head"] == mine[-1]["cursor"]["sequence"]
        kinds = {}
        for r in mine:
            kinds[r["payload"]["type"]] = kinds.get(r["payload"]["type"], 0) + 1
        assert pool["kinds"] == dict(sorted(kinds.items()))
    text = runner.invoke(cli, ["info", str(oracle / "pool.db")])
    assert text.exit_code == 0 and all(p["pool_id"] in text.output for p in data["pools"])


def test_info_labels_records_by_status_apart_from_current_status(runner, oracle):
    """Each run_message (wake) record is one status transition: "records by status"
    counts those; "by current status" counts the messages (wakes) of the SDK's
    snapshot at the head by their status -- as the summary and the report do."""
    records = load_jsonl(oracle / "records.jsonl")
    final = {}
    for pool_id, _cursor, text in raw_snapshot_lines(oracle):
        final[pool_id] = json.loads(text)  # the last one of each pool is at its head
    data = json.loads(runner.invoke(cli, ["info", str(oracle / "pool.db"), "--json"]).output)
    summary = poolscope.open(oracle / "pool.db").summary().set_index("pool_id")
    for pool in data["pools"]:
        pool_id = pool["pool_id"]
        mine = [r["payload"] for r in records if r["pool_id"] == pool_id]
        transitions = {
            "message_records_by_status": [p["stored"]["receipt"]["status"] for p in mine if p["type"] == "run_message"],
            "wake_records_by_status": [p["stored"]["registration"]["status"] for p in mine if p["type"] == "wake"],
        }
        current = {
            "messages_by_current_status": [m["receipt"]["status"] for m in final[pool_id].get("messages", [])],
            "wakes_by_current_status": [w["registration"]["status"] for w in final[pool_id].get("wakes", [])],
        }
        for key, statuses in {**transitions, **current}.items():
            assert {s: n for s, n in pool[key].items() if n} == {s: statuses.count(s) for s in set(statuses)}, key
        assert pool["members"] == len(final[pool_id]["members"])
        assert pool["messages"] == len(current["messages_by_current_status"])
        for status, count in pool["messages_by_current_status"].items():
            assert summary.loc[pool_id, f"messages_{status}"] == count
        for status, count in pool["wakes_by_current_status"].items():
            assert summary.loc[pool_id, f"wakes_{status}"] == count
    text = runner.invoke(cli, ["info", str(oracle / "pool.db")]).output
    assert "message records by status:" in text and "messages by current status:" in text
    assert "wake records by status:" in text and "wakes by current status:" in text
    assert "\n  messages:" not in text  # the old, ambiguous label


def test_records_prints_the_sdk_record_lines(runner, oracle):
    raw = (oracle / "records.jsonl").read_text(encoding="utf-8").splitlines()
    records = load_jsonl(oracle / "records.jsonl")
    pool_id = records[0]["pool_id"]
    result = runner.invoke(cli, ["records", str(oracle / "pool.db"), "--pool", pool_id, "--after", "3", "--upto", "9"])
    assert result.exit_code == 0
    expected = [line for line, r in zip(raw, records) if r["pool_id"] == pool_id and 3 < r["cursor"]["sequence"] <= 9]
    assert result.output.splitlines() == expected
    only = runner.invoke(cli, ["records", str(oracle / "pool.db"), "--pool", pool_id, "--kind", "wake"])
    assert {json.loads(line)["payload"]["type"] for line in only.output.splitlines()} == {"wake"}


def test_snapshot_prints_the_sdk_json(runner, oracle):
    pool_id, cursor, text = next(iter(list(raw_snapshot_lines(oracle))[40:41]))
    result = runner.invoke(cli, ["snapshot", str(oracle / "pool.db"), "--pool", pool_id, "--cursor", str(cursor)])
    assert result.exit_code == 0
    assert result.output == text + "\n"
    pretty = runner.invoke(
        cli, ["snapshot", str(oracle / "pool.db"), "--pool", pool_id, "--cursor", str(cursor), "--pretty"]
    )
    assert json.loads(pretty.output) == json.loads(text)


def test_errors_are_one_line_and_exit_2(runner, tmp_path):
    missing = tmp_path / "missing.db"
    result = runner.invoke(cli, ["info", str(missing)])
    assert result.exit_code == 2
    assert "no such file" in result.output and "Traceback" not in result.output
    assert not missing.exists()
    result = runner.invoke(cli, ["snapshot", str(poolscope_sample()), "--pool", "pool.nope"])
    assert result.exit_code == 2 and "pool.nope" in result.output


def poolscope_sample():
    from helpers import SAMPLE_DB

    return SAMPLE_DB


def test_generate_then_export(runner, tmp_path):
    out = tmp_path / "gen.db"
    result = runner.invoke(cli, ["generate", str(out), "--pools", "2", "--records", "120", "--seed", "9"])
    assert result.exit_code == 0, result.output
    db = poolscope.open(out)
    assert len(db.pool_ids) == 2 and all(len(p) >= 120 for p in db.pools())
    exported = runner.invoke(
        cli, ["export", str(out), str(tmp_path / "x"), "--format", "csv", "--pool", db.pool_ids[0]]
    )
    assert exported.exit_code == 0, exported.output
    import pandas as pd

    members = pd.read_csv(tmp_path / "x" / "members.csv")
    assert set(members["pool_id"]) == {db.pool_ids[0]}


@pytest.mark.parametrize("command", [["info", "--json"], ["doctor", "--json"], ["compare", "--json"]])
def test_json_output_is_utf8_for_a_file_name_that_is_not(sample_copy, command):
    """A database named with a byte that is not UTF-8 (``caf\\xe9.db``): --json wrote that raw byte,
    and no JSON reader could decode the output; it is now JSON's escape of the name."""
    import os

    named = sample_copy.with_name(os.fsdecode(b"caf\xe9.db"))
    sample_copy.rename(named)
    if command[0] == "compare":
        args = ["compare", f"{named}::pool.alpha", f"{named}::pool.bravo", "--json"]
    else:
        args = [command[0], str(named), *command[1:]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout_bytes.decode("utf-8"))
    assert os.fsdecode(b"caf\xe9.db") in json.dumps(document, ensure_ascii=False)


def test_a_pool_named_twice_is_exported_and_reported_once(sample_copy, tmp_path):
    """``--pool X --pool X`` doubled every row of the export and showed the pool twice in the report."""
    import csv

    runner = CliRunner()
    for name, pools in (("once", ["--pool", "pool.alpha"]), ("twice", ["--pool", "pool.alpha"] * 2)):
        result = runner.invoke(cli, ["export", str(sample_copy), str(tmp_path / name), "--format", "csv", *pools])
        assert result.exit_code == 0, result.output
    for frame in ("records", "members", "messages", "wakes", "summary"):
        once, twice = ((tmp_path / n / f"{frame}.csv").read_text(encoding="utf-8") for n in ("once", "twice"))
        assert once == twice, frame
    assert len(list(csv.reader((tmp_path / "once" / "records.csv").open(encoding="utf-8")))) > 1000
    result = runner.invoke(
        cli,
        ["report", str(sample_copy), "-o", str(tmp_path / "r.html"), "--pool", "pool.alpha", "--pool", "pool.alpha"],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count("<h2>Pool pool.alpha") == 1
