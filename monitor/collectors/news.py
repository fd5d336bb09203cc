"""News articles from RSS and Atom feeds, read with feedparser.

Inputs, each one feed (options under `[sources.news]`):

- Google News search RSS for the brand query (`google_news = true`), built from the brand's
  terms with its exclusions negated (`monitor.matching.search_query`) plus `hl`/`gl`/`ceid`
  from `language` and `country`. Off by default: the feed states that it is made available
  solely for rendering Google News results in a personal feed reader for personal,
  non-commercial use, so whoever runs the monitor decides whether their use fits.
- Bing News search RSS for the same query (`bing_news = true`), off by default.
- Any RSS/Atom feeds listed in `feeds`.

Every feed is fetched with the shared HttpClient (timeouts, size cap, redirects, User-Agent,
retries) as a conditional GET with the ETag / Last-Modified its last successful fetch left in
the cursor; a 304 yields nothing for that feed. Feeds are fetched concurrently, at most
`max_parallel` (default 32) at once, so a run takes about as long as the slowest feed rather
than the sum of all of them. Only the requests run on worker threads: each feed is parsed on
the calling thread as it arrives, and its mentions, validators and problems are applied in
feed order, so the output does not depend on which feed answered first. The bytes are
parsed by feedparser (wrapped in BytesIO: a bare string would be taken for a file name or URL)
with the response's Content-Type (for the charset) and Content-Location (for relative links).

One feed failing (fetch error, HTML page, empty body, not a feed, XML too broken to read) is
reported with `ctx.warn("<url>: <reason>")` and its validators are kept as they were; the
other feeds carry on. Only when every feed fails is the source failed (CollectorError).

Each entry becomes a Mention:
- publisher: the entry's `<source>` (Google), `<News:Source>` (Bing), dc:publisher, else the
  feed's title (for a configured feed); Google's " - Outlet" title suffix moves into it.
- url and canonical_url: the original article link where the feed gives it (Bing's
  `apiclick.aspx?url=`, a Google redirect `url=`/`q=`, feedburner:origLink, or the article URL
  inside an old-style Google News article id), with tracking parameters and fragment removed;
  only http(s) links survive (`safe_http_url`).
- title, text, author: plain text (no tags or attributes, entities decoded, whitespace
  collapsed), taken after feedparser's sanitiser.
- published_at: the entry's published/updated date in UTC; a missing or unreadable date is
  replaced by `ctx.now` and flagged `extra["date_missing"] = True` (the unreadable text in
  `extra["date_unparsed"]`); a date more than an hour ahead of `ctx.now` is replaced by
  `ctx.now` and kept in `extra["date_in_future"]`.
- external_id: "<feed key>:" + the entry id/guid, else the canonical link, else a hash of
  title and date. The feed key ("google", "bing", or a hash of the feed URL) keeps ids unique
  per feed, so the same article in two feeds is stored once plus a sighting (same canonical
  URL) instead of one feed's copy overwriting the other's.
- extra: `publisher`, `feed` (the feed URL), `publisher_url` when known, and the date flags.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import xml.sax
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, quote, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe, UndeclaredNamespace

from monitor.collectors.base import CollectContext, CollectorError, register
from monitor.collectors.http import FetchError, Response, fetch_all
from monitor.config import ConfigError
from monitor.matching import search_query
from monitor.models import Mention, normalise_text, safe_http_url
from monitor.text import html_to_text

GOOGLE_NEWS_URL = "https://news.google.com/rss/search"
BING_NEWS_URL = "https://www.bing.com/news/search"
DEFAULT_MAX_ITEMS = 100
DEFAULT_MAX_PARALLEL = 32  # 50 feeds of typical latency take about as long as the slowest
MAX_PARALLEL = 64
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_TITLE = 1_000
MAX_TEXT = 10_000
MAX_NAME = 200
MAX_EXTERNAL_ID = 240  # the column holds 256
OPTION_KEYS = frozenset(
    {
        "enabled",
        "google_news",
        "bing_news",
        "feeds",
        "language",
        "country",
        "google_news_url",
        "bing_news_url",
        "max_items_per_feed",
        "max_parallel",
    }
)
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)

# Query parameters that say how a reader arrived, not which article it is (compared in
# lower case). Anything starting with a prefix below is dropped too.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "ocid",
        "cmpid",
        "cmp",
        "icid",
        "ncid",
        "xtor",
        "smid",
        "smtyp",
        "s_cid",
        "s_kwcid",
        "sr_share",
        "ref_src",
        "ref_url",
        "rss_source",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "soc_src",
        "soc_trk",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "spm",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "__twitter_impression",
        "wt.mc_id",
        "wt_mc_id",
    }
)
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_", "stm_")

FeedKind = Literal["google", "bing", "feed"]


class FeedProblem(Exception):
    """One feed could not be read; the message is the reason, without the URL."""


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed to read."""

    url: str
    kind: FeedKind
    key: str  # external-id prefix, unique per feed


