"""Watcher settings: one file, driven by environment variables, with embedded defaults.

Without ``DATABASE_URL`` the project uses SQLite in the data folder; without ``REDIS_URL`` it
starts an embedded real Redis server (see ``config/embedded_redis.py``). Every variable is
documented in README.md ("Configuration").
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from config.embedded_redis import ensure_embedded_redis

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("WATCHER_DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, or a random one kept in the data folder (dev only)."""
    if value := env.str("SECRET_KEY", default=""):
        return value
    import secrets

    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Served over HTTPS only (a TLS-terminating proxy in front, docs/production.md): cookies are
# sent over HTTPS only and plain-HTTP requests are redirected, except the health check that
# container probes make on loopback and the metrics Prometheus scrapes inside the network.
# HSTS is a separate, deliberate choice: browsers remember it. Whether a request came over
# HTTPS is what uvicorn took from the proxy's X-Forwarded-Proto.
HTTPS_ONLY = env.bool("HTTPS_ONLY", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^api/v1/watcher/health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# HSTS for subdomains and the browsers' preload list bind other hosts of the domain: an
# operator's deliberate choice (the two variables above), not a warning of every deploy check.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets, served by us (no CDN)
    "channels",
    "django_celery_beat",
    "import_export",
    "config.apps.AxesConfig",  # django-axes, with a name operators understand
    "parser",
    "alerts",
    "watcher",
    "office",
]

