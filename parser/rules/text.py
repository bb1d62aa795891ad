"""Text normalisation and number helpers shared by every rules module."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from price_parser import Price

# Thousands separators seen on the sites (NBSP, thin, narrow NBSP, figure space) become a plain
# space; zero-width characters and soft hyphens disappear; the minus sign becomes "-".
_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    *(
        (ch, " ")
        for ch in "\u00a0\u2009\u202f\u2007\u2002\u2003\u2004\u2005\u2006\u2008\u200a\u3000"
    ),
    *((ch, "") for ch in "\u200b\u200c\u200d\u2060\ufeff\xad"),
    ("\r\n", "\n"),
    ("\r", "\n"),
    ("\u2028", "\n"),
    ("\u2029", "\n"),
    ("\u2212", "-"),
    ("\u0451", "е"),
    ("\u0401", "Е"),
)
_MULTI_SPACE = re.compile(r" {2,}")
# Applied after runs of spaces are collapsed, so a long run of spaces cannot make it quadratic.
_TAB_SPACES = re.compile(r" ?\t[\t ]*")

# A number with optional thousands groups (already normalised to plain spaces) and kopecks.
NUM = r"\d{1,3}(?: \d{3})+|\d+"
PRICE_RE = re.compile(
    rf"(?<![\d.,])(?P<whole>{NUM})(?:[.,](?P<frac>\d{{1,2}}))?(?!\d)\s?(?:₽|руб\b\.?|р\.|RUB\b)",
    re.IGNORECASE,
)
_COUNT_NUM = re.compile(NUM)
TWO_PLACES = Decimal("0.01")
# A price string in a payload is short ("1 245 ₽", "от 2 790,50 руб."); longer text is not one.
_MAX_MONEY_TEXT = 100


def normalise(raw: str) -> str:
    """Unify spaces, minus signs and line breaks; keep tabs (they separate key/value cells)."""
    text = raw
    for old, new in _REPLACEMENTS:
        # str.replace is a C loop; checking first keeps clean texts cheap.
        if old in text:
            text = text.replace(old, new)
    text = _MULTI_SPACE.sub(" ", text)
    return _TAB_SPACES.sub("\t", text) if "\t" in text else text


# Lines that only separate inline items ("4,9 / · / 2 419 отзывов" on Market) carry nothing.
_SEPARATOR_LINES = frozenset(("·", "•", "|", "/", "—", "–", "-"))


def split_lines(text: str) -> list[str]:
    """Non-empty stripped lines of a normalised text, separator-only lines left out."""
    return [
        s for s in (ln.strip(" \t") for ln in text.split("\n")) if s and s not in _SEPARATOR_LINES
    ]


def to_int(digits: str) -> int:
    """``"12 345"`` -> 12345."""
    return int(digits.replace(" ", ""))


def to_decimal(whole: str, frac: str | None = None) -> Decimal:
    """``("1 299", "50")`` -> Decimal("1299.50") rounded to kopecks."""
    value = Decimal(whole.replace(" ", "") + ("." + frac if frac else ""))
    return value.quantize(TWO_PLACES) if frac else value


def money(value: object) -> Decimal | None:
    """A price from a JSON value: a number of roubles or a string like ``"1 245 ₽"``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        amount = Decimal(str(value))
    else:
        text = normalise(str(value)).strip()
        if not text or len(text) > _MAX_MONEY_TEXT:
            return None
        amount = Price.fromstring(text).amount
    if amount is None or amount <= 0:
        return None
    return _clean(amount)


def kopecks(value: object) -> Decimal | None:
    """Wildberries API prices are integers in kopecks."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return _clean(Decimal(int(value)) / 100)


def _clean(amount: Decimal) -> Decimal:
    quantized = amount.quantize(TWO_PLACES)
    return quantized.quantize(Decimal(1)) if quantized == quantized.to_integral() else quantized


def rating_value(value: object) -> Decimal | None:
    """A rating in (0, 5]; ``"4,8"``, ``4.83`` or ``"4.8"``; zero means "no rating"."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    if not number.is_finite() or number <= 0 or number > 5:
        return None
    return number.quantize(TWO_PLACES).normalize() if number.as_tuple().exponent < -2 else number


def count_value(value: object) -> int | None:
    """A non-negative integer from a JSON value or ``"2 508"``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    match = _COUNT_NUM.search(normalise(str(value)))
    return to_int(match.group(0)) if match else None


def scaled(number: str, unit: str | None) -> int:
    """``("2", "тыс.")`` -> 2000; ``("1,5", "млн")`` -> 1500000."""
    value = Decimal(number.replace(" ", "").replace(",", "."))
    if unit:
        unit = unit.lower()
        if unit.startswith("тыс") or unit == "k":
            value *= 1000
        elif unit.startswith("млн") or unit == "m":
            value *= 1_000_000
    return int(value)
