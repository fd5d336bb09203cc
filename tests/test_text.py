"""Plain text from HTML, for every source: nothing a renderer could revive survives."""

from __future__ import annotations

import pytest

from monitor.text import html_to_text


def test_paragraphs_are_kept_when_asked() -> None:
    assert html_to_text("a<p>b<br>c &lt;3</p><style>p{}</style>", paragraphs=True) == "a\n\nb\nc <3"
    assert html_to_text("plain   words\n\n\n\nmore", paragraphs=True) == "plain words\n\nmore"


def test_one_line_by_default() -> None:
    assert (
        html_to_text("<p>Northwind</p><p>confirms &amp; apologises</p>")
        == "Northwind confirms & apologises"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>Northwind",
        '<img src=x onerror="alert(1)">Northwind',
        "&lt;script&gt;alert(1)&lt;/script&gt;Northwind",
        "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Northwind",
        '<a href="javascript:alert(1)">Northwind</a>',
        "<iframe src=//evil></iframe>Northwind",
    ],
)
def test_markup_and_escaped_markup_are_removed(hostile: str) -> None:
    text = html_to_text(hostile)
    assert "Northwind" in text
    assert "<" not in text and "onerror" not in text and "javascript:" not in text


def test_control_characters_are_dropped_and_long_texts_cut() -> None:
    assert html_to_text("North\x00wind\u200b") == "Northwind"
    cut = html_to_text("x" * 50, limit=10)
    assert len(cut) == 10 and cut.endswith("…")


def test_non_text_is_empty() -> None:
    assert html_to_text(None) == "" and html_to_text(42) == ""
