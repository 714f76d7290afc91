"""No PostgreSQL foreign key from a charge's rows to shared reference rows (ADR 0007)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0013_holds_in_database"),
        ("plans", "0002_immutable_versions"),
        ("wallets", "0007_reference_keys_unchecked"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usageevent",
            name="asset",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.asset",
            ),
        ),
        migrations.AlterField(
            model_name="usageevent",
            name="meter",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="plans.meter",
            ),
        ),
        migrations.AlterField(
            model_name="usageevent",
            name="price",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="plans.price",
            ),
        ),
    ]
