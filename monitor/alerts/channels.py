"""Notification channels: alerts (and later briefings) sent through Apprise URLs.

Where the URLs come from, highest first: `$MONITOR_NOTIFY_URLS` (whitespace- or
comma-separated), then `[alerts] notify = [...]` in `.streamlit/secrets.toml`. Any URL Apprise
understands works: `mailto://`/`mailtos://` e-mail, `json://` webhooks, Slack, Microsoft Teams
(Power Automate `workflow://` or its https URL) and the rest of https://appriseit.com/services/.

`format_alert` turns an alert into a `Message` (pure); `send` delivers a message to each URL
on its own, so one broken channel never hides the others, and reports every channel by a
redacted name (scheme and host, never credentials or tokens) that is safe to show and store.
Mention text is untrusted: it is stripped of control characters, its links are defanged, and
in Markdown every character that could make a link or markup is escaped.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import apprise

from monitor.config import SECRETS_FILE, ConfigError, Settings
from monitor.models import Alert, safe_http_url, utc

log = logging.getLogger(__name__)

NOTIFY_ENV = "MONITOR_NOTIFY_URLS"
TOP_MENTIONS = 3
SNIPPET_CHARS = 200
NOT_APPRISE = "not an Apprise URL"
SERVICES_HELP = "https://appriseit.com/services/"

# Query options that configure a channel rather than authenticate it: kept out of redaction
# so Apprise's own log lines stay readable. Every other query value counts as a secret.
PLAIN_QUERY_KEYS = frozenset(
    {"mode", "secure", "smtp", "from", "to", "cc", "bcc", "name", "reply", "format", "method"}
    | {"overflow", "verify", "retry", "wait", "cto", "rto", "image", "footer", "timestamp"}
    | {"blocks", "api-version", "sp", "sv", "wrap", "pa", "store", "emojis", "tz"}
)
# Shorter fragments of a URL are not credentials, and redacting them would garble logs.
MIN_SECRET_CHARS = 3


@dataclass(frozen=True, slots=True)
class Message:
    """What to send: a one-line title, a plain-text body and the same body in Markdown."""

    title: str
    body_text: str
    body_markdown: str


@dataclass(slots=True)
class Delivery:
    """Where a message went: channels by redacted name, and each failure with its reason."""

    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Return each failure as one line, "channel: reason"."""
        return [f"{name}: {reason}" for name, reason in self.failed]


# -- where the URLs live ------------------------------------------------------------------------

# Commas separate URLs only where a new URL starts: `to=a@x.org,b@x.org` stays one URL.
_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(value: str) -> list[str]:
    """Return the URLs in a whitespace- or comma-separated string."""
    parts = (part.strip().strip(",") for part in _URL_SEPARATOR.split(value))
    return [part for part in parts if part]


def notify_urls(settings: Settings) -> list[str]:
    """Return the Apprise URLs to notify: `$MONITOR_NOTIFY_URLS`, else secrets [alerts] notify."""
    from_env = os.environ.get(NOTIFY_ENV, "").strip()
    if from_env:
        return _unique(split_urls(from_env))
    table = settings.secrets.get("alerts")
    raw = table.get("notify") if isinstance(table, Mapping) else None
    if raw is None:
        return []
    if isinstance(raw, str):
        return _unique(split_urls(raw))
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return _unique([url.strip() for url in raw if url.strip()])
    # No value in the message: it may hold a credential.
    raise ConfigError(
        f"{SECRETS_FILE}: [alerts] notify must be a list of Apprise URLs, e.g. notify = "
        '["mailtos://user:app-password@smtp.example.com?to=pr@example.com"].'
    )


def _unique(urls: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(urls))


# -- naming a channel without its secrets -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str
    user: str
    password: str
    host: str
    port: str
    path: str
    query: str


