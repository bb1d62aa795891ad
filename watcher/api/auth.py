"""Authentication of agents (API keys) and of people (JWT); the roles are in ``config.roles``."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework_simplejwt import authentication as simplejwt
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

from watcher.models import Agent
from watcher.services import sql
from watcher.services.agents import authenticate_key


class AgentKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <agent API key>``; ``request.auth`` is the :class:`Agent`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Agent] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            raise exceptions.NotAuthenticated(_("Missing API key."))
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header."))
        try:
            key = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from exc
        agent = authenticate_key(key)
        if agent is None:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if not agent.is_enabled:
            raise exceptions.PermissionDenied(_("This agent is disabled."))
        return AnonymousUser(), agent

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


@functools.cache
def _one_statement_finds_user(user_model: type[models.Model]) -> bool:
    """Whether one prebuilt SELECT finds the same user as the library's ``objects.get``: the id
    field is a unique column of the model's own table and the manager filters nothing."""
    meta = user_model._meta
    try:
        field = meta.get_field(jwt_settings.USER_ID_FIELD)
    except FieldDoesNotExist:
        return False
    manager = type(user_model._default_manager)
    return bool(
        getattr(field, "concrete", False)
        and getattr(field, "unique", False)
        and not meta.parents
        and manager.get_queryset is models.Manager.get_queryset
    )


class JWTAuthentication(simplejwt.JWTAuthentication):
    """People's bearer tokens (djangorestframework-simplejwt), the user read through one
    prebuilt statement (``watcher.services.sql``). The library's ORM lookup was about a tenth of
    the server's CPU on the command round trip (py-spy under bench/ws.py). Whenever the fast
    path has no user to give (no such user, an inactive one, an odd id), with revocation checks
    on, or with a user model it cannot read the same way, the library decides and says why."""

    def get_user(self, validated_token: Token) -> Any:
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        user = None
        if (
            user_id is not None
            and not jwt_settings.CHECK_REVOKE_TOKEN
            and _one_statement_finds_user(self.user_model)
        ):
            try:
                user = sql.get_one(self.user_model, jwt_settings.USER_ID_FIELD, user_id)
            except (TypeError, ValueError, OverflowError):
                user = None
        if user is None or not user.is_active:
            return super().get_user(validated_token)
        return user


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


class JWTScheme(SimpleJWTScheme):  # type: ignore[misc]
    """Documents ``JWTAuthentication`` as drf-spectacular documents simplejwt's own class."""

    target_class = "watcher.api.auth.JWTAuthentication"
