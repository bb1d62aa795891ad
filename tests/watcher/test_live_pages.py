"""The live agent pages for staff (server side; the browser test is in tests/e2e)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from watcher.models import AgentStatus
from watcher.services import agents, commands, connections

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(**flags: bool) -> Client:
    user = User.objects.create_user("u" + str(User.objects.count()), password="x", **flags)
    client = Client()
    client.force_login(user)
    return client


def page_json(html: str, element_id: str) -> object:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, element_id
    return json.loads(match.group(1))


def test_anonymous_users_are_sent_to_the_admin_login(agent) -> None:
    for url in ("/live/agents/", f"/live/agents/{agent.id}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/live/agents/")


def test_logged_in_non_staff_get_403(agent) -> None:
    client = logged_in()
    assert client.get("/live/agents/").status_code == 403
    assert client.get(f"/live/agents/{agent.id}/").status_code == 403


def test_the_overview_lists_agents_with_their_state(agent, make_agent) -> None:
    agents.record_heartbeat(
        agent.agent,
        agents.Heartbeat(
            status="working",
            current_task=None,
            stats={"modem_operator": "MTS", "signal_strength": 3},
            ip="10.3.3.3",
        ),
    )
    panicking = make_agent("panicky")
    agents.enter_panic(panicking.agent, "captcha", {}, "10.4.4.4")
    agents.count_result(agent.id, ok=True, timing_ms=1200)
    agents.count_result(agent.id, ok=False, timing_ms=None)
    response = logged_in(is_staff=True).get("/live/agents/")
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(rf'<tr data-agent-id="{agent.id}".*?</tr>', html, re.S).group(0)
    assert 'data-status="working"' in row and "10.3.3.3" in row and "MTS" in row
    assert f"/live/agents/{agent.id}/" in row
    assert re.search(r'data-field="tasks_completed_today"[^>]*>1<', row)
    assert re.search(r'data-field="tasks_failed_today"[^>]*>1<', row)
    assert re.search(r'data-field="avg_task_time_ms"[^>]*>1200<', row)
    assert f'<tr data-agent-id="{panicking.id}" data-status="panic"' in html
    labels = page_json(html, "live-labels")
    assert labels["statuses"]["panic"] == str(AgentStatus.PANIC.label)
    assert "/static/watcher/live.js" in html


def test_the_detail_page_has_commands_for_admins_and_the_history(agent) -> None:
    connections.register_connection(agent.id, "specific.test!1")
    sent = [commands.send_command(agent.agent, action, {}) for action in ("pause", "stop")]
    commands.record_ack(agent.agent, str(sent[0].pk), "ok")
    html = logged_in(is_staff=True, is_superuser=True).get(f"/live/agents/{agent.id}/")
    assert html.status_code == 200
    body = html.content.decode()
    for action in ("stop", "pause", "resume", "reload_config", "reboot_modem", "refresh_cookies"):
        assert f'data-action="{action}"' in body
    confirmed = re.findall(r'data-action="(\w+)"[^>]*data-confirm="1"', body)
    assert sorted(confirmed) == ["reboot_modem", "stop"]
    assert f'data-url="/api/v1/watcher/agents/{agent.id}/command"' in body
    assert "csrfmiddlewaretoken" in body
    history = page_json(body, "command-history-data")
    assert [(c["action"], c["status"]) for c in history] == [("stop", "sent"), ("pause", "acked")]
    assert '<p class="muted" id="command-history-empty" hidden>' in body


def test_an_agent_without_commands_says_so(agent) -> None:
    body = logged_in(is_staff=True).get(f"/live/agents/{agent.id}/").content.decode()
    assert page_json(body, "command-history-data") == []
    assert '<p class="muted" id="command-history-empty">' in body


def test_staff_who_are_not_admins_see_no_command_buttons(agent) -> None:
    body = logged_in(is_staff=True).get(f"/live/agents/{agent.id}/").content.decode()
    assert "data-action=" not in body


def test_an_unknown_agent_is_404() -> None:
    client = logged_in(is_staff=True)
    assert client.get("/live/agents/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_admin_index_links_to_the_live_pages() -> None:
    body = logged_in(is_staff=True, is_superuser=True).get("/admin/").content.decode()
    assert 'href="/live/agents/"' in body
    assert 'id="content-main"' in body  # the stock index is still there
