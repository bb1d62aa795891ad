"""The alert engine: the rules checked against one stored observation.

A check loads the observation, the rules that apply to it, the latest valid prices of every SKU
it is compared with, and the alerts already standing for those pairs, in a fixed number of
queries whatever the number of competitors; then it opens, updates or resolves alerts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from alerts.models import (
    ACTIVE_STATUSES,
    Alert,
    AlertKind,
    AlertRule,
    AlertStatus,
    PriceLevel,
    RuleStreak,
)
from watcher.models import PriceHistory

# Rules checked after each observation; the silence rules run on a schedule instead.
OBSERVATION_KINDS = (
    AlertKind.DUMPING,
    AlertKind.PRICE_DROP,
    AlertKind.PRICE_RISE,
    AlertKind.OUT_OF_STOCK,
    AlertKind.BACK_IN_STOCK,
    AlertKind.RATING_BELOW,
)
# A price below this share of the SKU's last valid price is implausible until confirmed.
JUMP_RATIO = Decimal("0.15")
# A discount badge in this range (old price against the price) is implausible until confirmed.
BADGE_DISCOUNT = (Decimal("0.80"), Decimal("0.99"))
# The next observation confirms a suspicious price when it is within this share of it.
CONFIRM_TOLERANCE = Decimal("0.10")
HUNDRED = Decimal(100)
CENT = Decimal("0.01")

# What a check may change on a standing alert.
FIGURE_FIELDS = (
    "price_level",
    "our_price",
    "their_price",
    "difference_rub",
    "difference_pct",
    "our_observation",
    "their_observation",
    "suspicious",
    "details",
)
READING_FIELDS = (
    "id",
    "competitor_id",
    "current_price",
    "spp_price",
    "old_price",
    "in_stock",
    "rating",
    "parsed_at",
)


@dataclass(frozen=True)
class Reading:
    """An observation as the engine sees it."""

    id: int
    competitor_id: int | None
    current_price: Decimal | None
    spp_price: Decimal | None
    old_price: Decimal | None
    in_stock: bool | None
    rating: Decimal | None
    parsed_at: dt.datetime

    @property
    def out_of_stock(self) -> bool:
        return self.in_stock is False or self.current_price is None

    def price(self, level: str) -> Decimal | None:
        """The price at a level. Without a wallet/card price the card shows one price for all."""
        regular = self.current_price
        if regular is None or regular <= 0:
            return None
        wallet = self.spp_price if self.spp_price is not None and self.spp_price > 0 else regular
        if level == PriceLevel.WALLET:
            return wallet
        if level == PriceLevel.LOWEST:
            return min(regular, wallet)
        return regular


def suspicion(latest: Reading, previous: Reading | None, level: str) -> tuple[bool, bool]:
    """``(trusted, suspicious)`` of the latest valid reading of a SKU.

    Suspicious: a price below 15 % of the previous valid price, or an 80-99 % discount badge.
    A suspicious price is trusted only once the next observation confirms it (is within 10 %).
    """
    price = latest.price(level)
    before = previous.price(level) if previous is not None else None
    if price is None:
        return False, False
    jump = before is not None and price < before * JUMP_RATIO
    badge = False
    if latest.old_price and latest.current_price and latest.old_price > 0:
        discount = 1 - latest.current_price / latest.old_price
        badge = BADGE_DISCOUNT[0] <= discount <= BADGE_DISCOUNT[1]
    if not (jump or badge):
        return True, False
    confirmed = (
        not jump and before is not None and abs(price - before) <= before * CONFIRM_TOLERANCE
    )
    return confirmed, True


@dataclass
class Finding:
    """What one rule says about one pair: ``holds`` None when it cannot say (no reference)."""

    holds: bool | None
    trusted: bool = True
    figures: dict[str, Any] = field(default_factory=dict)
    # The oldest reading the finding rests on, where an old one may be our doing (dumping).
    evidence_at: dt.datetime | None = None


def pair_key(subscription_id: int, competitor_id: int | None) -> str:
    return f"{subscription_id}:{competitor_id or ''}"


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return part / whole * HUNDRED


def _over(rule: AlertRule, rub: Decimal, pct: Decimal) -> bool:
    """Whether a gap passes the rule's thresholds (either one; none set: any gap)."""
    if rule.threshold_pct is None and rule.threshold_rub is None:
        return rub > 0
    return (rule.threshold_pct is not None and pct > rule.threshold_pct) or (
        rule.threshold_rub is not None and rub > rule.threshold_rub
    )


