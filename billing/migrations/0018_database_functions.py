"""The charge path's database functions, from ``billing/sql`` (see ``wallets.sql``): the
decision, an event's charge (with a hold's capture) and a hold's reservation, calling the
wallets' (wallets 0008) and the plans' (plans 0003) functions. They replace the bodies
migrations 0012, 0013 and 0015 once held; the event charge's overload without ``p_hold``
(0012), which 0013 dropped, is dropped here too for a database migrated past 0012 alone."""

from django.db import migrations

from wallets.sql import install

EVENT_CHARGE_WITHOUT_HOLD = """
DROP FUNCTION IF EXISTS billfold_event_charge(
    bigint, varchar, numeric, timestamptz, varchar, int, bigint, bigint, varchar, int, bigint,
    varchar, numeric, numeric, numeric, jsonb, boolean, bigint, timestamptz, timestamptz,
    varchar, int, varchar, bigint, bigint, numeric, timestamptz, jsonb, varchar, jsonb, varchar,
    timestamptz)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_invoice_line_paid_from_wallet"),
        ("plans", "0003_database_functions"),
        ("wallets", "0008_database_functions"),
    ]

    operations = [
        install(
            "billing.sql",
            {
                "charge_decide.sql": "4343c73338a0826cf35b166bd20477c5ad35f3218ee6288b95d5a70c2898de08",
                "event_charge.sql": "31a7dc7f494577bf3bb79c058bd54d4a57e696cc92c8b6a59705219d64bb69d8",
                "hold_reserve.sql": "7f33819bf08d369d4c191355f51c168d0acfa0d70671dd97f57a73443ae311e1",
            },
            drop=[EVENT_CHARGE_WITHOUT_HOLD],
        ),
    ]
