"""The API's idempotency (docs/api.md Conventions): a POST with an ``Idempotency-Key`` header, or
with a client ``id`` for objects that have one, is done once. A repeat with the same body
returns the original status and body with ``Idempotent-Replayed: true``; the same key with a
different body is a 409 ``idempotency_conflict``. The key is stored in the same transaction
as the effect.

An ``Idempotency-Key`` header belongs to the API key that sent it: its record's scope names
the API key (``api.<route>@key<id>``), so two integrations that pick the same value never
see each other's answers nor collide. Client object ids (a grant's ``id``) stay global.
Header keys stored before they were scoped (scope ``api.<route>``, no API key) are still
replayed to a request with the same key and the same body, so a retry across the upgrade
is done once; any other request claims the key afresh for its own API key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from rest_framework.response import Response

from core.errors import ValidationFailed
from wallets.services.idempotency import idempotency_claim, idempotency_store

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request's idempotency key: ``value`` as the client sent it and the API key it
    belongs to (``api_key_id``; None for a client object id, which is global)."""

    value: str
    api_key_id: int | None = None

    def scope(self, route: str) -> str:
        """The record's scope: the route's, and for a header key the API key's."""
        if self.api_key_id is None:
            return f"api.{route}"
        return f"api.{route}@key{self.api_key_id}"


def idempotency_key(request, client_id: object = None) -> RequestKey | None:
    """The request's key: the client object id if it has one, else the ``Idempotency-Key``
    header scoped to the request's API key, else None (not idempotent)."""
    if isinstance(client_id, str) and client_id:
        return RequestKey(client_id)
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key.strip() or len(key) > 255:
        raise ValidationFailed(
            f"The {HEADER} header must be 1–255 characters.", errors={HEADER: ["1–255 characters."]}
        )
    # every API request is authenticated by an API key (``ApiKeyAuthentication``)
    return RequestKey(key, api_key_id=getattr(request.auth, "pk", None))


def idempotent(
    request, *, scope: str, key: RequestKey | None, handler: Callable[[], Response]
) -> Response:
    """Run ``handler`` once per ``(scope, key)``; replay its response afterwards."""
    if key is None:
        return handler()
    body = request.data if isinstance(request.data, dict | list) else {}
    record_scope = key.scope(scope)
    with transaction.atomic():
        slot = idempotency_claim(
            scope=record_scope,
            key=key.value,
            request={"path": request.path, "body": body},
            # header keys stored before they belonged to an API key
            legacy_scope=None if key.api_key_id is None else f"api.{scope}",
        )
        if slot.replay:
            return Response(slot.result, status=slot.status_code, headers={REPLAYED: "true"})
        response = handler()
        stored = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        idempotency_store(slot, result=stored, status_code=response.status_code)
    return response