@register
class NewsCollector:
    """News articles from Google News / Bing News search RSS and any RSS/Atom feeds."""

    name: ClassVar[str] = "news"
    description: ClassVar[str] = "News from RSS/Atom feeds (Google News, Bing News, your feeds)"
    # Search results and general feeds carry other stories too: the pipeline matches the brand.
    always_about_brand: ClassVar[bool] = False

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield the entries of every feed that changed since last time; update validators."""
        feeds = configured_feeds(ctx)
        limit = ctx.option_int("max_items_per_feed", DEFAULT_MAX_ITEMS, minimum=1)
        parallel = ctx.option_int(
            "max_parallel",
            DEFAULT_MAX_PARALLEL,
            minimum=1,
            maximum=MAX_PARALLEL,
            why="more only queue for connections and crowd the feeds' servers",
        )
        saved = ctx.cursor.get("feeds")
        saved = saved if isinstance(saved, dict) else {}
        # Validators of feeds no longer configured are dropped; a failing feed keeps its old ones.
        validators: dict[str, dict[str, str]] = {
            f.url: saved[f.url] for f in feeds if isinstance(saved.get(f.url), dict)
        }
        ctx.cursor["feeds"] = validators
        failures: list[str] = []
        # What each request sends, fixed before any worker starts: workers never read the
        # validators this loop updates.
        asked = {
            url: (_text_or_none(v.get("etag")), _text_or_none(v.get("last_modified")))
            for url, v in validators.items()
        }

        def fetch(feed: Feed) -> Response:
            etag, last_modified = asked.get(feed.url, (None, None))
            return ctx.http.get(
                feed.url, headers={"Accept": ACCEPT}, etag=etag, last_modified=last_modified
            )

        if ctx.progress:
            ctx.progress(f"news: reading {len(feeds)} feeds, up to {parallel} at a time")
        # Each feed is parsed on this thread as soon as it arrives, while slower ones are still
        # downloading; what it gave is then applied in feed order, so that neither the output
        # nor the problems depend on which server answered first.
        read: dict[int, FeedRead] = {}
        for outcome in fetch_all(feeds, fetch, max_parallel=parallel, in_order=False):
            if ctx.progress:
                ctx.progress(f"news: read {outcome.item.url}")
            read[outcome.index] = read_feed(outcome.item, outcome.get, limit, ctx.now)
        for index, feed in enumerate(feeds):
            result = read[index]
            if result.failure:
                failures.append(f"{feed.url}: {result.failure}")
                continue
            if result.warning:
                ctx.warn(f"{feed.url}: {result.warning}")
            elif result.validators is not None:  # a half-read feed is fetched in full next time
                if result.validators:
                    validators[feed.url] = dict(result.validators)
                else:
                    validators.pop(feed.url, None)
            yield from result.mentions
        if failures and len(failures) == len(feeds):
            raise CollectorError("every news feed failed:\n" + "\n".join(failures))
        for reason in failures:
            ctx.warn(reason)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class FeedRead:
    """What one feed gave this run."""

    mentions: Sequence[Mention] = ()
    failure: str = ""  # why the feed could not be read; its old validators stay
    warning: str = ""  # a problem that still left entries (validators stay, to re-read it)
    validators: Mapping[str, str] | None = None  # new ETag / Last-Modified; None: keep the old


def read_feed(feed: Feed, response: Callable[[], Response], limit: int, now: datetime) -> FeedRead:
    """Parse the `response()` of `feed` into mentions, or the reason it failed (no raise)."""
    try:
        fetched = response()
        if fetched.not_modified:
            return FeedRead()
        parsed = parse_feed(fetched)
    except FetchError as error:
        return FeedRead(failure=error.reason)
    except FeedProblem as problem:
        return FeedRead(failure=str(problem))
    mentions = [
        m
        for entry in parsed.entries[:limit]
        if (m := entry_to_mention(entry, parsed.feed, feed, now)) is not None
    ]
    if parsed.warning:
        return FeedRead(mentions, warning=parsed.warning)
    fresh = {"etag": fetched.etag, "last_modified": fetched.last_modified}
    return FeedRead(mentions, validators={k: v for k, v in fresh.items() if v})


# -- configuration ------------------------------------------------------------------------------


def configured_feeds(ctx: CollectContext) -> list[Feed]:
    """Return the feeds `[sources.news]` asks for, in order; raise ConfigError naming the key."""
    ctx.check_keys(OPTION_KEYS)
    query = search_query(ctx.brand)
    feeds: list[Feed] = []
    if ctx.option_bool("google_news", False):
        language = ctx.option_str("language", "en-US").strip()
        country = ctx.option_str("country", "US").strip()
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", language):
            raise ConfigError(f'{ctx.where("language")} must be a language tag like "en-US".')
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise ConfigError(f'{ctx.where("country")} must be a two-letter code like "US".')
        base = ctx.option_url("google_news_url", GOOGLE_NEWS_URL)
        params = {
            "q": query,
            "hl": language,
            "gl": country.upper(),
            "ceid": f"{country.upper()}:{language.split('-')[0].lower()}",
        }
        feeds.append(Feed(_with_query(base, params), "google", "google"))
    if ctx.option_bool("bing_news", False):
        base = ctx.option_url("bing_news_url", BING_NEWS_URL)
        feeds.append(Feed(_with_query(base, {"q": query, "format": "rss"}), "bing", "bing"))
    for url in ctx.option_strings("feeds"):
        if not safe_http_url(url):
            raise ConfigError(f"{ctx.where('feeds')}: {url!r} is not an http(s) URL.")
        if all(f.url != url for f in feeds):
            key = "feed-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
            feeds.append(Feed(url, "feed", key))
    if not feeds:
        raise ConfigError(
            f"{ctx.config_path or 'monitor.toml'}: [sources.{ctx.source}] reads no feed. Set "
            'feeds = ["https://..."], bing_news = true, or google_news = true (Google News RSS '
            "is offered for personal, non-commercial use only: check that yours fits)."
        )
    return feeds


def _with_query(base: str, params: Mapping[str, str]) -> str:
    encoded = urlencode(params, quote_via=quote, safe=":")
    return f"{base}{'&' if '?' in base else '?'}{encoded}"


# -- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What feedparser read from one response."""

    feed: Mapping[str, Any]
    entries: Sequence[Mapping[str, Any]]
    warning: str = ""  # a problem worth reporting that still left entries to read


