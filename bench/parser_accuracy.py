"""Field accuracy of the rules parser on labelled samples.

Usage: python bench/parser_accuracy.py FILE.jsonl [FILE2 ...] [--verbose] [--show-misses]
Prints accuracy per marketplace and per field; ``--show-misses`` lists every wrong field grouped
by marketplace and field (expected and got), ``--verbose`` also lists parse errors.
The last line printed is ``overall: 0.9912 (1234/1245 fields)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parser.rules import parse_rules
from parser.rules.scoring import load_samples, report, score_samples


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("files", nargs="+", type=Path, help="JSONL sample files")
    args.add_argument("-v", "--verbose", action="store_true", help="list every mismatch")
    args.add_argument(
        "--show-misses",
        action="store_true",
        help="list the wrong fields grouped by marketplace and field",
    )
    options = args.parse_args(argv)
    score = score_samples(load_samples(options.files), parse_rules)
    print("\n".join(report(score, verbose=options.verbose, show_misses=options.show_misses)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
