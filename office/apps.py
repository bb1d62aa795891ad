from __future__ import annotations

import atexit

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class OfficeConfig(AppConfig):
    name = "office"
    verbose_name = _("Office")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_init, worker_ready, worker_shutdown

        from office import tasks, watcher_agents
        from office.reporter import registry
        from office.schedules import after_migrate
        from watcher.signals import night_generation

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="office-after-migrate")
        night_generation.connect(
            watcher_agents.on_night_generation, dispatch_uid="office-night-generation"
        )
        # A Celery worker speaks for the watcher's agents: registered before its pool forks,
        # announced idle once it runs, offline when it stops.
        worker_init.connect(watcher_agents.register_watcher_reporters, weak=False)
        worker_ready.connect(tasks.announce_on_worker_ready, weak=False)
        worker_shutdown.connect(registry.offline_all, weak=False)
        # Any other process (a management command, a script) reports its reporters offline
        # when it exits.
        atexit.register(registry.offline_all)
