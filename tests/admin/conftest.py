"""A small world with one row of every model the admin shows, and staff users of each kind.

Catalogue rows, the customer and the key come from the shared factories; ledger, usage and
invoice rows are written with the ORM as given (only display is tested here, so they need not
be what the services would have booked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from djmoney.money import Money

from billing.models import (
    Alert,
    ApiKey,
    ChargeItem,
    Customer,
    Heartbeat,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    SpendCounter,
    SpendLimit,
    Subscription,
    UsageCounter,
    UsageEvent,
)
from billing.staff import AUDITOR, FINANCE
from plans.models import Meter, Plan, PlanVersion, Price
from tests.factories import (
    ApiKeyFactory,
    AssetFactory,
    CustomerFactory,
    MeterFactory,
    PlanFactory,
    PlanVersionFactory,
    PriceFactory,
)
from wallets.models import (
    Account,
    Asset,
    AssetRate,
    Grant,
    Hold,
    HoldAllocation,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
)

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


@dataclass
class World:
    usd: Asset
    credits: Asset
    tokens: Asset
    rate: AssetRate
    customer: Customer
    usd_account: Account
    credits_account: Account
    revenue: Account
    paid_grant: Grant
    promo_grant: Grant
    transaction: LedgerTransaction
    entry: LedgerEntry
    hold: Hold
    allocation: HoldAllocation
    idempotency: IdempotencyRecord
    meter: Meter
    plan: Plan
    version: PlanVersion
    price: Price
    subscription: Subscription
    event: UsageEvent
    spend_limit: SpendLimit
    invoice: Invoice
    line: InvoiceLine
    charge_item: ChargeItem
    api_key: ApiKey
    heartbeat: Heartbeat
    counter: UsageCounter
    spend_counter: SpendCounter
    alert: Alert
    sequence: InvoiceSequence

    def rows(self) -> list:
        return [
            self.usd,
            self.rate,
            self.customer.wallet,
            self.usd_account,
            self.paid_grant,
            self.transaction,
            self.entry,
            self.hold,
            self.allocation,
            self.idempotency,
            self.meter,
            self.plan,
            self.version,
            self.price,
            self.customer,
            self.subscription,
            self.event,
            self.spend_limit,
            self.invoice,
            self.line,
            self.charge_item,
            self.api_key,
            self.heartbeat,
            self.counter,
            self.spend_counter,
            self.alert,
            self.sequence,
        ]


@pytest.fixture
def world(db) -> World:
    usd = Asset.objects.get(code="USD")
    credits = AssetFactory(code="credits")
    tokens = AssetFactory(code="tokens")
    rate = AssetRate.objects.create(asset=credits, currency=usd, rate=Decimal("0.01"))
    customer = CustomerFactory(external_id="acme", name="Acme Corp", email="billing@acme.test")
    wallet = customer.wallet
    usd_account = Account.objects.create(
        wallet=wallet, asset=usd, posted=Decimal("20.000000000000"), held=Decimal("4")
    )
    credits_account = Account.objects.create(wallet=wallet, asset=credits, posted=Decimal("980"))
    revenue = Account.objects.create(system_code=Account.System.ADJUSTMENTS, asset=usd)
    paid_grant = Grant.objects.create(
        id="grt_paid",
        wallet=wallet,
        asset=usd,
        purpose=Grant.Purpose.PAID,
        priority=10,
        amount=Decimal("20"),
        remaining=Decimal("20"),
        held=Decimal("4"),
        cost=Money("20.00", "USD"),
        reference="top-up 1",
    )
    promo_grant = Grant.objects.create(
        id="grt_promo",
        wallet=wallet,
        asset=credits,
        purpose=Grant.Purpose.PROMOTIONAL,
        priority=1,
        amount=Decimal("1000"),
        remaining=Decimal("980"),
        expires_at=datetime(2026, 1, 31, tzinfo=UTC),
    )
    transaction = LedgerTransaction.objects.create(
        wallet=wallet, kind=LedgerTransaction.Kind.GRANT, reference="top-up 1"
    )
    entry = LedgerEntry.objects.create(
        transaction=transaction,
        account=usd_account,
        asset=usd,
        grant=paid_grant,
        amount=Decimal("20"),
    )
    LedgerEntry.objects.create(
        transaction=transaction, account=revenue, asset=usd, amount=Decimal("-20")
    )
    hold = Hold.objects.create(wallet=wallet, expires_at=JAN + timedelta(minutes=10))
    allocation = HoldAllocation.objects.create(
        hold=hold, grant=paid_grant, asset=usd, amount=Decimal("4")
    )
    idempotency = IdempotencyRecord.objects.create(
        scope="events", key="idem-1", request_hash="a" * 64, response={"ok": True}
    )
    meter = MeterFactory(llm_tokens=True, name="LLM tokens", unit=tokens)
    plan = PlanFactory(code="pro", name="Pro")
    version = PlanVersionFactory(plan=plan, base_fee=Decimal("49"))
    price = PriceFactory(plan_version=version, meter=meter, graduated=True)
    subscription = Subscription.objects.create(
        customer=customer,
        plan_version=version,
        started_at=JAN,
        current_period_start=JAN,
        current_period_end=FEB,
    )
    event = UsageEvent.objects.create(
        event_id="evt_1",
        customer=customer,
        subscription=subscription,
        meter=meter,
        quantity=Decimal("700000"),
        timestamp=JAN + timedelta(days=4),
        status=UsageEvent.Status.ACCEPTED,
        period_start=JAN,
        included=Decimal("200000"),
        billable=Decimal("500000"),
        amount=Decimal("1.000000000000"),
        asset=usd,
        ledger_transaction=transaction,
    )
    spend_limit = SpendLimit.objects.create(
        customer=customer, amount=Decimal("100"), alert_thresholds=[50, 80]
    )
    invoice = Invoice.objects.create(
        customer=customer,
        subscription=subscription,
        currency=usd,
        period_start=JAN,
        period_end=FEB,
        subtotal=Decimal("49"),
        total=Decimal("49"),
    )
    line = InvoiceLine.objects.create(
        invoice=invoice,
        kind=InvoiceLine.Kind.BASE_FEE,
        description="Pro, January 2026",
        quantity=1,
        unit_price=Decimal("49"),
        amount=Decimal("49"),
        amount_exact=Decimal("49"),
        period_start=JAN,
        period_end=FEB,
    )
    # lines are written while the invoice is a draft; finalized, it is immutable
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.FINALIZED, number="INV-2026-000001"
    )
    invoice.refresh_from_db()
    charge_item = ChargeItem.objects.create(
        customer=customer,
        subscription=subscription,
        kind=ChargeItem.Kind.PRORATION,
        description="2 seats from 2026-01-16",
        currency=usd,
        quantity=Decimal("2"),
        unit_price=Decimal("20"),
        amount=Decimal("20.645161290323"),
        period_start=JAN + timedelta(days=15),
        period_end=FEB,
        source="sub:1:seats:2026-01-16",
    )
    api_key = ApiKeyFactory(name="Production", scopes=["events", "read"])
    heartbeat = Heartbeat.objects.create(name="worker", hostname="w1", last_seen_at=JAN, runs=3)
    counter = UsageCounter.objects.create(
        subscription=subscription,
        period_start=JAN,
        period_end=FEB,
        price=price,
        quantity=Decimal("1500000"),
        included=Decimal("1000000"),
        billable=Decimal("500000"),
        amount=Decimal("1"),
        events=2,
    )
    spend_counter = SpendCounter.objects.create(
        customer=customer, window="period", window_start=JAN, window_end=FEB, spent=Decimal("1")
    )
    alert = Alert.objects.create(
        customer=customer,
        kind=Alert.Kind.THRESHOLD,
        threshold=50,
        window_start=JAN,
        limit_amount=Decimal("2"),
        spent=Decimal("1"),
        currency="USD",
        event_id="evt_1",
    )
    sequence = InvoiceSequence.objects.create(prefix="INV", year=2026, last=1)
    return World(
        usd=usd,
        credits=credits,
        tokens=tokens,
        rate=rate,
        customer=customer,
        usd_account=usd_account,
        credits_account=credits_account,
        revenue=revenue,
        paid_grant=paid_grant,
        promo_grant=promo_grant,
        transaction=transaction,
        entry=entry,
        hold=hold,
        allocation=allocation,
        idempotency=idempotency,
        meter=meter,
        plan=plan,
        version=version,
        price=price,
        subscription=subscription,
        event=event,
        spend_limit=spend_limit,
        invoice=invoice,
        line=line,
        charge_item=charge_item,
        api_key=api_key,
        heartbeat=heartbeat,
        counter=counter,
        spend_counter=spend_counter,
        alert=alert,
        sequence=sequence,
    )


def _staff(django_user_model, username: str, group: str):
    user = django_user_model.objects.create_user(
        username=username, password="pw-not-used", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-not-used")


@pytest.fixture
def finance_user(db, django_user_model):
    return _staff(django_user_model, "fiona", FINANCE)


@pytest.fixture
def auditor_user(db, django_user_model):
    return _staff(django_user_model, "audrey", AUDITOR)


@pytest.fixture
def superuser_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def finance_client(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def auditor_client(client, auditor_user):
    client.force_login(auditor_user)
    return client


class _FormReader(HTMLParser):
    """Collects what a browser would submit from the page's main form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(
                a.get("value") or ("on" if kind == "checkbox" else "")
            )
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self._text = []

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data[self._textarea] = ["".join(self._text).lstrip("\n")]
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)


def form_data(html: str) -> dict[str, list[str]]:
    reader = _FormReader()
    reader.feed(html)
    return {k: v for k, v in reader.data.items() if k not in ("csrfmiddlewaretoken", "q")}


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[list[str]]]:
    """Every <table> of ``html`` as rows of cell texts."""
    reader = _TableReader()
    reader.feed(html)
    return reader.tables


def table_headed(html: str, first_header: str) -> list[list[str]]:
    """The one table of ``html`` whose first header cell is ``first_header``."""
    found = [t for t in table_rows(html) if t and t[0] and t[0][0] == first_header]
    assert len(found) == 1, f"{len(found)} tables headed {first_header!r}"
    return found[0]
