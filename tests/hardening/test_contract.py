"""Contract fuzzing: schemathesis against the project's own OpenAPI schema, in-process (WSGI).

Every operation is called with generated bodies and parameters, as an agent (its API key) or a
staff admin (a JWT): no 5xx, and every response matches the schema (status, content type,
body). Bounded by the number of examples per operation (``FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import TaskFactory
from watcher.services import queues
from watcher.services.agents import create_agent

# What the contract promises: no 5xx, and the status, content type and body are the schema's.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
AGENT_PATHS = (
    "/api/v1/watcher/tasks/next",
    "/api/v1/watcher/tasks/{task_id}/report",
    "/api/v1/watcher/agents/heartbeat",
    "/api/v1/watcher/agents/panic",
    "/api/v1/watcher/config/emulation",
)


@pytest.fixture
def credentials(db):
    agent, key = create_agent("fuzz-agent")
    task = TaskFactory(agent=agent, status="in_progress")
    queues.push([(str(TaskFactory().pk), "wildberries", 1)])
    admin = User.objects.create_superuser("fuzz-admin", "f@example.com", "fuzz-password-1")
    return {
        "agent": f"Bearer {key}",
        "staff": f"Bearer {RefreshToken.for_user(admin).access_token}",
        "task": str(task.pk),
    }


# Schemathesis' own pytest plugin does not run under this pytest; its documented
# ``operation.as_strategy()`` with a plain Hypothesis test does the same.
@pytest.mark.django_db(transaction=True)
def test_the_api_honours_its_schema(credentials) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:
        header = credentials["agent" if operation.path in AGENT_PATHS else "staff"]

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case) -> None:
            case.call_and_validate(headers={"Authorization": header}, checks=CHECKS)  # noqa: B023

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