def _split(url: str) -> _Parts:
    """Split an Apprise-style URL leniently: tokens often break RFC 3986, so no urlsplit."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return _Parts("", "", "", "", "", "", "")
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    user, _, password = userinfo.partition(":")
    host, _, port = hostport.partition(":")
    if host.startswith("[") and "]" in hostport:  # [::1]:8080
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    return _Parts(scheme.lower(), user, password, host, port, slash + path, query)


def _is_network_host(host: str) -> bool:
    """Return True if `host` names a machine (IP, dotted name, localhost), not a token."""
    if host.lower() == "localhost":
        return True
    try:
        ip_address(host)
    except ValueError:
        labels = host.split(".")
        return len(labels) > 1 and all(re.fullmatch(r"[A-Za-z0-9-]+", label) for label in labels)
    return True


def channel_name(url: str) -> str:
    """Return a name for the channel of `url` that is safe to show: scheme and host only.

    Credentials, paths and queries are dropped; a "host" that is really a token (as in
    slack://TOKEN/... or tgram://BOT-TOKEN/...) is masked.
    """
    parts = _split(url)
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme):
        return "(unrecognised URL)"
    if not _is_network_host(parts.host):
        return f"{parts.scheme}://***"
    host = f"[{parts.host}]" if ":" in parts.host else parts.host.lower()
    port = f":{parts.port}" if parts.port.isdigit() else ""
    return f"{parts.scheme}://{host}{port}"


def url_secrets(url: str) -> set[str]:
    """Return the pieces of `url` that may be credentials, as written and percent-decoded."""
    parts = _split(url)
    pieces = {url.strip(), url.strip().partition("://")[2]}
    pieces |= {parts.user, parts.password, *parts.path.split("/")}
    if not _is_network_host(parts.host):
        pieces |= {parts.host, parts.port}
    pieces |= {
        value for key, value in parse_qsl(parts.query) if key.lower() not in PLAIN_QUERY_KEYS
    }
    found: set[str] = set()
    for piece in pieces:
        for form in (piece, unquote(piece), quote(unquote(piece), safe="")):
            if len(form) >= MIN_SECRET_CHARS:
                found.add(form)
    if parts.password:
        # The Authorization header of HTTP Basic, as an error page echoing the request shows it.
        basic = f"{unquote(parts.user)}:{unquote(parts.password)}".encode()
        found.add(base64.b64encode(basic).decode())
    return found


def redact(text: str, secrets: set[str]) -> str:
    """Return `text` with every secret in it replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _RedactingFilter(logging.Filter):
    """Scrub URL secrets from log records of the libraries that see the URLs."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        # Apprise's TRACE level (below DEBUG) dumps every URL it parses, passwords included.
        if record.levelno < logging.DEBUG:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop it rather than risk its arguments
            return False
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message, self.secrets)
        record.args = ()
        return True


# Loggers that see URLs in full: Apprise itself, and the HTTP stack under it (urllib3 logs
# "POST /services/T000/B000/XXXX" at DEBUG).
_URL_LOGGERS = ("apprise", "urllib3", "requests")


@contextmanager
def _scrubbed_logs(secrets: set[str]) -> Iterator[None]:
    """Attach a redacting filter to every logger that may log the URLs, for the duration."""
    guard = _RedactingFilter(secrets)
    names = [
        name
        for name, item in list(logging.root.manager.loggerDict.items())
        if isinstance(item, logging.Logger) and name.split(".")[0] in _URL_LOGGERS
    ]
    loggers = [logging.getLogger(name) for name in {*_URL_LOGGERS, *names}]
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(guard)


# -- sending ------------------------------------------------------------------------------------

_ASSET = apprise.AppriseAsset(app_id="Reputation monitor", app_desc="Reputation monitor alerts")


def send(
    message: Message,
    urls: Sequence[str],
    *,
    attach: Sequence[str | Path] | None = None,
) -> Delivery:
    """Send `message` to each URL on its own; return where it went and why it failed where not.

    Never raises for a channel: a malformed URL or a refused connection is a failure with a
    reason. Each channel gets the body in the format it renders (plain text or Markdown).
    """
    delivery = Delivery()
    secrets: set[str] = set().union(*(url_secrets(url) for url in urls)) if urls else set()
    with _scrubbed_logs(secrets):
        for url in urls:
            name = channel_name(url)
            try:
                reason = _deliver(message, url, attach)
            except Exception as exc:  # a plugin bug must not stop the other channels
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                delivery.sent.append(name)
                log.info("Sent %r to %s", message.title, name)
            else:
                reason = redact(reason, secrets)
                delivery.failed.append((name, reason))
                log.warning("Could not send %r to %s: %s", message.title, name, reason)
    return delivery


def _deliver(message: Message, url: str, attach: Sequence[str | Path] | None) -> str | None:
    """Send to one URL; return None on success, else the reason it failed."""
    try:
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET, suppress_exceptions=False)
    except Exception as exc:  # the plugin refused its parameters and says which
        return f"{NOT_APPRISE}: {exc}"
    if plugin is None:
        return _not_apprise_reason(url)
    channel = apprise.Apprise(asset=_ASSET)
    channel.add(plugin)
    # Plain-text channels (JSON webhooks, Discord, SMS...) get plain text; HTML and Markdown
    # channels get Markdown, which Apprise turns into HTML mail or Slack/Teams markup.
    as_text = plugin.resolve_format(None) == apprise.NotifyFormat.TEXT
    result = channel.notify(
        body=message.body_text if as_text else message.body_markdown,
        title=message.title,
        body_format=apprise.NotifyFormat.TEXT if as_text else apprise.NotifyFormat.MARKDOWN,
        attach=[str(path) for path in attach] if attach else None,
    )
    if result:
        return None
    warnings = [
        entry.message
        for service in result.results
        for entry in service.logs()
        if entry.level in ("WARNING", "ERROR", "CRITICAL")
    ]
    status = getattr(result.status, "name", str(result.status)).lower()
    return " ".join(warnings) or f"delivery failed ({status})"


def _not_apprise_reason(url: str) -> str:
    scheme = _split(url).scheme
    if not scheme:
        return f"{NOT_APPRISE} (no scheme://; see {SERVICES_HELP})"
    if scheme == "msteams":
        return (
            f"{NOT_APPRISE}: Apprise dropped msteams:// when Microsoft retired Office 365 "
            "connectors; create a Teams workflow and use its URL (workflow://... or the "
            "https://...logic.azure.com/... address)"
        )
    return f"{NOT_APPRISE} (unknown scheme {scheme}:// or missing parts; see {SERVICES_HELP})"


def notify(alert: Alert, settings: Settings) -> Delivery:
    """Send `alert` to every configured channel; return where it went."""
    urls = notify_urls(settings)
    if not urls:
        log.info("No notification channels configured (%s or [alerts] notify)", NOTIFY_ENV)
        return Delivery()
    return send(format_alert(alert, dashboard_url=settings.dashboard_url), urls)


# -- the message --------------------------------------------------------------------------------


# Each formatter takes a number and how many more decimals to show than usual (0 or 1).
def _percent(value: float, extra: int) -> str:
    return f"{value:.{extra}%}"


def _one_decimal(value: float, extra: int) -> str:
    return f"{value:.{1 + extra}f}"


def _count(value: float, extra: int) -> str:
    return f"{value:,.{extra}f}"


def _points(value: float, extra: int) -> str:
    return f"{value:.{extra}f} points"


def _plain(value: float, extra: int) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


# kind -> (how to say the value, how to format a number of that kind)
_MEASURES: dict[str, tuple[str, Callable[[float, int], str]]] = {
    "negative_share": ("{} negative", _percent),
    "volume_spike": ("volume z-score {}", _one_decimal),
    "viral_negative": ("{} engagement on a negative post", _count),
    "sentiment_drop": ("net sentiment down {}", _points),
}


def _measure(alert: Alert) -> tuple[str, str]:
    """Return the alert's value in words and its threshold, both formatted by its kind."""
    phrase, number = _MEASURES.get(alert.kind, ("value {}", _plain))
    if not (math.isfinite(alert.value) and math.isfinite(alert.threshold)):
        phrase, number = "value {}", _plain
    value, threshold = number(alert.value, 0), number(alert.threshold, 0)
    if value == threshold and alert.value != alert.threshold:
        # 40.4% against 40%: rounding must not make the value look equal to its threshold.
        value, threshold = number(alert.value, 1), number(alert.threshold, 1)
    return phrase.format(value), threshold


def _when(value: object) -> str:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return "time unknown"
    return utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def clean_text(text: object) -> str:
    """Return `text` on one line: control and invisible format characters gone, spaces folded."""
    chars = (
        " " if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d" else ch
        for ch in str(text or "")
    )
    return " ".join("".join(chars).split())


# "https://", "javascript:", "data:text/html;..." (but not "customer data: 12,000 records").
_LINK_SCHEME = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)|\b(javascript|vbscript)\s*:|\b(data):(?=[\w.+-]+/[\w.+-]+[;,])"
)


