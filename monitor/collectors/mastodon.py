"""Mastodon posts from public hashtag timelines (no account or token needed).

    GET {instance}/api/v1/timelines/tag/{tag}?limit={limit}&since_id={cursor}

Each instance x tag is one input: one failing is reported, the others carry on. Statuses
arrive newest first; when a page is full the next one is asked for with `max_id` (still
above `since_id`), up to `max_pages`, so a busy hour leaves no gap. The cursor keeps the
newest status id per instance and tag. Boosts (`reblog` set) are skipped: the original
arrives on its own. The status `uri` is the external id, so the same post seen through two
instances is one mention.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from monitor.collectors.base import CollectContext, CollectorError, register
from monitor.collectors.http import FetchError
from monitor.config import ConfigError
from monitor.models import Mention, safe_http_url, utc
from monitor.text import html_to_text

log = logging.getLogger(__name__)

DEFAULT_INSTANCES = ("https://mastodon.social",)
MAX_LIMIT = 40  # Mastodon's own cap for timelines
MAX_PAGES = 10
OPTION_KEYS = frozenset({"enabled", "instances", "tags", "limit", "max_pages"})
_TAG = re.compile(r"^\w+$")


@register
class MastodonCollector:
    """Public posts carrying the brand's hashtags on Mastodon instances."""

    name: ClassVar[str] = "mastodon"
    description: ClassVar[str] = "Mastodon hashtag timelines"
    # Items must name the brand: the pipeline matches every one.
    always_about_brand: ClassVar[bool] = False

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield statuses newer than each instance+tag cursor and move the cursors on."""
        ctx.check_keys(OPTION_KEYS)
        instances = _instances(ctx)
        tags = _tags(ctx)
        limit = ctx.option_int(
            "limit", MAX_LIMIT, minimum=1, maximum=MAX_LIMIT, why="Mastodon serves at most 40"
        )
        max_pages = ctx.option_int("max_pages", 3, minimum=1, maximum=MAX_PAGES)
        since_ids = ctx.cursor.get("since_id")
        if not isinstance(since_ids, dict):
            since_ids = ctx.cursor["since_id"] = {}
        inputs = [(instance, tag) for instance in instances for tag in tags]
        seen: set[str] = set()
        failures: list[str] = []
        for instance, tag in inputs:
            key = f"{instance} #{tag}"
            since_id = since_ids.get(key) if isinstance(since_ids.get(key), str) else None
            try:
                statuses = _timeline(ctx, instance, tag, limit, max_pages, since_id)
            except FetchError as error:
                problem = f"Mastodon {instance} #{tag}: {error}"
                failures.append(problem)
                ctx.warn(problem)
                continue
            for status in statuses:
                mention = status_mention(status, instance, tag, ctx.now)
                if mention is not None and mention.external_id not in seen:
                    seen.add(mention.external_id)
                    yield mention
            newest = _newest_id(
                [str(s.get("id")) for s in statuses if s.get("id")] + [since_id or ""]
            )
            if newest:
                since_ids[key] = newest
        if failures and len(failures) == len(inputs):
            raise CollectorError(
                f"every Mastodon timeline failed ({len(inputs)}):\n" + "\n".join(failures)
            )


def _timeline(
    ctx: CollectContext,
    instance: str,
    tag: str,
    limit: int,
    max_pages: int,
    since_id: str | None,
) -> list[dict[str, Any]]:
    """Return the statuses on one tag timeline newer than `since_id`, newest first."""
    url = f"{instance}/api/v1/timelines/tag/{quote(tag, safe='')}"
    statuses: list[dict[str, Any]] = []
    max_id: str | None = None
    for page in range(max_pages):
        params = {"limit": str(limit)}
        if since_id:
            params["since_id"] = since_id
        if max_id:
            params["max_id"] = max_id
        if ctx.progress:
            ctx.progress(f"mastodon: {instance} #{tag} page {page + 1}")
        response = ctx.http.get(url, params=params)
        found = _json_list(response.url, response.body)
        statuses.extend(found)
        ids = [str(s["id"]) for s in found if s.get("id")]
        if len(found) < limit or not ids:
            break
        max_id = _oldest_id(ids)
    else:
        if since_id:
            log.warning(
                "mastodon %s #%s: over %d full pages new; some missed", instance, tag, max_pages
            )
    return statuses


def status_mention(
    status: Mapping[str, Any], instance: str, tag: str, now: datetime
) -> Mention | None:
    """Return the Mention of one Status, or None for a boost or a status missing essentials."""
    if status.get("reblog"):
        return None  # a boost: the original arrives on its own
    uri = status.get("uri")
    published = _parse_date(status.get("created_at"))
    if not isinstance(uri, str) or not uri.strip() or published is None:
        return None
    account = status.get("account")
    if not isinstance(account, Mapping):
        account = {}
    favourites = _count(status.get("favourites_count"))
    reblogs = _count(status.get("reblogs_count"))
    content = status.get("content")
    spoiler = status.get("spoiler_text")
    language = status.get("language")
    return Mention(
        source=MastodonCollector.name,
        external_id=uri.strip(),
        title=html_to_text(spoiler, paragraphs=True) if isinstance(spoiler, str) else "",
        text=html_to_text(content, paragraphs=True) if isinstance(content, str) else "",
        published_at=published,
        url=safe_http_url(status.get("url")) or safe_http_url(uri.strip()),
        author=_author(account, instance),
        score=_sum(favourites, reblogs),
        comments=_count(status.get("replies_count")),
        followers=_count(account.get("followers_count")),
        extra={
            "instance": instance,
            "tag": tag,
            "language": language if isinstance(language, str) else None,
            "reblogs": reblogs,
            "favourites": favourites,
        },
        collected_at=now,
    )


def default_tags(terms: tuple[str, ...]) -> list[str]:
    """Return hashtags for the brand terms: sigils and spaces removed, lower-cased.

    A term that cannot be a hashtag once that is done (a domain such as "brand.com") is
    left out.
    """
    tags: list[str] = []
    for term in terms:
        tag = re.sub(r"\s+", "", term.lstrip("@$#")).lower()
        if _TAG.match(tag) and tag not in tags:
            tags.append(tag)
    return tags


def _author(account: Mapping[str, Any], instance: str) -> str:
    """Return the account as user@server; local accounts' `acct` lacks the server."""
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct.strip():
        return ""
    acct = acct.strip().lstrip("@")
    host = urlsplit(instance).netloc
    return acct if "@" in acct or not host else f"{acct}@{host}"


