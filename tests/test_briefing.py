"""The leadership briefing on the demo scenario: its numbers against the Overview, `analysis`
and `repmon report event-study --json`; a page that loads nothing and escapes what people wrote;
a one-page PDF printed by the real Chromium whose chart is there when the page is drawn; and
the message that carries it.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from monitor import analysis, briefing, demo, impact, overview
from monitor.alerts.channels import send
from monitor.analysis import Window
from monitor.cli import main
from monitor.config import BrandConfig, Settings, demo_settings
from monitor.models import Event, MentionQuery, safe_http_url
from monitor.store import Store
from tests.conftest import CHROMIUM, ROOT, make_mention, require
from tests.replay import ReplayServer

NOW = datetime(2024, 6, 13, 7, 0, tzinfo=UTC)  # the morning after the demo's last day
LAST_WEEK = Window(datetime(2024, 6, 6, tzinfo=UTC), datetime(2024, 6, 13, tzinfo=UTC))
FIRST_WEEK = Window(datetime(2024, 5, 14, tzinfo=UTC), datetime(2024, 5, 21, tzinfo=UTC))
HOSTILE_TITLE = "<script>alert(1)</script> Northwind Bank leaked my data"
HOSTILE_TEXT = "Fraud on my card, awful and furious <img src=x onerror=alert(1)>"
HOSTILE_AUTHOR = '<b onmouseover="alert(2)">mallory</b>'


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(demo_url: str) -> Iterator[Store]:
    db = Store(demo_url)
    yield db
    db.close()


@pytest.fixture(scope="module")
def settings(demo_url: str) -> Settings:
    return demo_settings(demo_url)


@pytest.fixture(scope="module")
def brief(demo_store: Store, settings: Settings) -> briefing.Briefing:
    return briefing.build_briefing(demo_store, settings, now=NOW)


@pytest.fixture(scope="module")
def page(brief: briefing.Briefing) -> str:
    return briefing.render_html(brief)


def need_browser() -> None:
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")


@pytest.fixture(scope="module")
def pdf(page: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_browser()
    return briefing.render_pdf(
        page, tmp_path_factory.mktemp("pdf") / "briefing.pdf", chromium=CHROMIUM
    )


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <style> elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def named(self, name: str) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.tags if tag == name]


# -- the window ---------------------------------------------------------------------------------


def test_default_window_is_the_dashboards_last_seven_days(
    brief: briefing.Briefing, demo_store: Store
) -> None:
    assert brief.window == LAST_WEEK
    assert briefing.latest_window(demo_store.time_bounds(), 7) == LAST_WEEK
    first = datetime(2024, 4, 14, tzinfo=UTC)
    assert briefing.latest_window(demo_store.time_bounds(), 365).start == first  # clamped
    assert briefing.latest_window(None, 2, today=NOW.date()) == Window(
        datetime(2024, 6, 12, tzinfo=UTC), datetime(2024, 6, 14, tzinfo=UTC)
    )
    assert brief.baseline == analysis.baseline_window(demo.DISCLOSURE)
    assert brief.generated_at == NOW
    assert brief.window_label == "the last 7 days of data"
    assert "2024-06-06 to 2024-06-12 (UTC), the last 7 days of data" in briefing.render_html(brief)


def test_a_window_is_its_whole_days_or_the_last_days_of_data(
    demo_store: Store, settings: Settings
) -> None:
    two_weeks = briefing.build_briefing(demo_store, settings, days=14, now=NOW)
    assert two_weeks.window == Window(LAST_WEEK.start - timedelta(days=7), LAST_WEEK.end)
    assert two_weeks.window_label == "the last 14 days of data"
    assert two_weeks.study_days == 28
    first_week = briefing.build_briefing(
        demo_store,
        settings,
        window=Window(FIRST_WEEK.start + timedelta(hours=5), FIRST_WEEK.end - timedelta(hours=1)),
        now=NOW,
    )
    assert first_week.window == FIRST_WEEK and first_week.window_label == "the selected window"
    assert first_week.study_days == 7
    expected = asdict(analysis.kpis(demo_store.daily_counts(), FIRST_WEEK))
    assert asdict(first_week.now) == pytest.approx(expected, rel=1e-12)
    # A window inside the baseline: no interval, no study, and the whole baseline all the same.
    early = Window(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC))
    inside = briefing.build_briefing(demo_store, settings, window=early, now=NOW)
    assert inside.change is None and "overlaps the baseline" in inside.change_note
    assert inside.study is None and "do not overlap this window" in inside.study_note
    baseline = analysis.baseline_window(demo.DISCLOSURE)
    assert inside.before is not None
    assert inside.before.mentions == analysis.kpis(demo_store.daily_counts(), baseline).mentions
    assert_loads_nothing(briefing.render_html(inside))
    with pytest.raises(ValueError, match="not both"):
        briefing.build_briefing(demo_store, settings, window=FIRST_WEEK, days=7)


@pytest.mark.parametrize(("text", "days"), [("7d", 7), ("14D", 14), ("2w", 14), (" 3 ", 3)])
def test_window_durations_are_whole_days(text: str, days: int) -> None:
    assert briefing.parse_window_days(text) == days


@pytest.mark.parametrize("text", ["0d", "12h", "-1d", "1.5d", "week", ""])
def test_other_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 7d"):
        briefing.parse_window_days(text)


@pytest.mark.parametrize(
    ("window", "days"),
    [
        (LAST_WEEK, 28),  # a month on, only "after 28 days" still reaches into the window
        (FIRST_WEEK, 7),
        (Window(datetime(2024, 5, 14, tzinfo=UTC), datetime(2024, 5, 16, tzinfo=UTC)), 1),
        (Window(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC)), None),
    ],
)
def test_the_study_window_is_the_after_window_most_like_the_briefings(
    demo_store: Store, window: Window, days: int | None
) -> None:
    _, afters = impact.plan_windows(demo.EVENTS[0], impact.data_span(demo_store.time_bounds()))
    found = briefing.matching_after_window(afters, window)
    assert (found.days if found else None) == days


# -- the numbers --------------------------------------------------------------------------------


def test_kpis_are_the_overviews_for_the_same_window(
    brief: briefing.Briefing, demo_store: Store, page: str
) -> None:
    baseline = analysis.baseline_window(demo.DISCLOSURE)
    # The Overview's query: the timeline's days, from the baseline through the window.
    daily = demo_store.daily_counts(MentionQuery(since=baseline.start, until=LAST_WEEK.end))
    assert brief.now == analysis.kpis(daily, LAST_WEEK)
    assert brief.before == analysis.kpis(daily, baseline)
    # And, up to the order of float sums, from every stored day.
    every_day = demo_store.daily_counts()
    for got, window in ((brief.now, LAST_WEEK), (brief.before, baseline)):
        expected = asdict(analysis.kpis(every_day, window))
        assert asdict(got) == pytest.approx(expected, rel=1e-12)
    assert brief.now.mentions == demo_store.count_mentions(
        MentionQuery(since=LAST_WEEK.start, until=LAST_WEEK.end)
    )
    # The cards show the Overview's formats of those numbers.
    cards = {card.key: card for card in briefing.cards(brief)}
    assert cards["share_negative"].value == format(brief.now.share_negative, ".0%")
    assert cards["mentions_per_day"].value == format(brief.now.mentions_per_day, ",.1f")
    shown = Tags(page)
    assert [a["data-metric"] for a in shown.named("div") if "data-metric" in a] == list(cards)
    for card in cards.values():
        assert f'<div class="value">{card.value}</div>' in page
        assert card.delta and card.delta in page


def test_what_people_are_angry_about_is_the_overviews_first_topics(
    brief: briefing.Briefing, demo_store: Store
) -> None:
    baseline = analysis.baseline_window(demo.DISCLOSURE)
    shown = overview.build(demo_store, LAST_WEEK, baseline).topics
    assert len(shown) > briefing.TOP_TOPICS  # the page lists them all, the briefing the first
    assert brief.topics == shown[: briefing.TOP_TOPICS]
    assert brief.negative_mentions == brief.now.negative


def test_cards_equal_the_overview_page(demo_env: str, brief: briefing.Briefing) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.date_input(key="sidebar_window").value == (
        LAST_WEEK.start.date(),
        LAST_WEEK.last_day.date(),
    )
    overview = {m.label: (m.value, m.delta) for m in at.metric}
    assert overview == {card.name: (card.value, card.delta) for card in briefing.cards(brief)}


def test_study_is_the_clis_event_study_json(
    demo_env: str, brief: briefing.Briefing, page: str
) -> None:
    result = CliRunner().invoke(
        main, ["report", "event-study", "--event", "Breach disclosed", "--json"]
    )
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)["studies"][0]
    assert cli["event"]["kind"] == "disclosure"
    assert brief.study == cli  # the very dictionary the CLI prints, every window
    assert brief.study_days == 28
    shown = brief.study_window
    assert shown is not None and shown["window"]["days"] == 28
    sentences = [m["sentence"] for m in shown["overall"]["metrics"]]
    assert any(s.startswith("Negative share rose from 21% to 63% (95% CI +") for s in sentences)
    for sentence in sentences:
        assert f"<li>{html.escape(sentence)}</li>" in page
    assert html.escape(cli["recovery"]["statement"]) in page


def test_card_intervals_are_the_event_studys_bootstrap_of_the_cards_windows(
    brief: briefing.Briefing, demo_store: Store
) -> None:
    assert brief.study is not None and brief.change is not None
    # Given the event study's own windows, the cards' computation gives the study's numbers.
    week = next(w for w in brief.study["windows"] if w["window"]["days"] == 7)
    before, after = brief.study["before"], week["window"]

    def window(entry: dict[str, Any]) -> Window:
        return Window(*(datetime.fromisoformat(entry[k]) for k in ("start", "end")))

    same = briefing.window_change(demo_store, window(before), window(after), brief.options)
    assert [m.to_dict() for m in same.metrics] == week["overall"]["metrics"]
    # For the cards' window, its values are the cards' values and its intervals are shown.
    assert brief.change.mentions_after == brief.now.mentions
    share = brief.change.metric("share_negative")
    assert share.after == round(brief.now.share_negative or 0, 4)
    assert share.before == round(brief.before.share_negative or 0, 4)  # type: ignore[union-attr]
    assert share.clear and share.ci_low is not None and share.ci_low > 0
    cards = {card.key: card for card in briefing.cards(brief)}
    ci = impact.metric_cells(share.to_dict())["CI"]
    assert cards["share_negative"].interval == f"95% CI {ci} pts"


def test_narratives_mentions_and_alerts_are_the_windows(
    brief: briefing.Briefing, demo_store: Store, page: str
) -> None:
    negative = MentionQuery(since=LAST_WEEK.start, until=LAST_WEEK.end, labels=("negative",))
    worst = demo_store.mentions_frame(negative, order_by="engagement", descending=True, limit=10)
    assert [m.engagement for m in brief.hurting] == list(worst["engagement"][:5])
    assert all(m.url == safe_http_url(m.url) for m in brief.hurting)
    assert brief.negative_mentions == demo_store.count_mentions(negative)
    breach = brief.topics[0]
    assert breach.topic == "breach" and breach.mentions == demo_store.count_mentions(
        replace(negative, topics=("breach",))
    )
    assert [t.mentions for t in brief.topics] == sorted(
        (t.mentions for t in brief.topics), reverse=True
    )
    assert breach.change is not None and breach.change > 0.2  # far above the baseline's share
    fired = demo_store.alerts(since=LAST_WEEK.start, until=LAST_WEEK.end, limit=None)
    assert [a.id for a in brief.alerts] == [a.id for a in fired] and fired
    assert f"Alerts in this window: {len(fired)}" in page
    assert len(brief.series) == (LAST_WEEK.end - brief.baseline.start).days  # type: ignore[union-attr]


# -- the page loads nothing and escapes what people wrote ---------------------------------------

LOADING_ATTRIBUTES = {"src", "srcset", "poster", "data", "action", "formaction", "background"}
LOADING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "base", "video"}
LOADING_TAGS |= {"audio", "source", "track", "image", "use", "feimage", "form", "input"}


def assert_loads_nothing(text: str) -> list[str]:
    """Check the page can fetch nothing; return the links a reader may click (<a href>)."""
    parsed = Tags(text)
    links = []
    for tag, attrs in parsed.tags:
        assert tag not in LOADING_TAGS, f"<{tag}> in the page"
        assert not LOADING_ATTRIBUTES & set(attrs), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "style" not in attrs or "url(" not in attrs["style"].lower(), (tag, attrs)
        for name in ("href", "xlink:href"):
            if name in attrs:
                assert tag == "a", f"<{tag} {name}> would load {attrs[name]!r}"
                assert safe_http_url(attrs[name]) == attrs[name], attrs[name]
                links.append(attrs[name])
        if tag == "meta" and "http-equiv" in attrs:
            assert attrs["http-equiv"].lower() == "content-security-policy", attrs
            assert "default-src 'none'" in attrs["content"]
    css = " ".join(parsed.styles).lower()
    for banned in ("url(", "@import", "@font-face", "http:", "https:"):
        assert banned not in css, banned
    return links


def test_the_page_is_self_contained(page: str, brief: briefing.Briefing) -> None:
    links = assert_loads_nothing(page)
    # Links are exactly the mentions' (http(s) only) and the dashboard's: to click, not load.
    assert sorted(links) == sorted([m.url for m in brief.hurting if m.url] + [brief.dashboard_url])
    assert page.count("<svg") == 1 and 'xmlns="http://www.w3.org/2000/svg"' in page  # a name
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page


def hostile_store(tmp_path: Path) -> tuple[Store, Settings]:
    """A small store of a brand in a breach: calm before, a hostile viral post after."""
    db = Store(f"sqlite:///{tmp_path / 'hostile.db'}")
    disclosed = datetime(2024, 3, 10, 15, tzinfo=UTC)
    calm = [
        make_mention(external_id=f"c{i}", published_at=disclosed - timedelta(days=1 + i, hours=i))
        for i in range(20)
    ]
    angry = [
        make_mention(
            external_id=f"a{i}",
            text="Northwind Bank breach leaked my card, terrible and furious",
            published_at=disclosed + timedelta(hours=2 + 5 * i),
            score=i,
        )
        for i in range(12)
    ]
    hostile = make_mention(
        external_id="evil",
        title=HOSTILE_TITLE,
        text=HOSTILE_TEXT,
        author=HOSTILE_AUTHOR,
        url="javascript:alert(3)",
        published_at=disclosed + timedelta(days=1),
        score=50_000,
        comments=900,
    )
    assert hostile.label == "negative"
    db.upsert_mentions([*calm, *angry, hostile])
    settings = Settings(
        brand=BrandConfig("Northwind <Bank> & Co"),
        events=(Event(disclosed, "Breach <disclosed>", "disclosure"),),
        database_url=db.url,
        dashboard_url="javascript:alert(4)",
    )
    return db, settings


def test_what_people_wrote_is_escaped_never_markup(tmp_path: Path) -> None:
    db, settings = hostile_store(tmp_path)
    try:
        made = briefing.build_briefing(db, settings, now=datetime(2024, 3, 12, 9, tzinfo=UTC))
    finally:
        db.close()
    assert made.hurting[0].said.startswith(HOSTILE_TITLE)
    text = briefing.render_html(made)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b onmouseover=&quot;alert(2)&quot;&gt;mallory&lt;/b&gt;" in text
    assert "Northwind &lt;Bank&gt; &amp; Co" in text and "Breach &lt;disclosed&gt;" in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "javascript:" not in text.lower()  # neither the post's link nor the dashboard's
    assert not {tag for tag, _ in Tags(text).tags} & {"script", "img"}
    assert assert_loads_nothing(text) == [m.url for m in made.hurting if m.url]
    message = briefing.briefing_message(made)
    assert "alert(" not in message.body_text + message.body_markdown  # no mention text


def test_without_a_disclosure_or_data_the_page_says_so(tmp_path: Path) -> None:
    db = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    settings = Settings(brand=BrandConfig("Fabrikam"), database_url=db.url)
    try:
        empty = briefing.build_briefing(db, settings, now=NOW)
        db.upsert_mentions([make_mention(published_at=NOW - timedelta(days=3))])
        stale = briefing.build_briefing(db, settings, now=NOW)
    finally:
        db.close()
    assert empty.window == Window(
        datetime(2024, 6, 7, tzinfo=UTC), datetime(2024, 6, 14, tzinfo=UTC)
    )
    assert empty.before is None and empty.change is None and empty.study is None
    text = briefing.render_html(empty)
    assert "No mentions in this window." in text and "no disclosure event is configured" in text
    assert "No mentions in this period." in text  # the chart
    assert_loads_nothing(text)
    assert stale.stale and "Collection may have stopped" in briefing.render_html(stale)
    assert briefing.briefing_message(stale).body_text.count("Warning: the newest mention") == 1


# -- the PDF ------------------------------------------------------------------------------------


def coloured(pixels: np.ndarray, colour: str, tolerance: int = 8) -> int:
    """Return how many pixels are within `tolerance` of `colour` ("#rrggbb") on every channel."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels[..., :3].astype(int) - target) <= tolerance).all(axis=-1).sum())