@dataclass(frozen=True)
class Gap:
    """Our price against a competitor's at one price level: what every dumping rule at that
    level compares, each with its own thresholds."""

    rub: Decimal
    pct: Decimal
    trusted: bool
    figures: dict[str, Any]
    evidence_at: dt.datetime


def gap(level: str, ours: list[Reading], theirs: list[Reading]) -> Gap | None:
    """The gap between the latest valid readings (None without a price on either side)."""
    if not ours or not theirs:
        return None
    our, their = ours[0], theirs[0]
    our_price, their_price = our.price(level), their.price(level)
    if our_price is None or their_price is None:
        return None
    our_trusted, our_suspicious = suspicion(our, ours[1] if len(ours) > 1 else None, level)
    their_trusted, their_suspicious = suspicion(
        their, theirs[1] if len(theirs) > 1 else None, level
    )
    rub = our_price - their_price
    pct = _pct(rub, our_price)
    return Gap(
        rub=rub,
        pct=pct,
        trusted=our_trusted and their_trusted,
        figures={
            "price_level": level,
            "our_price": our_price,
            "their_price": their_price,
            "difference_rub": rub,
            "difference_pct": pct.quantize(CENT),
            "our_observation_id": our.id,
            "their_observation_id": their.id,
            "suspicious": our_suspicious or their_suspicious,
        },
        evidence_at=min(our.parsed_at, their.parsed_at),
    )


def _dumping(rule: AlertRule, gap: Gap | None) -> Finding:
    if gap is None:
        return Finding(None)
    return Finding(
        _over(rule, gap.rub, gap.pct),
        trusted=gap.trusted,
        figures=gap.figures,  # shared by the rules of this level; never changed in place
        evidence_at=gap.evidence_at,
    )


def _side_figures(reading: Reading, price: Decimal | None) -> dict[str, Any]:
    if reading.competitor_id is None:
        return {"our_price": price, "our_observation_id": reading.id}
    return {"their_price": price, "their_observation_id": reading.id}


def _change(rule: AlertRule, readings: list[Reading], observation: Reading) -> Finding:
    """Price drop or rise since the previous valid observation of the same SKU."""
    level = rule.price_level
    if len(readings) < 2 or readings[0].id != observation.id:
        return Finding(None)
    now, before = readings[0].price(level), readings[1].price(level)
    if now is None or before is None:
        return Finding(None)
    rub = before - now if rule.kind == AlertKind.PRICE_DROP else now - before
    pct = _pct(rub, before)
    trusted, suspicious = (True, False)
    if rule.kind == AlertKind.PRICE_DROP:
        trusted, suspicious = suspicion(readings[0], readings[1], level)
    return Finding(
        _over(rule, rub, pct),
        trusted=trusted,
        figures={
            "price_level": level,
            **_side_figures(observation, now),
            "difference_rub": rub,
            "difference_pct": pct.quantize(CENT),
            "suspicious": suspicious,
            "details": f"{before} → {now}",
        },
    )


def _stock_or_rating(rule: AlertRule, observation: Reading, previous: Reading | None) -> Finding:
    figures = _side_figures(observation, observation.price(PriceLevel.REGULAR))
    if rule.kind == AlertKind.OUT_OF_STOCK:
        return Finding(observation.out_of_stock, figures=figures)
    if rule.kind == AlertKind.BACK_IN_STOCK:
        if previous is None:
            return Finding(None)
        return Finding(previous.out_of_stock and not observation.out_of_stock, figures=figures)
    # rating below
    if observation.rating is None or rule.rating_threshold is None:
        return Finding(None)
    figures["details"] = f"{observation.rating} < {rule.rating_threshold}"
    return Finding(observation.rating < rule.rating_threshold, figures=figures)


