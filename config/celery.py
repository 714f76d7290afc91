"""The Celery application. Each app keeps its tasks in `<app>/tasks.py`; they are thin wrappers
over services. The beat schedule lives in the database (django-celery-beat) so finance staff
can see and change it in the admin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("billfold")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
