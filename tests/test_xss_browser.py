"""Hostile text on every dashboard page, in a real browser: shown as text, never run or loaded.

Mentions carrying script tags, event handlers, `javascript:` and `data:` links, Markdown links
and images, escaped markup and Unicode look-alikes in their title, text, author and URL are
imported with `repmon import`, the way a vendor export arrives; alerts with hostile rules,
messages and evidence, and a collection run with a hostile error, are stored through the
store; the config's brand, event labels and an alert rule's name carry them too, and two
sources are named with them. `streamlit run app.py` then serves that database, and headless
Chromium opens the Overview, Mentions, Impact, Alerts and Sources pages with their default
filters (the hostile rows are the newest, so the default window holds them). On each page:
the payloads' own words are on screen, as text; no script ran (no dialog, no console message,
no `window.__xss`, the title unchanged, in any frame); nothing loaded from a payload's URL;
no element has an `on*` attribute; and no `href`, `src` or `action` uses `javascript:`,
`vbscript:` or `data:`. The Overview's HTML briefing, downloaded and opened, passes the same.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.models import Alert, safe_http_url
from monitor.store import Store
from tests.conftest import CHROMIUM, require
from tests.streamlit_server import streamlit_server
from tests.test_dashboard_browser import (
    Server,
    browser,
    page,
)

pytestmark = pytest.mark.browser
__all__ = ["browser", "page"]  # the fixtures above, driving this module's `server`

BEACON = "http://127.0.0.1:9/xss-beacon"  # a port Chromium refuses: a load is only attempted
RENDER_MS = 90_000

# Each payload, if it ever ran, would leave a trace the test looks for: window.__xss, a
# dialog, a console message, the document title, or a request to the beacon.
PAYLOADS: dict[str, str] = {
    "img-onerror": "<img src=x onerror=\"window.__xss='img'\">",
    "script": "<script>window.__xss='script'</script>",
    "svg-onload": "<svg onload=\"window.__xss='svg'\"><circle r=9></circle></svg>",
    "anchor": "<a href=\"javascript:window.__xss='anchor'\">anchor</a>",
    "markdown-link": "[markdown link](javascript:window.__xss='md')",
    "markdown-data": "[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "markdown-image": f"![markdown image]({BEACON}/markdown-image.png)",
    "entities": "&lt;script&gt;window.__xss='entity'&lt;/script&gt;",
    "dialog": "<img src=x onerror=alert('xss')>",
    "console": "<img src=x onerror=console.log('XSS-FIRED')>",
    "title": "<img src=x onerror=\"document.title='XSS'\">",
    "iframe": "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>",
    "unicode": "\u202e<scr\u200bipt>window.__xss='rlo'</scr\u200bipt> \uff1cscript\uff1e :red[x]",
    "beacon-img": f'<img src="{BEACON}/img.png">',
}
URLS = [
    "javascript:window.__xss='url'",
    "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==",
    " JaVaScRiPt:alert(1)",
    "vbscript:msgbox(1)",
    'https://ok.example/" onmouseover="window.__xss=1',
    "\u200bjavascript:alert(1)",
]
# Sources are named by whoever runs `repmon import --source`; names reach captions and charts.
HOSTILE_SOURCES = [
    f"forum ![src]({BEACON}/source.png)",
    "<b>b</b><a href=javascript:window.__xss=1>s</a>[s](javascript:x)",  # 64 chars at most
]
BRAND = "Acme <img src=x onerror=\"window.__xss='brand'\"> [brand](javascript:x)"
DISCLOSURE = (
    f"Breach disclosed {PAYLOADS['markdown-link']} {PAYLOADS['img-onerror']} {PAYLOADS['entities']}"
)
RESPONSE = f"Statement {PAYLOADS['script']} {PAYLOADS['markdown-image']}"
RULE = f"Viral {PAYLOADS['markdown-image']} {PAYLOADS['anchor']}"
STORED_RULE = f"Stored rule {PAYLOADS['markdown-link']} {PAYLOADS['dialog']}"
STORED_MESSAGE = f"Message {PAYLOADS['script']} {PAYLOADS['markdown-data']}"
EVIDENCE = f"Evidence {PAYLOADS['svg-onload']} {PAYLOADS['entities']}"
RUN_ERROR = f"Run failed {PAYLOADS['img-onerror']} {PAYLOADS['markdown-image']}"

LAST = datetime(2024, 5, 20, 12, tzinfo=UTC)  # the newest mention: the default window ends here
DISCLOSED = LAST - timedelta(days=3)

# Run in every frame: anything a payload would have left behind, if it had been parsed as HTML.
SCAN = """
() => {
  const found = {xss: window.__xss === undefined ? null : String(window.__xss),
                 title: document.title, handlers: [], urls: [], frames: [], scripts: []};
  const unsafe = /^(javascript|vbscript|data):/;
  // Attributes that load by themselves, and those that navigate when clicked. An http(s)
  // link in text may be shown as a link (as GitHub-flavoured Markdown does); never loaded.
  const loads = ['src', 'srcset', 'data', 'poster', 'background'];
  const linkish = [...loads, 'href', 'xlink:href', 'action', 'formaction'];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const shown = `<${el.tagName.toLowerCase()} ${name}="${attr.value.slice(0, 120)}">`;
      if (name.startsWith('on')) found.handlers.push(shown);
      const bare = attr.value.replace(/[\\u0000-\\u0020\\u007f-\\u00a0\\u200b-\\u200f]/g, '');
      if ((linkish.includes(name) && unsafe.test(bare.toLowerCase())) ||
          (loads.includes(name) && bare.includes('xss-beacon'))) {
        found.urls.push(shown);
      }
      if (name === 'srcdoc') found.frames.push(shown);
    }
  }
  for (const script of document.querySelectorAll('script')) {
    if ((script.textContent || '').includes('__xss')) found.scripts.push(script.textContent);
  }
  return found;
}
"""
# The text a person can read: visible text, the data grids' cells (drawn on a canvas, and
# mirrored as an accessible table) and the charts' SVG labels.
READABLE = """
() => [document.body.innerText,
       ...[...document.querySelectorAll('[role=gridcell]')].map(c => c.textContent),
       ...[...document.querySelectorAll('svg text')].map(t => t.textContent)].join('\\n')