def active_rules() -> list[AlertRule]:
    """The active rules checked after observations (one query; a batch loads them once)."""
    return list(AlertRule.objects.filter(is_active=True, kind__in=OBSERVATION_KINDS))


def applies(rule: AlertRule, observation: Observation) -> bool:
    """Whether a rule's narrowing (marketplace, brand, our SKU) takes in an observation."""
    return (
        (not rule.marketplace or rule.marketplace == observation.marketplace)
        and (not rule.brand or rule.brand == observation.brand)
        and (rule.subscription_id is None or rule.subscription_id == observation.subscription_id)
    )


@dataclass(frozen=True)
class Observation:
    """A stored observation being checked: its reading and where it belongs."""

    reading: Reading
    subscription_id: int
    marketplace: str
    brand: str

    @property
    def ours(self) -> bool:
        return self.reading.competitor_id is None

    @property
    def partition(self) -> tuple[int, int | None]:
        return self.subscription_id, self.reading.competitor_id


# A SKU's readings: (our subscription, competitor or None for our own SKU).
Partition = tuple[int, int | None]


def _position(reading: Reading) -> tuple[dt.datetime, int]:
    return reading.parsed_at, reading.id


class History:
    """The recent readings of every SKU a batch touches, fetched in one query per kind.

    For each SKU it keeps the newest ``depth`` readings up to the batch's newest observation,
    where ``depth`` leaves room for the batch's own observations of that SKU; what an
    observation sees is what was stored up to it, as if it had been checked alone. A SKU whose
    cut-off list might hide what an observation needs (other readings stored in between) is
    read again exactly for that observation.
    """

    def __init__(
        self,
        observations: list[Observation],
        cutoff: dt.datetime,
        *,
        valid_only: bool,
        linked: bool,
        need: int = 2,
    ) -> None:
        self.cutoff, self.valid_only, self.need = cutoff, valid_only, need
        per_partition: dict[Partition, int] = defaultdict(int)
        for observation in observations:
            per_partition[observation.partition] += 1
        self.depth = need + max(per_partition.values())
        self.rows: dict[Partition, list[Reading]] = defaultdict(list)
        self.competitors: dict[int, list[int]] = defaultdict(list)
        until = max(o.reading.parsed_at for o in observations)
        rows = self._rows(until).filter(_scope(observations, linked))
        rows = rows.annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("subscription_id"), F("competitor_id")],
                order_by=[F("parsed_at").desc(), F("id").desc()],
            )
        ).filter(rank__lte=self.depth)
        for values in rows.values(
            "subscription_id", "competitor__is_active", *READING_FIELDS
        ).order_by("subscription_id", "competitor_id", "rank"):
            subscription_id = values.pop("subscription_id")
            active = values.pop("competitor__is_active")
            partition = (subscription_id, values["competitor_id"])
            if not self.rows[partition] and active:  # our SKU is compared with active ones
                self.competitors[subscription_id].append(values["competitor_id"])
            self.rows[partition].append(Reading(**values))

    def _rows(self, until: dt.datetime) -> models.QuerySet[PriceHistory]:
        rows = PriceHistory.objects.filter(parsed_at__gte=self.cutoff, parsed_at__lte=until)
        return rows.filter(current_price__gt=0) if self.valid_only else rows

    def before(self, observation: Observation, partition: Partition) -> list[Reading]:
        """The newest ``need`` readings of a SKU stored up to an observation, newest first."""
        rows = self.rows.get(partition, [])
        at = _position(observation.reading)
        seen = [r for r in rows if _position(r) <= at]
        if len(seen) < self.need and len(rows) == self.depth:
            subscription_id, competitor_id = partition
            exact = self._rows(observation.reading.parsed_at).filter(
                subscription_id=subscription_id, competitor_id=competitor_id
            )
            seen = [
                r
                for r in (
                    Reading(**values)
                    for values in exact.order_by("-parsed_at", "-id").values(*READING_FIELDS)[
                        : self.need + self.depth
                    ]
                )
                if _position(r) <= at
            ]
        return seen[: self.need]

    def latest(self, observation: Observation) -> dict[int | None, list[Reading]]:
        """The two latest valid readings of our SKU and of the competitors compared with the
        observation, as stored up to it."""
        subscription_id = observation.subscription_id
        if observation.ours:
            competitors = [None, *self.competitors.get(subscription_id, [])]
        else:
            competitors = [None, observation.reading.competitor_id]
        found = {c: self.before(observation, (subscription_id, c)) for c in competitors}
        return {c: readings for c, readings in found.items() if readings}


