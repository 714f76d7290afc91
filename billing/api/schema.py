"""OpenAPI (drf-spectacular) additions: the bearer security scheme of API keys and the problem
details every operation can answer with.

Imported by :mod:`billing.api.auth`, so the extension is registered whenever the
authentication class exists. This module must not import :mod:`billing.api.auth` (the
extension names its target by dotted path)."""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

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

_PROBLEM_DESCRIPTIONS = {
    "400": "Invalid or malformed request (`invalid`, `malformed`).",
    "401": "Missing, invalid or revoked API key (`unauthenticated`).",
    "403": "The API key lacks the scope (`forbidden`).",
    "404": "No such resource (`not_found`).",
    "413": "Request body too large (`too_large`).",
    "415": "The body is not JSON (`unsupported_media_type`).",
    "503": "The database is unavailable; nothing was written (`unavailable`).",
}


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


def problem_responses_postprocess(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a ``Problem`` component, and on every operation the
    error responses it can give that the view did not document itself."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = []
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append("400")
            secured = any(SECURITY_SCHEME_NAME in req for req in operation.get("security", []))
            if secured:
                statuses += ["401", "403"]
            if "{" in path:
                statuses.append("404")
            if "requestBody" in operation:
                statuses += ["413", "415"]
            statuses.append("503")
            responses = operation["responses"]
            for status in statuses:
                responses.setdefault(
                    status,
                    {
                        "description": _PROBLEM_DESCRIPTIONS[status],
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": dict(ref)}},
                    },
                )
    return result
