"""Alerts: what fired and why, acknowledging with a note, and replaying the rules on history."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from monitor import analysis, reports
from monitor.alerts.rules import describe_rule
from monitor.dashboard import components, data
from monitor.dashboard.filters import current_view, timeline_window
from monitor.models import Alert, safe_http_url

SEVERITY_COLOURS = {"critical": "red", "high": "red", "medium": "orange", "low": "yellow"}


def _minute(moment: datetime | None, otherwise: str) -> str:
    """Return a UTC time to the minute, or `otherwise` when there is none."""
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else otherwise


view = current_view()
settings = view.settings
url = view.database_url
st.title("Alerts")

states = data.rule_states(url, settings)
quiet = [state for state in states if state.quiet_until is not None]
with st.expander(
    f"Rules in force ({len(states)})" + (f", {len(quiet)} quiet after firing" if quiet else "")
):
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "rule": describe_rule(state.rule),
                    "last fired (UTC)": _minute(state.last_fired, "never"),
                    "quiet until (UTC)": _minute(state.quiet_until, "may fire now"),
                }
                for state in states
            ]
        ),
        hide_index=True,
        key="alerts_rules",
        column_config={"rule": st.column_config.TextColumn(width="large")},
    )
    st.caption(
        "A rule that fired stays quiet for its cooldown, longer while it keeps firing (see "
        "docs/alerts.md). Set the rules in "
        "monitor.toml, [[alerts.rules]]; the defaults and their reasoning are in docs/alerts.md."
    )


def evidence_table(alert: Alert, key: str) -> None:
    """Draw an alert's evidence: text as text, only http(s) links clickable."""
    rows = pd.DataFrame(
        [
            {
                "published (UTC)": item.get("published_at", ""),
                "source": item.get("source", ""),
                "engagement": item.get("engagement"),
                "what was said": " ".join(
                    f"{item.get('title', '')} {item.get('text', '')}".split()
                )[:280],
                "link": safe_http_url(item.get("url", "")),
            }
            for item in alert.evidence
        ]
    )
    if rows.empty:
        return
    st.dataframe(
        rows,
        hide_index=True,
        key=key,
        column_config={
            "what was said": st.column_config.TextColumn(width="large"),
            "link": st.column_config.LinkColumn(display_text="open"),
        },
    )


st.subheader("Open alerts")
open_alerts = data.alerts(url, unacknowledged=True, limit=20)
if not open_alerts:
    st.success("No alert is waiting to be acknowledged.")
for alert in open_alerts:
    with st.container(border=True):
        colour = SEVERITY_COLOURS.get(alert.severity, "gray")
        st.badge(alert.severity.upper(), color=colour)  # type: ignore[arg-type]
        st.caption(f"Fired {alert.fired_at:%Y-%m-%d %H:%M} UTC")
        st.text(f"{alert.rule}: {alert.message}")
        evidence_table(alert, key=f"alerts_evidence_{alert.id}")
        with st.form(key=f"alerts_ack_{alert.id}", border=False):
            note = st.text_input(
                "What was done",
                key=f"alerts_note_{alert.id}",
                placeholder="e.g. holding statement posted",
            )
            if st.form_submit_button("Acknowledge"):
                data.acknowledge(url, int(alert.id or 0), note)
                st.rerun()

st.subheader("History")
history = data.alerts(url, limit=500)
if history:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "fired (UTC)": a.fired_at,
                    "severity": a.severity,
                    "rule": a.rule,
                    "value": a.value,
                    "threshold": a.threshold,
                    "what": a.message,
                    "acknowledged": a.acknowledged_at,
                    "note": a.ack_note,
                }
                for a in history
            ]
        ),
        hide_index=True,
        key="alerts_history",
        column_config={
            "fired (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "acknowledged": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "what": st.column_config.TextColumn(width="large"),
        },
    )
else:
    st.info("No alert has fired yet.")

if history:
    every_alert = data.alerts(url, limit=None)
    alerts_export = reports.alerts_table(every_alert, sources=view.all_sources)
    export = st.columns([2, 2, 4], vertical_alignment="bottom")
    export_format = export[0].selectbox(
        "Download the alert history as",
        reports.DOWNLOAD_FORMATS,
        format_func=lambda f: reports.DOWNLOAD_LABELS[f],
        key="alerts_export_format",
        help="Every stored alert, oldest first, with its evidence's count and top mention: "
        "the same file as `repmon export alerts`.",
    )
    bom = export[1].checkbox(
        "UTF-8 BOM (Excel)",
        key="alerts_export_bom",
        disabled=export_format == "xlsx",
        help="Start the CSV with a byte-order mark, so Excel shows accents and emoji correctly.",
    )
    redact = export[1].checkbox(
        "Redact authors",
        key="alerts_export_redact",
        help="Replace @handles in messages, evidence text and links with pseudonyms that hold "
        "within this file only: for exports that leave the team.",
    )
    export[2].download_button(
        f"Download {reports.DOWNLOAD_LABELS[export_format]} ({len(every_alert):,} alerts)",
        data=lambda: data.export_download(
            settings,
            alerts_export,
            export_format,
            bom=bom and export_format != "xlsx",
            redact_authors=redact,
            stem="alerts",
        ),
        file_name=reports.download_name("alerts", export_format),
        mime=reports.MIME_TYPES[export_format],
        on_click="ignore",
        key="alerts_export_download",
        icon=":material/download:",
    )

st.subheader("Back-test the rules on your history")
st.caption(
    "Replays the rules in force hour by hour over stored mentions, as if live (quiet periods "
    "included; nothing is stored or sent), and marks when each would have fired. Engagement "
    "is as stored now, so viral-post rules may fire earlier than they would have."
)
span = timeline_window(view)
replayed = data.replay(
    url, view.version, settings, repr(settings.alert_rules), span.start, span.end
)
daily = data.daily_counts(url, view.version, view.query(span))
series = analysis.daily_series(daily, span)
st.plotly_chart(
    components.timeline_figure(series, data.events(settings), view.window, alerts=replayed),
    key="alerts_replay_timeline",
)
st.caption(
    f"{span.describe()}; {view.describe_sources()}. Markers: when a rule would have fired "
    f"({len(replayed)} in all)."
)
if replayed:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "would have fired (UTC)": a.fired_at,
                    "severity": a.severity,
                    "rule": a.rule,
                    "what": a.message,
                }
                for a in replayed
            ]
        ),
        hide_index=True,
        key="alerts_replay_table",
        column_config={
            "would have fired (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "what": st.column_config.TextColumn(width="large"),
        },
    )