"""


def _hostile_mentions() -> list[dict[str, Any]]:
    rows = []
    for number, (name, payload) in enumerate(PAYLOADS.items()):
        rows.append(
            {
                "external_id": f"hostile-{name}",
                "published_at": (LAST - timedelta(hours=2 * number)).isoformat(),
                "title": f"T-{name} {payload}",
                "text": f"X-{name} {payload} Acme breach: furious, terrible, awful",
                "author": f"A-{name} {payload}",
                "url": URLS[number % len(URLS)],
                "score": 5000 - number,
                "comments": 7,
            }
        )
    return rows


def _baseline_mentions() -> list[dict[str, Any]]:
    """Calm mentions over the 40 days before the disclosure: the Impact page's baseline."""
    start = DISCLOSED - timedelta(days=40)
    return [
        {
            "external_id": f"calm-{number}",
            "published_at": (start + timedelta(hours=19 * number)).isoformat(),
            "text": f"Acme support sorted my card in {number % 9 + 2} minutes, good service",
            "author": "calm",
            "url": f"https://ok.example/{number}",
            "score": 3,
        }
        for number in range(50)
    ]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _config(folder: Path) -> Path:
    config = folder / "monitor.toml"
    config.write_text(
        f"""
[brand]
name = {json.dumps(BRAND)}

[[events]]
at = "{DISCLOSED:%Y-%m-%dT%H:%M:%SZ}"
label = {json.dumps(DISCLOSURE)}
kind = "disclosure"

[[events]]
at = "{DISCLOSED + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
label = {json.dumps(RESPONSE)}
kind = "response"

[storage]
url = "sqlite:///monitor.db"

[alerts]
check_after_collect = false

[[alerts.rules]]
name = {json.dumps(RULE)}
type = "viral_negative"
window = "48h"
min_engagement = 1000
cooldown = "12h"
severity = "high"
""",
        encoding="utf-8",
    )
    return config


def _import(config: Path, path: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "import", str(path), *args])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output, result.output


def build_world(folder: Path) -> str:
    """Write the config, import the hostile data, store alerts and a run; return the DB URL."""
    config = _config(folder)
    _import(config, _write_jsonl(folder / "calm.jsonl", _baseline_mentions()), "--format", "jsonl")
    hostile = _write_jsonl(folder / "hostile.jsonl", _hostile_mentions())
    _import(config, hostile, "--format", "jsonl", "--source", "forum")
    for number, source in enumerate(HOSTILE_SOURCES):
        row = {
            "external_id": f"named-{number}",
            "published_at": (LAST - timedelta(days=1, hours=number)).isoformat(),
            "text": f"Acme breach, awful: posted on a source named {number}",
            "score": 900,
        }
        named = _write_jsonl(folder / f"named-{number}.jsonl", [row])
        _import(config, named, "--format", "jsonl", "--source", source)
    database = f"sqlite:///{folder / 'monitor.db'}"
    store = Store(database)
    try:
        # The grids draw links on a canvas, out of the DOM's reach: only http(s) was stored.
        urls = store.mentions_frame(limit=None)["url"]
        assert all(safe_http_url(url) == url for url in urls), list(urls)
        for severity, fired in (("high", LAST - timedelta(hours=5)), (PAYLOADS["title"], LAST)):
            store.add_alert(
                Alert(
                    rule=STORED_RULE,
                    brand=BRAND,
                    fired_at=fired,
                    severity=severity,
                    value=0.9,
                    threshold=0.5,
                    message=STORED_MESSAGE,
                    evidence=[
                        {
                            "source": "forum",
                            "published_at": (LAST - timedelta(hours=6)).isoformat(),
                            "title": EVIDENCE,
                            "text": PAYLOADS["console"],
                            "url": URLS[0],
                            "engagement": 5007,
                        }
                    ],
                )
            )
        run = store.start_run("news")
        run.status, run.error = "failed", f"{RUN_ERROR}\nsecond line {PAYLOADS['script']}"
        store.finish_run(run)
    finally:
        store.close()
    return database


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Serve the hostile database with `streamlit run app.py`; stop it afterwards."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")
    folder = tmp_path_factory.mktemp("hostile")
    database = build_world(folder)
    env = dict(os.environ, MONITOR_CONFIG=str(folder / "monitor.toml"))
    env.pop("MONITOR_DATABASE_URL", None)
    with streamlit_server(folder, env, folder / "streamlit.log") as url:
        yield Server(url=url, database_url=database)


