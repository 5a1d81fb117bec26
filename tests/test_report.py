"""poolscope.report: one self-contained HTML page, written from a read-only database."""

from __future__ import annotations

import base64
import html
import os
import sqlite3
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SAMPLE_DB, add_rows_no_pool_reads, tree_state

import poolscope
from poolscope.cli import cli
from poolscope.errors import PoolNotFoundError
from poolscope.report import render, report


class Page(HTMLParser):
    """Every tag with its attributes, the text of each h2, and all text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.h2: list[str] = []
        self.text: list[str] = []
        self._in_h2 = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_h2 = tag == "h2"
        if self._in_h2:
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_h2:
            self.h2[-1] += data

    def all(self, tag):
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.fixture
def readonly_sample(sample_copy):
    """The sample in a folder nobody may write to (mode bits; root ignores them,
    so the tests also compare the folder before and after)."""
    folder = sample_copy.parent
    sample_copy.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    yield sample_copy
    folder.chmod(stat.S_IRWXU)
    sample_copy.chmod(stat.S_IRUSR | stat.S_IWUSR)


def assert_self_contained(text: str) -> Page:
    page = Page(text)
    for tag, attrs in page.tags:
        for name in ("src", "href", "data", "action", "poster"):
            value = attrs.get(name)
            if value is None:
                continue
            assert not value.lower().startswith(("http:", "https:", "//", "ftp:")), (tag, name, value[:80])
            if name == "href":
                assert value.startswith("#"), (tag, value[:80])  # only links within the page
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert "@import" not in text and "url(" not in text  # no remote CSS resources
    for img in page.all("img"):
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
        assert img.get("alt")
    return page


@pytest.fixture
def outdir(tmp_path_factory):
    """A folder for the HTML, apart from the database's folder."""
    return tmp_path_factory.mktemp("out")


@pytest.mark.slow
def test_report_of_a_read_only_database_is_one_self_contained_page(readonly_sample, outdir):
    folder = readonly_sample.parent
    before = tree_state(folder)
    out = outdir / "report.html"
    assert report(readonly_sample, out) == out
    assert tree_state(folder) == before  # nothing written, no -wal/-shm beside it
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    page = assert_self_contained(text)

    db = poolscope.open(readonly_sample)
    # every pool is named: in the summary table and with its own section of five plots
    assert [h for h in page.h2 if h.startswith("Pool ")] == [f"Pool {p}" for p in db.pool_ids]
    assert len(page.all("img")) == 5 * len(db.pool_ids)
    alts = [img["alt"] for img in page.all("img")]
    for pool_id in db.pool_ids:
        assert [a for a in alts if a.endswith(pool_id)] == [
            f"{kind} of {pool_id}" for kind in ("membership", "messages", "wakes", "activity", "flows")
        ]
    summary = db.summary()
    body = "".join(page.text)
    for row in summary.itertuples():
        assert f"{row.head:,}" in body and f"{row.messages_failed:,}" in body
    # the snapshot at the head of each pool, and the anomalies sections
    for pool in db.pools():
        assert f"Snapshot of {pool.pool_id} at cursor {pool.head}" in body
        counts = pool.snapshot().counts()
        assert f"{counts['members']} members · {counts['topics']} topics" in body
    assert "File-wide anomalies" in page.h2
    assert body.count("Anomalies") == len(db.pool_ids)
    assert db.check() == [] and body.count("No anomaly found in this pool.") == len(db.pool_ids)


