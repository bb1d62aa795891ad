"""Thin DRF views of the agent and staff API: parse input, call a service, shape output."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.roles import IsStatsReader, IsWatcherAdmin
from watcher.api import serializers as s
from watcher.api.auth import AgentKeyAuthentication, IsAgent
from watcher.models import Agent, EmulationConfig
from watcher.services import agents, commands, distributor, results, stats
from watcher.services.errors import DATABASE_OUTAGE, ServiceError, log_database_error
from watcher.services.health import check_health

BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Field errors `{field: [message, …]}`, or `{detail}` for a body that is not "
    "JSON or nested too deeply",
)
THROTTLED = OpenApiResponse(
    s.ErrorSerializer, description="Too many wrong keys from this address; see `Retry-After`"
)
TOO_LARGE = OpenApiResponse(
    s.ErrorSerializer, description="Body over this endpoint's limit (refused before reading)"
)
log = logging.getLogger(__name__)

ERRORS = {
    400: BAD_REQUEST,
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or wrong API key"),
    403: OpenApiResponse(s.ErrorSerializer, description="Disabled agent / not yours"),
    413: TOO_LARGE,
    429: THROTTLED,
}
STAFF_ERRORS = {
    401: OpenApiResponse(s.ErrorSerializer, description="No or expired JWT / session"),
    403: OpenApiResponse(s.ErrorSerializer, description="Not in a role that may read this"),
}


def client_ip(request: Request) -> str:
    return str(request.META.get("REMOTE_ADDR") or "127.0.0.1")


def too_large(what: str, limit: int) -> str:
    return _("%(what)s larger than %(limit)s bytes.") % {"what": what, "limit": limit}


def service_error(exc: ServiceError) -> Response:
    return Response({"detail": exc.message, "code": exc.code}, status=exc.http_status)


# The base of the endpoints agents call with their API key (a comment, not a docstring: the
# schema would show it as every endpoint's description).
class AgentAPIView(APIView):
    authentication_classes = (AgentKeyAuthentication,)
    permission_classes = (IsAgent,)

    def agent(self, request: Request) -> Agent:
        return request.auth

    def agent_ip(self, request: Request) -> str:
        agent = self.agent(request)
        return str(agent.current_ip) if agent.current_ip else client_ip(request)


class NextTaskView(AgentAPIView):
    @extend_schema(
        operation_id="tasks_next",
        summary="Next task for this agent",
        description=(
            "Walks the marketplaces in queue order; for each takes the (IP, domain) semaphore "
            "and pops the highest-priority task. 204 when nothing is available to this agent."
        ),
        responses={200: s.TaskSerializer, 204: None, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        task = distributor.claim_next_task(self.agent(request), self.agent_ip(request))
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.TaskSerializer(task).data)


class ReportView(AgentAPIView):
    @extend_schema(
        operation_id="tasks_report",
        summary="Report the result of a task",
        request=s.ReportSerializer,
        responses={
            200: s.ReportResultSerializer,
            404: OpenApiResponse(s.ErrorSerializer, description="Unknown task"),
            409: OpenApiResponse(s.ErrorSerializer, description="Lease expired"),
            **ERRORS,
            413: OpenApiResponse(s.ErrorSerializer, description="Body or raw_text too large"),
        },
        examples=[
            OpenApiExample(
                "Success",
                value={
                    "raw_text": "Кроссовки беговые\n1 299 ₽\n2 600 ₽\n4,8 · 12 345 оценок",
                    "timing_ms": 5230,
                    "success": True,
                    "error": None,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Failure",
                value={"raw_text": "", "timing_ms": 30000, "success": False, "error": "timeout"},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request, task_id: str) -> Response:
        limit = settings.WATCHER_MAX_REPORT_BYTES
        # The body may hold raw_text, a screenshot (base64) and the JSON around them.
        if int(request.META.get("CONTENT_LENGTH") or 0) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return Response({"detail": too_large(_("Report"), limit)}, status=413)
        serializer = s.ReportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if len(data["raw_text"].encode()) > limit:
            return Response({"detail": too_large("raw_text", limit)}, status=413)
        shot_limit = settings.WATCHER_MAX_SCREENSHOT_BYTES
        if len(data.get("screenshot") or b"") > shot_limit:
            return Response({"detail": too_large("screenshot", shot_limit)}, status=413)
        try:
            result = results.submit_report(
                self.agent(request),
                str(task_id),
                results.ReportInput(
                    raw_text=data["raw_text"],
                    timing_ms=data["timing_ms"],
                    success=data["success"],
                    error=data.get("error"),
                    lease_version=data.get("lease_version"),
                    screenshot=data.get("screenshot"),
                ),
                ip=self.agent_ip(request),
            )
        except ServiceError as exc:
            return service_error(exc)
        return Response(result.as_dict())


class HeartbeatView(AgentAPIView):
    @extend_schema(
        operation_id="agents_heartbeat",
        request=s.HeartbeatSerializer,
        responses={
            200: inline_serializer("HeartbeatOk", {"status": serializers.CharField()}),
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "Working",
                value={
                    "status": "working",
                    "current_task": None,
                    "stats": {"ip": "10.0.0.7", "modem_operator": "MTS", "signal_strength": 4},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = s.HeartbeatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agents.record_heartbeat(
            self.agent(request),
            agents.Heartbeat(
                status=data["status"],
                current_task=str(data["current_task"]) if data.get("current_task") else None,
                stats=data.get("stats") or {},
                ip=data.get("ip") or client_ip(request),
            ),
        )
        return Response({"status": "ok"})


class PanicView(AgentAPIView):
    @extend_schema(
        operation_id="agents_panic",
        request=s.PanicSerializer,
        responses={
            200: inline_serializer("PanicOk", {"status": serializers.CharField()}),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.PanicSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agents.enter_panic(
            self.agent(request),
            serializer.validated_data["reason"],
            serializer.validated_data["details"],
            ip=self.agent_ip(request),
            request_ip=client_ip(request),
        )
        return Response({"status": "ok"})


class EmulationConfigView(AgentAPIView):
    @extend_schema(
        operation_id="config_emulation",
        responses={200: s.EmulationConfigSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(s.EmulationConfigSerializer(EmulationConfig.get()).data)


class AgentListView(APIView):
    permission_classes = (IsWatcherAdmin,)

    @extend_schema(
        operation_id="agents_list", responses={200: s.AgentListSerializer, **STAFF_ERRORS}
    )
    def get(self, request: Request) -> Response:
        items = stats.agent_summaries(Agent.objects.order_by("name"))
        return Response({"agents": s.AgentSummarySerializer(items, many=True).data})


class AgentDetailView(APIView):
    permission_classes = (IsWatcherAdmin,)

    @extend_schema(
        operation_id="agents_detail",
        responses={
            200: s.AgentDetailSerializer,
            404: OpenApiResponse(s.ErrorSerializer, description="Unknown agent"),
            **STAFF_ERRORS,
        },
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = get_object_or_404(Agent, pk=agent_id)
        return Response(s.AgentDetailSerializer(stats.agent_detail(agent)).data)


class TaskStatsView(APIView):
    permission_classes = (IsStatsReader,)

    @extend_schema(
        operation_id="tasks_stats", responses={200: s.TaskStatsSerializer, **STAFF_ERRORS}
    )
    def get(self, request: Request) -> Response:
        return Response(s.TaskStatsSerializer(stats.task_stats()).data)


HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"]),
        "checks": serializers.DictField(),
        "timestamp": serializers.DateTimeField(),
    },
)


class HealthView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="health",
        description="Redis and PostgreSQL checked for real: `healthy`; `degraded` (200) while "
        "Redis has lost the queues, until they are rebuilt (within a minute); `unhealthy` "
        "(503) when either does not answer.",
        responses={
            200: HEALTH,
            503: OpenApiResponse(HEALTH, description="Redis or the database is down"),
        },
    )
    def get(self, request: Request) -> Response:
        result = check_health()
        return Response(result, status=503 if result["status"] == "unhealthy" else 200)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 400 for a body that is not an object, a JSON 503 while the
    database cannot be reached, and every message in the request's language."""
    from rest_framework.views import exception_handler as drf_handler

    if isinstance(exc, ServiceError):
        return service_error(exc)
    if isinstance(exc, DATABASE_OUTAGE):
        log_database_error(log, exc)
        return Response(
            {"detail": _("Database unavailable, try again later."), "code": "unavailable"},
            status=503,
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, Http404):
        # get_object_or_404's message is English whatever the language: DRF's own, translated.
        exc = NotFound()
    if isinstance(exc, ValidationError) and not isinstance(exc.detail, dict):
        exc = ValidationError({"non_field_errors": exc.detail})
    return drf_handler(exc, context)


