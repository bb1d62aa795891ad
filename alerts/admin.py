"""Operators' screens for alerts, their rules, the notification channels and the deliveries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext, ngettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from alerts import engine, notifications
from alerts.models import (
    ACTIVE_STATUSES,
    Alert,
    AlertRule,
    Delivery,
    NotificationChannel,
)
from config.grammar import Grammar, GrammarAdmin
from watcher.admin_helpers import external_link, screenshot_image
from watcher.models import TaskReport, product_url

# How each model's name reads in the admin's phrases (see watcher.admin_helpers.Grammar).
ALERT_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "alert"),
    _("Delete selected alerts"),
    ngettext_lazy("%(count)d alert", "%(count)d alerts", "count"),
)
RULE_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "alert rule"),
    _("Delete selected alert rules"),
    ngettext_lazy("%(count)d alert rule", "%(count)d alert rules", "count"),
)
CHANNEL_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "notification channel"),
    _("Delete selected notification channels"),
    ngettext_lazy("%(count)d notification channel", "%(count)d notification channels", "count"),
)
DELIVERY_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "delivery"),
    _("Delete selected deliveries"),
    ngettext_lazy("%(count)d delivery", "%(count)d deliveries", "count"),
)


def _product_links(marketplace: str, sku: str | None) -> SafeString | str:
    """The product page on the marketplace and its price history here."""
    if not sku or not marketplace:
        return "—"
    history = reverse("admin:watcher_pricehistory_changelist") + "?" + urlencode({"q": sku})
    return format_html(
        '{} · <a href="{}">{}</a>',
        external_link(product_url(marketplace, sku), sku),
        history,
        gettext("history"),
    )


def roubles(value: Decimal | None) -> str:
    """A price as the list shows it: digits grouped, two decimals, the rouble sign."""
    if value is None:
        return "—"
    return f"{number_format(value, decimal_pos=2, force_grouping=True)} ₽"


class MuteForm(ActionForm):
    days = forms.IntegerField(
        label=_("days to mute"), min_value=1, max_value=365, initial=7, required=False
    )


@admin.register(Alert)
class AlertAdmin(GrammarAdmin):
    grammar = ALERT_GRAMMAR
    # Fits 1366 px: marketplace, brand, price level and rule are filters and on the alert's page.
    list_display = (
        "opened_at", "kind", "state", "our_sku", "competitor_sku", "ours", "theirs", "gap",
    )  # fmt: skip
    list_filter = (
        "status", "kind", "hold", "marketplace", "brand", "price_level", "rule", "suspicious",
    )  # fmt: skip
    list_select_related = ("rule", "subscription", "competitor__subscription")
    search_fields = ("subscription__sku", "competitor__competitor_sku", "brand")
    date_hierarchy = "opened_at"
    action_form = MuteForm
    actions = ("acknowledge", "resolve", "mute")
    readonly_fields = (
        "rule", "kind", "status", "marketplace", "brand", "our_sku", "competitor_sku",
        "price_level", "our_price", "their_price", "difference_rub", "difference_pct",
        "our_observation", "their_observation", "suspicious", "details", "opened_at",
        "updated_at", "resolved_at", "acknowledged_by", "acknowledged_at", "muted_until",
        "in_digest", "hold", "held_since", "released_at", "their_screenshot",
    )  # fmt: skip
    fields = readonly_fields
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("screenshot"))
    def their_screenshot(self, alert: Alert) -> SafeString | str:
        """A browser agent's evidence of the page that raised the alert, when it sent one."""
        observation = alert.their_observation
        report = (
            TaskReport.objects.filter(task_id=observation.task_id, attempt=observation.attempt)
            .exclude(screenshot=None)
            .first()
            if observation is not None and observation.task_id
            else None
        )
        return screenshot_image(report, 720) if report is not None else "—"

    @admin.display(description=_("our SKU"), ordering="subscription__sku")
    def our_sku(self, alert: Alert) -> SafeString | str:
        return _product_links(
            alert.marketplace, alert.subscription.sku if alert.subscription else None
        )

    @admin.display(description=_("competitor"), ordering="competitor__competitor_sku")
    def competitor_sku(self, alert: Alert) -> SafeString | str:
        return _product_links(
            alert.marketplace, alert.competitor.competitor_sku if alert.competitor else None
        )

    @admin.display(description=_("status"), ordering="status")
    def state(self, alert: Alert) -> str:
        """The status with what qualifies it: suspicious, held and why, muted."""
        notes = [str(alert.get_status_display())]
        if alert.suspicious:
            notes.append(gettext("suspicious"))
        if alert.hold:
            notes.append(gettext("held: %(reason)s") % {"reason": alert.get_hold_display()})
        if alert.is_muted():
            notes.append(gettext("muted"))
        return ", ".join(notes)

    @admin.display(description=_("our price"), ordering="our_price")
    def ours(self, alert: Alert) -> str:
        return roubles(alert.our_price)

    @admin.display(description=_("their price"), ordering="their_price")
    def theirs(self, alert: Alert) -> str:
        return roubles(alert.their_price)

    @admin.display(description=_("gap"), ordering="difference_pct")
    def gap(self, alert: Alert) -> str:
        if alert.difference_rub is None:
            return "—"
        if alert.difference_pct is None:
            return roubles(alert.difference_rub)
        pct = number_format(alert.difference_pct, decimal_pos=1)
        return f"{roubles(alert.difference_rub)} ({pct} %)"

    @admin.action(description=_("Acknowledge selected alerts"), permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        count = sum(engine.acknowledge(alert, request.user) for alert in queryset)
        self.message_user(
            request, ngettext("%d alert acknowledged.", "%d alerts acknowledged.", count) % count
        )

    @admin.action(description=_("Resolve selected alerts"), permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        now = timezone.now()
        count = sum(
            engine.resolve(alert, now) for alert in queryset.filter(status__in=ACTIVE_STATUSES)
        )
        self.message_user(
            request, ngettext("%d alert resolved.", "%d alerts resolved.", count) % count
        )

    @admin.action(description=_("Mute selected alerts for N days"), permissions=["change"])
    def mute(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        try:
            days = MuteForm.base_fields["days"].clean(request.POST.get("days"))
        except ValidationError:
            days = None
        if not days:
            self.message_user(request, gettext("Say for how many days."), messages.ERROR)
            return
        count = engine.mute(queryset, days)
        self.message_user(
            request,
            ngettext(
                "%(count)d alert muted for %(days)d days.",
                "%(count)d alerts muted for %(days)d days.",
                count,
            )
            % {"count": count, "days": days},
        )


class AlertRuleForm(ModelForm):
    class Meta:
        model = AlertRule
        fields = (
            "kind", "name", "is_active", "threshold_pct", "threshold_rub", "rating_threshold",
            "nights", "deadline", "price_level", "consecutive", "cooldown_hours", "marketplace",
            "brand", "subscription", "recipient_users", "recipient_groups", "channels",
            "quiet_from", "quiet_to",
        )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == "rating_below" and data.get("rating_threshold") is None:
            self.add_error("rating_threshold", gettext("A rating rule needs a rating threshold."))
        if (data.get("quiet_from") is None) != (data.get("quiet_to") is None):
            self.add_error("quiet_to", gettext("Quiet hours need both a start and an end."))
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(GrammarAdmin):
    grammar = RULE_GRAMMAR
    form = AlertRuleForm
    list_display = (
        "name", "kind", "threshold_pct", "threshold_rub", "price_level", "consecutive",
        "marketplace", "brand", "subscription", "cooldown_hours", "is_active",
    )  # fmt: skip
    list_filter = ("kind", "is_active", "price_level", "marketplace")
    list_editable = ("is_active",)
    list_select_related = ("subscription",)
    search_fields = ("name", "brand")
    autocomplete_fields = ("subscription",)
    filter_horizontal = ("recipient_users", "recipient_groups", "channels")
    fieldsets = (
        (None, {"fields": ("kind", "name", "is_active")}),
        (
            _("Condition"),
            {
                "fields": (
                    "threshold_pct",
                    "threshold_rub",
                    "rating_threshold",
                    "nights",
                    "deadline",
                    "price_level",
                    "consecutive",
                    "cooldown_hours",
                )
            },
        ),
        (_("Applies to"), {"fields": ("marketplace", "brand", "subscription")}),
        (
            _("Who is told"),
            {
                "fields": (
                    "recipient_users",
                    "recipient_groups",
                    "channels",
                    "quiet_from",
                    "quiet_to",
                )
            },
        ),
    )


class ChannelForm(ModelForm):
    class Meta:
        model = NotificationChannel
        fields = ("name", "kind", "target", "secret", "agent_events", "is_active")
        # The stored secret is never sent back to the browser; an empty field keeps it.
        widgets = {"secret": forms.PasswordInput(render_value=False)}

    def clean_secret(self) -> str:
        value = self.cleaned_data.get("secret") or ""
        if not value and self.instance.pk:
            return self.instance.secret
        return value


@admin.register(NotificationChannel)
class NotificationChannelAdmin(GrammarAdmin):
    grammar = CHANNEL_GRAMMAR
    form = ChannelForm
    list_display = ("name", "kind", "target", "has_secret", "agent_events", "is_active")
    list_filter = ("kind", "is_active", "agent_events")
    search_fields = ("name", "target")
    actions = ("send_test",)

    @admin.display(description=_("secret set"), boolean=True)
    def has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    @admin.action(description=_("Send a test message"), permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> None:
        emails = [request.user.email] if getattr(request.user, "email", "") else []
        count = sum(notifications.send_test(channel, emails) for channel in queryset)
        self.message_user(
            request,
            ngettext(
                "%d test message queued; see Deliveries for the outcome.",
                "%d test messages queued; see Deliveries for the outcome.",
                count,
            )
            % count,
        )


class EventFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(event, gettext(label)) for event, label in notifications.EVENT_LABELS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(GrammarAdmin):
    grammar = DELIVERY_GRAMMAR
    # Fits 1366 px: the kind is the channel's; attempts, the time sent and the whole error are on
    # the delivery's page.
    list_display = (
        "created_at", "event_label", "channel", "recipient_start", "status", "error_start",
    )  # fmt: skip
    list_filter = ("status", "kind", EventFilter, "channel")
    list_select_related = ("channel",)
    search_fields = ("recipient", "subject")
    date_hierarchy = "created_at"
    fields = (
        "created_at", "event", "kind", "channel", "recipient", "subject", "body", "payload",
        "alert", "status", "attempts", "sent_at", "last_error",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("event"), ordering="event")
    def event_label(self, delivery: Delivery) -> SafeString | str:
        """The event by name, with a link to its alert when it has one."""
        label = gettext(notifications.EVENT_LABELS.get(delivery.event, delivery.event))
        if delivery.alert_id is None:
            return label
        url = reverse("admin:alerts_alert_change", args=[delivery.alert_id])
        return format_html('{} <a href="{}">#{}</a>', label, url, delivery.alert_id)

    @admin.display(description=_("recipient"), ordering="recipient")
    def recipient_start(self, delivery: Delivery) -> SafeString | str:
        """Webhook URLs run long: the start, the whole on hover and on the delivery's page."""
        if not delivery.recipient:
            return "—"
        return format_html(
            '<span title="{}">{}</span>',
            delivery.recipient,
            Truncator(delivery.recipient).chars(30),
        )

    @admin.display(description=_("last error"))
    def error_start(self, delivery: Delivery) -> str:
        return Truncator(delivery.last_error).chars(40) or "—"
