from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import post_migrate, pre_delete
from django.utils.translation import gettext_lazy as _


class WatcherConfig(AppConfig):
    name = "watcher"
    verbose_name = _("Watcher")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from watcher.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="watcher-schedules")

        from watcher.services.redis import reset_client

        setting_changed.connect(reset_client, dispatch_uid="watcher-redis-client")

        from watcher.models import Competitor, Subscription
        from watcher.services.generator import catalogue_row_deleting

        for model in (Subscription, Competitor):
            pre_delete.connect(
                catalogue_row_deleting, sender=model, dispatch_uid=f"catalogue-{model.__name__}"
            )
