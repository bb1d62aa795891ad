"""Input of the report endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

DEFAULT_RANGE = timedelta(days=1)
MAX_LIMIT = 500


class ReportQuerySerializer(serializers.Serializer):
    """``from``/``to`` (ISO 8601, default: the last 24 hours), ``limit``, ``offset``."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=50)
    offset = serializers.IntegerField(min_value=0, default=0)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "from" is a Python keyword: declare the pair here.
        fields["from"] = serializers.DateTimeField(required=False)
        fields["to"] = serializers.DateTimeField(required=False)
        return fields

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "dict"):
            data = data.dict()
        data = dict(data)
        for key in ("from", "to"):
            value = data.get(key)
            # A "+03:00" offset arrives as " 03:00" when the client did not encode the "+".
            if isinstance(value, str) and "T" in value and " " in value.strip():
                data[key] = value.strip().replace(" ", "+")
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("to") or timezone.now()
        start = attrs.get("from") or end - DEFAULT_RANGE
        if start > end:
            raise serializers.ValidationError({"from": [_("'from' must not be after 'to'.")]})
        attrs["from"], attrs["to"] = start, end
        return attrs
