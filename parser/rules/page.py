"""Rules for innerText-like product pages of the three marketplaces.

The product's own block is read, never the carousels of other products: lines under a carousel
heading are dropped until a heading that belongs to the product (characteristics, reviews,
seller) comes back. Prices come from the first "price cluster" — consecutive lines made only of
prices, wallet/card labels and discount badges — and its labels decide which price is which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from parser.rules import markers as M
from parser.rules.text import PRICE_RE, rating_value, scaled, to_decimal, to_int

_WORD = re.compile(r"\w+")
# A title names something: a line without a letter is an option chip ('27"', '1.6"', "XL").
_LETTER = re.compile(r"[^\W\d_]")
# The gallery's slide counter ("1/5"), not a rating "of 5".
_SLIDE_COUNTER = re.compile(r"^\d{1,2}/\d{1,2}$")
# Cheap pre-filter: every token of a price line contains one of these.
_TOKENS = re.compile(
    "|".join(
        f"(?P<{name}>{regex.pattern})"
        for name, regex in (
            ("P", PRICE_RE),
            ("W", M.WALLET_LABEL),
            ("N", M.NO_CARD_LABEL),
            ("O", M.OLD_LABEL),
            ("Q", M.PROMO_NOTE),
            ("X", M.PROMO_LABEL),
            ("D", M.DISCOUNT),
            ("L", M.PRICE_LABEL),
        )
    ),
    re.IGNORECASE,
)
_TOKEN_HINT = re.compile(r"₽|руб|р\.|rub|кошел|карт|банк|пэй|без|вместо|цена|промокод|%", re.I)
_DIGIT = re.compile(r"\d")
_ARTICLE = re.compile(r"^(?:артикул|арт\.|код товара)", re.IGNORECASE)
_BUY = re.compile(r"^(?:добавить в корзину|в корзину|купить(?: сейчас| в 1 клик)?)$", re.I)
_TILE_BUTTON = re.compile(r"^(?:в корзину|купить|добавить в корзину)$", re.IGNORECASE)
_KV_COLON = re.compile(r"^([^:]{2,60}):\s*(.{1,200})$")
_ATTR_HEADING = re.compile(
    r"^(?:характеристики(?: и описание| товара)?|все характеристики|о товаре|коротко о товаре)$",
    re.IGNORECASE,
)
_ATTR_NOISE = re.compile(r"^(?:перейти к \w+|все характеристики|подробнее|развернуть\b.*)$", re.I)
_SELLER_HEADING = re.compile(r"^(?:продавец|о продавце|информация о продавце|магазин)$", re.I)
# "Продавец: ИП Иванов"; Market's delivery line "Доставка продавца Фотосклад.ру" names the shop.
_SELLER_INLINE = re.compile(r"^(?:продавец:|доставка продавца)\s*(.{2,80})$", re.IGNORECASE)
_SELLER_RATING = re.compile(r"^рейтинг продавца\b", re.IGNORECASE)
_SELLER_NOISE = re.compile(
    r"^(?:подписаться|перейти в магазин|оригинальные товары|★.*|[0-5][.,]\d.*|рейтинг.*|"
    r"\d+ (?:год|лет|года).*|заказов.*|работает с.*|склад.*|все товары продавца)$",
    re.IGNORECASE,
)
_BACK = re.compile(r"^к предыдущей странице$", re.IGNORECASE)
_HEADER_AFTER_REVIEWS = 8  # lines from WB's mobile reviews block to the header's rating line
_STICKY_LINES = 12  # lines of the sticky product line above the back button
_BRAND_SPLIT = re.compile(r"^(.{1,40}?) / (.+)$")

# The product's own stock line sits close to its price block.
_STOCK_BEFORE = 15
_STOCK_AFTER = 12

# ("P", Decimal) | ("W"|"N", starts_with_price_word): wallet and no-card labels |
# ("O"|"D"|"Q"|"X"|"L", None): old-price, discount, promo note, promo-code and bare price labels.
Token = tuple[str, Any]


@dataclass(slots=True)
class Cluster:
    """Consecutive price-only lines."""

    start: int
    end: int = 0
    lines: list[list[Token]] = field(default_factory=list)

    @property
    def prices(self) -> set[Decimal]:
        return {v for line in self.lines for k, v in line if k == "P"}

    @property
    def has_wallet(self) -> bool:
        return any(k == "W" for line in self.lines for k, _ in line)


@dataclass(slots=True)
class TextResult:
    """What the text rules read; ``None`` means not on the page."""

    title: str | None = None
    brand: str | None = None
    seller_name: str | None = None
    seller_id: str | None = None
    current_price: Decimal | None = None
    old_price: Decimal | None = None
    spp_price: Decimal | None = None
    in_stock: bool | None = None
    stock_quantity: int | None = None
    rating: Decimal | None = None
    reviews_count: int | None = None
    sales_count: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    has_cluster: bool = False
    has_anchor: bool = False
    first_block: int = 0
    main: list[str] = field(default_factory=list)


def product_lines(lines: list[str], tile_ends: bool = False) -> list[str]:
    """The lines outside carousels and injected analytics blocks.

    With ``tile_ends`` a carousel also ends after a tile's buy button when the next line does
    not start another tile (a tile opens with its price or discount badge): the way out of a
    shelf that sits above the product block with no "see all" link under it.
    """
    out: list[str] = []
    skipping = False
    after_button = False
    first_words = M.CAROUSEL_FIRST_WORDS
    for line in lines:
        if (
            len(line) <= 80
            and line.split(" ", 1)[0].lower() in first_words
            and M.CAROUSEL_HEADING.match(line)
        ):
            skipping = True
            after_button = False
            continue
        if skipping:
            if M.SECTION_HEADING.match(line):
                skipping = False
                out.append(line)
            elif M.CAROUSEL_END.match(line):
                skipping = False
            elif tile_ends:
                if after_button and classify(line) is None and not M.DISCOUNT.fullmatch(line):
                    skipping = False
                    out.append(line)
                after_button = _TILE_BUTTON.match(line) is not None
            continue
        out.append(line)
    return out


def classify(line: str) -> list[Token] | None:
    """Tokens of a line made only of prices and price labels, else ``None``."""
    if len(line) > 90 or not _TOKEN_HINT.search(line):
        return None
    tokens: list[Token] = []
    last = 0
    for m in _TOKENS.finditer(line):
        if m.start() > last and not M.PRICE_LINE_REST.fullmatch(line, last, m.start()):
            return None
        last = m.end()
        kind = m.lastgroup
        if kind == "P":
            tokens.append(("P", to_decimal(m.group("whole"), m.group("frac"))))
        elif kind in ("W", "N"):
            tokens.append((kind, m.group(0).lower().startswith("цена")))
        else:
            tokens.append((kind or "", None))
    if not tokens or (last < len(line) and not M.PRICE_LINE_REST.fullmatch(line, last)):
        return None
    return tokens


def price_clusters(main: list[str]) -> list[Cluster]:
    clusters: list[Cluster] = []
    current: Cluster | None = None
    for i, line in enumerate(main):
        tokens = classify(line)
        if tokens is None:
            if current is not None and current.prices:
                clusters.append(current)
            current = None
            continue
        if current is None:
            current = Cluster(start=i)
        current.end = i
        current.lines.append(tokens)
    if current is not None and current.prices:
        clusters.append(current)
    return clusters


def _first_price(tokens: list[Token], start: int = 0) -> int | None:
    for k in range(start, len(tokens)):
        if tokens[k][0] == "P":
            return k
    return None


def _bound_price(
    lines: list[list[Token]], kind: str, bare_badge: bool = True
) -> tuple[int, int] | None:
    """Where the price of the first ``kind`` label is: beside it on its line, else the line
    below a "Цена …" label, else (``bare_badge``) the line above a bare badge."""
    for li, tokens in enumerate(lines):
        for k, (token, starts_with_price_word) in enumerate(tokens):
            if token != kind:
                continue
            before = _first_price(tokens[:k])
            if before is not None:
                return li, before
            after = _first_price(tokens, k + 1)
            if after is not None:
                return li, after
            prev_p = _first_price(lines[li - 1]) if li > 0 else None
            next_p = _first_price(lines[li + 1]) if li + 1 < len(lines) else None
            if not bare_badge:
                return (li + 1, next_p) if next_p is not None and starts_with_price_word else None
            if prev_p is not None and not starts_with_price_word:
                return li - 1, prev_p
            if next_p is not None:
                return li + 1, next_p
            if prev_p is not None:
                return li - 1, prev_p
    return None


def read_cluster(cluster: Cluster) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(current, old, wallet) of one cluster."""
    lines = cluster.lines
    wallet_at = _bound_price(lines, "W")
    # A bare "без Ozon Карты" may close a price pair (Ozon) rather than follow its price.
    no_card_at = _bound_price(lines, "N", bare_badge=False)
    promo = _promo_prices(lines)
    others: list[Decimal] = []
    explicit_old: Decimal | None = None
    pending_old = False
    wallet: Decimal | None = None
    no_card: Decimal | None = None
    for li, tokens in enumerate(lines):
        for k, (kind, value) in enumerate(tokens):
            if kind == "O":
                # "без: Вместо: 543 ₽": Market's screen-reader label of the no-card price.
                pending_old = not (k > 0 and tokens[k - 1][0] == "N")
            elif kind == "P":
                if (li, k) in promo:
                    continue
                if wallet_at == (li, k):
                    wallet = value
                elif no_card_at == (li, k) and not pending_old:
                    no_card = value
                elif pending_old:
                    explicit_old, pending_old = value, False
                elif not others or others[-1] != value:
                    others.append(value)
    # A price labelled "без карты" is the price without the card, wherever it stands.
    current = no_card if no_card is not None else (others[0] if others else None)
    old = explicit_old
    if old is None and current is not None:
        old = next((v for v in others if v > current), None)
    if old is not None and current is not None and old <= current:
        old = None
    if wallet is not None and current is not None and wallet >= current:
        # A card price is a discount: a bare badge after the whole block (wallet, price, old,
        # then "с WB Кошельком") bound the wrong neighbour. Lowest, next, highest.
        distinct = sorted(set(others) | {wallet} | ({explicit_old} if explicit_old else set()))
        if len(distinct) in (2, 3):
            wallet, current = distinct[0], distinct[1]
            old = distinct[2] if len(distinct) == 3 else None
        else:
            wallet = None
    return current, old, wallet


