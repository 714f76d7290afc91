"""A transfer belongs to the receiving wallet; its sender is recorded so the sender's ledger
lists it too. Transfers made before this migration get their sender from the metadata."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0004_admin_review"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgertransaction",
            name="counterparty_wallet",
            field=models.ForeignKey(
                blank=True,
                help_text="The other wallet a transfer moved value from (the transaction belongs to the receiving wallet): it shows in both wallets' ledgers.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.wallet",
            ),
        ),
        migrations.RunSQL(
            "UPDATE wallets_ledgertransaction "
            "SET counterparty_wallet_id = (metadata->>'transfer_from')::bigint "
            "WHERE metadata ? 'transfer_from'",
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="ledgertransaction",
            index=models.Index(
                condition=models.Q(("counterparty_wallet__isnull", False)),
                fields=["counterparty_wallet", "-id"],
                name="txn_counterparty_recent",
            ),
        ),
    ]
