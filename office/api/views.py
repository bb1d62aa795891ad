"""The Office REST API: modules report their agents' status; staff and modules read them."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from office.api import serializers as s
from office.api.auth import IsModule, IsModuleOrStaff, ModuleKeyAuthentication
from office.models import OfficeAgentStatus
from office.reporter import OfficeReporter
from office.services import dashboard, status
from watcher.api.serializers import ErrorSerializer

TAGS = ["office"]
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid report (field errors)"),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid module key"),
    403: OpenApiResponse(ErrorSerializer, description="Another department's agent"),
}


class StatusView(APIView):
    authentication_classes = (ModuleKeyAuthentication,)
    permission_classes = (IsModule,)

    @extend_schema(
        operation_id="office_status",
        tags=TAGS,
        summary="Report an agent's status",
        description="Upserts the agent's row with the semantics of `OfficeReporter`: "
        "`working` and `warning` need `task`, `error` needs `message` (stored as the task "
        "«Ошибка: …»), `idle` clears the task, `heartbeat` only touches the last activity. "
        "A module key reports only for its own department.",
        request=s.OfficeStatusReportSerializer,
        responses={200: s.OfficeAgentRowSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Working",
                request_only=True,
                value={
                    "agent_id": "reputation_wb",
                    "department": "reputation",
                    "name": "Отзывы Wildberries",
                    "status": "working",
                    "task": "Ответы на отзывы: 12 из 40",
                    "metrics": {"answered": 12, "queued": 28},
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = s.OfficeStatusReportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        department = request.auth.department
        owner = status.department_of(v["agent_id"])
        if v["department"] != department or owner not in (None, department):
            raise PermissionDenied(
                _("This key reports only for the department “%(d)s”.") % {"d": department}
            )
        reporter = OfficeReporter(
            v["agent_id"],
            department,
            v["name"],
            brand=v.get("brand"),
            **{k: v[k] for k in ("salary_equivalent", "fte_coefficient") if k in v},
        )
        row = reporter.report(
            v["status"],
            task=v.get("task", ""),
            message=v.get("message", ""),
            metrics=v.get("metrics"),
        )
        return Response(dashboard.agent_row(row))


class AgentListView(APIView):
    authentication_classes = (ModuleKeyAuthentication, JWTAuthentication, SessionAuthentication)
    permission_classes = (IsModuleOrStaff,)

    @extend_schema(
        operation_id="office_agents",
        tags=TAGS,
        summary="Every agent's status, with totals",
        parameters=[OpenApiParameter("department", str, description="Only this department")],
        responses={200: s.OfficeAgentListSerializer, 401: ERRORS[401], 403: ERRORS[403]},
    )
    def get(self, request: Request) -> Response:
        rows = OfficeAgentStatus.objects.order_by("department", "name")
        if department := request.query_params.get("department"):
            rows = rows.filter(department=department)
        totals = dashboard.totals()
        departments = totals["departments"]
        if department:
            departments = {k: v for k, v in departments.items() if k == department}
        return Response(
            {
                "agents": [dashboard.agent_row(r) for r in rows],
                "totals": totals["overall"],
                "departments": departments,
            }
        )
