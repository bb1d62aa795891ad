"""Clearing a panic and unblocking an IP from an agent's live page: the service, who may, the
record in the agent's history and the live update (the browser step is in test_first_hour)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from tests.watcher.test_commands import Listener, connect
from watcher.models import AgentCommand, AgentStatus, PanicBlock
from watcher.services import agents, events, panics
from watcher.services.errors import NotFound
from watcher.services.redis import BLOCKED_KEY, get_redis

pytestmark = pytest.mark.django_db(transaction=True)


def panicking(handle: Any, ip: str = "10.7.7.7") -> None:
    agents.record_heartbeat(
        handle.agent, agents.Heartbeat(status="working", current_task=None, stats={}, ip=ip)
    )
    agents.enter_panic(handle.agent, "captcha on ozon", {}, ip)
    handle.agent.refresh_from_db()


def user(name: str, *, perm: bool = False, admin_role: bool = False, **flags: bool) -> User:
    person = User.objects.create_user(name, password="x", is_staff=True, **flags)
    if perm:
        person.user_permissions.add(Permission.objects.get(codename="delete_panicblock"))
    if admin_role:
        person.groups.add(Group.objects.get_or_create(name="admin")[0])
    return person


def browser(person: User | None, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if person is not None:
        client.force_login(person)
    return client


def blocked(ip: str) -> bool:
    return bool(get_redis().exists(BLOCKED_KEY.format(ip=ip)))


def test_clearing_a_panic_lifts_the_blocks_resumes_the_agent_and_is_recorded(agent) -> None:
    panicking(agent)
    socket = connect(agent)
    live = Listener(events.LIVE_AGENTS_GROUP)
    root = user("root", is_superuser=True)
    assert blocked("10.7.7.7")

    done = panics.clear_panic(agent.agent, root)

    assert done.ips == ["10.7.7.7"] and done.resumed
    assert not PanicBlock.objects.exists() and not blocked("10.7.7.7")
    message = socket.receive()
    assert message["action"] == "resume"
    command = AgentCommand.objects.get(pk=message["command_id"])
    assert command.sent_by == root
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id) == (root, agent.id)
    assert "10.7.7.7" in entry.change_message
    first = live.receive()
    assert first == {"type": "live.blocks", "agent_id": agent.id, "blocks": []}


def test_without_a_socket_the_blocks_go_and_the_page_says_resume_was_not_sent(agent) -> None:
    panicking(agent)
    done = panics.clear_panic(agent.agent, user("root", is_superuser=True))
    assert done.ips == ["10.7.7.7"] and not done.resumed and not done.connected
    assert not AgentCommand.objects.exists()
    assert not blocked("10.7.7.7")


def test_one_ip_block_is_lifted_and_another_agents_block_is_not_found(agent, make_agent) -> None:
    panicking(agent)
    other = make_agent("other")
    panicking(other, "10.8.8.8")
    mine = PanicBlock.objects.get(ip="10.7.7.7")
    theirs = PanicBlock.objects.get(ip="10.8.8.8")
    root = user("root", is_superuser=True)
    with pytest.raises(NotFound):
        panics.unblock_ip(agent.agent, theirs.pk, root)
    assert panics.unblock_ip(agent.agent, mine.pk, root) == "10.7.7.7"
    assert not blocked("10.7.7.7") and blocked("10.8.8.8")
    agent.agent.refresh_from_db()
    assert agent.agent.status == AgentStatus.PANIC  # unblocking an IP is not a resume
    assert LogEntry.objects.get().change_message.count("10.7.7.7") == 1


def test_the_page_shows_the_blocks_and_the_buttons_to_whoever_may_use_them(agent) -> None:
    panicking(agent)
    url = f"/live/agents/{agent.id}/"
    body = browser(user("root", is_superuser=True)).get(url).content.decode()
    assert 'id="clear-panic"' in body and 'data-can-unblock="1"' in body
    assert '"ip": "10.7.7.7"' in body  # the blocks' JSON the script draws
    plain = browser(user("viewer")).get(url).content.decode()
    assert 'id="clear-panic"' not in plain and 'data-can-unblock=""' in plain
    # The permission alone may unblock IPs; clearing (it sends "resume") needs the admin role.
    unblocker = browser(user("unblocker", perm=True)).get(url).content.decode()
    assert 'id="clear-panic"' not in unblocker and 'data-can-unblock="1"' in unblocker


def test_the_endpoints_refuse_whoever_may_not_and_change_nothing(agent) -> None:
    panicking(agent)
    block = PanicBlock.objects.get()
    clear = f"/live/agents/{agent.id}/clear-panic"
    lift = f"/live/agents/{agent.id}/blocks/{block.pk}/lift"
    anonymous = browser(None).post(clear)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    non_staff = User.objects.create_user("nobody", password="x")
    assert browser(non_staff).post(clear).status_code == 403
    assert browser(user("viewer")).post(clear).status_code == 403
    assert browser(user("viewer2")).post(lift).status_code == 403
    assert browser(user("unblocker", perm=True)).post(clear).status_code == 403
    assert browser(user("role-only", admin_role=True)).post(lift).status_code == 403
    root = user("root", is_superuser=True)
    assert browser(root).get(clear).status_code == 405
    assert browser(root, csrf=True).post(clear).status_code == 403  # no CSRF token
    assert PanicBlock.objects.count() == 1 and blocked("10.7.7.7")
    assert not LogEntry.objects.exists()


def test_the_endpoints_do_it_for_those_who_may(agent) -> None:
    panicking(agent)
    block = PanicBlock.objects.get()
    lift = f"/live/agents/{agent.id}/blocks/{block.pk}/lift"
    response = browser(user("unblocker", perm=True)).post(lift, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.json() == {"detail": "IP 10.7.7.7 unblocked.", "ip": "10.7.7.7"}
    assert browser(user("again", perm=True)).post(lift).status_code == 404

    panicking(agent, "10.7.7.8")
    connect(agent)
    clear = f"/live/agents/{agent.id}/clear-panic"
    response = browser(user("boss", perm=True, admin_role=True)).post(clear)
    assert response.status_code == 200
    body = response.json()
    assert body["ips"] == ["10.7.7.8"] and body["resumed"] is True
    assert body["detail"] == "Паника снята. Сняты блокировки IP: 10.7.7.8. Отправлено «Продолжить»."
    assert [e.user.username for e in LogEntry.objects.order_by("action_time")] == [
        "unblocker",
        "boss",
    ]
