"""Field-by-field scoring of the rules parser against labelled samples (bench and tests)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from parser.types import PAGE_FIELDS, ParsedCard, ParseError

SCORED_FIELDS = PAGE_FIELDS
_PRICES = frozenset(("current_price", "old_price", "spp_price"))
_PRICE_TOLERANCE = Decimal("0.01")
_RATING_TOLERANCE = Decimal("0.05")
_TRAILING_DIGITS = re.compile(r"(\d{5,})$")

Parser = Callable[[str, str, str], ParsedCard]


@dataclass(slots=True)
class Mismatch:
    sample_id: str
    marketplace: str
    field: str
    expected: Any
    got: Any


@dataclass(slots=True)
class Score:
    """Totals per marketplace and per field, and every mismatch."""

    correct: int = 0
    total: int = 0
    by_marketplace: dict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    by_field: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    mismatches: list[Mismatch] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    samples: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def add(self, marketplace: str, name: str, ok: bool) -> None:
        for bucket in (self.by_marketplace[marketplace], self.by_field[name]):
            bucket[0] += int(ok)
            bucket[1] += 1
        self.correct += int(ok)
        self.total += 1


def load_samples(paths: Iterable[Path | str]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with Path(path).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def sample_sku(sample: dict[str, Any]) -> str:
    """The sample's sku, or the trailing digits of its id (real pages may lack a sku)."""
    sku = sample.get("sku")
    if sku:
        return str(sku)
    match = _TRAILING_DIGITS.search(str(sample.get("id", "")))
    return match.group(1) if match else ""


def _norm_title(value: Any) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(value)).split()).casefold()


def field_matches(name: str, expected: Any, got: Any) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if name in _PRICES:
        return abs(Decimal(str(expected)) - Decimal(str(got))) <= _PRICE_TOLERANCE
    if name == "rating":
        return abs(Decimal(str(expected)) - Decimal(str(got))) <= _RATING_TOLERANCE
    if name == "title":
        return _norm_title(expected) == _norm_title(got)
    if name == "in_stock":
        return bool(expected) is bool(got) and isinstance(got, bool)
    return int(expected) == int(got)


def score_samples(samples: Iterable[dict[str, Any]], parse: Parser) -> Score:
    """Score every sample; a ParseError counts every expected field as wrong."""
    score = Score()
    for sample in samples:
        score.samples += 1
        expected = sample.get("expected") or {}
        skip = set(sample.get("unknown_fields") or [])
        marketplace = sample.get("marketplace", "")
        card: ParsedCard | None = None
        try:
            card = parse(sample.get("raw_text") or "", marketplace, sample_sku(sample))
        except ParseError as exc:
            score.errors[sample["id"]] = str(exc)
        for name in SCORED_FIELDS:
            if name not in expected or name in skip:
                continue
            got = getattr(card, name) if card is not None else None
            ok = card is not None and field_matches(name, expected[name], got)
            score.add(marketplace, name, ok)
            if not ok:
                shown = got if card is not None else "<ParseError>"
                score.mismatches.append(
                    Mismatch(sample["id"], marketplace, name, expected[name], shown)
                )
    return score


def report(score: Score, verbose: bool = False, show_misses: bool = False) -> list[str]:
    """Printable lines; the overall figure is always the last line.

    ``verbose`` lists parse errors and every mismatch in sample order; ``show_misses`` groups
    the mismatches by marketplace and field.
    """
    lines = [f"samples: {score.samples}"]
    lines.append("per marketplace:")
    for name, (ok, total) in sorted(score.by_marketplace.items()):
        lines.append(f"  {name:<15} {ok / total:.4f} ({ok}/{total})")
    lines.append("per field:")
    for name in SCORED_FIELDS:
        if name in score.by_field:
            ok, total = score.by_field[name]
            lines.append(f"  {name:<15} {ok / total:.4f} ({ok}/{total})")
    if score.errors:
        lines.append(f"parse errors: {len(score.errors)}")
        if verbose:
            lines.extend(f"  {sid}: {msg}" for sid, msg in score.errors.items())
    if verbose and score.mismatches:
        lines.append("mismatches:")
        lines.extend(
            f"  {m.sample_id:<24} {m.field:<15} expected={m.expected!r} got={m.got!r}"
            for m in score.mismatches
        )
    if show_misses:
        lines.extend(_misses(score))
    lines.append(f"overall: {score.accuracy:.4f} ({score.correct}/{score.total} fields)")
    return lines


def _misses(score: Score) -> list[str]:
    grouped: dict[str, dict[str, list[Mismatch]]] = defaultdict(lambda: defaultdict(list))
    for miss in score.mismatches:
        grouped[miss.marketplace][miss.field].append(miss)
    lines = [f"misses: {len(score.mismatches)}"]
    for marketplace in sorted(grouped):
        by_field = grouped[marketplace]
        lines.append(f"  {marketplace}: {sum(len(m) for m in by_field.values())}")
        for name in SCORED_FIELDS:
            for miss in by_field.get(name, []):
                lines.append(
                    f"    {name:<15} {miss.sample_id:<28} "
                    f"expected={miss.expected!r} got={miss.got!r}"
                )
    return lines
