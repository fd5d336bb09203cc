"""Plain text from whatever the outside world sends: HTML fragments, escaped markup, entities.

Pure functions. What the store keeps is text, never markup: a `<script>`, an event handler
or an escaped tag that a later renderer could revive is removed here, once, for every source.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_TEXT = 20_000

# Parsing rounds: one per level of escaping ("&amp;lt;b&amp;gt;" takes two). Real feeds need
# two or three; text escaped deeper than this loses its remaining entities instead.
MAX_ROUNDS = 5

_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);?")
_MARKUP = re.compile(r"<[A-Za-z/!?]|" + _ENTITY.pattern)
# Each space is matched one way only: "<\s*/?\s*" backtracks quadratically on "<" and a long
# run of spaces.
_TAG_LEFTOVER = re.compile(r"<\s*(?:/\s*)?[A-Za-z!?][^<>]*(?:>|$)")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Ends a start tag left open in any state (in a name, after "=", in either quote), and is an
# empty tag of its own when none is.
_END_OPEN_TAG = "<i '\">"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")  # lines are stripped first: blank ones are empty
# Elements whose content is not text to keep: code, frames, and ruby readings (rt, rp).
_DROPPED = frozenset(
    ("script", "style", "template", "iframe", "object", "embed", "applet", "noscript", "rt", "rp")
)
# Elements that never have content, so never need an end tag.
_VOID = frozenset(
    (
        "area", "base", "basefont", "bgsound", "br", "col", "command", "embed", "frame", "hr",
        "image", "img", "input", "isindex", "keygen", "link", "menuitem", "meta", "nextid",
        "param", "source", "spacer", "track", "wbr",
    )
)  # fmt: skip
_BLOCKS = frozenset(
    (
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    )
)  # fmt: skip


def html_to_text(value: object, *, limit: int = MAX_TEXT, paragraphs: bool = False) -> str:
    """Return `value` as plain text: no tags or attributes, entities decoded, spaces collapsed.

    Parsed again while it still looks like markup, so escaped markup ("&lt;script&gt;") is
    removed too rather than stored as text. With `paragraphs`, block elements become blank
    lines; otherwise everything is one line. Longer texts are cut to `limit` with an ellipsis.
    The result is stable: given its own output, it returns it unchanged.
    """
    if not isinstance(value, str) or not value:
        return ""
    # Invisible characters go first: one inside "<\u200bscript>" hides the tag from the
    # parser, and dropping it afterwards would bring the tag back to life.
    text = _CONTROL.sub("", value)
    for _ in range(MAX_ROUNDS):
        if _MARKUP.search(text):
            # An entity may decode to an invisible character too ("&lt;&#8203;script&gt;").
            unwrapped = _CONTROL.sub("", _unwrap(text, paragraphs))
            if unwrapped != text:
                text = unwrapped
                continue
        # The parser changes nothing more. Broken tags it kept as text can hide what follows
        # them ("<!--&amp;"): remove them, and parse again if that changed anything.
        unwrapped = _defuse(_TAG_LEFTOVER.sub(" ", text))
        if unwrapped == text:
            break
        text = unwrapped
    else:  # escaped deeper than any real feed: stop decoding, drop what is left
        text = _defuse(_TAG_LEFTOVER.sub(" ", _ENTITY.sub(" ", text)))
    if paragraphs:
        lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
        text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    else:
        text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def _unwrap(text: str, paragraphs: bool) -> str:
    """Return the text content of `text` parsed as HTML, without dropped elements."""
    # A tag of our own at the end ends any tag a stray quote left open ("<a href='x>..."),
    # which the parser would otherwise read again from every later "<" (minutes for a few
    # hundred kilobytes). Such a tag takes the rest of the text with it, as in a browser.
    markup = _escape_unclosed(text) + _END_OPEN_TAG
    # Python's parser gives up on some "<![" sections ("<![ ]]>"): those are read as text,
    # and if it still gives up, so is every "<".
    for attempt in (markup, markup.replace("<![", "&lt;!["), markup.replace("<", "&lt;")):
        collector = _TextCollector(paragraphs)
        try:
            collector.feed(attempt)
            return collector.text()
        except AssertionError:  # how html.parser (_markupbase) refuses a declaration
            continue
    raise AssertionError("unreachable: text without '<' is always accepted")


class _TextCollector(HTMLParser):
    """Collects the text of an HTML fragment: strings in document order, blocks set apart.

    Events, not a tree: building one costs time quadratic in the nesting depth for some
    mis-nested markup ("<b><i>" repeated), and 40,000 nested tags are too deep to recurse.
    Like BeautifulSoup, an end tag closes the latest open element of its name (and those
    inside it) and is ignored when none is open.
    """

    def __init__(self, paragraphs: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.separator = "\n\n" if paragraphs else " "
        self.line_break = "\n" if paragraphs else " "
        self.parts: list[str] = []
        self.open: list[str] = []  # elements open now, outermost first
        self.hidden = 0  # how many of them are dropped elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if self.hidden:
                return
            if tag == "br":
                self.parts.append(self.line_break)
            elif tag in _BLOCKS:  # <hr>
                self.parts.append(self.separator * 2)
            return
        if not self.hidden and tag in _BLOCKS:
            self.parts.append(self.separator)
        self.open.append(tag)
        self.hidden += tag in _DROPPED

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            self._close_until(tag)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def unknown_decl(self, data: str) -> None:
        if data.upper().startswith("CDATA[") and not self.hidden:
            self.parts.append(data[len("CDATA[") :])

    def _close_until(self, tag: str | None) -> None:
        while self.open:
            name = self.open.pop()
            self.hidden -= name in _DROPPED
            if not self.hidden and name in _BLOCKS:
                self.parts.append(self.separator)
            if name == tag:
                return

    def text(self) -> str:
        """Return the text read so far, closing what is still open."""
        self.close()
        self._close_until(None)
        return "".join(self.parts)


def _escape_unclosed(text: str) -> str:
    """Return `text` with the "<" of every tag, comment or section that never ends escaped.

    Python's HTML parser rescans the rest of the text for each of those ("<a <a <a ...",
    "<!--" without "-->"), which takes minutes on a few hundred kilobytes. Escaped, they come
    back as text and leave with the leftovers. As in a browser, a tag ends at the next ">"
    even past another "<", so only what follows the last ">" (or "-->", or "]]>") is escaped.
    """
    for opener, closer in (("<![", "]]>"), ("<!--", "-->")):
        end = text.rfind(closer)
        # No closer starts after an opener at `cut` or later ("<!-->" counts as closed).
        cut = max(end + len(closer) - len(opener) + 1, 0) if end >= 0 else 0
        escaped = "&lt;" + opener[1:]
        text = text[:cut] + text[cut:].replace(opener, escaped)
    end = text.rfind(">")
    return text[: end + 1] + _TAG_START.sub("&lt;", text[end + 1 :])


def _defuse(text: str) -> str:
    """Return `text` with every "<" that could still open a tag, comment or declaration blanked.

    What is left after the parser and the leftover pattern can still hold one where a broken
    tag shielded the next ("<!--<b>" leaves "<!--"). A "<" counts when it is followed by "/"
    (an HTML parser turns "</" into a tag or a comment) or when spaces, slashes or other "<"
    lead from it to an ASCII letter, "!" or "?". One pass from the right keeps this linear
    however many "<" there are.
    """
    if "<" not in text:
        return text
    kept: list[str] = []
    opens = False  # do spaces, slashes and "<" lead from here to a letter, "!" or "?"?
    following = ""
    for char in reversed(text):
        if char == "<":
            if opens or following == "/":
                char = " "
        elif not (char.isspace() or char == "/"):
            opens = char.isascii() and (char.isalpha() or char in "!?")
        kept.append(char)
        following = char
    return "".join(reversed(kept))
