"""No secret ever leaves: not in output, logs, exports, briefings, the dashboard or the database.

Recognisable fake secrets (FAKE-SECRET-<what>-<uuid>) are planted everywhere a secret can be
configured: Reddit's client secret and password, the SMTP password and webhook credentials of
the alert channels, a PostgreSQL password (in the URL's user info, and in its query string,
where libpq also reads one), the dashboard password, OIDC client and cookie secrets. Once
through `.streamlit/secrets.toml`, once through environment variables (with PostgreSQL as the
store).

Then everything that produces output runs with failures forced: every source answers 401 or
500 from a loopback server (whose error pages echo back what they were sent), the SMTP port
refuses connections and the webhook answers 500. Searched for each secret's unique part (so
its URL-encoded, quoted or JSON forms are caught too) and for the Basic-auth encodings:
stdout and stderr of every command (in process and as a real subprocess), Python logging at
DEBUG (httpx, httpcore, urllib3, prawcore, apprise and SQLAlchemy included), every export
(CSV, manifest, and the XML inside each XLSX), the briefing, every dashboard page (each
element's full content), every table of the database, and the raw bytes of the SQLite file.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from streamlit.testing.v1 import AppTest

from monitor.cli import main
from monitor.models import utcnow
from monitor.pipeline import ingest
from monitor.store import Store
from tests.conftest import ROOT, make_mention

pytestmark = pytest.mark.usefixtures("fresh_streamlit", "fresh_secrets")

BRAND = "Northwind Bank"
PAGES = (
    "monitor/dashboard/overview.py",
    "monitor/dashboard/explorer.py",
    "monitor/dashboard/impact.py",
    "monitor/dashboard/alerts.py",
    "monitor/dashboard/sources.py",
)
# Loggers that see requests, credentials or SQL parameters: all of them at DEBUG.
LOGGERS = (
    "",
    "httpx",
    "httpcore",
    "urllib3",
    "requests",
    "prawcore",
    "praw",
    "apprise",
    "sqlalchemy.engine",
    "monitor",
)


@pytest.fixture
def fresh_secrets() -> Iterator[None]:
    """Make Streamlit read this test's secrets.toml: it keeps the first it read per process."""
    from streamlit.runtime.secrets import secrets_singleton

    secrets_singleton._reset()
    yield
    secrets_singleton._reset()


# -- a loopback server that fails every request and tells the world what it was sent -------------


def _echo(handler: BaseHTTPRequestHandler, body: bytes) -> bytes:
    """Return what a careless server puts in an error page: the request, headers and body."""
    headers = "".join(f"{k}: {v}\n" for k, v in handler.headers.items())
    return f"{handler.command} {handler.path}\n{headers}\n".encode() + body


class FailingHandler(BaseHTTPRequestHandler):
    """401 for credentials and Mastodon, 500 for the rest; every answer echoes the request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        status = (
            401 if path.endswith(("/access_token", "/401.xml")) or "/timelines/" in path else 500
        )
        payload = _echo(self, body)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Retry-After", "0")  # retried at once: the test need not wait
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing when a client hangs up early: refusing clients is this server's job."""


@pytest.fixture
def failing_server() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), FailingHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """Return a loopback port nothing listens on (a refused connection)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the secrets and where to look for them ------------------------------------------------------


@dataclass
class Secrets:
    """The planted fake secrets, by name, and the forms a leak of each could take."""

    values: dict[str, str] = field(default_factory=dict)
    extra_forms: dict[str, str] = field(default_factory=dict)  # form -> the secret it reveals

    def plant(self, name: str, tail: str = "") -> str:
        """Return a new recognisable secret for `name`; `tail` adds characters URLs must encode."""
        value = f"FAKE-SECRET-{name}-{uuid.uuid4().hex}{tail}"
        self.values[name] = value
        return value

    def add_basic_auth(self, user: str, name: str) -> None:
        """Also look for the HTTP Basic credentials of `user` with the secret `name`."""
        token = base64.b64encode(f"{user}:{self.values[name]}".encode()).decode()
        self.extra_forms[token] = name

    def needles(self) -> dict[bytes, str]:
        """Return every byte string whose presence reveals a secret, with the secret's name."""
        found: dict[bytes, str] = {}
        for name, value in self.values.items():
            unique = value.split("-")[-1][:32]  # the uuid: survives URL-encoding and quoting
            for form in (value, quote(value, safe=""), unique):
                found[form.encode()] = name
        found.update({form.encode(): name for form, name in self.extra_forms.items()})
        return found


