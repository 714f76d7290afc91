"""``manage.py revoke_api_key PREFIX``: revoke an API key at once. PREFIX is the prefix shown
in the admin and by create_api_key (the start of the key, ``bf_PREFIX_…``, works too)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.selectors.api_keys import api_key_get_by_prefix
from billing.services.api_keys import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key; it fails on its next request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="The key's prefix (or the key itself).")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        key = api_key_get_by_prefix(prefix)
        if key is None:
            raise CommandError(f"No API key with prefix {prefix[:40]!r}.")
        if key.revoked_at is not None:
            self.stdout.write(
                f"API key {key.name!r} ({key.prefix}) was already revoked at "
                f"{key.revoked_at.isoformat()}."
            )
            return
        key = api_key_revoke(key=key)
        self.stdout.write(
            f"Revoked API key {key.name!r} ({key.prefix}) at {key.revoked_at.isoformat()}."
        )
