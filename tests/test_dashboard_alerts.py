"""The Alerts page and the overview's alert banner, on the demo scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from monitor import demo
from monitor.alerts.rules import DEFAULT_RULES
from monitor.models import Alert
from monitor.store import Store
from tests.conftest import ROOT, run_demo_mode

PAGE = "monitor/dashboard/alerts.py"


def open_page(path: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if path:
        at.switch_page(path)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_alerts_page_lists_open_alerts_and_acknowledges_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_copy: str, fresh_streamlit: None
) -> None:
    store = Store(run_demo_mode(monkeypatch, tmp_path, demo_copy))
    open_before = store.alerts(unacknowledged=True, limit=None)
    assert open_before
    at = open_page(PAGE)
    newest = open_before[0]
    assert any(newest.message in text.value for text in at.text)
    at.text_input(key=f"alerts_note_{newest.id}").set_value("Holding statement posted")
    at.button(key=f"FormSubmitter:alerts_ack_{newest.id}-Acknowledge").click().run()
    assert not at.exception
    handled = next(a for a in store.alerts(limit=None) if a.id == newest.id)
    assert handled.acknowledged_at is not None and handled.ack_note == "Holding statement posted"
    assert len(store.alerts(unacknowledged=True, limit=None)) == len(open_before) - 1
    store.close()


def test_alerts_page_says_which_rules_are_quiet_after_firing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_copy: str, fresh_streamlit: None
) -> None:
    store = Store(run_demo_mode(monkeypatch, tmp_path, demo_copy))
    fired = datetime.now(UTC) - timedelta(hours=1)
    store.add_alert(
        Alert("Negative surge", demo.BRAND.name, fired, "high", 0.5, 0.45, "50% negative")
    )
    store.close()
    at = open_page(PAGE)
    assert any(e.label.endswith(", 1 quiet after firing") for e in at.expander)
    (rules,) = [df.value for df in at.dataframe if "quiet until (UTC)" in df.value.columns]
    assert len(rules) == len(DEFAULT_RULES)
    quiet = rules.set_index(rules["rule"].str.split(" [", regex=False).str[0])
    until = fired + timedelta(hours=6)
    assert quiet.loc["Negative surge", "quiet until (UTC)"] == f"{until:%Y-%m-%d %H:%M}"
    assert quiet.loc["Negative surge", "last fired (UTC)"] == f"{fired:%Y-%m-%d %H:%M}"
    others = quiet.drop(index="Negative surge")["quiet until (UTC)"]
    assert list(others) == ["may fire now"] * (len(DEFAULT_RULES) - 1)


def test_back_test_marks_when_rules_would_have_fired(demo_env: str) -> None:
    at = open_page(PAGE)
    charts = [c for c in at.get("plotly_chart") if c.key == "alerts_replay_timeline"]
    assert len(charts) == 1
    assert '"name":"alert"' in charts[0].proto.spec.replace(" ", "")
    (table,) = [df.value for df in at.dataframe if "would have fired (UTC)" in df.value.columns]
    assert (table["would have fired (UTC)"] > demo.DISCLOSURE).all()


def test_overview_warns_about_unacknowledged_alerts_in_the_window(demo_env: str) -> None:
    at = open_page()
    assert any("not yet acknowledged" in w.value for w in at.warning)
