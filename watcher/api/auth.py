"""Authentication of agents (API keys). People use simplejwt's ``JWTAuthentication`` (see
REST_FRAMEWORK in settings); their roles are in ``config.roles``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from watcher.api.throttles import BadAgentKeyThrottle
from watcher.models import Agent
from watcher.services.agents import authenticate_key


class AgentKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <agent API key>``; ``request.auth`` is the :class:`Agent`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Agent] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            raise exceptions.NotAuthenticated(_("Missing API key."))
        throttle = BadAgentKeyThrottle()
        if throttle.over_limit(request):
            raise exceptions.Throttled(wait=throttle.wait())
        if len(header) != 2:
            throttle.record_failure(request)
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header."))
        try:
            key = header[1].decode()
        except UnicodeError as exc:
            throttle.record_failure(request)
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from exc
        agent = authenticate_key(key)
        if agent is None:
            throttle.record_failure(request)
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if not agent.is_enabled:
            raise exceptions.PermissionDenied(_("This agent is disabled."))
        return AnonymousUser(), agent

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


AGENT_API_PREFIX = "/api/v1/watcher/"


def large_body_allowed(path: str, authorization: str) -> bool:
    """Asked by the web server (config/wsgi_bridge.py) before it reads a large body: under the
    agent API only a valid, enabled agent's key may send one; other paths check their own."""
    if not path.startswith(AGENT_API_PREFIX):
        return True
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    try:
        agent = authenticate_key(key.strip())
        return agent is not None and agent.is_enabled
    finally:
        connection.close()  # this ran outside a request: hand the connection back to the pool


class IsAgent(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Agent)


class AgentKeyScheme(OpenApiAuthenticationExtension):
    """Documents agent API keys in the OpenAPI schema as a bearer scheme."""

    target_class = "watcher.api.auth.AgentKeyAuthentication"
    name = "agentApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent's API key: `Authorization: Bearer wa_…` (shown once when "
            "the agent is created).",
        }


def revoke_tokens_on_password_change(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """``pre_save`` receiver of the user model: a new password blacklists the user's refresh
    tokens (simplejwt's token_blacklist), so a stolen one stops working."""
    if (
        raw
        or instance.pk is None
        or (update_fields is not None and "password" not in update_fields)
    ):
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is None or old == instance.password:
        return
    for token in OutstandingToken.objects.filter(user_id=instance.pk, blacklistedtoken=None):
        BlacklistedToken.objects.get_or_create(token=token)
