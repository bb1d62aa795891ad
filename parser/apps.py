from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class ParserConfig(AppConfig):
    name = "parser"
    verbose_name = _("Parser")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from parser.models import BackendRoute
        from parser.signals import route_changed

        for signal in (post_save, post_delete):
            signal.connect(route_changed, sender=BackendRoute, dispatch_uid="parser-route-changed")
