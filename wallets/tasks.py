"""Celery tasks of the wallets app: thin wrappers over services, safe to run twice."""

import logging

from celery import shared_task

from wallets.selectors import ledger_reconcile
from wallets.services import grants_expire_due, holds_expire_due

logger = logging.getLogger(__name__)


@shared_task(name="wallets.reconcile", acks_late=True)
def reconcile() -> int:
    """Check the ledger; log every drift as an error. Returns how many were found."""
    drifts = ledger_reconcile()
    for drift in drifts:
        logger.error("ledger drift: %s", drift)
    return len(drifts)


@shared_task(name="wallets.expire_grants", acks_late=True)
def expire_grants() -> int:
    return len(grants_expire_due())


@shared_task(name="wallets.expire_holds", acks_late=True)
def expire_holds() -> int:
    return len(holds_expire_due())
