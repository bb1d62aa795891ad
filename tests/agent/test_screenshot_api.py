"""The optional screenshot evidence of a report: validated, size-limited, stored, shown."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import TaskFactory
from tests.watcher.pages import WB_PAGE
from watcher.models import Task, TaskReport, TaskStatus
from watcher.services import queues

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"


def claimed(handle) -> str:
    task = TaskFactory(marketplace="wildberries")
    queues.push([(str(task.pk), task.marketplace, task.priority)])
    response = handle.client.get(f"{API}/tasks/next")
    assert response.status_code == 200
    return response.json()["id"]


def report(handle, task_id: str, **extra: object):
    body = {"raw_text": WB_PAGE, "timing_ms": 900, "success": True, "error": None, **extra}
    return handle.client.post(
        f"{API}/tasks/{task_id}/report", body, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )


@pytest.mark.parametrize(
    ("screenshot", "code", "message"),
    [
        ("not base64!", 400, "Not valid base64."),
        (base64.b64encode(b"GIF89a....").decode(), 400, "Expected a JPEG or PNG image."),
        (base64.b64encode(JPEG + b"\x00" * 2048).decode(), 413, "screenshot larger than"),
    ],
)
@override_settings(WATCHER_MAX_SCREENSHOT_BYTES=2048)
def test_a_bad_screenshot_is_refused_and_changes_nothing(
    agent, screenshot: str, code: int, message: str
) -> None:
    task_id = claimed(agent)
    response = report(agent, task_id, screenshot=screenshot)
    assert response.status_code == code
    assert message in str(response.json())
    assert Task.objects.get(pk=task_id).status == TaskStatus.IN_PROGRESS
    assert not TaskReport.objects.exists()


def test_a_screenshot_is_stored_with_the_report_and_shown_in_the_admin(agent) -> None:
    task_id = claimed(agent)
    response = report(agent, task_id, screenshot=base64.b64encode(JPEG).decode())
    assert response.status_code == 200 and response.json()["outcome"] == "ok"
    stored = TaskReport.objects.get(task_id=task_id)
    assert bytes(stored.screenshot) == JPEG
    # Without one (the HTTP engine), nothing is stored.
    other = claimed(agent)
    assert report(agent, other).status_code == 200
    assert TaskReport.objects.get(task_id=other).screenshot is None

    User.objects.create_superuser("root", "root@example.com", "pw-root-Secret-1")
    browser = Client()
    browser.force_login(User.objects.get(username="root"))
    inline = base64.b64encode(JPEG).decode()
    for url in (
        reverse("admin:watcher_taskreport_change", args=[stored.pk]),
        reverse("admin:watcher_task_change", args=[task_id]),
    ):
        page = browser.get(url)
        assert page.status_code == 200
        assert f'src="data:image/jpeg;base64,{inline}"' in page.content.decode()