# --- Commands to agents (over their WebSocket) -----------------------------------------------

COMMAND_ERRORS = {
    400: BAD_REQUEST,
    401: OpenApiResponse(s.ErrorSerializer, description="No or expired JWT / session"),
    403: OpenApiResponse(s.ErrorSerializer, description="Not an admin"),
    413: TOO_LARGE,
    503: OpenApiResponse(
        s.ErrorSerializer,
        description="Agent not connected (no live WebSocket)",
        examples=[
            OpenApiExample(
                "Not connected", value={"detail": "Agent not connected", "code": "unavailable"}
            )
        ],
    ),
}
COMMAND_EXAMPLE = OpenApiExample(
    "Reboot the modem", value={"command": "reboot_modem", "params": {}}, request_only=True
)


class AgentCommandView(APIView):
    permission_classes = (IsWatcherAdmin,)

    @extend_schema(
        operation_id="agents_command",
        summary="Send a command to an agent",
        description=(
            "Delivered over the agent's WebSocket as "
            "`{type: command, command_id, action, params}`; the agent ACKs with the same "
            "`command_id`. Re-sent until acknowledged or timed out."
        ),
        request=s.CommandRequestSerializer,
        responses={
            200: s.CommandSentSerializer,
            404: OpenApiResponse(s.ErrorSerializer, description="Unknown agent"),
            **COMMAND_ERRORS,
        },
        examples=[COMMAND_EXAMPLE],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        serializer = s.CommandRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        command = commands.send_command(agent_id, data["command"], data["params"], request.user)
        return Response({"status": "ok", "command": command.action, "command_id": str(command.pk)})


class BroadcastCommandView(APIView):
    permission_classes = (IsWatcherAdmin,)

    @extend_schema(
        operation_id="agents_command_broadcast",
        summary="Send a command to every connected agent",
        request=s.CommandRequestSerializer,
        responses={200: s.BroadcastSentSerializer, **COMMAND_ERRORS},
        examples=[COMMAND_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        serializer = s.CommandRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sent = commands.broadcast(data["command"], data["params"], request.user)
        return Response({"status": "ok", "command": data["command"], "sent_to": len(sent)})
