"""bench/harness.py, the harness every benchmark script shares: its statistics, tables, the floor, the pool's
facts and the fresh-interpreter runner, checked against independent computations (numpy, SQL, a child that
really sleeps or really allocates)."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path

import numpy as np
import orjson
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    from poolscope.generate import generate

    path = tmp_path_factory.mktemp("bench") / "pool.db"
    generate(path, pools=2, records=300, seed=3)
    return path


def test_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 200):
        values = list(rng.exponential(size=n))
        stats = harness.percentiles(values)
        assert stats["p50"] == pytest.approx(np.percentile(values, 50))
        assert stats["p95"] == pytest.approx(np.percentile(values, 95))
        assert stats["max"] == max(values)
        assert stats["mean"] == pytest.approx(np.mean(values))
        assert harness.pct(values, 10) == pytest.approx(np.percentile(values, 10))
    assert harness.median_of([{"seconds": 3.0}, {"seconds": 1.0}, {"seconds": 2.0, "cpu": 9}]) == 2.0


def test_formatting() -> None:
    assert harness.fmt_s(1234.5) == "1,234.50 s"
    assert harness.fmt_s(0.5) == "500.0 ms"
    assert harness.fmt_s(0.0004) == "0.40 ms"
    assert harness.fmt_s(None) == "-"
    assert harness.mib(2048) == "2 MiB"
    assert harness.verdict(True) == "**met**" and harness.verdict(False) == "**NOT met**"
    assert harness.table(["a", "b c"], [[1, ""], ["x", 2.5]]) == [
        "| a | b c |",
        "|---|---|",
        "| 1 | |",
        "| x | 2.5 |",
    ]


def test_runs_table_rows_per_round_and_medians() -> None:
    runs = {
        "floor": [{"seconds": 1.0, "cpu": 0.5, "peak_rss_kb": 1024}, {"seconds": 3.0, "cpu": 1.5, "peak_rss_kb": 2048}],
        "open": [{"seconds": 2.0, "cpu": 4.0, "peak_rss_kb": 4096}, {"seconds": 4.0, "cpu": 6.0, "peak_rss_kb": 8192}],
    }
    lines = harness.runs_table(
        ["run", "f", "o", "cf", "co", "rf", "ro"], runs, [["**ratio**", "", "2x", "", "", "", ""]]
    )
    assert lines[2] == "| 1 | 1.00 s | 2.00 s | 500.0 ms | 4.00 s | 1 MiB | 4 MiB |"
    assert lines[3] == "| 2 | 3.00 s | 4.00 s | 1.50 s | 6.00 s | 2 MiB | 8 MiB |"
    assert lines[4] == "| **median** | **2.00 s** | **3.00 s** | 1.00 s | 5.00 s | | |"
    assert lines[5] == "| **ratio** | | 2x | | | | |"


def test_pool_facts_and_floor_agree_with_sql(small_db: Path) -> None:
    before = small_db.read_bytes()
    conn = sqlite3.connect(small_db)
    pools = [p for (p,) in conn.execute("SELECT DISTINCT pool_id FROM agent_pool_records ORDER BY pool_id")]
    pool = pools[-1]
    rows = conn.execute(
        "SELECT seq, payload_json FROM agent_pool_records WHERE pool_id=? ORDER BY seq", (pool,)
    ).fetchall()
    conn.close()
    facts = harness.pool_facts(small_db, pool)
    assert (facts.pool, facts.count, facts.head) == (pool, len(rows), max(s for s, _ in rows))
    assert facts.json_bytes == sum(len(p.encode()) for _, p in rows)
    assert facts.file_bytes == small_db.stat().st_size and facts.made == {}
    assert f"`{pool}`" in facts.describe() and f"{len(rows):,} records" in facts.describe()
    assert (
        harness.pool_facts(small_db).pool
        == harness.connect_ro(small_db).execute("SELECT pool_id FROM agent_pool_records LIMIT 1").fetchone()[0]
    )
    assert harness.scan_decode(small_db, pool) == len(rows)
    upto = rows[len(rows) // 2][0]
    assert harness.scan_decode(small_db, pool, upto) == sum(1 for s, _ in rows if s <= upto)
    assert all(orjson.loads(p) for _, p in rows)
    assert harness.floor_seconds(small_db, pool) > 0
    # read-only: nothing beside the file, the file unchanged
    assert sorted(x.name for x in small_db.parent.iterdir()) == ["pool.db"]
    assert small_db.read_bytes() == before


CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
from harness import child_floor, child_main, parser

def sleep(args):
    time.sleep(float(args.pool))
    return {{"seconds": float(args.pool), "cpu": 0.0}}

def grow(args):
    block = bytearray(int(args.pool) * 2**20)  # touched: resident
    return {{"seconds": 0.0, "cpu": 0.0, "size": len(block)}}

def fail(args):
    raise ValueError("boom")

CHILDREN = {{"sleep": sleep, "grow": grow, "fail": fail, "floor": child_floor}}
args = parser(None, "t", children=CHILDREN).parse_args()
sys.exit(child_main(args, CHILDREN))
"""


def test_run_child_returns_the_childs_json_and_memory(tmp_path: Path, small_db: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(bench=str(BENCH))))
    out = harness.run_child(script, "grow", ["--pool", 200])
    assert out["size"] == 200 * 2**20
    assert out["peak_rss_kb"] >= 200 * 1024  # VmHWM saw the block
    assert out["children_peak_rss_kb"] == 0 and "stderr" in out
    floor = harness.run_child(script, "floor", ["--db", small_db, "--pool", harness.pool_facts(small_db).pool])
    assert floor["rows"] == harness.pool_facts(small_db).count and floor["seconds"] > 0
    killed = harness.run_child(script, "sleep", ["--pool", 30], timeout=1)
    assert "still running after 1 s" in killed["killed"]
    big = harness.run_child(script, "grow", ["--pool", 600], max_rss_gb=0.25)
    assert "RSS above 0.25 GiB" in big["killed"] and big["watched_peak_kb"] > 0
    with pytest.raises(RuntimeError, match="boom"):
        harness.run_child(script, "fail")


def test_parser_has_the_common_options(tmp_path: Path) -> None:
    args = harness.parser("doc", "mine", children=["a"]).parse_args(["--db", str(tmp_path / "x.db"), "--repeat", "5"])
    assert args.db == tmp_path / "x.db" and args.repeat == 5 and args.child is None
    assert args.out == harness.OUT / "mine.md" and args.records == 1_000_000 and args.label is None


def test_run_writes_report_and_json(tmp_path: Path, small_db: Path, capsys) -> None:
    args = harness.parser(None, "t").parse_args(
        ["--db", str(small_db), "--out", str(tmp_path / "r.md"), "--label", "L"]
    )
    run = harness.Run(args, "pandas")
    facts = run.pool()
    header = run.header()
    assert header[1].startswith("poolscope measured: L (source hash ")
    assert "pandas " in header[0] and "load average" in header[0]
    assert header[-1].startswith(facts.describe())
    run.write("# report", {"x": 1})
    assert capsys.readouterr().out == "# report\n"
    assert (tmp_path / "r.md").read_text() == "# report\n"
    raw = orjson.loads((tmp_path / "r.json").read_bytes())
    assert raw["x"] == 1 and raw["machine"]["poolscope"] == "L" and raw["pool_facts"]["count"] == facts.count


def test_harness_docstring_examples() -> None:
    import doctest

    result = doctest.testmod(harness)
    assert result.attempted >= 3 and result.failed == 0
