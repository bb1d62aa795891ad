from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from office.models import OfficeAgentStatus, OfficeStatus

# What ``POST /status`` takes as ``status``: the reporter's methods.
REPORTS = ("working", "idle", "warning", "error", "offline", "heartbeat")
MAX_METRICS_BYTES = 8 * 1024
MAX_MESSAGE = 200


def _max(field: str) -> int:
    return OfficeAgentStatus._meta.get_field(field).max_length


class OfficeStatusReportSerializer(serializers.Serializer):
    agent_id = serializers.RegexField(r"^[A-Za-z0-9_.:-]+$", max_length=_max("agent_id"))
    department = serializers.RegexField(r"^[A-Za-z0-9_-]+$", max_length=_max("department"))
    name = serializers.CharField(max_length=_max("name"))
    brand = serializers.CharField(
        max_length=_max("brand"), required=False, allow_blank=True, allow_null=True
    )
    status = serializers.ChoiceField(choices=REPORTS)
    task = serializers.CharField(max_length=_max("task"), required=False, allow_blank=True)
    message = serializers.CharField(max_length=MAX_MESSAGE, required=False, allow_blank=True)
    metrics = serializers.DictField(required=False, allow_null=True, allow_empty=True)
    salary_equivalent = serializers.IntegerField(required=False, min_value=0, max_value=100_000_000)
    fte_coefficient = serializers.DecimalField(
        max_digits=3,
        decimal_places=2,
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("9.99"),
    )

    def validate_metrics(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value).encode()) > MAX_METRICS_BYTES:
            raise serializers.ValidationError(
                _("At most %(n)s bytes of JSON.") % {"n": MAX_METRICS_BYTES}
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs["status"]
        if kind in ("working", "warning") and not attrs.get("task"):
            raise serializers.ValidationError({"task": _("Required for this status.")})
        if kind == "error" and not (attrs.get("message") or attrs.get("task")):
            raise serializers.ValidationError({"message": _("Required for this status.")})
        return attrs


class OfficeAgentRowSerializer(serializers.Serializer):
    agent_id = serializers.CharField()
    department = serializers.CharField()
    name = serializers.CharField()
    brand = serializers.CharField()
    status = serializers.ChoiceField(
        choices=OfficeStatus.choices,
        help_text="Shown status: offline when the last activity is older than 5 minutes.",
    )
    stored_status = serializers.ChoiceField(choices=OfficeStatus.choices)
    task = serializers.CharField()
    metrics = serializers.DictField()
    last_activity = serializers.DateTimeField(allow_null=True)
    salary_equivalent = serializers.IntegerField()
    fte_coefficient = serializers.DecimalField(max_digits=3, decimal_places=2)


class OfficeTotalsSerializer(serializers.Serializer):
    agents = serializers.IntegerField()
    fte = serializers.DecimalField(max_digits=10, decimal_places=2)
    salary = serializers.IntegerField(help_text="₽ a month, salary equivalents weighted by FTE")


class OfficeAgentListSerializer(serializers.Serializer):
    agents = OfficeAgentRowSerializer(many=True)
    totals = OfficeTotalsSerializer()
    departments = serializers.DictField(child=OfficeTotalsSerializer())