def _scope(observations: list[Observation], linked: bool) -> Q:
    """The SKUs observed; ``linked``: with what they are compared to (our SKU observed: all its
    active competitors; a competitor observed: our SKU). Narrowed by our SKUs first, so that
    the query walks their index."""
    ours = {o.subscription_id for o in observations if o.ours}
    theirs = {o.reading.competitor_id for o in observations if not o.ours}
    rows = Q(subscription_id__in=ours, competitor__isnull=True) | Q(competitor_id__in=theirs)
    if linked:
        others = {o.subscription_id for o in observations if not o.ours}
        rows |= Q(subscription_id__in=ours, competitor__is_active=True)
        rows |= Q(subscription_id__in=others, competitor__isnull=True)
    return Q(subscription_id__in={o.subscription_id for o in observations}) & rows


def _load(ids: list[int]) -> list[Observation]:
    rows = (
        PriceHistory.objects.filter(pk__in=ids)
        .order_by("parsed_at", "id")
        .values("subscription_id", "marketplace", "brand", *READING_FIELDS)
    )
    return [
        Observation(
            subscription_id=values.pop("subscription_id"),
            marketplace=values.pop("marketplace"),
            brand=values.pop("brand"),
            reading=Reading(**values),
        )
        for values in rows
        if values["subscription_id"] is not None
    ]


def _findings(
    observation: Observation, rules: list[AlertRule], latest: History, previous: History | None
) -> list[tuple[AlertRule, str, int | None, Finding]]:
    """What each rule says about the pairs one observation touches."""
    reading = observation.reading
    references = latest.latest(observation)
    previous_any = None
    if previous is not None:
        before = [
            r for r in previous.before(observation, observation.partition) if r.id != reading.id
        ]
        previous_any = before[0] if before else None
    own_key = pair_key(observation.subscription_id, reading.competitor_id)
    gaps: dict[tuple[int | None, str], Gap | None] = {}
    findings: list[tuple[AlertRule, str, int | None, Finding]] = []
    for rule in rules:
        if rule.kind == AlertKind.DUMPING:
            if not reading.price(rule.price_level):
                continue  # no price here: the pairs keep their state until one arrives
            if observation.ours:
                competitors = [c for c in references if c is not None]
            else:
                competitors = [reading.competitor_id]
            for competitor_id in competitors:
                # One comparison per pair and price level, whatever the number of rules.
                slot = (competitor_id, rule.price_level)
                if slot not in gaps:
                    gaps[slot] = gap(
                        rule.price_level,
                        references.get(None, []),
                        references.get(competitor_id, []),
                    )
                finding = _dumping(rule, gaps[slot])
                key = pair_key(observation.subscription_id, competitor_id)
                findings.append((rule, key, competitor_id, finding))
        elif rule.kind in (AlertKind.PRICE_DROP, AlertKind.PRICE_RISE):
            finding = _change(rule, references.get(reading.competitor_id, []), reading)
            findings.append((rule, own_key, reading.competitor_id, finding))
        else:
            finding = _stock_or_rating(rule, reading, previous_any)
            findings.append((rule, own_key, reading.competitor_id, finding))
    return [f for f in findings if f[3].holds is not None]


@dataclass
class Standing:
    """The alerts of one rule and pair that matter now."""

    active: Alert | None = None
    last_resolved_at: dt.datetime | None = None
    muted_until: dt.datetime | None = None


