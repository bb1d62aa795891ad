"""HTML pages and fragments: structured bits first, then an innerText-like rendering."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from parser.rules.payloads import Fields, ld_products, parse_ozon_states, pick_ld_product
from parser.rules.payloads import parse_ld_product as _ld_fields

_LOOKS_HTML = re.compile(
    r"<(?:!doctype|html|head|body|div|span|p|section|article|h1|script|meta)\b", re.IGNORECASE
)
_DROP = "script, style, noscript, template, svg, iframe, head"
# Carousel containers of the three sites (and generic sliders); their text is never ours.
_CAROUSELS = (
    '[data-widget="skuShelfGoods"], [data-widget="webRecommendations"], [data-shelf-title], '
    '[data-auto="similar"], [data-zone-name="ScrollBox"], [data-widget="skuGrid"], '
    "section.goods-slider, .j-b-recommended-goods-wrapper, .recommendations"
)
_BLOCK = frozenset(
    (
        *("address", "article", "aside", "blockquote", "br", "button", "dd", "details"),
        *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p"),
        *("pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul", "label"),
    )
)
_CELL = frozenset(("td", "th"))


@dataclass(slots=True)
class HtmlPage:
    """What an HTML document offers the rules."""

    text: str
    structured: Fields = field(default_factory=dict)
    title: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def looks_like_html(text: str) -> bool:
    head = text[:2000]
    return "<" in head and _LOOKS_HTML.search(head) is not None


def parse_html(raw: str, sku: str) -> HtmlPage:
    tree = LexborHTMLParser(raw)
    structured = _structured(tree, sku)
    title = _h1(tree)
    attributes = _tables(tree)
    for node in tree.css(_DROP):
        node.decompose()
    for node in tree.css(_CAROUSELS):
        node.decompose()
    root = tree.body or tree.root
    parts: list[str] = []
    if root is not None:
        _render(root, parts)
    return HtmlPage("".join(parts), structured, title, attributes)


def _structured(tree: LexborHTMLParser, sku: str) -> Fields:
    out: Fields = {}
    states: dict[str, Any] = {}
    for node in tree.css("[data-state]"):
        node_id = node.attributes.get("id") or ""
        if node_id.startswith("state-"):
            states[node_id[len("state-") :]] = node.attributes.get("data-state") or ""
    if states:
        out.update(parse_ozon_states(states))
    products: list[dict[str, Any]] = []
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            products.extend(ld_products(json.loads(node.text(deep=True) or "")))
        except ValueError:
            continue
    if products:
        for key, value in _ld_fields(pick_ld_product(products, sku)).items():
            out.setdefault(key, value)
    if "title" not in out:
        meta = tree.css_first('meta[property="og:title"]')
        content = meta.attributes.get("content") if meta is not None else None
        if content:
            out["og_title"] = content.strip()
    return out


def _h1(tree: LexborHTMLParser) -> str | None:
    node = tree.css_first("h1")
    if node is None:
        return None
    text = " ".join((node.text(deep=True) or "").split())
    return text or None


def _tables(tree: LexborHTMLParser) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for row in tree.css("tr"):
        cells = [c for c in row.iter() if c.tag in _CELL]
        if len(cells) == 2:
            key = " ".join((cells[0].text(deep=True) or "").split()).strip(" :")
            value = " ".join((cells[1].text(deep=True) or "").split())
            if key and value:
                attrs.setdefault(key, value)
    for dl in tree.css("dl"):
        terms = [c for c in dl.iter() if c.tag in ("dt", "dd")]
        for term, desc in zip(terms[::2], terms[1::2], strict=False):
            if term.tag == "dt" and desc.tag == "dd":
                key = " ".join((term.text(deep=True) or "").split()).strip(" :")
                value = " ".join((desc.text(deep=True) or "").split())
                if key and value:
                    attrs.setdefault(key, value)
    return attrs


def _render(node: LexborNode, parts: list[str]) -> None:
    """innerText-like: blocks on their own lines, inline pieces joined by a space."""
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            text = child.text_content or ""
            if text.strip():
                if parts and parts[-1] and not parts[-1][-1].isspace() and not text[0].isspace():
                    parts.append(" ")
                parts.append(text.replace("\n", " "))
            continue
        if tag == "-comment":
            continue
        if tag in _BLOCK:
            parts.append("\n")
            _render(child, parts)
            parts.append("\n")
        elif tag in _CELL:
            parts.append("\t")
            _render(child, parts)
        else:
            _render(child, parts)
