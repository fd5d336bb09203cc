"""Apple App Store customer reviews, read from Apple's public customer-review feed (JSON).

    {base_url}/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json

No key is needed. Each app x country is one input: one failing is reported and the others
carry on. Inputs are read concurrently, at most MAX_PARALLEL at once (a few: Apple throttles
clients that ask too fast), and land in configuration order. Within one input, pages are read newest
first until a page without `entry` (past the last page), Apple's plain-text "page depth is
limited" answer, the configured page count, or a page that reaches the newest review the last
run saw (the cursor, one review id per app:country). A page that fails keeps the reviews of
the pages before it, but that input's cursor does not move.

Reviews of the brand's own app are about the brand whether or not their text names it
("Crashes since the update"), so this collector sets `always_about_brand` and the pipeline
keeps every review without brand matching. Title and text are stored exactly as written;
the app's configured name is kept in `extra["app_name"]`, never added to the text.

The JSON feed carries no per-review date in many responses. An entry's `updated` is used
when present; otherwise the review is dated when first seen (`ctx.now`) and marked
`extra["date_estimated"] = True`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from monitor.collectors.base import CollectContext, CollectorError, register
from monitor.collectors.http import FetchError, fetch_all
from monitor.config import ConfigError
from monitor.models import Mention, safe_http_url, utc

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://itunes.apple.com"
APP_PAGE = "https://apps.apple.com/{country}/app/id{app}"
FEED_PAGE = "{base}/{country}/rss/customerreviews/page={page}/id={app}/sortby=mostrecent/json"
MAX_PAGES = 10  # Apple serves no deeper than page 10
MAX_PARALLEL = 4  # app x country inputs read at once: a handful, Apple throttles fast clients
OPTION_KEYS = frozenset({"enabled", "apps", "pages", "base_url"})
APP_KEYS = frozenset({"id", "countries", "name"})
PAGE_DEPTH_TEXT = "page depth is limited"
_COUNTRY = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True, slots=True)
class App:
    """One app to watch, in some App Store countries."""

    id: str
    name: str
    countries: tuple[str, ...]


@register
class AppStoreReviewsCollector:
    """Customer reviews of the brand's apps from Apple's App Store feed."""

    name: ClassVar[str] = "reviews"
    description: ClassVar[str] = "Apple App Store customer reviews"
    # Reviews of the configured apps need not name the brand: the pipeline keeps them all.
    always_about_brand: ClassVar[bool] = True

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield the reviews newer than the cursor (plus the page that reaches it)."""
        ctx.check_keys(OPTION_KEYS)
        apps = read_apps(ctx)
        pages = ctx.option_int(
            "pages", 3, minimum=1, maximum=MAX_PAGES, why=f"Apple serves at most {MAX_PAGES} pages"
        )
        base = ctx.option_url("base_url", DEFAULT_BASE_URL)
        newest = ctx.cursor.get("newest")
        if not isinstance(newest, dict):
            newest = ctx.cursor["newest"] = {}
        inputs = [(app, country) for app in apps for country in app.countries]
        # Each worker gets the cursor it starts from; the shared cursor is only written here.
        seen = {key: value for key, value in newest.items() if isinstance(value, str)}

        def read(item: tuple[App, str]) -> _Read:
            app, country = item
            return _collect_one(ctx, base, app, country, pages, seen.get(f"{app.id}:{country}"))

        failures: list[str] = []
        for outcome in fetch_all(inputs, read, max_parallel=MAX_PARALLEL):
            app, country = outcome.item
            result = outcome.get()  # _collect_one keeps FetchError in the result; others are bugs
            if ctx.progress:
                ctx.progress(f"reviews: app {app.id} {country}: {len(result.mentions)} reviews")
            yield from result.mentions  # what was read before a failure still lands
            if result.error is not None:
                problem = f"App Store app {app.id} ({app.name}), country {country}: {result.error}"
                failures.append(problem)
                ctx.warn(problem)
            elif result.newest:
                newest[f"{app.id}:{country}"] = result.newest
        if failures and len(failures) == len(inputs):
            raise CollectorError(
                f"every App Store input failed ({len(inputs)}):\n" + "\n".join(failures)
            )


@dataclass
class _Read:
    """What one app x country input gave: its reviews, its new cursor, or why it stopped."""

    mentions: list[Mention] = field(default_factory=list)
    newest: str = ""  # the newest review id, set only when every page needed was read
    error: FetchError | None = None


def _collect_one(
    ctx: CollectContext,
    base: str,
    app: App,
    country: str,
    pages: int,
    seen: str | None,
) -> _Read:
    """Read one app's reviews in one country (on a worker thread: touches no shared state)."""
    result = _Read()
    emitted: set[str] = set()
    ids: list[str] = []
    try:
        for page in range(1, pages + 1):
            url = FEED_PAGE.format(base=base, country=country, page=page, app=app.id)
            entries = parse_page(url, ctx.http.get(url).body)
            if entries is None:
                break
            page_ids: list[str] = []
            for entry in entries:
                mention = review_mention(entry, app, country, ctx.now)
                if mention is None:
                    continue
                review_id = _label(entry, "id")
                page_ids.append(review_id)
                if review_id not in emitted:
                    emitted.add(review_id)
                    result.mentions.append(mention)
            ids.extend(page_ids)
            if (
                seen is not None
                and page_ids
                and (seen in page_ids or _not_newer(page_ids[-1], seen))
            ):
                break  # reached what the last run saw; that page refreshed votes and edits
        else:
            if seen is not None:
                log.warning(
                    "reviews %s:%s: over %d pages of new reviews; the oldest were missed",
                    app.id,
                    country,
                    pages,
                )
    except FetchError as error:
        result.error = error
        return result
    result.newest = _newest_id([*ids, *([seen] if seen else [])])
    return result


