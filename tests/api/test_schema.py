"""The OpenAPI document (GET /api/v1/schema) and its offline Swagger UI (GET /api/v1/docs)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from billing.api.schema import PROBLEM_DESCRIPTIONS, PROBLEM_SCHEMA, problem_statuses

pytestmark = pytest.mark.django_db

SCHEMA = "/api/v1/schema"
DOCS = "/api/v1/docs"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "bf_<prefix>_<secret>",
    "description": (
        "An API key: `Authorization: Bearer <key>`. Scopes: `events` (events, holds), "
        "`read` (every GET), `manage` (everything else). Make one in the admin or with "
        "`manage.py create_api_key --name NAME --scopes events,read,manage`."
    ),
}


def test_schema_is_an_openapi_3_document_without_a_key():
    response = APIClient().get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    document = json.loads(response.content)
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] == "Billfold API"
    assert document["components"]["securitySchemes"] == {"ApiKeyAuth": BEARER}
    whoami = document["paths"]["/api/v1/whoami"]["get"]
    assert whoami["security"] == [{"ApiKeyAuth": []}]
    assert whoami["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WhoAmI"
    }
    assert document["components"]["schemas"]["WhoAmI"]["required"] == ["name", "prefix", "scopes"]
    assert SCHEMA not in document["paths"]
    assert DOCS not in document["paths"]


def test_schema_defaults_to_yaml_with_the_same_content():
    as_yaml = APIClient().get(SCHEMA)
    as_json = APIClient().get(SCHEMA, {"format": "json"})
    assert as_yaml.status_code == 200
    assert as_yaml["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert yaml.safe_load(as_yaml.content) == json.loads(as_json.content)


def test_schema_and_docs_ignore_a_bad_authorization_header():
    """They are public: a stale key Swagger UI keeps must not break them. Needs
    SPECTACULAR_SETTINGS["SERVE_AUTHENTICATION"] = [] (the schema views' own authentication;
    None means the API's)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer bf_revoked_or_nonsense")
    assert client.get(SCHEMA, {"format": "json"}).status_code == 200
    docs = client.get(DOCS)
    assert docs.status_code == 200
    assert docs["Content-Type"] == "text/html; charset=utf-8"


def test_docs_render_swagger_ui_from_local_static_files_only():
    response = APIClient().get(DOCS)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.I) == []
    assert 'url: "/api/v1/schema"' in html
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced == [
        f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
        f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/"
        "swagger-ui-standalone-preset.js",
    ]
    for url in referenced:
        found = finders.find(url.removeprefix(settings.STATIC_URL))
        assert found is not None, f"{url} is not a static file collectstatic would collect"
        assert Path(found).stat().st_size > 0
    bundle = Path(finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"))
    assert "SwaggerUIBundle" in bundle.read_text(encoding="utf-8")


def test_docs_do_not_call_the_online_validator():
    """Swagger UI's default validatorUrl sends the schema URL to validator.swagger.io. Needs
    "validatorUrl": None in SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]."""
    html = APIClient().get(DOCS).content.decode()
    settings_json = re.search(r"const swaggerSettings = (\{.*?\});", html, flags=re.S)
    assert settings_json is not None
    assert json.loads(settings_json.group(1)).get("validatorUrl", "default") is None


def test_spectacular_validates_without_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn` must stay clean."""
    out = tmp_path / "schema.yaml"
    stderr = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=stderr)
    assert yaml.safe_load(out.read_text())["openapi"] == "3.0.3"


def _document() -> dict:
    return json.loads(APIClient().get(SCHEMA, {"format": "json"}).content)


PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_schema_class_documents_problem_responses():
    """Needs REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "billing.api.schema.BillfoldAutoSchema"."""
    document = _document()
    validate_schema(document)
    assert document["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    paths = document["paths"]
    whoami = paths["/api/v1/whoami"]["get"]["responses"]
    assert sorted(whoami) == ["200", "401", "503"]  # any valid key: no scope, no 403
    assert whoami["401"]["content"] == PROBLEM
    assert whoami["401"]["description"] == PROBLEM_DESCRIPTIONS[401]
    expected = {
        ("post", "/api/v1/events"): [
            "201",
            "400",
            "401",
            "402",
            "403",
            "409",
            "413",
            "415",
            "422",
            "503",
        ],
        ("get", "/api/v1/events"): ["200", "400", "401", "403", "404", "503"],
        ("get", "/api/v1/invoices"): ["200", "400", "401", "403", "404", "503"],
        ("post", "/api/v1/subscriptions"): [
            "201",
            "400",
            "401",
            "403",
            "404",
            "409",
            "413",
            "415",
            "503",
        ],
        ("patch", "/api/v1/subscriptions/{subscription_id}"): [
            "200",
            "400",
            "401",
            "403",
            "404",
            "409",
            "413",
            "415",
            "503",
        ],
        ("post", "/api/v1/holds/{hold_id}/capture"): [
            "200",
            "400",
            "401",
            "402",
            "403",
            "404",
            "409",
            "413",
            "415",
            "422",
            "503",
        ],
        ("get", "/api/v1/meters"): ["200", "400", "401", "403", "503"],
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert sorted(responses) == statuses, (method, path)
        for status in statuses:
            if status >= "400":
                assert responses[status]["content"] == PROBLEM, (method, path, status)


def test_problem_statuses_follow_what_an_operation_has():
    post = {
        "parameters": [{"name": "code", "in": "path"}],
        "security": [{"ApiKeyAuth": []}],
        "requestBody": {"content": {}},
    }
    assert problem_statuses(post, method="POST", scoped=True) == [
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        503,
    ]
    assert problem_statuses({"security": [{}]}, method="GET", scoped=False) == [503]
    filtered = {
        "parameters": [{"name": "customer", "in": "query"}],
        "security": [{"ApiKeyAuth": []}],
    }
    assert problem_statuses(filtered, method="GET", scoped=True) == [400, 401, 403, 404, 503]
    assert problem_statuses({}, method="PUT", scoped=False, extra=(422,)) == [422, 503]


def _response_schema(document: dict, method: str, path: str) -> dict:
    ok = document["paths"][path][method]["responses"]
    status = "201" if "201" in ok else "200"
    ref = ok[status]["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_lists_are_documented_as_pages():
    document = _document()
    for path in ("/api/v1/plans", "/api/v1/plans/{code}/versions", "/api/v1/events"):
        page = _response_schema(document, "get", path)
        assert page["required"] == ["results", "next"], path
        assert page["properties"]["results"]["type"] == "array", path
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"limit", "cursor"} <= names, path


def test_event_plan_and_hold_shapes_are_what_the_api_answers():
    document = _document()
    schemas = document["components"]["schemas"]
    event = schemas["Event"]["properties"]
    assert {"id", "status", "customer", "meter", "quantity", "timestamp", "received_at"} <= set(
        event
    )
    assert set(schemas["Event"]["required"]) == {
        "id",
        "status",
        "customer",
        "meter",
        "quantity",
        "timestamp",
    }
    plan = _response_schema(document, "get", "/api/v1/plans/{code}")
    assert {"id", "version", "prices", "created_at"} <= set(plan["properties"])
    hold = _response_schema(document, "get", "/api/v1/holds/{hold_id}")
    assert {"id", "status", "held", "expires_at", "event"} <= set(hold["properties"])


def test_plan_versions_are_a_page(api):
    body = {"code": "p", "name": "P", "currency": "USD", "interval": "month", "base_fee": "1"}
    assert api.post("/api/v1/plans", body, format="json").status_code == 201
    assert api.post("/api/v1/plans/p/versions", body, format="json").status_code == 201
    first = api.get("/api/v1/plans/p/versions", {"limit": 1}).json()
    assert [v["version"] for v in first["results"]] == [2]
    assert first["next"] is not None
    second = api.get(first["next"]).json()
    assert [v["version"] for v in second["results"]] == [1]
    assert second["next"] is None


def test_every_post_documents_its_idempotency_key_and_replay_header():
    paths = _document()["paths"]
    posts = [(path, item["post"]) for path, item in paths.items() if "post" in item]
    assert posts
    for path, operation in posts:
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert headers == ["Idempotency-Key"], path
        for status, response in operation["responses"].items():
            replayable = status.startswith("2") or status == "402"
            assert ("Idempotent-Replayed" in response.get("headers", {})) == replayable, (
                path,
                status,
            )
    for path, item in paths.items():
        for method in set(item) & {"get", "put", "patch", "delete"}:
            params = item[method].get("parameters", [])
            assert not [p for p in params if p["name"] == "Idempotency-Key"], (method, path)
