"""Streamlit entry point: `streamlit run app.py`.

The access gate runs first: when sign-in is configured (docs/deployment.md), nothing below it
(the demo banner, the sidebar, the navigation, any query) runs until the visitor is through.
"""

from __future__ import annotations

import streamlit as st

from monitor.config import ConfigError
from monitor.dashboard import auth, data, filters

st.set_page_config(
    page_title="Reputation monitor", page_icon=":material/monitoring:", layout="wide"
)

# Declaring the pages runs none of them; the gate needs their addresses for deep links.
pages = [
    st.Page(
        "monitor/dashboard/overview.py", title="Overview", icon=":material/dashboard:", default=True
    ),
    st.Page("monitor/dashboard/explorer.py", title="Mentions", icon=":material/table_rows:"),
    st.Page("monitor/dashboard/impact.py", title="Impact", icon=":material/compare_arrows:"),
    st.Page("monitor/dashboard/alerts.py", title="Alerts", icon=":material/notifications:"),
    st.Page("monitor/dashboard/sources.py", title="Sources", icon=":material/rss_feed:"),
]
access = auth.gate(pages)

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
auth.account_panel(access)
page = st.navigation(pages)
page.run()
