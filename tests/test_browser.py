"""The explorer in a real browser: tests/browser/explorer.ipynb served by
Voilà on localhost, driven by Playwright with Debian's Chromium (never a
downloaded browser).  Skipped when /usr/bin/chromium is missing, except under
CI (``CI`` set), where that is a failure."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SAMPLE_DB, long_ids_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "browser" / "explorer.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POOL = "pool.alpha"
#: Upper bounds of every wait (milliseconds / seconds); none is an assertion on speed.
PAGE_MS = 120_000
UPDATE_MS = 30_000
SERVER_S = 120


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


def _requirements() -> None:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium; Playwright never downloads a browser here)")
    for module in ("voila", "playwright.sync_api"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"python module {module} is not installed (pip install -e '.[test]')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila(tmp_path):
    """Voilà serving the explorer notebook on a free port; yields its URL.
    Its kernel is ipykernel's own "python3" (this interpreter); the server (and
    the kernel it started) is always stopped afterwards."""
    _requirements()
    db = tmp_path / "demo.db"
    shutil.copy(SAMPLE_DB, db)
    port = _free_port()
    env = dict(os.environ)
    env.update(
        POOLSCOPE_EXPLORER_DB=str(db),
        POOLSCOPE_EXPLORER_POOL=POOL,
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    log = (tmp_path / "voila.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "voila",
        str(NOTEBOOK),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.root_dir=" + str(NOTEBOOK.parent),
    ]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"voila exited with {server.returncode}:\n{(tmp_path / 'voila.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not listen on {port} within {SERVER_S} s")
                time.sleep(0.2)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # voila and the kernel it started (its own session)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)
        log.close()


def _cursor_shown(page) -> int:
    return int(page.locator(".ps-counts .ps-cursor").inner_text())


def _wait_for_cursor(page, k: int) -> None:
    """Until the snapshot, diff and record panels and the timeline marker all
    show cursor ``k`` (each is its own widget message)."""
    page.wait_for_function(
        """k => {
            const c = document.querySelector('.ps-counts .ps-cursor');
            const d = document.querySelector('.ps-diff');
            const r = document.querySelector('.ps-record');
            const m = document.querySelector('.ps-tl-marker');
            return c && c.textContent.trim() === String(k) && d && d.dataset.b === String(k)
                && r && r.dataset.seq === String(k) && m && m.innerHTML.includes(`content:'${k}'`);
        }""",
        arg=k,
        timeout=UPDATE_MS,
    )


def test_explorer_in_voila(voila, artifacts, sample_db):
    from playwright.sync_api import sync_playwright

    pool = sample_db.pool(POOL)
    head = pool.head
    df = pool.records_df()
    failed = df[
        ((df["kind"] == "run_message") & df["message_status"].isin(["failed", "expired", "timed_out"]))
        | ((df["kind"] == "wake") & df["wake_status"].isin(["timed_out", "failed"]))
    ]["seq"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(UPDATE_MS)
            page.goto(voila, timeout=PAGE_MS, wait_until="domcontentloaded")
            page.wait_for_selector(".poolscope-explorer .ps-counts .ps-cursor", timeout=PAGE_MS)
            page.wait_for_selector(
                ".poolscope-explorer .widget-image img, .poolscope-explorer img.widget-image", timeout=PAGE_MS
            )

            # the snapshot at the head, as the SDK computes it
            snap = pool.snapshot(head)
            counts = page.locator(".ps-counts")
            assert _cursor_shown(page) == head
            assert counts.get_attribute("data-members") == str(len(snap.members))
            assert counts.get_attribute("data-messages") == str(len(snap.messages))
            text = counts.inner_text()
            assert f"{len(snap.members)} members" in text and f"{len(snap.wakes)} wakes" in text

            # one record back with the ◀ button
            page.get_by_role("button", name="◀", exact=True).click()
            _wait_for_cursor(page, head - 1)
            before = pool.snapshot(head - 1)
            assert counts.get_attribute("data-messages") == str(len(before.messages))
            assert page.locator(".ps-diff").get_attribute("data-a") == str(head)
            assert page.locator(".ps-record").get_attribute("data-seq") == str(head - 1)

            # the keyboard on the slider handle: two records back
            handle = page.locator(".widget-slider .noUi-handle").first
            handle.focus()
            handle.press("ArrowLeft")
            handle.press("ArrowLeft")
            _wait_for_cursor(page, head - 3)
            assert counts.get_attribute("data-members") == str(len(pool.snapshot(head - 3).members))

            # the previous failure, as computed from records_df
            want = int(failed[failed < head - 3].max())
            page.get_by_role("button", name=re.compile(r"^⚠ ◀$")).click()
            _wait_for_cursor(page, want)
            assert counts.get_attribute("data-wakes") == str(len(pool.snapshot(want).wakes))
            assert f"content:'{want}'" in page.locator(".ps-tl-marker").inner_html()

            # the SDK JSON, rendered when its section opens
            page.get_by_text("snapshot JSON (the SDK's exact text)").click()
            page.wait_for_selector(f"pre.ps-json[data-cursor='{want}']", timeout=UPDATE_MS)
            shown_json = page.locator("pre.ps-json").inner_text()
            assert shown_json.startswith(pool.snapshot(want).to_json()[:200])
            page.get_by_text("snapshot JSON (the SDK's exact text)").click()  # close it again

            page.locator(".poolscope-explorer").screenshot(path=str(artifacts / "explorer.png"))
        finally:
            browser.close()


@pytest.mark.parametrize("which", ["sample", "long ids"])
def test_the_reports_summary_fits_a_laptop_screen(which, tmp_path, artifacts):
    """At 1400 px wide the summary table shows every column: no horizontal
    scrolling, its right edge inside the window (also with a 10 KB pool id)."""
    _requirements()
    from playwright.sync_api import sync_playwright

    from poolscope.report import report

    db = SAMPLE_DB
    if which == "long ids":
        db = tmp_path / "long.db"
        long_ids_database(db, members=20)
    page_path = report(db, tmp_path / "report.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(page_path.resolve().as_uri(), timeout=PAGE_MS)
            box = page.evaluate(
                """() => {
                    const table = document.querySelector('table.ps-summary');
                    const last = table.querySelector('tr:last-child td:last-child').getBoundingClientRect();
                    const scroller = table.parentElement;
                    return {right: table.getBoundingClientRect().right, last: last.right, window: window.innerWidth,
                            scroll: scroller.scrollWidth, client: scroller.clientWidth,
                            page: document.documentElement.scrollWidth, columns: table.rows[2].cells.length};
                }"""
            )
            page.screenshot(path=str(artifacts / f"report_summary_1400_{which.replace(' ', '_')}.png"))
        finally:
            browser.close()
    assert box["columns"] == 1 + 6 + 2 + 7 + 5  # pool, counts, anomalies, message statuses, wake statuses
    assert box["scroll"] <= box["client"], box  # nothing to scroll to
    assert box["right"] <= box["window"] and box["last"] <= box["window"], box
    assert box["page"] <= box["window"], box
