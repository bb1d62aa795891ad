"""`manage.py check --deploy` is clean under the production settings docs/production.md gives."""

from __future__ import annotations

from django.core.management import call_command
from django.test import override_settings

PRODUCTION = {
    "DEBUG": False,
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
    "ALLOWED_HOSTS": ["watcher.example.com"],
    "CSRF_TRUSTED_ORIGINS": ["https://watcher.example.com"],
    # HTTPS_ONLY=true
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31_536_000,
}


def test_the_deploy_check_is_clean_in_production() -> None:
    with override_settings(**PRODUCTION):
        call_command("check", deploy=True, fail_level="WARNING")
