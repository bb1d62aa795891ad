from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Alert, AlertKind, AlertRule, HoldReason


class AlertSerializer(serializers.ModelSerializer):
    """An alert with the figures that triggered it (null where they do not apply)."""

    rule_id = serializers.IntegerField(read_only=True)
    marketplace = serializers.SerializerMethodField()
    brand = serializers.SerializerMethodField()
    sku = serializers.SerializerMethodField()
    competitor_sku = serializers.SerializerMethodField()
    sku_url = serializers.SerializerMethodField()
    competitor_url = serializers.SerializerMethodField()
    price_level = serializers.SerializerMethodField()
    hold = serializers.SerializerMethodField(
        help_text="Why the alert is held back from its recipients: agents_offline or "
        "night_unfinished (the cause of its evidence may be ours); null when it is not held."
    )

    class Meta:
        model = Alert
        fields = (
            "id",
            "rule_id",
            "kind",
            "status",
            "marketplace",
            "brand",
            "sku",
            "competitor_sku",
            "sku_url",
            "competitor_url",
            "price_level",
            "our_price",
            "their_price",
            "difference_rub",
            "difference_pct",
            "suspicious",
            "details",
            "our_observation_id",
            "their_observation_id",
            "muted_until",
            "hold",
            "held_since",
            "released_at",
            "opened_at",
            "updated_at",
            "resolved_at",
            "acknowledged_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_marketplace(self, alert: Alert) -> str | None:
        return alert.marketplace or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_brand(self, alert: Alert) -> str | None:
        return alert.brand or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_sku(self, alert: Alert) -> str | None:
        return alert.subscription.sku if alert.subscription else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_competitor_sku(self, alert: Alert) -> str | None:
        return alert.competitor.competitor_sku if alert.competitor else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_sku_url(self, alert: Alert) -> str | None:
        return alert.subscription.url if alert.subscription else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_competitor_url(self, alert: Alert) -> str | None:
        return alert.competitor.url if alert.competitor else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_price_level(self, alert: Alert) -> str | None:
        return alert.price_level or None

    @extend_schema_field(serializers.ChoiceField(choices=HoldReason.choices, allow_null=True))
    def get_hold(self, alert: Alert) -> str | None:
        return alert.hold or None


PRICE_KINDS = (AlertKind.DUMPING, AlertKind.PRICE_DROP, AlertKind.PRICE_RISE)


@extend_schema_field(
    {"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2})?$", "example": "07:00", "nullable": True}
)
class ClockTimeField(serializers.TimeField):
    """A local wall-clock time ("07:00"): OpenAPI's ``time`` format would demand a UTC offset."""


class AlertRuleSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: ClockTimeField,
    }

    class Meta:
        model = AlertRule
        fields = (
            "id",
            "kind",
            "name",
            "threshold_pct",
            "threshold_rub",
            "rating_threshold",
            "nights",
            "deadline",
            "price_level",
            "consecutive",
            "marketplace",
            "brand",
            "subscription",
            "recipient_users",
            "recipient_groups",
            "channels",
            "quiet_from",
            "quiet_to",
            "cooldown_hours",
            "is_active",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "created_at", "updated_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def value(name: str) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, None)

        kind = value("kind")
        if kind == AlertKind.RATING_BELOW and value("rating_threshold") is None:
            raise serializers.ValidationError(
                {"rating_threshold": _("A rating rule needs a rating threshold.")}
            )
        if (value("quiet_from") is None) != (value("quiet_to") is None):
            raise serializers.ValidationError(
                {"quiet_to": _("Quiet hours need both a start and an end.")}
            )
        return attrs