@pytest.mark.slow
def test_report_names_every_pool_of_the_sdk_oracle_and_escapes_its_ids(oracle, tmp_path):
    before = tree_state(oracle)
    out = report(oracle / "pool.db", tmp_path / "oracle.html")
    assert tree_state(oracle) == before
    text = out.read_text(encoding="utf-8")
    page = assert_self_contained(text)
    db = poolscope.open(oracle / "pool.db")
    assert [h for h in page.h2 if h.startswith("Pool ")] == [f"Pool {p}" for p in db.pool_ids]
    members = {m["agent_id"] for pool in db.pools() for m in pool.snapshot().members}
    odd = [a for a in members if '"' in a]
    assert odd  # the oracle has an agent id with quotes and a backslash
    for agent in odd:
        assert html.escape(agent) in text and f">{agent}<" not in text
    topics = {t for pool in db.pools() for t in pool.snapshot().topics}
    assert any(not t.isascii() for t in topics)
    for topic in topics:
        assert html.escape(topic) in text  # UTF-8 text stays as is
    # the summary counts messages and wakes by their current status, and says so (as `poolscope info` does)
    assert "messages by current status" in page.text and "wakes by current status" in page.text


def damage(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO agent_pool_records(pool_id, seq, kind, payload_json) VALUES ('pool.alpha', 1300, 'run_message', '{oops')"
        )
    conn.close()


@pytest.mark.slow
def test_report_lists_the_anomalies_the_check_finds(sample_copy, tmp_path):
    damage(sample_copy)
    db = poolscope.open(sample_copy)
    anomalies = db.check()
    assert {a.severity for a in anomalies} >= {"error"}
    text = render(db)
    page = assert_self_contained(text)
    body = "".join(page.text)
    alpha = body[body.index("Pool pool.alpha") : body.index("Pool pool.bravo")]
    for anomaly in anomalies:
        assert anomaly.pool_id == "pool.alpha"
        assert anomaly.code in alpha and anomaly.message in alpha and f"{anomaly.seq:,}" in alpha
    errors = sum(a.severity == "error" for a in anomalies)
    assert f"{errors} error" in alpha
    # the summary counts them, the other pools are clean, and the damaged pool still has its plots
    rows = [attrs for tag, attrs in page.tags if tag == "td" and "bad" in attrs.get("class", "")]
    assert rows
    assert "No anomaly found in this pool." in body[body.index("Pool pool.bravo") :]
    assert len(page.all("img")) == 15  # five plots a pool
    assert "The SDK could not replay this pool to its head" in alpha  # lenient snapshot, said so


@pytest.mark.slow
def test_report_of_some_pools_only(sample_copy, tmp_path):
    out = report(sample_copy, tmp_path / "one.html", pools=["pool.bravo"])
    page = assert_self_contained(out.read_text(encoding="utf-8"))
    assert [h for h in page.h2 if h.startswith("Pool ")] == ["Pool pool.bravo"]
    assert len(page.all("img")) == 5
    body = "".join(page.text)
    assert "pool.alpha" in body and "pool.charlie" in body  # the summary still lists every pool
    with pytest.raises(PoolNotFoundError):
        report(sample_copy, tmp_path / "none.html", pools=["pool.nope"])
    assert not (tmp_path / "none.html").exists()


@pytest.mark.slow
def test_report_takes_one_pool_id_or_several_and_refuses_anything_else(tmp_path):
    """``pools`` goes through arguments.names_argument, as every other selection does: one id as a
    string is that pool's section (it was read as its characters: PoolNotFoundError for pool 'p'),
    and a value that is no pool id is an InvalidInputError naming ``pools`` (``pools=5`` was a bare
    TypeError from deep inside), raised before anything is written."""
    from poolscope.errors import InvalidInputError
    from poolscope.generate import generate

    path = tmp_path / "two.db"
    generate(path, pools=2, records=30, seed=1)
    with poolscope.open(path) as db:
        assert db.pool_ids == ["pool.alpha", "pool.bravo"]
        page = Page(render(db, "pool.bravo"))
        assert [h for h in page.h2 if h.startswith("Pool ")] == ["Pool pool.bravo"]
        for bad in (5, [5], ["pool.bravo", None], b"pool.bravo"):
            with pytest.raises(InvalidInputError, match=r"^pools must "):
                render(db, bad)
            with pytest.raises(InvalidInputError, match=r"^pools must "):
                report(db, tmp_path / "bad.html", pools=bad)
    assert not (tmp_path / "bad.html").exists()


