"""`manage.py seed_bench --customers N`: data for `make bench`; prints an API key.
With `--billing-start T`, instead: N postpaid subscriptions with usage from T, for the
run_billing benchmark."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from billing.management.demo import bench_billing_seed, bench_seed


class Command(BaseCommand):
    help = "Load the benchmark's customers and plan; print an API key with every scope."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument("--billing-start", dest="billing_start", default=None)

    def handle(self, *args, customers: int, billing_start=None, **options):
        if billing_start:
            start = parse_datetime(billing_start)
            if start is None or start.utcoffset() is None:
                raise CommandError("--billing-start must be an ISO 8601 time with an offset")
            self.stdout.write(str(bench_billing_seed(customers=customers, start=start)))
            return
        self.stdout.write(bench_seed(customers=customers))
