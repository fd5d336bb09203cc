"""One careful HTTP client for every collector that reads the web.

Timeouts, a cap on body size, a bounded number of redirects, a User-Agent that says who we
are, conditional GET (ETag / Last-Modified), and retries with backoff on 429 and 5xx that
honour Retry-After. Failures raise FetchError with the URL and the reason.

One HttpClient may be used from several threads at once: httpx.Client is documented as
shareable between threads (its connection pool takes a lock), the retry state is built per
call, and the request counter has its own lock. `fetch_all` runs independent fetches (feeds,
app x country inputs) on a bounded thread pool and hands the outcomes back in input order.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Generic, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

DEFAULT_USER_AGENT = f"repmon/{version('repmon')} (self-hosted reputation monitor)"
MAX_BYTES = 10 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0


class FetchError(Exception):
    """A request failed; `str()` names the URL and says why."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched resource, or the news that it has not changed (HTTP 304)."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        """Return True when the server said the resource has not changed since last time."""
        return self.status == 304

    @property
    def etag(self) -> str | None:
        """Return the response's ETag, if any."""
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        """Return the response's Last-Modified, if any."""
        return self.headers.get("last-modified")


class _Retryable(Exception):
    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class HttpClient:
    """A small, safe wrapper around httpx.Client for collectors."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 20.0,
        max_bytes: int = MAX_BYTES,
        attempts: int = 3,
        backoff: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_bytes = max_bytes
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self.requests = 0  # how many requests went out, retries included
        self._count_lock = threading.Lock()  # `+=` is not atomic across threads
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """Fetch `url`; send If-None-Match / If-Modified-Since when given. Raise FetchError."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            hinted = failure.retry_after if isinstance(failure, _Retryable) else None
            exponential = wait_exponential(multiplier=self.backoff, max=30)(state)
            return min(hinted, MAX_RETRY_AFTER) if hinted is not None else exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(self._get_once, url, params, request_headers)
        except _Retryable as exhausted:
            raise FetchError(
                exhausted.error.url,
                f"{exhausted.error.reason} (gave up after {self.attempts} attempts)",
                exhausted.error.status,
            ) from None

    def _get_once(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> Response:
        with self._count_lock:
            self.requests += 1
        try:
            with self._client.stream("GET", url, params=params, headers=headers) as response:
                status = response.status_code
                final_url = str(response.url)
                if status in RETRY_STATUSES:
                    error = FetchError(final_url, f"HTTP {status} {response.reason_phrase}", status)
                    raise _Retryable(
                        error, retry_after_seconds(response.headers.get("retry-after"))
                    )
                if status >= 400:
                    raise FetchError(final_url, f"HTTP {status} {response.reason_phrase}", status)
                body = self._read_capped(response, final_url)
                return Response(
                    url=final_url,
                    status=status,
                    body=body,
                    headers={k.lower(): v for k, v in response.headers.items()},
                )
        except httpx.TimeoutException:
            raise _Retryable(FetchError(url, "timed out"), None) from None
        except httpx.TooManyRedirects:
            raise FetchError(url, "too many redirects (more than 5)") from None
        except httpx.TransportError as exc:
            raise _Retryable(
                FetchError(url, f"connection failed ({type(exc).__name__})"), None
            ) from None

    def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                url, f"response too large ({int(declared):,} bytes; limit {self.max_bytes:,})"
            )
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(url, f"response too large (over {self.max_bytes:,} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)


def retry_after_seconds(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks for (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """What one input of `fetch_all` gave: its value, or the exception its fetch raised."""

    index: int  # the item's position in the input
    item: T
    value: R | None = None
    error: Exception | None = None

    def get(self) -> R:
        """Return the value, or raise the fetch's exception (like Future.result())."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # None only when R allows it


def fetch_all(
    items: Iterable[T],
    fetch: Callable[[T], R],
    *,
    max_parallel: int,
    in_order: bool = True,
) -> Iterator[Outcome[T, R]]:
    """Run `fetch(item)` for every item, at most `max_parallel` at once, and yield the outcomes.

    The fetches must be independent. One raising never stops the others: its exception is
    kept in its Outcome. With `in_order` an outcome is yielded once it and every earlier one
    are done; without, as soon as it is done (put them back in order with `Outcome.index`),
    which lets the caller parse early answers while slow ones are still downloading.

    `fetch` runs on worker threads, so it should only fetch: whatever touches shared state
    (the cursor, ctx.problems, progress callbacks, which may draw on a UI bound to the calling
    thread) belongs in the caller's loop, which runs on the calling thread. With
    `max_parallel` 1, or a single item, no thread is started.
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
    inputs = list(items)
    if max_parallel == 1 or len(inputs) <= 1:
        for index, item in enumerate(inputs):
            yield _attempt(fetch, index, item)
        return
    pool = ThreadPoolExecutor(
        max_workers=min(max_parallel, len(inputs)), thread_name_prefix="repmon-fetch"
    )
    try:
        futures = [pool.submit(_attempt, fetch, i, item) for i, item in enumerate(inputs)]
        for future in futures if in_order else as_completed(futures):
            yield future.result()
    finally:
        # If the caller stopped early (an error, Ctrl-C, a closed generator), drop what has not
        # started and return at once: a fetch in flight touches nothing but the client, and
        # ends with its timeout or when the client is closed.
        pool.shutdown(wait=False, cancel_futures=True)


def _attempt(fetch: Callable[[T], R], index: int, item: T) -> Outcome[T, R]:
    try:
        return Outcome(index, item, fetch(item))
    except Exception as error:  # kept for the caller: one input must not stop the others
        return Outcome(index, item, error=error)
