"""HTML pages and fragments: structured bits first, then an innerText-like rendering."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from parser.rules.payloads import (
    Fields,
    add_seller,
    ld_products,
    parse_ozon_states,
    pick_ld_product,
)
from parser.rules.payloads import parse_ld_product as _ld_fields
from parser.rules.text import count_value, money, rating_value
from parser.rules.yandex import parse_apiary, read_patches
from parser.types import ParseError, ParseErrorCode

_LOOKS_HTML = re.compile(
    r"<(?:!doctype|html|head|body|div|span|p|section|article|h1|script|meta)\b", re.IGNORECASE
)
# The challenge itself (Yandex SmartCaptcha's form and checkbox, links to /showcaptcha); the
# SmartCaptcha *script* is preloaded on healthy pages and says nothing.
_CHALLENGE = (
    'form[action*="captcha"], [class*="CheckboxCaptcha"], [class*="AdvancedCaptcha"], '
    '#checkbox-captcha-form, a[href*="/showcaptcha"]'
)
_DROP = "script, style, noscript, noframes, template, svg, iframe, head"
# Carousel containers of the three sites (and generic sliders); their text is never ours.
_CAROUSELS = (
    '[data-widget="skuShelfGoods"], [data-widget="webRecommendations"], [data-shelf-title], '
    '[data-auto="similar"], [data-zone-name="ScrollBox"], [data-widget="skuGrid"], '
    "section.goods-slider, .j-b-recommended-goods-wrapper, .recommendations, "
    # Wildberries' product tiles: a saved product page keeps the main page's tiles above it.
    "article.product-card, .j-product-item"
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

# Real product pages nest a few dozen elements deep. An HTML parser's scope checks walk the
# stack of open elements, so unbounded nesting makes parsing quadratic: deeper pages are refused.
MAX_DEPTH = 512
_TAG = re.compile(r"<(/?)([a-z][a-z0-9-]*)|<!--")
# Elements without an end tag, or whose end tag is optional and usually left out.
_NO_DEPTH = frozenset(
    (
        *("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"),
        *("track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup"),
        *("thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html"),
        *("head", "body", "param", "keygen", "frame"),
    )
)
_RAW_TEXT = frozenset(("script", "style", "textarea", "title", "xmp", "noscript", "iframe"))


def too_deep(raw: str) -> bool:
    """Whether elements nest deeper than ``MAX_DEPTH``, by open and end tags in one linear pass.

    Void elements, optional end tags, self-closing tags and raw-text content (scripts, styles)
    do not count: an estimate meant to catch pathological pages, not to judge real ones.
    """
    if raw.count("<") <= MAX_DEPTH:
        return False  # too few tags to nest that deep
    text = raw.lower()
    depth = pos = 0
    end = len(text)
    while pos < end:
        m = _TAG.search(text, pos)
        if m is None:
            break
        if m.group(2) is None:  # a comment
            close = text.find("-->", m.end())
            if close < 0:
                break
            pos = close + 3
            continue
        name = m.group(2)
        close = text.find(">", m.end())
        if close < 0:
            break
        pos = close + 1
        if m.group(1):
            depth = max(depth - 1, 0) if name not in _NO_DEPTH else depth
            continue
        if name in _RAW_TEXT:
            skip = text.find("</" + name, pos)
            if skip < 0:
                break
            pos = skip
            continue
        if name not in _NO_DEPTH and text[close - 1] != "/":
            depth += 1
            if depth > MAX_DEPTH:
                return True
    return False


@dataclass(slots=True)
class HtmlPage:
    """What an HTML document offers the rules."""

    text: str
    structured: Fields = field(default_factory=dict)
    title: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    challenge: bool = False  # a captcha form or checkbox is on the page


def looks_like_html(text: str) -> bool:
    head = text[:2000]
    return "<" in head and _LOOKS_HTML.search(head) is not None


def parse_html(raw: str, sku: str) -> HtmlPage:
    if too_deep(raw):
        raise ParseError(ParseErrorCode.UNPARSEABLE, "the HTML is nested too deeply")
    tree = LexborHTMLParser(raw)
    structured = _structured(tree, sku)
    title = _h1(tree)
    challenge = tree.css_first(_CHALLENGE) is not None
    for node in tree.css(_DROP):
        node.decompose()
    for node in tree.css(_CAROUSELS):
        node.decompose()
    if "current_price" not in structured:
        _microdata(tree, structured)
    root = tree.body or tree.root
    rendered = _render(root) if root is not None else _Rendered()
    return HtmlPage("".join(rendered.parts), structured, title, rendered.attributes, challenge)


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
        except (ValueError, RecursionError):
            continue
    if products:
        for key, value in _ld_fields(pick_ld_product(products, sku)).items():
            out.setdefault(key, value)
    patches = [node.text(deep=True) or "" for node in tree.css("noframes[data-apiary]")]
    if patches:
        _merge_apiary(out, parse_apiary(read_patches(patches)))
    _wb_seller(tree, out)
    _wb_price_block(tree, out)
    if "title" not in out:
        meta = tree.css_first('meta[property="og:title"]')
        content = meta.attributes.get("content") if meta is not None else None
        if content:
            out["og_title"] = content.strip()
    return out


def _merge_apiary(out: Fields, state: Fields) -> None:
    """Yandex Market's page state next to its ld+json: the ld+json offer price is the Yandex
    Pay card price when there is one, so the state's price breakdown replaces it."""
    if state.get("current_price") is not None:
        for key in ("current_price", "old_price", "spp_price"):
            out.pop(key, None)
    for key, value in state.items():
        if value is not None or key not in out:
            out.setdefault(key, value)


