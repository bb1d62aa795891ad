"""The hand-written statements of the hot path give back exactly what the ORM would."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from tests.factories import AgentFactory, SubscriptionFactory, TaskFactory
from watcher.models import Agent, AgentCommand, AgentStatus, PriceHistory, Task, TaskStatus
from watcher.services import sql

pytestmark = pytest.mark.django_db(transaction=True)


def fields_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_get_one_converts_every_field_as_the_orm_does() -> None:
    agent = AgentFactory(
        current_ip="2001:db8::7",
        status=AgentStatus.WORKING,
        stats={"ip": "10.0.0.7", "signal_strength": 4, "nested": {"a": [1, 2]}},
        last_heartbeat=timezone.now(),
    )
    fast = sql.get_one(Agent, "api_key_prefix", agent.api_key_prefix)
    assert fast is not None
    assert fields_of(fast) == fields_of(Agent.objects.get(pk=agent.pk))
    assert isinstance(fast.stats, dict) and fast.stats["nested"] == {"a": [1, 2]}
    assert fast._state.adding is False
    assert sql.get_one(Agent, "api_key_prefix", "nobody-has") is None


def test_get_one_by_uuid_primary_key_with_the_row_lock() -> None:
    task = TaskFactory()
    with transaction.atomic():
        fast = sql.get_one(Task, "id", str(task.pk), lock=True)
    assert fast is not None and fields_of(fast) == fields_of(Task.objects.get(pk=task.pk))
    assert sql.get_one(Task, "id", uuid.uuid4()) is None


def test_update_returning_is_conditional_and_returns_the_new_row() -> None:
    task = TaskFactory()
    agent = AgentFactory()
    now = timezone.now()
    claimed = sql.update_returning(
        Task,
        values={"status": TaskStatus.IN_PROGRESS, "agent": agent.pk, "started_at": now},
        where={"id": task.pk, "status": TaskStatus.PENDING},
        increment=("lease_version",),
    )
    assert claimed is not None
    assert claimed.status == TaskStatus.IN_PROGRESS and claimed.agent_id == agent.pk
    assert claimed.lease_version == task.lease_version + 1
    assert claimed.started_at == now
    assert fields_of(claimed) == fields_of(Task.objects.get(pk=task.pk))
    # the condition no longer holds: nothing changes, None comes back
    again = sql.update_returning(
        Task,
        values={"status": TaskStatus.IN_PROGRESS},
        where={"id": task.pk, "status": TaskStatus.PENDING},
        increment=("lease_version",),
    )
    assert again is None
    assert Task.objects.get(pk=task.pk).lease_version == task.lease_version + 1


def test_update_counts_rows_and_respects_the_condition() -> None:
    task = TaskFactory()
    assert sql.update(Task, {"error": "x"}, where={"id": task.pk, "lease_version": 99}) == 0
    assert sql.update(Task, {"error": "y", "agent": None}, where={"id": task.pk}) == 1
    assert Task.objects.get(pk=task.pk).error == "y"


def test_insert_matches_orm_create() -> None:
    sub = SubscriptionFactory()
    parsed_at = timezone.now() - dt.timedelta(minutes=3)
    values = {
        "subscription": sub,
        "sku": sub.sku,
        "marketplace": sub.marketplace,
        "brand": sub.brand,
        "current_price": Decimal("1299.90"),
        "rating": Decimal("4.80"),
        "in_stock": True,
        "card_attributes": {"Цвет": "чёрный"},
        "ip": "10.0.0.7",
        "parsed_at": parsed_at,
    }
    fast = sql.insert(PriceHistory(**values))
    assert fast.pk is not None and fast._state.adding is False
    stored = PriceHistory.objects.get(pk=fast.pk)
    reference = PriceHistory.objects.create(**values)
    expected = model_to_dict(reference, exclude=["id"])
    assert model_to_dict(stored, exclude=["id"]) == expected
    assert stored.current_price == Decimal("1299.90")
    assert stored.card_attributes == {"Цвет": "чёрный"}
    assert stored.attempt == 1 and stored.parser_backend == "rules"  # model defaults


def test_insert_refuses_a_row_with_a_primary_key() -> None:
    sub = SubscriptionFactory()
    row = PriceHistory(id=10**9, subscription=sub, sku="1", marketplace="ozon", brand="b")
    with pytest.raises(ValueError, match="auto primary key"):
        sql.insert(row)
    assert not PriceHistory.objects.filter(pk=10**9).exists()


def test_insert_with_a_primary_key_from_a_default_matches_orm_save() -> None:
    """AgentCommand's UUID primary key comes from its default, not from the database."""
    from django.contrib.auth.models import User

    agent = AgentFactory()
    user = User.objects.create_user("operator")
    now = timezone.now()
    values = {
        "agent": agent,
        "action": "reload_config",
        "params": {"n": [1, "два"]},
        "sent_by": user,
        "status": "sent",
        "sent_at": now,
        "attempts": 1,
        "timeout_at": now + dt.timedelta(seconds=30),
    }
    fast = sql.insert(AgentCommand(**values))
    assert fast._state.adding is False
    reference = AgentCommand(**values)
    reference.save(force_insert=True)
    stored = AgentCommand.objects.get(pk=fast.pk)
    exclude = ["id", "created_at"]
    assert model_to_dict(stored, exclude=exclude) == model_to_dict(reference, exclude=exclude)
    assert stored.params == {"n": [1, "два"]} and stored.ack_status == ""  # model default
    with pytest.raises(ValueError, match="needs the primary key"):
        sql.insert(AgentCommand(id=None, agent=agent, action="stop"))
    assert AgentCommand.objects.count() == 2


