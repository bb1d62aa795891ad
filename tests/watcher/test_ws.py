"""The agent WebSocket and the staff live socket, through channels' communicator.

The channel layer is the real channels-redis one the settings point at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from config.routing import websocket_urlpatterns
from watcher.models import Agent, AgentCommand, AgentStatus, CommandStatus
from watcher.services import agents, commands, connections

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://testserver")
HOST = (b"host", b"testserver")


def agent_path(handle: Any, key: str | None = None) -> str:
    return f"/ws/watcher?agent_id={handle.id}&api_key={key or handle.key}"


async def open_socket(path: str, headers: list[tuple[bytes, bytes]] | None = None):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def expect_close(communicator: WebsocketCommunicator, code: int) -> None:
    """Skip any text frames (the error notice) and return on the close frame."""
    while True:
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            assert message["code"] == code
            return


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll a (sync, ORM-touching) check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await database_sync_to_async(check)()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def connected_socket(handle: Any) -> WebsocketCommunicator:
    communicator = await open_socket(agent_path(handle))
    # Registration happens right after accept; wait for it before talking about the agent.
    assert await eventually(lambda: connections.connected_channel(handle.id))
    return communicator


# --- authentication ------------------------------------------------------------------------


async def test_it_accepts_an_agent_by_query_params_and_registers_it(agent) -> None:
    communicator = await connected_socket(agent)
    channel = await database_sync_to_async(connections.connected_channel)(agent.id)
    assert channel and channel.startswith("specific.")
    await communicator.disconnect()
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None


async def test_it_accepts_the_authorization_header(agent) -> None:
    communicator = await open_socket(
        "/ws/watcher", headers=[(b"authorization", f"Bearer {agent.key}".encode())]
    )
    assert await eventually(lambda: connections.connected_channel(agent.id))
    await communicator.disconnect()


async def test_a_wrong_key_is_closed_with_4001(agent) -> None:
    communicator = await open_socket(agent_path(agent, key="wa_" + "x" * 43))
    notice = await communicator.receive_json_from(timeout=5)
    assert notice == {"type": "error", "code": 4001, "detail": "Invalid API key"}
    await expect_close(communicator, 4001)
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None


async def test_a_missing_key_or_another_agents_id_is_closed_with_4001(agent, make_agent) -> None:
    other = await database_sync_to_async(make_agent)("other")
    for path in ("/ws/watcher", f"/ws/watcher?agent_id={other.id}&api_key={agent.key}"):
        communicator = await open_socket(path)
        await expect_close(communicator, 4001)
    assert await database_sync_to_async(connections.connected_channel)(other.id) is None


async def test_agent_sockets_take_no_session_cookie(agent) -> None:
    """Agents authenticate by API key alone: their route has no session or user middleware (a
    session store and a lazy user held by each of 1,000 idle sockets), and a staff member's
    session cookie opens no agent socket."""
    from channels.routing import URLRouter

    from watcher.consumers import AgentConsumer

    # Nothing wraps the router or the agent's route (the live route has its own middleware).
    assert isinstance(application.application_mapping["websocket"], URLRouter)
    route = next(p for p in websocket_urlpatterns if str(p.pattern) == "ws/watcher")
    assert route.callback.consumer_class is AgentConsumer
    staff = await database_sync_to_async(User.objects.create_user)(
        "staff", password="x", is_staff=True, is_superuser=True
    )
    headers = await database_sync_to_async(session_headers)(staff)
    communicator = await open_socket(f"/ws/watcher?agent_id={agent.id}", headers=headers)
    await expect_close(communicator, 4001)
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None


async def test_a_disabled_agent_is_closed_with_4003(agent) -> None:
    await database_sync_to_async(
        lambda: Agent.objects.filter(pk=agent.id).update(is_enabled=False)
    )()
    communicator = await open_socket(agent_path(agent))
    await expect_close(communicator, 4003)


async def test_a_second_connection_closes_the_first_with_4002(agent) -> None:
    first = await connected_socket(agent)
    first_channel = await database_sync_to_async(connections.connected_channel)(agent.id)
    second = await open_socket(agent_path(agent))
    await expect_close(first, 4002)
    await first.disconnect()  # the old socket going away must not unregister the new one
    second_channel = await database_sync_to_async(connections.connected_channel)(agent.id)
    assert second_channel and second_channel != first_channel
    # Commands now reach the new socket only.
    command = await database_sync_to_async(commands.send_command)(agent.agent, "pause", {})
    message = await second.receive_json_from(timeout=5)
    assert message["command_id"] == str(command.pk)
    await second.disconnect()


# --- agent → server --------------------------------------------------------------------------


async def test_a_command_reaches_the_socket_and_the_ack_is_stored(agent) -> None:
    communicator = await connected_socket(agent)
    command = await database_sync_to_async(commands.send_command)(
        agent.agent, "reload_config", {"reason": "test"}
    )
    message = await communicator.receive_json_from(timeout=5)
    assert message == {
        "type": "command",
        "command_id": str(command.pk),
        "action": "reload_config",
        "params": {"reason": "test"},
    }
    await communicator.send_json_to(
        {"type": "ack", "command_id": str(command.pk), "status": "done"}
    )

    def acked() -> AgentCommand | None:
        row = AgentCommand.objects.get(pk=command.pk)
        return row if row.status == CommandStatus.ACKED else None

    row = await eventually(acked)
    assert row is not None
    assert row.ack_status == "done" and row.acked_at is not None
    await communicator.disconnect()


async def test_an_error_ack_marks_the_command_failed(agent) -> None:
    communicator = await connected_socket(agent)
    command = await database_sync_to_async(commands.send_command)(agent.agent, "reboot_modem", {})
    await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to(
        {"type": "ack", "command_id": str(command.pk), "status": "error"}
    )
    assert await eventually(
        lambda: AgentCommand.objects.filter(pk=command.pk, status=CommandStatus.FAILED).exists()
    )
    await communicator.disconnect()


async def test_an_ack_for_another_agents_command_changes_nothing(agent, make_agent) -> None:
    other = await database_sync_to_async(make_agent)("other")
    other_socket = await connected_socket(other)
    command = await database_sync_to_async(commands.send_command)(other.agent, "pause", {})
    communicator = await connected_socket(agent)
    await communicator.send_json_to({"type": "ack", "command_id": str(command.pk), "status": "ok"})
    await communicator.send_json_to({"type": "status", "status": "paused"})  # a marker
    assert await eventually(lambda: Agent.objects.get(pk=agent.id).status == AgentStatus.PAUSED)
    row = await database_sync_to_async(AgentCommand.objects.get)(pk=command.pk)
    assert row.status == CommandStatus.SENT and row.acked_at is None
    await communicator.disconnect()
    await other_socket.disconnect()


async def test_a_status_message_updates_the_agent(agent) -> None:
    communicator = await connected_socket(agent)
    await communicator.send_json_to({"type": "status", "status": "paused"})
    assert await eventually(lambda: Agent.objects.get(pk=agent.id).status == AgentStatus.PAUSED)
    await communicator.send_json_to({"type": "status", "status": "dancing"})
    await communicator.send_json_to({"type": "status", "status": "ready"})
    assert await eventually(lambda: Agent.objects.get(pk=agent.id).status == AgentStatus.READY)
    await communicator.disconnect()


async def test_invalid_json_is_ignored_and_the_socket_stays_open(agent) -> None:
    communicator = await connected_socket(agent)
    for junk in ("not json {", "[1, 2]", '{"type": "nonsense"}', '{"type": "ack"}', "42"):
        await communicator.send_to(text_data=junk)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.send_json_to({"type": "status", "status": "working"})
    assert await eventually(lambda: Agent.objects.get(pk=agent.id).status == AgentStatus.WORKING)
    command = await database_sync_to_async(commands.send_command)(agent.agent, "resume", {})
    assert (await communicator.receive_json_from(timeout=5))["command_id"] == str(command.pk)
    await communicator.disconnect()


# --- the staff live socket -------------------------------------------------------------------


def session_headers(user: User | None) -> list[tuple[bytes, bytes]]:
    headers = [ORIGIN, HOST]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return headers


async def test_the_live_socket_refuses_anonymous_and_non_staff_with_4003(db) -> None:
    plain = await database_sync_to_async(User.objects.create_user)("plain", password="x")
    for user in (None, plain):
        headers = await database_sync_to_async(session_headers)(user)
        communicator = await open_socket("/ws/live/agents", headers=headers)
        await expect_close(communicator, 4003)


async def test_the_live_socket_refuses_a_foreign_or_missing_origin(db) -> None:
    staff = await database_sync_to_async(User.objects.create_user)(
        "staff", password="x", is_staff=True
    )
    headers = await database_sync_to_async(session_headers)(staff)
    for origin in ([(b"origin", b"http://evil.example")], []):
        communicator = WebsocketCommunicator(
            application, "/ws/live/agents", headers=origin + headers[1:]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert not connected


def test_browser_routes_check_the_origin_before_they_read_the_session() -> None:
    """Another site's page can make a staff browser open these sockets with the staff's cookie:
    the Origin check must come first, then the session and the user. (A new browser route
    fails here until it is wrapped in ``browser_only`` and listed.)"""
    from channels.auth import AuthMiddleware
    from channels.security.websocket import OriginValidator
    from channels.sessions import CookieMiddleware, SessionMiddleware

    from config.routing import CloseOnDatabaseOutage
    from office.consumers import OfficeConsumer
    from watcher.consumers import LiveConsumer

    browser_routes = [p for p in websocket_urlpatterns if str(p.pattern) not in ("ws/watcher", "")]
    assert [str(p.pattern) for p in browser_routes] == ["ws/live/agents", "ws/office"]
    consumers = []
    for route in browser_routes:
        chain = []
        app = route.callback
        while not hasattr(app, "consumer_class"):
            chain.append(type(app))
            app = app.application if hasattr(app, "application") else app.inner
        assert issubclass(chain[0], OriginValidator)
        assert chain[1:] == [
            CloseOnDatabaseOutage, CookieMiddleware, SessionMiddleware, AuthMiddleware
        ]  # fmt: skip
        consumers.append(app.consumer_class)
    assert consumers == [LiveConsumer, OfficeConsumer]


async def test_staff_see_heartbeats_panics_and_commands_live(agent) -> None:
    staff = await database_sync_to_async(User.objects.create_user)(
        "staff", password="x", is_staff=True
    )
    live = await open_socket(
        "/ws/live/agents", headers=await database_sync_to_async(session_headers)(staff)
    )
    await database_sync_to_async(agents.record_heartbeat)(
        agent.agent,
        agents.Heartbeat(status="working", current_task=None, stats={}, ip="10.7.7.7"),
    )
    update = await live.receive_json_from(timeout=5)
    assert update["type"] == "agent" and update["event"] == "online"
    assert update["agent"]["id"] == agent.id and update["agent"]["current_ip"] == "10.7.7.7"
    assert update["agent"]["status"] == "working"

    socket = await connected_socket(agent)
    connected = await live.receive_json_from(timeout=5)
    assert connected["event"] == "connected" and connected["agent"]["connected"] is True
    admin = await database_sync_to_async(User.objects.create_user)("sender", password="pw")
    command = await database_sync_to_async(commands.send_command)(agent.agent, "pause", {}, admin)
    sent = await live.receive_json_from(timeout=5)
    assert sent["type"] == "command" and sent["event"] == "sent"
    assert sent["command"]["id"] == str(command.pk) and sent["command"]["status"] == "sent"
    await socket.receive_json_from(timeout=5)
    await socket.send_json_to({"type": "ack", "command_id": str(command.pk), "status": "ok"})
    acked = await live.receive_json_from(timeout=5)
    assert acked["event"] == "acked" and acked["command"]["status"] == "acked"
    assert sent["command"]["sent_by"] == acked["command"]["sent_by"] == "sender"

    await database_sync_to_async(agents.enter_panic)(agent.agent, "captcha", {}, "10.7.7.7")
    panic = await live.receive_json_from(timeout=5)
    assert panic["event"] == "panic" and panic["agent"]["status"] == "panic"
    assert panic["agent"]["panic_reason"] == "captcha"
    blocks = await live.receive_json_from(timeout=5)  # the IP block the panic put in force
    assert blocks["type"] == "blocks" and blocks["agent_id"] == agent.id
    assert [b["ip"] for b in blocks["blocks"]] == ["10.7.7.7"]
    await socket.disconnect()
    gone = await live.receive_json_from(timeout=5)
    assert gone["event"] == "disconnected" and gone["agent"]["connected"] is False
    await live.disconnect()


# --- keeping the sockets known -----------------------------------------------------------------


async def test_the_process_keeps_its_sockets_registered_and_in_their_groups(
    agent, make_agent, monkeypatch
) -> None:
    """One task per process refreshes every socket: what Redis lost comes back, and a socket
    whose agent a newer socket has taken over (its 4002 notice lost) is closed with 4002."""
    from channels.layers import get_channel_layer
    from django.conf import settings

    from watcher.services.events import agent_group
    from watcher.services.redis import AGENT_CONNECTION_KEY, get_redis
    from watcher.services.sockets import SocketKeeper, socket_keeper

    monkeypatch.setattr(SocketKeeper, "interval", 0.2)
    other = await database_sync_to_async(make_agent)()
    kept, replaced = await connected_socket(agent), await connected_socket(other)
    kept_channel = await database_sync_to_async(connections.connected_channel)(agent.id)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    group_key = f"{prefix}:group:{agent_group(agent.id)}"
    redis = get_redis()
    await database_sync_to_async(redis.delete)(AGENT_CONNECTION_KEY.format(id=agent.id), group_key)
    # A newer socket of the other agent registered, and its "replaced" message never came.
    await database_sync_to_async(connections.register_connection)(other.id, "specific.elsewhere!x")

    assert await eventually(lambda: connections.connected_channel(agent.id) == kept_channel)
    assert await eventually(lambda: redis.zscore(group_key, kept_channel) is not None)
    await expect_close(replaced, 4002)
    assert await database_sync_to_async(connections.connected_channel)(other.id) == (
        "specific.elsewhere!x"
    )
    # the group works again: a command reaches the kept socket
    await get_channel_layer().group_send(
        agent_group(agent.id),
        {"type": "agent.command", "command_id": "c1", "action": "stop", "params": {}},
    )
    message = await kept.receive_json_from(timeout=5)
    assert message["command_id"] == "c1"
    # the socket the keeper closed is out of its group, and stays out after another pass
    other_group_key = f"{prefix}:group:{agent_group(other.id)}"
    await socket_keeper().refresh()
    assert await database_sync_to_async(redis.zcard)(other_group_key) == 0
    await kept.disconnect()
    await replaced.disconnect()


@pytest.mark.parametrize("during", ["registrations", "groups"])
async def test_a_socket_closing_during_a_refresh_is_not_brought_back(
    agent, monkeypatch, during: str
) -> None:
    """The refresh works on a snapshot; a socket that leaves meanwhile (while the registrations
    are refreshed, or while the groups are re-joined) must not be registered again or put back
    into its group by it."""
    import threading

    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    from watcher.services.events import agent_group
    from watcher.services.redis import get_redis
    from watcher.services.sockets import SocketKeeper, socket_keeper

    monkeypatch.setattr(SocketKeeper, "interval", 3600)  # only the pass this test runs
    communicator = await connected_socket(agent)
    channel = await database_sync_to_async(connections.connected_channel)(agent.id)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    group_key = f"{prefix}:group:{agent_group(agent.id)}"
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    entered, release = threading.Event(), threading.Event()
    if during == "registrations":  # runs in a thread
        real_refresh = connections.refresh_connections

        def slow_refresh(sockets):
            entered.set()
            release.wait(10)
            return real_refresh(sockets)

        monkeypatch.setattr(connections, "refresh_connections", slow_refresh)
    else:  # runs on the event loop
        real_add = RedisChannelLayer.group_add

        async def slow_add(layer, group, channel):
            entered.set()
            while not release.is_set():
                await asyncio.sleep(0.01)
            await real_add(layer, group, channel)

        monkeypatch.setattr(RedisChannelLayer, "group_add", slow_add)

    refresh = asyncio.create_task(socket_keeper().refresh())
    assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
    await communicator.disconnect()  # unregisters and leaves the group, mid-refresh
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None
    assert await database_sync_to_async(get_redis().zscore)(group_key, channel) is None
    release.set()  # the refresh now writes what it saw before the socket left…
    await refresh
    # …and the keeper takes it back.
    assert await database_sync_to_async(connections.connected_channel)(agent.id) is None
    assert await database_sync_to_async(get_redis().zscore)(group_key, channel) is None


async def test_the_keeper_starts_again_after_every_socket_left(agent, monkeypatch) -> None:
    """When the last socket of a process leaves, its refresh task ends; the next socket to
    connect gets a new one (or its registration would lapse after CONNECTION_TTL)."""
    from watcher.services.redis import AGENT_CONNECTION_KEY, get_redis
    from watcher.services.sockets import SocketKeeper, socket_keeper

    monkeypatch.setattr(SocketKeeper, "interval", 0.05)
    first = await connected_socket(agent)
    keeper = socket_keeper()
    task = keeper.task
    assert task is not None and not task.done()
    await first.disconnect()
    await asyncio.wait_for(asyncio.shield(task), 5)  # no sockets left: the task ends
    assert keeper.task is None

    second = await connected_socket(agent)
    assert keeper.task is not None and not keeper.task.done()
    await database_sync_to_async(get_redis().delete)(AGENT_CONNECTION_KEY.format(id=agent.id))
    assert await eventually(lambda: connections.connected_channel(agent.id))  # refreshed again
    await second.disconnect()
