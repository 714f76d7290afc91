"""A published plan version and its prices are immutable in the database: a change is a new
version (docs/pricing.md)."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION plans_refuse_version_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'plan versions are immutable: publish a new version instead'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER plans_planversion_immutable
    BEFORE UPDATE ON plans_planversion
    FOR EACH ROW EXECUTE FUNCTION plans_refuse_version_change();
CREATE TRIGGER plans_price_immutable
    BEFORE UPDATE ON plans_price
    FOR EACH ROW EXECUTE FUNCTION plans_refuse_version_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS plans_price_immutable ON plans_price;
DROP TRIGGER IF EXISTS plans_planversion_immutable ON plans_planversion;
DROP FUNCTION IF EXISTS plans_refuse_version_change();
"""


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
