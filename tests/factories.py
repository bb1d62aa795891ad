"""factory-boy factories for every model of the project's apps (tests/test_factories.py checks).

Defaults describe an ordinary row: an active subscription on Wildberries, a pending task of
tonight, an OpenAI-compatible upstream with a prompt. Rows that are unique per marketplace or a
singleton (backend routes, emulation settings) are fetched when they already exist.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from alerts.engine import pair_key
from alerts.models import (
    Alert,
    AlertKind,
    AlertRule,
    ChannelKind,
    Delivery,
    NotificationChannel,
    PendingCheck,
    PriceLevel,
    RuleStreak,
)
from office.models import ModuleKey, OfficeAgentStatus
from parser.models import (
    AttemptStatus,
    Backend,
    BackendRoute,
    JobStatus,
    LLMUpstream,
    ParseAttempt,
    ParseJob,
    Prompt,
    UpstreamKind,
)
from parser.types import Marketplace
from watcher.models import (
    Agent,
    AgentCommand,
    CommandAction,
    Competitor,
    EmulationConfig,
    PanicBlock,
    PriceHistory,
    Subscription,
    Task,
    TaskOutcome,
    TaskReport,
    TaskStatus,
    product_url,
)

# --- watcher ----------------------------------------------------------------------------------


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
    """An agent whose key nobody knows; use ``services.agents.create_agent`` to get one."""

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


class TaskReportFactory(factory.django.DjangoModelFactory):
    """A successful report of a page; ``attempt`` counts up so reports of one task stay unique."""

    class Meta:
        model = TaskReport

    task = factory.SubFactory(TaskFactory)
    agent = factory.SubFactory(AgentFactory)
    attempt = factory.Sequence(lambda n: n + 1)
    success = True
    raw_text = "Nordic Home lamp 1 299 ₽ in stock"
    timing_ms = 1200
    ip = "10.0.0.7"
    outcome = TaskOutcome.OK


class PriceHistoryFactory(factory.django.DjangoModelFactory):
    """An observation read by an agent, with the completed task it came from."""

    class Meta:
        model = PriceHistory

    subscription = factory.SubFactory(SubscriptionFactory)
    competitor = None
    agent = factory.SubFactory(AgentFactory)
    task = factory.SubFactory(
        TaskFactory,
        subscription=factory.SelfAttribute("..subscription"),
        competitor=factory.SelfAttribute("..competitor"),
        agent=factory.SelfAttribute("..agent"),
        status=TaskStatus.COMPLETED,
        outcome=TaskOutcome.OK,
    )
    sku = factory.LazyAttribute(
        lambda o: o.competitor.competitor_sku if o.competitor else o.subscription.sku
    )
    marketplace = factory.LazyAttribute(lambda o: o.subscription.marketplace)
    brand = factory.LazyAttribute(lambda o: o.subscription.brand)
    current_price = 1000
    in_stock = True


class EmulationConfigFactory(factory.django.DjangoModelFactory):
    """The singleton: an existing row is returned as it is (the other values are not applied)."""

    class Meta:
        model = EmulationConfig
        django_get_or_create = ("id",)

    id = EmulationConfig.SINGLETON_ID


class AgentCommandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentCommand

    agent = factory.SubFactory(AgentFactory)
    action = CommandAction.PAUSE


# --- parser -----------------------------------------------------------------------------------


class LLMUpstreamFactory(factory.django.DjangoModelFactory):
    """An OpenAI-compatible upstream on a closed local port: nothing answers unless a test does."""

    class Meta:
        model = LLMUpstream

    name = factory.Sequence(lambda n: f"upstream-{n}")
    kind = UpstreamKind.OPENAI
    base_url = "http://127.0.0.1:9/v1"
    model = "test-model"


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    name = factory.Sequence(lambda n: f"prompt-{n}")
    text = "Read the product card and fill in the fields."


class BackendRouteFactory(factory.django.DjangoModelFactory):
    """One route per marketplace: an existing route is returned as it is."""

    class Meta:
        model = BackendRoute
        django_get_or_create = ("marketplace",)

    marketplace = Marketplace.WILDBERRIES
    backend = Backend.RULES


class ParseJobFactory(factory.django.DjangoModelFactory):
    """An LLM parse whose answer was used."""

    class Meta:
        model = ParseJob

    marketplace = Marketplace.WILDBERRIES
    sku = factory.Sequence(lambda n: str(100000 + n))
    backend = Backend.OPENAI
    prompt = factory.SubFactory(PromptFactory)
    prompt_version = factory.LazyAttribute(lambda o: o.prompt.version if o.prompt else None)
    upstream = factory.SubFactory(LLMUpstreamFactory)
    status = JobStatus.OK
    finished_at = factory.LazyFunction(timezone.now)
    duration_ms = 850


class ParseAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParseAttempt

    job = factory.SubFactory(ParseJobFactory)
    upstream = factory.LazyAttribute(lambda o: o.job.upstream)
    prompt = factory.LazyAttribute(lambda o: o.job.prompt)
    attempt_no = 1
    status = AttemptStatus.OK
    http_status = 200
    duration_ms = 850


# --- alerts ------------------------------------------------------------------------------------


class NotificationChannelFactory(factory.django.DjangoModelFactory):
    """A signed webhook channel."""

    class Meta:
        model = NotificationChannel

    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = ChannelKind.WEBHOOK
    target = "https://hooks.example.com/watcher"
    secret = "s3cret"


class AlertRuleFactory(factory.django.DjangoModelFactory):
    """A dumping rule at 5 % on every SKU."""

    class Meta:
        model = AlertRule

    kind = AlertKind.DUMPING
    name = factory.Sequence(lambda n: f"rule-{n}")
    threshold_pct = Decimal(5)


class AlertFactory(factory.django.DjangoModelFactory):
    """An open dumping alert for a competitor of one of our SKUs."""

    class Meta:
        model = Alert

    rule = factory.SubFactory(AlertRuleFactory)
    kind = AlertKind.DUMPING
    competitor = factory.SubFactory(CompetitorFactory)
    subscription = factory.SelfAttribute("competitor.subscription")
    marketplace = factory.SelfAttribute("subscription.marketplace")
    brand = factory.SelfAttribute("subscription.brand")
    pair_key = factory.LazyAttribute(lambda o: pair_key(o.subscription.pk, o.competitor.pk))
    price_level = PriceLevel.REGULAR
    our_price = Decimal("1000.00")
    their_price = Decimal("800.00")
    difference_rub = Decimal("200.00")
    difference_pct = Decimal("20.00")


class PendingCheckFactory(factory.django.DjangoModelFactory):
    """A stored observation waiting for the alert engine."""

    class Meta:
        model = PendingCheck

    observation = factory.SubFactory(PriceHistoryFactory, task=None)


class RuleStreakFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RuleStreak

    rule = factory.SubFactory(AlertRuleFactory, consecutive=2)
    pair_key = factory.Sequence(lambda n: f"{n}:")
    hits = 1
    last_observation_id = factory.LazyFunction(lambda: PriceHistoryFactory(task=None).pk)


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A webhook message waiting to be sent."""

    class Meta:
        model = Delivery

    channel = factory.SubFactory(NotificationChannelFactory)
    kind = ChannelKind.WEBHOOK
    event = "alert_opened"
    recipient = "https://hooks.example.com/watcher"
    subject = "Демпинг"
    body = "Конкурент дешевле на 20 %"


# --- office -----------------------------------------------------------------------------------


class OfficeAgentStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OfficeAgentStatus

    agent_id = factory.Sequence(lambda n: f"module_agent_{n}")
    department = "reputation"
    name = factory.Sequence(lambda n: f"Агент {n}")
    status = "ok"
    last_activity = factory.LazyFunction(timezone.now)


class ModuleKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModuleKey

    department = "reputation"
    key_prefix = factory.Sequence(lambda n: f"p{n:09d}")
    key_digest = "0" * 64


# --- hardening --------------------------------------------------------------------------------


class PanicBlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PanicBlock

    ip = factory.Sequence(lambda n: f"10.9.{n // 250}.{n % 250 + 1}")
    agent = factory.SubFactory(AgentFactory)
    reason = "captcha"
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))
