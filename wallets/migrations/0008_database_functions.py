"""The wallets' database functions, from ``wallets/sql`` (see ``wallets.sql``): the account
locks, the grants that may pay and what a hold reserved, which the charge path's functions
(billing 0018) call."""

from django.db import migrations

from wallets.sql import install


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0007_reference_keys_unchecked"),
    ]

    operations = [
        install(
            "wallets.sql",
            {
                "accounts_lock.sql": "0e3fad46b52429f1af0a96d0ad83dda14c341641956206d6d9e46f20837dac00",
                "grants_to_draw.sql": "c01454f32db312cd3270d077204be14e82e9ff70910a8ea1bbc67d6c167e54d3",
                "grants_to_pay.sql": "7a5ef14068669fa0478fd87ca2fa9703da09f12413cb61d884b578cf6a2f5c4c",
                "hold_released.sql": "31be650a8685ea5eb809c97ff1a67fb1d6700c64a4fb2855abd2b95e73930131",
            },
        ),
    ]