def standing(rules: list[AlertRule], keys: set[str], now: dt.datetime) -> dict[Any, Standing]:
    longest = max(rule.cooldown_hours for rule in rules)
    recent = Alert.objects.filter(rule__in=rules, pair_key__in=keys).filter(
        Q(status__in=ACTIVE_STATUSES)
        | Q(resolved_at__gte=now - dt.timedelta(hours=longest))
        | Q(muted_until__gt=now)
    )
    standing: dict[Any, Standing] = defaultdict(Standing)
    for alert in recent:
        entry = standing[(alert.rule_id, alert.pair_key)]
        if alert.status in ACTIVE_STATUSES:
            entry.active = alert
        elif alert.resolved_at and (
            entry.last_resolved_at is None or alert.resolved_at > entry.last_resolved_at
        ):
            entry.last_resolved_at = alert.resolved_at
        if alert.is_muted(now) and (
            entry.muted_until is None or alert.muted_until > entry.muted_until
        ):
            entry.muted_until = alert.muted_until
    return standing


def check(price_history_id: int, now: dt.datetime | None = None) -> list[Alert]:
    """Check the rules against one observation; return the alerts opened."""
    return check_many([price_history_id], now)


def check_many(price_history_ids: list[int], now: dt.datetime | None = None) -> list[Alert]:
    """Check the rules against stored observations, oldest first, each as if checked alone;
    return the alerts opened.

    Whatever the number of observations, rules and competitors, a batch reads the observations,
    the rules, the references, the previous readings (back in stock only), the standing alerts
    and the streaks (consecutive > 1 only) in one query each, then writes what changed.
    """
    now = now or timezone.now()
    observations = _load(price_history_ids)
    if not observations:
        return []
    rules = active_rules()
    work = [(o, [rule for rule in rules if applies(rule, o)]) for o in observations]
    work = [(o, applicable) for o, applicable in work if applicable]
    if not work:
        return []
    checked = [o for o, _ in work]
    cutoff = now - dt.timedelta(seconds=settings.WATCHER_ALERT_REFERENCE_MAX_AGE)
    latest = History(checked, cutoff, valid_only=True, linked=True)
    previous = None
    if any(rule.kind == AlertKind.BACK_IN_STOCK for _, applicable in work for rule in applicable):
        # Back in stock compares with the previous observation, with or without a price.
        previous = History(checked, cutoff, valid_only=False, linked=False)
    found = [(o, _findings(o, applicable, latest, previous)) for o, applicable in work]
    found = [(o, findings) for o, findings in found if findings]
    if not found:
        return []
    used = list({rule.pk: rule for _, fs in found for rule, _, _, _ in fs}.values())
    keys = {key for _, fs in found for _, key, _, _ in fs}
    standings = standing(used, keys, now)
    streaks = Streaks([rule for rule in used if rule.consecutive > 1], keys)
    with transaction.atomic():
        opened = _apply(found, standings, streaks, now)
    if opened:
        from alerts import notifications

        ids = [a.pk for a in opened if a.status == AlertStatus.OPEN and not a.hold]
        if ids:
            transaction.on_commit(lambda: notifications.announce_alerts(ids))
    return opened


