"""Idempotency kept in the database: a key claimed in the same transaction as its effect, with
a hash of the request. A replay returns the stored result; the same key with another request
is refused (``IdempotencyConflict``). Concurrent callers with one key serialize on the unique
index: the second waits for the first to commit, then replays its result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from core.db import hot_cursor
from core.errors import IdempotencyConflict, ValidationFailed
from core.jsontext import orjson_exact
from wallets.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


PLAIN_TYPES = frozenset({str, int, bool, type(None)})


class _NotPlain(TypeError):
    """A float, whose canonical JSON only the standard library writes (``request_hash``)."""


def _canonical(value: Any, *, floats: bool = True) -> Any:
    if type(value) in PLAIN_TYPES:  # the common case first: the checks below are slower
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, floats=floats) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v, floats=floats) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if not floats and isinstance(value, float):
        raise _NotPlain("float")
    return value


def request_hash(request: Mapping[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON: keys sorted, no spaces, ASCII only
    (``json.dumps(sort_keys=True, separators=(",", ":"), default=str)``), which stored
    hashes were made of. orjson writes the same bytes several times faster for what it
    takes (``orjson_exact``: text, integers of 64 bits, booleans, null, lists, objects).
    Floats (which it may spell differently), other types, integers beyond 64 bits and text
    beyond printable ASCII (which it does not escape) take the standard library."""
    try:
        body = orjson_exact(_canonical(request, floats=False), sort_keys=True)
    except _NotPlain:
        body = None
    # the standard library escapes everything beyond printable ASCII, DEL too
    if body is None or not body.isascii() or b"\x7f" in body:
        body = json.dumps(
            _canonical(request), sort_keys=True, separators=(",", ":"), default=str
        ).encode()
    return hashlib.sha256(body).hexdigest()


@dataclass
class IdempotencySlot:
    record_id: int
    replay: bool
    status_code: int
    result: dict[str, Any]


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            "The idempotency key must be 1–255 characters.",
            errors={"idempotency_key": ["1–255 characters."]},
        )
    return key


def idempotency_claim(
    *, scope: str, key: str, request: Mapping[str, Any], legacy_scope: str | None = None
) -> IdempotencySlot:
    """Claim ``key`` for this transaction or find its earlier result. Must run inside
    ``transaction.atomic()``: the claim commits or rolls back with the effect.

    ``legacy_scope`` names where the key was stored before ``scope`` was narrowed: a record
    there with the same key and request is replayed (and copied into ``scope``, so the
    next replay finds it directly); one with another request is no conflict here."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("idempotency_claim must run inside transaction.atomic()")
    check_key(key)
    digest = request_hash(request)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO wallets_idempotencyrecord
                (scope, key, request_hash, status_code, response, created_at)
            VALUES (%s, %s, %s, 0, '{}'::jsonb, now())
            ON CONFLICT (scope, key) DO NOTHING
            RETURNING id
            """,
            [scope, key, digest],
        )
        row = cursor.fetchone()
    if row is not None:
        slot = IdempotencySlot(record_id=row[0], replay=False, status_code=0, result={})
        if legacy_scope is not None:
            return _legacy_replay(slot, scope=legacy_scope, key=key, digest=digest)
        return slot
    record = IdempotencyRecord.objects.get(scope=scope, key=key)
    if record.request_hash != digest:
        raise IdempotencyConflict(
            f"The key '{key}' was already used with a different request.",
            errors={"idempotency_key": ["Already used with a different request."]},
        )
    return IdempotencySlot(
        record_id=record.pk, replay=True, status_code=record.status_code, result=record.response
    )


def _legacy_replay(slot: IdempotencySlot, *, scope: str, key: str, digest: str) -> IdempotencySlot:
    legacy = (
        IdempotencyRecord.objects.filter(scope=scope, key=key, request_hash=digest)
        .exclude(status_code=0)
        .values_list("status_code", "response")
        .first()
    )
    if legacy is None:
        return slot
    status_code, result = legacy
    idempotency_store(slot, result=result, status_code=status_code)
    return IdempotencySlot(
        record_id=slot.record_id, replay=True, status_code=status_code, result=result
    )


def idempotency_store(
    slot: IdempotencySlot, *, result: dict[str, Any], status_code: int = 200
) -> None:
    """Store the result of a claimed key (a prepared statement; inside ``hot_pipeline`` it
    goes in the same round trip as the effect it records)."""
    with hot_cursor() as cursor:
        cursor.execute(
            "UPDATE wallets_idempotencyrecord SET response = %s, status_code = %s WHERE id = %s",
            [Jsonb(result), status_code, slot.record_id],
        )
