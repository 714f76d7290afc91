"""API-key authentication (``Authorization: Bearer <key>``) and scope permissions.

Scopes (docs/api.md): ``events`` for events and holds, ``read`` for every GET, ``manage`` for
everything else. A view states the scope its reads need in ``read_scope`` (default ``read``)
and the scope its writes need in ``write_scope`` (default ``manage``); either may be a tuple of
scopes any one of which is enough, or None for "any valid key".

After authentication ``request.auth`` is the :class:`~billing.models.ApiKey` and
``request.user`` an :class:`ApiPrincipal` (never a Django user: keys belong to integrators)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from billing.models import ApiKey
from billing.selectors.api_keys import KEY_MAX_LENGTH
from billing.services.api_keys import api_key_authenticate

KEYWORD = "bearer"
WWW_AUTHENTICATE = 'Bearer realm="api"'
# "Bearer " + the longest key we would look up; a longer header is refused unread.
HEADER_MAX_LENGTH = len(KEYWORD) + 1 + KEY_MAX_LENGTH

Scope = str | tuple[str, ...] | None


class ApiPrincipal:
    """What ``request.user`` is for a request made with an API key: enough of the user
    interface for DRF (throttles key on ``pk``) and for code that asks ``is_authenticated``."""

    __slots__ = ("key",)
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    @property
    def pk(self) -> int:
        return self.key.pk

    id = pk

    @property
    def scopes(self) -> list[str]:
        return list(self.key.scopes)

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.prefix})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiPrincipal) and other.key.pk == self.key.pk

    def __hash__(self) -> int:
        return hash(("api-key", self.key.pk))


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer bf_…``. No header → anonymous (the permission then answers 401);
    a header that is not a valid active key → 401 at once."""

    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if isinstance(header, bytes):  # the test client may pass bytes
            header = header.decode("latin-1")
        if not header or not header.strip():
            return None
        # WSGI gives headers as latin-1 text; a key is ASCII, so anything else (or anything
        # longer than a key can be) is refused without being parsed or looked up.
        if len(header) > HEADER_MAX_LENGTH or not header.isascii():
            raise exceptions.AuthenticationFailed("Invalid API key.")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != KEYWORD:
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <key>'.")
        key = api_key_authenticate(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return ApiPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class HasScope(BasePermission):
    """Reads need the view's ``read_scope``, writes its ``write_scope``. A method the view does
    not implement is let through so that DRF answers 405 rather than 403."""

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated(
                "An API key is required (Authorization: Bearer <key>)."
            )
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True
        needed = required_scope(request.method, view)
        if scope_allows(key.scopes, needed):
            return True
        names = (needed,) if isinstance(needed, str) else needed
        self.message = f"This API key lacks the {' or '.join(repr(n) for n in names)} scope."
        return False


def required_scope(method: str, view: Any) -> Scope:
    if method in SAFE_METHODS:
        return getattr(view, "read_scope", "read")
    return getattr(view, "write_scope", "manage")


def scope_allows(granted: list[str], needed: Scope) -> bool:
    if needed is None:
        return True
    if isinstance(needed, str):
        return needed in granted
    return any(scope in granted for scope in needed)