MIDDLEWARE = [
    "config.logs.RequestIdMiddleware",  # first: every later log line carries the request id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A view's database error (PostgreSQL unreachable) is a 503 page or JSON, not a 500.
    "watcher.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns its lockout of the admin login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
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
                "django.template.context_processors.i18n",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"
# Threads per server process running Django's HTTP requests (config/asgi.py). Each holds at
# most one database connection at a time, so it matches the pool size by default.
WATCHER_HTTP_THREADS = env.int(
    "WATCHER_HTTP_THREADS", default=env.int("DATABASE_POOL_MAX_SIZE", default=8) or 8
)

# --- Database ---------------------------------------------------------------------------------
# SQLite (the default, and any sqlite:// DATABASE_URL): web, worker and beat share the file; WAL
# and immediate transactions keep concurrent writers from failing with "database is locked".
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        DATABASES["default"].setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    else:
        # A connection pool per process (psycopg-pool), shared by the HTTP threads, the
        # WebSocket consumers' database calls and the Celery worker's threads; a connection per
        # thread would exhaust PostgreSQL's max_connections under load. Requests beyond the pool
        # wait for a free connection (up to the timeout).
        # DATABASE_POOL_MAX_SIZE=0 turns the pool off (then DATABASE_CONN_MAX_AGE applies).
        _pool_max = env.int("DATABASE_POOL_MAX_SIZE", default=8)
        if _pool_max > 0:
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": min(2, _pool_max),
                "max_size": _pool_max,
                "timeout": env.float("DATABASE_POOL_TIMEOUT", default=30.0),
            }
            DATABASES["default"]["CONN_MAX_AGE"] = 0
        else:
            DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    # Off, as Django's default: no ping per checkout; a connection that died idle fails the one
    # use that gets it and the pool drops it (docs/production.md says what users see).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_HEALTH_CHECKS", default=False)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": dict(_SQLITE_OPTIONS),
            # A file, not memory, so that tests can share it with the server processes they start.
            "TEST": {"NAME": str(DATA_DIR / "test-db.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: dispatcher, cache, channel layer, Celery broker -----------------------------------
REDIS_URL = env.str("REDIS_URL", default="") or ensure_embedded_redis(DATA_DIR)
REDIS_EMBEDDED = not env.str("REDIS_URL", default="")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "watcher:cache",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": "watcher:asgi",
            "capacity": env.int("WATCHER_CHANNEL_CAPACITY", default=1000),
            "expiry": 60,
            # Server processes re-join their sockets' groups every 30 s
            # (watcher.services.sockets), so a member not renewed for 5 minutes belongs to a dead
            # process: dropped then, not after a day (every group send would push to it).
            "group_expiry": 300,
        },
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Slow work (LLM parsing, exports) has its own queue so it never starves the dispatcher's chores.
CELERY_TASK_ROUTES = {"watcher.reparse_reports": {"queue": "slow"}}
# A message is acknowledged after its task ran (acks_late): a pool process killed mid-task
# gives it back at once (reject_on_worker_lost); a whole worker killed leaves it unacknowledged,
# and a live worker hands it out again after the visibility timeout. Keep the timeout above the
# longest task (CELERY_TASK_TIME_LIMIT) and the longest retry countdown (300 s), or a running
# task is handed out twice. Parses come back sooner through the reaper (WATCHER_PARSE_TIMEOUT).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "global_keyprefix": "watcher:celery:",
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = env.str("TIME_ZONE", default="Europe/Moscow")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True
# Admin UX (issue 18): Russian formats over Django's (days in the genitive in date navigation).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "admin:login"

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["watcher.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "watcher.api.views.exception_handler",
    # Throttles (README "Limits and throttling"); counted in the Redis cache, across processes.
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env.str("WATCHER_LOGIN_RATE_IP", default="20/min"),
        "login_user": env.str("WATCHER_LOGIN_RATE_USER", default="5/min"),
        "bad_agent_key": env.str("WATCHER_BAD_KEY_RATE_IP", default="30/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Watcher API",
    "DESCRIPTION": (
        "Competitor price monitoring: the agent API and the staff API.\n\n"
        "**Three ways to authenticate** (the *Authorize* button takes the first two):\n\n"
        "1. **Agent API key** (`agentApiKey`): `Authorization: Bearer wa_…`. Shown once when "
        "the agent is created or its key rotated in the admin (or `manage.py create_agent`). "
        "Agents only: tasks, heartbeats, panics, emulation settings.\n"
        "2. **JWT** (`jwtAuth`): people `POST /api/v1/auth/token` with their username and "
        "password, then send `Authorization: Bearer <access>`; refresh with "
        "`/api/v1/auth/token/refresh`. What a person may call depends on their role.\n"
        "3. **Admin session** (`cookieAuth`): a browser logged in to `/admin/` (this page "
        "included). Writes also need Django's CSRF token.\n\n"
        "Requests with a bearer token need no CSRF token, and a session never rescues a bad "
        "token."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # --- Admin UX (issue 18): offline docs, endpoints by tag, the auth schemes explained ---
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "watcher.api.schema.tag_by_path",
        "watcher.api.schema.document_errors",
    ],
    "TAGS": [
        {"name": "tasks", "description": "Agents take tasks and report what they saw."},
        {"name": "agents", "description": "Heartbeats and panics (agents); summaries (staff)."},
        {"name": "commands", "description": "Commands to connected agents (admins)."},
        {"name": "config", "description": "Emulation settings agents apply."},
        {"name": "parser", "description": "Parser jobs and their reports (staff)."},
        {"name": "auth", "description": "JSON Web Tokens for people."},
        {"name": "health", "description": "Liveness for load balancers and monitoring."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "watcher.models.AgentStatus",
        "TaskStatusEnum": "watcher.models.TaskStatus",
        "CommandStatusEnum": "watcher.models.CommandStatus",
        "HealthStatusEnum": [
            ("healthy", "healthy"),
            ("degraded", "degraded"),
            ("unhealthy", "unhealthy"),
        ],
        # office
        "OfficeStatusEnum": "office.models.OfficeStatus",
        "OfficeReportEnum": "office.api.serializers.REPORTS",
        # alerts and prices both have a "kind"
        "AlertKindEnum": "alerts.models.AlertKind",
        "PriceKindEnum": "watcher.services.prices.KIND_CHOICES",
    },
}
SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A password change revokes the user's tokens: access tokens carry a hash of the password
    # (rejected once it changes); refresh tokens are blacklisted (watcher.api.auth).
    "CHECK_REVOKE_TOKEN": True,
    "REVOKE_TOKEN_CLAIM": "hash_password",
}

# --- Watcher ----------------------------------------------------------------------------------
WATCHER_TASK_GENERATION_TIME = env.str("WATCHER_TASK_GENERATION_TIME", default="20:30")
WATCHER_QUEUE_PRIORITY_WB = env.int("WATCHER_QUEUE_PRIORITY_WB", default=1)
WATCHER_QUEUE_PRIORITY_OZON = env.int("WATCHER_QUEUE_PRIORITY_OZON", default=2)
WATCHER_QUEUE_PRIORITY_YM = env.int("WATCHER_QUEUE_PRIORITY_YM", default=3)
WATCHER_IP_SEMAPHORE_TTL = env.int("WATCHER_IP_SEMAPHORE_TTL", default=300)
# The lease matches the semaphore TTL: both are renewed by heartbeats and lapse together.
WATCHER_TASK_LEASE_SECONDS = env.int("WATCHER_TASK_LEASE_SECONDS", default=WATCHER_IP_SEMAPHORE_TTL)
WATCHER_TASK_MAX_RETRIES = env.int("WATCHER_TASK_MAX_RETRIES", default=3)
WATCHER_AGENT_HEARTBEAT_TIMEOUT = env.int("WATCHER_AGENT_HEARTBEAT_TIMEOUT", default=120)
WATCHER_AGENT_PANIC_COOLDOWN = env.int("WATCHER_AGENT_PANIC_COOLDOWN", default=3600)
# Seconds a report may wait for a slow (LLM) parse before it is handed to a worker again.
WATCHER_PARSE_TIMEOUT = env.int("WATCHER_PARSE_TIMEOUT", default=900)
# Seconds an unacknowledged WebSocket command is re-sent before it is marked timed out, and how
# often it is re-sent meanwhile.
WATCHER_COMMAND_TIMEOUT = env.int("WATCHER_COMMAND_TIMEOUT", default=120)
WATCHER_COMMAND_RESEND_SECONDS = env.int("WATCHER_COMMAND_RESEND_SECONDS", default=10)
WATCHER_MAX_REPORT_BYTES = env.int("WATCHER_MAX_REPORT_BYTES", default=5 * 1024 * 1024)
# A browser agent's screenshot evidence (decoded size); sent base64, so 4/3 of it on the wire.
WATCHER_MAX_SCREENSHOT_BYTES = env.int("WATCHER_MAX_SCREENSHOT_BYTES", default=512 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = (
    WATCHER_MAX_REPORT_BYTES + 64 * 1024 + WATCHER_MAX_SCREENSHOT_BYTES * 4 // 3 + 4
)
# --- Request body limits (hardening) ---
# Enforced by the web server while it reads the body (config/wsgi_bridge.py): the first prefix
# that matches wins; over it the answer is a 413 before the body is stored anywhere. A body over
# 64 KB is read only after WATCHER_BODY_AUTHENTICATOR accepted the Authorization header.
WATCHER_MAX_API_BODY_BYTES = env.int("WATCHER_MAX_API_BODY_BYTES", default=64 * 1024)
WATCHER_MAX_UPLOAD_BYTES = env.int("WATCHER_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
WATCHER_BODY_LIMITS = [
    ("/api/v1/watcher/tasks/", DATA_UPLOAD_MAX_MEMORY_SIZE),  # reports
    ("/api/", WATCHER_MAX_API_BODY_BYTES),
    ("/", WATCHER_MAX_UPLOAD_BYTES),  # the admin's CSV/XLSX imports
]
WATCHER_BODY_AUTHENTICATOR = "watcher.api.auth.large_body_allowed"

# /metrics answers a bearer of this token (Prometheus' authorization) or a staff session;
# WATCHER_METRICS_PUBLIC=true opens it to anyone (a scraper on a private network only).
WATCHER_METRICS_TOKEN = env.str("WATCHER_METRICS_TOKEN", default="")
WATCHER_METRICS_PUBLIC = env.bool("WATCHER_METRICS_PUBLIC", default=False)
CSRF_FAILURE_VIEW = "watcher.views.csrf_failure"

# --- Parser: LLM backends ------------------------------------------------------------------
# First retry delay (doubles per retry), page text sent to a model (characters), and the time
# budget of one LLM parse across all upstreams (below Celery's soft time limit).
PARSER_LLM_RETRY_BACKOFF = env.float("PARSER_LLM_RETRY_BACKOFF", default=0.5)
PARSER_LLM_MAX_PAGE_CHARS = env.int("PARSER_LLM_MAX_PAGE_CHARS", default=20_000)
PARSER_LLM_TOTAL_BUDGET = env.float("PARSER_LLM_TOTAL_BUDGET", default=480.0)

# --- Admin login lockouts (django-axes): failures counted per IP and per username, in the
# database (admin: "Access attempts"); `manage.py axes_reset` lifts them. Only the admin site's
# login: the API's token endpoint has DRF throttles (JSON 429) instead.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = env.int("WATCHER_ADMIN_LOGIN_FAILURES", default=10)
AXES_COOLOFF_TIME = env.float("WATCHER_ADMIN_LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True

# --- Logging: structured JSON on stdout -------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # Every line: the request's id (config/logs.py) and secrets (API keys, tokens, passwords,
    # a WebSocket URL's api_key) redacted.
    "filters": {
        "request_id": {"()": "config.logs.RequestIdFilter"},
        "redact": {"()": "config.logs.RedactFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="json"),
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # uvicorn's own stderr handler is dropped: its records reach the console handler above,
        # in LOG_FORMAT like the rest. "uvicorn.error" is its server log, not only errors: start
        # and stop, and one INFO line per WebSocket handshake with the full query string (an
        # agent's api_key). WARNING keeps keys out of the logs and still shows the errors.
        "uvicorn": {"level": "WARNING", "propagate": True},
        "uvicorn.error": {"level": "WARNING"},
    },
}

# --- Alerts (the alerts app) ------------------------------------------------------------------
# A reference price older than this (seconds; default two days) is not compared with.
WATCHER_ALERT_REFERENCE_MAX_AGE = env.int("WATCHER_ALERT_REFERENCE_MAX_AGE", default=2 * 86400)
# A dumping alert resting on a reading older than this (seconds) is held while agents are
# offline or the night is unfinished: the SKU may simply not have been read yet.
WATCHER_ALERT_HOLD_STALE_AFTER = env.int("WATCHER_ALERT_HOLD_STALE_AFTER", default=12 * 3600)
# A held alert is told anyway once held this long (seconds), whatever the cause.
WATCHER_ALERT_HOLD_MAX = env.int("WATCHER_ALERT_HOLD_MAX", default=24 * 3600)
# The admin's address as recipients reach it, for the links in messages.
WATCHER_ADMIN_URL = env.str("WATCHER_ADMIN_URL", default="http://localhost:8000")
# Telegram's bot API (a channel's own token wins over this one).
WATCHER_TELEGRAM_API_URL = env.str("WATCHER_TELEGRAM_API_URL", default="https://api.telegram.org")
WATCHER_TELEGRAM_BOT_TOKEN = env.str("WATCHER_TELEGRAM_BOT_TOKEN", default="")
# E-mail: EMAIL_URL as django-environ reads it (smtp+tls://user:password@host:587); the console
# by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="watcher@localhost")
# httpx logs every request's URL at INFO, and a Telegram bot token is part of the URL.
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}