def test_the_pdf_is_one_page_and_its_chart_is_drawn(pdf: Path, tmp_path: Path) -> None:
    require(importlib.util.find_spec("pypdfium2"), "pypdfium2 is not installed (the test extra)")
    import pypdfium2 as pdfium

    assert pdf.read_bytes().startswith(b"%PDF-")
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == 1
        width, height = document[0].get_size()
        assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (210, 297)  # A4
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    image.save(tmp_path / "briefing.png")
    pixels = np.asarray(image.convert("RGB"))
    # Not blank: a good part of the page is ink, not paper.
    assert (pixels < 200).any(axis=-1).mean() > 0.03
    # The chart, in the page's upper half, has its bars (all three labels), its net-sentiment
    # line and the shaded window: colour, not only black text on white.
    chart = pixels[: pixels.shape[0] // 2].astype(int)
    found = {c: coloured(chart, c) for c in (*briefing.LABEL_COLOURS.values(), briefing.NET_COLOUR)}
    red, grey, green, blue = found.values()
    # Without the chart the same page has about 50, 850, 0 and 0 such pixels.
    assert red > 2000 and green > 1000 and grey > 1500 and blue > 500, found
    r, g, b = chart[..., 0], chart[..., 1], chart[..., 2]
    yellow = int(((r > 240) & (g > 230) & (b < 225) & (b < g - 15)).sum())
    assert yellow > 3000, yellow


def test_letter_paper_is_one_page_too(page: str, tmp_path: Path) -> None:
    need_browser()
    require(importlib.util.find_spec("pypdfium2"), "pypdfium2 is not installed (the test extra)")
    import pypdfium2 as pdfium

    out = briefing.render_pdf(page, tmp_path / "letter.pdf", chromium=CHROMIUM, paper="Letter")
    document = pdfium.PdfDocument(out)
    try:
        assert len(document) == 1
        assert tuple(round(v) for v in document[0].get_size()) == (612, 792)
    finally:
        document.close()
    assert [p.name for p in tmp_path.iterdir()] == ["letter.pdf"]  # no temporary left behind


def test_the_browser_is_asked_for_nothing(page: str) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    asked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(briefing.CHROMIUM_ARGS)
        )
        try:
            tab = browser.new_page()
            tab.on("request", lambda request: asked.append(request.url))
            tab.set_content(page, wait_until="load")
            tab.emulate_media(media="print")
            tab.wait_for_timeout(200)
            assert tab.locator("svg rect").count() > 50  # the bars are drawn in the browser
        finally:
            browser.close()
    assert asked == []


