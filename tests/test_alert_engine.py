"""The alert engine: cooldowns keyed on rule and brand, history, and replay over real data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import demo
from monitor.alerts import engine
from monitor.alerts.rules import DEFAULT_RULES, Rule
from monitor.cli import main
from monitor.config import BrandConfig, Settings, load_settings
from monitor.models import Alert
from monitor.pipeline import import_file
from monitor.store import Store
from tests.conftest import ROOT, make_mention, shared_path

NOW = datetime(2024, 5, 14, 18, tzinfo=UTC)
SURGE = Rule(
    "Negative surge",
    "negative_share",
    severity="high",
    window=timedelta(hours=6),
    threshold=0.4,
    min_mentions=5,
    min_history=timedelta(0),
    cooldown=timedelta(hours=6),
)


def settings(*rules: Rule) -> Settings:
    return Settings(brand=BrandConfig("Northwind Bank"), alert_rules=rules)


def negative_burst(store: Store, at: datetime, count: int = 8, prefix: str = "n") -> None:
    store.upsert_mentions(
        [
            make_mention(
                external_id=f"{prefix}{i}",
                text=f"Northwind breach, furious #{i}",
                published_at=at - timedelta(minutes=5 * i),
                score=10 * i,
                url=f"https://x.example/{prefix}{i}",
            )
            for i in range(count)
        ]
    )


def test_check_stores_what_fires_and_the_cooldown_holds_it_back(store: Store) -> None:
    negative_burst(store, NOW)
    sent: list[str] = []

    def send(alert, _settings):  # type: ignore[no-untyped-def]
        sent.append(alert.rule)
        return ["json://127.0.0.1"], []

    first = engine.check(store, settings(SURGE), now=NOW, send=send)
    assert [a.rule for a in first.fired] == ["Negative surge"]
    assert sent == ["Negative surge"]
    stored = store.alerts()
    assert len(stored) == 1 and stored[0].severity == "high" and stored[0].value == 1.0
    assert stored[0].evidence[0]["engagement"] == 70  # most engaged first
    # Within the cooldown: nothing new, nothing sent.
    negative_burst(store, NOW + timedelta(hours=2), prefix="m")
    assert engine.check(store, settings(SURGE), now=NOW + timedelta(hours=2), send=send).fired == []
    assert sent == ["Negative surge"]
    # After it: fires again.
    negative_burst(store, NOW + timedelta(hours=7), prefix="k")
    assert (
        len(engine.check(store, settings(SURGE), now=NOW + timedelta(hours=7), send=send).fired)
        == 1
    )


def test_a_rule_that_keeps_firing_stays_quiet_longer_each_time(store: Store) -> None:
    growing = replace(SURGE, max_cooldown=timedelta(hours=24))
    fired_at = []
    for hours in (0, 6, 12, 18, 30, 42):
        moment = NOW + timedelta(hours=hours)
        negative_burst(store, moment, prefix=f"h{hours}-")
        fired_at += [a.fired_at for a in engine.check(store, settings(growing), now=moment).fired]
    # Quiet for 6h, then 12h, then 24h: the checks at 12h and 30h find it still quiet.
    assert fired_at == [NOW + timedelta(hours=h) for h in (0, 6, 18, 42)]
    stored = list(reversed(store.alerts()))
    assert [a.fired_at for a in stored] == fired_at
    # From the second alert on, each says when the next may come, so silence is not calm.
    assert "keeps firing" not in stored[0].message
    for alert, wait in zip(stored[1:], (12, 24, 24), strict=True):
        until = alert.fired_at + timedelta(hours=wait)
        assert alert.message.endswith(
            f"It keeps firing: the next alert from this rule comes no sooner than "
            f"{until:%Y-%m-%d %H:%M} UTC, in {wait} hours."
        ), alert.message


def test_a_crisis_that_lasts_is_announced_less_and_less_often(demo_url: str) -> None:
    surge = next(rule for rule in DEFAULT_RULES if rule.name == "Negative surge")
    assert surge.max_cooldown == timedelta(hours=24)
    since, until = demo.DISCLOSURE - timedelta(days=1), demo.DISCLOSURE + timedelta(days=30)
    db = Store(demo_url)
    try:
        growing = [a.fired_at for a in engine.replay(db, settings(surge), since, until)]
        fixed = replace(surge, max_cooldown=None)
        every_six_hours = [a.fired_at for a in engine.replay(db, settings(fixed), since, until)]
    finally:
        db.close()
    # The same first alert, the hour the crisis broke; then far fewer repeats.
    assert growing[0] == every_six_hours[0]
    assert len(every_six_hours) >= 1.5 * len(growing) > 3
    gaps = [later - earlier for earlier, later in pairwise(growing)]
    assert gaps[:2] == [timedelta(hours=6), timedelta(hours=12)]
    assert min(gaps) >= timedelta(hours=6)
    # Once it has fired three times in a row (each within a day and a quarter of the one
    # before), it is announced at most daily until a calm.
    streak = surge.max_cooldown + surge.cooldown  # type: ignore[operator]
    for before, previous, gap in zip(gaps, gaps[1:], gaps[2:], strict=False):
        if before <= streak and previous <= streak:
            assert gap >= timedelta(hours=24)


def test_rule_states_say_which_rule_is_quiet_and_until_when(store: Store) -> None:
    growing = replace(SURGE, max_cooldown=timedelta(hours=24))
    negative_burst(store, NOW)
    engine.check(store, settings(growing), now=NOW)
    (state,) = engine.rule_states(store, settings(growing), now=NOW + timedelta(hours=1))
    assert (state.last_fired, state.quiet_until) == (NOW, NOW + timedelta(hours=6))
    (later,) = engine.rule_states(store, settings(growing), now=NOW + timedelta(hours=6))
    assert (later.last_fired, later.quiet_until) == (NOW, None)


def test_cli_lists_the_rules_with_their_quiet_periods(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    fired = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    store.add_alert(
        Alert("Negative surge", "Northwind Bank", fired, "high", 0.5, 0.45, "50% negative")
    )
    runner = CliRunner()
    listed = runner.invoke(main, ["--database", store.url, "alerts", "rules"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split(" [")[0]: line for line in listed.output.splitlines()}
    assert set(lines) == {rule.name for rule in DEFAULT_RULES}
    quiet = fired + timedelta(hours=6)
    assert lines["Negative surge"].endswith(f"(quiet until {quiet:%Y-%m-%d %H:%M} UTC)")
    assert "quiet until" not in lines["Volume spike"]


def test_cooldown_is_per_brand(store: Store) -> None:
    negative_burst(store, NOW)
    engine.check(store, settings(SURGE), now=NOW)
    other = Settings(brand=BrandConfig("Harbor Mutual"), alert_rules=(SURGE,))
    assert len(engine.check(store, other, now=NOW + timedelta(minutes=1)).fired) == 1


def test_replay_lists_when_rules_would_have_fired_without_storing(store: Store) -> None:
    hourly = Rule(
        "Negative hour",
        "negative_share",
        window=timedelta(hours=1),
        threshold=0.4,
        min_mentions=5,
        min_history=timedelta(0),
        cooldown=timedelta(hours=6),
    )
    negative_burst(store, NOW)
    negative_burst(store, NOW + timedelta(hours=3), prefix="b")  # inside the cooldown
    negative_burst(store, NOW + timedelta(hours=9), prefix="c")
    fired = engine.replay(
        store, settings(hourly), NOW - timedelta(hours=6), NOW + timedelta(hours=12)
    )
    assert [a.fired_at for a in fired] == [NOW, NOW + timedelta(hours=9)]
    assert store.alerts() == []


def test_cli_replay_json_has_the_documented_fields(store: Store, tmp_path: Path) -> None:
    negative_burst(store, NOW)
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[brand]\nname = "Northwind Bank"\n[[alerts.rules]]\nname = "Negative surge"\ntype = "negative_share"\n'
        'window = "6h"\nthreshold = 0.4\nmin_mentions = 5\nmin_history = "0h"\nseverity = "high"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(config),
            "--database",
            store.url,
            "alerts",
            "replay",
            "--since",
            "2024-05-14",
            "--until",
            "2024-05-14",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.output)
    assert {"rule", "fired_at", "severity", "value", "threshold", "evidence"} <= set(alert)
    assert alert["fired_at"] == "2024-05-14T18:00:00Z"
    assert (alert["rule"], alert["severity"], alert["value"], alert["threshold"]) == (
        "Negative surge",
        "high",
        1.0,
        0.4,
    )
    assert alert["evidence"][0]["url"].startswith("https://x.example/")


def test_cli_check_list_and_acknowledge(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    now = datetime.now(UTC)
    store.upsert_mentions(
        [make_mention(external_id="history", published_at=now - timedelta(days=2))]
    )
    negative_burst(store, now, count=25)
    runner = CliRunner()
    checked = runner.invoke(main, ["--database", store.url, "alerts", "check", "--no-send"])
    assert checked.exit_code == 0, checked.output
    assert "Negative surge" in checked.output
    listed = runner.invoke(main, ["--database", store.url, "alerts", "list", "--open"])
    alert_id = int(listed.output.split()[0].lstrip("#"))
    acked = runner.invoke(
        main,
        [
            "--database",
            store.url,
            "alerts",
            "ack",
            str(alert_id),
            "--note",
            "holding statement out",
        ],
    )
    assert acked.exit_code == 0
    assert runner.invoke(main, ["--database", store.url, "alerts", "list", "--open"]).output == ""
    missing = runner.invoke(main, ["--database", store.url, "alerts", "ack", "999"])
    assert missing.exit_code == 1 and "no alert #999" in missing.output


@pytest.fixture(scope="module")
def home_depot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Settings]:
    """The real 2014 $HD tweets imported with the example config's rules."""
    tweets = shared_path("real", "homedepot-breach-2014-tweets", "HD_raw_tweets_2014-2015.jsonl")
    url = f"sqlite:///{tmp_path_factory.mktemp('hd') / 'hd.db'}"
    config = load_settings(ROOT / "examples" / "homedepot-2014.toml", database_url=url)
    store = Store(url)
    import_file(store, config, tweets, fmt="twitter-jsonl")
    return store, config


