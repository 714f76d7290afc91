"""The staff groups of the back office.

``Finance`` edits (customers, plans, wallets through their services, invoices, the schedule);
``Auditor`` reads everything and changes nothing. Ledger entries, ledger transactions, usage
events and idempotency records are written only by services, so no group may add, change or
delete them. Created by a migration and kept current after every ``migrate`` (new models get
their permissions too)."""

from __future__ import annotations

FINANCE = "Finance"
AUDITOR = "Auditor"

APP_LABELS = ("billing", "plans", "wallets", "django_celery_beat")

# models whose rows only services write
SERVICE_WRITTEN = {
    ("wallets", "ledgerentry"),
    ("wallets", "ledgertransaction"),
    ("wallets", "account"),
    ("wallets", "holdallocation"),
    ("wallets", "idempotencyrecord"),
    ("billing", "usageevent"),
    ("billing", "heartbeat"),
    ("billing", "chargeitem"),
    ("billing", "usagecounter"),
    ("billing", "spendcounter"),
    ("billing", "alert"),
    ("billing", "invoicesequence"),
}

# models Finance may delete (configuration; everything with money history is PROTECTed anyway)
FINANCE_DELETES = {
    ("billing", "apikey"),
    ("billing", "spendlimit"),
    ("wallets", "assetrate"),
    ("django_celery_beat", "periodictask"),
    ("django_celery_beat", "intervalschedule"),
    ("django_celery_beat", "crontabschedule"),
    ("django_celery_beat", "clockedschedule"),
    ("django_celery_beat", "solarschedule"),
}


def staff_groups_sync(apps) -> None:
    """Create the groups and give them exactly their permissions. Idempotent."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    finance, _ = Group.objects.get_or_create(name=FINANCE)
    auditor, _ = Group.objects.get_or_create(name=AUDITOR)
    perms = Permission.objects.filter(content_type__app_label__in=APP_LABELS).select_related(
        "content_type"
    )
    finance_perms, auditor_perms = [], []
    for perm in perms:
        model = (perm.content_type.app_label, perm.content_type.model)
        action = perm.codename.split("_", 1)[0]
        if action == "view":
            finance_perms.append(perm)
            auditor_perms.append(perm)
        elif model in SERVICE_WRITTEN:
            continue
        elif action in ("add", "change") or (action == "delete" and model in FINANCE_DELETES):
            finance_perms.append(perm)
        elif action not in ("add", "change", "delete"):  # custom permissions, e.g. actions
            finance_perms.append(perm)
    finance.permissions.set(finance_perms)
    auditor.permissions.set(auditor_perms)