@dataclass
class Evidence:
    """Everything the runs produced, by where it came from."""

    items: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, where: str, content: str | bytes) -> None:
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        self.items.append((where, data))

    def add_result(self, where: str, result: Result) -> None:
        self.add(f"{where}: output", result.output)
        self.add(f"{where}: stderr", result.stderr)
        if result.exc_info is not None and not isinstance(result.exception, SystemExit):
            self.add(f"{where}: exception", "".join(traceback.format_exception(*result.exc_info)))

    def add_file(self, path: Path) -> None:
        self.add(f"file {path.name}", path.read_bytes())
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as workbook:
                for member in workbook.namelist():
                    self.add(f"file {path.name}!{member}", workbook.read(member))

    def leaks(self, secrets: Secrets) -> list[str]:
        """Return "secret in where" for every secret found anywhere, each place once."""
        found = {
            f"{name} in {where}"
            for where, data in self.items
            for needle, name in secrets.needles().items()
            if needle in data
        }
        return sorted(found)


# -- the world: config, secrets, failing sources, stored data --------------------------------


@dataclass
class World:
    folder: Path
    database_url: str
    secrets: Secrets
    env: dict[str, str]  # what a subprocess needs on top of the test's environment
    dashboard_password: str


def write_config(folder: Path, server: str) -> None:
    (folder / "monitor.toml").write_text(
        f"""
[brand]
name = "{BRAND}"
aliases = ["Northwind"]

[[events]]
at = "2024-05-14T16:00:00Z"
label = "Breach disclosed"
kind = "disclosure"

[sources.reddit]
oauth_url = "{server}"
reddit_url = "{server}"
subreddits = ["banking"]
attempts = 1
backoff = "0s"

[sources.news]
feeds = ["{server}/feeds/401.xml", "{server}/feeds/500.xml"]

[sources.hackernews]
base_url = "{server}"

[sources.mastodon]
instances = ["{server}"]
tags = ["northwindbank"]
""",
        encoding="utf-8",
    )


def notify_urls(secrets: Secrets, webhook: str) -> list[str]:
    """Return alert channels holding secrets: refused SMTP, and a webhook that answers 500."""
    smtp = quote(secrets.plant("smtp-password", "/+?#"), safe="")
    hook_user = quote(secrets.plant("webhook-password", "@:"), safe="")
    secrets.add_basic_auth("hook", "webhook-password")  # what the webhook's request carries
    token = secrets.plant("webhook-token")
    query = secrets.plant("webhook-query")
    host = webhook.removeprefix("http://")
    return [
        f"mailto://alerts:{smtp}@127.0.0.1:{closed_port()}?mode=insecure"
        "&from=monitor@example.com&to=pr@example.com",
        f"json://hook:{hook_user}@{host}/services/{token}?key={query}",
        f"form://{host}/hooks/{token}",
    ]