@pytest.mark.slow
def test_a_report_of_some_pools_links_only_the_pools_it_has_sections_for(tmp_path):
    """With pools=[P] the summary lists every pool, but linked every one to #pool-N while only P got
    a section: the others' links led nowhere.  Now every in-page link has its anchor, the selected
    pool is linked to its section, and the note says how many pools have no section."""
    from poolscope.generate import generate

    path = tmp_path / "three.db"
    generate(path, pools=3, records=30, seed=1)
    with poolscope.open(path) as db:
        assert db.pool_ids == ["pool.alpha", "pool.bravo", "pool.charlie"]
        for pools, linked in ((["pool.bravo"], ["pool.bravo"]), ([], [])):
            text = render(db, pools)
            page = assert_self_contained(text)
            anchors = {attrs["id"] for _, attrs in page.tags if "id" in attrs}
            hrefs = [attrs["href"][1:] for attrs in page.all("a")]
            assert set(hrefs) <= anchors, sorted(set(hrefs) - anchors)
            summary = text[text.index("<table class='ps-summary'>") :]
            summary = summary[: summary.index("</table>")]
            for pool_id in db.pool_ids:  # every pool listed; linked only if it has a section
                section = f"pool-{db.pool_ids.index(pool_id) + 1}"
                assert (f"<a href='#{section}'>{pool_id}</a>" in summary) == (pool_id in linked), pool_id
                assert (f">{pool_id}</td>" in summary) == (pool_id not in linked), pool_id
                assert (section in anchors) == (pool_id in linked), pool_id
            assert f"the other {3 - len(linked)} are listed for comparison only" in text


@pytest.mark.slow
def test_every_anomaly_doctor_finds_is_on_the_page_those_of_rows_no_pool_reads_too(tmp_path):
    """Rows whose pool_id is a BLOB or TEXT that is not UTF-8 are in no pool (db.pool_ids leaves them
    out) and doctor reports each as ``bad_pool_id``, an error.  The page kept only pool_id None as
    file-wide and gave only listed pools a section, so these errors were nowhere and it said "No
    file-wide anomaly.".  Now they are listed with the file-wide ones, each with its pool id."""
    from poolscope.generate import generate

    path = tmp_path / "odd.db"
    generate(path, pools=1, records=30, seed=1)
    add_rows_no_pool_reads(path)
    with poolscope.open(path) as db:
        found = db.check()
        outside = [a for a in found if a.pool_id is not None and a.pool_id not in db.pool_ids]
        assert [a.code for a in outside] == ["bad_pool_id", "bad_pool_id"]
        text = render(db)
    assert "No file-wide anomaly." not in text
    assert text.count("<tr class='ps-sev-") == len(found)  # every anomaly is a row of the page
    file_wide = text[text.index("<h2 id='anomalies-file'>") : text.index("<section")]
    rows = [cells for cells in _table_rows(file_wide) if cells and cells[0] in ("error", "warning", "info")]
    expected = sorted((a.severity, a.code, a.pool_id or "", a.message) for a in found if a.pool_id not in db.pool_ids)
    assert sorted((r[0], r[1], r[2], r[4]) for r in rows) == expected
    assert "<th>pool</th>" in file_wide  # the pool id is the third column
    # a clean file keeps the table it had: no pool column
    clean = tmp_path / "clean.db"
    generate(clean, pools=1, records=30, seed=1)
    with poolscope.open(clean) as db:
        assert "No file-wide anomaly." in render(db)


