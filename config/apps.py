"""Libraries' app configs renamed for the admin index (Django's documented way: a subclass
with its own ``verbose_name``, named in ``INSTALLED_APPS``)."""

from __future__ import annotations

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _


class AxesConfig(AxesAppConfig):
    """django-axes names its section «Axes»; operators read what it does."""

    verbose_name = _("Login protection")
