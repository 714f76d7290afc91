from __future__ import annotations

from django.db.models import QuerySet

from billing.models import Customer
from core.errors import NotFound


def customer_get(*, external_id: str) -> Customer:
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise NotFound(
            f"No customer with external_id '{external_id}'.",
            errors={"customer": ["Unknown customer."]},
        )
    return customer


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()
