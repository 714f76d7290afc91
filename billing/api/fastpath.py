"""The usage hot path without Django's request cycle.

Every usage event passes through ``POST /api/v1/events``; on two cores the Django and DRF
request cycle (middleware, URL resolution, DRF's request, authentication classes, content
negotiation, rendering) cost as much CPU as pricing and writing the event itself. This WSGI
wrapper answers the common, well-formed requests of the usage endpoints directly:

- ``POST /api/v1/events``
- ``POST /api/v1/holds`` and ``POST /api/v1/holds/<id>/capture``

with the same services (``event_charge``, ``hold_authorize``, ``hold_capture_usage``), the
same key check (an active key with the ``events`` scope, as ``api_key_authenticate`` tests
it, here inside each request's first query: one round trip less), the same JSON parser and
renderer as the API's views, and the headers the full stack adds. Anything else — another route or
method, a missing or invalid key, a body that is not the plain case, an error raised before
anything is written — goes to the Django application unchanged (the body is handed on), so
every error is worded in one place. The services are idempotent by event and hold id, so
running a request that failed here again through Django charges nothing twice.

``API_FAST_PATH=false`` turns it off (everything then goes through Django).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import InterfaceError, OperationalError, connection
from django.http.request import split_domain_port, validate_host

from billing.api.auth import HEADER_MAX_LENGTH, KEYWORD
from billing.api.errors import CONTENT_TYPE as PROBLEM
from billing.api.event_input import parse_plain_event, plain_text
from billing.api.idempotency import REPLAYED
from billing.api.parsers import DecimalJSONParser
from billing.api.renderers import PlainJSONRenderer
from billing.metering import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    KeyRefused,
    Outcome,
    event_charge,
    hold_authorize,
    hold_capture_usage,
)
from billing.selectors.api_keys import api_key_hash, api_key_plausible
from core.errors import BillfoldError
from core.ids import id_problems
from wallets.services.amounts import check_amount

log = logging.getLogger(__name__)

PREFIX = "/api/v1/"
CAPTURE_SUFFIX = "/capture"
CAPTURE_FIELDS = frozenset({"quantity", "event_id"})

# The headers the full stack puts on these answers: SecurityMiddleware (nosniff, referrer and
# opener policies), XFrameOptionsMiddleware, and DRF's Allow (the route's own, below).
COMMON_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
REASONS = {200: "OK", 201: "Created", 402: "Payment Required"}
ACCEPTED_MEDIA = frozenset({"", "*/*", "application/json"})

_parse = DecimalJSONParser().parse
_render = PlainJSONRenderer().render


class UsageFastPath:
    """WSGI middleware: answer the plain usage requests, hand everything else to ``app``."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = _route(environ)
        if route is None:
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.app(environ, start_response)
        if not 0 < length <= self.max_body:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # the fallback reads it again
        answer = self._answer(environ, route, body)
        if answer is None:
            environ["wsgi.input"].seek(0)
            return self.app(environ, start_response)
        outcome, status = answer
        content = _render(outcome.body)
        headers = [
            ("Content-Type", PROBLEM if status >= 400 else "application/json"),
            ("Allow", route[2]),
            *COMMON_HEADERS,
            ("Content-Length", str(len(content))),
        ]
        if outcome.replayed:
            headers.append((REPLAYED, "true"))
        start_response(f"{status} {REASONS.get(status, '')}", headers)
        return [content]

    def _answer(self, environ: dict, route: tuple, body: bytes) -> tuple[Outcome, int] | None:
        if not _plain_request(environ):
            return None
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        # No "SELECT 1" health check before the first query (CONN_HEALTH_CHECKS): if the
        # persistent connection has died, the first query fails, request_finished closes
        # it, and Django answers the request on a new one. One round trip less per event.
        connection.health_check_done = True
        try:
            raw = _raw_key(environ.get("HTTP_AUTHORIZATION"))
            if raw is None:
                return None  # Django answers 401
            handler, arg, _ = route
            try:
                payload = _parse(io.BytesIO(body))
            except Exception:
                return None
            outcome = handler(payload, arg, raw)
            if outcome is None:
                return None
            return outcome, outcome.status_code
        except (BillfoldError, KeyRefused):
            return None  # raised before anything was written: Django answers it again
        except (OperationalError, InterfaceError) as exc:
            # a kept connection the server closed (a restart, an idle timeout): expected
            # now and then, as the health check is skipped; Django answers on a new one and
            # reports for itself if the database is really down
            log.warning("usage fast path: %s; handing the request to Django", exc)
            return None
        except Exception:
            log.exception("usage fast path failed; handing the request to Django")
            return None
        finally:
            signals.request_finished.send(sender=WSGIHandler)


