"""``manage.py create_api_key --name NAME --scopes events,read,manage``: make an API key and
print it once. Only its SHA-256 hash is stored, so it cannot be shown again.

The key alone goes to standard output (``KEY=$(manage.py create_api_key …)`` captures just the
key); what it is goes to standard error."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.api_keys import SCOPES, api_key_create
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Make an API key and print it once (only a hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Who or what the key is for.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated, among: {', '.join(SCOPES)}.",
        )

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        try:
            key, raw = api_key_create(name=name, scopes=scopes.split(","))
        except ValidationFailed as exc:
            raise CommandError(exc.detail) from exc
        self.stderr.write(
            f"Created API key {key.name!r} (prefix {key.prefix}, scopes {','.join(key.scopes)}). "
            "It is shown once; store it now. Revoke it with "
            f"`manage.py revoke_api_key {key.prefix}`."
        )
        self.stdout.write(raw)
