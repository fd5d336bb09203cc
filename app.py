"""Streamlit entry point: `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from monitor.config import ConfigError
from monitor.dashboard import data, filters

st.set_page_config(
    page_title="Reputation monitor", page_icon=":material/monitoring:", layout="wide"
)

try:
    settings = data.settings()
except ConfigError as problem:
    st.error(f"The monitor could not start: {problem}")
    st.stop()

data.ensure_demo(settings)
if settings.is_demo:
    st.info(
        "**Demo data.** This is a fictional bank, Northwind Bank, in a made-up breach. To monitor "
        "your own brand, create `monitor.toml` with your `[brand]` and disclosure `[[events]]` "
        "(see the README, Configuration) and restart the app.",
        icon=":material/science:",
    )

st.session_state["view"] = filters.sidebar(settings)
page = st.navigation(
    [
        st.Page(
            "monitor/dashboard/overview.py",
            title="Overview",
            icon=":material/dashboard:",
            default=True,
        ),
        st.Page("monitor/dashboard/explorer.py", title="Mentions", icon=":material/table_rows:"),
        st.Page("monitor/dashboard/impact.py", title="Impact", icon=":material/compare_arrows:"),
        st.Page("monitor/dashboard/alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page("monitor/dashboard/sources.py", title="Sources", icon=":material/rss_feed:"),
    ]
)
page.run()
