from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    """Requests activate a language in this thread; leave it as the other tests expect."""
    yield
    translation.deactivate()


@pytest.fixture
def operator(db: None) -> Client:
    """An operator's browser: a superuser's session, Russian as the admin shows by default."""
    user = User.objects.create_superuser("operator", "operator@example.com", "x")
    client = Client()
    client.force_login(user)
    return client
