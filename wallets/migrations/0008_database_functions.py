"""The wallets' database functions, from ``wallets/sql`` (see ``wallets.sql``): the account
locks, the grants that may pay, a draw's posting, and a hold's placing, lock and capture,
which the charge path's functions (billing 0018) call for everything they write of the
wallets."""

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
                "grants_to_pay.sql": "f8690c4fd13289c7c294d42d5b32b3126038965e51cdc82381f5434298cb4614",
                "hold_released.sql": "31be650a8685ea5eb809c97ff1a67fb1d6700c64a4fb2855abd2b95e73930131",
                "hold_lock.sql": "9726d851b0fd8e5b236c24ed3b7d597082df638d1193329bc47b175fcf40f53c",
                "hold_place.sql": "6994493b8a63ae90f823cbb5e54c3729e59bcb3820d3d9d053728cc0ce546bf6",
                "hold_capture.sql": "44f9926eb1eac492739826e0bbe1b6913539d70d990d02a2aefa2f9baff537c0",
                "idempotency_save.sql": "d048b07b1dc12e583b1af138358be58d5d0c1eed9674e701a1671ac7140507aa",
                "ledger_post.sql": "ff7c2a4e88edabee59a77f190e1dddee59e73e1c558084ac4c1a78570c5b1e6c",
            },
        ),
    ]
