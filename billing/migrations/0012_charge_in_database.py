"""The common accepted charge of one usage event as one database function.

``billfold_event_charge`` locks the wallet's accounts, reads grants and counter, decides
(units, price, burn-down, accrual) and writes the event, its ledger transaction, grants,
balances and counter, in one statement; anything else returns NULL having written nothing,
and the event goes through the Python path, which stays the reference
(``tests/billing/metering/test_charge_in_database.py`` compares them).

The functions live in ``billing/sql``, ``plans/sql`` and ``wallets/sql`` and are installed
from there by billing 0018 (with wallets 0008 and plans 0003), which replaces wholesale
everything this migration made, on every database: this one installs nothing (see
``wallets.sql``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_capture_event_index"),
    ]

    operations = []
