"""Demo data for `manage.py seed_demo`: staff users, the pricing models AI products use, and
customers on them with funded wallets. Idempotent: every object is found by its code or id
before it is made, and money goes in only through the wallet services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.models import Customer, Subscription
from billing.services.customers import customer_create
from billing.staff import AUDITOR, FINANCE
from billing.subscriptions import subscription_create
from plans.models import Meter, Plan
from plans.services import meter_create, plan_create
from wallets.models import Asset, Grant
from wallets.services import grant_create
from wallets.services.assets import asset_create

DEMO_PASSWORD = "billfold-demo"  # noqa: S105 - documented demo login, local only

USERS = (
    ("admin", "Ada", "Admin", None, True),
    ("finance", "Fin", "Ance", FINANCE, False),
    ("auditor", "Audrey", "Tor", AUDITOR, False),
)

METERS = (
    ("llm_tokens", "LLM tokens", "tokens", "sum", None),
    ("input_tokens", "Input tokens", "tokens", "sum", None),
    ("output_tokens", "Output tokens", "tokens", "sum", None),
    ("api_requests", "API requests", "requests", "count", None),
    ("ticket_resolved", "Tickets resolved", "outcomes", "count", None),
    ("image", "Images generated", "images", "count", None),
    ("active_users", "Active users", "users", "unique_count", "user_id"),
)


def _token_prices() -> list[dict]:
    table = {
        ("gpt-4o", "input_tokens"): "0.0000025",
        ("gpt-4o", "output_tokens"): "0.00001",
        ("gpt-4o-mini", "input_tokens"): "0.00000015",
        ("gpt-4o-mini", "output_tokens"): "0.0000006",
    }
    return [
        {"meter": meter, "filter": {"model": model}, "model": "per_unit", "unit_price": price}
        for (model, meter), price in table.items()
    ]


PLANS: tuple[tuple[str, str, str, dict], ...] = (
    (
        "pro",
        "Pro (hybrid)",
        "$49 a month with 1M tokens included, then graduated overage.",
        {
            "currency": "USD",
            "interval": "month",
            "base_fee": "49.00",
            "base_fee_timing": "in_advance",
            "prices": [
                {
                    "meter": "llm_tokens",
                    "included": "1000000",
                    "model": "graduated",
                    "tiers": [
                        {"up_to": "10000000", "unit_price": "0.000002", "flat_fee": "0"},
                        {"up_to": None, "unit_price": "0.0000015"},
                    ],
                }
            ],
        },
    ),
    (
        "tokens-payg",
        "Tokens, pay as you go",
        "Input and output tokens of two models, priced apart.",
        {"currency": "USD", "interval": "month", "prices": _token_prices()},
    ),
    (
        "api-requests",
        "API requests",
        "Per request, in packages of 1,000.",
        {
            "currency": "USD",
            "interval": "month",
            "prices": [
                {
                    "meter": "api_requests",
                    "model": "package",
                    "package_size": "1000",
                    "package_price": "1.50",
                }
            ],
        },
    ),
    (
        "team",
        "Team (per seat)",
        "$20 per seat per month, in advance.",
        {"currency": "USD", "interval": "month", "seat_price": "20.00"},
    ),
    (
        "support-agent",
        "Support agent (per outcome)",
        "$0.99 per resolved ticket, invoiced monthly.",
        {
            "currency": "USD",
            "interval": "month",
            "prices": [{"meter": "ticket_resolved", "model": "per_unit", "unit_price": "0.99"}],
        },
    ),
    (
        "studio-credits",
        "Studio (credits)",
        "Images priced in credits: 4 credits an image.",
        {
            "currency": "USD",
            "interval": "month",
            "prices": [
                {"meter": "image", "model": "per_unit", "unit_price": "4", "asset": "credits"},
                {
                    "meter": "active_users",
                    "model": "volume",
                    "tiers": [
                        {"up_to": "10", "unit_price": "5.00"},
                        {"up_to": None, "unit_price": "4.00"},
                    ],
                },
            ],
        },
    ),
)


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    name: str
    plan: str
    overage: str = "wallet"
    seats: int = 1
    # id, asset, amount, purpose, priority, expires at the end of the month, cost in USD
    grants: tuple[tuple[str, str, str, str, int, bool, str | None], ...] = ()


CUSTOMERS = (
    DemoCustomer(
        "acme",
        "Acme AI",
        "pro",
        grants=(("demo-acme-topup", "USD", "20.00", "paid", 10, False, "20.00"),),
    ),
    DemoCustomer(
        "hooli",
        "Hooli Labs",
        "tokens-payg",
        grants=(
            ("demo-hooli-topup", "USD", "50.00", "paid", 10, False, "50.00"),
            ("demo-hooli-welcome", "USD", "5.00", "promotional", 1, True, None),
        ),
    ),
    DemoCustomer("soylent", "Soylent Search", "api-requests", overage="invoice"),
    DemoCustomer("initech", "Initech", "team", seats=5),
    DemoCustomer("globex", "Globex Support", "support-agent", overage="invoice"),
    DemoCustomer(
        "umbrella",
        "Umbrella Studio",
        "studio-credits",
        overage="invoice",
        grants=(
            ("demo-umbrella-promo", "credits", "100", "promotional", 1, True, None),
            ("demo-umbrella-pack", "credits", "1000", "paid", 10, False, "10.00"),
        ),
    ),
)


@dataclass
class DemoReport:
    created: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.created.append(what)


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return _month_start(now).replace(year=year, month=month)


def demo_seed() -> DemoReport:
    """Load the demo data; running it again adds nothing."""
    report = DemoReport()
    now = timezone.now()
    with transaction.atomic():
        User = get_user_model()
        for username, first, last, group, superuser in USERS:
            if User.objects.filter(username=username).exists():
                continue
            user = User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD,
                email=f"{username}@example.com",
                first_name=first,
                last_name=last,
                is_staff=True,
                is_superuser=superuser,
            )
            if group:
                user.groups.add(Group.objects.get(name=group))
            report.add(f"user {username}")
        if not Asset.objects.filter(code="credits").exists():
            asset_create(
                code="credits",
                name="Credits",
                decimals=0,
                rates=[{"currency": "USD", "rate": "0.01"}],
            )
            report.add("asset credits")
        for code, name, unit, aggregation, prop in METERS:
            if not Meter.objects.filter(code=code).exists():
                meter_create(
                    code=code, name=name, unit=unit, aggregation=aggregation, event_property=prop
                )
                report.add(f"meter {code}")
        for code, name, description, spec in PLANS:
            if not Plan.objects.filter(code=code).exists():
                plan_create(code=code, name=name, spec=spec, description=description)
                report.add(f"plan {code}")
        for demo in CUSTOMERS:
            customer = Customer.objects.filter(external_id=demo.external_id).first()
            if customer is None:
                customer = customer_create(
                    external_id=demo.external_id,
                    name=demo.name,
                    email=f"billing@{demo.external_id}.example",
                    currency="USD",
                )
                report.add(f"customer {demo.external_id}")
            if not Subscription.objects.filter(customer=customer).exists():
                subscription_create(
                    customer=customer,
                    plan=demo.plan,
                    start=_month_start(now),
                    seats=demo.seats,
                    overage=demo.overage,
                )
                report.add(f"subscription {demo.external_id} on {demo.plan}")
            for grant_id, asset, amount, purpose, priority, expires, cost in demo.grants:
                if Grant.objects.filter(pk=grant_id).exists():
                    continue
                grant_create(
                    wallet_id=customer.wallet_id,
                    asset=asset,
                    amount=Decimal(amount),
                    purpose=purpose,
                    priority=priority,
                    expires_at=_next_month(now) if expires else None,
                    cost=Money(Decimal(cost), "USD") if cost else None,
                    reference="demo data",
                    grant_id=grant_id,
                )
                report.add(f"grant {grant_id}")
    return report


def bench_seed(*, customers: int) -> str:
    """Data for `make bench`: a per-token plan and ``customers`` customers with funded wallets
    (never short of money), through the same services as everything else. Returns a new API
    key with every scope."""
    from billing.services.api_keys import api_key_create

    with transaction.atomic():
        if not Meter.objects.filter(code="llm_tokens").exists():
            meter_create(code="llm_tokens", name="LLM tokens", unit="tokens", aggregation="sum")
        if not Plan.objects.filter(code="bench").exists():
            plan_create(
                code="bench",
                name="Bench (per token)",
                spec={
                    "currency": "USD",
                    "interval": "month",
                    "prices": [
                        {"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.000002"}
                    ],
                },
            )
    start = _month_start(timezone.now())
    for n in range(1, customers + 1):
        external_id = f"c{n:04d}"
        if Customer.objects.filter(external_id=external_id).exists():
            continue
        with transaction.atomic():
            customer = customer_create(external_id=external_id, name=external_id, currency="USD")
            subscription_create(customer=customer, plan="bench", start=start)
            grant_create(
                wallet_id=customer.wallet_id,
                asset="USD",
                amount=Decimal("1000000"),
                purpose="paid",
                grant_id=f"bench-{external_id}",
            )
    _, raw = api_key_create(name="bench", scopes=["events", "read", "manage"])
    return raw


def bench_billing_seed(*, customers: int, start: datetime) -> int:
    """Subscriptions for the run_billing benchmark: ``customers`` postpaid customers on a
    plan with a base fee and a volume-priced meter, each with usage in the period that
    starts at ``start``. Events go through the charging service's batch path."""
    from billing.metering import event_data, events_charge_batch

    with transaction.atomic():
        if not Meter.objects.filter(code="api_calls").exists():
            meter_create(code="api_calls", name="API calls", unit="calls", aggregation="count")
        if not Plan.objects.filter(code="bench-postpaid").exists():
            plan_create(
                code="bench-postpaid",
                name="Bench postpaid",
                spec={
                    "currency": "USD",
                    "interval": "month",
                    "base_fee": "10.00",
                    "base_fee_timing": "in_arrears",
                    "prices": [
                        {
                            "meter": "api_calls",
                            "model": "volume",
                            "tiers": [
                                {"up_to": "10", "unit_price": "0.01"},
                                {"up_to": None, "unit_price": "0.008"},
                            ],
                        }
                    ],
                },
            )
    made = 0
    pending = []
    for n in range(1, customers + 1):
        external_id = f"b{n:05d}"
        if not Customer.objects.filter(external_id=external_id).exists():
            with transaction.atomic():
                customer = customer_create(
                    external_id=external_id, name=external_id, currency="USD"
                )
                subscription_create(
                    customer=customer, plan="bench-postpaid", start=start, overage="invoice"
                )
            made += 1
        for k in range(3):
            pending.append(
                event_data(
                    id=f"{external_id}-call-{k}",
                    customer=external_id,
                    meter="api_calls",
                    timestamp=start,
                )
            )
        if len(pending) >= 999:
            events_charge_batch(events=pending, now=start)
            pending = []
    if pending:
        events_charge_batch(events=pending, now=start)
    return made
