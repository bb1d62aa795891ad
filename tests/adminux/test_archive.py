"""Rows with price history are archived, never deleted by accident; history always stays."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import ProtectedError
from django.test import Client

from tests.factories import CompetitorFactory, PriceHistoryFactory, SubscriptionFactory, TaskFactory
from watcher.models import Competitor, PriceHistory, Subscription, Task
from watcher.services import operations

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_the_database_refuses_to_delete_history_with_its_subscription() -> None:
    observation = PriceHistoryFactory()
    with pytest.raises(ProtectedError):
        observation.subscription.delete()
    assert PriceHistory.objects.filter(pk=observation.pk).exists()


def test_it_archives_and_brings_back() -> None:
    subscription = SubscriptionFactory()
    assert operations.archive_subscriptions([subscription.pk]) == 1
    assert operations.archive_subscriptions([subscription.pk]) == 0  # already archived
    subscription.refresh_from_db()
    assert subscription.archived_at is not None
    assert subscription.is_active is False
    assert operations.unarchive_subscriptions([subscription.pk]) == 1
    subscription.refresh_from_db()
    assert (subscription.archived_at, subscription.is_active) == (None, True)


def test_the_delete_page_of_a_subscription_with_history_offers_the_archive(
    operator: Client,
) -> None:
    observation = PriceHistoryFactory()
    PriceHistoryFactory(subscription=observation.subscription, task=None)
    subscription = observation.subscription
    url = f"/admin/watcher/subscription/{subscription.pk}/delete/"

    page = text(operator.get(url))
    assert "есть история цен (2 замера цены)" in page
    assert "поэтому удалить нельзя" in page
    assert f'action="/admin/watcher/subscription/{subscription.pk}/archive/"' in page

    operator.post(url, {"post": "yes"})  # a determined click changes nothing
    assert PriceHistory.objects.filter(subscription=subscription).count() == 2

    response = operator.post(f"/admin/watcher/subscription/{subscription.pk}/archive/", follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages[0].startswith("Отправлено в архив: «"), messages
    subscription.refresh_from_db()
    assert subscription.archived_at is not None and not subscription.is_active
    assert PriceHistory.objects.filter(subscription=subscription).count() == 2

    listed = text(operator.get("/admin/watcher/subscription/"))
    assert subscription.sku not in listed  # hidden by default ...
    assert subscription.sku in text(operator.get("/admin/watcher/subscription/?archived=yes"))

    operator.post(
        "/admin/watcher/subscription/?archived=yes",
        {"action": "unarchive", ACTION_CHECKBOX_NAME: [subscription.pk]},
    )
    subscription.refresh_from_db()
    assert subscription.archived_at is None and subscription.is_active  # ... and back


def test_a_subscription_without_history_can_still_be_deleted(operator: Client) -> None:
    task = TaskFactory()
    url = f"/admin/watcher/subscription/{task.subscription.pk}/delete/"
    page = text(operator.get(url))
    assert "Архивируйте" in page and "Или удалить насовсем" in page
    assert operator.post(url, {"post": "yes"}).status_code == 302
    assert not Subscription.objects.exists()
    assert not Task.objects.exists()


def test_bulk_delete_of_rows_with_history_deletes_nothing_and_says_why(operator: Client) -> None:
    competitor = CompetitorFactory()
    PriceHistoryFactory(subscription=competitor.subscription, competitor=competitor)
    response = operator.post(
        "/admin/watcher/competitor/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [competitor.pk], "post": "yes"},
    )
    page = text(response)
    assert "ничего не удалено" in page
    assert "Архивировать выбранных конкурентов" in page
    assert Competitor.objects.filter(pk=competitor.pk).exists()


def test_an_archived_competitor_is_not_watched(operator: Client) -> None:
    from watcher.services import generator

    competitor = CompetitorFactory()
    operator.post(f"/admin/watcher/competitor/{competitor.pk}/archive/")
    generator.generate_tasks()
    assert not Task.objects.filter(competitor=competitor).exists()
    assert Task.objects.filter(subscription=competitor.subscription).exists()