def parse_page(url: str, body: bytes) -> list[dict[str, Any]] | None:
    """Return a feed page's review entries, or None past the last page. Raise FetchError."""
    text = body.decode("utf-8", errors="replace").strip()
    if PAGE_DEPTH_TEXT in text[:200].lower():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        kind = "an HTML page" if text[:1] == "<" else f"not JSON ({text[:40]!r})"
        raise FetchError(url, f"the review feed answered with {kind}") from None
    feed = data.get("feed") if isinstance(data, dict) else None
    if not isinstance(feed, dict):
        raise FetchError(url, "the review feed answered JSON without a 'feed' object")
    entries = feed.get("entry")
    if entries is None:
        return None  # no reviews, or past the last page
    if isinstance(entries, dict):  # Apple sends one review as an object, not a list
        entries = [entries]
    if not isinstance(entries, list):
        raise FetchError(url, "the review feed's 'entry' is neither a list nor an object")
    return [entry for entry in entries if isinstance(entry, dict)]


def review_mention(
    entry: Mapping[str, Any], app: App, country: str, now: datetime
) -> Mention | None:
    """Return the Mention of one feed entry, or None when it is not a review."""
    review_id = _label(entry, "id")
    if not review_id or ("content" not in entry and "im:rating" not in entry):
        return None  # old feeds open page 1 with an entry describing the app itself
    extra: dict[str, Any] = {
        "app_id": app.id,
        "app_name": app.name,
        "country": country,
        "version": _label(entry, "im:version"),
        "vote_sum": _count(_label(entry, "im:voteSum")),
        "vote_count": _count(_label(entry, "im:voteCount")),
    }
    rating = parse_rating(_label(entry, "im:rating"))
    if rating is None:
        extra["rating_invalid"] = True
    published = _parse_date(_label(entry, "updated"))
    if published is None:
        published = now
        extra["date_estimated"] = True
    author = entry.get("author")
    author = author if isinstance(author, Mapping) else {}
    return Mention(
        source=AppStoreReviewsCollector.name,
        external_id=f"{app.id}:{review_id}",
        title=_label(entry, "title").strip(),
        text=_label(entry, "content").strip(),
        published_at=published,
        url=safe_http_url(_label(author, "uri")) or APP_PAGE.format(country=country, app=app.id),
        author=_label(author, "name").strip(),
        rating=rating,
        extra=extra,
        collected_at=now,
    )


def parse_rating(raw: str) -> float | None:
    """Return a 1-5 star rating, or None for "", "0" and anything else out of range."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 1 <= value <= 5 else None


def read_apps(ctx: CollectContext) -> list[App]:
    """Return the configured apps; raise ConfigError naming the key at fault."""
    raw = ctx.options.get("apps")
    example = 'apps = [{ id = "497799835", countries = ["us", "gb"], name = "Northwind Mobile" }]'
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{ctx.where('apps')} must list at least one app, e.g. {example}.")
    apps = []
    for index, table in enumerate(raw):
        where = ctx.where(f"apps[{index}]")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table, e.g. {example}.")
        unknown = sorted(set(table) - APP_KEYS)
        if unknown:
            raise ConfigError(
                f"{where} has an unknown key '{unknown[0]}'. Known keys: countries, id, name."
            )
        app_id = table.get("id")
        if isinstance(app_id, int) and not isinstance(app_id, bool):
            app_id = str(app_id)
        if not isinstance(app_id, str) or not app_id.strip().isdigit():
            raise ConfigError(
                f'{where}.id must be the App Store app id (digits), e.g. id = "497799835": '
                "it is the number after /id in the app's App Store address."
            )
        countries = table.get("countries", ["us"])
        if not isinstance(countries, list) or not countries:
            raise ConfigError(f'{where}.countries must be a list, e.g. countries = ["us", "gb"].')
        codes = []
        for country in countries:
            code = country.strip().lower() if isinstance(country, str) else ""
            if not _COUNTRY.match(code):
                raise ConfigError(
                    f"{where}.countries: {country!r} is not a two-letter store country "
                    'code such as "us" or "gb".'
                )
            if code not in codes:
                codes.append(code)
        name = table.get("name", ctx.brand.name)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f'{where}.name must be a non-empty string, e.g. name = "My App".')
        apps.append(App(id=app_id.strip(), name=name.strip(), countries=tuple(codes)))
    return apps


def _label(node: Mapping[str, Any], key: str) -> str:
    """Return `node[key]["label"]`: the feed wraps every scalar as {"label": "..."}."""
    value = node.get(key)
    label = value.get("label") if isinstance(value, Mapping) else None
    return label if isinstance(label, str) else ""


def _count(raw: str) -> int | None:
    return int(raw) if raw.strip().lstrip("-").isdigit() else None


def _parse_date(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        return None


def _not_newer(review_id: str, seen: str) -> bool:
    """Return True when `review_id` is the review `seen` or an older one (ids grow)."""
    if review_id.isdigit() and seen.isdigit():
        return int(review_id) <= int(seen)
    return review_id == seen


def _newest_id(ids: list[str]) -> str:
    numeric = [i for i in ids if i.isdigit()]
    if numeric:
        return max(numeric, key=int)
    return ids[0] if ids else ""
