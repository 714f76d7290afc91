"""The plans' database function, from ``plans/sql`` (see ``wallets.sql``): the price of a
quantity, ``billfold_price_total``, which the charge decision (billing 0018) calls."""

from django.db import migrations

from wallets.sql import install


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0002_immutable_versions"),
    ]

    operations = [
        install(
            "plans.sql",
            {
                "price_total.sql": "b00ed8120ac7f99995636ede065b16e8fc8fd6daa65df351713b801af2790844",
            },
        ),
    ]
