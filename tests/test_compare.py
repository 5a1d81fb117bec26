"""compare(): side-by-side measures, the first divergence of two logs, the plots and the CLI
of the why and compare views."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from click.testing import CliRunner

import poolscope
from poolscope import plot
from poolscope.cli import cli
from poolscope.compare import compare
from poolscope.errors import InvalidInputError
from poolscope.flows import flow_matrix
from poolscope.whyplot import MAX_FLOW_LABELS


def _copy(source: Path, target: Path) -> Path:
    src = sqlite3.connect(f"file:{source}?immutable=1", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


def _change_status(path: Path, pool_id: str, seq: int, new: str) -> str:
    conn = sqlite3.connect(path)
    (text,) = conn.execute(
        "SELECT payload_json FROM agent_pool_records WHERE pool_id = ? AND seq = ?", (pool_id, seq)
    ).fetchone()
    payload = json.loads(text)
    block = payload["stored"]["receipt"] if payload["type"] == "run_message" else payload["stored"]["registration"]
    old = block["status"]
    block["status"] = new
    conn.execute(
        "UPDATE agent_pool_records SET payload_json = ? WHERE pool_id = ? AND seq = ?",
        (json.dumps(payload, separators=(",", ":")), pool_id, seq),
    )
    conn.commit()
    conn.close()
    return old


def test_a_pool_compared_with_itself_has_no_divergence(oracle, small_db):
    for path in (oracle / "pool.db", small_db):
        db = poolscope.open(path)
        for pool in db.pools():
            c = poolscope.compare(pool, pool)
            assert c.first_divergence is None and not c.diverged
            assert c.common_prefix == len(pool)
            assert (c.summary["delta"].fillna(0) == 0).all()
            other = poolscope.open(path).pool(pool.pool_id)  # another handle on the same file
            assert poolscope.compare(pool, other).first_divergence is None


@pytest.mark.parametrize("which", ["message", "wake"])
def test_a_changed_status_is_found_where_it_was_changed(oracle, small_db, tmp_path, which):
    for path in (oracle / "pool.db", small_db):
        db = poolscope.open(path)
        for pool in db.pools():
            records = pool.records_df()
            kind = "run_message" if which == "message" else "wake"
            rows = records[records.kind == kind]
            seq = int(rows.seq.iloc[len(rows) // 2])
            status = rows.set_index("seq").loc[seq, "message_status" if which == "message" else "wake_status"]
            new = "cancelled" if status != "cancelled" else "failed"
            copy = _copy(path, tmp_path / f"{pool.pool_id}-{which}.db")
            assert _change_status(copy, pool.pool_id, seq, new) == status
            changed = poolscope.open(copy).pool(pool.pool_id)
            c = poolscope.compare(pool, changed)
            assert c.first_divergence == (seq, seq)
            assert c.common_prefix == pool.index.position(seq) - 1
            aligned = c.alignment(context=2)
            first = aligned[aligned.op != "equal"].iloc[0]
            assert (first.cursor_a, first.status_a, first.status_b) == (seq, status, new)
            reverse = poolscope.compare(changed, pool)
            assert reverse.first_divergence == (seq, seq)


def test_cut_pools_what_ifs_and_other_databases(oracle, small_db):
    db = poolscope.open(oracle / "pool.db")
    pool = db.pool("pool.audit.s1")
    c = poolscope.compare((pool, 100), pool)
    assert c.first_divergence == (None, 101)
    assert c.summary.set_index(["section", "metric"]).loc[("log", "records"), "delta"] == pool.head - 100
    c = poolscope.compare(pool, (pool, 100))
    assert c.first_divergence == (101, None)
    alt = pool.without(runs="run.audit.delta")
    c = poolscope.compare(pool, alt)
    first_removed = int(alt.removed[0])
    assert c.first_divergence[0] == first_removed
    assert "what-if" in c.label_b
    other = poolscope.open(small_db)
    c = poolscope.compare(pool, other.pool(other.pool_ids[0]))
    assert c.first_divergence is not None
    summary = c.summary.set_index(["section", "metric"])
    messages = pool.messages_df()
    assert summary.loc[("state", "messages"), "a"] == len(messages)
    for status, count in messages.status.value_counts().items():
        if count:
            assert summary.loc[("messages by status", status), "a"] == count
    assert summary.loc[("rates", "messages failed"), "a"] == pytest.approx((messages.status == "failed").mean())
    html = c._repr_html_()
    assert "first divergence" in repr(c) and "diverge at cursor" in html
    with pytest.raises(InvalidInputError):
        poolscope.compare(pool, "not a pool")
    with pytest.raises(poolscope.CursorError):
        poolscope.compare((pool, pool.head + 5), pool)


def test_per_agent_measures_follow_the_frames(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.build.s1")
    c = poolscope.compare(pool, pool)
    summary = c.summary.set_index(["section", "metric"])
    agent_of = {}
    for row in pool.members_df().itertuples():
        agent_of.setdefault(row.run_id, row.agent_id)
    messages = pool.messages_df()
    sent = messages.sender.astype(object).map(agent_of).value_counts()
    for agent, count in sent.items():
        assert summary.loc[("agents: messages sent", agent), "a"] == count
    latency = pool.latency_df()
    step = latency[
        (latency.kind == "message") & (latency.from_status == "accepted") & (latency.to_status == "delivered")
    ]
    assert summary.loc[("latency (cursors)", "messages accepted → delivered, median"), "a"] == np.median(step.cursors)


def test_plots_draw_and_return_their_axes(oracle):
    pool = poolscope.open(oracle / "pool.db").pool("pool.audit.s1")
    ax = plot.flows(pool, by="agent")
    assert any(a.get_gid() == "flows.matrix" for a in ax.get_images())
    assert any(c.get_gid() == "flows.failure" for c in ax.collections)
    volume, share = flow_matrix(pool, by="agent")
    assert volume.to_numpy().sum() == pool.flows_df(by="agent").messages.sum()
    assert ax.images[0].get_array().count() == int((volume.to_numpy() > 0).sum())
    ax = plot.flows(pool, by="run")
    assert len(ax.get_yticklabels()) <= MAX_FLOW_LABELS
    ax = plot.latency(pool, by="agent")
    assert ax.get_xscale() == "symlog" and "cursors" in ax.get_xlabel()
    assert plot.latency(pool, by="status", kind="wake") is not None
    ax = plot.compare(pool, (pool, 100))
    assert [line.get_xdata()[0] for line in ax.lines if line.get_gid() == "compare.divergence"] == [101]
    assert len([line for line in ax.lines if line.get_gid() == "compare.records"]) == 2
    fig = matplotlib.figure.Figure()
    target = fig.add_subplot()
    assert plot.flows(pool, ax=target) is target


def test_cli_history_and_compare(oracle, tmp_path):
    path = shutil.copy(oracle / "pool.db", tmp_path / "pool.db")
    runner = CliRunner()
    result = runner.invoke(cli, ["history", str(path), "--pool", "pool.audit.s1", "msg.audit.7"])
    assert result.exit_code == 0, result.output
    assert "accepted at 17" in result.output and "delivered -> timed_out" in result.output
    result = runner.invoke(cli, ["history", str(path), "--pool", "pool.audit.s1", "wake.audit.1", "--json"])
    data = json.loads(result.output)
    assert [r["cursor"] for r in data["records"]] == [19, 20] and data["key_type"] == "wake"
    # --upto past the head is the head, as for the frames; a negative one is an error, not a traceback
    result = runner.invoke(
        cli, ["history", str(path), "--pool", "pool.audit.s1", "wake.audit.1", "--json", "--upto", "10000000"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == data
    result = runner.invoke(cli, ["history", str(path), "--pool", "pool.audit.s1", "wake.audit.1", "--upto", "-1"])
    assert result.exit_code != 0 and "upto -1" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["history", str(path), "--pool", "pool.audit.s1", "msg.audit.1x"])
    assert result.exit_code == 2 and "did you mean" in result.output
    result = runner.invoke(cli, ["compare", f"{path}::pool.audit.s1@100", f"{path}::pool.audit.s1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["first_divergence"] == [None, 101]
    result = runner.invoke(cli, ["compare", f"{path}::pool.audit.s1", f"{path}::pool.audit.s1"])
    assert result.exit_code == 0 and "no divergence" in result.output
    result = runner.invoke(cli, ["compare", str(path), str(path)])
    assert result.exit_code == 2 and "holds 3 pools" in result.output


def test_a_side_with_no_events_aligns_with_the_other(oracle):
    """A pool at cursor 0 (no event yet) compared either way: every aligned row is the other
    side's (inserted or deleted), the empty side's columns missing -- not an IndexError."""
    db = poolscope.open(oracle / "pool.db")
    pool = db.pool("pool.audit.s1")
    for a, b, op, empty, full in (((pool, 0), pool, "insert", "a", "b"), (pool, (pool, 0), "delete", "b", "a")):
        rows = poolscope.compare(a, b).alignment()
        assert len(rows) > 0 and set(rows["op"]) == {op}
        assert rows[f"cursor_{empty}"].isna().all() and rows[f"kind_{empty}"].isna().all()
        assert rows[f"cursor_{full}"].tolist() == list(range(1, len(rows) + 1))
    db.close()


def test_cli_compare_reaches_a_pool_whose_id_holds_a_double_colon(tmp_path):
    """A pool id may hold '::' (the SDK takes it): DB::team::a is pool 'team::a' of DB, and a
    file whose own name holds '::' is found too; a missing file is named as the first part."""
    path = tmp_path / "x::y.db"
    with poolscope.PoolStore(path) as store:
        for pool_id in ("team::a", "team::b@7"):
            store.open_pool(pool_id, {})
            store.join_member(pool_id, {"run_id": "run.1", "agent_id": "agent.1"})
        store.record_pool_created("team::a")
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", f"{path}::team::a", f"{path}::team::b@7@2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    with poolscope.open(path) as db:
        expected = compare(db.pool("team::a"), (db.pool("team::b@7"), 2))
        assert out["first_divergence"] == list(expected.first_divergence)
        assert expected.first_divergence == (3, None)  # a's pool_created, which b never records
    result = runner.invoke(cli, ["compare", f"{tmp_path / 'nowhere.db'}::team::a", f"{path}::team::a"])
    assert result.exit_code == 2 and "nowhere.db" in result.output and "team" not in result.output.split(":")[0]
