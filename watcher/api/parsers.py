"""The API's JSON parser: DRF's, with too deeply nested input a 400 instead of a crash."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            # Python's decoder recurses per nesting level; a few KB of "[[[[" would be a 500.
            raise ParseError(_("JSON parse error - nested too deeply.")) from exc
