"""Module keys: the API keys of modules outside this project (one department each).

Made and checked by the watcher's key helpers (a random 32-byte key, a lookup prefix and a
SHA-256 digest, compared in constant time); the plain key is returned once and never stored.
"""

from __future__ import annotations

from django.utils import timezone

from office.models import ModuleKey
from watcher.services.agents import key_lookup, key_matches, new_key

MODULE_KEY_PREFIX = "wo_"


def create_module_key(department: str, description: str = "") -> tuple[ModuleKey, str]:
    """A new key for ``department``: the row and the plain key (shown once)."""
    key, prefix, digest = new_key(MODULE_KEY_PREFIX)
    row = ModuleKey.objects.create(
        department=department, description=description, key_prefix=prefix, key_digest=digest
    )
    return row, key


def authenticate_module_key(key: str) -> ModuleKey | None:
    """The active module key matching ``key``, or None."""
    prefix = key_lookup(key, MODULE_KEY_PREFIX)
    if prefix is None:
        return None
    row = ModuleKey.objects.filter(key_prefix=prefix, is_active=True).first()
    if row is None or not key_matches(row.key_digest, key):
        return None
    ModuleKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row
