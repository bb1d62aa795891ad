from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery-9")


@pytest.fixture
def admin_client_jwt(admin_user: User) -> APIClient:
    client = APIClient()
    token = RefreshToken.for_user(admin_user).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
