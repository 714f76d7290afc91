"""OpenAPI (drf-spectacular) additions: the bearer security scheme of API keys, and the schema
class that documents the problem details every operation can answer with.

``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` names the schema class, so this module (and with it
the authentication extension) is loaded before any operation is described. It imports
:mod:`billing.api.auth` only inside functions: the extension names its target by dotted path,
and the authentication class is loaded while DRF's views are."""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

SECURITY_SCHEME_NAME = "ApiKeyAuth"
PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "RFC 9457 problem details. `code` is a stable machine string; `errors` maps a field "
        "(`prices[0].tiers[1].up_to`) to its messages. Some problems add members, e.g. the "
        "declined `event`."
    ),
    "required": ["type", "title", "status", "detail", "code", "errors"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "additionalProperties": True,
}

PROBLEM_REF = "#/components/schemas/Problem"

# Every problem status the API answers, and what it means. The schema class below decides
# which of them each operation can give.
PROBLEM_DESCRIPTIONS = {
    400: (
        "Invalid or malformed request (`invalid`, `malformed`): a body, parameter or header "
        "that does not validate, or a value out of range."
    ),
    401: "Missing, invalid or revoked API key (`unauthenticated`).",
    402: (
        "Declined; nothing was charged (`insufficient_funds`, `spend_limit_exceeded`, "
        "`negative_balance`). For an event the problem's `event` member is the declined event "
        "as recorded."
    ),
    403: "The API key lacks the scope (`forbidden`).",
    404: "No such resource, or an unknown object named in the request (`not_found`).",
    409: (
        "Conflicts with an earlier request or with the object's state: "
        "`idempotency_conflict` (the key or id was used with another body), or a state that "
        "forbids the action (`hold_not_pending`, `subscription_ended`, `invoice_paid`, …)."
    ),
    413: "Request body too large (`too_large`).",
    415: "The body is not JSON (`unsupported_media_type`).",
    422: (
        "Well-formed usage that cannot be charged (`unknown_customer`, `unknown_meter`, "
        "`no_active_subscription`, `period_closed`, `invalid_timestamp`, `amount_too_large`: "
        "its charge or its period's totals would reach 10^18)."
    ),
    503: "The database is unavailable; nothing was written (`unavailable`).",
}

# Every POST is done once per key: the header's key (scoped to the API key that sends it) or
# the object's client id (billing.api.idempotency).
IDEMPOTENCY_KEY: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "Makes the POST safe to retry: a repeat with the same body returns the original "
        "status and body with `Idempotent-Replayed: true`; the same key with another body is "
        "a 409 `idempotency_conflict`. A key belongs to the API key that sent it. Objects "
        "with a client `id` (events, holds, grants) use that id instead."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
REPLAYED_HEADER: dict[str, Any] = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

# Query parameters that name an object: an unknown one is a 404.
REFERENCE_PARAMETERS = frozenset({"customer"})


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": PROBLEM_DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def problem_statuses(
    operation: dict[str, Any], *, method: str, scoped: bool, extra: tuple[int, ...] = ()
) -> list[int]:
    """The problem statuses an operation can answer, from what it has: input (400), the
    API key (401) and a scope (403), a path parameter or a query parameter naming an object
    (404), a POST (409: every POST is idempotent by a key or a client id), a body (413,
    415), the database (503); and ``extra``, what its view declares (402, 422, a 404 for an
    object named in the body, a 409 of another method)."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = set(extra)
    if parameters or has_body or method == "POST":
        statuses.add(400)
    if any(SECURITY_SCHEME_NAME in req for req in operation.get("security", [])):
        statuses.add(401)
        if scoped:
            statuses.add(403)
    if any(
        p.get("in") == "path" or (p.get("in") == "query" and p.get("name") in REFERENCE_PARAMETERS)
        for p in parameters
    ):
        statuses.add(404)
    if method == "POST":
        statuses.add(409)
    if has_body:
        statuses |= {413, 415}
    statuses.add(503)
    return sorted(statuses)


class BillfoldAutoSchema(AutoSchema):
    """drf-spectacular's schema class with the problem responses each operation can give
    (``problem_statuses``), as ``Problem`` (RFC 9457) under ``application/problem+json``.

    A view adds the statuses its rules cannot see in a ``problems`` attribute, by method:
    ``problems = {"post": (402, 422)}``. A response the view documents itself stays."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        self.registry.register_on_missing(
            ResolvedComponent(
                name="Problem",
                type=ResolvedComponent.SCHEMA,
                schema=copy.deepcopy(PROBLEM_SCHEMA),
                object="Problem",
            )
        )
        from billing.api.auth import required_scope  # (auth imports this module)

        method = self.method.lower()
        statuses = problem_statuses(
            operation,
            method=self.method,
            scoped=required_scope(self.method, self.view) is not None,
            extra=tuple(getattr(self.view, "problems", {}).get(method, ())),
        )
        responses = operation.setdefault("responses", {})
        for status in statuses:
            responses.setdefault(str(status), problem_response(status))
        if self.method == "POST":
            operation.setdefault("parameters", []).append(copy.deepcopy(IDEMPOTENCY_KEY))
            for status, response in responses.items():
                if status.startswith("2") or status == "402":
                    response.setdefault("headers", {}).update(copy.deepcopy(REPLAYED_HEADER))
        return operation


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "billing.api.auth.ApiKeyAuthentication"
    name = SECURITY_SCHEME_NAME

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bf_<prefix>_<secret>",
            "description": (
                "An API key: `Authorization: Bearer <key>`. Scopes: `events` (events, holds), "
                "`read` (every GET), `manage` (everything else). Make one in the admin or with "
                "`manage.py create_api_key --name NAME --scopes events,read,manage`."
            ),
        }