def parse_feed(response: Response) -> ParsedFeed:
    """Parse a fetched feed; raise FeedProblem when it is not a feed that can be read."""
    body = response.body
    if not body.strip():
        raise FeedProblem("empty response, not a feed")
    content_type = response.headers.get("content-type", "")
    # The base for relative links: the Content-Location when it is a plain http(s) URL.
    try:
        location = urljoin(response.url, response.headers.get("content-location", "").strip())
    except ValueError:
        location = ""
    headers = {"content-location": safe_http_url(location) or response.url}
    if content_type:
        headers["content-type"] = content_type
    # BytesIO, never the bytes themselves: feedparser opens a string that names a file or URL.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    entries = [e for e in parsed.get("entries") or [] if isinstance(e, Mapping)]
    version = parsed.get("version") or ""
    failure = parsed.get("bozo_exception")
    broken = bool(parsed.get("bozo")) and not _harmless(failure)
    if not entries:
        if not version and _looks_like_html(body, content_type):
            raise FeedProblem("an HTML page, not a feed")
        if broken:
            what = "malformed XML" if version else "not an RSS or Atom feed"
            raise FeedProblem(f"{what} ({_describe(failure)})")
        if not version:
            raise FeedProblem("not an RSS or Atom feed")
    warning = ""
    if entries and broken:
        warning = (
            f"malformed XML ({_describe(failure)}); kept the {len(entries)} "
            f"item{'s' if len(entries) != 1 else ''} that could be read"
        )
    feed = parsed.get("feed")
    return ParsedFeed(feed if isinstance(feed, Mapping) else {}, entries, warning)


