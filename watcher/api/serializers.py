"""Request and response shapes of the watcher API (SPEC §3)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from parser.types import Marketplace
from watcher.models import AgentStatus, CommandAction, EmulationConfig

# JSON numbers an agent may send: what every JSON reader represents exactly (and PostgreSQL's
# jsonb stores); anything larger is a mistake or an attack.
MAX_JSON_INT = 2**53


class BoundedJSONObject(serializers.DictField):
    """A JSON object of bounded size and depth, with no NUL character (PostgreSQL refuses it) in
    any key or string and integers within ±2**53."""

    def __init__(self, *, max_bytes: int, max_depth: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        self._check(value, 1)
        if len(json.dumps(value, ensure_ascii=False).encode()) > self.max_bytes:
            raise serializers.ValidationError(
                _("Larger than %(limit)s bytes.") % {"limit": self.max_bytes}
            )
        return value

    def _check(self, value: Any, depth: int) -> None:
        if isinstance(value, dict | list):
            if depth > self.max_depth:
                raise serializers.ValidationError(
                    _("Nested deeper than %(depth)s levels.") % {"depth": self.max_depth}
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                self._check(key, depth)
                self._check(item, depth + 1)
        elif isinstance(value, str):
            if "\x00" in value:
                raise serializers.ValidationError(_("Null characters are not allowed."))
        elif isinstance(value, int) and abs(value) > MAX_JSON_INT:
            raise serializers.ValidationError(
                _("Integers must be within ±%(limit)s.") % {"limit": MAX_JSON_INT}
            )


class TaskSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    url = serializers.URLField(read_only=True)
    marketplace = serializers.ChoiceField(choices=Marketplace.choices, read_only=True)
    sku = serializers.CharField(read_only=True)
    competitor_id = serializers.IntegerField(allow_null=True, read_only=True)
    priority = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    lease_version = serializers.IntegerField(
        read_only=True, help_text="Echo it in the report to fence against an expired lease."
    )


class ReportSerializer(serializers.Serializer):
    raw_text = serializers.CharField(allow_blank=True, trim_whitespace=False)
    timing_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000)
    success = serializers.BooleanField()
    error = serializers.CharField(
        allow_null=True, allow_blank=True, required=False, default=None, max_length=2000
    )
    lease_version = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )
    screenshot = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        help_text=(
            "Optional evidence from a browser agent: the product block as a base64 JPEG or PNG "
            "of at most WATCHER_MAX_SCREENSHOT_BYTES (decoded; more is 413)."
        ),
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": [_("Expected a JSON object.")]})
        return super().to_internal_value(data)

    def validate_screenshot(self, value: str | None) -> bytes | None:
        if not value:
            return None
        try:
            image = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError(_("Not valid base64.")) from exc
        if not image.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
            raise serializers.ValidationError(_("Expected a JPEG or PNG image."))
        return image


class ReportResultSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    status = serializers.CharField()
    outcome = serializers.CharField()
    duplicate = serializers.BooleanField()
    price_history_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class HeartbeatSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AgentStatus.choices)
    current_task = serializers.UUIDField(allow_null=True, required=False, default=None)
    stats = BoundedJSONObject(
        max_bytes=16 * 1024, max_depth=4, allow_null=True, required=False, default=None
    )
    ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The agent's public IP (else stats.ip)."
    )

    # The stats the server reads into the agent's row, checked as the row's columns need.
    STATS_FIELDS = {
        "ip": serializers.IPAddressField(allow_null=True),
        "modem_operator": serializers.CharField(max_length=100, allow_blank=True),
        "version": serializers.CharField(max_length=50, allow_blank=True),
        "signal_strength": serializers.IntegerField(
            min_value=-1000, max_value=1000, allow_null=True
        ),
    }

    def validate_stats(self, stats: dict[str, Any] | None) -> dict[str, Any] | None:
        errors: dict[str, Any] = {}
        for name, field in self.STATS_FIELDS.items():
            if stats and name in stats:
                try:
                    field.run_validation(stats[name])
                except serializers.ValidationError as exc:
                    errors[name] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return stats

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        stats = attrs.get("stats") or {}
        ip = attrs.get("ip") or stats.get("ip")
        if ip is not None:
            attrs["ip"] = serializers.IPAddressField().run_validation(ip)
        return attrs


class PanicSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    details = BoundedJSONObject(max_bytes=16 * 1024, max_depth=4, required=False, default=dict)

    def validate_details(self, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("ip") is not None:
            serializers.IPAddressField().run_validation(value["ip"])
        return value


class EmulationConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmulationConfig
        fields = (
            "min_delay_ms", "max_delay_ms", "scroll_enabled", "scroll_steps", "mouse_movement",
            "mouse_curve", "page_view_min_ms", "page_view_max_ms", "random_order",
        )  # fmt: skip


class AgentSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=AgentStatus.choices)
    current_ip = serializers.IPAddressField(allow_null=True)
    last_heartbeat = serializers.DateTimeField(allow_null=True)
    tasks_completed_today = serializers.IntegerField()
    tasks_failed_today = serializers.IntegerField()


class AgentListSerializer(serializers.Serializer):
    agents = AgentSummarySerializer(many=True)


class AgentDetailSerializer(AgentSummarySerializer):
    modem_operator = serializers.CharField(allow_blank=True)
    signal_strength = serializers.IntegerField(allow_null=True)
    cookies_updated_at = serializers.DateTimeField(allow_null=True)
    current_task = serializers.UUIDField(allow_null=True)
    avg_task_time_ms = serializers.FloatField(allow_null=True)
    version = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class TaskStatsSerializer(serializers.Serializer):
    total_queued = serializers.IntegerField()
    total_in_progress = serializers.IntegerField()
    total_completed_today = serializers.IntegerField()
    total_failed_today = serializers.IntegerField()
    by_marketplace = serializers.DictField(child=serializers.IntegerField())
    by_agent = serializers.DictField(child=serializers.IntegerField())
    avg_completion_time_ms = serializers.FloatField(allow_null=True)
    estimated_completion_time = serializers.DateTimeField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


class CommandRequestSerializer(serializers.Serializer):
    command = serializers.ChoiceField(choices=CommandAction.choices)
    params = BoundedJSONObject(max_bytes=8 * 1024, max_depth=4, required=False, default=dict)


class CommandSentSerializer(serializers.Serializer):
    status = serializers.CharField(default="ok")
    command = serializers.ChoiceField(choices=CommandAction.choices)
    command_id = serializers.UUIDField()


class BroadcastSentSerializer(serializers.Serializer):
    status = serializers.CharField(default="ok")
    command = serializers.ChoiceField(choices=CommandAction.choices)
    sent_to = serializers.IntegerField(help_text="How many connected agents it was sent to.")