def _promo_prices(lines: list[list[Token]]) -> set[tuple[int, int]]:
    """Positions of promo-code prices: beside their label, or the line above a bare label."""
    found: set[tuple[int, int]] = set()
    for li, tokens in enumerate(lines):
        for k, (kind, _) in enumerate(tokens):
            if kind != "X":
                continue
            prices = [j for j, (other, _) in enumerate(tokens) if other == "P"]
            if prices:
                found.add((li, min(prices, key=lambda j: abs(j - k))))
            elif li > 0 and (prev := _first_price(lines[li - 1])) is not None:
                found.add((li - 1, prev))
            elif li + 1 < len(lines) and (nxt := _first_price(lines[li + 1])) is not None:
                found.add((li + 1, nxt))
    return found


def _wb_unlabelled(
    cluster: Cluster, read: tuple[Decimal | None, Decimal | None, Decimal | None]
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """Wildberries' price block without its wallet caption reads wallet price, final price and
    crossed-out price, in that order: three rising prices are (wallet, price, old)."""
    prices = [v for line in cluster.lines for kind, v in line if kind == "P"]
    distinct = list(dict.fromkeys(prices))
    if len(prices) == 3 and len(distinct) == 3 and distinct[0] < distinct[1] < distinct[2]:
        return distinct[1], distinct[2], distinct[0]
    return read


def choose_cluster(clusters: list[Cluster]) -> Cluster | None:
    """The product's price block: the first one, or a labelled twin of it further down."""
    if not clusters:
        return None
    first = clusters[0]
    if first.has_wallet:
        return first
    values = first.prices
    for other in clusters[1:]:
        if other.has_wallet and (other.prices == values or len(other.prices & values) >= 2):
            return other
    return first


def find_rating(main: list[str]) -> tuple[int, Decimal | None, int | None] | None:
    """(line index, rating, reviews count) of the product's rating line."""
    for i, line in enumerate(main):
        if len(line) > 80:
            continue
        if M.NO_REVIEWS.match(line):
            return i, None, 0
        if _SLIDE_COUNTER.match(line):
            continue
        m = M.RATING_LINE.match(line)
        if not m or M.NOT_PRODUCT_RATING.search(line):
            continue
        prefix, value, of_five, tail = m.groups()
        # A bare whole number is a rating only next to a count of ratings: WB prints 5.0 as "5"
        # ("5" / "14 оценок", "5 14 оценок"); a count line "1 299 оценок" is no rating.
        whole = not (prefix or of_five or "," in value or "." in value)
        if whole and (value == "0" or M.REVIEWS_COUNT.match(line)):
            continue
        rating = rating_value(value)
        if rating is None:
            continue
        reviews: int | None = None
        if tail:
            rc = M.REVIEWS_TAIL.match(tail)
            if rc is None or (whole and not rc.group(1)):
                continue
            reviews = _review_count(rc)
        else:
            nxt = main[i + 1] if i + 1 < len(main) else ""
            rc = M.REVIEWS_COUNT.match(nxt)
            if M.NOT_PRODUCT_RATING.search(nxt):
                continue
            if rc and (rc.group(1) or not whole):
                reviews = _review_count(rc)
            elif M.NO_REVIEWS.match(nxt) and not whole:
                reviews = 0
            elif not (prefix or of_five):
                continue
        return i, rating, reviews
    return None


def _review_count(m: re.Match[str]) -> int:
    """The count of a REVIEWS_COUNT / REVIEWS_TAIL match: "1,2 тыс." -> 1200, "(138)" -> 138."""
    if m.group(1):
        return scaled(m.group(1), m.group(2))
    return to_int(next(g for g in m.groups()[2:] if g))


def _title_before(main: list[str], index: int) -> str | None:
    fallback: str | None = None
    for k in range(index - 1, max(-1, index - 7), -1):
        line = main[k]
        if (
            len(line) < 3
            or len(line) > 250
            or M.TITLE_NOISE.match(line)
            or classify(line) is not None
            or M.RATING_LINE.match(line)
            or M.SALES.match(line)
            or M.REVIEWS_COUNT.match(line)
            or M.OUT_OF_STOCK.match(line)
            or not _LETTER.search(line)
        ):
            continue
        if M.CAROUSEL_HEADING.match(line) or M.SECTION_HEADING.match(line):
            break
        if len(line.split()) >= 2:
            return line
        fallback = fallback or line
    return fallback


def _header_rating(main: list[str], anchor: tuple[int, Decimal | None, int | None]) -> int | None:
    """WB's mobile layout puts a reviews block ("4,8" / "1 299 оценок" / "спросить") above the
    header, which repeats the rating and its count under brand and name: the repeat's index."""
    index, rating, reviews = anchor
    for k in range(index + 1, min(len(main), index + _HEADER_AFTER_REVIEWS)):
        if M.REVIEWS_COUNT.match(main[k]):
            continue
        m = M.RATING_LINE.match(main[k])
        tail = M.REVIEWS_TAIL.match(m.group(4)) if m and m.group(4) else None
        if tail is not None:
            same = rating_value(m.group(2)) == rating and _review_count(tail) == reviews
            return k if same else None
    return None


def find_title(
    main: list[str], anchor: tuple[int, Decimal | None, int | None] | None
) -> str | None:
    if anchor is not None:
        for k in (_header_rating(main, anchor), anchor[0]):
            title = _title_before(main, k) if k is not None else None
            if title:
                return title
    for i, line in enumerate(main):
        if _ARTICLE.match(line):
            return _title_before(main, i)
    return None


def find_sales(main: list[str]) -> int | None:
    for line in main:
        if len(line) > 60 or not _DIGIT.search(line):
            continue
        m = M.SALES.match(line)
        if m:
            if m.group(1):
                return scaled(m.group(1), m.group(2))
            return scaled(m.group(3), m.group(4))
    return None


def find_stock(main: list[str], near: tuple[int, int] | None) -> tuple[int | None, int | None]:
    """(line of the out-of-stock notice, explicit quantity near the price block)."""
    out_of_stock: int | None = None
    quantity: int | None = None
    for i, line in enumerate(main):
        if len(line) > 60:
            continue
        m = M.OUT_OF_STOCK.match(line)
        if m and len(line) - m.end() <= 25 and out_of_stock is None:
            out_of_stock = i
        if quantity is None and (near is None or near[0] <= i <= near[1]):
            s = M.STOCK.match(line)
            if s:
                quantity = int(s.group(1))
            elif M.LAST_ITEM.match(line):
                quantity = 1
    return out_of_stock, quantity


def find_attributes(main: list[str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for line in main:
        if "\t" in line:
            key, _, value = line.partition("\t")
            key, value = key.strip(" :"), value.strip()
            if key and value and len(key) <= 80:
                attrs.setdefault(key, value[:200])
    i = 0
    while i < len(main):
        if not _ATTR_HEADING.match(main[i]):
            i += 1
            continue
        section: list[str] = []
        i += 1
        while i < len(main):
            line = main[i]
            if (
                _ATTR_HEADING.match(line)
                or M.SECTION_HEADING.match(line)
                or M.CAROUSEL_HEADING.match(line)
                or len(line) > 80
            ):
                break
            if not _ATTR_NOISE.match(line) and "\t" not in line:
                section.append(line)
            i += 1
        colon = [m for m in map(_KV_COLON.match, section) if m]
        if colon:
            for m in colon:
                attrs.setdefault(m.group(1).strip(), m.group(2).strip())
        elif len(section) >= 2 and len(section) % 2 == 0:
            for key, value in zip(section[::2], section[1::2], strict=True):
                attrs.setdefault(key, value)
    return attrs


def find_seller(main: list[str]) -> str | None:
    for i, line in enumerate(main):
        m = _SELLER_INLINE.match(line)
        if m:
            return m.group(1).strip()
        if _SELLER_HEADING.match(line):
            for nxt in main[i + 1 : i + 4]:
                if not _SELLER_NOISE.match(nxt) and len(nxt) <= 80:
                    return nxt
        if _SELLER_RATING.match(line) and i > 0 and not _SELLER_NOISE.match(main[i - 1]):
            prev = main[i - 1]
            if len(prev) <= 80 and not _SELLER_HEADING.match(prev):
                return prev
    return None


def _product_page_start(lines: list[str]) -> int:
    """Where a saved Wildberries product page begins. The product page opens over the main
    page, whose tiles (price, "Brand / name", rating) stay above it in the document; the
    product's own sticky line ("Brand / name", rating, prices) sits right above its back button.
    """
    back = next((i for i, line in enumerate(lines) if _BACK.match(line)), None)
    if back is None or not any(classify(line) for line in lines[back + 1 :]):
        return 0
    for i in range(back - 1, max(-1, back - _STICKY_LINES), -1):
        if _BRAND_SPLIT.match(lines[i]) and (i == 0 or classify(lines[i - 1]) is None):
            return i
    return back + 1


def parse_text(lines: list[str], marketplace: str) -> TextResult:
    """Read every field the page text carries."""
    if marketplace == "wildberries":
        lines = lines[_product_page_start(lines) :]
    main = product_lines(lines)
    clusters = price_clusters(main)
    if not clusters and find_rating(main) is None:
        # Nothing of a product outside the carousels: a shelf above the product block may have
        # swallowed it; end carousels at their last tile instead.
        fallback = product_lines(lines, tile_ends=True)
        if len(fallback) > len(main):
            main, clusters = fallback, price_clusters(fallback)
    result = TextResult(main=main)
    cluster = choose_cluster(clusters)
    near = (cluster.start - _STOCK_BEFORE, cluster.end + _STOCK_AFTER) if cluster else None
    out_of_stock, quantity = find_stock(main, near)
    if cluster is not None and out_of_stock is not None and cluster.start > out_of_stock:
        # An out-of-stock card shows its last price next to the notice, if at all.
        between = main[out_of_stock + 1 : cluster.start]
        if any(not M.OUT_OF_STOCK.match(line) for line in between):
            cluster = None
    if cluster is not None:
        result.has_cluster = True
        result.current_price, result.old_price, result.spp_price = read_cluster(cluster)
        if marketplace == "wildberries" and not cluster.has_wallet:
            result.current_price, result.old_price, result.spp_price = _wb_unlabelled(
                cluster, (result.current_price, result.old_price, result.spp_price)
            )
    anchor = find_rating(main)
    if anchor is not None:
        result.has_anchor = True
        _, result.rating, result.reviews_count = anchor
    starts = [i for i in (anchor[0] if anchor else None, cluster.start if cluster else None) if i]
    result.first_block = min(starts, default=0)
    title = find_title(main, anchor)
    if title and marketplace == "wildberries":
        split = _BRAND_SPLIT.match(title)
        if split and len(split.group(1).split()) <= 4:
            result.brand, title = split.group(1).strip(), split.group(2).strip()
    result.title = title
    result.sales_count = find_sales(main)
    if out_of_stock is not None:
        result.in_stock = False
    else:
        result.stock_quantity = quantity
        if result.current_price is not None or any(_BUY.match(line) for line in main):
            result.in_stock = True
    result.attributes = find_attributes(main)
    result.brand = result.brand or result.attributes.get("Бренд")
    result.seller_name = find_seller(main)
    return result
