"""`manage.py reconcile`: check the ledger invariants 1–4 over the whole ledger. Exits 1 and
names the transaction, account or grant on any drift."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wallets.selectors import ledger_reconcile


class Command(BaseCommand):
    help = "Check that the ledger balances exactly (docs/quality.md invariants 1-4)."

    def handle(self, *args: Any, **options: Any) -> None:
        drifts = ledger_reconcile()
        if drifts:
            for drift in drifts:
                self.stderr.write(str(drift))
            raise CommandError(f"ledger drift: {len(drifts)} problem(s)", returncode=1)
        self.stdout.write(self.style.SUCCESS("ledger reconciled: no drift"))
