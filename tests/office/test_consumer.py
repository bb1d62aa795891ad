"""``/ws/office``: staff browsers get every report live; others are refused."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from office.reporter import OfficeReporter
from tests.watcher.test_ws import expect_close, open_socket, session_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def test_staff_see_a_report_as_it_happens() -> None:
    staff = await database_sync_to_async(User.objects.create_user)(
        "staff", password="x", is_staff=True
    )
    headers = await database_sync_to_async(session_headers)(staff)
    communicator = await open_socket("/ws/office", headers=headers)
    reporter = OfficeReporter("marketing_wb", "marketing", "Реклама WB", salary_equivalent=90_000)
    await reporter.areport_warning("Ставки растут", {"bids": 12})
    message = json.loads(await communicator.receive_from(timeout=5))
    assert message["type"] == "agent"
    agent = message["agent"]
    assert (agent["agent_id"], agent["status"], agent["task"]) == (
        "marketing_wb",
        "warning",
        "Ставки растут",
    )
    assert agent["metrics"] == {"bids": 12}
    marketing = message["totals"]["departments"]["marketing"]
    assert marketing["agents"] == 2 and marketing["salary"] == 90_000 + 60_000
    await communicator.disconnect()


async def test_anonymous_and_non_staff_are_refused_with_4003() -> None:
    plain = await database_sync_to_async(User.objects.create_user)("plain", password="x")
    for user in (None, plain):
        headers = await database_sync_to_async(session_headers)(user)
        communicator = await open_socket("/ws/office", headers=headers)
        await expect_close(communicator, 4003)


async def test_the_keeper_brings_a_dashboard_back_into_its_group(monkeypatch) -> None:
    """A dashboard socket whose group membership was lost (Redis flushed, or the member
    expired) is put back by the process's socket keeper, as the live agents page is."""
    from channels.layers import get_channel_layer

    from office.services.events import OFFICE_GROUP
    from watcher.services.sockets import socket_keeper

    staff = await database_sync_to_async(User.objects.create_user)(
        "keeper", password="x", is_staff=True
    )
    headers = await database_sync_to_async(session_headers)(staff)
    communicator = await open_socket("/ws/office", headers=headers)
    (socket,) = [s for s in socket_keeper().sockets.values() if OFFICE_GROUP in s.kept_groups()]
    await get_channel_layer().group_discard(OFFICE_GROUP, socket.channel_name)
    await socket_keeper().refresh()
    reporter = OfficeReporter("scout_niche", "scout", "Разведчик ниш")
    await reporter.areport_idle({"found": 1})
    message = json.loads(await communicator.receive_from(timeout=5))
    assert message["agent"]["agent_id"] == "scout_niche"
    await communicator.disconnect()