# Wildberries' price block, by class (hashed suffixes since 2024: priceBlockFinalPrice--AUlzU).
# The wallet price often carries only an icon, so its class is the one thing that names it.
_WB_PRICE_CLASSES = (
    ("spp_price", ("priceBlockWalletPrice--", "price-block__wallet-price")),
    ("current_price", ("priceBlockFinalPrice--", "price-block__final-price")),
    ("old_price", ("priceBlockOldPrice--", "price-block__old-price")),
)


def _wb_price_block(tree: LexborHTMLParser, out: Fields) -> None:
    if "current_price" in out:
        return
    found: Fields = {}
    for key, classes in _WB_PRICE_CLASSES:
        selector = ", ".join(f'[class*="{name}"]' for name in classes)
        node = tree.css_first(selector)
        value = money(node.text(deep=True)) if node is not None else None
        if value is not None:
            found[key] = value
    current = found.get("current_price")
    if current is None:
        return
    out["current_price"] = current
    if found.get("old_price", 0) > current:
        out["old_price"] = found["old_price"]
    if found.get("spp_price") is not None and found["spp_price"] < current:
        out["spp_price"] = found["spp_price"]


def _microdata(tree: LexborHTMLParser, out: Fields) -> None:
    """schema.org microdata of the first Product scope left once carousels are gone (older
    Market and Wildberries pages): its offer's price and availability, its aggregate rating."""
    scope = tree.css_first('[itemtype*="schema.org/Product"]')
    if scope is None:
        return
    price = _itemprop(scope, '[itemprop="offers"] [itemprop="price"], [itemprop="price"]')
    current = money(price)
    if current is None:
        return
    out["current_price"] = current
    availability = (_itemprop(scope, '[itemprop="availability"]') or "").lower()
    if "outofstock" in availability or "soldout" in availability:
        out["in_stock"] = False
    elif "instock" in availability:
        out["in_stock"] = True
    rating = rating_value(_itemprop(scope, '[itemprop="ratingValue"]'))
    count = count_value(_itemprop(scope, '[itemprop="reviewCount"], [itemprop="ratingCount"]'))
    if rating is not None and count is not None:
        out["rating"], out["reviews_count"] = rating, count
    name = _itemprop(scope, '[itemprop="name"]')
    if name and "title" not in out:
        out["title"] = " ".join(name.split())


def _itemprop(scope: LexborNode, selector: str) -> str | None:
    node = scope.css_first(selector)
    if node is None:
        return None
    attrs = node.attributes
    value = attrs.get("content") or attrs.get("href") or node.text(deep=True)
    return value.strip() if value else None


def _wb_seller(tree: LexborHTMLParser, out: Fields) -> None:
    """Wildberries' seller block: a link to /seller/<id> around the seller's name."""
    node = tree.css_first(".seller-info__name")
    if node is None:
        return
    link = node.attributes.get("href")
    parent = node.parent
    while not link and parent is not None and parent.tag != "section":
        link = parent.attributes.get("href") if parent.tag == "a" else None
        parent = parent.parent
    add_seller(out, node.text(deep=True), None, link)


def _h1(tree: LexborHTMLParser) -> str | None:
    # Wildberries' 2025 card heads the product with an h2 of class productTitle--<hash>.
    node = tree.css_first("h1") or tree.css_first('[class*="productTitle--"]')
    if node is None:
        return None
    text = " ".join((node.text(deep=True) or "").split())
    return text or None


@dataclass(slots=True)
class _Rendered:
    parts: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    size: int = 0  # characters in ``parts`` so far

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)


def _render(root: LexborNode) -> _Rendered:
    """innerText-like: blocks on their own lines, inline pieces joined by a space.

    Iterative (no recursion, whatever the nesting) and linear: every node is visited once, and
    a key/value row (``tr`` with two cells, ``dt`` + ``dd``) is read back from the rendered text
    only when it is short.
    """
    out = _Rendered()
    # (node, None) visits a node; (node, start) closes a block that began at parts[start].
    stack: list[tuple[LexborNode, tuple[int, int] | None]] = [(root, None)]
    term: str | None = None  # the last <dt>, waiting for its <dd>
    while stack:
        node, opened = stack.pop()
        tag = node.tag
        if opened is not None:
            out.add("\n")
            if tag == "tr" or tag == "dt" or tag == "dd":
                text = _segment(out, opened)
                if text is None:
                    term = None
                elif tag == "tr":
                    cells = [" ".join(c.split()).strip(" :") for c in text.split("\t")]
                    cells = [c for c in cells if c]
                    if len(cells) == 2:
                        out.attributes.setdefault(cells[0], cells[1])
                elif tag == "dt":
                    term = " ".join(text.split()).strip(" :") or None
                elif term:
                    value = " ".join(text.split())
                    if value:
                        out.attributes.setdefault(term, value)
                    term = None
            continue
        if tag == "-text":
            text = node.text_content or ""
            if text.strip():
                last = out.parts[-1] if out.parts else ""
                if last and not last[-1].isspace() and not text[0].isspace():
                    out.add(" ")
                out.add(text.replace("\n", " "))
            continue
        if tag == "-comment":
            continue
        if tag in _BLOCK:
            out.add("\n")
            stack.append((node, (len(out.parts), out.size)))
        elif tag in _CELL:
            out.add("\t")
        children = list(node.iter(include_text=True))
        stack.extend((child, None) for child in reversed(children))
    return out


_MAX_ROW = 400  # characters of a key/value row worth reading back


def _segment(out: _Rendered, opened: tuple[int, int]) -> str | None:
    """The text rendered since ``opened``, if it is short."""
    index, size = opened
    if out.size - size > _MAX_ROW:
        return None
    return "".join(out.parts[index:])
