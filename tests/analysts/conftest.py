"""A small price history: two brands, our SKUs with competitors, three nights of observations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.roles import ANALYST
from parser.types import Marketplace
from tests.factories import CompetitorFactory, PriceHistoryFactory, SubscriptionFactory
from watcher.models import Competitor, PriceHistory, Subscription

PASSWORD = "pw-Analyst-Secret-1"
NIGHTS = (dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30))


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def observe(
    subscription: Subscription,
    competitor: Competitor | None,
    night: dt.date,
    price: str | None,
    *,
    hour: int = 22,
    after_midnight: bool = False,
    **fields: object,
) -> PriceHistory:
    day = night + dt.timedelta(days=1) if after_midnight else night
    return PriceHistoryFactory(
        subscription=subscription,
        competitor=competitor,
        task__scheduled_date=night,
        current_price=Decimal(price) if price is not None else None,
        parsed_at=local(day, hour),
        **fields,
    )


@dataclass
class Catalogue:
    lamp: Subscription
    rival_a: Competitor
    rival_b: Competitor
    chair: Subscription
    rival_c: Competitor


@pytest.fixture
def catalogue(db: None) -> Catalogue:
    lamp = SubscriptionFactory(brand="Nordic Home", sku="100500", title="Лампа")
    rival_a = CompetitorFactory(subscription=lamp, competitor_sku="900001", name="Rival A")
    rival_b = CompetitorFactory(subscription=lamp, competitor_sku="900002", name="=Rival; B")
    chair = SubscriptionFactory(brand="Sit Well", sku="200700", marketplace=Marketplace.OZON)
    rival_c = CompetitorFactory(subscription=chair, competitor_sku="800001", name="Rival C")
    for i, night in enumerate(NIGHTS):
        observe(
            lamp, None, night, "1000.00", hour=21, spp_price=Decimal("950.50"), stock_quantity=7
        )
        observe(lamp, rival_a, night, str(900 + 10 * i), old_price=Decimal("1200"), rating=4.8)
        observe(lamp, rival_b, night, "1100.00", in_stock=i != 1, spp_price=Decimal("1050"))
        observe(chair, None, night, "5000.00", hour=23)
        # After midnight: the night's task, but the next calendar day.
        observe(chair, rival_c, night, "4500.00", hour=1, after_midnight=True)
    return Catalogue(lamp, rival_a, rival_b, chair, rival_c)


def make_user(username: str, *groups: str, is_staff: bool = True) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def analyst(db: None) -> User:
    return make_user("anna", ANALYST)


@pytest.fixture
def analyst_api(analyst: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(analyst)
    return client


@pytest.fixture
def analyst_client(analyst: User) -> Client:
    client = Client()
    client.force_login(analyst)
    return client
