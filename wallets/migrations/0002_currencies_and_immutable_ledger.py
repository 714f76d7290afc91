"""ISO 4217 currencies exist without setup (docs/ledger.md), and posted ledger entries are
immutable in the database (docs/quality.md invariant 4)."""

from django.db import migrations

from wallets.currencies import CURRENCIES

IMMUTABLE_ENTRIES = """
CREATE OR REPLACE FUNCTION wallets_refuse_entry_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable: post a reversing transaction instead'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER wallets_ledgerentry_immutable
    BEFORE UPDATE OR DELETE ON wallets_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION wallets_refuse_entry_change();
"""

DROP_IMMUTABLE_ENTRIES = """
DROP TRIGGER IF EXISTS wallets_ledgerentry_immutable ON wallets_ledgerentry;
DROP FUNCTION IF EXISTS wallets_refuse_entry_change();
"""


def add_currencies(apps, schema_editor):
    Asset = apps.get_model("wallets", "Asset")
    existing = set(Asset.objects.values_list("code", flat=True))
    Asset.objects.bulk_create(
        Asset(code=code, name=name, kind="currency", decimals=decimals)
        for code, name, decimals in CURRENCIES
        if code not in existing
    )


def remove_currencies(apps, schema_editor):
    apps.get_model("wallets", "Asset").objects.filter(kind="currency").delete()


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial")]

    operations = [
        migrations.RunPython(add_currencies, remove_currencies),
        migrations.RunSQL(IMMUTABLE_ENTRIES, DROP_IMMUTABLE_ENTRIES),
    ]
