"""Admin forms whose saves call a service: the service's ``ValidationFailed`` is shown on the
form, and the row the service created becomes the admin's saved object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from core.errors import ValidationFailed

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _AdminBase = ModelAdmin[Any]
else:
    _AdminBase = object

# the request attribute that carries a service's failure from the first changeform_view
# to the form of the second
_SERVICE_ERRORS = "_service_errors"


class ServiceFormMixin(_AdminBase):
    """For admins whose saves call a service: a ``ValidationFailed`` the service raises is shown
    on the form like any validation error (``errors`` keys that name form fields land on those
    fields), with the user's input kept. The admin's transaction has rolled back by then, so
    nothing was written."""

    # service error keys that name a form field differently
    service_error_fields: dict[str, str] = {}

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationFailed as exc:
            if request.method != "POST":
                raise
            setattr(request, _SERVICE_ERRORS, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Any]]:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        failure: ValidationFailed | None = getattr(request, _SERVICE_ERRORS, None)
        if failure is None:
            return form_class
        return _with_service_errors(form_class, failure, self.service_error_fields)


def _with_service_errors(
    form_class: type[ModelForm[Any]], failure: ValidationFailed, renamed: dict[str, str]
) -> type[ModelForm[Any]]:
    """A subclass of the form the admin built for this request that adds ``failure``'s
    errors when it is cleaned."""

    class ServiceErrorsForm(form_class):  # type: ignore[valid-type, misc]  # a variable base
        def clean(self) -> dict[str, Any]:
            cleaned: dict[str, Any] = super().clean()
            placed = False
            for key, messages in failure.errors.items():
                field = renamed.get(key, key)
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
                    placed = True
            if not placed:
                self.add_error(None, failure.detail)
            return cleaned

    ServiceErrorsForm.__name__ = form_class.__name__
    return ServiceErrorsForm


def adopt_saved(target: Model, saved: Model) -> None:
    """Make the admin's unsaved form instance ``target`` the row a service created, so the
    rest of the admin's add flow (log entry, redirect) refers to it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db