def test_update_with_in_conditions() -> None:
    agent = AgentFactory()
    rows = [
        AgentCommand.objects.create(agent=agent, action="stop", status=s) for s in ("sent", "acked")
    ]
    open_statuses = {"status__in": ["pending", "sent"]}
    assert (
        sql.update_returning(AgentCommand, {"ack_status": "x"}, {"id": rows[1].pk, **open_statuses})
        is None
    )
    done = sql.update_returning(
        AgentCommand, {"ack_status": "ok"}, {"id": rows[0].pk, **open_statuses}
    )
    assert done is not None and done.ack_status == "ok" and done.agent_id == agent.pk
    assert (
        sql.update(AgentCommand, {"ack_status": "y"}, {"agent": agent.pk, "status__in": ["acked"]})
        == 1
    )
    assert sorted(AgentCommand.objects.values_list("ack_status", flat=True)) == ["ok", "y"]
    with pytest.raises(ValueError, match="empty list"):
        sql.update(AgentCommand, {"ack_status": "z"}, {"status__in": []})
    with pytest.raises(TypeError, match="not a string"):
        sql.update(AgentCommand, {"ack_status": "z"}, {"status__in": "sent"})
    with pytest.raises(ValueError, match="only exact matches"):
        sql.update(AgentCommand, {"ack_status": "z"}, {"status__startswith": "s"})
    assert sorted(AgentCommand.objects.values_list("ack_status", flat=True)) == ["ok", "y"]


def test_statements_pass_through_django_like_orm_queries() -> None:
    """Errors come out as django.db exceptions and execute wrappers see every statement, on
    PostgreSQL too, where these statements bind their parameters on the server."""
    from django.db import IntegrityError, connection

    agent, other = AgentFactory(), AgentFactory()
    seen: list[str] = []

    def spy(execute, sql_text, params, many, context):
        seen.append(sql_text.split(None, 1)[0])
        return execute(sql_text, params, many, context)

    reason = "страница " * 50
    with connection.execute_wrapper(spy):
        assert sql.update(Agent, {"panic_reason": reason}, {"id": agent.pk}) == 1
        assert sql.get_one(Agent, "api_key_prefix", agent.api_key_prefix).panic_reason == reason
        with pytest.raises(IntegrityError), transaction.atomic():
            sql.update(Agent, {"name": agent.name}, {"id": other.pk})  # names are unique
    assert [s for s in seen if s != "BEGIN"] == ["UPDATE", "SELECT", "UPDATE"]  # SQLite: BEGIN
