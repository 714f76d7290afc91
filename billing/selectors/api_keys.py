"""Reads of API keys: the per-request lookup of an active key and lookups for the commands."""

from __future__ import annotations

import hashlib

from billing.models import ApiKey
from core.db import hot_cursor

KEY_PREFIX = "bf_"
# A key is "bf_<12 hex>_<43 url-safe chars>" (about 60 characters); anything much longer is
# not a key and is refused before it is hashed or reaches the database.
KEY_MAX_LENGTH = 200


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_plausible(raw: str) -> bool:
    """Shaped like a key: anything else is refused before it is hashed or looked up."""
    return raw.startswith(KEY_PREFIX) and len(raw) <= KEY_MAX_LENGTH and raw.isascii()


def api_key_active(raw: str) -> ApiKey | None:
    """The active key whose secret is ``raw``, or None. Revoked keys fail at once (no cache).

    Keys are 256-bit random, so looking the SHA-256 hash up through its unique index leaks
    nothing useful through timing."""
    if not api_key_plausible(raw):
        return None
    # every request asks this: a prepared statement rather than an ORM query
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT id, name, prefix, scopes, last_used_at FROM billing_apikey "
            "WHERE key_hash = %s AND revoked_at IS NULL",
            [api_key_hash(raw)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return ApiKey.from_db(
        "default", ["id", "name", "prefix", "scopes", "last_used_at", "revoked_at"], [*row, None]
    )


def api_key_get_by_prefix(prefix: str) -> ApiKey | None:
    """The key (active or revoked) with this prefix. Accepts the bare prefix shown in the
    admin (``1a2b3c4d5e6f``) or the start of the key itself (``bf_1a2b3c4d5e6f_…``)."""
    prefix = prefix.strip()
    if prefix.startswith(KEY_PREFIX):
        prefix = prefix[len(KEY_PREFIX) :].split("_", 1)[0]
    if not prefix:
        return None
    return ApiKey.objects.filter(prefix=prefix).first()
