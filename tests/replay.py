"""A real HTTP server on 127.0.0.1 that replays recorded responses, for collector tests.

    with ReplayServer() as server:
        server.add("/rss", body=b"<rss>...", headers={"Content-Type": "application/rss+xml"},
                   etag='"v1"')
        url = server.url("/rss")

Routes match on the path, or on path plus query when the route was added with one. A route
with an ETag or Last-Modified answers a matching conditional request with 304 and no body.
Every request is logged (method, path, query, headers, body) in `server.requests`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    # Further responses for repeated requests (e.g. a 500 then a 200); the last one repeats.
    then: list[Route] = field(default_factory=list)
    hits: int = 0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class ReplayServer:
    """Serve canned responses on an ephemeral loopback port."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with server._lock:
                    server.requests.append(request)
                    route = server.routes.get(self.path) or server.routes.get(parts.path)
                    if route is not None:
                        step = (
                            route
                            if route.hits == 0 or not route.then
                            else route.then[min(route.hits - 1, len(route.then) - 1)]
                        )
                        route.hits += 1
                if route is None:
                    self._send(
                        404,
                        b'{"message": "Not Found", "error": 404}',
                        {"Content-Type": "application/json"},
                    )
                    return
                if step.delay:
                    time.sleep(step.delay)
                if step.etag and request.headers.get("if-none-match") == step.etag:
                    self._send(304, b"", {"ETag": step.etag})
                    return
                if (
                    step.last_modified
                    and request.headers.get("if-modified-since") == step.last_modified
                ):
                    self._send(304, b"", {"Last-Modified": step.last_modified})
                    return
                headers = dict(step.headers)
                if step.etag:
                    headers["ETag"] = step.etag
                if step.last_modified:
                    headers["Last-Modified"] = step.last_modified
                self._send(step.status, step.body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    # Say so when this answer ends the connection, or a client may reuse it.
                    self.send_header("Connection", "close")
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve
            do_HEAD = _serve

        class Server(ThreadingHTTPServer):
            # The default listen backlog of 5 drops some of 32 concurrent connects (the news
            # collector's default bound): the client then sees a reset, not the server's answer.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        """Return the server's base URL, e.g. http://127.0.0.1:54321."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Return the absolute URL of `path` on this server."""
        return self.base + path

    def add(self, path: str, **route: Any) -> Route:
        """Serve `path` (optionally with ?query) as described; return the route."""
        self.routes[path] = Route(**route)
        return self.routes[path]

    def requests_to(self, path: str) -> list[Request]:
        """Return the logged requests for `path` (query ignored)."""
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
