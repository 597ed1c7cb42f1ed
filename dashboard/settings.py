"""Stepscope settings: one file, read from the environment.

Every value has a default that lets a fresh checkout start (SQLite, DEBUG off, a dev-only key);
production sets DATABASE_URL, REDIS_URL, SECRET_KEY and FIELD_ENCRYPTION_KEYS. A NAME_FILE
variable may replace any secret NAME so that Docker/Kubernetes secrets can be mounted as files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_pairs(name: str) -> list[tuple[str, str]]:
    """NAME="a=b,c=d" as [("a", "b"), ("c", "d")]; a malformed entry stops the start."""
    pairs = [item.partition("=") for item in env_list(name)]
    bad = [f"{key}{sep}{value}" for key, sep, value in pairs if not (sep and key and value)]
    if bad:
        raise ValueError(f"{name}: expected idp-group=stepscope-group entries, got {bad}")
    return [(key.strip(), value.strip()) for key, _, value in pairs]


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (mounted secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


DEBUG = env_bool("DEBUG")
# The fallback carries Django's "insecure" prefix so `check --deploy` refuses it in production.
SECRET_KEY = env_secret("SECRET_KEY", "django-insecure-stepscope-dev-only-key-change-me-0123456789")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Fernet keys for secrets at rest, newest first. Adding a new key in front and running
# `manage.py rotate_secrets` re-encrypts every stored secret; old keys still decrypt meanwhile.
# Without any, a key derived from SECRET_KEY is used and the deploy check warns.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", env_secret("FIELD_ENCRYPTION_KEYS"))

INSTALLED_APPS = [
    "dashboard.apps.StepscopeAdminConfig",  # django.contrib.admin with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "csp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "dashboard",
    # Before executions: its sync_account command (which also delivers the run's alerts)
    # takes the place of the one in executions.
    "alerts",
    "connections",
    "executions",
    "operations",
    "api",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer before host checks, redirects and sessions (probes).
    "dashboard.health.ProbeMiddleware",
    "dashboard.middleware.RequestIdMiddleware",  # binds the id every log line of it carries
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: it drops cookies no session can have (NUL, broken characters).
    "dashboard.middleware.BadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks, so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

# The REST API (api/): a bearer token or the browser session (whose writes need the CSRF token),
# JSON only; errors are {"message": …} (api/errors.py). No auth answers 401 (the token scheme
# is the first authenticator, so its challenge is sent).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.handle",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stepscope API",
    "VERSION": "1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the drf-spectacular-sidecar package: no CDN, and no inline script (CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "executions.choices.ExecutionStatus",
        "GroupStatusEnum": "executions.choices.GroupStatus",
        "SyncStatusEnum": "connections.choices.SyncStatus",
        "ChannelEnum": "alerts.choices.Channel",
    },
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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


def local_services(path: Path) -> dict[str, str]:
    """The URLs `make demo` / `make services` wrote (tools/local_services.py), if they ran here."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


