"""Alert channels: real delivery to a local SMTP server (aiosmtpd) and a local HTTP receiver.

Nothing here is mocked: Apprise connects to 127.0.0.1 exactly as it would to a mail server
or a webhook, and the tests read what arrived.
"""

from __future__ import annotations

import email
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts import channels
from monitor.alerts.channels import (
    NOTIFY_ENV,
    Message,
    channel_name,
    format_alert,
    notify,
    notify_urls,
    send,
)
from monitor.config import BrandConfig, ConfigError, Settings
from monitor.models import Alert
from tests.conftest import require
from tests.replay import ReplayServer

# Apprise's optional PGP support imports the deprecated imghdr module: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

DASHBOARD = "https://monitor.example.org/"
PASSWORD = "S3cretPass"
SLACK_TOKEN = "XXXXsecretSLACKtoken42"
HOSTILE = (
    "[click](javascript:alert(1)) <script>alert(2)</script> "
    "<img src=x onerror=alert(3)> data:text/html;base64,PHNjcmlwdD4= "
    "https://phish.example/login \x07bell\u202eevil"
)
LINKS = [
    "https://www.reddit.com/r/banking/comments/abc123/northwind_leak/",
    "https://news.example.com/2024/05/14/northwind-breach",
    "https://reviews.example.com/northwind?page=2&sort=new",
]


# -- fixtures -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def url(self, *, credentials: str = "", to: str = "pr-team@example.com") -> str:
        """Return a plain-SMTP (no TLS) Apprise mailto:// URL for this server."""
        login = f"{credentials}@" if credentials else ""
        return (
            f"mailto://{login}127.0.0.1:{self.port}?mode=insecure&from=monitor@example.com&to={to}"
        )


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Run aiosmtpd on a free loopback port; accept the login user / S3cretPass if offered."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        require(False, "aiosmtpd is not installed (pip install -e '.[test]')")
        return
    server = SmtpServer(port=_free_port())

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            parsed = email.message_from_bytes(envelope.original_content, policy=default_policy)
            assert isinstance(parsed, EmailMessage)
            server.messages.append(parsed)
            return "250 OK"

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mech: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=server.port,
        authenticator=authenticate,
        auth_require_tls=False,  # plain SMTP on loopback: the test has no certificate
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _no_env_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NOTIFY_ENV, raising=False)


def evidence(text: str = "", url: str = "", **fields: Any) -> dict[str, Any]:
    """Return an evidence dict as the rules store it."""
    values: dict[str, Any] = {
        "source": "reddit",
        "published_at": "2024-05-14T17:20:00Z",
        "title": "",
        "text": text or "Northwind Bank leaked my card details and nobody answers",
        "url": url,
        "engagement": 1234,
        "label": "negative",
        "compound": -0.81,
    }
    values.update(fields)
    return values


def make_alert(items: list[dict[str, Any]] | None = None, **fields: Any) -> Alert:
    """Return a fired negative-share alert with four evidence mentions (three are shown)."""
    if items is None:
        items = [
            evidence("My card was used in three countries overnight", LINKS[0]),
            evidence(
                "Regulator opens inquiry into Northwind breach",
                LINKS[1],
                source="news",
                title="Northwind Bank breach widens",
                published_at="2024-05-14T16:05:00Z",
                engagement=310,
            ),
            evidence(
                "One star. Still waiting for a new card.",
                LINKS[2],
                source="reviews",
                published_at="2024-05-14T15:00:00Z",
                engagement=4,
            ),
            evidence("Fourth mention, not shown", "https://example.com/fourth", engagement=1),
        ]
    values: dict[str, Any] = {
        "rule": "Negative surge",
        "brand": "Northwind Bank",
        "fired_at": datetime(2024, 5, 14, 18, 0, tzinfo=UTC),
        "severity": "high",
        "value": 0.4615,
        "threshold": 0.4,
        "message": "46% of 52 mentions in the last 6 hours are negative (threshold 40%).",
        "evidence": items,
        "kind": "negative_share",
    }
    values.update(fields)
    return Alert(**values)