def _sum(*counts: int | None) -> int | None:
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse_date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _id_key(status_id: str) -> tuple[int, str]:
    # Mastodon ids are numeric strings that grow over time; compare by length, then text.
    return (len(status_id), status_id)


def _newest_id(ids: list[str]) -> str:
    real = [i for i in ids if i]
    return max(real, key=_id_key) if real else ""


def _oldest_id(ids: list[str]) -> str:
    return min(ids, key=_id_key)


def _json_list(url: str, body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except ValueError:
        start = body[:40].decode("utf-8", errors="replace").strip()
        kind = "an HTML page" if start[:1] == "<" else f"not JSON ({start!r})"
        raise FetchError(url, f"the timeline answered with {kind}") from None
    if not isinstance(data, list):
        error = data.get("error") if isinstance(data, dict) else None
        detail = f": {error}" if isinstance(error, str) else ""
        raise FetchError(url, f"the timeline answered JSON that is not a list of posts{detail}")
    return [status for status in data if isinstance(status, dict)]


def _instances(ctx: CollectContext) -> list[str]:
    instances = []
    for raw in ctx.option_strings("instances", DEFAULT_INSTANCES):
        base = safe_http_url(raw).rstrip("/")
        if not base:
            raise ConfigError(
                f"{ctx.where('instances')}: {raw!r} is not an http(s) address, "
                'e.g. "https://mastodon.social".'
            )
        if base not in instances:
            instances.append(base)
    if not instances:
        raise ConfigError(f"{ctx.where('instances')} must list at least one instance.")
    return instances


def _tags(ctx: CollectContext) -> list[str]:
    if "tags" not in ctx.options:
        tags = default_tags(ctx.brand.terms)
        if not tags:
            raise ConfigError(
                f"{ctx.where('tags')}: no hashtag can be made from the brand's name and "
                'aliases; set tags = ["yourbrand"].'
            )
        return tags
    tags = []
    for raw in ctx.option_strings("tags"):
        tag = raw.lstrip("#").lower()
        if not _TAG.match(tag):
            raise ConfigError(
                f"{ctx.where('tags')}: {raw!r} is not a hashtag (letters, digits and _ only)."
            )
        if tag not in tags:
            tags.append(tag)
    if not tags:
        raise ConfigError(f"{ctx.where('tags')} must list at least one hashtag.")
    return tags
