"""django-celery-beat's admin screens with our Russian grammar.

Its admin classes are public (``django_celery_beat.admin``); each is registered again as a
subclass that also mixes in ``GrammarAdmin``, so its titles, buttons and counts put the model
names in the right case as ours do («Выберите интервал для изменения», «3 интервала»).
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, ngettext_lazy, pgettext_lazy
from django_celery_beat import admin as beat_admin  # registers its screens first
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from config.grammar import Grammar, GrammarAdmin

BEAT_SCREENS = (
    (
        PeriodicTask,
        beat_admin.PeriodicTaskAdmin,
        Grammar(
            pgettext_lazy("accusative", "periodic task"),
            _("Delete selected periodic tasks"),
            ngettext_lazy("%(count)d periodic task", "%(count)d periodic tasks", "count"),
        ),
    ),
    (
        IntervalSchedule,
        beat_admin.IntervalScheduleAdmin,
        Grammar(
            pgettext_lazy("accusative", "interval"),
            _("Delete selected intervals"),
            ngettext_lazy("%(count)d interval", "%(count)d intervals", "count"),
        ),
    ),
    (
        CrontabSchedule,
        beat_admin.CrontabScheduleAdmin,
        Grammar(
            pgettext_lazy("accusative", "crontab"),
            _("Delete selected crontabs"),
            ngettext_lazy("%(count)d crontab", "%(count)d crontabs", "count"),
        ),
    ),
    (
        SolarSchedule,
        beat_admin.SolarScheduleAdmin,
        Grammar(
            pgettext_lazy("accusative", "solar event"),
            _("Delete selected solar events"),
            ngettext_lazy("%(count)d solar event", "%(count)d solar events", "count"),
        ),
    ),
    (
        ClockedSchedule,
        beat_admin.ClockedScheduleAdmin,
        Grammar(
            pgettext_lazy("accusative", "clocked"),
            _("Delete selected clocked schedules"),
            ngettext_lazy("%(count)d clocked schedule", "%(count)d clocked schedules", "count"),
        ),
    ),
)

# django-celery-beat's own strings that its Russian catalog lacks (or gets wrong), translated
# in ours: listed here so that makemessages keeps them.
BEAT_STRINGS = (
    gettext_noop("Periodic Tasks"),
    gettext_noop("Schedule"),
    gettext_noop("Arguments"),
    gettext_noop("Execution Options"),
    gettext_noop("Astronomical dawn"),
    gettext_noop("Civil dawn"),
    gettext_noop("Nautical dawn"),
    gettext_noop("Astronomical dusk"),
    gettext_noop("Civil dusk"),
    gettext_noop("Nautical dusk"),
    gettext_noop("Solar noon"),
    gettext_noop("Sunrise"),
    gettext_noop("Sunset"),
    gettext_noop("clocked"),
    gettext_noop("Only one can be set, in expires and expire_seconds"),
    gettext_noop("Expires timedelta with seconds"),
    gettext_noop(
        "Timedelta with seconds which the schedule will no longer trigger the task to run"
    ),
)
BEAT_MESSAGES = (
    ngettext_lazy("{0} task was successfully enabled", "{0} tasks were successfully enabled"),
    ngettext_lazy("{0} task was successfully disabled", "{0} tasks were successfully disabled"),
    ngettext_lazy("{0} task was successfully toggled", "{0} tasks were successfully toggled"),
)

for model, base, grammar in BEAT_SCREENS:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(base.__name__, (GrammarAdmin, base), {"grammar": grammar}))
