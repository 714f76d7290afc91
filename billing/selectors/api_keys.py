from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone

from billing.models import ApiKey

# last_used_at is a convenience for staff, not an audit trail: write it at most once a minute
# per key so a busy key does not turn into a hot row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key whose secret is ``raw``, or None. Revoked keys fail at once."""
    if not raw.startswith("bf_") or len(raw) > 200:
        return None
    key = (
        ApiKey.objects.filter(key_hash=api_key_hash(raw), revoked_at__isnull=True)
        .only("id", "name", "prefix", "scopes", "last_used_at", "revoked_at")
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
