"""Who may do what on an admin page: read-only pages for rows that only services write,
and the Django permission behind a custom admin action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin

    _AdminBase = BaseModelAdmin[Any]
else:
    _AdminBase = object


class ReadOnlyAdminMixin(_AdminBase):
    """Nobody adds, changes or deletes here, superusers included: the rows are money history
    written only by services. Staff with the view permission see the pages (model admins and
    inlines alike: ``obj`` is the row, or an inline's parent row)."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


def has_model_perm(request: HttpRequest, model: type[Model], action: str) -> bool:
    """The Django permission behind an admin action (e.g. ``change`` for "Revoke"), checked
    apart from whether the admin lets the row be edited as a form."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
