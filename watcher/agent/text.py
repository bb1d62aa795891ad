"""The visible text of an HTML page, close to what ``document.body.innerText`` gives.

The plain-HTTP engine has no browser to ask, so it approximates innerText with the standard
library's HTML parser: no scripts, styles or hidden elements; block elements on lines of their own.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown.
SKIPPED = frozenset({"script", "style", "noscript", "template", "head", "title", "svg", "iframe"})
# Elements that start and end a line (CSS display: block and the like).
BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "button", "dd", "details", "div"),
        *("dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3"),
        *("h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section"),
        *("summary", "table", "tr", "td", "th", "ul", "option", "label", "a"),
    }
)
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f]+")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        hides = (
            tag in SKIPPED
            or "hidden" in attributes
            or attributes.get("aria-hidden") == "true"
            or bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))
        )
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag in VOID:
            return
        self.stack.append((tag, hides))
        self.hidden_depth += hides

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching open tag; stray end tags are ignored, as browsers do.
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                for _tag, hides in self.stack[index:]:
                    self.hidden_depth -= hides
                del self.stack[index:]
                break
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(_SPACES.sub(" ", data))


def visible_text(page: str) -> str:
    """The page's visible text: one line per block, spaces collapsed, no empty lines."""
    extractor = _Extractor()
    extractor.feed(page)
    extractor.close()
    lines = (line.strip() for line in "".join(extractor.parts).split("\n"))
    return "\n".join(line for line in lines if line)