def defang(text: str) -> str:
    """Return `text` with its URLs broken ("https[:]//...") so no client turns them into links."""
    text = _LINK_SCHEME.sub(lambda found: f"{found.group(found.lastindex or 0)}[:]", text)
    # "[label](url)" would be a link wherever Markdown is rendered, even in "plain" text.
    return text.replace("](", "] (")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>!#|~])")
# Without "[" no link can form, so our own sentences keep their parentheses: Teams cards
# show every backslash.
_MARKUP_START = re.compile(r"([\\`*_\[\]<>])")


def escape_markdown(text: str) -> str:
    """Return `text` with every character that could start a link or markup backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _escape_own(text: str) -> str:
    """Return text the monitor wrote (rule, brand, rule message) with markup starts escaped."""
    return _MARKUP_START.sub(r"\\\1", text)


def snippet(mention: Mapping[str, Any], limit: int = SNIPPET_CHARS) -> str:
    """Return one defanged line of a mention's title and text, at most `limit` characters."""
    title, text = clean_text(mention.get("title")), clean_text(mention.get("text"))
    line = defang(f"{title} — {text}" if title and text and not text.startswith(title) else text)
    line = line or defang(title)
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut) + "…"


_LINK_TARGET_ESCAPES = str.maketrans({"\\": "%5C", "(": "%28", ")": "%29", "[": "%5B", "]": "%5D"})