def test_home_depot_2014_replay_fires_first_on_the_breach_afternoon(
    home_depot: tuple[Store, Settings],
) -> None:
    """The real tweets: quiet through the summer and the 2014-08-19 earnings spike, then the
    first alert within 48 hours of the first breach report (2014-09-02 17:30 UTC)."""
    store, config = home_depot
    fired = engine.replay(
        store, config, datetime(2014, 6, 1, tzinfo=UTC), datetime(2014, 10, 31, tzinfo=UTC)
    )
    first_report = datetime(2014, 9, 2, 17, 30, tzinfo=UTC)
    assert fired, "nothing fired on the breach"
    assert all(a.fired_at >= first_report for a in fired)
    assert fired[0].fired_at - first_report <= timedelta(hours=48)
    breach_evidence = " ".join(e["text"] for e in fired[0].evidence).lower()
    assert "breach" in breach_evidence


def test_home_depot_2014_event_study_shows_the_breach_topic_rising(
    home_depot: tuple[Store, Settings],
) -> None:
    from monitor import impact

    store, config = home_depot
    assert config.disclosure is not None
    study = impact.run_event_study(
        store, config.disclosure, impact.StudyOptions(n_resamples=500)
    ).to_dict()
    week = next(w for w in study["windows"] if w["window"]["days"] == 7)
    topics = {t["topic"]: t for t in week["topics"]}
    assert topics["breach"]["before"] == 0.0
    assert topics["breach"]["after"] > 0.3
    assert max(week["topics"], key=lambda t: t["change"])["topic"] == "breach"


