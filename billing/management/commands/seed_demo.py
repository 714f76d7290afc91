"""`manage.py seed_demo`: load the demo data (idempotent)."""

from django.core.management.base import BaseCommand

from billing.management.demo import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Load Billfold's demo data: staff users, meters, plans, customers, wallets."

    def handle(self, *args, **options):
        report = demo_seed()
        if report.created:
            for item in report.created:
                self.stdout.write(f"  created {item}")
        else:
            self.stdout.write("demo data already loaded: nothing to add")
        self.stdout.write(
            self.style.SUCCESS(
                f"demo logins: admin / {DEMO_PASSWORD} (superuser), finance / {DEMO_PASSWORD}, "
                f"auditor / {DEMO_PASSWORD}"
            )
        )
