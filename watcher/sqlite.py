"""SQLite's LIKE folds case for ASCII only; make it fold Cyrillic too, as PostgreSQL does.

Django's ``icontains`` (admin search) is ``LIKE … ESCAPE '\\'`` on SQLite. SQLite lets an
application replace ``like()``; ours compares case-folded text, so «плед» finds «Плед» on a
laptop exactly as on the production database.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _pattern(like: str, escape: str | None) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(like)
    for char in chars:
        if escape is not None and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | re.IGNORECASE)


def unicode_like(pattern: str | None, value: Any, escape: str | None = None) -> bool | None:
    if pattern is None or value is None:
        return None
    return _pattern(pattern.casefold(), escape).fullmatch(str(value).casefold()) is not None


def install_unicode_like(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A ``connection_created`` receiver: on SQLite, LIKE ignores case in every alphabet."""
    if connection.vendor == "sqlite":
        raw = connection.connection
        raw.create_function("like", 2, unicode_like, deterministic=True)
        raw.create_function("like", 3, unicode_like, deterministic=True)
