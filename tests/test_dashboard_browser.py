"""The real dashboard in a real browser: `streamlit run app.py` driven by headless Chromium.

The server starts in a folder without monitor.toml on an empty SQLite file, so the first
page load builds the demo scenario itself, as it does for a new user.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import briefing
from monitor.models import MentionQuery
from monitor.store import Store
from tests.conftest import CHROMIUM, require
from tests.streamlit_server import streamlit_server

pytestmark = pytest.mark.browser

KPI_LABELS = ["Mentions per day", "Mean sentiment", "Share negative", "Net sentiment"]
FIRST_RENDER_MS = 120_000  # the first load builds the demo before anything is drawn
CHROMIUM_ARGS = list(briefing.CHROMIUM_ARGS)


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Start `streamlit run app.py` in demo mode on an empty database; stop it afterwards."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")
    cwd = tmp_path_factory.mktemp("app_cwd")
    assert not (cwd / "monitor.toml").exists()
    database = tmp_path_factory.mktemp("app_db") / "demo.db"
    env = dict(os.environ, MONITOR_DATABASE_URL=f"sqlite:///{database}")
    env.pop("MONITOR_CONFIG", None)
    with streamlit_server(cwd, env, cwd / "streamlit.log") as url:
        yield Server(url=url, database_url=f"sqlite:///{database}")


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    """Return headless system Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    yield tab
    context.close()


def open_overview(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector('[data-testid="stMetric"]', timeout=FIRST_RENDER_MS)


def default_window_query(database_url: str) -> MentionQuery:
    """Return the dashboard's default window (the last 7 UTC days of data) as a query."""
    db = Store(database_url)
    try:
        bounds = db.time_bounds()
    finally:
        db.close()
    assert bounds is not None, "the app did not build the demo into $MONITOR_DATABASE_URL"
    last = bounds[1].date()
    first = max(bounds[0].date(), last - timedelta(days=6))
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return MentionQuery(since=since, until=until)


def count_mentions(database_url: str, query: MentionQuery) -> int:
    db = Store(database_url)
    try:
        return db.count_mentions(query)
    finally:
        db.close()


def test_overview_renders_kpis_timeline_and_worst_mentions(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    open_overview(page, server)

    cards = page.get_by_test_id("stMetric")
    expect(cards).to_have_count(4)
    expect(page.get_by_test_id("stMetricLabel")).to_have_text(KPI_LABELS)
    # The demo was built into $MONITOR_DATABASE_URL, and the card shows that database's volume.
    window = default_window_query(server.database_url)
    assert window.since is not None and window.until is not None
    days = (window.until - window.since).days
    per_day = count_mentions(server.database_url, window) / days
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{per_day:,.1f}")

    timeline = page.locator(".js-plotly-plot").first
    expect(timeline).to_be_visible()
    expect(timeline.locator(".annotation-text", has_text="Breach disclosed")).to_be_visible()

    heading = page.get_by_role("heading", name="What is hurting us")
    expect(heading).to_be_visible()
    table = heading.locator('xpath=following::*[@data-testid="stDataFrame"][1]')
    expect(table).to_be_visible()
    # The grid's accessible table: a header row plus the ten most-engaged negative mentions.
    expect(table.locator("table").first).to_have_attribute("aria-rowcount", "11")

    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_mentions_csv_download_has_every_counted_row(
    page: Any, server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    open_overview(page, server)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Mentions").click()
    expect(page.get_by_role("heading", name="Mentions", exact=True)).to_be_visible()

    button = page.get_by_test_id("stDownloadButton").get_by_role("button")
    expect(button).to_have_text(re.compile(r"Download CSV \([\d,]+ rows\)"))
    expect(button).to_be_enabled()
    label = button.inner_text()
    found = re.search(r"Download CSV \(([\d,]+) rows\)", label)
    assert found, label
    rows_in_label = int(found.group(1).replace(",", ""))
    assert rows_in_label == count_mentions(
        server.database_url, default_window_query(server.database_url)
    )

    with page.expect_download() as download_info:
        button.click()
    saved = tmp_path / "mentions.csv"
    download_info.value.save_as(saved)

    content = saved.read_text(encoding="utf-8")
    assert content.startswith("published_at,source,label,compound")
    rows = list(csv.reader(io.StringIO(content, newline="")))
    assert rows[0][:4] == ["published_at", "source", "label", "compound"]
    assert len(rows) - 1 == rows_in_label > 0
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_a_topic_on_the_overview_opens_its_negative_mentions(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    open_overview(page, server)
    expect(page.get_by_role("heading", name="What they are angry about")).to_be_visible()
    # The first topic offered is the one most negative mentions carry.
    picked = page.get_by_label("Read the negative mentions about")
    expect(picked).to_be_visible()
    page.get_by_role("button", name="Open them on the Mentions page").click()

    expect(page.get_by_role("heading", name="Mentions", exact=True)).to_be_visible()
    caption = page.get_by_text(re.compile(r"^[\d,]+ mentions match: "))
    expect(caption).to_contain_text("labels: negative; topics: ")
    found = re.match(r"([\d,]+) mentions match: .*topics: (\w+)\.$", caption.inner_text())
    assert found, caption.inner_text()
    query = default_window_query(server.database_url)
    negatives = MentionQuery(
        since=query.since, until=query.until, labels=("negative",), topics=(found.group(2),)
    )
    assert (
        int(found.group(1).replace(",", "")) == count_mentions(server.database_url, negatives) > 0
    )
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_overview_screenshot_is_not_blank(page: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Streamlit scrolls inside its own container, so a full-page shot only holds the viewport:
    # make the viewport tall enough for the whole overview.
    page.set_viewport_size({"width": 1400, "height": 3200})
    open_overview(page, server)
    # The timeline, the star ratings of the demo's reviews, the by-source bars, and the
    # topics of negative mentions.
    expect(page.locator(".js-plotly-plot")).to_have_count(4)
    heading = page.get_by_role("heading", name="What is hurting us")
    table = heading.locator('xpath=following::*[@data-testid="stDataFrame"][1]')
    expect(table.locator("table").first).to_have_attribute("aria-rowcount", "11")

    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000

    if importlib.util.find_spec("PIL") is None:
        return
    from PIL import Image

    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.height >= 3200
        colours = rgb.getcolors(maxcolors=1_000_000)
        assert colours is not None
        assert len(colours) > 200, "too few colours for a rendered dashboard"
        background = max(colours)[0] / (rgb.width * rgb.height)
        assert background < 0.95, f"{background:.0%} of the screenshot is one colour"
        # Content all the way down: the charts and tables, not only the header.
        lower = rgb.crop((0, rgb.height // 2, rgb.width, rgb.height))
        lower_colours = lower.getcolors(maxcolors=1_000_000)
        assert lower_colours is not None
        assert len(lower_colours) > 50