def _markdown_link(url: str) -> str:
    """Return a Markdown link to a safe http(s) URL, labelled with the URL itself.

    The label is the address so it survives where Markdown does not: the plain-text part
    of an HTML e-mail, a notification preview.
    """
    target = url.translate(_LINK_TARGET_ESCAPES)
    # Only what could end the label or start markup there: a trusted URL needs no more, and
    # Slack would show every further backslash.
    label = re.sub(r"([\\`*\[\]])", r"\\\1", url)
    return f"[{label}]({target})"


def format_alert(alert: Alert, *, dashboard_url: str) -> Message:
    """Return the message a PR lead acts on: what fired, value against threshold, top mentions."""
    rule, brand = clean_text(alert.rule), clean_text(alert.brand)
    severity = clean_text(alert.severity).upper() or "ALERT"
    measure, threshold = _measure(alert)
    title = f"[{severity}] {brand}: {rule} — {measure} (threshold {threshold})"
    fired = alert.fired_at.strftime("%Y-%m-%d %H:%M UTC")
    value_line = f"{measure[:1].upper()}{measure[1:]}, against a threshold of {threshold}."
    detail = clean_text(alert.message)
    dashboard = safe_http_url(dashboard_url)
    md, own = escape_markdown, _escape_own

    text = [f"{rule} fired for {brand} (severity {severity}) at {fired}.", "", value_line]
    markdown = [
        f"**{own(rule)}** fired for **{own(brand)}** (severity {own(severity)}) at {fired}.",
        "",
        f"**{own(value_line)}**",
    ]
    if detail:
        text.append(detail)
        markdown.append(own(detail))

    mentions = [item for item in alert.evidence if isinstance(item, Mapping)][:TOP_MENTIONS]
    if mentions:
        text += ["", f"Top {len(mentions)} mention(s):"]
        markdown += ["", f"**Top {len(mentions)} mention(s)**", ""]
    for number, mention in enumerate(mentions, start=1):
        facts = [clean_text(mention.get("source")) or "unknown source"]
        facts.append(_when(mention.get("published_at")))
        engagement = mention.get("engagement")
        if isinstance(engagement, int | float) and not isinstance(engagement, bool):
            facts.append(f"{engagement:,.0f} engagement")
        label = clean_text(mention.get("label"))
        if label:
            facts.append(label)
        quote_line = snippet(mention)
        link = safe_http_url(mention.get("url"))
        text.append(f"{number}. {' · '.join(facts)}")
        markdown.append(f"{number}. {md(' · '.join(facts))}  ")
        if quote_line:
            text.append(f'   "{quote_line}"')
            markdown.append(f'   "{md(quote_line)}"  ')
        text.append(f"   {link}" if link else "   (no link)")
        markdown.append(f"   {_markdown_link(link)}" if link else "   (no link)")

    text.append("")
    markdown.append("")
    if dashboard:
        text.append(f"Open the dashboard: {dashboard}")
        markdown.append(f"Open the dashboard: {_markdown_link(dashboard)}")
    else:
        text.append("Open the dashboard (no valid [dashboard] url configured).")
        markdown.append(own("Open the dashboard (no valid [dashboard] url configured)."))
    return Message(title=title, body_text="\n".join(text), body_markdown="\n".join(markdown))