def make_settings(urls: list[str] | None = None) -> Settings:
    secrets: dict[str, Any] = {"alerts": {"notify": urls}} if urls is not None else {}
    return Settings(brand=BrandConfig("Northwind Bank"), dashboard_url=DASHBOARD, secrets=secrets)


def parts(message: EmailMessage) -> tuple[str, str]:
    """Return the text/plain and text/html bodies of a received e-mail."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None, message
    return str(plain.get_content()), str(html.get_content())


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


# -- real delivery ------------------------------------------------------------------------------


def test_email_reaches_a_real_smtp_server_with_what_a_pr_lead_needs(
    smtp_server: SmtpServer,
) -> None:
    alert = make_alert()
    delivery = notify(alert, make_settings([smtp_server.url()]))

    assert delivery.sent == [f"mailto://127.0.0.1:{smtp_server.port}"]
    assert delivery.failed == []
    [received] = smtp_server.messages
    assert received["Subject"] == (
        "[HIGH] Northwind Bank: Negative surge — 46% negative (threshold 40%)"
    )
    assert received["To"] == "pr-team@example.com"
    plain, html = parts(received)
    for body in (plain, html):
        assert "46% negative, against a threshold of 40%." in body
        assert "2024-05-14 18:00 UTC" in body
        assert "Open the dashboard:" in body and DASHBOARD in body
        assert "example.com/fourth" not in body  # the top three only
    assert "reddit · 2024-05-14 17:20 UTC · 1,234 engagement" in plain
    assert "Northwind Bank breach widens — Regulator opens inquiry" in plain
    # Every link survives into both parts: the HTML anchors and the plain-text fallback.
    assert hrefs(html) == [*(link.replace("&", "&amp;") for link in LINKS), DASHBOARD]
    assert all(link in plain for link in LINKS)


def test_json_webhook_receives_title_and_plain_body(replay_server: ReplayServer) -> None:
    replay_server.add("/hook", status=200)
    message = format_alert(make_alert(), dashboard_url=DASHBOARD)
    port = replay_server.base.rsplit(":", 1)[1]

    delivery = send(message, [f"json://127.0.0.1:{port}/hook"])

    assert delivery.sent == [f"json://127.0.0.1:{port}"] and delivery.failed == []
    [request] = replay_server.requests_to("/hook")
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/json")
    payload = json.loads(request.body)
    assert payload["title"] == message.title
    # A JSON channel renders plain text, so it gets the plain body, links in full.
    assert payload["message"] == message.body_text
    assert "46% negative, against a threshold of 40%." in payload["message"]
    assert all(link in payload["message"] for link in LINKS)
    assert f"Open the dashboard: {DASHBOARD}" in payload["message"]


def test_a_hostile_mention_arrives_inert_by_mail_and_webhook(
    smtp_server: SmtpServer, replay_server: ReplayServer
) -> None:
    replay_server.add("/hook", status=200)
    port = replay_server.base.rsplit(":", 1)[1]
    alert = make_alert(
        [
            evidence(HOSTILE, "javascript:alert(4)", title="Bad [title](https://evil.example)"),
            evidence("plain", "data:text/html;base64,PHNjcmlwdD4="),
            evidence("fine", LINKS[0]),
        ]
    )
    delivery = notify(alert, make_settings([smtp_server.url(), f"json://127.0.0.1:{port}/hook"]))
    assert len(delivery.sent) == 2, delivery

    plain, html = parts(smtp_server.messages[0])
    webhook = json.loads(replay_server.requests_to("/hook")[0].body)["message"]
    # Only our own links are links: the evidence URL that is http(s), and the dashboard.
    assert hrefs(html) == [LINKS[0], DASHBOARD]
    assert "<script" not in html and "<img" not in html and "onerror=alert(3)>" not in html
    assert "&lt;script&gt;" in html  # shown as text, not dropped
    for body in (plain, html, webhook):
        assert "javascript:" not in body and "data:text/html" not in body
        assert "https://phish.example" not in body and "https://evil.example" not in body
        assert "](" not in body  # no Markdown link can form in any renderer
        assert "\x07" not in body and "\u202e" not in body
        assert "phish.example/login" in body  # still readable, as text
    assert webhook.count("(no link)") == 2


def test_a_failing_channel_is_reported_while_the_others_deliver(
    smtp_server: SmtpServer, replay_server: ReplayServer
) -> None:
    replay_server.add("/hook", status=200)
    replay_server.add("/broken", status=500)
    port = replay_server.base.rsplit(":", 1)[1]
    closed = _free_port()
    urls = [
        f"json://user:{PASSWORD}@127.0.0.1:{closed}/hook",  # nothing listens there
        smtp_server.url(),
        "msteams://team/tokenA/tokenB/tokenC",  # gone from Apprise: not an Apprise URL
        "definitely not a url",
        f"json://127.0.0.1:{port}/broken",
        f"json://127.0.0.1:{port}/hook",
    ]
    message = format_alert(make_alert(), dashboard_url=DASHBOARD)

    delivery = send(message, urls)

    assert delivery.sent == [f"mailto://127.0.0.1:{smtp_server.port}", f"json://127.0.0.1:{port}"]
    failed = dict(delivery.failed)
    assert list(failed) == [
        f"json://127.0.0.1:{closed}",
        "msteams://***",
        "(unrecognised URL)",
        f"json://127.0.0.1:{port}",
    ]
    assert "connection error" in failed[f"json://127.0.0.1:{closed}"].lower()
    assert failed["msteams://***"].startswith("not an Apprise URL")
    assert "workflow" in failed["msteams://***"]
    assert failed["(unrecognised URL)"].startswith("not an Apprise URL")
    assert "500" in failed[f"json://127.0.0.1:{port}"]
    assert len(smtp_server.messages) == 1 and len(replay_server.requests_to("/hook")) == 1
    assert PASSWORD not in repr(delivery) and "tokenB" not in repr(delivery)


def test_secrets_in_urls_never_reach_the_delivery_errors_or_logs(
    smtp_server: SmtpServer,
    replay_server: ReplayServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Level 1 captures even Apprise's TRACE level, which dumps each URL it parses.
    caplog.set_level(1)
    webhook_path = f"/services/T000SECRET/B000SECRET/{SLACK_TOKEN}"
    replay_server.add(webhook_path, status=200)
    port = replay_server.base.rsplit(":", 1)[1]
    urls = [
        smtp_server.url(credentials=f"user:{PASSWORD}"),
        f"json://hook-user:{PASSWORD}@127.0.0.1:{port}{webhook_path}",
        f"slack://T1JJ3T3L2/B00SECRET00/{SLACK_TOKEN}/#crisis-room",
        f"mailto://user:{PASSWORD}@mail.example.com?mode=bogus",  # refused while parsing
        f"json://user:{PASSWORD}@127.0.0.1:{_free_port()}/x",  # refused while connecting
    ]
    message = format_alert(make_alert(), dashboard_url=DASHBOARD)

    delivery = send(message, urls[:2] + urls[3:])  # no Slack send: that would leave loopback
    slack = send(message, ["slack://T1JJ3T3L2/" + SLACK_TOKEN])  # malformed: fails offline

    assert smtp_server.logins == ["user"] and len(smtp_server.messages) == 1
    assert len(replay_server.requests_to(webhook_path)) == 1
    assert len(delivery.sent) == 2 and len(delivery.failed) == 2
    assert slack.failed and slack.failed[0][0] == "slack://***"
    names = [channel_name(url) for url in urls]
    assert names[2] == "slack://***"
    shown = repr(delivery) + repr(slack) + repr(names) + "".join(delivery.failures)
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert any(r.name == "apprise" and r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # the POST line is there
    for secret in (PASSWORD, SLACK_TOKEN, "T000SECRET", "B000SECRET", "B00SECRET00", "T1JJ3T3L2"):
        assert secret not in shown, secret
        assert secret not in logged, secret


def test_a_malformed_url_is_a_failure_not_an_exception() -> None:
    message = Message("t", "b", "b")
    delivery = send(message, [f"::{PASSWORD}::", f"nosuchscheme://{PASSWORD}@host.example/x"])
    assert [name for name, _ in delivery.failed] == [
        "(unrecognised URL)",
        "nosuchscheme://host.example",
    ]
    assert all(reason.startswith("not an Apprise URL") for _, reason in delivery.failed)
    assert PASSWORD not in repr(delivery)
    assert send(message, []) == channels.Delivery()


def test_an_attachment_travels_with_the_message(
    replay_server: ReplayServer, tmp_path: Path
) -> None:
    replay_server.add("/hook", status=200)
    port = replay_server.base.rsplit(":", 1)[1]
    brief = tmp_path / "briefing.csv"
    brief.write_text("day,negative\n2024-05-14,46%\n", encoding="utf-8")

    delivery = send(
        Message("Daily briefing", "See attached.", "See attached."),
        [f"json://127.0.0.1:{port}/hook"],
        attach=[brief],
    )

    assert delivery.sent and not delivery.failed
    payload = json.loads(replay_server.requests_to("/hook")[0].body)
    assert [item["filename"] for item in payload["attachments"]] == ["briefing.csv"]


# -- where the URLs come from -------------------------------------------------------------------


def test_notify_urls_environment_wins_over_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(
        ["json://from-secrets.example/hook", "json://from-secrets.example/hook"]
    )
    assert notify_urls(settings) == ["json://from-secrets.example/hook"]
    monkeypatch.setenv(
        NOTIFY_ENV,
        "mailto://u:p@mail.example.com?to=a@example.com,b@example.com, "
        "json://env.example/hook\n slack://T/B/C,json://other.example",
    )
    assert notify_urls(settings) == [
        "mailto://u:p@mail.example.com?to=a@example.com,b@example.com",
        "json://env.example/hook",
        "slack://T/B/C",
        "json://other.example",
    ]
    monkeypatch.setenv(NOTIFY_ENV, "  ")
    assert notify_urls(settings) == ["json://from-secrets.example/hook"]
    assert notify_urls(make_settings()) == []
    assert notify(make_alert(), make_settings()) == channels.Delivery()


def test_notify_urls_rejects_a_wrong_type_without_echoing_it() -> None:
    settings = Settings(
        brand=BrandConfig("Northwind Bank"),
        secrets={"alerts": {"notify": {"mail": f"mailto://u:{PASSWORD}@mail.example.com"}}},
    )
    with pytest.raises(ConfigError, match=r"\[alerts\] notify must be a list") as raised:
        notify_urls(settings)
    assert PASSWORD not in str(raised.value)


# -- naming and formatting (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (
            f"mailtos://user:{PASSWORD}@smtp.example.com:587?to=pr@example.com",
            "mailtos://smtp.example.com:587",
        ),
        (f"mailto://me%40example.com:{PASSWORD}@Gmail.com", "mailto://gmail.com"),
        (f"https://hooks.slack.com/services/T000/B000/{SLACK_TOKEN}", "https://hooks.slack.com"),
        (f"slack://T1JJ3T3L2/A1BRTD4JD/{SLACK_TOKEN}/#general", "slack://***"),
        (f"slack://botname@xoxb-1234-{SLACK_TOKEN}/#general", "slack://***"),
        (f"tgram://123456789:{SLACK_TOKEN}/-100200300", "tgram://***"),
        (
            "workflow://prod-161.westeurope.logic.azure.com:443/WORKFLOWID/SIGNATURE/",
            "workflow://prod-161.westeurope.logic.azure.com:443",
        ),
        (f"json://user:{PASSWORD}@[::1]:8080/hook", "json://[::1]:8080"),
        (f"jsons://{PASSWORD}@localhost/x?token={SLACK_TOKEN}", "jsons://localhost"),
        (PASSWORD, "(unrecognised URL)"),
    ],
)
def test_channel_names_keep_scheme_and_host_only(url: str, name: str) -> None:
    assert channel_name(url) == name


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "title_part", "sentence"),
    [
        (
            "negative_share",
            0.4615,
            0.4,
            "46% negative (threshold 40%)",
            "46% negative, against a threshold of 40%.",
        ),
        (
            "negative_share",
            0.404,
            0.4,
            "40.4% negative (threshold 40.0%)",
            "40.4% negative, against a threshold of 40.0%.",
        ),
        (
            "volume_spike",
            4.26,
            4.0,
            "volume z-score 4.3 (threshold 4.0)",
            "Volume z-score 4.3, against a threshold of 4.0.",
        ),
        (
            "viral_negative",
            2345.0,
            1000.0,
            "2,345 engagement on a negative post (threshold 1,000)",
            "2,345 engagement on a negative post, against a threshold of 1,000.",
        ),
        (
            "sentiment_drop",
            31.4,
            30.0,
            "net sentiment down 31 points (threshold 30 points)",
            "Net sentiment down 31 points, against a threshold of 30 points.",
        ),
        (
            "something_new",
            2.5,
            2.0,
            "value 2.5 (threshold 2)",
            "Value 2.5, against a threshold of 2.",
        ),
        ("", float("nan"), 1.0, "value nan (threshold 1)", "Value nan, against a threshold of 1."),
    ],
)
def test_value_and_threshold_are_worded_by_kind(
    kind: str, value: float, threshold: float, title_part: str, sentence: str
) -> None:
    alert = make_alert(kind=kind, value=value, threshold=threshold, severity="medium")
    message = format_alert(alert, dashboard_url=DASHBOARD)
    assert message.title == f"[MEDIUM] Northwind Bank: Negative surge — {title_part}"
    assert sentence in message.body_text and sentence in message.body_markdown


def test_format_alert_snippets_are_one_short_line_and_links_only_http() -> None:
    long_text = "word " * 200
    alert = make_alert(
        [
            evidence("line one\nline two\r\n\tline three\x00", LINKS[0]),
            evidence(long_text, "ftp://files.example.com/x"),
            evidence("Customer data: 12,000 records exposed", " javascript:alert(1)"),
        ]
    )
    message = format_alert(alert, dashboard_url="javascript:alert(5)")
    lines = message.body_text.splitlines()
    quoted = [line.strip() for line in lines if line.startswith('   "')]
    assert quoted[0] == '"line one line two line three"'
    assert len(quoted[1]) <= channels.SNIPPET_CHARS + 2 and quoted[1].endswith('…"')
    assert quoted[2] == '"Customer data: 12,000 records exposed"'  # prose is left alone
    assert lines.count("   (no link)") == 2
    assert "javascript" not in message.body_text and "javascript" not in message.body_markdown
    assert "no valid [dashboard] url configured" in message.body_text


def test_markdown_escapes_everything_that_could_make_markup() -> None:
    alert = make_alert([evidence("*bold* _it_ `code` [x] (y) <b> !# | ~ \\", LINKS[0])])
    markdown = format_alert(alert, dashboard_url=DASHBOARD).body_markdown
    assert r"\*bold\* \_it\_ \`code\` \[x\] \(y\) \<b\> \!\# \| \~ \\" in markdown
    assert f"[{LINKS[0]}]({LINKS[0]})" in markdown
    assert f"Open the dashboard: [{DASHBOARD}]({DASHBOARD})" in markdown
    # Our own sentences keep their parentheses (Teams shows backslashes) but cannot link.
    assert "are negative (threshold 40%)." in markdown
    own = format_alert(make_alert(rule="Surge [x](https://e.example)"), dashboard_url=DASHBOARD)
    assert r"**Surge \[x\](https://e.example)**" in own.body_markdown
