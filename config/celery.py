"""The Celery application. Each app keeps its tasks in `<app>/tasks.py`; they are thin wrappers
over services. The beat schedule lives in the database (django-celery-beat) so finance staff
can see and change it in the admin.

Send work from code that writes with `enqueue_on_commit`, so a worker never sees a task whose
rows are not committed yet (or were rolled back)."""

from __future__ import annotations

import os
from typing import Any, Protocol

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("billfold")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class _Sendable(Protocol):
    """A task or a signature: both send a message with `apply_async(args, kwargs)`."""

    def apply_async(self, args: Any = ..., kwargs: Any = ..., **options: Any) -> Any: ...


def enqueue_on_commit(task: _Sendable, *args: Any, **kwargs: Any) -> None:
    """Send ``task(*args, **kwargs)`` to the broker once the current transaction commits; at
    once outside a transaction; never if it rolls back.

    ``task`` is a task (``enqueue_on_commit(invoice_finalize, invoice_id=7)``) or a signature
    carrying sending options (``enqueue_on_commit(heartbeat.s().set(queue="x", countdown=5))``).
    If the broker is down when the transaction commits, the error propagates to the caller
    (the data is committed; the task is not sent) rather than being lost silently.
    """
    from django.db import transaction

    transaction.on_commit(lambda: task.apply_async(args, kwargs))
