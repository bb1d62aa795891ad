"""factory-boy factories for every model."""

from __future__ import annotations

import factory
from django.utils import timezone

from parser.types import Marketplace
from watcher.models import (
    Agent,
    Competitor,
    PriceHistory,
    Subscription,
    Task,
    TaskStatus,
    product_url,
)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    brand = "Nordic Home"
    marketplace = Marketplace.WILDBERRIES
    sku = factory.Sequence(lambda n: str(100000 + n))
    title = factory.Sequence(lambda n: f"Product {n}")
    priority = 0


class CompetitorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Competitor

    subscription = factory.SubFactory(SubscriptionFactory)
    competitor_sku = factory.Sequence(lambda n: str(900000 + n))
    name = factory.Sequence(lambda n: f"Rival {n}")
    priority = 0


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"factory-agent-{n}")
    api_key_prefix = factory.Sequence(lambda n: f"p{n:09d}")
    api_key_digest = "0" * 64


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    subscription = factory.SubFactory(SubscriptionFactory)
    competitor = None
    marketplace = factory.LazyAttribute(lambda o: o.subscription.marketplace)
    sku = factory.LazyAttribute(
        lambda o: o.competitor.competitor_sku if o.competitor else o.subscription.sku
    )
    brand = factory.LazyAttribute(lambda o: o.subscription.brand)
    url = factory.LazyAttribute(lambda o: product_url(o.marketplace, o.sku))
    priority = 0
    status = TaskStatus.PENDING
    scheduled_date = factory.LazyFunction(timezone.localdate)


class PriceHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceHistory

    subscription = factory.SubFactory(SubscriptionFactory)
    sku = factory.LazyAttribute(lambda o: o.subscription.sku)
    marketplace = factory.LazyAttribute(lambda o: o.subscription.marketplace)
    brand = factory.LazyAttribute(lambda o: o.subscription.brand)
    current_price = 1000
    in_stock = True