def _harmless(failure: object) -> bool:
    """Return True for bozo reasons that do not mean the document is broken."""
    if isinstance(failure, ThingsNobodyCaresAboutButMe | UndeclaredNamespace):
        return True  # charset declared one way and served another, text/plain, ...
    # An undeclared prefix (News:Source) or an HTML entity (&nbsp;) the loose parser reads fine.
    return isinstance(failure, xml.sax.SAXParseException) and any(
        reason in str(failure) for reason in ("unbound prefix", "undefined entity")
    )


def _describe(failure: object) -> str:
    if isinstance(failure, xml.sax.SAXParseException):
        return f"line {failure.getLineNumber()}: {failure.getMessage()}"
    if failure is None:
        return "unreadable"
    return html_to_text(f"{type(failure).__name__}: {failure}", limit=200)


_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)


def _looks_like_html(body: bytes, content_type: str) -> bool:
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    return bool(_HTML_START.match(body.lstrip(b"\xef\xbb\xbf")[:4096]))


# -- one entry ----------------------------------------------------------------------------------


def entry_to_mention(
    entry: Mapping[str, Any], channel: Mapping[str, Any], feed: Feed, now: datetime
) -> Mention | None:
    """Return the Mention for one feed entry, or None when it has neither title nor text."""
    google = feed.kind == "google" or _host(feed.url) == "news.google.com"
    aggregator = google or feed.kind == "bing"
    title = html_to_text(entry.get("title"), limit=MAX_TITLE)
    source = entry.get("source")
    source = source if isinstance(source, Mapping) else {}
    publisher = (
        html_to_text(source.get("title"), limit=MAX_NAME)
        or html_to_text(entry.get("news_source"), limit=MAX_NAME)
        or html_to_text(entry.get("publisher"), limit=MAX_NAME)
    )
    if publisher and title.endswith(f" - {publisher}"):
        title = title[: -len(publisher) - 3].rstrip()
    elif google and not publisher and " - " in title:
        title, publisher = (part.strip() for part in title.rsplit(" - ", 1))

    link = _first_str(entry.get("feedburner_origlink"), entry.get("link"))
    canonical = canonical_link(link)
    if not publisher:
        if aggregator:
            host = _host(canonical)
            publisher = host.removeprefix("www.") if host and not _is_aggregator(host) else ""
        else:
            publisher = html_to_text(channel.get("title"), limit=MAX_NAME)

    text = html_to_text(_summary(entry), limit=MAX_TEXT)
    if google and normalise_text(text) in {
        normalise_text(title),
        normalise_text(f"{title} {publisher}"),
    }:
        text = ""  # Google's description only repeats the headline and the outlet
    if not title and not text:
        return None

    author_detail = entry.get("author_detail")
    author_name = author_detail.get("name") if isinstance(author_detail, Mapping) else None
    author = html_to_text(author_name, limit=MAX_NAME) or html_to_text(
        entry.get("author"), limit=MAX_NAME
    )

    published, date_flags, raw_date = _entry_date(entry, now)
    extra: dict[str, Any] = {"publisher": publisher, "feed": feed.url, **date_flags}
    publisher_url = canonical_link(source.get("href") or source.get("url"))
    if publisher_url:
        extra["publisher_url"] = publisher_url

    return Mention(
        source="news",
        external_id=_external_id(feed, entry.get("id"), canonical, title, raw_date),
        text=text,
        published_at=published,
        title=title,
        url=canonical,
        canonical_url=canonical,
        author=author or publisher,
        extra=extra,
        collected_at=now,
    )


def _first_str(*values: object) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _summary(entry: Mapping[str, Any]) -> str:
    summary = entry.get("summary")
    if isinstance(summary, str) and summary.strip():
        return summary
    content = entry.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("value"), str):
                return str(part["value"])
    return ""


