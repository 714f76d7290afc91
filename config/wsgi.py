import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after setup)

if settings.API_FAST_PATH:
    from billing.api.fastpath import UsageFastPath

    application = UsageFastPath(application)

# Everything loaded so far (Django, the apps, their modules) lives as long as the process:
# keep it out of the cyclic garbage collector's scans. Without this, every full collection
# walked those objects again; on a batch of 1,000 events, which allocates many, that was
# ~15% of its time (docs/performance.md).
gc.freeze()
