"""A hold's reservation and its capture in the database, as the event's charge is (0012).

The event's charge is split into the parts every caller shares — the wallet's accounts,
locked, and the decision (units, price, burn-down, accrual) — and used three ways, each one
statement and its own transaction: ``billfold_event_charge`` charges an event and, with
``p_hold``, captures that pending hold; ``billfold_hold_reserve`` reserves the estimated
cost of a hold. Anything else returns NULL having written nothing and goes through the
Python path (``tests/billing/metering/test_holds_in_database.py`` compares them).

The functions live in ``billing/sql`` and ``wallets/sql`` and are installed from there by
billing 0018 (with wallets 0008), which replaces wholesale everything this migration made,
on every database: this one installs nothing (see ``wallets.sql``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_charge_in_database"),
    ]

    operations = []
