"""The analysts' price-history API: a filtered list (JSON with cursor pagination, or a CSV/XLSX
export of every matching row) and a subscription's series for a chart. Thin: the filters,
series and exports are in ``watcher.services.prices`` and ``watcher.services.export``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.roles import IsPriceReader
from watcher.models import PriceHistory, Subscription
from watcher.services import export, prices

TAG = "prices"


class PriceSerializer(serializers.ModelSerializer):
    our_sku = serializers.CharField(source="subscription.sku", read_only=True)
    kind = serializers.SerializerMethodField()
    competitor_sku = serializers.CharField(
        source="competitor.competitor_sku", read_only=True, allow_null=True, default=None
    )
    competitor_name = serializers.CharField(
        source="competitor.name", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = PriceHistory
        fields = (
            "id", "parsed_at", "marketplace", "brand", "subscription", "our_sku", "kind",
            "competitor", "competitor_sku", "competitor_name", "sku", "current_price",
            "old_price", "spp_price", "in_stock", "stock_quantity", "rating", "reviews_count",
        )  # fmt: skip
        read_only_fields = fields

    def get_kind(self, obj: PriceHistory) -> str:
        return prices.OWN if obj.competitor_id is None else prices.COMPETITOR


class PointSerializer(serializers.Serializer):
    # Numbers, not strings: ready for a chart (the list and the exports keep exact decimals).
    t = serializers.DateTimeField(source="parsed_at")
    current_price = serializers.FloatField(allow_null=True)
    old_price = serializers.FloatField(allow_null=True)
    spp_price = serializers.FloatField(allow_null=True, help_text="Wallet/card price.")
    in_stock = serializers.BooleanField(allow_null=True)
    stock = serializers.IntegerField(source="stock_quantity", allow_null=True)


class SeriesSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=prices.KIND_CHOICES)
    competitor = serializers.IntegerField(allow_null=True, help_text="Competitor id; null: ours.")
    sku = serializers.CharField()
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    points = PointSerializer(many=True)


class SubscriptionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Subscription
        fields = ("id", "brand", "marketplace", "sku", "title")


class SeriesResponseSerializer(serializers.Serializer):
    subscription = SubscriptionSummarySerializer()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    series = SeriesSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _keyword_names(super().get_fields())


class SeriesQuerySerializer(serializers.Serializer):
    subscription = serializers.IntegerField(min_value=1)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        return _keyword_names(super().get_fields())

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        first, last = prices.default_range()
        attrs.setdefault("to", last)
        attrs.setdefault("from", attrs["to"] - (last - first))
        if attrs["from"] > attrs["to"]:
            raise ValidationError({"from": [_("Must not be after “to”.")]})
        return attrs


def _keyword_names(fields: dict[str, serializers.Field]) -> dict[str, serializers.Field]:
    # "from" and "to" are Python keywords: declared as date_from/date_to, exposed as from/to.
    fields["from"] = fields.pop("date_from")
    fields["to"] = fields.pop("date_to")
    return fields


def series_payload(subscription: Subscription, first: dt.date, last: dt.date) -> dict[str, Any]:
    """The series endpoint's answer; the comparison page embeds the same."""
    return SeriesResponseSerializer(
        {
            "subscription": subscription,
            "from": first,
            "to": last,
            "series": prices.series(subscription, first, last),
        }
    ).data


class PriceCursorPagination(CursorPagination):
    ordering = ("-parsed_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class CSVRenderer(BaseRenderer):
    """Lets content negotiation accept ``format=csv``; the view streams the file itself."""

    media_type = "text/csv"
    format = export.CSV

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        raise NotImplementedError("exports are streamed by the view")


class XLSXRenderer(CSVRenderer):
    media_type = export.CONTENT_TYPES[export.XLSX]
    format = export.XLSX


EXPORT_PARAMETERS = [
    OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=["json", *export.FORMATS],
        description="json (default): a page of rows. csv or xlsx: a file of every matching row "
        "(no pagination) in the order they were recorded, column headers in the request's "
        "language.",
    ),
    OpenApiParameter(
        "dialect",
        OpenApiTypes.STR,
        enum=list(export.DIALECTS),
        description="CSV only. excel (default): UTF-8 with BOM, ';', decimal comma — opens "
        "as is in Russian Excel. rfc4180: plain UTF-8, ',', decimal point, ISO 8601 times.",
    ),
]


class PriceListView(generics.ListAPIView):
    permission_classes = (IsPriceReader,)
    serializer_class = PriceSerializer
    queryset = PriceHistory.objects.select_related("subscription", "competitor")
    filter_backends = (DjangoFilterBackend,)
    filterset_class = prices.PriceFilter
    pagination_class = PriceCursorPagination
    renderer_classes = (JSONRenderer, CSVRenderer, XLSXRenderer)

    @extend_schema(
        operation_id="prices_list",
        tags=[TAG],
        summary="Price history, filtered (or exported as CSV / XLSX)",
        description=(
            "Observations newest first, a page at a time (follow `next`). The same filters "
            "apply to the exports. Readers: analyst, manager, senior, director, admin."
        ),
        parameters=EXPORT_PARAMETERS,
        responses={
            (200, "application/json"): PriceSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV file"),
            (200, export.CONTENT_TYPES[export.XLSX]): OpenApiResponse(
                OpenApiTypes.BINARY, description="XLSX file"
            ),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        fmt = request.accepted_renderer.format
        if fmt not in export.FORMATS:
            return self.list(request, *args, **kwargs)
        dialect = request.query_params.get("dialect", export.EXCEL)
        if dialect not in export.DIALECTS:
            raise ValidationError(
                {"dialect": [_("Use one of %(values)s.") % {"values": ", ".join(export.DIALECTS)}]}
            )
        return export.streaming_response(self.filter_queryset(self.get_queryset()), fmt, dialect)

    def handle_exception(self, exc: Exception) -> Any:
        # Errors are JSON whatever format was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class PriceSeriesView(APIView):
    permission_classes = (IsPriceReader,)

    @extend_schema(
        operation_id="prices_series",
        tags=[TAG],
        summary="Our SKU's price series and each competitor's, ready for a chart",
        description=(
            "Every observation of the subscription (our SKU) and of each of its competitors "
            "between `from` and `to` (local dates, both included; default: the last 30 days), "
            "oldest first: current, old and wallet price, in stock, stock."
        ),
        parameters=[
            OpenApiParameter("subscription", OpenApiTypes.INT, required=True),
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
        ],
        responses={200: SeriesResponseSerializer, 404: OpenApiResponse(description="Unknown")},
    )
    def get(self, request: Request) -> Response:
        query = SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        subscription = get_object_or_404(Subscription, pk=params["subscription"])
        return Response(series_payload(subscription, params["from"], params["to"]))
