"""The API's idempotency (API.md Conventions): a POST with an ``Idempotency-Key`` header, or
with a client ``id`` for objects that have one, is done once. A repeat with the same body
returns the original status and body with ``Idempotent-Replayed: true``; the same key with a
different body is a 409 ``idempotency_conflict``. The key is stored in the same transaction
as the effect."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from rest_framework.response import Response

from wallets.errors import ValidationFailed
from wallets.services.idempotency import idempotency_claim, idempotency_store

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def idempotency_key(request, client_id: object = None) -> str | None:
    if isinstance(client_id, str) and client_id:
        return client_id
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key.strip() or len(key) > 255:
        raise ValidationFailed(
            f"The {HEADER} header must be 1–255 characters.", errors={HEADER: ["1–255 characters."]}
        )
    return key


def idempotent(
    request, *, scope: str, key: str | None, handler: Callable[[], Response]
) -> Response:
    """Run ``handler`` once per ``(scope, key)``; replay its response afterwards."""
    if key is None:
        return handler()
    body = request.data if isinstance(request.data, dict | list) else {}
    with transaction.atomic():
        slot = idempotency_claim(
            scope=f"api.{scope}", key=key, request={"path": request.path, "body": body}
        )
        if slot.replay:
            return Response(slot.result, status=slot.status_code, headers={REPLAYED: "true"})
        response = handler()
        stored = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        idempotency_store(slot, result=stored, status_code=response.status_code)
    return response
