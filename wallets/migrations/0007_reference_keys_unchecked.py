"""No PostgreSQL foreign key from a charge's rows to shared reference rows (ADR 0007)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0006_fewer_ledger_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="asset",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.asset",
            ),
        ),
    ]
