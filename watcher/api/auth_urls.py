"""``/api/v1/auth/``: simplejwt's token views, throttled per address and per username."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from watcher.api.serializers import ErrorSerializer
from watcher.api.throttles import LoginIPThrottle, LoginUserThrottle

ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors `{field: [message, …]}`"),
    401: OpenApiResponse(ErrorSerializer, description="Wrong credentials or token"),
    413: OpenApiResponse(ErrorSerializer, description="Body over the limit"),
    429: OpenApiResponse(
        ErrorSerializer, description="Too many attempts (address or username); see `Retry-After`"
    ),
}


@extend_schema_view(
    post=extend_schema(
        summary="Obtain a JWT pair",
        description="Username and password → `access` and `refresh`.",
        responses={200: TokenObtainPairSerializer, **ERRORS},
    )
)
class TokenView(TokenObtainPairView):
    throttle_classes = (LoginIPThrottle, LoginUserThrottle)


@extend_schema_view(
    post=extend_schema(
        summary="Refresh the access token",
        description="A refresh token → a new `access` (401 once revoked or expired).",
        responses={200: TokenRefreshSerializer, **ERRORS},
    )
)
class RefreshView(TokenRefreshView):
    throttle_classes = (LoginIPThrottle,)


urlpatterns = [
    path("token", TokenView.as_view(), name="token_obtain_pair"),
    path("token/refresh", RefreshView.as_view(), name="token_refresh"),
]
