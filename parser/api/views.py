"""The parse-job report endpoint (staff)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.roles import IsStatsReader
from parser import reports
from parser.api.serializers import ReportQuerySerializer


class JobReportView(APIView):
    """Per upstream and per prompt: counts by status, avg/p95 duration, errors; plus jobs."""

    permission_classes = (IsStatsReader,)

    @extend_schema(
        operation_id="parser_jobs_report",
        summary="Report on LLM parse jobs over a time range",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Default: to − 24 h"),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Default: now"),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Jobs per page, 1–500"),
            OpenApiParameter("offset", OpenApiTypes.INT, description="Jobs to skip"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT),
            400: OpenApiResponse(description="Bad from/to/limit/offset, or from after to"),
        },
    )
    def get(self, request: Request) -> Response:
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(reports.job_report(data["from"], data["to"], data["limit"], data["offset"]))