def test_missing_chromium_or_playwright_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(briefing.BriefingError, match="apt-get install chromium"):
        briefing.render_pdf("<p>x</p>", tmp_path / "x.pdf", chromium=tmp_path / "no-chromium")
    if importlib.util.find_spec("playwright"):  # a program that is no browser: its reason
        with pytest.raises(briefing.BriefingError, match=r"^Chromium at /bin/true could not"):
            briefing.render_pdf("<p>x</p>", tmp_path / "x.pdf", chromium="/bin/true", timeout=10)
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # as if not installed
    with pytest.raises(briefing.BriefingError, match="pip install playwright"):
        briefing.render_pdf("<p>x</p>", tmp_path / "x.pdf", chromium=sys.executable)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="A4, Letter"):
        briefing.render_pdf("<p>x</p>", tmp_path / "x.pdf", paper="A3")


# -- delivery -----------------------------------------------------------------------------------


def test_the_message_carries_the_headline_and_the_pdf(
    brief: briefing.Briefing, pdf: Path, replay_server: ReplayServer
) -> None:
    message = briefing.briefing_message(brief)
    cards = {card.key: card for card in briefing.cards(brief)}
    share = cards["share_negative"]
    assert message.title == (
        f"Northwind Bank briefing, {LAST_WEEK.describe()}: {share.value} negative "
        f"({share.delta} vs baseline)"
    )
    for card in cards.values():
        assert f"- {card.name}: {card.value} ({card.delta}" in message.body_text
    assert f"Alerts in the window: {len(brief.alerts)}" in message.body_text
    assert "Since the disclosure (first 28 days): Negative share rose" in message.body_text
    assert "The one-page briefing is attached." in message.body_text
    assert briefing.suggested_filename(brief) == "northwind-bank-briefing-2024-06-12.pdf"

    replay_server.add("/hook", status=200)
    port = replay_server.base.rsplit(":", 1)[1]
    delivery = send(message, [f"json://127.0.0.1:{port}/hook"], attach=[pdf])
    assert delivery.sent and not delivery.failed
    payload = json.loads(replay_server.requests_to("/hook")[0].body)
    assert payload["title"] == message.title and payload["message"] == message.body_text
    (attachment,) = payload["attachments"]
    assert attachment["filename"] == "briefing.pdf"
    assert base64.b64decode(attachment["base64"]) == pdf.read_bytes()
