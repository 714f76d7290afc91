"""Standard Webhooks signatures (https://www.standardwebhooks.com, docs/webhooks.md).

A message is signed with each of an endpoint's live secrets: HMAC-SHA256 over
``<webhook-id>.<webhook-timestamp>.<body>``, base64, as ``v1,<signature>``; several
signatures (a secret being rotated and its successor) are separated by spaces in one
``webhook-signature`` header. Secrets are ``whsec_`` and the base64 of 32 random bytes.
Pure functions: nothing here reads the database or the clock."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from core.errors import ValidationFailed

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # the specification asks for at least 24
MIN_SECRET_BYTES = 24


def secret_generate() -> str:
    """A new endpoint secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; ``ValidationFailed`` for anything else (another
    prefix, bad base64, fewer than 24 bytes)."""
    problem = f"A secret is {SECRET_PREFIX!r} and the base64 of at least 24 random bytes."
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValidationFailed("Invalid webhook secret.", errors={"secret": [problem]})
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("Invalid webhook secret.", errors={"secret": [problem]}) from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValidationFailed("Invalid webhook secret.", errors={"secret": [problem]})
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with one secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    message_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]
) -> dict[str, str]:
    """The three headers of a delivery: ``webhook-id``, ``webhook-timestamp`` (Unix seconds)
    and ``webhook-signature`` with one signature per live secret, in the order given."""
    if not secrets_:
        raise ValueError("a message is signed with at least one secret")
    if not message_id or any(c in message_id for c in " .,"):
        raise ValueError("a message id has no space, dot or comma")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_
        ),
    }
