"""Admin forms whose saves call a service: the service's ``ValidationFailed`` is shown on the
form, and the row the service created becomes the admin's saved object."""

from __future__ import annotations

from django.db.models import Model

from core.errors import ValidationFailed


class ServiceFormMixin:
    """For admins whose saves call a service: a ``ValidationFailed`` the service raises is shown
    on the form like any validation error (``errors`` keys that name form fields land on those
    fields), with the user's input kept. The admin's transaction has rolled back by then, so
    nothing was written."""

    # service error keys that name a form field differently
    service_error_fields: dict[str, str] = {}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationFailed as exc:
            if request.method != "POST":
                raise
            request._service_errors = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        failure: ValidationFailed | None = getattr(request, "_service_errors", None)
        if failure is None:
            return form_class
        renamed = self.service_error_fields

        class ServiceErrorsForm(form_class):
            def clean(self):
                cleaned = super().clean()
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
