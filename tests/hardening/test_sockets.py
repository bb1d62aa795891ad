"""Agent sockets end cleanly whatever happens, and an operator's revocation closes them."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.watcher.test_ws import connected_socket, eventually, expect_close
from watcher.models import Agent, AgentCommand, AgentStatus, CommandStatus
from watcher.services import agents, commands, connections, operations
from watcher.services.sockets import socket_keeper

pytestmark = pytest.mark.django_db(transaction=True)


def command_status(command: AgentCommand) -> str:
    return AgentCommand.objects.get(pk=command.pk).status


async def test_a_hostile_ack_frame_is_ignored_and_the_socket_stays_registered(agent) -> None:
    socket = await connected_socket(agent)
    command = await database_sync_to_async(commands.send_command)(agent.agent, "pause", {})
    await socket.receive_json_from(timeout=5)
    for frame in (
        {"type": "ack", "command_id": str(command.pk), "status": "o\u0000k"},
        {"type": "ack", "command_id": str(command.pk), "status": {"x": 1}},
        {"type": "ack", "command_id": ["x"], "status": "ok"},
        {"type": "status", "status": "x" * 10_000},
    ):
        await socket.send_json_to(frame)
    await socket.send_to(text_data='{"type": "ack", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    await socket.send_json_to({"type": "ack", "command_id": str(command.pk), "status": "ok"})
    assert await eventually(lambda: command_status(command) == CommandStatus.ACKED)
    assert await database_sync_to_async(connections.connected_channel)(agent.id)
    await socket.disconnect()


async def test_an_exception_in_a_handler_cleans_up_like_a_close(agent, monkeypatch) -> None:
    # Stands in for any unexpected failure of a handler (a database error, a bug).
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(commands, "record_status", broken)
    socket = await connected_socket(agent)
    assert socket_keeper().sockets
    await socket.send_json_to({"type": "status", "status": "paused"})
    with pytest.raises(RuntimeError):
        await socket.receive_output(timeout=5)
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None
    assert not socket_keeper().sockets
    # The keeper's next pass registers nothing again.
    await socket_keeper().refresh()
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None


async def test_disabling_an_agent_closes_its_socket_with_4003(agent) -> None:
    socket = await connected_socket(agent)
    await database_sync_to_async(operations.set_agents_enabled)([agent.id], False)
    await expect_close(socket, 4003)
    assert await eventually(lambda: connections.connected_channel(agent.id) is None)


async def test_disabling_through_a_form_save_closes_the_socket(agent) -> None:
    socket = await connected_socket(agent)

    def disable() -> None:
        stored = Agent.objects.get(pk=agent.id)
        stored.is_enabled = False
        stored.save(update_fields=["is_enabled"])

    await database_sync_to_async(disable)()
    await expect_close(socket, 4003)


async def test_a_new_key_closes_the_socket_with_4001(agent) -> None:
    socket = await connected_socket(agent)
    await database_sync_to_async(agents.rotate_key)(agent.agent)
    await expect_close(socket, 4001)


async def test_frames_of_a_revoked_agent_are_not_applied(agent) -> None:
    socket = await connected_socket(agent)
    command = await database_sync_to_async(commands.send_command)(agent.agent, "pause", {})
    await socket.receive_json_from(timeout=5)
    # Disabled behind the socket's back (the close notice has not arrived yet).
    await database_sync_to_async(Agent.objects.filter(pk=agent.id).update)(is_enabled=False)
    await socket.send_json_to({"type": "ack", "command_id": str(command.pk), "status": "ok"})
    await socket.send_json_to({"type": "status", "status": "paused"})
    # The consumer handles frames in order; disconnecting waits until it has finished.
    await socket.disconnect()
    assert await database_sync_to_async(command_status)(command) == CommandStatus.SENT
    stored = await database_sync_to_async(Agent.objects.get)(pk=agent.id)
    assert stored.status != AgentStatus.PAUSED


async def open_live(headers: list[tuple[bytes, bytes]]) -> bool:
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/live/agents", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected


async def test_the_live_socket_compares_the_origins_host_and_port(db) -> None:
    from django.contrib.auth.models import User

    from tests.watcher.test_ws import session_headers

    staff = await database_sync_to_async(User.objects.create_user)(
        "staff", password="x", is_staff=True
    )
    cookie = (await database_sync_to_async(session_headers)(staff))[2]
    host = (b"host", b"127.0.0.1:8000")
    assert await open_live([(b"origin", b"http://127.0.0.1:8000"), host, cookie])
    # Same host, another port: another site (any local dev server) must not use the cookie.
    assert not await open_live([(b"origin", b"http://127.0.0.1:9999"), host, cookie])
    assert not await open_live([(b"origin", b"https://127.0.0.1:8000"), host, cookie])


async def test_a_websocket_to_an_unknown_path_is_refused_cleanly(db) -> None:
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/nowhere")
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
