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
                "charge_decide.sql": "f3688ef3d6f99aee4b7e5bdfe5c84a74c7fd8a2099c91a9b8b9b4b9e659827c0",
                "event_charge.sql": "0c2cb3b19433a368964984534adb78a335e7b4ff076a3273f60ed21f30550417",
                "hold_reserve.sql": "f549af6671d214e967cdf3af09279dc5f07b21ef9c51a7c61dd832f2e6a3ba1b",
            },
            drop=[EVENT_CHARGE_WITHOUT_HOLD],
        ),
    ]
