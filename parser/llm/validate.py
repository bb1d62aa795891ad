"""Turn an LLM's answer into card fields, and merge it with the rules result.

An LLM answer is untrusted input. :func:`extract_json` finds the first JSON object in the text
(bare, inside a fenced block, or after some prose); :func:`validate_answer` keeps only the fields
of a known name with a value of the right type and range and says what it dropped and why.

Merge strategy (:func:`merge`): the LLM answer is used only when it is *complete* (it has a
valid price, or it says the product is out of stock); then, field by field, the LLM value wins
when valid, and the rules value fills the gaps. A filled-in price that contradicts the LLM's
prices (old price below the price, wallet price above it) is dropped rather than mixed in. The
source of every field ("llm" or "rules") is recorded in the parse job. An incomplete answer is
not merged at all: the caller falls back to the rules result.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from parser.types import PAGE_FIELDS, ParsedCard

# The fields an LLM is asked for, in the order the prompt lists them.
LLM_FIELDS = PAGE_FIELDS

FIELD_HELP: dict[str, str] = {
    "title": "product title (string)",
    "current_price": "the price a buyer pays now, roubles (number)",
    "old_price": "the crossed-out price before the discount, roubles (number)",
    "spp_price": "the price with the marketplace wallet/card (WB Кошелёк, Ozon Карта) (number)",
    "in_stock": "whether the product can be bought now (true/false)",
    "stock_quantity": "items left, when the page says so (integer)",
    "rating": "average rating 0–5 (number)",
    "reviews_count": "number of reviews/ratings (integer)",
    "sales_count": "number of purchases, when shown (integer)",
}

# Names LLMs like to use instead of ours.
ALIASES: dict[str, str] = {
    "name": "title",
    "product_title": "title",
    "price": "current_price",
    "final_price": "current_price",
    "sale_price": "current_price",
    "original_price": "old_price",
    "price_before_discount": "old_price",
    "crossed_price": "old_price",
    "wallet_price": "spp_price",
    "card_price": "spp_price",
    "available": "in_stock",
    "availability": "in_stock",
    "stock": "stock_quantity",
    "quantity": "stock_quantity",
    "reviews": "reviews_count",
    "review_count": "reviews_count",
    "ratings_count": "reviews_count",
    "sales": "sales_count",
    "orders_count": "sales_count",
}

PRICE_FIELDS = ("current_price", "old_price", "spp_price")
COUNT_FIELDS = ("stock_quantity", "reviews_count", "sales_count")
MAX_PRICE = Decimal("100000000")
MAX_COUNT = 2_147_483_647  # PriceHistory stores counts in a 32-bit integer column
MAX_TITLE = 500
CENT = Decimal("0.01")

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_SPACES = re.compile(r"[\s\u00a0\u2009\u202f']")
_CURRENCY = re.compile(r"(₽|руб\.?|rub|р\.)", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


class InvalidJSON(ValueError):
    """The answer holds no JSON object."""


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, in a ```json fence, or embedded in prose."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidJSON("empty answer")
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise InvalidJSON("no JSON object in the answer")


@dataclass(frozen=True)
class Validated:
    """The valid fields of an answer and the reason each dropped field was dropped."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """A price, or an explicit "out of stock": enough for an observation."""
        return self.values.get("current_price") is not None or self.values.get("in_stock") is False


def _price(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | float | Decimal):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        cleaned = _CURRENCY.sub("", _SPACES.sub("", value)).replace(",", ".")
        if not _NUMBER.match(cleaned):
            raise ValueError(f"not a number: {value!r}"[:120])
        amount = Decimal(cleaned)
    else:
        raise ValueError(f"not a number: {type(value).__name__}")
    if not amount.is_finite() or amount <= 0 or amount >= MAX_PRICE:
        raise ValueError(f"out of range (0, {MAX_PRICE}): {amount}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, float | Decimal):
        try:
            number = int(value)
        except (OverflowError, ValueError, InvalidOperation) as exc:  # inf, NaN
            raise ValueError(f"not an integer: {value}") from exc
        if number != value:
            raise ValueError(f"not an integer: {value}")
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _SPACES.sub("", value).isdigit():
        number = int(_SPACES.sub("", value))
    else:
        raise ValueError(f"not an integer: {value!r}"[:120])
    if not 0 <= number <= MAX_COUNT:
        raise ValueError(f"out of range: {number}")
    return number


def _rating(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("not a number")
    try:
        rating = Decimal(value.replace(",", ".").strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a number: {value!r}"[:120]) from exc
    if not rating.is_finite() or not 0 <= rating <= 5:
        raise ValueError(f"out of range 0–5: {rating}")
    return rating.quantize(CENT, rounding=ROUND_HALF_UP)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "да"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "нет"}:
        return False
    raise ValueError(f"not a boolean: {value!r}"[:120])


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("not a non-empty string")
    return " ".join(value.split())[:MAX_TITLE]


_CONVERTERS = {
    "title": _title,
    "current_price": _price,
    "old_price": _price,
    "spp_price": _price,
    "in_stock": _bool,
    "stock_quantity": _count,
    "rating": _rating,
    "reviews_count": _count,
    "sales_count": _count,
}


def validate_answer(answer: Mapping[str, Any]) -> Validated:
    """The fields of ``answer`` that have a valid value; ``null``s are simply absent."""
    data: Mapping[str, Any] = answer
    # Some models wrap the object: {"product": {...}} / {"result": {...}}.
    if len(answer) == 1 and isinstance(nested := next(iter(answer.values())), dict):
        data = nested
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key).strip().lower()
        key = ALIASES.get(key, key)
        if key not in _CONVERTERS or raw_value is None or key in values:
            continue
        try:
            values[key] = _CONVERTERS[key](raw_value)
        except ValueError as exc:
            problems[key] = str(exc)
    price = values.get("current_price")
    if price is not None:
        if (old := values.get("old_price")) is not None and old < price:
            del values["old_price"]
            problems["old_price"] = f"below the price ({old} < {price})"
        if (spp := values.get("spp_price")) is not None and spp > price:
            del values["spp_price"]
            problems["spp_price"] = f"above the price ({spp} > {price})"
    return Validated(values=values, problems=problems)


@dataclass(frozen=True)
class Merged:
    """The merged card and where each of its LLM fields came from."""

    card: ParsedCard
    sources: dict[str, str]
    dropped: dict[str, str]


def merge(llm: Validated, rules: ParsedCard | None, backend: str) -> Merged:
    """The LLM values where valid, the rules values in the gaps; see the module docstring."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name in LLM_FIELDS:
        if (value := llm.values.get(name)) is not None:
            values[name], sources[name] = value, "llm"
        elif rules is not None and (value := getattr(rules, name)) is not None:
            values[name], sources[name] = value, "rules"
        else:
            values[name] = None
    price = values["current_price"]
    if price is not None and sources.get("current_price") == "llm":
        old, spp = values["old_price"], values["spp_price"]
        if old is not None and sources.get("old_price") == "rules" and old < price:
            values["old_price"] = None
            dropped["old_price"] = f"rules value {old} is below the LLM price {price}"
            sources.pop("old_price")
        if spp is not None and sources.get("spp_price") == "rules" and spp > price:
            values["spp_price"] = None
            dropped["spp_price"] = f"rules value {spp} is above the LLM price {price}"
            sources.pop("spp_price")
    # The LLM says "out of stock": a rules stock count would contradict it.
    if (
        values["in_stock"] is False
        and sources.get("in_stock") == "llm"
        and sources.get("stock_quantity") == "rules"
        and values["stock_quantity"]
    ):
        values["stock_quantity"] = None
        sources.pop("stock_quantity")
    base = rules if rules is not None else ParsedCard()
    found = (set(base.found) - set(LLM_FIELDS)) | {
        name for name in LLM_FIELDS if values[name] is not None
    }
    card = dataclasses.replace(base, **values, backend=backend, found=frozenset(found))
    return Merged(card=card, sources=sources, dropped=dropped)


def card_to_json(card: ParsedCard) -> dict[str, Any]:
    """The LLM fields of a card as JSON-safe values (Decimals as strings)."""
    result: dict[str, Any] = {}
    for name in LLM_FIELDS:
        value = getattr(card, name)
        result[name] = str(value) if isinstance(value, Decimal) else value
    return result


def field_list() -> str:
    """The answer format appended to every prompt."""
    lines = [f'- "{name}": {FIELD_HELP[name]}' for name in LLM_FIELDS]
    return (
        "Answer with one JSON object and nothing else, with these keys "
        "(null when the page does not show the value):\n" + "\n".join(lines)
    )
