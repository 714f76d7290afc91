import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after setup)

if settings.API_FAST_PATH:
    from billing.api.fastpath import UsageFastPath

    application = UsageFastPath(application)
