"""A finalized invoice is immutable in the database: only its status may move on (to paid or
void) with the payment or void fields; its lines never change once it left draft."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice % is %: it cannot be deleted', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.customer_id, NEW.subscription_id, NEW.kind, NEW.number, NEW.currency_id,
        NEW.period_start, NEW.period_end, NEW.subtotal, NEW.tax_rate, NEW.tax, NEW.total,
        NEW.issued_at, NEW.due_at, NEW.finalized_at, NEW.credit_note_for_id, NEW.reason,
        NEW.created_at)
       IS DISTINCT FROM
       (OLD.customer_id, OLD.subscription_id, OLD.kind, OLD.number, OLD.currency_id,
        OLD.period_start, OLD.period_end, OLD.subtotal, OLD.tax_rate, OLD.tax, OLD.total,
        OLD.issued_at, OLD.due_at, OLD.finalized_at, OLD.credit_note_for_id, OLD.reason,
        OLD.created_at) THEN
        RAISE EXCEPTION 'invoice % is %: it is immutable (issue a credit note)', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT ((OLD.status = 'finalized' AND NEW.status IN ('finalized', 'paid', 'void'))
            OR (OLD.status = NEW.status)) THEN
        RAISE EXCEPTION 'invoice % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

CREATE OR REPLACE FUNCTION billing_invoiceline_guard() RETURNS trigger AS $$
DECLARE
    state text;
BEGIN
    SELECT status INTO state FROM billing_invoice
     WHERE id = COALESCE(NEW.invoice_id, OLD.invoice_id);
    IF state IS NOT NULL AND state <> 'draft' THEN
        RAISE EXCEPTION 'the lines of a % invoice are immutable', state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_guard();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_invoice_sequence")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
