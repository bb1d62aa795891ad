from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ParserConfig(AppConfig):
    name = "parser"
    verbose_name = _("Parser")
    default_auto_field = "django.db.models.BigAutoField"
