"""The roles of people (Django groups) and the DRF permissions that check them.

Here rather than in an app because every app's views check the same roles and ``parser`` may not
import ``watcher``; ``config`` imports no app, so any app may import this.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

ADMIN = "admin"
# Every staff role, one Django group each (created after migrate).
STAFF_ROLES = (ADMIN, "manager", "senior", "director")
# Analysts read the catalogue, tasks and price history and change nothing (view permissions only).
ANALYST = "analyst"
PRICE_READERS = (*STAFF_ROLES, ANALYST)


def has_role(user: Any, roles: tuple[str, ...]) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()


class IsWatcherAdmin(BasePermission):
    """Superusers and members of the ``admin`` group."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, (ADMIN,))


class IsStatsReader(BasePermission):
    """``admin``, ``manager``, ``senior`` or ``director``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, STAFF_ROLES)


class IsPriceReader(BasePermission):
    """The staff roles and ``analyst``: price history, comparisons and exports."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, PRICE_READERS)
