"""Generation, queues, the semaphore and leases, against real Redis and the real database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import CompetitorFactory, SubscriptionFactory, TaskFactory
from watcher.models import Agent, Task, TaskOutcome, TaskStatus
from watcher.services import distributor, queues, semaphore
from watcher.services.generator import generate_tasks
from watcher.services.redis import INFLIGHT_KEY, get_redis, script

pytestmark = pytest.mark.django_db(transaction=True)


def test_generation_makes_one_task_per_active_sku_and_competitor() -> None:
    sub = SubscriptionFactory(marketplace="ozon", priority=7)
    CompetitorFactory(subscription=sub, priority=3)
    CompetitorFactory(subscription=sub, is_active=False)
    SubscriptionFactory(is_active=False)
    inactive_parent = SubscriptionFactory(is_active=False)
    CompetitorFactory(subscription=inactive_parent)
    result = generate_tasks()
    assert result.created == {"wildberries": 0, "ozon": 2, "yandex_market": 0}
    own = Task.objects.get(competitor=None)
    assert own.priority == 7 and own.url == f"https://www.ozon.ru/product/{sub.sku}/"
    rival = Task.objects.exclude(competitor=None).get()
    assert rival.priority == 3 and rival.brand == sub.brand
    assert queues.lengths()["ozon"] == 2


def test_generation_is_idempotent_per_night() -> None:
    CompetitorFactory.create_batch(3)
    first = generate_tasks()
    second = generate_tasks()
    assert first.total_created == 6
    assert second.total_created == 0
    assert Task.objects.count() == 6
    assert sum(queues.lengths().values()) == 6


def test_leftovers_of_earlier_nights_are_expired_and_leave_the_queue() -> None:
    SubscriptionFactory()
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    generate_tasks(yesterday)
    result = generate_tasks()
    assert result.expired == 1
    old = Task.objects.get(scheduled_date=yesterday)
    assert old.status == TaskStatus.EXPIRED and old.outcome == TaskOutcome.EXPIRED
    assert queues.lengths()["wildberries"] == 1  # only tonight's task


def test_priority_is_honoured_and_equals_are_shuffled(make_agent) -> None:
    tasks = [TaskFactory(priority=p) for p in [1] * 30 + [5] * 30]
    queues.push([(str(t.pk), t.marketplace, t.priority) for t in tasks])
    client = get_redis()
    order = [
        m for m, _ in client.zrevrange(queues.queue_key("wildberries"), 0, -1, withscores=True)
    ]
    high = {str(t.pk) for t in tasks if t.priority == 5}
    assert set(order[:30]) == high
    # Random among equals: the queue is not in insertion order.
    assert order[:30] != [str(t.pk) for t in tasks if t.priority == 5]


def test_semaphore_is_released_only_by_its_holder() -> None:
    assert semaphore.acquire("10.0.0.1", "ozon.ru", "holder")
    assert not semaphore.acquire("10.0.0.1", "ozon.ru", "other")
    assert semaphore.acquire("10.0.0.1", "wildberries.ru", "other")  # another domain
    assert semaphore.acquire("10.0.0.2", "ozon.ru", "third")  # another IP
    assert not semaphore.release("10.0.0.1", "ozon.ru", "other")
    assert semaphore.is_locked("10.0.0.1", "ozon.ru")
    assert not semaphore.extend("10.0.0.1", "ozon.ru", "other")
    assert semaphore.extend("10.0.0.1", "ozon.ru", "holder", ttl=50)
    assert 40 < get_redis().ttl("watcher:ip_sem:10.0.0.1:ozon.ru") <= 50
    assert semaphore.locks_of("10.0.0.1") == {"ozon.ru": "holder", "wildberries.ru": "other"}
    assert semaphore.stats() == {
        "total_locks": 3,
        "by_domain": {"ozon.ru": 2, "wildberries.ru": 1},
        "by_ip": {"10.0.0.1": 2, "10.0.0.2": 1},
    }
    assert semaphore.release("10.0.0.1", "ozon.ru", "holder")
    assert semaphore.release_all("10.0.0.1") == 1
    assert semaphore.locks_of("10.0.0.1") == {}


def test_semaphore_handles_ipv6_addresses() -> None:
    assert semaphore.acquire("2001:db8::1", "ozon.ru", "t")
    assert semaphore.locks_of("2001:db8::1") == {"ozon.ru": "t"}
    assert semaphore.stats()["by_ip"] == {"2001:db8::1": 1}


def test_semaphore_expires_so_a_dead_agent_cannot_hold_it() -> None:
    assert semaphore.acquire("10.0.0.1", "ozon.ru", "dead", ttl=1)
    assert 0 < get_redis().ttl("watcher:ip_sem:10.0.0.1:ozon.ru") <= 1


def test_queues_are_rebuilt_from_the_database_after_a_redis_flush(make_agent) -> None:
    CompetitorFactory.create_batch(2, subscription=SubscriptionFactory(marketplace="ozon"))
    generate_tasks()
    handle = make_agent()
    claimed = distributor.claim_next_task(handle.agent, "10.0.0.1")
    assert claimed is not None
    get_redis().flushdb()
    assert queues.rebuild() == {"wildberries": 0, "ozon": 2, "yandex_market": 0}
    # The in-progress task is not queued again; the two pending ones are.
    ids = set(get_redis().zrange(queues.queue_key("ozon"), 0, -1))
    assert str(claimed.pk) not in ids and len(ids) == 2


def test_a_silent_agents_task_goes_back_to_the_queue(make_agent) -> None:
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    handle = make_agent()
    assert distributor.claim_next_task(handle.agent, "10.0.0.1").pk == task.pk
    assert distributor.reap_expired_leases()["expired"] == 0  # lease still valid
    later = timezone.now() + dt.timedelta(seconds=3600)
    assert distributor.reap_expired_leases(now=later)["expired"] == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and task.agent is None and task.retry_count == 1
    assert not semaphore.is_locked("10.0.0.1", "wildberries.ru")
    assert get_redis().zscore(queues.queue_key("wildberries"), str(task.pk)) is not None
    other = make_agent()
    assert distributor.claim_next_task(other.agent, "10.0.0.2").pk == task.pk


def test_an_id_lost_between_claim_and_update_is_recovered(make_agent) -> None:
    """A process that dies right after the Lua claim leaves the id in flight, not lost."""
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    deadline = timezone.now() + dt.timedelta(seconds=300)
    # The claim script alone, as a process would run it before dying.
    claim = script(distributor._CLAIM)
    keys = [
        "watcher:ip_sem:10.0.0.1:wildberries.ru",
        queues.queue_key("wildberries"),
        INFLIGHT_KEY,
        "watcher:ip_blocked:10.0.0.1",
    ]
    assert claim(keys=keys, args=["tok", 300, deadline.timestamp()]) == ["ok", str(task.pk)]
    assert queues.lengths()["wildberries"] == 0
    assert distributor.reap_expired_leases()["recovered"] == 0  # not yet due
    result = distributor.reap_expired_leases(now=deadline + dt.timedelta(seconds=1))
    assert result["recovered"] == 1
    assert queues.lengths()["wildberries"] == 1
    assert get_redis().zcard(INFLIGHT_KEY) == 0
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING


def test_cancelled_tasks_left_in_a_queue_are_skipped(make_agent) -> None:
    stale = TaskFactory(priority=9, status=TaskStatus.CANCELLED)
    fresh = TaskFactory(priority=1)
    queues.push([(str(t.pk), t.marketplace, t.priority) for t in (stale, fresh)])
    handle = make_agent()
    assert distributor.claim_next_task(handle.agent, "10.0.0.1").pk == fresh.pk
    assert get_redis().zcard(INFLIGHT_KEY) == 1


def test_heartbeat_renews_the_lease_of_a_working_agent(make_agent) -> None:
    from watcher.services.agents import Heartbeat, record_heartbeat

    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    handle = make_agent()
    distributor.claim_next_task(handle.agent, "10.0.0.1")
    Task.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() + dt.timedelta(seconds=5)
    )
    agent = Agent.objects.get(pk=handle.agent.pk)
    record_heartbeat(agent, Heartbeat("working", str(task.pk), {}, "10.0.0.1"))
    task.refresh_from_db()
    assert task.lease_expires_at > timezone.now() + dt.timedelta(seconds=200)
    assert Agent.objects.get(pk=agent.pk).current_task_id == task.pk


def test_heartbeat_renews_only_the_task_it_names(make_agent) -> None:
    """An agent that restarted after a crash no longer knows its task: its heartbeats must not
    keep that task's lease alive, or the task is never done again."""
    from watcher.services.agents import Heartbeat, record_heartbeat

    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    handle = make_agent()
    distributor.claim_next_task(handle.agent, "10.0.0.1")
    soon = timezone.now() + dt.timedelta(seconds=5)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=soon)
    agent = Agent.objects.get(pk=handle.agent.pk)
    record_heartbeat(agent, Heartbeat("ready", None, {}, "10.0.0.1"))
    task.refresh_from_db()
    assert task.lease_expires_at == soon
    reaped = distributor.reap_expired_leases(now=soon + dt.timedelta(seconds=1))
    assert reaped["expired"] == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and task.agent_id is None


def test_generated_task_ids_are_version_4_uuids() -> None:
    SubscriptionFactory.create_batch(5)
    generate_tasks()
    for task in Task.objects.all():
        assert task.pk.version == 4 and task.pk.variant == "specified in RFC 4122"
