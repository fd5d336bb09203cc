"""Run the real dashboard (`streamlit run app.py`) on a free loopback port for browser tests."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, _free_port

STARTUP_SECONDS = 60


def healthy(url: str) -> bool:
    """Return True once the Streamlit server at `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def streamlit_server(
    cwd: Path, env: Mapping[str, str], log: Path, port: int | None = None
) -> Iterator[str]:
    """Start `streamlit run app.py` from `cwd` with `env`, output to `log`, on `port` (default:
    a free one); yield its URL once healthy, and stop it afterwards. A server that does not
    start fails the test with its log."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "streamlit", "run", str(ROOT / "app.py")),
                *("--server.headless", "true", "--server.port", str(port)),
                *("--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"),
            ],
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not become healthy (exit code {process.poll()}):\n"
                    + log.read_text(errors="replace"),
                    pytrace=False,
                )
            time.sleep(0.25)  # poll interval of a bounded wait: nothing to wait on but HTTP
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
