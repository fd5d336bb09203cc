"""Shared fixtures: real SQLite files, a real PostgreSQL server, and no network but loopback.

Tests that need something this machine may lack (Chromium, PostgreSQL, ../shared) call
`require(...)`: it skips with the reason, unless REPMON_NO_SKIP=1 (set by CI), where a
missing part fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import streamlit as st

from monitor import demo
from monitor.models import Mention
from monitor.scoring import default_scorer
from monitor.store import Store
from tests.replay import ReplayServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPMON_SHARED", ROOT.parent / "shared"))
NO_SKIP = os.environ.get("REPMON_NO_SKIP") == "1"
CHROMIUM = Path(os.environ.get("REPMON_CHROMIUM", "/usr/bin/chromium"))


def require(condition: object, reason: str) -> None:
    """Skip the test with `reason` if `condition` is false; fail instead under REPMON_NO_SKIP=1."""
    if condition:
        return
    if NO_SKIP:
        pytest.fail(f"REPMON_NO_SKIP=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared/data, skipping (or failing in CI) when it is absent."""
    path = SHARED.joinpath("data", *parts)
    require(path.exists(), f"{path} is absent (the shared data folder is not beside the repo)")
    return path


# -- no network -------------------------------------------------------------------------------
# pyproject's addopts pass --allow-hosts=127.0.0.1,::1 to pytest-socket: every other address is
# refused before a packet is sent (tests/test_network_guard.py proves it).


# -- factories --------------------------------------------------------------------------------

_ids = count(1)


def make_mention(**fields: Any) -> Mention:
    """Return a scored mention with sensible defaults; any field can be overridden."""
    values: dict[str, Any] = {
        "source": "reddit",
        "external_id": f"m{next(_ids)}",
        "text": "Northwind Bank support sorted my card in five minutes",
        "published_at": datetime(2024, 5, 1, 12, tzinfo=UTC),
    }
    values.update(fields)
    mention = Mention(**values)
    if "compound" not in fields:
        default_scorer().score_mentions([mention])
    return mention


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """Return a store on a fresh SQLite file."""
    db = Store(sqlite_url)
    yield db
    db.close()


# -- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return candidates[0].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Return the URL of a PostgreSQL server: $REPMON_TEST_POSTGRES_URL, or a throwaway cluster."""
    given = os.environ.get("REPMON_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        require(False, "PostgreSQL is not installed (apt-get install postgresql)")
        return
    # Not under pytest's temp tree: that is private to the current user, and initdb refuses
    # to run as root, so a root user runs the cluster as `postgres` in a folder it owns.
    data = Path(tempfile.mkdtemp(prefix="repmon-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    cluster = data / "cluster"
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(cluster), "-A", "trust", "-U", "repmon"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(cluster),
            "-o",
            options,
            "-w",
            "-l",
            str(data / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://repmon@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """Return the URL of a fresh, empty database on the PostgreSQL server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Return a fresh store, once on a SQLite file and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Store(url)
    yield db
    db.close()


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    """Return a running loopback HTTP server that replays canned responses."""
    with ReplayServer() as server:
        yield server


# -- the demo scenario and the dashboard --------------------------------------------------------


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return a SQLite file holding the demo scenario, built once per session.

    Shared: tests only read it. A test that writes (acknowledging an alert) uses `demo_copy`.
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    db = Store(url)
    try:
        demo.build(db)
    finally:
        db.close()
    return url


@pytest.fixture
def demo_copy(demo_url: str, tmp_path: Path) -> str:
    """Return a private copy of the demo database (SQLite's backup API: safe with WAL)."""
    target = tmp_path / "demo-copy.db"
    with (
        sqlite3.connect(demo_url.removeprefix("sqlite:///")) as source,
        sqlite3.connect(target) as copy,
    ):
        source.backup(copy)
    return f"sqlite:///{target}"


@pytest.fixture
def fresh_streamlit() -> Iterator[None]:
    """Forget Streamlit's caches and secrets around a test: they are per process and would
    leak between tests (Streamlit keeps the first secrets.toml it reads)."""
    from streamlit.runtime.secrets import secrets_singleton

    st.cache_data.clear()
    st.cache_resource.clear()
    secrets_singleton._reset()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    secrets_singleton._reset()


def run_demo_mode(monkeypatch: pytest.MonkeyPatch, folder: Path, database_url: str) -> str:
    """Point the app and the CLI at `database_url` in demo mode (no monitor.toml); return it."""
    monkeypatch.setenv("MONITOR_DATABASE_URL", database_url)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.chdir(folder)
    assert not (folder / "monitor.toml").exists()
    return database_url


@pytest.fixture
def demo_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_url: str, fresh_streamlit: None
) -> str:
    """Run the app in demo mode on the shared demo database; return its URL."""
    return run_demo_mode(monkeypatch, tmp_path, demo_url)
