"""The alerts API: alerts for people who act on them, and the rules (SPEC §9)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts import engine
from alerts.api.serializers import AlertRuleSerializer, AlertSerializer
from alerts.models import Alert, AlertKind, AlertRule, AlertStatus
from config.roles import IsStatsReader


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _choice(request: Request, name: str, choices: type[AlertStatus] | type[AlertKind]) -> str:
    value = request.query_params.get(name, "")
    if value and value not in choices.values:
        raise ValidationError({name: _("Unknown value: %(value)s") % {"value": value}})
    return value


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise ValidationError({name: _("Null characters are not allowed.")})
    return value


@extend_schema_view(
    get=extend_schema(
        operation_id="alerts_list",
        parameters=[
            OpenApiParameter("status", enum=AlertStatus.values, description="Only this status"),
            OpenApiParameter("kind", enum=AlertKind.values, description="Only this kind"),
            OpenApiParameter("marketplace", str, description="Only this marketplace"),
            OpenApiParameter("brand", str, description="Only this brand"),
            OpenApiParameter(
                "held",
                bool,
                description="true: only alerts held while the cause may be ours; false: the others",
            ),
        ],
    )
)
class AlertListView(generics.ListAPIView):
    """Alerts, newest first."""

    permission_classes = (IsStatsReader,)
    serializer_class = AlertSerializer
    pagination_class = Pages

    def get_queryset(self) -> QuerySet[Alert]:
        alerts = Alert.objects.select_related("subscription", "competitor").order_by(
            "-opened_at", "-id"
        )
        if status := _choice(self.request, "status", AlertStatus):
            alerts = alerts.filter(status=status)
        if kind := _choice(self.request, "kind", AlertKind):
            alerts = alerts.filter(kind=kind)
        if marketplace := _text(self.request, "marketplace"):
            alerts = alerts.filter(marketplace=marketplace)
        if brand := _text(self.request, "brand"):
            alerts = alerts.filter(brand=brand)
        held = _text(self.request, "held")
        if held:
            if held not in ("true", "false"):
                raise ValidationError({"held": _("Unknown value: %(value)s") % {"value": held}})
            alerts = alerts.exclude(hold="") if held == "true" else alerts.filter(hold="")
        return alerts


@extend_schema_view(get=extend_schema(operation_id="alerts_detail"))
class AlertDetailView(generics.RetrieveAPIView):
    permission_classes = (IsStatsReader,)
    serializer_class = AlertSerializer
    queryset = Alert.objects.select_related("subscription", "competitor")


class AcknowledgeView(APIView):
    permission_classes = (IsStatsReader,)

    @extend_schema(
        operation_id="alerts_acknowledge",
        request=None,
        responses={
            200: AlertSerializer,
            404: OpenApiResponse(description="No such alert"),
            409: OpenApiResponse(description="The alert is resolved"),
        },
        description="Marks an open alert as seen; an acknowledged alert answers as it is.",
    )
    def post(self, request: Request, pk: int) -> Response:
        alert = get_object_or_404(Alert.objects.select_related("subscription", "competitor"), pk=pk)
        if alert.status == AlertStatus.RESOLVED:
            return Response({"detail": _("The alert is resolved."), "code": "conflict"}, status=409)
        engine.acknowledge(alert, request.user)
        alert.refresh_from_db()
        return Response(AlertSerializer(alert).data)


@extend_schema(tags=["alerts"])
class AlertRuleViewSet(viewsets.ModelViewSet):
    """Alert rules: what to watch for, where, and whom to tell."""

    permission_classes = (IsStatsReader,)
    serializer_class = AlertRuleSerializer
    pagination_class = Pages
    queryset = AlertRule.objects.prefetch_related(
        "recipient_users", "recipient_groups", "channels"
    ).order_by("kind", "name", "id")
    http_method_names = ("get", "post", "patch", "delete", "head", "options")
