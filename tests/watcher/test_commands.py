"""Commands to agents: the API, the connection registry, ACKs, re-sends; live agent events."""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group, User
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from watcher.models import Agent, AgentCommand, AgentStatus, CommandStatus
from watcher.schedules import ensure_schedules
from watcher.services import agents, commands, connections, events
from watcher.services.errors import NotFound, Unavailable
from watcher.services.redis import AGENT_COMMANDS_KEY, AGENT_CONNECTION_KEY, get_redis
from watcher.services.stats import command_history
from watcher.tasks import resend_commands

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


class Listener:
    """A channel added to a group, read from sync code (what a consumer would receive)."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def receive(self) -> dict[str, Any]:
        async def get() -> dict[str, Any]:
            import asyncio

            return await asyncio.wait_for(self.layer.receive(self.channel), 5)

        return async_to_sync(get)()

    def receive_all(self, n: int) -> list[dict[str, Any]]:
        return [self.receive() for _ in range(n)]


def connect(handle: Any) -> Listener:
    """Pretend the agent's socket is open: register a channel and join its group."""
    listener = Listener(events.agent_group(handle.id))
    connections.register_connection(handle.id, listener.channel)
    return listener


@pytest.fixture
def admin_client() -> APIClient:
    user = User.objects.create_user("root", password="pw", is_superuser=True, is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def live() -> Iterator[Listener]:
    yield Listener(events.LIVE_AGENTS_GROUP)


# --- the command API -----------------------------------------------------------------------


def test_a_command_is_sent_to_a_connected_agent(agent, admin_client) -> None:
    socket = connect(agent)
    response = admin_client.post(
        f"{API}/agents/{agent.id}/command",
        {"command": "reboot_modem", "params": {"port": 2}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["command"] == "reboot_modem"
    message = socket.receive()
    assert message == {
        "type": "agent.command",
        "command_id": body["command_id"],
        "action": "reboot_modem",
        "params": {"port": 2},
    }
    row = AgentCommand.objects.get(pk=body["command_id"])
    assert row.agent_id == agent.agent.pk and row.status == CommandStatus.SENT
    assert row.attempts == 1 and row.sent_by.username == "root" and row.sent_by_name == "root"
    assert row.timeout_at > row.sent_at
    assert get_redis().lrange(AGENT_COMMANDS_KEY.format(id=agent.id), 0, -1) == [str(row.pk)]


def test_a_command_to_an_agent_without_a_socket_gets_503(agent, admin_client) -> None:
    response = admin_client.post(
        f"{API}/agents/{agent.id}/command",
        {"command": "pause"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 503
    assert response.json()["detail"] == "Agent not connected"
    assert not AgentCommand.objects.exists()


def test_command_bad_input_and_strangers_are_refused(agent, admin_client) -> None:
    connect(agent)
    url = f"{API}/agents/{agent.id}/command"
    assert admin_client.post(url, {"command": "explode"}, format="json").status_code == 400
    assert admin_client.post(url, {"params": {}}, format="json").status_code == 400
    assert (
        admin_client.post(url, {"command": "stop", "params": [1]}, format="json").status_code == 400
    )
    unknown = f"{API}/agents/{uuid.uuid4()}/command"
    response = admin_client.post(
        unknown, {"command": "stop"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown agent", "code": "not_found"}
    with pytest.raises(NotFound):  # an id that is no agent's id, from code
        commands.send_command("not-an-id", "stop", {})
    manager = User.objects.create_user("manager")
    manager.groups.add(Group.objects.get_or_create(name="manager")[0])
    as_manager = APIClient()
    as_manager.force_authenticate(manager)
    assert as_manager.post(url, {"command": "stop"}, format="json").status_code == 403
    assert APIClient().post(url, {"command": "stop"}, format="json").status_code in (401, 403)
    assert agent.client.post(url, {"command": "stop"}, format="json").status_code == 401
    assert not AgentCommand.objects.exists()


def test_an_admin_group_member_may_send_commands(agent) -> None:
    connect(agent)
    user = User.objects.create_user("ops")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"{API}/agents/{agent.id}/command", {"command": "stop"}, format="json")
    assert response.status_code == 200


def test_a_broadcast_reaches_every_connected_agent(make_agent, admin_client) -> None:
    one, two, silent = make_agent("one"), make_agent("two"), make_agent("silent")
    disabled = make_agent("disabled", is_enabled=False)
    sockets = [connect(one), connect(two)]
    connections.register_connection(disabled.id, "specific.stale!x")
    response = admin_client.post(f"{API}/agents/command", {"command": "pause"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "command": "pause", "sent_to": 2}
    ids = {str(pk) for pk in AgentCommand.objects.values_list("pk", flat=True)}
    assert {socket.receive()["command_id"] for socket in sockets} == ids
    assert not AgentCommand.objects.filter(agent__in=[silent.agent, disabled.agent]).exists()


def test_the_command_endpoints_are_in_the_openapi_schema(admin_client) -> None:
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    single = paths["/api/v1/watcher/agents/{agent_id}/command"]["post"]
    assert {"200", "400", "404", "503"} <= set(single["responses"])
    assert "/api/v1/watcher/agents/command" in paths


# --- registry, ACKs, re-sends --------------------------------------------------------------


def test_refreshing_many_sockets_at_once() -> None:
    """A server process refreshes all its sockets in batches: kept, re-taken, or lost."""
    sockets = [(str(uuid.uuid4()), f"chan-{i}") for i in range(1203)]  # three batches
    for agent_id, channel in sockets:
        connections.register_connection(agent_id, channel)
    keys = [AGENT_CONNECTION_KEY.format(id=agent_id) for agent_id, _ in sockets]
    try:
        for key in keys:
            get_redis().expire(key, 5)
        get_redis().delete(keys[7], keys[1000])  # Redis lost these two
        connections.register_connection(sockets[600][0], "newer")  # a newer socket took this agent
        assert connections.refresh_connections(sockets) == [sockets[600]]
        assert connections.connected_channel(sockets[7][0]) == "chan-7"
        assert connections.connected_channel(sockets[1000][0]) == "chan-1000"
        assert connections.connected_channel(sockets[600][0]) == "newer"
        ttls = {get_redis().ttl(key) for i, key in enumerate(keys) if i != 600}
        assert min(ttls) > 5 and max(ttls) <= connections.CONNECTION_TTL
    finally:
        get_redis().delete(*keys)


def test_the_connection_registry_is_compare_and_set(agent) -> None:
    key = AGENT_CONNECTION_KEY.format(id=agent.id)
    assert connections.register_connection(agent.id, "chan-a") is None
    assert 0 < get_redis().ttl(key) <= connections.CONNECTION_TTL
    assert connections.register_connection(agent.id, "chan-b") == "chan-a"
    assert connections.refresh_connections([(agent.id, "chan-a")]) == [(agent.id, "chan-a")]
    assert not connections.unregister_connection(agent.id, "chan-a")
    assert connections.connected_channel(agent.id) == "chan-b"
    get_redis().delete(key)  # Redis lost it: the live socket takes it back on its next refresh
    assert connections.refresh_connections([(agent.id, "chan-b")]) == []
    assert connections.connected_channel(agent.id) == "chan-b"
    assert connections.connected_agent_ids() == [agent.id]
    assert connections.unregister_connection(agent.id, "chan-b")
    assert connections.connected_agent_ids() == []
    with pytest.raises(Unavailable):
        commands.send_command(agent.agent, "stop", {})


def test_acks_are_idempotent_and_late_acks_count(agent) -> None:
    connect(agent)
    command = commands.send_command(agent.agent, "refresh_cookies", {})
    assert commands.record_ack(agent.agent, str(command.pk), "ok") is not None
    first = AgentCommand.objects.get(pk=command.pk)
    assert commands.record_ack(agent.agent, str(command.pk), "error") is None
    assert AgentCommand.objects.get(pk=command.pk).acked_at == first.acked_at
    assert commands.record_ack(agent.agent, "not-a-uuid", "ok") is None
    late = commands.send_command(agent.agent, "stop", {})
    AgentCommand.objects.filter(pk=late.pk).update(status=CommandStatus.TIMED_OUT)
    assert commands.record_ack(agent.agent, str(late.pk), "ok").status == CommandStatus.ACKED


def test_unacked_commands_are_resent_with_the_same_id_then_time_out(agent) -> None:
    socket = connect(agent)
    command = commands.send_command(agent.agent, "reload_config", {})
    socket.receive()
    now = timezone.now()
    # Not due yet: nothing happens.
    assert commands.resend_unacked(now) == {"resent": 0, "timed_out": 0}
    later = now + dt.timedelta(seconds=commands.resend_after() + 1)
    assert commands.resend_unacked(later) == {"resent": 1, "timed_out": 0}
    assert socket.receive()["command_id"] == str(command.pk)
    row = AgentCommand.objects.get(pk=command.pk)
    assert row.attempts == 2 and row.sent_at == later
    # An agent without a socket is not re-sent to, but still times out.
    connections.unregister_connection(agent.id, socket.channel)
    even_later = later + dt.timedelta(seconds=commands.resend_after() + 1)
    assert commands.resend_unacked(even_later) == {"resent": 0, "timed_out": 0}
    expired = now + dt.timedelta(seconds=commands.command_timeout() + 1)
    assert commands.resend_unacked(expired) == {"resent": 0, "timed_out": 1}
    assert AgentCommand.objects.get(pk=command.pk).status == CommandStatus.TIMED_OUT


def test_an_acked_command_is_not_resent(agent) -> None:
    socket = connect(agent)
    command = commands.send_command(agent.agent, "pause", {})
    socket.receive()
    commands.record_ack(agent.agent, str(command.pk), "ok")
    later = timezone.now() + dt.timedelta(seconds=commands.command_timeout() + 1)
    assert commands.resend_unacked(later) == {"resent": 0, "timed_out": 0}
    assert resend_commands() == {"resent": 0, "timed_out": 0}  # the Celery task


def test_the_last_100_commands_are_kept_visible(agent) -> None:
    from watcher.services.stats import command_history

    connect(agent)
    sent = [commands.send_command(agent.agent, "resume", {"n": i}) for i in range(105)]
    history = command_history(agent.agent)
    assert len(history) == 100
    assert history[0]["id"] == str(sent[-1].pk) and history[-1]["id"] == str(sent[5].pk)
    ids = get_redis().lrange(AGENT_COMMANDS_KEY.format(id=agent.id), 0, -1)
    assert ids == [str(c.pk) for c in reversed(sent[5:])]


def test_the_resend_task_is_scheduled() -> None:
    ensure_schedules()
    task = PeriodicTask.objects.get(task="watcher.resend_commands")
    assert 10 <= task.interval.every <= 15 and task.enabled


def test_each_agent_keeps_its_last_100_finished_commands_and_every_open_one(make_agent) -> None:
    busy, quiet = make_agent("busy"), make_agent("quiet")
    start = timezone.now() - dt.timedelta(days=1)

    def command(agent, minutes: int, status: str) -> AgentCommand:
        return AgentCommand(
            agent=agent.agent,
            action="resume",
            status=status,
            created_at=start + dt.timedelta(minutes=minutes),
        )

    # busy: 2 old open commands, then 110 acknowledged ones; quiet: 3 acknowledged ones.
    old_open = AgentCommand.objects.bulk_create(
        [command(busy, 0, CommandStatus.SENT), command(busy, 1, CommandStatus.PENDING)]
    )
    acked = AgentCommand.objects.bulk_create(
        [command(busy, 10 + i, CommandStatus.ACKED) for i in range(110)]
    )
    AgentCommand.objects.bulk_create([command(quiet, i, CommandStatus.ACKED) for i in range(3)])

    assert commands.prune_history(batch=4) == 10  # batches smaller than the work
    kept = set(AgentCommand.objects.filter(agent=busy.agent).values_list("pk", flat=True))
    assert kept == {c.pk for c in old_open} | {c.pk for c in acked[10:]}
    assert AgentCommand.objects.filter(agent=quiet.agent).count() == 3
    assert commands.prune_history() == 0

    ensure_schedules()
    task = PeriodicTask.objects.get(task="watcher.prune_command_history")
    assert task.enabled and task.interval.every == 1 and task.interval.period == "hours"


# --- live agent events: heartbeat, panic, offline, back online -----------------------------


def test_an_agent_silent_too_long_goes_offline_and_admins_hear(
    agent, live, monkeypatch, settings
) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(agents, "notify", lambda event, payload: heard.append((event, payload)))
    agents.record_heartbeat(
        agent.agent, agents.Heartbeat(status="working", current_task=None, stats={}, ip="10.0.0.9")
    )
    assert live.receive()["event"] == "online"
    now = timezone.now()
    assert agents.mark_offline_agents(now) == []  # fresh heartbeat: stays
    later = now + dt.timedelta(seconds=settings.WATCHER_AGENT_HEARTBEAT_TIMEOUT + 1)
    assert agents.mark_offline_agents(later) == [agent.id]
    assert Agent.objects.get(pk=agent.id).status == AgentStatus.OFFLINE
    assert heard == [
        (
            "watcher_agent_offline",
            {
                "agent_id": agent.id,
                "name": "agent-main",
                "last_heartbeat": heard[0][1]["last_heartbeat"],
            },
        )
    ]
    update = live.receive()
    assert update["type"] == "live.agent" and update["event"] == "offline"
    assert update["agent"]["status"] == "offline" and update["agent"]["id"] == agent.id
    assert agents.mark_offline_agents(later) == []  # once only


def test_an_offline_agent_comes_back_online_with_a_heartbeat(agent, live) -> None:
    Agent.objects.filter(pk=agent.id).update(
        status=AgentStatus.OFFLINE, last_heartbeat=timezone.now() - dt.timedelta(hours=1)
    )
    agent.agent.refresh_from_db()
    response = agent.client.post(
        f"{API}/agents/heartbeat",
        {"status": "ready", "stats": {"ip": "10.0.0.8", "modem_operator": "Beeline"}},
        format="json",
    )
    assert response.status_code == 200
    assert Agent.objects.get(pk=agent.id).status == AgentStatus.READY
    update = live.receive()
    assert update["event"] == "online"
    assert update["agent"]["status"] == "ready" and update["agent"]["current_ip"] == "10.0.0.8"
    assert update["agent"]["modem_operator"] == "Beeline"
    agent.client.post(f"{API}/agents/heartbeat", {"status": "working"}, format="json")
    assert live.receive()["event"] == "heartbeat"


def test_a_panic_is_announced_live(agent, live) -> None:
    response = agent.client.post(
        f"{API}/agents/panic", {"reason": "captcha", "details": {"ip": "10.0.0.4"}}, format="json"
    )
    assert response.status_code == 200
    update = live.receive()
    assert update["event"] == "panic" and update["agent"]["status"] == "panic"


def test_a_rolled_back_write_announces_nothing(agent, live) -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        events.agent_changed(agent.agent, "status")
        raise RuntimeError
    events.agent_changed(agent.agent, "heartbeat")
    assert live.receive()["event"] == "heartbeat"


def test_who_sent_a_command_is_kept_when_the_user_goes(agent) -> None:
    connect(agent)
    user = User.objects.create_user("olga", password="pw", is_superuser=True)
    command = commands.send_command(agent.agent, "pause", {}, user)
    user.username = "olga.renamed"
    user.save()
    assert command_history(agent.agent)[0]["sent_by"] == "olga"
    user.delete()
    row = AgentCommand.objects.get(pk=command.pk)
    assert row.sent_by is None and row.sent_by_name == "olga"
    assert command_history(agent.agent)[0]["sent_by"] == "olga"


def test_the_migration_names_the_senders_of_earlier_commands(agent) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    migration = "0006_agentcommand_sent_by_name"
    fill_names = importlib.import_module(f"watcher.migrations.{migration}").fill_names
    historical = MigrationExecutor(connection).loader.project_state(("watcher", migration)).apps
    connect(agent)
    user = User.objects.create_user("ivan", password="pw", is_superuser=True)
    earlier = commands.send_command(agent.agent, "pause", {}, user)
    nobody = commands.send_command(agent.agent, "stop", {})
    AgentCommand.objects.update(sent_by_name="")  # as before the field existed
    fill_names(historical, None)
    assert AgentCommand.objects.get(pk=earlier.pk).sent_by_name == "ivan"
    assert AgentCommand.objects.get(pk=nobody.pk).sent_by_name == ""


def test_code_that_does_not_know_the_name_column_can_still_insert_commands(agent) -> None:
    """What a process running the previous release does while the migration runs."""
    from django.db import connection

    pk = uuid.uuid4()
    uuid_field = AgentCommand._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO watcher_agentcommand (id, agent_id, action, params, status, ack_status, "
            "created_at, attempts) VALUES (%s, %s, 'stop', '{}', 'sent', '', %s, 1)",
            [
                uuid_field.get_db_prep_value(pk, connection),
                uuid_field.get_db_prep_value(agent.agent.pk, connection),
                timezone.now(),
            ],
        )
    assert AgentCommand.objects.get(pk=pk).sent_by_name == ""


def test_a_deleted_agent_whose_socket_is_still_registered_is_unknown(agent, admin_client):
    """The command endpoint does not read the agent when its socket is registered: the
    INSERT's foreign key answers for an agent deleted since."""
    connect(agent)
    Agent.objects.filter(pk=agent.agent.pk).delete()
    assert connections.connected_channel(agent.id)  # the registration outlives the row
    response = admin_client.post(
        f"{API}/agents/{agent.id}/command",
        {"command": "stop"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown agent", "code": "not_found"}
    assert not AgentCommand.objects.exists()
