"""Module keys (``Authorization: Bearer wo_…``) for modules outside this project."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from office.models import ModuleKey
from office.services.keys import MODULE_KEY_PREFIX, authenticate_module_key


class ModuleKeyAuthentication(BaseAuthentication):
    """A bearer token starting with ``wo_``; other tokens are left to JWT. ``request.auth`` is
    the :class:`ModuleKey`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ModuleKey] | None:
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != self.keyword.lower().encode():
            return None
        if not header[1].startswith(MODULE_KEY_PREFIX.encode()):
            return None
        try:
            key = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid module key.")) from exc
        row = authenticate_module_key(key)
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid module key."))
        return AnonymousUser(), row

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsModule(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ModuleKey)


class IsModuleOrStaff(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(request.auth, ModuleKey) or bool(
            user and user.is_authenticated and user.is_active and user.is_staff
        )


class ModuleKeyScheme(OpenApiAuthenticationExtension):
    target_class = "office.api.auth.ModuleKeyAuthentication"
    name = "officeModuleKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A module's Office key: `Authorization: Bearer wo_…` (made in the "
            "admin, shown once; it may report only its own department).",
        }