def _plain_request(environ: dict) -> bool:
    domain, _ = split_domain_port(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    if not validate_host(domain, settings.ALLOWED_HOSTS):
        return False  # Django answers 400 (DisallowedHost)
    content_type = environ.get("CONTENT_TYPE", "")
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/json":
        return False
    if params and params.strip().lower().replace(" ", "") not in ("charset=utf-8",):
        return False
    accept = environ.get("HTTP_ACCEPT", "").strip().lower()
    return accept in ACCEPTED_MEDIA


def _raw_key(header: str | None) -> str | None:
    if not header or len(header) > HEADER_MAX_LENGTH or not header.isascii():
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != KEYWORD or not api_key_plausible(parts[1]):
        return None
    return parts[1]


# --- the routes -----------------------------------------------------------------------------


def _event(payload: Any, _: None, raw_key: str) -> Outcome | None:
    """The key is checked in the event's own first query (``KeyRefused``), as for a hold
    and a capture (in the read of its hold)."""
    data = parse_plain_event(payload)
    if data is None:
        return None
    return event_charge(data=data, api_key_hash=api_key_hash(raw_key))


def _hold(payload: Any, _: None, raw_key: str) -> Outcome | None:
    if type(payload) is not dict:
        return None
    expires_in = payload.get("expires_in", DEFAULT_HOLD_SECONDS)
    if isinstance(expires_in, Decimal) and expires_in == expires_in.to_integral_value():
        expires_in = int(expires_in)
    if type(expires_in) is not int or not 1 <= expires_in <= MAX_HOLD_SECONDS:
        return None
    data = parse_plain_event({k: v for k, v in payload.items() if k != "expires_in"})
    if data is None:
        return None
    return hold_authorize(data=data, expires_in=expires_in, api_key_hash=api_key_hash(raw_key))


def _capture(payload: Any, hold_id: str, raw_key: str) -> Outcome | None:
    if type(payload) is not dict or "quantity" not in payload or payload.keys() - CAPTURE_FIELDS:
        return None
    event_id = payload.get("event_id")
    if event_id is not None and (
        not plain_text(event_id, 255) or id_problems(event_id, slash=True)
    ):
        return None
    # the serializer's own check (ValidationFailed → Django words the error)
    quantity = check_amount(payload["quantity"], field="quantity", allow_zero=True)
    return hold_capture_usage(
        hold_id=hold_id, quantity=quantity, event_id=event_id, api_key_hash=api_key_hash(raw_key)
    )


def _route(environ: dict) -> tuple[Callable, Any, str] | None:
    """(handler, its argument, the Allow header of the route's view) or None."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    path = environ.get("PATH_INFO", "")
    if not path.startswith(PREFIX) or environ.get("SCRIPT_NAME"):
        return None
    rest = path[len(PREFIX) :]
    if rest == "events":
        return _event, None, "GET, POST, HEAD, OPTIONS"
    if rest == "holds":
        return _hold, None, "POST, OPTIONS"
    if rest.startswith("holds/") and rest.endswith(CAPTURE_SUFFIX):
        hold_id = rest[len("holds/") : -len(CAPTURE_SUFFIX)]
        # plain ids only: anything a URL could spell two ways goes through Django's routing
        if hold_id and hold_id.isascii() and hold_id.isprintable() and "%" not in hold_id:
            return _capture, hold_id, "POST, OPTIONS"
    return None
