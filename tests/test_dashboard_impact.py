"""The Impact page on the demo scenario, headless: it runs, and every number it shows is the
one `repmon report event-study --json` prints for the same event and window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from monitor import impact
from monitor.cli import main
from tests.conftest import ROOT

IMPACT = "monitor/dashboard/impact.py"


def open_impact(**state: object) -> AppTest:
    """Return the app switched to the Impact page, with widget `state` set before it draws."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(IMPACT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def cli_study(url: str, event: str) -> dict[str, Any]:
    """Return what `repmon report event-study --json --event EVENT` prints, parsed."""
    args = ["--database", url, "report", "event-study", "--json", "--event", event]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    studies = json.loads(result.output)["studies"]
    assert len(studies) == 1
    study: dict[str, Any] = studies[0]
    return study


def shown_sentences(at: AppTest) -> list[str]:
    """Return the headline: the bulleted sentences under "What changed"."""
    bullets = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(bullets) == 1, bullets
    return [line.removeprefix("- ") for line in bullets[0].splitlines()]


def shown_tables(at: AppTest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the overall metrics table and the per-source table."""
    frames = [d.value for d in at.dataframe]
    overall = [f for f in frames if "source" not in f.columns]
    by_source = [f for f in frames if "source" in f.columns]
    assert len(overall) == 1 and len(by_source) == 1, [list(f.columns) for f in frames]
    return overall[0], by_source[0]


_NUMBER = re.compile(r"^([+-]?[\d,]*\.?\d+)(%?)")


def close_to(text: str, expected: float | None, *, points: bool = False) -> bool:
    """Return whether a shown cell is `expected` to the precision shown (n/a for None).

    Percentages and percentage points are shown x 100.
    """
    if expected is None:
        return text == "n/a"
    found = _NUMBER.match(text)
    assert found, f"{text!r} is not a number"
    digits = found.group(1).replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale = 100.0 if found.group(2) or points else 1.0
    return abs(float(digits) / scale - expected) <= 0.5 * 10**-decimals / scale + 1e-9


def assert_rows_match(shown: pd.DataFrame, metrics: list[Mapping[str, Any]]) -> None:
    """Check a shown metrics table cell by cell against the CLI's JSON entries."""
    assert list(shown["metric"]) == [m["name"] for m in metrics]
    for (_, cells), entry in zip(shown.iterrows(), metrics, strict=True):
        expected = impact.metric_cells(entry)
        assert cells["before"] == expected["before"] and cells["after"] == expected["after"]
        assert cells["difference"] == expected["difference"]
        assert cells["95% CI"] == expected["CI"] and cells["p"] == expected["p"]
        assert cells["note"] == entry["reason"]
        # And independently of the formatter: the numbers are the JSON's, as rounded on screen.
        is_share = entry["metric"] == "share_negative"
        assert close_to(cells["before"], entry["before"]), (cells, entry)
        assert close_to(cells["after"], entry["after"]), (cells, entry)
        assert close_to(cells["difference"], entry["difference"], points=is_share)
        if entry["ci_low"] is not None:
            low, high = cells["95% CI"].split(" to ")
            assert close_to(low, entry["ci_low"], points=is_share)
            assert close_to(high, entry["ci_high"], points=is_share)
        if entry["p_value"] is not None and not cells["p"].startswith("<"):
            assert close_to(cells["p"], entry["p_value"])


def test_impact_page_shows_the_cli_numbers_for_every_window(demo_env: str) -> None:
    at = open_impact()
    assert [t.value for t in at.title] == ["Northwind Bank: impact of events"]
    assert at.selectbox(key="impact_event").value == 0  # the disclosure comes first
    assert at.radio(key="impact_window").value == 7
    expected = cli_study(demo_env, "Breach disclosed")
    assert expected["event"]["label"] == "Breach disclosed"

    for days in (7, 1, 28):
        if days != 7:
            at.radio(key="impact_window").set_value(days).run()
            assert not at.exception, [e.value for e in at.exception]
        result = next(w for w in expected["windows"] if w["window"]["days"] == days)
        assert shown_sentences(at) == [m["sentence"] for m in result["overall"]["metrics"]]
        overall, by_source = shown_tables(at)
        assert_rows_match(overall, result["overall"]["metrics"])
        for group in result["by_source"]:
            rows = by_source[by_source["source"] == group["source"]].reset_index(drop=True)
            assert_rows_match(rows, group["metrics"])
        assert set(by_source["source"]) == {"news", "reddit", "reviews"}
        window = result["window"]
        span = f"{window['start'][:16].replace('T', ' ')} to {window['end'][:16].replace('T', ' ')}"
        captions = [c.value for c in at.caption]
        assert sum(f"after: {span} UTC" in c for c in captions) >= 3, captions
        assert any("all sources (news, reddit, reviews)" in c for c in captions)

    share = next(m for m in result["overall"]["metrics"] if m["metric"] == "share_negative")
    assert share["sentence"].startswith("Negative share rose from ")
    statements = [m.value for m in at.markdown]
    assert expected["recovery"]["statement"] in statements
    charts = [chart.key for chart in at.get("plotly_chart")]
    assert charts == ["impact_comparison", "impact_recovery", "impact_topics"]


def test_another_event_matches_the_cli_too(demo_env: str) -> None:
    at = open_impact(impact_event=2)  # so the page studies only this event
    assert at.selectbox(key="impact_event").value == 2
    at.radio(key="impact_window").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = cli_study(demo_env, "CEO apology")
    result = next(w for w in expected["windows"] if w["window"]["days"] == 1)
    assert shown_sentences(at) == [m["sentence"] for m in result["overall"]["metrics"]]
    assert_rows_match(shown_tables(at)[0], result["overall"]["metrics"])
    assert any(c.value.startswith("CEO apology, 2024-05-18 15:00 UTC.") for c in at.caption)


def test_impact_page_without_events_explains_what_to_configure(
    demo_env: str, tmp_path: Path
) -> None:
    (tmp_path / "monitor.toml").write_text('[brand]\nname = "Acme"\n', encoding="utf-8")
    at = open_impact()
    assert any("No event is configured" in info.value for info in at.info)
    assert not at.dataframe and not at.get("plotly_chart")