def _apply(
    found: list[tuple[Observation, list[tuple[AlertRule, str, int | None, Finding]]]],
    standings: dict[Any, Standing],
    streaks: Streaks,
    now: dt.datetime,
) -> list[Alert]:
    """Open, update and resolve alerts from the findings, observation by observation; the
    alerts opened are written at the end, together."""
    from alerts import holds

    judge = holds.Judge(now)
    new: list[Alert] = []  # opened in this batch, not saved yet
    changed: dict[int, Alert] = {}
    ended: dict[int, Alert] = {}
    released: dict[int, Alert] = {}
    for observation, findings in found:
        for rule, key, competitor_id, finding in findings:
            entry = standings[(rule.pk, key)]
            alert = entry.active
            if not finding.holds:
                if rule.consecutive > 1:
                    streaks.reset(rule, key)
                if alert is not None:
                    if alert.pk is None:  # opened and over within this batch
                        alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
                    else:
                        ended[alert.pk] = alert
                    entry.active, entry.last_resolved_at = None, now
                continue
            if not finding.trusted:
                continue  # a suspicious price waits for the next observation to confirm it
            # A standing alert has had its N in a row: counting on would change nothing.
            if (
                rule.consecutive > 1
                and alert is None
                and not streaks.hit(rule, key, observation.reading.id)
            ):
                continue
            hold = judge.hold(rule.kind, finding.evidence_at)
            if alert is None:
                if cooled_down(rule, entry, now):
                    entry.active = new_alert(
                        rule,
                        key,
                        marketplace=observation.marketplace,
                        brand=observation.brand,
                        subscription_id=observation.subscription_id,
                        competitor_id=competitor_id,
                        figures=finding.figures,
                        entry=entry,
                        now=now,
                        hold=hold,
                    )
                    new.append(entry.active)
                continue
            if _refigure(alert, finding.figures, now) and alert.pk is not None:
                changed[alert.pk] = alert
            if alert.hold and not hold:  # its evidence is ours no more
                if alert.pk is None:
                    alert.hold, alert.held_since = "", None
                    alert.in_digest = rule.in_quiet_hours(now)
                else:
                    alert.rule = rule
                    released[alert.pk] = alert
    # Every standing alert of this batch in one statement each, whatever their number; the
    # resolved ones first, as a pair may reopen in the same batch (a rule without cooldown).
    streaks.save()
    if changed:
        Alert.objects.bulk_update(list(changed.values()), [*FIGURE_FIELDS, "updated_at"])
    if ended:
        Alert.objects.filter(pk__in=list(ended), status__in=ACTIVE_STATUSES).update(
            status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now
        )
    opened = _insert(new, now)
    if released:
        holds.release([alert for pk, alert in released.items() if pk not in ended], now)
    return opened


def _insert(alerts: list[Alert], now: dt.datetime) -> list[Alert]:
    """Save new alerts in one statement; if another check opened one of them meanwhile, one by
    one (that one gets the figures)."""
    if not alerts:
        return []
    try:
        with transaction.atomic():
            return Alert.objects.bulk_create(alerts)
    except IntegrityError:
        for alert in alerts:
            alert.pk = None
        return [alert for alert in alerts if _save_new(alert, now)]


class Streaks:
    """How many observations in a row met each rule (consecutive > 1) for the pairs of a batch:
    read in one query, counted in memory, written at the end in one statement per change."""

    def __init__(self, rules: list[AlertRule], keys: set[str]) -> None:
        self.rows: dict[tuple[int, str], RuleStreak] = {}
        if rules:
            self.rows = {
                (streak.rule_id, streak.pair_key): streak
                for streak in RuleStreak.objects.filter(rule__in=rules, pair_key__in=keys)
            }
        self.dropped: set[int] = set()
        self.changed: dict[tuple[int, str], RuleStreak] = {}

    def reset(self, rule: AlertRule, key: str) -> None:
        streak = self.rows.pop((rule.pk, key), None)
        self.changed.pop((rule.pk, key), None)
        if streak is not None and streak.pk is not None:
            self.dropped.add(streak.pk)

    def hit(self, rule: AlertRule, key: str, observation_id: int) -> bool:
        """Count one more observation meeting the condition; whether the rule's N is reached."""
        streak = self.rows.get((rule.pk, key))
        if streak is None:
            streak = RuleStreak(rule=rule, pair_key=key, hits=1, last_observation_id=observation_id)
            self.rows[(rule.pk, key)] = self.changed[(rule.pk, key)] = streak
        elif streak.last_observation_id != observation_id:  # the same observation counts once
            streak.hits += 1
            streak.last_observation_id = observation_id
            self.changed[(rule.pk, key)] = streak
        return streak.hits >= rule.consecutive

    def save(self) -> None:
        if self.dropped:
            RuleStreak.objects.filter(pk__in=self.dropped).delete()
        new = [streak for streak in self.changed.values() if streak.pk is None]
        counted = [streak for streak in self.changed.values() if streak.pk is not None]
        if new:
            # A streak another check started meanwhile keeps its count (it lags by one at most).
            RuleStreak.objects.bulk_create(new, ignore_conflicts=True)
        if counted:
            RuleStreak.objects.bulk_update(counted, ["hits", "last_observation_id"])
        self.dropped.clear()
        self.changed.clear()


