"""Time the dashboard in a real browser, on a database you choose.

    repmon bench --mentions 1000000 --database sqlite:///bench-1m.db   # leaves its data there
    python -m monitor.bench.browser sqlite:///bench-1m.db [--loads 5] [--json]

It starts the dashboard (`streamlit run app.py`) on the database, with the benchmark's brand
and disclosure, opens it in headless Chromium driven by Playwright, and times what a person
waits for:
- the first load after the server starts (cold: nothing cached in the server or the
  browser), until the KPI cards, the "What is hurting us" table and the end of the run;
- loading it again, as a person reopens it (a new dashboard session; the browser has the
  page's scripts and the server its query results), the same way;
- a switch to the Mentions page, until its table's CSV button shows the row count.

Needs Playwright (`pip install -e ".[test]"`) and a Chromium (`--chromium PATH`, or
$REPMON_CHROMIUM, or one installed, as for the PDF briefing); Playwright's own browser
download is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.bench.run import BenchError, bench_settings
from monitor.briefing import CHROMIUM_ARGS, BriefingError, find_chromium
from monitor.store import Store, redact_url

APP = Path(__file__).resolve().parents[2] / "app.py"
STARTUP_SECONDS = 60
PAGE_TIMEOUT_MS = 180_000  # a first load on a cold machine; a wait this long is a failure


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(url: str) -> bool:
    """Return True once the Streamlit server at `url` answers its health check."""
    try:
        health = f"{url}/_stcore/health"
        with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310 (our own http URL)
            return bool(response.status == 200 and response.read().strip() == b"ok")
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def streamlit_server(
    cwd: Path, env: Mapping[str, str], log: Path, port: int | None = None, app: Path = APP
) -> Iterator[str]:
    """Start `streamlit run app.py` from `cwd` with `env`, output to `log`, on `port` (default:
    a free one); yield its URL once healthy, and stop it afterwards. Raise BenchError, with
    the server's output, if it does not start."""
    if not app.exists():
        raise BenchError(f"{app} does not exist: run this from a clone of the repository.")
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                *("-m", "streamlit", "run", str(app)),
                *("--server.headless", "true", "--server.port", str(port)),
                *("--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"),
            ],
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"streamlit did not become healthy (exit code {process.poll()}):\n"
                    + log.read_text(errors="replace")
                )
            time.sleep(0.25)  # poll interval of a bounded wait: nothing to wait on but HTTP
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def config_text() -> str:
    """Return a monitor.toml with the benchmark's brand and disclosure (no storage: the
    database comes from $MONITOR_DATABASE_URL, so a password in it stays out of files)."""
    settings = bench_settings("sqlite://")
    brand = settings.brand
    lines = ["[brand]", f"name = {json.dumps(brand.name)}"]
    lines.append(f"aliases = {json.dumps(list(brand.aliases))}")
    for event in settings.events:
        at = event.at.isoformat().replace("+00:00", "Z")
        lines += ["", "[[events]]", f'at = "{at}"', f"label = {json.dumps(event.label)}"]
        lines.append(f"kind = {json.dumps(event.kind)}")
    return "\n".join(lines) + "\n"


def _overview_shown(page: Any) -> None:
    """Wait until the Overview shows its KPI cards and its worst mentions, and has finished
    running."""
    page.get_by_test_id("stMetric").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    heading = page.get_by_role("heading", name="What is hurting us")
    table = heading.locator('xpath=following::*[@data-testid="stDataFrame"][1]')
    table.wait_for(timeout=PAGE_TIMEOUT_MS)
    _run_finished(page)


def _run_finished(page: Any) -> None:
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=PAGE_TIMEOUT_MS)
    if page.get_by_test_id("stException").count():
        raise BenchError("the dashboard showed an error:\n" + page.inner_text("body")[:2000])


