from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from billing.models import ApiKey
from billing.selectors.api_keys import api_key_hash
from wallets.errors import ValidationFailed

SCOPES = tuple(ApiKey.Scope.values)


def api_key_create(*, name: str, scopes: list[str], created_by=None) -> tuple[ApiKey, str]:
    """Make a key. Returns the row and the secret, which is shown once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("A key needs a name of 1–200 characters.", errors={"name": ["Required."]})
    wanted = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValidationFailed(
            f"Scopes must be among {', '.join(SCOPES)}.",
            errors={"scopes": [f"Unknown scope: {s}" for s in unknown] or ["At least one scope."]},
        )
    prefix = secrets.token_hex(4)
    raw = f"bf_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            key_hash=api_key_hash(raw),
            scopes=wanted,
            created_by=created_by,
        )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key