def _mention_words(*fields: str) -> list[str]:
    return [f"{field}-{name} {payload}" for name, payload in PAYLOADS.items() for field in fields]


# What each page must show, word for word: proof the hostile rows were drawn (as text).
PAGES: dict[str, list[str]] = {
    "/": [
        *HOSTILE_SOURCES,  # captions and the by-source chart
        STORED_RULE,  # the unacknowledged-alert box
        DISCLOSURE,  # caption and chart label
        RESPONSE,  # chart label
        *[f"T-{name} {PAYLOADS[name]}" for name in ("img-onerror", "script", "svg-onload")],
    ],
    "/explorer": _mention_words("T", "X", "A"),
    "/impact": [DISCLOSURE, *HOSTILE_SOURCES],
    "/alerts": [RULE, STORED_RULE, STORED_MESSAGE, EVIDENCE, PAYLOADS["title"]],
    "/sources": [RUN_ERROR],
}


class Witness:
    """What a page did that only a running payload would do: dialogs, console lines, loads."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda message: self.console.append(message.text))
        page.on("request", lambda request: self.requests.append(request.url))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def shown_as_text(page: Any, where: str, words: list[str]) -> None:
    """Wait until every word is readable on the page; fail naming those that never are."""
    try:
        page.wait_for_function(
            f"(words) => {{ const text = ({READABLE})(); return words.every(w => text.includes(w)); }}",
            arg=words,
            timeout=RENDER_MS,
        )
    except Exception:  # the timeout: say which words never appeared
        readable = "\n".join(frame.evaluate(READABLE) for frame in page.frames)
        missing = [word for word in words if word not in readable]
        pytest.fail(f"{where}: not shown as text: {missing}\n--- page text ---\n{readable[:4000]}")


def nothing_ran(page: Any, witness: Witness, where: str) -> None:
    """Assert no payload ran, loaded or left an active attribute, in any frame of the page."""
    page.wait_for_load_state("networkidle")
    for frame in page.frames:
        found = frame.evaluate(SCAN)
        place = f"{where} (frame {frame.url})"
        assert found["xss"] is None, f"{place}: a payload ran and set window.__xss={found['xss']}"
        assert "XSS" not in found["title"], f"{place}: a payload set the title {found['title']!r}"
        assert not found["handlers"], f"{place}: event-handler attributes: {found['handlers']}"
        assert not found["urls"], f"{place}: unsafe or payload URLs: {found['urls']}"
        assert not found["frames"], f"{place}: srcdoc frames: {found['frames']}"
        assert not found["scripts"], f"{place}: payload scripts: {found['scripts']}"
    assert not witness.dialogs, f"{where}: a payload opened dialogs {witness.dialogs}"
    logged = [line for line in witness.console if "XSS" in line]
    assert not logged, f"{where}: a payload logged {logged}"
    loaded = [url for url in witness.requests if "xss-beacon" in url]
    assert not loaded, f"{where}: a payload loaded {loaded}"


@pytest.mark.parametrize("path", list(PAGES))
def test_hostile_text_is_shown_as_text_and_never_runs(page: Any, server: Server, path: str) -> None:
    # Wide and tall: every column of the tables and every row of the hostile data on screen.
    page.set_viewport_size({"width": 2400, "height": 2400})
    witness = Witness(page)
    page.goto(server.url + path)
    shown_as_text(page, path, PAGES[path])
    nothing_ran(page, witness, path)
    assert page.get_by_test_id("stException").count() == 0


def test_the_briefing_download_shows_hostile_text_as_text(
    page: Any, server: Server, tmp_path: Path
) -> None:
    """The Overview's HTML briefing is opened in a browser too: the same checks hold there."""
    page.goto(server.url + "/")
    button = page.get_by_test_id("stDownloadButton").filter(has_text="Briefing (HTML)")
    button.get_by_role("button").wait_for(timeout=RENDER_MS)
    with page.expect_download(timeout=RENDER_MS) as download:
        button.get_by_role("button").click()
    briefing = tmp_path / "briefing.html"
    download.value.save_as(briefing)

    opened = page.context.new_page()
    witness = Witness(opened)
    opened.goto(briefing.as_uri())
    words = [BRAND, STORED_RULE, f"T-{'img-onerror'} {PAYLOADS['img-onerror']}"]
    shown_as_text(opened, "the briefing", words)
    nothing_ran(opened, witness, "the briefing")
