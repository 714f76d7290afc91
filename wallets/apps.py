from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

DECIMAL_PRECISION = 60


def _after_migrate(sender: object, app_config: AppConfig | None = None, **kwargs: Any) -> None:
    # also after a flush (tests), which empties the table the migration filled
    if app_config is None or app_config.label != "wallets":
        return
    from django.apps import apps

    from wallets.currencies import currencies_install

    currencies_install(apps)


def _binary_jsonb_as_text(sender: object, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        from core.db import jsonb_binary_as_text

        jsonb_binary_as_text(connection.connection)


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets and ledger"

    def ready(self) -> None:
        # Amounts below 10^18 at 12 places have up to 30 digits and their products more:
        # Python's default 28-digit context would round them. Every thread starts from
        # DefaultContext, so widen both.
        decimal.DefaultContext.prec = DECIMAL_PRECISION
        decimal.getcontext().prec = DECIMAL_PRECISION
        post_migrate.connect(_after_migrate, dispatch_uid="wallets.after_migrate")
        connection_created.connect(_binary_jsonb_as_text, dispatch_uid="wallets.jsonb_binary")
