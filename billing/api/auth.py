"""API-key authentication (``Authorization: Bearer <key>``) and scope permissions.

Scopes (API.md): ``events`` for events and holds, ``read`` for every GET, ``manage`` for
everything else. A view states the scope its writes need in ``write_scope``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from billing.selectors.api_keys import api_key_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Use the header 'Authorization: Bearer <key>'."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from exc
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return (None, key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasScope(BasePermission):
    """GET/HEAD/OPTIONS need ``read``; other methods the view's ``write_scope``
    (default ``manage``)."""

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if key is None:
            raise exceptions.NotAuthenticated(_("An API key is required (Authorization: Bearer <key>)."))
        needed = required_scope(request.method, view)
        if needed is None or needed in key.scopes:
            return True
        self.message = f"This API key lacks the '{needed}' scope."
        return False


def required_scope(method: str, view) -> str | None:
    if method in SAFE_METHODS:
        return getattr(view, "read_scope", "read")
    return getattr(view, "write_scope", "manage")
