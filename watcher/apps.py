from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WatcherConfig(AppConfig):
    name = "watcher"
    verbose_name = _("Watcher")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from watcher.api.auth import revoke_tokens_on_password_change
        from watcher.models import Agent
        from watcher.schedules import ensure_schedules
        from watcher.services.agents import agent_saved
        from watcher.services.redis import reset_client
        from watcher.sqlite import install_unicode_like

        post_save.connect(agent_saved, sender=Agent, dispatch_uid="watcher-agent-saved")
        pre_save.connect(
            revoke_tokens_on_password_change,
            sender=get_user_model(),
            dispatch_uid="watcher-password-changed",
        )

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="watcher-schedules")
        setting_changed.connect(reset_client, dispatch_uid="watcher-redis-client")
        connection_created.connect(install_unicode_like, dispatch_uid="watcher-sqlite-like")
