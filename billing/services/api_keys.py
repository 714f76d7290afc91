"""Making, revoking and authenticating with API keys. The secret is returned once and only its
SHA-256 is stored; a use of a key is recorded on the key (``last_used_at``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from billing.models import ApiKey
from billing.selectors.api_keys import KEY_PREFIX, api_key_active, api_key_hash
from core.errors import ValidationFailed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

SCOPES: tuple[str, ...] = tuple(ApiKey.Scope.values)
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length

# last_used_at is a convenience for staff, not an audit trail: write it at most once a minute
# per key so a busy key does not turn into a hot row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_create(
    *, name: str, scopes: Iterable[str], created_by: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """Make a key. Returns the row and the secret, which is shown once and never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A key needs a name.", errors={"name": ["This field is required."]})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"A key's name has at most {NAME_MAX_LENGTH} characters.",
            errors={"name": [f"Ensure this field has no more than {NAME_MAX_LENGTH} characters."]},
        )
    wanted = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ValidationFailed(
            f"Unknown scope(s) {', '.join(unknown)}; scopes are {', '.join(SCOPES)}.",
            errors={"scopes": [f"Unknown scope: {s}." for s in unknown]},
        )
    if not wanted:
        raise ValidationFailed(
            f"A key needs at least one scope among {', '.join(SCOPES)}.",
            errors={"scopes": ["At least one scope is required."]},
        )
    # 48 bits of prefix (only an identifier: collisions are practically impossible and would
    # only fail the insert) and 256 bits of secret.
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(raw),
        scopes=wanted,
        created_by=created_by,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke at once; the key fails on its next request. Revoking twice keeps the first
    revocation time."""
    ApiKey.objects.filter(Q(revoked_at__isnull=True), pk=key.pk).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key whose secret is ``raw`` (``api_key_active``), with this use recorded;
    None for anything else."""
    key = api_key_active(raw)
    if key is None:
        return None
    key.last_used_at = api_key_touch(key_id=key.pk, last_used_at=key.last_used_at)
    return key


def api_key_touch(*, key_id: int, last_used_at: datetime | None) -> datetime | None:
    """Record a use of the key (at most once a minute); returns its ``last_used_at``."""
    now = timezone.now()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return last_used_at
    # conditional, so concurrent requests of one key write the row at most once
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION),
        pk=key_id,
    ).update(last_used_at=now)
    return now
