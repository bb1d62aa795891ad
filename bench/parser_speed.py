"""Pages per second of the rules parser on one core, next to a read-and-normalise baseline.

Usage: python bench/parser_speed.py [FILE.jsonl] [--seconds 2.5] [--no-scaling]

Then the time of a few hostile page shapes at 75, 150 and 300 KB (issue 19): parsing time must
grow linearly, so each 300 KB figure should be about 4x its 75 KB figure, not 16x.
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
    """Pages per CPU second of ``work`` over repeated passes taking about ``seconds``.

    CPU time of this process, not wall time: on a shared machine other processes' load would
    otherwise be measured too. One process, one thread: one core.
    """
    done = 0
    start = time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        for page in pages:
            work(page)
        done += len(pages)
        elapsed = time.process_time() - start
    return done / elapsed


# Simple markup that once took quadratic time (runs of spaces, nested lists, nested blocks).
SHAPES: dict[str, Callable[[int], str]] = {
    "text, a run of spaces": lambda n: "Плед\n1 299 ₽\na" + " " * n + "b",
    "html, a run of spaces": lambda n: f"<html><body><h1>Плед</h1><p>a{' ' * n}b</p></body></html>",
    "html, <p> price lines": lambda n: "<html><body><h1>Плед</h1>" + "<p>1 ₽</p>" * (n // 10),
    "html, unclosed <li>": lambda n: "<html><body><h1>Плед</h1><ul>" + "<li>товар" * (n // 10),
    "html, nested <div> (refused)": lambda n: "<html><body>" + "<div>" * (n // 5),
    "json, nested arrays (refused)": lambda n: "[" * (n // 2) + "]" * (n // 2),
}


def scaling() -> list[str]:
    lines = ["hostile shapes (CPU ms at 75 / 150 / 300 KB, ratio 300/75; linear is ~4):"]
    for name, build in SHAPES.items():
        times = []
        _parse((build(1_000), "ozon", "1"))  # warm-up: caches, first-call costs
        for size in (75_000, 150_000, 300_000):
            page = build(size)
            runs = []
            for _ in range(3):  # the best of three CPU times: the least disturbed
                start = time.process_time()
                _parse((page, "ozon", "1"))
                runs.append((time.process_time() - start) * 1000)
            times.append(min(runs))
        figures = " / ".join(f"{t:7.1f}" for t in times)
        lines.append(f"  {name:<30} {figures}   x{times[2] / max(times[0], 1e-3):.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    args.add_argument("--seconds", type=float, default=2.5)
    args.add_argument("--no-scaling", action="store_true", help="skip the hostile-shape timings")
    options = args.parse_args(argv)
    pages = [
        (s.get("raw_text") or "", s.get("marketplace", ""), sample_sku(s))
        for s in load_samples([options.file])
    ]
    rate(pages, _parse, 0.2)  # warm-up: imports, regex caches
    parsed = rate(pages, _parse, options.seconds)
    baseline = rate(pages, _baseline, options.seconds)
    print(f"pages: {len(pages)}")
    print(f"baseline (read + NFKC + whitespace): {baseline:,.0f} pages per CPU second")
    print(f"parse_rules: {parsed:,.0f} pages per CPU second")
    print(f"ratio parse/baseline: {parsed / baseline:.3f} ({baseline / parsed:.1f}x slower)")
    if not options.no_scaling:
        print("\n".join(scaling()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
