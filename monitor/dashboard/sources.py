"""Sources: what each source is, how its recent runs went, and a button to collect now."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from monitor.collectors import REGISTRY
from monitor.dashboard import data
from monitor.dashboard.components import markdown_text
from monitor.dashboard.filters import current_view
from monitor.models import latest_run_per_source
from monitor.pipeline import collect, enabled_sources

STATUS_ICONS = {
    "ok": "✅ ok",
    "partial": "⚠️ partial",
    "failed": "❌ failed",
    "running": "⏳ running",
    "interrupted": "⛔ interrupted",
}

view = current_view()
settings = view.settings
st.title("Sources")

enabled = enabled_sources(settings)


if settings.is_demo:
    st.info(
        "The demo scenario has no live sources. Add `[sources.NAME]` tables to `monitor.toml` "
        "(see the README, Sources) to collect from Reddit, news feeds, app reviews and more."
    )

# Collect first, so the tables below already show this run's outcome.
if st.button(
    "Collect now",
    type="primary",
    disabled=not enabled,
    help="Run every enabled source once." if enabled else "No source is enabled in monitor.toml.",
    key="sources_collect",
    icon=":material/sync:",
):
    store = data.store(view.database_url)
    with st.status("Collecting…", expanded=True) as status:
        bar = st.progress(0.0)
        done: list[str] = []

        def report(message: str) -> None:
            st.write(markdown_text(message))  # names feeds and their failures: not Markdown
            if message.endswith((": ok", ": partial", ": failed")):
                done.append(message)
                bar.progress(len(done) / len(enabled))

        results = collect(store, settings, on_progress=report)
        failed = [r.source for r in results if r.status == "failed"]
        new = sum(r.new for r in results)
        label = f"Collected: {new:,} new mentions" + (
            f"; failed: {', '.join(failed)}" if failed else ""
        )
        status.update(label=label, state="error" if failed else "complete", expanded=bool(failed))


runs = data.recent_runs(view.database_url)
last = latest_run_per_source(runs)

st.subheader("Configured sources")
rows = []
for name in sorted(REGISTRY):
    run = last.get(name)
    rows.append(
        {
            "source": name,
            "enabled": name in enabled,
            "what it reads": REGISTRY[name].description,
            "last run (UTC)": run.started_at if run else None,
            "status": STATUS_ICONS.get(run.status, run.status) if run else "never run",
            "new": run.new if run else None,
            "problem": (run.error.splitlines() or [""])[0] if run else "",
        }
    )
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    column_config={
        "last run (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "problem": st.column_config.TextColumn(width="large"),
    },
    key="sources_table",
)

st.subheader("Recent runs")
st.caption("The last 50 collection runs and imports, newest first. Times are UTC.")
if not runs:
    st.info("No collection has run yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "started": r.started_at,
                    "source": r.source,
                    "status": STATUS_ICONS.get(r.status, r.status),
                    "new": r.new,
                    "updated": r.updated,
                    "unchanged": r.unchanged,
                    "duplicates": r.duplicates,
                    "skipped": r.skipped,
                    "seconds": (r.finished_at - r.started_at).total_seconds()
                    if r.finished_at
                    else None,
                    "problems": r.error,
                }
                for r in runs
            ]
        ),
        hide_index=True,
        column_config={
            "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "seconds": st.column_config.NumberColumn(format="%.1f"),
            "problems": st.column_config.TextColumn(width="large"),
        },
        key="sources_runs",
    )