@pytest.fixture(params=["secrets-file", "environment"])
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    failing_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    """Plant the secrets (in .streamlit/secrets.toml, or in the environment) and some data."""
    secrets = Secrets()
    folder = tmp_path / "deploy"
    folder.mkdir()
    write_config(folder, failing_server)
    for name in [n for n in os.environ if n.startswith(("MONITOR_", "praw_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(folder)
    env: dict[str, str] = {}
    reddit_secret = secrets.plant("reddit-client-secret")
    reddit_password = secrets.plant("reddit-password", " &=")
    secrets.add_basic_auth("FAKE-ID-reddit", "reddit-client-secret")
    dashboard_password = secrets.plant("dashboard-password")
    urls = notify_urls(secrets, failing_server)

    if request.param == "secrets-file":
        database_url = f"sqlite:///{folder / 'monitor.db'}"
        unused_pg = secrets.plant("unused-postgres-password")
        (folder / ".streamlit").mkdir()
        table = {
            "storage": {"url": f"postgresql://repmon:{unused_pg}@127.0.0.1:1/monitor"},
            "reddit": {
                "client_id": "FAKE-ID-reddit",
                "client_secret": reddit_secret,
                "username": "northwind-social",
                "password": reddit_password,
            },
            "alerts": {"notify": urls},
            "access": {"password": dashboard_password},
        }
        (folder / ".streamlit" / "secrets.toml").write_text(to_toml(table), encoding="utf-8")
        # The environment outranks the secrets file: the planted PostgreSQL URL stays unused.
        env["MONITOR_DATABASE_URL"] = database_url
    else:
        base = str(request.getfixturevalue("postgres_url"))
        pg_password = quote(secrets.plant("postgres-password", "@/:"), safe="")
        # libpq also reads a password from the query string. The test server trusts every
        # login, so the URL works with any password in it.
        pg_query = quote(secrets.plant("postgres-query-password"), safe="")
        database_url = base.replace("repmon@", f"repmon:{pg_password}@", 1)
        database_url += f"?password={pg_query}&application_name=repmon"
        env.update(
            MONITOR_DATABASE_URL=database_url,
            MONITOR_NOTIFY_URLS=" ".join(urls),
            MONITOR_DASHBOARD_PASSWORD=dashboard_password,
            praw_client_id="FAKE-ID-reddit",
            praw_client_secret=reddit_secret,
            praw_username="northwind-social",
            praw_password=reddit_password,
        )
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    store = Store(database_url)
    now = utcnow()
    ingest(
        store,
        [
            make_mention(
                source="news",
                external_id="viral",
                title="Northwind Bank breach: customers furious, savings stolen",
                text="Northwind Bank hid the breach for weeks. Disgraceful and dangerous.",
                url="https://paper.example/viral",
                score=5000,
                comments=800,
                published_at=now - timedelta(hours=2),
            ),
            *(
                make_mention(
                    source="reddit",
                    text=f"Northwind Bank support thread {i}: still waiting on my new card",
                    published_at=now - timedelta(days=i % 40, hours=i % 24),
                )
                for i in range(60)
            ),
        ],
    )
    store.close()
    return World(folder, database_url, secrets, env, dashboard_password)


def to_toml(table: dict[str, dict[str, Any]]) -> str:
    """Return a secrets.toml (JSON strings are valid TOML basic strings)."""
    lines: list[str] = []
    for name, values in table.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


# -- what runs ----------------------------------------------------------------------------------


def run_commands(world: World, evidence: Evidence) -> None:
    """Run every command that prints, exports or sends, in process; keep all they produce."""
    out = world.folder / "out"
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(main, list(args))
        evidence.add_result("repmon " + " ".join(args), result)
        return result

    collected = run("collect")
    assert collected.exit_code == 1, collected.output  # every source failed, as arranged
    assert "401" in collected.output and "500" in collected.output
    run("sources")
    run("status")
    checked = run("alerts", "check")
    assert "Viral negative post" in checked.output, checked.output
    assert "not delivered" in checked.output  # both channels failed, as arranged
    run("alerts", "list")
    run("alerts", "replay", "--since", "2024-05-01", "--until", utcnow().date().isoformat())
    run("report", "event-study", "--resamples", "200")
    for kind in ("mentions", "daily", "event-study", "alerts"):
        for suffix in ("csv", "xlsx"):
            target = out / f"{kind}.{suffix}"
            extra = ["--resamples", "200"] if kind == "event-study" else []
            exported = run("export", kind, "--out", str(target), *extra)
            assert exported.exit_code == 0, exported.output
            evidence.add_file(target)
            if suffix == "csv":
                evidence.add_file(target.with_name(f"{kind}.manifest.json"))
    briefed = run("brief", "--out", str(out / "brief.html"), "--send")
    assert briefed.exit_code == 1 and "not delivered" in briefed.output
    evidence.add_file(out / "brief.html")


def run_subprocesses(world: World, evidence: Evidence) -> None:
    """Run the real `repmon` for what a cron job or a terminal shows: stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "praw_"))}
    env.update(world.env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    for args in (["collect"], ["alerts", "check"], ["status"]):
        done = subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            cwd=world.folder,
            env=env,
            capture_output=True,
            timeout=300,
        )
        evidence.add(f"subprocess repmon {' '.join(args)}: stdout", done.stdout)
        evidence.add(f"subprocess repmon {' '.join(args)}: stderr", done.stderr)


def element_bytes(node: Any) -> Iterator[bytes]:
    """Yield the serialised protobuf of every element under `node`: text, tables and charts."""
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "SerializeToString"):
        yield proto.SerializeToString()
    for child in getattr(node, "children", {}).values():
        yield from element_bytes(child)


def browse_dashboard(world: World, evidence: Evidence) -> None:
    """Sign in, open every page (the Sources page lists the failed runs), press Collect now."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="access_password").input(world.dashboard_password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    for page in PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        evidence.add(f"dashboard {page}", b"\n".join(element_bytes(at._tree)))
    sources_text = b"".join(element_bytes(at._tree))
    assert b"failed" in sources_text and b"401" in sources_text  # the failed runs are shown
    # "Collect now" shows each source's progress and outcome on the page as it runs.
    at.button(key="sources_collect").click().run()
    assert not at.exception, [e.value for e in at.exception]
    evidence.add("dashboard: Collect now", b"\n".join(element_bytes(at._tree)))


def read_database(url: str, evidence: Evidence) -> None:
    """Add every row of every table, and for SQLite the raw bytes of the files."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        tables = sa.inspect(engine).get_table_names()
        assert {"mentions", "collection_runs", "alerts", "cursors", "meta"} <= set(tables)
        with engine.connect() as conn:
            for table in tables:
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                evidence.add(f"table {table}", "\n".join(repr(tuple(row)) for row in rows))
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        database = Path(sa.engine.make_url(url).database or "")
        for path in database.parent.glob(database.name + "*"):  # the file, -wal and -shm
            evidence.add(f"raw {path.name}", path.read_bytes())


# -- the test -----------------------------------------------------------------------------------


def test_no_planted_secret_appears_in_any_output(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    evidence = Evidence()
    run_commands(world, evidence)
    browse_dashboard(world, evidence)
    run_subprocesses(world, evidence)

    runs = Store(world.database_url)
    try:
        recorded = {run.source: run for run in runs.recent_runs(50)}
    finally:
        runs.close()
    # The failures really happened, and the secrets were really used: Reddit refused them.
    assert {"reddit", "news", "hackernews", "mastodon"} <= recorded.keys()
    assert all(recorded[s].status == "failed" for s in ("reddit", "hackernews", "mastodon"))
    assert "credentials" in recorded["reddit"].error

    read_database(world.database_url, evidence)
    evidence.add("log records", caplog.text)
    for record in caplog.records:
        evidence.add(f"log {record.name}", f"{record.getMessage()} {record.exc_text or ''}")
    assert len(caplog.records) > 100  # DEBUG logging was really on

    leaks = evidence.leaks(world.secrets)
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("mistake", [None, "password too"])
def test_the_sign_in_page_shows_no_secret(
    mistake: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OIDC sign-in (and the page of a sign-in mistake) never shows the client or cookie secret."""
    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    auth = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": secrets.plant("cookie-secret"),
        "client_id": "FAKE-ID-oidc",
        "client_secret": secrets.plant("oidc-client-secret"),
        "server_metadata_url": f"http://127.0.0.1:{closed_port()}/.well-known/openid-configuration",
    }
    secrets.add_basic_auth("FAKE-ID-oidc", "oidc-client-secret")
    table: dict[str, dict[str, Any]] = {"auth": auth}
    if mistake:  # both sign-in kinds at once: refused, with a page that says why
        table["access"] = {"password": secrets.plant("dashboard-password")}
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(to_toml(table), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_DATABASE_URL", f"sqlite:///{tmp_path / 'monitor.db'}")
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets.update(table)
    at.run()
    if mistake is None:
        assert [t.value for t in at.title] == ["Sign in"]
        at.button(key="access_login").click().run()
    else:
        assert [t.value for t in at.title] == ["Sign-in is misconfigured"]
    evidence = Evidence()
    evidence.add("sign-in page", b"\n".join(element_bytes(at._tree)))
    evidence.add("exceptions", repr([e.value for e in at.exception]))
    evidence.add("log records", caplog.text)
    leaks = evidence.leaks(secrets)
    assert not leaks, "\n".join(leaks)
