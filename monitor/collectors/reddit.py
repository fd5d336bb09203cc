"""Reddit, through PRAW: posts and comments that name the brand.

Credentials are those of a "script" app (https://www.reddit.com/prefs/apps): `[reddit]
client_id / client_secret` (and optionally `username / password`) in
`.streamlit/secrets.toml`, or PRAW's own `praw_client_id` / `praw_client_secret` environment
variables or praw.ini. Without a username PRAW uses app-only (read-only) OAuth, enough to
read public subreddits.

Each run reads these streams, newest first (sort=new), page by page:
- a site-wide search for the brand's name and aliases (`search_sitewide`),
- the same search in each configured subreddit (`subreddits`),
- the newest comments of each configured subreddit (`include_comments`),
and then the comment tree of the newest matched threads (`include_comments`, at most
`max_threads` threads, one request each: "load more comments" stubs are not followed).

Incremental: the cursor keeps, per stream, the newest `created_utc` seen. A later run stops
paging at the first item older than that minus `lookback`, so the items inside the look-back
come again and their score and comment count are updated in place (the store keys mentions
on the fullname, `t3_...` or `t1_...`, and never duplicates them).

Failures: credentials Reddit refuses fail the source with the secret to fix named; a
subreddit that is private, quarantined, banned or missing is a warning and the other inputs
carry on; 429, 5xx and dropped connections are retried with backoff (Retry-After and
Reddit's x-ratelimit-reset honoured) and then fail the source with the status.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import version
from typing import Any, ClassVar
from urllib.parse import urlsplit

import praw
import praw.exceptions
import prawcore
from praw.models import Comment, Submission
from prawcore.sessions import Session
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from monitor.collectors.base import CollectContext, CollectorError, register
from monitor.collectors.http import MAX_RETRY_AFTER, retry_after_seconds
from monitor.config import SECRETS_FILE, ConfigError
from monitor.matching import BrandMatcher, search_query
from monitor.models import Mention

REDDIT = "https://www.reddit.com"
DEFAULT_USER_AGENT = f"python:repmon:{version('repmon')} (self-hosted reputation monitor)"
# Statuses worth another try: rate limited, or Reddit (or Cloudflare in front of it) unwell.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 522})
MAX_BACKOFF = 60.0

KNOWN_OPTIONS = (
    "subreddits",
    "search_sitewide",
    "include_comments",
    "max_threads",
    "lookback",
    "limit",
    "user_agent",
    "timeout",
    "attempts",
    "backoff",
    "oauth_url",
    "reddit_url",
)
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")

CREDENTIALS_HELP = (
    f"Check [reddit] client_id and client_secret in {SECRETS_FILE} (or the praw_client_id / "
    "praw_client_secret environment variables): they must be the id and secret of a "
    '"script" app created at https://www.reddit.com/prefs/apps.'
)


# -- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedditOptions:
    """The `[sources.reddit]` table, checked."""

    subreddits: tuple[str, ...]
    search_sitewide: bool
    include_comments: bool
    max_threads: int
    lookback: timedelta
    limit: int
    user_agent: str
    timeout: float
    attempts: int
    backoff: float
    oauth_url: str | None
    reddit_url: str | None

    @classmethod
    def read(cls, ctx: CollectContext) -> RedditOptions:
        """Return the options of `ctx`; raise ConfigError naming the key that is wrong."""
        ctx.check_keys(KNOWN_OPTIONS)
        by_key: dict[str, str] = {}  # Reddit names are case-insensitive: read each once
        for raw in ctx.option_strings("subreddits"):
            name = _subreddit_name(raw, ctx.where("subreddits"))
            by_key.setdefault(name.lower(), name)
        subreddits = tuple(by_key.values())
        user_agent = ctx.option_str("user_agent", DEFAULT_USER_AGENT).strip()
        if len(user_agent) < 10:
            raise ConfigError(
                f"{ctx.where('user_agent')} must describe the app, e.g. "
                '"python:repmon:1.0 (by /u/yourname)"; Reddit blocks generic ones.'
            )
        search_sitewide = ctx.option_bool("search_sitewide", True)
        if not search_sitewide and not subreddits:
            raise ConfigError(
                f"{ctx.where('search_sitewide')} is false and no subreddits are listed: nothing "
                'to read. Set search_sitewide = true or e.g. subreddits = ["sysadmin"].'
            )
        return cls(
            subreddits=subreddits,
            search_sitewide=search_sitewide,
            include_comments=ctx.option_bool("include_comments", True),
            max_threads=ctx.option_int("max_threads", 25),
            lookback=ctx.option_duration("lookback", "3d"),
            limit=ctx.option_int("limit", 250, minimum=1),
            user_agent=user_agent,
            timeout=_seconds(ctx.options.get("timeout", 20), ctx.where("timeout")),
            attempts=ctx.option_int("attempts", 4, minimum=1),
            backoff=ctx.option_duration("backoff", "2s").total_seconds(),
            oauth_url=_endpoint(ctx.options.get("oauth_url"), ctx.where("oauth_url")),
            reddit_url=_endpoint(ctx.options.get("reddit_url"), ctx.where("reddit_url")),
        )


def _subreddit_name(raw: str, where: str) -> str:
    name = raw.strip().removeprefix("/").removeprefix("r/")
    if not _SUBREDDIT.match(name):
        raise ConfigError(
            f'{where}: {raw!r} is not a subreddit name; write e.g. "sysadmin" or "r/sysadmin".'
        )
    return name


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a number of seconds > 0, e.g. timeout = 20.")
    return float(value)


def _endpoint(value: object, where: str) -> str | None:
    """Return an API endpoint override; plain http only to this machine (a test server)."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f'{where} must be an https URL, e.g. "https://oauth.reddit.com".')
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ConfigError(
            f"{where} must use https: the app's secret and token are sent there "
            "(plain http is accepted only for a test server on this machine)."
        )
    return str(value).rstrip("/")