def _table_rows(text: str) -> list[list[str]]:
    """The text of each cell of each table row of ``text``."""

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.cell = []

        def handle_endtag(self, tag):
            if tag == "td" and self.cell is not None:
                self.rows[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Rows()
    parser.feed(text)
    return parser.rows


@pytest.mark.slow
def test_cli_report_writes_the_page_and_exits_0(readonly_sample, outdir):
    runner = CliRunner()
    out = outdir / "cli.html"
    before = tree_state(readonly_sample.parent)
    result = runner.invoke(
        cli, ["report", str(readonly_sample), "-o", str(out), "--pool", "pool.alpha", "--pool", "pool.charlie"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert tree_state(readonly_sample.parent) == before
    page = assert_self_contained(out.read_text(encoding="utf-8"))
    assert [h for h in page.h2 if h.startswith("Pool ")] == ["Pool pool.alpha", "Pool pool.charlie"]

    missing = runner.invoke(cli, ["report", str(readonly_sample), "-o", str(outdir / "x.html"), "--pool", "nope"])
    assert missing.exit_code == 2
    assert "nope" in missing.output
    assert "report" in runner.invoke(cli, ["--help"]).output


@pytest.mark.slow
def test_cli_report_default_output_name(sample_copy, tmp_path):
    runner = CliRunner()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        result = runner.invoke(cli, ["report", str(sample_copy), "--pool", "pool.alpha"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file()


def test_the_report_command_writes_nothing_in_the_home_folder_but_poolscopes_cache(tmp_path):
    """`poolscope report` (README's first command) in a fresh home, with no MPLCONFIGDIR or XDG
    folders set: matplotlib keeps its font cache in poolscope's cache folder, and nothing else
    appears in the home (it created ~/.config/matplotlib and ~/.cache/matplotlib)."""
    home = _report_in_a_subprocess(tmp_path, SAMPLE_DB, None)
    created = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert created[:3] == [".cache", ".cache/poolscope", ".cache/poolscope/matplotlib"], created
    assert all(name == ".cache" or name.startswith(".cache/poolscope") for name in created), created
    assert (tmp_path / "report.html").stat().st_size > 0


def _report_in_a_subprocess(tmp_path: Path, db: Path, cache: Path | None) -> Path:
    """``poolscope report DB`` in a fresh interpreter with a fresh home (returned), no MPLCONFIGDIR
    nor XDG folders, and ``cache`` as POOLSCOPE_CACHE_DIR (None: not set)."""
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPL", "POOLSCOPE_"))}
    env["HOME"] = str(home)
    if cache is not None:
        env["POOLSCOPE_CACHE_DIR"] = str(cache)
    script = "from poolscope.cli import cli; cli()"
    done = subprocess.run(
        [sys.executable, "-c", script, "report", str(db), "-o", str(tmp_path / "report.html")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.html").is_file()
    return home


def test_matplotlib_never_writes_through_a_symlink_in_the_cache_folder(tmp_path):
    """A symlink planted where matplotlib keeps its font list (in poolscope's cache folder): matplotlib
    wrote its JSON through it, over a file outside the cache. It now gets a private folder instead."""
    cache = tmp_path / "cache"
    (cache / "matplotlib").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    from matplotlib import font_manager

    (cache / "matplotlib" / f"fontlist-v{font_manager.FontManager.__version__}.json").symlink_to(victim)
    _report_in_a_subprocess(tmp_path, SAMPLE_DB, cache)
    assert victim.read_text() == "precious"


def test_matplotlib_writes_nothing_beside_the_database_when_the_cache_folder_is_its_folder(tmp_path):
    """The cache folder set to the database's own folder: poolscope saves no index there, and
    matplotlib made its folder there all the same; now nothing appears beside the database."""
    import shutil

    folder = tmp_path / "dbdir"
    folder.mkdir()
    shutil.copyfile(SAMPLE_DB, folder / "demo.db")
    _report_in_a_subprocess(tmp_path, folder / "demo.db", folder)
    assert sorted(p.name for p in folder.iterdir()) == ["demo.db"]
