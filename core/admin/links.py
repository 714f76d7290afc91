"""Links between admin pages: a row's change page and a changelist filtered by query
parameters, built from the model's admin URL names (no query: the caller has the label)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.utils import quote
from django.db.models import Model
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.admin.formatting import EMPTY


def change_url(model: type[Model] | Model, pk: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])


def changelist_url(model: type[Model], **params: Any) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(model: type[Model] | Model, pk: Any, label: Any = None) -> SafeString | str:
    """A link to the change page of ``model`` row ``pk`` (no query: the caller has the label)."""
    if pk is None:
        return EMPTY
    return format_html('<a href="{}">{}</a>', change_url(model, pk), pk if label is None else label)


def obj_link(obj: Model | None, label: Any = None) -> SafeString | str:
    if obj is None:
        return EMPTY
    return link(obj, obj.pk, obj if label is None else label)


def changelist_link(model: type[Model], label: Any, **params: Any) -> SafeString:
    return format_html('<a href="{}">{}</a>', changelist_url(model, **params), label)
