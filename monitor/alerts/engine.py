"""The alert engine: evaluates the configured rules, keeps each quiet after it fires (its
cooldown, growing while it keeps firing), stores and sends alerts.

`check` runs the rules once at `now` (after every collection, and by `repmon alerts check`).
`replay` runs them over stored history, step by step, as if live, and lists when each would
have fired: the way to tune thresholds on your own data. Rules themselves are pure
(monitor/alerts/rules.py); this module does the I/O around them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pandas as pd

from monitor.alerts.rules import Finding, Rule, evaluate, quiet_until
from monitor.config import Settings
from monitor.models import Alert, utcnow
from monitor.store import Store

log = logging.getLogger(__name__)

REPLAY_STEP = timedelta(hours=1)


@dataclass
class CheckResult:
    """What one check did: alerts fired and stored, and where each was sent."""

    fired: list[Alert] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def to_alert(finding: Finding, brand: str) -> Alert:
    """Return the Alert record of a finding."""
    return Alert(
        rule=finding.rule.name,
        kind=finding.rule.type,
        brand=brand,
        fired_at=finding.at,
        severity=finding.rule.severity,
        value=round(finding.value, 4),
        threshold=finding.threshold,
        message=finding.message,
        evidence=finding.evidence,
    )


def load_frame(
    store: Store, since: datetime, until: datetime, rules: Sequence[Rule] = ()
) -> pd.DataFrame:
    """Return the mentions published in [since, until) in time order, as the rules read them.

    Given the `rules`, mentions older than their longest window are read only for what the
    rules' baselines use (time, label, and source or topics when a rule is narrowed to
    some): at a million stored mentions that is most of the rows and most of the cost.
    """
    recent = until - max((rule.window for rule in rules), default=until - since)
    if recent <= since:
        return store.rule_frame(since, until)
    baseline = ["label"]
    baseline += ["source"] if any(rule.sources for rule in rules) else []
    baseline += ["topics"] if any(rule.topics for rule in rules) else []
    older = store.rule_frame(since, recent, baseline)
    newer = store.rule_frame(recent, until)
    return pd.concat([older, newer], ignore_index=True) if len(older) else newer


def with_texts(store: Store, finding: Finding) -> Finding:
    """Return `finding` with the title, text and url of the mentions it cites filled in."""
    cited = store.mentions_by_id([e["id"] for e in finding.evidence if "id" in e])
    evidence = []
    for item in finding.evidence:
        found = cited.get(item.pop("id", None), {})  # ids are internal: not kept in history
        evidence.append(
            {
                **item,
                "title": str(found.get("title", item["title"])),
                "text": str(found.get("text", item["text"]))[:500],
                "url": str(found.get("url", item["url"])),
            }
        )
    return replace(finding, evidence=evidence)


def with_quiet_note(finding: Finding, fired_before: Sequence[datetime]) -> Finding:
    """Return `finding`, its message saying when the rule may fire next if it keeps firing
    and so stays quiet longer than its cooldown (the team should not take silence for calm)."""
    rule = finding.rule
    until = quiet_until(rule, [*fired_before, finding.at])
    if until is None or until - finding.at <= rule.cooldown:
        return finding
    hours = (until - finding.at) / timedelta(hours=1)
    note = (
        f"It keeps firing: the next alert from this rule comes no sooner than "
        f"{until:%Y-%m-%d %H:%M} UTC, in {hours:g} hours."
    )
    return replace(finding, message=f"{finding.message} {note}")


@dataclass(frozen=True)
class RuleState:
    """Where a rule stands at a moment: when it last fired, and until when it stays quiet
    (None: it may fire at the next check)."""

    rule: Rule
    last_fired: datetime | None
    quiet_until: datetime | None


def rule_states(store: Store, settings: Settings, now: datetime | None = None) -> list[RuleState]:
    """Return the state of every rule in force at `now` (default: the current time)."""
    now = now or utcnow()
    states = []
    for rule in settings.alert_rules:
        fired = store.fired_times(rule.name, settings.brand.name, rule.remembered_alerts)
        quiet = quiet_until(rule, fired)
        states.append(
            RuleState(
                rule,
                fired[-1] if fired else None,
                quiet if quiet is not None and quiet > now else None,
            )
        )
    return states


def check(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    send: Callable[[Alert, Settings], tuple[list[str], list[str]]] | None = None,
) -> CheckResult:
    """Evaluate every rule at `now`, store what fires (outside its quiet period) and send it."""
    now = now or utcnow()
    rules = settings.alert_rules
    result = CheckResult()
    if not rules:
        return result
    horizon = max(rule.lookback for rule in rules)
    frame = load_frame(store, now - horizon, now + timedelta(microseconds=1), rules)
    bounds = store.time_bounds()
    data_start = bounds[0] if bounds else None
    for rule in rules:
        fired = store.fired_times(rule.name, settings.brand.name, rule.remembered_alerts)
        quiet = quiet_until(rule, fired)
        if quiet is not None and now < quiet:
            continue
        finding = evaluate(rule, frame, now, data_start=data_start)
        if finding is None:
            continue
        finding = with_quiet_note(finding, fired)
        alert = store.add_alert(to_alert(with_texts(store, finding), settings.brand.name))
        result.fired.append(alert)
        if send is not None:
            delivered, failed = send(alert, settings)
            result.delivered.extend(delivered)
            result.failed.extend(failed)
    return result


def replay(
    store: Store,
    settings: Settings,
    since: datetime,
    until: datetime,
    *,
    rules: Sequence[Rule] | None = None,
    step: timedelta = REPLAY_STEP,
) -> list[Alert]:
    """Return the alerts the rules would have fired between `since` and `until`, oldest first.

    The rules are evaluated at every `step` on the mentions published up to that moment,
    with cooldowns applied as live. Nothing is stored or sent. Engagement is as stored now
    (a post's final score), which can make viral-post rules fire earlier than they would have.
    """
    rules = tuple(settings.alert_rules if rules is None else rules)
    if not rules or until <= since:
        return []
    horizon = max(rule.lookback for rule in rules)
    frame = load_frame(store, since - horizon, until)
    bounds = store.time_bounds()
    data_start = bounds[0] if bounds else None
    fired_at: dict[str, list[datetime]] = {rule.name: [] for rule in rules}
    fired: list[Alert] = []
    moment = since + step
    while moment <= until:
        for rule in rules:
            quiet = quiet_until(rule, fired_at[rule.name])
            if quiet is not None and moment < quiet:
                continue
            finding = evaluate(rule, frame, moment, data_start=data_start)
            if finding is not None:
                finding = with_quiet_note(finding, fired_at[rule.name])
                fired_at[rule.name].append(moment)
                fired.append(to_alert(with_texts(store, finding), settings.brand.name))
        moment += step
    return fired
