"""Live status pages for staff (thin: rows from ``watcher.services.events``, history from stats)."""

from __future__ import annotations

import hmac
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from config.roles import has_role
from watcher.models import Agent, AgentStatus, CommandAction, CommandStatus
from watcher.services import agents as agent_service
from watcher.services import events, panics, stats
from watcher.services import metrics as metrics_service
from watcher.services.errors import DATABASE_OUTAGE, NotFound
from watcher.services.events import AgentRow

View = Callable[..., HttpResponse]
CONFIRM_ACTIONS = (CommandAction.STOP, CommandAction.REBOOT_MODEM)
RETRY_AFTER_SECONDS = 30


def staff_required(view: View) -> View:
    """Anonymous → the admin login; logged in but not staff → 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _labels() -> dict[str, dict[str, str]]:
    """Translated labels for the page's script (no JS catalog needed)."""
    return {
        "statuses": {value: str(label) for value, label in AgentStatus.choices},
        "command_statuses": {value: str(label) for value, label in CommandStatus.choices},
        "actions": {value: str(label) for value, label in CommandAction.choices},
        "ui": {
            "connecting": _("Connecting…"),
            "live": _("Live"),
            "disconnected": _("Disconnected, reconnecting…"),
            "refused": _("Access refused"),
            "never": _("never"),
            "s_ago": _("%(n)s s ago"),
            "min_ago": _("%(n)s min ago"),
            "h_ago": _("%(n)s h ago"),
            "d_ago": _("%(n)s d ago"),
            "yes": _("yes"),
            "no": _("no"),
            "confirm": _("Send “%(action)s” to %(agent)s?"),
            "sent": _("Sent: %(action)s"),
            "error": _("Error"),
            "unblock": _("Unblock"),
            "confirm_clear": _(
                "Clear the panic of %(agent)s? Its IP blocks are lifted and, if it is "
                "connected, it is told to resume."
            ),
            "confirm_unblock": _(
                "Lift the block of IP %(ip)s? Agents on this IP get tasks again at once."
            ),
        },
    }


def _with_label(row: AgentRow) -> dict[str, Any]:
    return {**row, "status_label": AgentStatus(row["status"]).label}


@staff_required
def live_agents(request: HttpRequest) -> HttpResponse:
    rows = events.live_agent_rows(Agent.objects.select_related("current_task").order_by("name"))
    context = {"agents": [_with_label(row) for row in rows], "labels": _labels()}
    return render(request, "watcher/live/agents.html", context)


def _can_unblock(user: Any) -> bool:
    return user.has_perm("watcher.delete_panicblock")


def _can_clear_panic(user: Any) -> bool:
    # Clearing also sends "resume", a command: admins only, as for the command buttons.
    return _can_unblock(user) and has_role(user, ("admin",))


@staff_required
def live_agent_detail(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = get_object_or_404(Agent.objects.select_related("current_task"), pk=agent_id)
    context = {
        "blocks": [events.block_row(b) for b in agent_service.blocks_of(agent)],
        "can_unblock": _can_unblock(request.user),
        "can_clear_panic": _can_clear_panic(request.user),
        "agent": _with_label(events.live_agent_row(agent)),
        "history": stats.command_history(agent),
        "labels": _labels(),
        "actions": [
            {"value": value, "label": label, "confirm": value in CONFIRM_ACTIONS}
            for value, label in CommandAction.choices
        ],
        "can_command": has_role(request.user, ("admin",)),
        "command_url": reverse("watcher-api:agents-command", args=[agent.pk]),
    }
    return render(request, "watcher/live/agent_detail.html", context)


def _refused() -> JsonResponse:
    return JsonResponse({"detail": _("You may not lift panics or IP blocks.")}, status=403)


@require_POST
@staff_required
def clear_panic(request: HttpRequest, agent_id: str) -> HttpResponse:
    """The agent page's "Clear panic" (CSRF-checked POST): blocks lifted, resume sent."""
    if not _can_clear_panic(request.user):
        return _refused()
    agent = get_object_or_404(Agent, pk=agent_id)
    done = panics.clear_panic(agent, request.user)
    return JsonResponse({"detail": done.describe(), "ips": done.ips, "resumed": done.resumed})


@require_POST
@staff_required
def unblock_ip(request: HttpRequest, agent_id: str, block_id: int) -> HttpResponse:
    """The agent page's "Unblock" of one IP block (CSRF-checked POST)."""
    if not _can_unblock(request.user):
        return _refused()
    agent = get_object_or_404(Agent, pk=agent_id)
    try:
        ip = panics.unblock_ip(agent, block_id, request.user)
    except NotFound as exc:
        return JsonResponse({"detail": exc.message}, status=404)
    return JsonResponse({"detail": _("IP %(ip)s unblocked.") % {"ip": ip}, "ip": ip})


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: for a bearer of ``WATCHER_METRICS_TOKEN`` or a staff session (or
    anyone with ``WATCHER_METRICS_PUBLIC``)."""
    token = settings.WATCHER_METRICS_TOKEN
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    allowed = (
        settings.WATCHER_METRICS_PUBLIC
        or (token and hmac.compare_digest(sent.encode(), token.encode()))
        or (request.user.is_authenticated and request.user.is_active and request.user.is_staff)
    )
    if not allowed:
        return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(metrics_service.render(), content_type=CONTENT_TYPE_LATEST)


# --- Errors: JSON under /api/, Django's pages elsewhere (config/urls.py's handlers) -------------


def _error(request: HttpRequest, status: int, detail: str, page: Callable[..., HttpResponse]):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status)
    return page()


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request, 404, _("Not found."), lambda: defaults.page_not_found(request, exception)
    )


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while PostgreSQL cannot be reached: JSON under /api/ (as DRF's views answer), else a
    page that needs no database (no user, no context processors)."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path.startswith("/api/"):
        body = {"detail": _("Database unavailable, try again later."), "code": "unavailable"}
        return JsonResponse(body, status=503, headers=headers)
    page = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS})
    return HttpResponse(page, status=503, headers=headers)


def server_error(request: HttpRequest) -> HttpResponse:
    # A database error raised in a middleware (a session saved on the way out) lands here, not
    # in DatabaseUnavailableMiddleware; it is an outage, not a bug.
    if isinstance(sys.exception(), DATABASE_OUTAGE):
        return database_unavailable(request)
    return _error(request, 500, _("Server error."), lambda: defaults.server_error(request))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, _("Bad request."), lambda: defaults.bad_request(request, exception))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    page = lambda: defaults.permission_denied(request, exception)  # noqa: E731
    return _error(request, 403, _("Permission denied."), page)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    from django.views.csrf import csrf_failure as django_csrf_failure

    page = lambda: django_csrf_failure(request, reason)  # noqa: E731
    return _error(request, 403, _("CSRF check failed."), page)
