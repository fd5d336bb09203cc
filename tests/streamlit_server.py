"""Run the real dashboard (`streamlit run app.py`) on a free loopback port for browser tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from monitor.bench import browser
from monitor.bench.run import BenchError


@contextmanager
def streamlit_server(
    cwd: Path, env: Mapping[str, str], log: Path, port: int | None = None
) -> Iterator[str]:
    """Start `streamlit run app.py` from `cwd` with `env`, output to `log`, on `port` (default:
    a free one); yield its URL once healthy, and stop it afterwards. A server that does not
    start fails the test with its log."""
    with ExitStack() as running:
        try:
            url = running.enter_context(browser.streamlit_server(cwd, env, log, port))
        except BenchError as failure:
            pytest.fail(str(failure), pytrace=False)
        yield url
