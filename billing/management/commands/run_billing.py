"""`manage.py run_billing --as-of 2026-02-01T00:00:00Z`: every periodic job for that instant,
with the same code as the Celery tasks. A subscription or invoice that fails does not stop
the others; the command exits 1 after the whole run when any failed, or on ledger drift."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from billing.periodic import billing_run


class Command(BaseCommand):
    help = "Run every periodic billing job (expiry, rating, period close, finalization) at T."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", help="ISO 8601 time with offset; default now")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes closing periods and rating prices in parallel (default 1)",
        )

    def handle(self, *args, as_of=None, workers=1, **options):
        moment = None
        if as_of:
            moment = parse_datetime(as_of)
            if moment is None or moment.utcoffset() is None:
                raise CommandError("--as-of must be an ISO 8601 time with an offset")
        if workers < 1:
            raise CommandError("--workers must be 1 or more")
        report = billing_run(as_of=moment, workers=workers)
        for line in report.lines():
            self.stdout.write(line)
        problems = []
        if report.failures:
            problems.append(
                f"{len(report.failures)} failed (left for the next run; see the alerts)"
            )
        if report.drifts:
            problems.append("ledger drift found")
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
