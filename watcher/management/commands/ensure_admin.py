"""Create the first admin user if none exists (used by `make run`)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser from WATCHER_ADMIN_USER / WATCHER_ADMIN_PASSWORD / WATCHER_ADMIN_EMAIL "
        "(defaults: admin, a generated password printed once) unless that user exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = os.environ.get("WATCHER_ADMIN_USER", "admin")
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(
                f"Admin user '{username}' exists; its password is unchanged "
                f"(python manage.py changepassword {username} to reset it)."
            )
            return
        password = os.environ.get("WATCHER_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(
            username=username, email=os.environ.get("WATCHER_ADMIN_EMAIL", ""), password=password
        )
        self.stdout.write(self.style.SUCCESS(f"Created admin user '{username}'."))
        if generated:
            # Shown once, on the operator's own terminal; never written to a log or a file.
            self.stdout.write(f"  password: {password}")
            self.stdout.write("  (generated; set WATCHER_ADMIN_PASSWORD to choose your own)")
        else:
            self.stdout.write("  password: the value of WATCHER_ADMIN_PASSWORD")
