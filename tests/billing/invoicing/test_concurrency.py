"""Gapless numbering and idempotent finalization under real concurrency (threads, each with
its own PostgreSQL connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from billing.invoicing import CreditNoteExceedsInvoice, credit_note_create, invoice_finalize
from billing.models import Invoice, InvoiceSequence
from billing.periodic import invoices_finalize_due

from .conftest import T0

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (a barrier releases them together); results or exceptions, in
    order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


def test_twenty_concurrent_finalizations_get_numbers_1_to_20(customer, make_draft):
    drafts = [make_draft(customer) for _ in range(20)]
    results = in_threads([lambda pk=d.pk: invoice_finalize(invoice_id=pk, now=T0) for d in drafts])
    assert all(isinstance(r, Invoice) for r in results), results
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 21)]
    assert InvoiceSequence.objects.get(prefix="INV", year=2026).last == 20


def test_one_invoice_finalized_concurrently_gets_one_number(customer, make_draft):
    draft = make_draft(customer)
    results = in_threads([lambda: invoice_finalize(invoice_id=draft.pk, now=T0)] * 8)
    assert {r.number for r in results} == {"INV-2026-000001"}
    assert InvoiceSequence.objects.get(prefix="INV", year=2026).last == 1


def test_the_grace_job_run_concurrently_finalizes_each_draft_once(customer, make_draft):
    drafts = [make_draft(customer, now=T0) for _ in range(12)]
    later = T0 + timedelta(days=2)
    results = in_threads([lambda: invoices_finalize_due(now=later)] * 4)
    finalized = sorted(pk for ids in results for pk in ids)
    assert finalized == sorted(d.pk for d in drafts)  # each exactly once across the runs
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 13)]


def test_concurrent_credit_notes_never_exceed_the_invoice(customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer, ["100"]).pk, now=T0)
    # 119.00 in total: five credits of 30 cannot all fit, only three can
    results = in_threads(
        [
            lambda: credit_note_create(
                invoice_id=invoice.pk, lines=[{"description": "x", "amount": "30"}], reason="r"
            )
        ]
        * 5
    )
    notes = [r for r in results if isinstance(r, Invoice)]
    refused = [r for r in results if isinstance(r, CreditNoteExceedsInvoice)]
    assert (len(notes), len(refused)) == (3, 2)
    assert sorted(n.number for n in notes) == ["CN-2026-000001", "CN-2026-000002", "CN-2026-000003"]
    credited = sum((n.subtotal for n in notes), Decimal(0))
    assert credited == Decimal("-90")
