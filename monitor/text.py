"""Plain text from whatever the outside world sends: HTML fragments, escaped markup, entities.

Pure functions. What the store keeps is text, never markup: a `<script>`, an event handler
or an escaped tag that a later renderer could revive is removed here, once, for every source.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

MAX_TEXT = 20_000

_MARKUP = re.compile(r"<[A-Za-z/!?]|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);?")
_TAG_LEFTOVER = re.compile(r"<\s*/?\s*[A-Za-z!?][^<>]*(?:>|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)*")
_DROPPED = ("script", "style", "template", "iframe", "object", "embed", "applet", "noscript")
_BLOCKS = [
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
]


def html_to_text(value: object, *, limit: int = MAX_TEXT, paragraphs: bool = False) -> str:
    """Return `value` as plain text: no tags or attributes, entities decoded, spaces collapsed.

    Parsed again while it still looks like markup, so escaped markup ("&lt;script&gt;") is
    removed too rather than stored as text. With `paragraphs`, block elements become blank
    lines; otherwise everything is one line. Longer texts are cut to `limit` with an ellipsis.
    """
    if not isinstance(value, str) or not value:
        return ""
    separator = "\n\n" if paragraphs else " "
    text = value
    for _ in range(4):
        if not _MARKUP.search(text):
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(text, "html.parser")
        for node in soup(_DROPPED):
            node.decompose()
        for node in soup("br"):
            node.replace_with("\n" if paragraphs else " ")
        for node in soup(_BLOCKS):
            node.insert_before(separator)
            node.insert_after(separator)
        unwrapped = soup.get_text()
        if unwrapped == text:
            break
        text = unwrapped
    text = _CONTROL.sub("", _TAG_LEFTOVER.sub(" ", text))
    if paragraphs:
        lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
        text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    else:
        text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
