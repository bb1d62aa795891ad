"""Pages per second of the rules parser on one core, next to a read-and-normalise baseline.

Usage: python bench/parser_speed.py [FILE.jsonl] [--seconds 2.5]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parser.rules import parse_rules  # noqa: E402
from parser.rules.scoring import load_samples, sample_sku  # noqa: E402
from parser.types import ParseError  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "eval" / "dev_pages.jsonl"
_SPACES = re.compile(r"\s+")

Page = tuple[str, str, str]


def _baseline(page: Page) -> None:
    _SPACES.sub(" ", unicodedata.normalize("NFKC", page[0])).strip()


def _parse(page: Page) -> None:
    with contextlib.suppress(ParseError):
        parse_rules(*page)


def rate(pages: list[Page], work: Callable[[Page], None], seconds: float) -> float:
    """Pages per second of ``work`` over repeated passes taking about ``seconds``."""
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for page in pages:
            work(page)
        done += len(pages)
        elapsed = time.perf_counter() - start
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    args.add_argument("--seconds", type=float, default=2.5)
    options = args.parse_args(argv)
    pages = [
        (s.get("raw_text") or "", s.get("marketplace", ""), sample_sku(s))
        for s in load_samples([options.file])
    ]
    rate(pages, _parse, 0.2)  # warm-up: imports, regex caches
    parsed = rate(pages, _parse, options.seconds)
    baseline = rate(pages, _baseline, options.seconds)
    print(f"pages: {len(pages)}")
    print(f"baseline (read + NFKC + whitespace): {baseline:,.0f} pages/s")
    print(f"parse_rules: {parsed:,.0f} pages/s")
    print(f"ratio parse/baseline: {parsed / baseline:.3f} ({baseline / parsed:.1f}x slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
