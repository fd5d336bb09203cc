"""Hacker News stories and comments, from Algolia's public HN search API (no key).

    {base_url}/api/v1/search_by_date?query="<term>"&tags=(story,comment)
        &numericFilters=created_at_i>{since}&hitsPerPage=100&page={n}

One query per brand term (the name and each alias, quoted, without @ or $), newest first,
paged up to `max_pages`. Each term is one input: one failing is reported, the others carry
on. The cursor keeps, per term, the newest `created_at_i` seen minus `lookback`, so the next
run reads the last day again and points and comment counts are refreshed in place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from monitor.collectors.base import CollectContext, CollectorError, register
from monitor.collectors.http import FetchError
from monitor.models import Mention, safe_http_url
from monitor.text import html_to_text

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://hn.algolia.com"
SEARCH_PATH = "/api/v1/search_by_date"
ITEM_URL = "https://news.ycombinator.com/item?id={id}"
HITS_PER_PAGE = 100
MAX_PAGES = 10  # Algolia serves at most 1,000 hits per query
OPTION_KEYS = frozenset({"enabled", "base_url", "max_pages", "lookback", "backfill"})


@register
class HackerNewsCollector:
    """Stories and comments that name the brand on Hacker News."""

    name: ClassVar[str] = "hackernews"
    description: ClassVar[str] = "Hacker News stories and comments (Algolia search)"
    # Items must name the brand: the pipeline matches every one.
    always_about_brand: ClassVar[bool] = False

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield hits newer than each term's cursor and move the cursors on."""
        ctx.check_keys(OPTION_KEYS)
        base = ctx.option_url("base_url", DEFAULT_BASE_URL)
        max_pages = ctx.option_int(
            "max_pages",
            3,
            minimum=1,
            maximum=MAX_PAGES,
            why=f"Algolia serves at most {MAX_PAGES} pages of {HITS_PER_PAGE}",
        )
        lookback = int(ctx.option_duration("lookback", "1d").total_seconds())
        first_since = int(
            ctx.now.timestamp() - ctx.option_duration("backfill", "30d").total_seconds()
        )
        since_by_term = ctx.cursor.get("since")
        if not isinstance(since_by_term, dict):
            since_by_term = ctx.cursor["since"] = {}
        terms = search_terms(ctx.brand.terms)
        seen: set[str] = set()
        failures: list[str] = []
        for term in terms:
            stored = since_by_term.get(term)
            since = (
                stored if isinstance(stored, int) and not isinstance(stored, bool) else first_since
            )
            try:
                hits = _search(ctx, base, term, since, max_pages)
            except FetchError as error:
                problem = f"Hacker News search for {term!r}: {error}"
                failures.append(problem)
                ctx.warn(problem)
                continue
            newest = since
            for hit in hits:
                mention = hit_mention(hit, ctx.now)
                if mention is None:
                    continue
                newest = max(newest, int(mention.published_at.timestamp()))
                if mention.external_id not in seen:
                    seen.add(mention.external_id)
                    yield mention
            since_by_term[term] = max(since, newest - lookback)
        if failures and len(failures) == len(terms):
            raise CollectorError(
                f"every Hacker News search failed ({len(terms)}):\n" + "\n".join(failures)
            )


def search_terms(terms: tuple[str, ...]) -> list[str]:
    """Return the brand terms to search for: sigils dropped, each once (case-insensitively)."""
    found: dict[str, str] = {}
    for term in terms:
        bare = term.lstrip("@$").strip()
        if bare and bare.casefold() not in found:
            found[bare.casefold()] = bare
    return list(found.values())


def _search(
    ctx: CollectContext, base: str, term: str, since: int, max_pages: int
) -> list[dict[str, Any]]:
    """Return every hit for `term` newer than `since`, over at most `max_pages` pages."""
    url = base + SEARCH_PATH
    hits: list[dict[str, Any]] = []
    page, pages = 0, 1
    while page < min(pages, max_pages):
        params = {
            "query": f'"{term}"',
            "tags": "(story,comment)",
            "numericFilters": f"created_at_i>{since}",
            "hitsPerPage": str(HITS_PER_PAGE),
            "page": str(page),
        }
        if ctx.progress:
            ctx.progress(f"hackernews: {term!r} page {page + 1}")
        response = ctx.http.get(url, params=params)
        data = _json(response.url, response.body)
        found = data.get("hits")
        if not isinstance(found, list):
            raise FetchError(response.url, "the search answered JSON without a 'hits' list")
        hits.extend(hit for hit in found if isinstance(hit, dict))
        pages = _int(data.get("nbPages")) or 0
        if not found:
            break
        page += 1
    if pages > max_pages:
        log.warning(
            "hackernews %r: %d pages of hits, read %d; raise max_pages or run more often",
            term,
            pages,
            max_pages,
        )
    return hits


def hit_mention(hit: Mapping[str, Any], now: datetime) -> Mention | None:
    """Return the Mention of one Algolia hit, or None when it lacks an id or a time."""
    object_id = hit.get("objectID")
    created = hit.get("created_at_i")
    if not isinstance(object_id, str | int) or not str(object_id).strip():
        return None
    if not isinstance(created, int) or isinstance(created, bool):
        return None
    object_id = str(object_id).strip()
    tags = hit.get("_tags")
    tags = tags if isinstance(tags, list) else []
    kind = "comment" if "comment" in tags or hit.get("comment_text") else "story"
    body = hit.get("story_text") or hit.get("comment_text") or ""
    extra: dict[str, Any] = {
        "kind": kind,
        "story_id": _int(hit.get("story_id")),
        "story_url": safe_http_url(hit.get("url") if kind == "story" else hit.get("story_url")),
    }
    if kind == "comment":
        extra["story_title"] = _plain(hit.get("story_title"))
        extra["parent_id"] = _int(hit.get("parent_id"))
    return Mention(
        source=HackerNewsCollector.name,
        external_id=object_id,
        title=_plain(hit.get("title")) if kind == "story" else "",
        text=html_to_text(body, paragraphs=True) if isinstance(body, str) else "",
        published_at=datetime.fromtimestamp(created, UTC),
        url=ITEM_URL.format(id=object_id),
        author=_plain(hit.get("author")),
        score=_int(hit.get("points")),
        comments=_int(hit.get("num_comments")),
        extra=extra,
        collected_at=now,
    )


def _plain(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json(url: str, body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        start = body[:40].decode("utf-8", errors="replace").strip()
        kind = "an HTML page" if start[:1] == "<" else f"not JSON ({start!r})"
        raise FetchError(url, f"the search answered with {kind}") from None
    if not isinstance(data, dict):
        raise FetchError(url, "the search answered JSON that is not an object")
    return data