# The environment wins; then the local services `make demo` last used (embedded or system), so
# manage.py in a plain shell reaches the demo's data; then the PostgreSQL on its default port
# that `make demo` / `make test` probe first (tools/local_services.py, the same URL). Never
# SQLite: a command run before `make demo` says in one line what is missing (manage.py).
LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/stepscope"
_LOCAL_SERVICES = local_services(BASE_DIR / "var" / "services.env")
_DEFAULT_DB = _LOCAL_SERVICES.get("DATABASE_URL") or LOCAL_DATABASE_URL
DATABASES = {
    "default": dj_database_url.parse(
        env_secret("DATABASE_URL", _DEFAULT_DB),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("STATIC_MANIFEST")
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security (production values come from the environment; `check --deploy` verifies them)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Everything on our pages comes from our own origin; data from third-party APIs is only ever
# text in HTML, so no inline script or style is needed anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Single sign-on: OpenID Connect (dashboard/sso.py, docs/security.md). Off unless OIDC_ISSUER
# and OIDC_CLIENT_ID are set; local password login always stays (the first admin's way in).
OIDC_ISSUER = env_str("OIDC_ISSUER")  # exactly as the provider's discovery document names it
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# IdP group → Stepscope group pairs; an IdP group may appear more than once.
OIDC_GROUP_MAP = env_pairs("OIDC_GROUP_MAP")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso_callback"
if OIDC_ISSUER:
    AUTHENTICATION_BACKENDS.append("dashboard.sso.SsoBackend")

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# --- Celery (Redis broker; JSON only, so nothing but ids and plain data crosses the broker)
REDIS_URL = env_secret("REDIS_URL", _LOCAL_SERVICES.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_secret("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A step running when the broker connection drops finishes its (idempotent) work instead of
# being cancelled: what it stores is kept, and if its queued siblings were lost with the broker
# the run goes silent and the next trigger takes over (executions/sync/).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
# Workers log through LOGGING below (redaction, LOG_FORMAT) instead of Celery's own handler,
# to the real stderr (a redirected one would feed the log lines back into logging).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE = {
    "sync-due-accounts": {
        "task": "connections.tasks.sync_due_accounts",
        "schedule": env_int("SYNC_TICK_SECONDS", 15),
    },
    # The outbox drain and delivery safety net (alerts/tasks.py): well within a sync interval.
    "drain-alerts": {
        "task": "alerts.tasks.drain_alerts",
        "schedule": env_int("ALERT_TICK_SECONDS", 10),
    },
    "prune-old-executions": {"task": "executions.tasks.prune_old_executions", "schedule": 3600},
    "prune-old-alerts": {"task": "alerts.tasks.prune_old_alerts", "schedule": 3600},
    # Redrive batches whose worker was killed (operations/batch.py) are queued again.
    "resume-redrive-batches": {"task": "operations.tasks.resume_redrive_batches", "schedule": 60},
}

# --- Email (alerts). Django's SMTP backend; the console backend prints instead.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "stepscope@localhost")

# --- Stepscope
STEPSCOPE: dict[str, Any] = {
    # Seconds between syncs of one account unless the account sets its own.
    "SYNC_INTERVAL_SECONDS": env_int("SYNC_INTERVAL_SECONDS", 60),
    # A sync that shows no progress for this long has lost its worker (killed) or its queued
    # steps (a broker restart): the next trigger closes it and takes the account over. Every
    # step renews the claim at least ten times within this window while it works.
    "SYNC_STALE_AFTER_SECONDS": env_int("SYNC_STALE_AFTER_SECONDS", 300),
    # SUCCEEDED executions ingested per state machine and sync: enough for success rates and
    # "last success to this endpoint" without pulling every healthy run.
    "SUCCEEDED_PER_SYNC": env_int("SUCCEEDED_PER_SYNC", 200),
    # Histories one state machine's sync reads at most (0: no limit); the rest, already counted
    # from the listing, wait for the next sync, so a storm never holds the account for long.
    "HISTORIES_PER_SYNC": env_int("HISTORIES_PER_SYNC", 0),
    # DescribeExecution calls one state machine's sync makes at most to learn its new failures'
    # error and cause (which are alike: one of each kind's history is read first). Its own
    # bucket holds 250 (300 in the large regions), half of it ours; 0 turns the triage off.
    "DESCRIBES_PER_SYNC": env_int("DESCRIBES_PER_SYNC", 100),
    # ...but only when more failures wait for their history than this (or than the sync reads,
    # HISTORIES_PER_SYNC): fewer are read within our half of GetExecutionHistory's 400-call
    # burst, in seconds, whatever the order.
    "TRIAGE_ABOVE": env_int("TRIAGE_ABOVE", 200),
    # Percent of the account's RedriveExecution quota a redrive batch may use: the rest stays
    # for the account's own tooling.
    "REDRIVE_QUOTA_PERCENT": env_int("REDRIVE_QUOTA_PERCENT", 20),
    # Response bodies are cut to this many characters before storage.
    "MAX_RESPONSE_CHARS": env_int("MAX_RESPONSE_CHARS", 16384),
    # Extra regular expressions; a header/query/body key matching one is redacted.
    "REDACT_KEY_PATTERNS": env_list("REDACT_KEY_PATTERNS"),
    # Extra regular expressions; a value matching one is redacted wherever it appears.
    "REDACT_VALUE_PATTERNS": env_list("REDACT_VALUE_PATTERNS"),
    "AWS_CONSOLE_URL": env_str("AWS_CONSOLE_URL", "https://console.aws.amazon.com"),
    # /readyz answers from its last checks for this long (a probe storm costs one round).
    "READYZ_CACHE_SECONDS": env_int("READYZ_CACHE_SECONDS", 2),
    # /metrics (dashboard/metrics.py): a bearer token, or anonymous only when said so; counts
    # over the window; per-connection/endpoint series for the N busiest; queues to measure.
    "METRICS_TOKEN": env_secret("METRICS_TOKEN"),
    "METRICS_ANONYMOUS": env_bool("METRICS_ANONYMOUS"),
    "METRICS_WINDOW_SECONDS": env_int("METRICS_WINDOW_SECONDS", 3600),
    "METRICS_TOP_N": env_int("METRICS_TOP_N", 20),
    "METRICS_QUEUES": env_list("METRICS_QUEUES", "celery"),
    # Where users reach Stepscope: the links in alerts start with it.
    "SITE_URL": env_str("SITE_URL", "http://localhost:8000"),
    # Alert delivery (alerts/delivery.py): backoff base × 2^(n-1) up to the cap, then give up.
    "ALERT_RETRY_BASE_SECONDS": env_int("ALERT_RETRY_BASE_SECONDS", 30),
    "ALERT_RETRY_MAX_SECONDS": env_int("ALERT_RETRY_MAX_SECONDS", 3600),
    "ALERT_MAX_ATTEMPTS": env_int("ALERT_MAX_ATTEMPTS", 30),
    # A worker holds a delivery this long; killed, the next drain sends it again.
    "ALERT_CLAIM_SECONDS": env_int("ALERT_CLAIM_SECONDS", 60),
    "ALERT_HTTP_TIMEOUT_SECONDS": env_int("ALERT_HTTP_TIMEOUT_SECONDS", 10),
    # How long the acknowledge/snooze/mute/resolve links in an alert stay valid (alerts/links.py).
    "ALERT_LINK_MAX_AGE_SECONDS": env_int("ALERT_LINK_MAX_AGE_SECONDS", 7 * 24 * 3600),
    # Days of executions kept (0: all); checked by stepscope.E003, pruned hourly (retention.py).
    "RETENTION_DAYS": env_str("RETENTION_DAYS", "30"),
    # The share of each AWS API quota all workers together may spend (connections/ratelimit.py),
    # per API in "GetExecutionHistory=0.6,FilterLogEvents=0.4"; the time scale is for the
    # sandbox's quota mode only. Checked by stepscope.E010 / W010.
    "AWS_QUOTA_SHARE": env_str("AWS_QUOTA_SHARE", "0.5"),
    "AWS_QUOTA_SHARES": env_str("AWS_QUOTA_SHARES"),
    "AWS_QUOTA_TIME_SCALE": env_str("AWS_QUOTA_TIME_SCALE", "1"),
    # The workers' garbage collector (dashboard/worker_gc.py): "gen0,gen1,gen2" thresholds after
    # a gc.freeze(), or "python" for Python's own. Checked by stepscope.E011.
    "WORKER_GC_THRESHOLD": env_str("WORKER_GC_THRESHOLD", "50000,10,10"),
}

# LOG_FORMAT=json: one JSON object per line with the request id / sync run and account
# (executions/logs.py); any other value keeps the plain lines.
LOG_FORMAT = "json" if env_str("LOG_FORMAT").strip().lower() == "json" else "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "executions.redaction.RedactingLogFilter"},
        "context": {"()": "executions.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "executions.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # botocore logs request bodies at DEBUG; keep it quiet whatever LOG_LEVEL says.
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # axes announces itself at INFO on every start, which would pollute command output.
        "axes": {"level": "WARNING"},
        # The sandbox runs moto in-process; its interpreter narrates every branch at INFO.
        "moto": {"level": "WARNING"},
        # apprise logs the URLs it parses and sends to, tokens and all: never to our handlers.
        # alerts/apprise_channel.py captures its warnings and keeps them without the URLs.
        "apprise": {"handlers": [], "propagate": False, "level": "WARNING"},
    },
}