def test_a_collection_run_fires_an_alert_that_reaches_the_webhook(
    store: Store, replay_server
) -> None:  # type: ignore[no-untyped-def]
    from monitor.collectors.http import HttpClient
    from monitor.pipeline import collect

    now = datetime.now(UTC)
    stamp = now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    items = "".join(
        f"<item><title>Northwind Bank breach: furious customers, data stolen #{i}</title>"
        f"<link>https://news.example/{i}</link><pubDate>{stamp}</pubDate></item>"
        for i in range(6)
    )
    replay_server.add(
        "/feed.xml",
        body=f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>".encode(),
        headers={"Content-Type": "application/rss+xml"},
    )
    replay_server.add("/hook", body=b"{}", headers={"Content-Type": "application/json"})
    store.upsert_mentions(
        [make_mention(external_id="history", published_at=now - timedelta(days=3))]
    )
    config = Settings(
        brand=BrandConfig("Northwind Bank"),
        sources={"news": {"feeds": [replay_server.url("/feed.xml")]}},
        alert_rules=(SURGE,),
        secrets={
            "alerts": {"notify": [f"json://127.0.0.1:{replay_server.base.rsplit(':', 1)[1]}/hook"]}
        },
    )
    (run,) = collect(store, config, http=HttpClient(attempts=1, timeout=5))
    assert run.new == 6
    (alert,) = store.alerts()
    assert alert.rule == "Negative surge"
    (post,) = replay_server.requests_to("/hook")
    payload = json.loads(post.body)
    assert "Negative surge" in payload["title"] and "Northwind Bank" in payload["title"]
    assert "https://news.example/" in payload["message"]
