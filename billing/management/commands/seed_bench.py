"""`manage.py seed_bench --customers N`: data for `make bench`; prints an API key."""

from django.core.management.base import BaseCommand

from billing.services.demo import bench_seed


class Command(BaseCommand):
    help = "Load the benchmark's customers and plan; print an API key with every scope."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1000)

    def handle(self, *args, customers: int, **options):
        self.stdout.write(bench_seed(customers=customers))