def _entry_date(entry: Mapping[str, Any], now: datetime) -> tuple[datetime, dict[str, Any], str]:
    """Return (published_at in UTC, flags for extra, the raw date text)."""
    # `key in entry` first: feedparser's entry.get("updated") falls back to "published" with
    # a DeprecationWarning.
    raw = _first_str(*(entry.get(k) for k in ("published", "updated", "created") if k in entry))
    when: datetime | None = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key) if key in entry else None
        if not parsed:
            continue
        try:  # feedparser's *_parsed are struct_time in UTC
            year, month, day, hour, minute, second = (int(v) for v in tuple(parsed)[:6])
            when = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            continue
        break
    if when is None:
        flags: dict[str, Any] = {"date_missing": True}
        if raw:
            flags["date_unparsed"] = html_to_text(raw, limit=100)
        return now, flags, raw
    if when > now + FUTURE_TOLERANCE:
        return now, {"date_in_future": when.isoformat()}, raw
    return when, {}, raw


_SAFE_ID = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+")
_UNSAFE_SCHEME = re.compile(r"^\s*(?:javascript|vbscript|data|file):", re.I)


def _external_id(feed: Feed, guid: object, canonical: str, title: str, raw_date: str) -> str:
    """Return "<feed key>:<entry id>", the id being the guid, the link, or a content hash."""
    guid_text = guid.strip() if isinstance(guid, str) else ""
    if guid_text and _SAFE_ID.fullmatch(guid_text) and not _UNSAFE_SCHEME.match(guid_text):
        ident = guid_text
    elif guid_text:
        ident = "sha256:" + _digest(guid_text)
    elif canonical:
        ident = canonical
    else:
        ident = "sha256:" + _digest(f"{title}\n{raw_date}")
    external_id = f"{feed.key}:{ident}"
    if len(external_id) > MAX_EXTERNAL_ID:
        external_id = f"{feed.key}:sha256:{_digest(ident)}"
    return external_id


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


# -- plain text ---------------------------------------------------------------------------------

# -- links --------------------------------------------------------------------------------------


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _is_aggregator(host: str) -> bool:
    return any(
        host == domain or host.endswith("." + domain) for domain in ("google.com", "bing.com")
    )


def canonical_link(link: object) -> str:
    """Return the article's own http(s) link: unwrapped, tracking and fragment removed."""
    url = safe_http_url(link)
    if not url:
        return ""
    url = original_link(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    scheme = parts.scheme.lower()
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    if host == "news.google.com" and "/articles/" in parts.path:
        query = ""  # hl, gl, ceid, oc: how the reader arrived, not which story
    else:
        query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return safe_http_url(urlunsplit((scheme, host, parts.path or "/", query, "")))


def _is_tracking(pair: str) -> bool:
    name = unquote_plus(pair.split("=", 1)[0]).strip().lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def original_link(url: str) -> str:
    """Return the article a redirect link points at (Bing, Google), else `url` itself."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    params = parse_qs(parts.query)
    target = ""
    if (host == "bing.com" or host.endswith(".bing.com")) and path.endswith("/apiclick.aspx"):
        target = _first_str(*params.get("url", []))
    elif _is_aggregator(host) and path in ("/url", "/news/url"):
        target = _first_str(*params.get("url", []), *params.get("q", []))
    elif host == "news.google.com":
        target = google_article_url(parts.path)
    target = safe_http_url(target)
    return target if target and target != url else url


_GOOGLE_ARTICLE = re.compile(r"/(?:rss/)?articles/([A-Za-z0-9_-]{8,})")


def google_article_url(path: str) -> str:
    """Return the article URL inside an old-style Google News article id, else "".

    Those ids are base64url protobufs: 0x08 0x13 0x22, a varint length, then the URL. Newer
    ids hold an opaque token instead (it starts "AU_yqL"); those give "" and the Google link
    stays the canonical one.
    """
    match = _GOOGLE_ARTICLE.fullmatch(path)
    if not match:
        return ""
    token = match.group(1)
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return ""
    if not data.startswith(b"\x08\x13\x22"):
        return ""
    length, position = _varint(data, 3)
    raw = data[position : position + length]
    if length <= 0 or len(raw) != length:
        return ""
    try:
        url = raw.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return safe_http_url(url)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data) and shift <= 28:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    return -1, position
