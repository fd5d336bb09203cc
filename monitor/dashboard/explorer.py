"""Mentions explorer: filter, sort, page through, and download exactly what is filtered."""

from __future__ import annotations

import math

import streamlit as st

from monitor import reports
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

st.caption(f"{total:,} mentions match: {components.markdown_text(query.describe())}.")
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

footer = st.columns([2, 2, 2, 3], vertical_alignment="bottom")
footer[0].number_input(
    f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="explorer_page"
)
export_format = footer[1].selectbox(
    "Download as",
    reports.DOWNLOAD_FORMATS,
    format_func=lambda f: reports.DOWNLOAD_LABELS[f],
    key="explorer_export_format",
    help="CSV alone; CSV zipped with its provenance manifest; or Excel, with the provenance "
    "on an About sheet.",
)
bom = footer[2].checkbox(
    "UTF-8 BOM (Excel)",
    key="explorer_export_bom",
    disabled=export_format == "xlsx",
    help="Start the CSV with a byte-order mark, so Excel shows accents and emoji correctly.",
)
redact = footer[2].checkbox(
    "Redact authors",
    key="explorer_export_redact",
    help="Replace author handles, and @handles in text and links, with pseudonyms that hold "
    "within this file only: for exports that leave the team.",
)
too_many = export_format == "xlsx" and total > reports.EXCEL_MAX_ROWS
stem = f"mentions_{view.window.start:%Y%m%d}-{view.window.last_day:%Y%m%d}"
footer[3].download_button(
    f"Download {reports.DOWNLOAD_LABELS[export_format]} ({total:,} rows)",
    data=lambda: data.export_download(
        view.settings,
        data.mentions_table(url, query),
        export_format,
        bom=bom and export_format != "xlsx",
        redact_authors=redact,
        stem=stem,
    ),
    file_name=reports.download_name(stem, export_format),
    mime=reports.MIME_TYPES[export_format],
    on_click="ignore",
    key="explorer_download",
    icon=":material/download:",
    disabled=total == 0 or too_many,
)
st.caption(
    "The download holds every filtered mention, not only this page: the same rows as "
    "`repmon export mentions`. Cells a spreadsheet would treat as formulas are prefixed with "
    "an apostrophe; the manifest (or the Excel file's About sheet) records the filters, "
    "sources, scorer, config hash and SHA-256 of the data."
    + (f" Excel holds at most {reports.EXCEL_MAX_ROWS:,} rows: use CSV." if too_many else "")
)
