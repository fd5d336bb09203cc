"""Mentions explorer: filter, sort, page through, and download exactly what is filtered."""

from __future__ import annotations

import math

import streamlit as st

from monitor.dashboard import components, data
from monitor.dashboard.filters import current_view
from monitor.models import LABELS
from monitor.scoring import topic_labels

PAGE_SIZE = 50
SORTABLE = {
    "newest": ("published_at", True),
    "oldest": ("published_at", False),
    "most engaged": ("engagement", True),
    "most negative": ("compound", False),
    "most positive": ("compound", True),
}

view = current_view()
url, version = view.database_url, view.version
st.title("Mentions")

topics = topic_labels()
columns = st.columns([2, 3, 3, 2])
labels = columns[0].multiselect("Label", LABELS, key="explorer_labels")
chosen_topics = columns[1].multiselect(
    "Topic", list(topics), format_func=lambda t: topics[t], key="explorer_topics"
)
search = columns[2].text_input("Text contains", key="explorer_search", placeholder="e.g. refund")
order = columns[3].selectbox("Sort", list(SORTABLE), key="explorer_sort")

query = view.query(labels=tuple(labels), topics=tuple(chosen_topics), search=search)
total = data.count(url, version, query)
pages = max(1, math.ceil(total / PAGE_SIZE))
st.session_state.setdefault("explorer_page", 1)
if st.session_state["explorer_page"] > pages:
    st.session_state["explorer_page"] = pages

st.caption(f"{total:,} mentions match: {query.describe()}.")
order_by, descending = SORTABLE[order]
page = int(st.session_state["explorer_page"])
frame = data.mentions_page(
    url,
    version,
    query,
    order_by=order_by,
    descending=descending,
    limit=PAGE_SIZE,
    offset=(page - 1) * PAGE_SIZE,
)
components.mentions_table(frame, key="explorer_table", height=600)

footer = st.columns([2, 2, 4])
footer[0].number_input(
    f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="explorer_page"
)
footer[1].download_button(
    f"Download CSV ({total:,} rows)",
    data=lambda: data.csv_download(url, query),
    file_name=f"mentions_{view.window.start:%Y%m%d}-{view.window.last_day:%Y%m%d}.csv",
    mime="text/csv",
    on_click="ignore",
    key="explorer_download",
    icon=":material/download:",
    disabled=total == 0,
)
footer[2].caption(
    "The CSV holds every filtered mention, not only this page; cells a spreadsheet would "
    "treat as formulas are prefixed with an apostrophe."
)