def _refigure(alert: Alert, figures: dict[str, Any], now: dt.datetime) -> bool:
    """Set new figures on a standing alert (not saved); whether any changed."""
    changed = {name: value for name, value in figures.items() if getattr(alert, name) != value}
    for name, value in changed.items():
        setattr(alert, name, value)
    if changed:
        alert.updated_at = now
    return bool(changed)


def _update(alert: Alert, figures: dict[str, Any], now: dt.datetime) -> None:
    if _refigure(alert, figures, now):
        fields = [Alert._meta.get_field(name).attname for name in FIGURE_FIELDS]
        Alert.objects.filter(pk=alert.pk, status__in=ACTIVE_STATUSES).update(
            **{name: getattr(alert, name) for name in (*fields, "updated_at")}
        )


def cooled_down(rule: AlertRule, entry: Standing, now: dt.datetime) -> bool:
    """Whether the rule's cooldown has passed since the pair's last alert was resolved."""
    if entry.last_resolved_at is None:
        return True
    return entry.last_resolved_at + dt.timedelta(hours=rule.cooldown_hours) <= now


def new_alert(
    rule: AlertRule,
    key: str,
    *,
    marketplace: str,
    brand: str,
    subscription_id: int | None,
    competitor_id: int | None,
    figures: dict[str, Any],
    entry: Standing,
    now: dt.datetime,
    hold: str = "",
) -> Alert:
    """An alert for a rule and pair, not saved. ``hold``: why it is held back from the
    recipients (``holds``)."""
    return Alert(
        rule=rule,
        kind=rule.kind,
        pair_key=key,
        marketplace=marketplace,
        brand=brand,
        subscription_id=subscription_id,
        competitor_id=competitor_id,
        opened_at=now,
        updated_at=now,
        muted_until=entry.muted_until,
        in_digest=not hold and rule.in_quiet_hours(now),
        hold=hold,
        held_since=now if hold else None,
        **figures,
    )


def open_alert(rule: AlertRule, key: str, **fields: Any) -> Alert | None:
    """Open an alert for a rule and pair (the arguments of ``new_alert``); None if another
    check opened it meanwhile (then that one gets the figures)."""
    alert = new_alert(rule, key, **fields)
    return alert if _save_new(alert, fields["now"]) else None


def _save_new(alert: Alert, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        if alert.status == AlertStatus.RESOLVED:
            return False
        active = Alert.objects.filter(
            rule_id=alert.rule_id, pair_key=alert.pair_key, status__in=ACTIVE_STATUSES
        ).first()
        if active is not None:
            attnames = (Alert._meta.get_field(name).attname for name in FIGURE_FIELDS)
            _update(active, {name: getattr(alert, name) for name in attnames}, now)
        return False
    return True


def resolve(alert: Alert, now: dt.datetime | None = None) -> bool:
    """Resolve an open or acknowledged alert; False if it was already resolved."""
    now = now or timezone.now()
    done = Alert.objects.filter(pk=alert.pk, status__in=ACTIVE_STATUSES).update(
        status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now
    )
    if done:
        alert.status, alert.resolved_at, alert.updated_at = AlertStatus.RESOLVED, now, now
    return bool(done)


def acknowledge(alert: Alert, user: Any, now: dt.datetime | None = None) -> bool:
    """Acknowledge an open alert; False if it is not open."""
    now = now or timezone.now()
    done = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now
    )
    if done:
        alert.status, alert.acknowledged_by, alert.acknowledged_at = (
            AlertStatus.ACKNOWLEDGED,
            user,
            now,
        )
    return bool(done)


def mute(alerts: models.QuerySet[Alert], days: int, now: dt.datetime | None = None) -> int:
    """Mute alerts for some days: no messages, and a reopening of the same pair stays muted."""
    now = now or timezone.now()
    return alerts.update(muted_until=now + dt.timedelta(days=days))