def _timed_load(page: Any, url: str) -> tuple[float, float]:
    """Open the Overview (a new page load: a new dashboard session); return the seconds
    until it was shown, and then until the Mentions page was."""
    started = time.perf_counter()
    page.goto(url + "/")
    _overview_shown(page)
    overview = time.perf_counter() - started
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Mentions").click()
    page.get_by_role("heading", name="Mentions", exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    button = page.get_by_test_id("stDownloadButton").get_by_role("button")
    button.filter(has_text="rows)").wait_for(timeout=PAGE_TIMEOUT_MS)
    _run_finished(page)
    return overview, time.perf_counter() - started


def _screenshot(browser: Any, url: str, path: Path) -> None:
    # Streamlit scrolls inside its own container, so a full-page shot holds only the
    # viewport: make it tall enough for the whole Overview.
    context = browser.new_context(viewport={"width": 1400, "height": 3200})
    try:
        page = context.new_page()
        page.goto(url + "/")
        _overview_shown(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        context.close()


def measure(
    database_url: str,
    *,
    loads: int = 5,
    chromium: Path | None = None,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Return the seconds a person waits for the Overview (cold, then `loads` reloads) and
    for the Mentions page, on the dashboard serving `database_url`."""
    given = sa.engine.make_url(database_url)
    if given.get_backend_name() == "sqlite" and not Path(given.database or "").is_file():
        raise BenchError(f"no SQLite database at {given.database!r}: give the path of a built one.")
    store = Store(database_url)
    try:
        stored = store.count_mentions()
    finally:
        store.close()
    if not stored:
        raise BenchError(
            f"{redact_url(database_url)} holds no mentions: build one first, e.g. "
            "repmon bench --mentions 1000000 --database sqlite:///bench-1m.db"
        )
    try:
        from playwright.sync_api import Error as BrowserError
        from playwright.sync_api import sync_playwright
    except ImportError as missing:
        raise BenchError(
            'Playwright is not installed: pip install -e ".[test]" (the browser is Chromium '
            "from your system, not Playwright's download)."
        ) from missing
    try:  # the one the PDF briefing prints with: --chromium, $REPMON_CHROMIUM, or installed
        browser_path = find_chromium(chromium)
    except BriefingError as missing:
        raise BenchError(str(missing)) from missing
    with tempfile.TemporaryDirectory(prefix="repmon-browser-") as scratch:
        folder = Path(scratch)
        (folder / "monitor.toml").write_text(config_text(), encoding="utf-8")
        env = dict(os.environ, MONITOR_DATABASE_URL=database_url)
        env["MONITOR_CONFIG"] = str(folder / "monitor.toml")
        with (
            streamlit_server(folder, env, folder / "streamlit.log") as url,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=str(browser_path), args=list(CHROMIUM_ARGS)
            )
            try:
                # One browser session, as a person's: its cache holds the dashboard's scripts
                # after the first load, and each load starts a new session of the dashboard,
                # whose server caches are warm after the first.
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                cold, cold_mentions = _timed_load(page, url)
                warm = [_timed_load(page, url) for _ in range(loads)]
                context.close()
                if screenshot is not None:
                    _screenshot(browser, url, screenshot)
            except BrowserError as failure:  # a wait timed out, or the browser went away
                log = (folder / "streamlit.log").read_text(errors="replace")[-2000:]
                raise BenchError(
                    f"the dashboard did not show what was waited for: {failure}\n"
                    f"The server's last output:\n{log}"
                ) from failure
            finally:
                browser.close()
    reloads = [overview for overview, _ in warm]
    switches = [cold_mentions, *(mentions for _, mentions in warm)]
    return {
        "database": redact_url(database_url),
        "mentions": stored,
        "cold_s": cold,
        "reload_median_s": statistics.median(reloads),
        "reload_min_s": min(reloads),
        "reload_max_s": max(reloads),
        "mentions_page_median_s": statistics.median(switches),
    }


def render(figures: dict[str, Any]) -> str:
    """Return the figures as lines a person reads."""
    return "\n".join(
        [
            f"The dashboard in Chromium, on {figures['mentions']:,} mentions "
            f"({figures['database']})",
            f"  first load after the server starts (cold)   {figures['cold_s']:.2f} s",
            f"  loaded again (median, min-max)              {figures['reload_median_s']:.2f} s "
            f"({figures['reload_min_s']:.2f}-{figures['reload_max_s']:.2f})",
            f"  switch to the Mentions page (median)        "
            f"{figures['mentions_page_median_s']:.2f} s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run from the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m monitor.bench.browser", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("database_url", help="the database to serve, e.g. sqlite:///bench-1m.db")
    parser.add_argument("--loads", type=int, default=5, help="reloads to time (default 5)")
    parser.add_argument("--chromium", type=Path, help="default: $REPMON_CHROMIUM, or installed")
    parser.add_argument("--screenshot", type=Path, help="save the Overview as a PNG here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        figures = measure(
            args.database_url,
            loads=max(1, args.loads),
            chromium=args.chromium,
            screenshot=args.screenshot,
        )
    except BenchError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