# -- HTTP: retries with backoff under PRAW -------------------------------------------------------


class RedditUnavailable(Exception):
    """Reddit kept answering 429/5xx (or the connection kept failing) after every attempt."""

    def __init__(self, reason: str, attempts: int, status: int | None) -> None:
        super().__init__(f"{reason} (gave up after {attempts} attempts)")
        self.status = status


class _Transient(Exception):
    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


@dataclass
class RetryPolicy:
    """How the requestor retries; the requestor PRAW builds registers itself here."""

    attempts: int
    backoff: float
    timeout: float
    sleep: Callable[[float], None] = time.sleep
    requestor: RetryingRequestor | None = None


class RetryingRequestor(prawcore.Requestor):
    """A prawcore Requestor that retries 429, 5xx and dropped connections with backoff.

    It sits under prawcore's rate limiter, so Reddit's x-ratelimit headers still pace the
    requests. When the attempts run out it raises RedditUnavailable, which prawcore lets
    through untouched (it is not a RequestException), so prawcore's own slower retries
    never stack on top of these.
    """

    def __init__(self, *, policy: RetryPolicy, **kwargs: Any) -> None:
        self._policy = policy
        super().__init__(timeout=policy.timeout, **kwargs)
        policy.requestor = self

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Issue the request, retrying what may pass; raise RedditUnavailable if it never does."""
        policy = self._policy
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=policy.sleep,
            reraise=True,
        )
        try:
            return retrying(self._once, args, kwargs)
        except _Transient as exhausted:
            raise RedditUnavailable(exhausted.reason, policy.attempts, exhausted.status) from None

    def _once(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            response = super().request(*args, timeout=self._policy.timeout, **kwargs)
        except prawcore.RequestException as failure:
            original = failure.original_exception
            if isinstance(original, Session.RETRY_EXCEPTIONS):
                name = type(original).__name__
                reason = "timed out" if "Timeout" in name else f"connection failed ({name})"
                raise _Transient(reason) from None
            raise
        status = int(response.status_code)
        if status in RETRY_STATUSES:
            headers = response.headers
            wait = retry_after_seconds(headers.get("retry-after"))
            if wait is None and status == 429:
                wait = retry_after_seconds(headers.get("x-ratelimit-reset"))
            response.close()
            raise _Transient(f"HTTP {status} {response.reason or ''}".strip(), status, wait)
        return response

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        hinted = failure.wait if isinstance(failure, _Transient) else None
        if hinted is not None:
            return min(hinted, MAX_RETRY_AFTER)
        return min(self._policy.backoff * 2.0 ** (state.attempt_number - 1), MAX_BACKOFF)


# -- the collector --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stream:
    key: str  # its entry in the cursor
    label: str  # how messages name it
    subreddit: str | None
    listing: Callable[[], Iterable[Any]]


class _InputDenied(Exception):
    """One input (a subreddit, a thread) cannot be read: private, quarantined, gone."""


@register
class RedditCollector:
    """Posts and comments naming the brand, from Reddit's API through PRAW."""

    name: ClassVar[str] = "reddit"
    description: ClassVar[str] = (
        "Reddit posts and comments naming the brand: site-wide and subreddit search, "
        "subreddit comments and the comments of matched threads (PRAW, script-app OAuth)."
    )
    # Search also finds posts that name the brand only in a link or a comment; comments of
    # matched threads often do not name it at all: the pipeline's brand matching decides.
    always_about_brand: ClassVar[bool] = False

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield the posts and comments newer than the cursor (minus the look-back)."""
        options = RedditOptions.read(ctx)
        if not _query(ctx):
            raise ConfigError(
                f"{ctx.config_path or 'monitor.toml'}: [brand] gives Reddit nothing to search "
                "for: handles and cashtags are not searched, so add the name people write."
            )
        policy = RetryPolicy(options.attempts, options.backoff, options.timeout)
        reddit = _connect(ctx, options, policy)
        try:
            yield from _Run(ctx, options, reddit).collect()
        finally:
            if policy.requestor is not None:
                policy.requestor.close()


def _query(ctx: CollectContext) -> str:
    # Exclusions are left to the matcher: "-term" in the query would also drop posts that name
    # the brand besides the look-alike, which the matcher keeps.
    return search_query(replace(ctx.brand, exclude=()))


def _connect(ctx: CollectContext, options: RedditOptions, policy: RetryPolicy) -> praw.Reddit:
    secrets = ctx.secrets.get("reddit", {})
    if not isinstance(secrets, Mapping):
        raise ConfigError(f"{SECRETS_FILE}: 'reddit' must be a table, written [reddit].")
    settings: dict[str, Any] = {}
    for key in ("client_id", "client_secret", "username", "password"):
        value = secrets.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{SECRETS_FILE}: [reddit] {key} must be a non-empty string.")
        settings[key] = value.strip()
    if ("username" in settings) != ("password" in settings):
        given, missing = (
            ("username", "password") if "username" in settings else ("password", "username")
        )
        raise ConfigError(
            f"{SECRETS_FILE}: [reddit] has {given} but no {missing}: give both (the account "
            "must be a developer of the script app) or neither (read-only access)."
        )
    if options.oauth_url:
        settings["oauth_url"] = options.oauth_url
    if options.reddit_url:
        settings["reddit_url"] = options.reddit_url
    try:
        return praw.Reddit(
            user_agent=options.user_agent,
            check_for_async=False,
            check_for_updates=False,  # no call to PyPI from a monitoring job
            requestor_class=RetryingRequestor,
            requestor_kwargs={"policy": policy},
            **settings,
        )
    except praw.exceptions.MissingRequiredAttributeException:
        raise CollectorError(
            "Reddit credentials are missing: add [reddit] client_id and client_secret to "
            f'{SECRETS_FILE} (the id and secret of a "script" app created at '
            "https://www.reddit.com/prefs/apps), or set the praw_client_id and "
            "praw_client_secret environment variables."
        ) from None


class _Run:
    """One collection run: its streams, what they found, and the cursor they leave."""

    def __init__(self, ctx: CollectContext, options: RedditOptions, reddit: praw.Reddit) -> None:
        self.ctx = ctx
        self.options = options
        self.reddit = reddit
        self.matcher = BrandMatcher(ctx.brand)
        self.query = _query(ctx)
        previous = ctx.cursor.get("newest_utc")
        self.newest: dict[str, float] = {
            key: float(value)
            for key, value in (previous.items() if isinstance(previous, dict) else ())
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        self.submissions: dict[str, Any] = {}
        self.comments: dict[str, tuple[Any, str]] = {}  # fullname -> (comment, thread title)
        self.denied: set[str] = set()
        self.inputs = 0
        self.failed_inputs = 0

    def collect(self) -> Iterator[Mention]:
        for stream in self._streams():
            self._read(stream)
        if self.options.include_comments:
            self._expand_matched_threads()
        if self.inputs and self.failed_inputs == self.inputs:
            raise CollectorError("no Reddit input could be read:\n" + "\n".join(self.ctx.problems))
        for submission in self.submissions.values():
            yield _submission_mention(submission)
        for comment, thread_title in self.comments.values():
            yield _comment_mention(comment, thread_title)
        self.ctx.cursor["newest_utc"] = self.newest

    def _streams(self) -> list[_Stream]:
        streams: list[_Stream] = []
        limit = self.options.limit
        if self.options.search_sitewide:
            everything = self.reddit.subreddit("all")
            search = partial(everything.search, self.query, sort="new", limit=limit)
            streams.append(_Stream("search:all", "site-wide search", None, search))
        for name in self.options.subreddits:
            subreddit = self.reddit.subreddit(name)
            search = partial(subreddit.search, self.query, sort="new", limit=limit)
            key = name.lower()
            streams.append(_Stream(f"search:r/{key}", f"r/{name} search", name, search))
            if self.options.include_comments:
                comments = partial(subreddit.comments, limit=limit)
                streams.append(_Stream(f"comments:r/{key}", f"r/{name} comments", name, comments))
        return streams

    def _read(self, stream: _Stream) -> None:
        """Read one stream newest first, down to the cursor minus the look-back."""
        if stream.subreddit in self.denied:
            return
        self.inputs += 1
        previous = self.newest.get(stream.key)
        cutoff = None if previous is None else previous - self.options.lookback.total_seconds()
        newest, count, reached_cutoff = previous, 0, False
        try:
            for item in _guarded(stream.label, stream.listing(), stream.subreddit):
                created = _created(item)
                if cutoff is not None and created < cutoff:
                    reached_cutoff = True
                    break  # sort=new: everything after this is older still
                count += 1
                newest = created if newest is None else max(newest, created)
                if isinstance(item, Submission):
                    self.submissions.setdefault(item.fullname, item)
                elif isinstance(item, Comment):
                    title = str(vars(item).get("link_title") or "")
                    self.comments.setdefault(item.fullname, (item, title))
        except _InputDenied as denied:
            self.failed_inputs += 1
            if stream.subreddit is not None:
                self.denied.add(stream.subreddit)
            self.ctx.warn(str(denied))
            return
        if newest is not None:
            self.newest[stream.key] = newest
        if previous is not None and count >= self.options.limit and not reached_cutoff:
            self.ctx.warn(
                f"{stream.label}: read the limit of {self.options.limit} items without reaching "
                "those of the last run; some may be missed. Raise [sources.reddit] limit or "
                "collect more often."
            )
        if self.ctx.progress:
            self.ctx.progress(f"reddit: {stream.label}: {count} items")

    def _expand_matched_threads(self) -> None:
        """Add the comments of the newest matched threads (one request per thread)."""
        matched = [
            s
            for s in self.submissions.values()
            if (vars(s).get("num_comments") or 0) > 0
            and self.matcher.matches(_submission_mention(s).full_text)
        ]
        matched.sort(key=_created, reverse=True)
        for submission in matched[: self.options.max_threads]:
            label = f"thread {REDDIT}{_clean_permalink(vars(submission).get('permalink'))}"
            try:
                forest = _guarded_call(label, partial(getattr, submission, "comments"))
                _guarded_call(label, partial(forest.replace_more, limit=0))
            except _InputDenied as denied:
                self.ctx.warn(str(denied))
                continue
            title = str(vars(submission).get("title") or "")
            for comment in forest.list():
                if isinstance(comment, Comment):
                    self.comments.setdefault(comment.fullname, (comment, title))


# -- errors ---------------------------------------------------------------------------------------


def _guarded(what: str, items: Iterable[Any], subreddit: str | None) -> Iterator[Any]:
    """Iterate a PRAW listing, turning its failures into _InputDenied or CollectorError."""
    iterator = iter(items)
    while True:
        try:
            item = _guarded_call(what, partial(next, iterator), subreddit)
        except StopIteration:
            return
        yield item


def _guarded_call(what: str, call: Callable[[], Any], subreddit: str | None = None) -> Any:
    """Return `call()`; raise _InputDenied for an input Reddit refuses, CollectorError else."""
    try:
        return call()
    except StopIteration:
        raise
    except RedditUnavailable as failure:
        raise CollectorError(
            f"Reddit {what}: {failure}. Reddit is rate-limiting or unavailable; "
            "the next run will try again."
        ) from None
    except prawcore.OAuthException as failure:
        raise CollectorError(
            f"Reddit refused the login ({failure.error}). Check [reddit] username and password "
            f"in {SECRETS_FILE}: the account must be a developer of the script app, and "
            "accounts with two-factor authentication cannot log in this way."
        ) from None
    except prawcore.InsufficientScope:
        raise CollectorError(
            "Reddit says the app's token lacks a permission (insufficient_scope). "
            + CREDENTIALS_HELP
        ) from None
    except (
        prawcore.Forbidden,
        prawcore.NotFound,
        prawcore.Redirect,
        prawcore.UnavailableForLegalReasons,
    ) as failure:
        if _is_token_request(failure):
            raise _credentials_error(failure) from None
        raise _InputDenied(_denied_message(what, failure, subreddit)) from None
    except prawcore.ResponseException as failure:
        status = failure.response.status_code
        if status == 401 or _is_token_request(failure):
            raise _credentials_error(failure) from None
        reason = failure.response.reason or ""
        raise CollectorError(f"Reddit {what}: unexpected answer HTTP {status} {reason}.") from None
    except praw.exceptions.RedditAPIException as failure:
        # PRAW turns a 400 whose body is not Reddit's JSON (an HTML page) into this.
        cause = failure.__cause__
        if isinstance(cause, prawcore.ResponseException):
            status = cause.response.status_code
            answer = f"HTTP {status} {cause.response.reason or ''}".strip()
        else:
            kinds = sorted({item.error_type for item in failure.items if item.error_type})
            answer = f"an API error ({', '.join(kinds)})"
        raise CollectorError(f"Reddit {what}: Reddit rejected the request with {answer}.") from None
    except prawcore.RequestException as failure:
        name = type(failure.original_exception).__name__
        raise CollectorError(f"Reddit {what}: the request could not be sent ({name}).") from None


def _is_token_request(failure: prawcore.ResponseException) -> bool:
    return urlsplit(str(failure.response.url)).path.endswith("/api/v1/access_token")


def _credentials_error(failure: prawcore.ResponseException) -> CollectorError:
    status = failure.response.status_code
    return CollectorError(f"Reddit refused the app credentials (HTTP {status}). {CREDENTIALS_HELP}")


def _denied_message(what: str, failure: prawcore.ResponseException, subreddit: str | None) -> str:
    status = failure.response.status_code
    if subreddit is None:
        return f"{what}: Reddit answered HTTP {status}; skipped this run."
    if isinstance(failure, prawcore.Forbidden):
        why = "access denied (HTTP 403): the subreddit is private, quarantined or banned"
    elif isinstance(failure, prawcore.UnavailableForLegalReasons):
        why = "unavailable for legal reasons (HTTP 451) where this monitor runs"
    elif isinstance(failure, prawcore.Redirect):
        why = f"no such subreddit (HTTP {status}, Reddit redirects to its search)"
    else:
        why = "not found (HTTP 404): the subreddit is banned, deleted or misspelt"
    return (
        f"r/{subreddit}: {why}. Its posts and comments are skipped; remove it from "
        "[sources.reddit] subreddits if it stays so."
    )


# -- mentions -------------------------------------------------------------------------------------


def _created(item: Any) -> float:
    return float(vars(item).get("created_utc") or 0.0)


def _clean_permalink(value: object) -> str:
    """Return a permalink path without the query Reddit sometimes adds (?ref=search_posts)."""
    return str(value or "").split("?", 1)[0]


def _author(data: Mapping[str, Any]) -> str:
    author = data.get("author")  # a praw Redditor, or None when deleted
    return str(author) if author is not None else "[deleted]"


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _submission_mention(submission: Any) -> Mention:
    # vars(): reading a missing attribute through PRAW would fetch the object again.
    data = vars(submission)
    permalink = _clean_permalink(data.get("permalink"))
    extra: dict[str, Any] = {
        "kind": "submission",
        "subreddit": str(data.get("subreddit") or ""),
        "permalink": permalink,
        "upvote_ratio": data.get("upvote_ratio"),
        "over_18": bool(data.get("over_18", False)),
    }
    if not data.get("is_self", True) and isinstance(data.get("url"), str):
        extra["link_url"] = data["url"]
    if data.get("link_flair_text"):
        extra["flair"] = str(data["link_flair_text"])
    return Mention(
        source=RedditCollector.name,
        external_id=submission.fullname,
        title=str(data.get("title") or ""),
        text=str(data.get("selftext") or ""),
        published_at=datetime.fromtimestamp(_created(submission), UTC),
        url=REDDIT + permalink,
        author=_author(data),
        score=_int_or_none(data.get("score")),
        comments=_int_or_none(data.get("num_comments")),
        extra=extra,
    )


def _comment_mention(comment: Any, thread_title: str) -> Mention:
    data = vars(comment)
    subreddit = str(data.get("subreddit") or "")
    link_id = str(data.get("link_id") or "")
    permalink = _clean_permalink(data.get("permalink"))
    if not permalink:
        submission = data.get("_submission")
        thread = _clean_permalink(vars(submission).get("permalink")) if submission else ""
        thread = thread or f"/r/{subreddit}/comments/{link_id.removeprefix('t3_')}/_/"
        permalink = f"{thread.rstrip('/')}/{comment.id}/"
    extra: dict[str, Any] = {
        "kind": "comment",
        "subreddit": subreddit,
        "permalink": permalink,
        "link_id": link_id,
        "parent_id": str(data.get("parent_id") or ""),
    }
    if thread_title:
        extra["thread_title"] = thread_title
    return Mention(
        source=RedditCollector.name,
        external_id=comment.fullname,
        text=str(data.get("body") or ""),
        published_at=datetime.fromtimestamp(_created(comment), UTC),
        url=REDDIT + permalink,
        author=_author(data),
        score=_int_or_none(data.get("score")),
        extra=extra,
    )
