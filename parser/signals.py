"""Signal receivers of the parser, connected in ``ParserConfig.ready``."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from parser.services import clear_route_cache


def route_changed(**kwargs: Any) -> None:
    """A route was saved or deleted: forget this process's cached routes."""
    clear_route_cache()
    # Again after commit: a parse in between may have cached the rows as they were before.
    transaction.on_commit(clear_route_cache)
