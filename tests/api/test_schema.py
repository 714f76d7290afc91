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
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from billing.api.schema import PROBLEM_SCHEMA, problem_responses_postprocess

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


def _generate(hooks: list[str]) -> dict:
    with patched_settings({"POSTPROCESSING_HOOKS": hooks}):
        return SchemaGenerator().get_schema(request=None, public=True)


def test_problem_hook_documents_error_responses():
    document = _generate(
        [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "billing.api.schema.problem_responses_postprocess",
        ]
    )
    validate_schema(document)
    assert document["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    responses = document["paths"]["/api/v1/whoami"]["get"]["responses"]
    assert sorted(responses) == ["200", "401", "403", "503"]
    for status in ("401", "403", "503"):
        assert responses[status]["content"] == {"application/problem+json": {"schema": problem_ref}}
    assert responses["401"]["description"] == (
        "Missing, invalid or revoked API key (`unauthenticated`)."
    )


def test_problem_hook_adds_by_what_an_operation_has():
    result = {
        "paths": {
            "/api/v1/things/{code}": {
                "parameters": [{"name": "code", "in": "path"}],
                "post": {
                    "security": [{"ApiKeyAuth": []}],
                    "requestBody": {"content": {}},
                    "responses": {"201": {"description": "made"}, "404": {"description": "own"}},
                },
            },
            "/api/v1/open": {"get": {"security": [{}], "responses": {}}},
        }
    }
    problem_responses_postprocess(result, None, None, True)
    post = result["paths"]["/api/v1/things/{code}"]["post"]["responses"]
    assert sorted(post) == ["201", "400", "401", "403", "404", "413", "415", "503"]
    assert post["404"] == {"description": "own"}  # what the view documented stays
    assert sorted(result["paths"]["/api/v1/open"]["get"]["responses"]) == ["503"]


def test_served_schema_documents_problem_responses():
    """Needs "billing.api.schema.problem_responses_postprocess" in
    SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] (after drf-spectacular's enum hook)."""
    document = json.loads(APIClient().get(SCHEMA, {"format": "json"}).content)
    assert document["components"]["schemas"].get("Problem") == PROBLEM_SCHEMA
