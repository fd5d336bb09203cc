"""The collectors' HTTP client against a real loopback server."""

from __future__ import annotations

import pytest

from monitor.collectors.http import FetchError, HttpClient
from tests.replay import ReplayServer


def client(**options: object) -> HttpClient:
    waits: list[float] = []
    http = HttpClient(timeout=1.0, backoff=0.01, sleep=waits.append, **options)  # type: ignore[arg-type]
    http.waits = waits  # type: ignore[attr-defined]
    return http


def test_sends_a_user_agent_and_returns_the_body(replay_server: ReplayServer) -> None:
    replay_server.add("/feed", body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})
    with client(user_agent="repmon-test/1") as http:
        response = http.get(replay_server.url("/feed"))
    assert (response.status, response.body) == (200, b"<rss/>")
    assert response.headers["content-type"] == "application/rss+xml"
    assert replay_server.requests[0].headers["user-agent"] == "repmon-test/1"


def test_conditional_get_gets_a_304_without_a_body(replay_server: ReplayServer) -> None:
    replay_server.add(
        "/feed", body=b"<rss>v1</rss>", etag='"v1"', last_modified="Tue, 14 May 2024 16:00:00 GMT"
    )
    with client() as http:
        first = http.get(replay_server.url("/feed"))
        second = http.get(
            replay_server.url("/feed"), etag=first.etag, last_modified=first.last_modified
        )
    assert first.etag == '"v1"' and not first.not_modified
    assert second.not_modified and second.body == b""
    assert replay_server.requests[1].headers["if-none-match"] == '"v1"'
    assert replay_server.requests[1].headers["if-modified-since"] == "Tue, 14 May 2024 16:00:00 GMT"


def test_a_body_over_the_cap_is_refused(replay_server: ReplayServer) -> None:
    replay_server.add("/big", body=b"x" * 5000)
    with client(max_bytes=1000) as http, pytest.raises(FetchError, match="too large"):
        http.get(replay_server.url("/big"))


def test_429_is_retried_after_the_time_the_server_asks(replay_server: ReplayServer) -> None:
    route = replay_server.add("/busy", status=429, headers={"Retry-After": "7"})
    route.then = [type(route)(status=200, body=b"ok")]
    with client() as http:
        response = http.get(replay_server.url("/busy"))
        assert http.waits == [7.0]  # type: ignore[attr-defined]
    assert response.body == b"ok"


def test_5xx_gives_up_after_the_attempts_with_the_status_named(replay_server: ReplayServer) -> None:
    replay_server.add("/down", status=503)
    with client(attempts=3) as http:
        with pytest.raises(FetchError) as failure:
            http.get(replay_server.url("/down"))
        assert http.requests == 3
    assert "HTTP 503" in str(failure.value) and "gave up after 3 attempts" in str(failure.value)
    assert failure.value.url.endswith("/down")


def test_a_404_is_not_retried(replay_server: ReplayServer) -> None:
    with client() as http:
        with pytest.raises(FetchError, match="HTTP 404"):
            http.get(replay_server.url("/missing"))
        assert http.requests == 1


def test_redirects_are_followed_but_bounded(replay_server: ReplayServer) -> None:
    replay_server.add("/old", status=301, headers={"Location": "/new"})
    replay_server.add("/new", body=b"moved here")
    for i in range(7):
        replay_server.add(f"/loop{i}", status=302, headers={"Location": f"/loop{i + 1}"})
    with client() as http:
        assert http.get(replay_server.url("/old")).body == b"moved here"
        with pytest.raises(FetchError, match="too many redirects"):
            http.get(replay_server.url("/loop0"))


def test_a_slow_server_times_out(replay_server: ReplayServer) -> None:
    replay_server.add("/slow", body=b"late", delay=1.5)
    with client(attempts=1) as http, pytest.raises(FetchError, match="timed out"):
        http.get(replay_server.url("/slow"))
