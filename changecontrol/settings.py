"""Settings: every knob is read from the environment (see .env.example).

With nothing set the portal runs on the embedded default: SQLite and kombu's file-system
broker under var/. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.clientip import trusted_networks
from core.envconfig import env_bool, env_int, env_list, env_str, env_url
from core.version import __version__

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PORTAL_VERSION = __version__
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once per installation under var/."""
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The portal's public address. Set, every link that leaves a page (mails, chat, feeds, webhooks) is
# built from it, never from a request's Host header; unset, from the request's host (core/links.py).
# `make run` sets it from PORT; `check --deploy` warns when production leaves it unset.
SITE_URL = env_str("SITE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "guardian",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "changecontrol",
    "audit",
    "outbox",
    "environments",
    "accounts",
    "releases",
    "approvals",
    "deployments",
    "notify",
    "discussion",
    "hooks",
    "workflow",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "changecontrol.api_errors.ApiErrorsAsJsonMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "changecontrol.middleware.RequestContextMiddleware",
    # Bad input (NUL characters, unreadable bodies, dates out of range) is a 400, never a 500.
    "changecontrol.middleware.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
]

ROOT_URLCONF = "changecontrol.urls"
WSGI_APPLICATION = "changecontrol.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "changecontrol.context_processors.portal",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "changecontrol.sqlite3",
            "OPTIONS": {
                # IMMEDIATE: a writing transaction takes the write lock at BEGIN, so two writers
                # queue instead of failing with "database is locked" half-way (audit chain).
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
# A file, not memory, for SQLite tests: a real Celery worker started by a test opens the same database.
DATABASES["default"]["TEST"] = {
    "NAME": f"test_{DATABASES['default']['NAME']}"
    if DATABASE_URL and DATABASES["default"]["ENGINE"].endswith("postgresql")
    else str(VAR_DIR / "test.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DB_VENDOR = DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]

# --- Least-privilege database role (README.md "The database roles") -------------------------
# DATABASE_URL is the app's role: it owns nothing, so it cannot alter a table or switch off the
# audit table's triggers. DATABASE_OWNER_URL (same database, the role that owns the tables) is used
# by `manage.py migrate` only, which then grants the app role its privileges. Unset: one role does
# both (laptops, the test suite). Give DATABASE_OWNER_URL to the migrating process only.
DATABASE_OWNER_URL = env_url("DATABASE_OWNER_URL", ("postgres", "postgresql"))
# The role the grants go to; default: DATABASE_URL's user.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", str(DATABASES["default"].get("USER") or ""))
if DATABASE_OWNER_URL:
    _owner = dj_database_url.parse(DATABASE_OWNER_URL)
    if DB_VENDOR != "postgresql":
        raise ImproperlyConfigured("DATABASE_OWNER_URL needs DATABASE_URL to point at PostgreSQL too")
    if _owner["NAME"] != DATABASES["default"]["NAME"]:
        raise ImproperlyConfigured(
            f"DATABASE_OWNER_URL names the database {_owner['NAME']!r}, DATABASE_URL {DATABASES['default']['NAME']!r}: "
            "they must name the same database"
        )

# --- Celery (CELERY.md: the settings that answer the known pitfalls) -----------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss"))
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
else:
    from core import fsbroker

    fsbroker.register()
    CELERY_BROKER_URL = f"{fsbroker.ALIAS}://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 3 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = 3 * 3600 - 300
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 60.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TRACK_STARTED = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
AUDIT_VERIFY_HOUR_UTC = env_int("AUDIT_VERIFY_HOUR_UTC", 2, minimum=0, maximum=23)
# The chain head (sequence and hash) is appended here every night: outside the database, so a
# rewrite of the whole table is detectable. Point it at storage the database admins cannot edit.
AUDIT_HEADS_FILE = Path(env_str("AUDIT_HEADS_FILE", str(VAR_DIR / "audit-heads.jsonl")))
# Audit writers append to K independent hash chains ("lanes", docs/audit-chain.md), so concurrent
# writers do not queue on one row. SQLite serialises writers anyway: always one lane there.
AUDIT_LANES = env_int("AUDIT_LANES", 8 if DB_VENDOR == "postgresql" else 1, minimum=1, maximum=64)

# --- Auth -----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
GUARDIAN_RAISE_403 = False
GUARDIAN_MONKEY_PATCH_USER = False
ANONYMOUS_USER_NAME = None

# --- Directory sign-in: OpenID Connect and LDAP (accounts/; README "Signing in") -----------
# LOCAL_LOGIN=breakglass keeps local passwords for staff/superuser accounts only (break-glass
# admins); "all" (default) lets every local account use its password.
LOCAL_LOGIN = env_str("LOCAL_LOGIN", "all").lower()
if LOCAL_LOGIN not in ("all", "breakglass"):
    raise ImproperlyConfigured(f"LOCAL_LOGIN={LOCAL_LOGIN!r}: use all or breakglass")
if LOCAL_LOGIN == "breakglass":
    AUTHENTICATION_BACKENDS = [
        "accounts.backends.LocalPasswordBackend"
        if path == "django.contrib.auth.backends.ModelBackend"
        else path
        for path in AUTHENTICATION_BACKENDS
    ]
# OpenID Connect (mozilla-django-oidc): the endpoints come from OIDC_ISSUER's discovery document
# unless all four are set.
OIDC_ISSUER = env_str("OIDC_ISSUER").rstrip("/")
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_USERINFO_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_JWKS_ENDPOINT")
OIDC_DISPLAY_NAME = env_str("OIDC_DISPLAY_NAME", "single sign-on")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_USE_PKCE = True
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc-callback"
if OIDC_RP_CLIENT_ID and (
    OIDC_ISSUER
    or all(
        (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)
    )
):
    if not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured("OIDC_CLIENT_ID is set without OIDC_CLIENT_SECRET")
    AUTHENTICATION_BACKENDS.append("accounts.oidc.PortalOIDCBackend")
# LDAP / Active Directory (django-auth-ldap, the optional "ldap" extra).
LDAP_SERVER_URI = env_url("LDAP_SERVER_URI", ("ldap", "ldaps")) or ""
LDAP_BIND_DN = env_str("LDAP_BIND_DN")
LDAP_BIND_PASSWORD = env_str("LDAP_BIND_PASSWORD")
LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
LDAP_USER_SEARCH_BASE = env_str("LDAP_USER_SEARCH_BASE")
LDAP_USER_SEARCH_FILTER = env_str("LDAP_USER_SEARCH_FILTER", "(uid=%(user)s)")
LDAP_USER_DN_TEMPLATE = env_str("LDAP_USER_DN_TEMPLATE")
LDAP_GROUP_SEARCH_BASE = env_str("LDAP_GROUP_SEARCH_BASE")
LDAP_GROUP_TYPE = env_str("LDAP_GROUP_TYPE", "groupOfNames")
LDAP_UID_ATTR = env_str("LDAP_UID_ATTR", "entryUUID")
LDAP_ATTR_FIRST_NAME = env_str("LDAP_ATTR_FIRST_NAME", "givenName")
LDAP_ATTR_LAST_NAME = env_str("LDAP_ATTR_LAST_NAME", "sn")
LDAP_ATTR_EMAIL = env_str("LDAP_ATTR_EMAIL", "mail")
LDAP_TIMEOUT_SECONDS = env_int("LDAP_TIMEOUT_SECONDS", 5, minimum=1, maximum=120)
if LDAP_SERVER_URI:
    if LDAP_GROUP_TYPE not in ("groupOfNames", "activeDirectory", "memberOf"):
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE={LDAP_GROUP_TYPE!r}: use groupOfNames, activeDirectory or memberOf"
        )
    if not (LDAP_USER_DN_TEMPLATE or LDAP_USER_SEARCH_BASE):
        raise ImproperlyConfigured(
            "LDAP_SERVER_URI is set: set LDAP_USER_SEARCH_BASE or LDAP_USER_DN_TEMPLATE"
        )
    if LDAP_GROUP_TYPE != "memberOf" and not LDAP_GROUP_SEARCH_BASE:
        raise ImproperlyConfigured(f"LDAP_GROUP_TYPE={LDAP_GROUP_TYPE} needs LDAP_GROUP_SEARCH_BASE")
    AUTHENTICATION_BACKENDS.append("accounts.ldap_auth.PortalLDAPBackend")

# --- Security (production values documented in README.md) ---------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Accounts: lockout, session timeouts, API tokens ------------------------------------------
# Reverse proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: REMOTE_ADDR only.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
trusted_networks(tuple(TRUSTED_PROXIES))  # a bad entry stops the start with its name
# This many failed password entries (sign-in, token endpoint, signatures together) against one
# account, or from one client address, within LOCKOUT_MINUTES lock it for LOCKOUT_MINUTES.
LOCKOUT_FAILURES = env_int("LOCKOUT_FAILURES", 5, minimum=1, maximum=100)
LOCKOUT_MINUTES = env_int("LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
# A session ends after this long without a request, and this long after sign-in whatever the
# activity (0 turns either off). API tokens are not sessions and are not affected.
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 15, minimum=0, maximum=24 * 60)
SESSION_ABSOLUTE_HOURS = env_int("SESSION_ABSOLUTE_HOURS", 8, minimum=0, maximum=7 * 24)
# API tokens expire after API_TOKEN_DAYS unless their owner asks for fewer or more days, at most
# API_TOKEN_MAX_DAYS.
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1, maximum=3650)
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90, minimum=1, maximum=API_TOKEN_MAX_DAYS)
# --- Content-Security-Policy (django-csp) --------------------------------------------------
# Everything from the portal's own origin; no inline script or style anywhere (JS and CSS live in
# static/, htmx's indicator style is switched off in base.html), nothing may frame the portal.
# img-src allows data: URIs (QR codes, Swagger UI's icons). form-action 'self' still lets a form
# posted to the portal redirect to an external sign-in provider.
SELF, NONE = "'self'", "'none'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- I18N / time (store UTC; show each site's own zone) ------------------------------------
# English and German: each user's choice (Language page), else the browser's preference. Catalogs in
# locale/ (make messages); formats in core/formats (ISO dates in English, 04.12.2026 in German).
LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en-gb", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["core.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env_bool("STATIC_PLAIN", False)
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Evidence is stored outside the web root under generated names.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
EVIDENCE_MAX_BYTES = env_int("EVIDENCE_MAX_MB", 25, minimum=1, maximum=2048) * 1024 * 1024

# --- Approvals --------------------------------------------------------------------
APPROVAL_LINK_HOURS = env_int("APPROVAL_LINK_HOURS", 72, minimum=1, maximum=24 * 30)
APPROVAL_REMINDER_HOURS = env_int("APPROVAL_REMINDER_HOURS", 24, minimum=1, maximum=24 * 14)
APPROVAL_ESCALATION_HOURS = env_int("APPROVAL_ESCALATION_HOURS", 48, minimum=1, maximum=24 * 30)
APPROVAL_SWEEP_SECONDS = env_int("APPROVAL_SWEEP_SECONDS", 60, minimum=5, maximum=3600)

# --- The deployment engine ------------------------------------------------------------
# Beat claims due deployments this often; a worker's lease on a deployment lasts this long and is
# renewed while it works; a dispatched deployment nobody picked up (a flushed Redis) is sent again.
DEPLOYMENT_DISPATCH_SECONDS = env_int("DEPLOYMENT_DISPATCH_SECONDS", 5, minimum=1, maximum=60)
# Beside that periodic claim, each beat process runs the dispatcher (deployments/dispatcher.py): it
# sleeps until the next due time, wakes on PostgreSQL NOTIFY when a booking changes, and polls at
# least this often (milliseconds), so a deployment starts within a second of its booked time.
DEPLOYMENT_DISPATCHER = env_bool("DEPLOYMENT_DISPATCHER", True)
DEPLOYMENT_DISPATCH_POLL_SECONDS = (
    env_int("DEPLOYMENT_DISPATCH_POLL_MS", 1000, minimum=100, maximum=60000) / 1000
)
DEPLOYMENT_LEASE_SECONDS = env_int("DEPLOYMENT_LEASE_SECONDS", 120, minimum=3, maximum=3600)
# Computed evidence: UAT data must have been refreshed from PROD within this many days.
UAT_FRESHNESS_DAYS = env_int("UAT_FRESHNESS_DAYS", 30, minimum=1, maximum=365)
# Where `make run` serves the demo plant (demo_plant/server.py) that demo environments deploy to.
DEMO_PLANT_URL = env_str("DEMO_PLANT_URL", "http://127.0.0.1:8100").rstrip("/")
DEPLOYMENT_REDISPATCH_SECONDS = env_int("DEPLOYMENT_REDISPATCH_SECONDS", 60, minimum=1, maximum=3600)
ARTIFACT_MAX_BYTES = env_int("ARTIFACT_MAX_MB", 500, minimum=1, maximum=20480) * 1024 * 1024
# An archive artifact (.zip, .tar, .tar.gz) is read by its directory only, never extracted, and refused
# past these bounds (the zip-bomb class, FAULTS 16): total size once expanded, number of entries, and
# how much one entry may expand relative to its compressed size.
ARTIFACT_MAX_EXPANDED_BYTES = (
    env_int("ARTIFACT_MAX_EXPANDED_MB", 1024, minimum=1, maximum=102400) * 1024 * 1024
)
ARTIFACT_MAX_ENTRIES = env_int("ARTIFACT_MAX_ENTRIES", 10_000, minimum=1, maximum=1_000_000)
ARTIFACT_MAX_RATIO = env_int("ARTIFACT_MAX_RATIO", 200, minimum=2, maximum=100_000)
# Installers' dry runs of a new artifact (an apply command's "dry_run") each get this long.
ARTIFACT_DRY_RUN_SECONDS = env_int("ARTIFACT_DRY_RUN_SECONDS", 60, minimum=1, maximum=3600)
# Large uploads stream to a temporary file, never whole into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "change-control@localhost")
# The sender of notifications and approval mails, e.g. "Plant Change Control <change@plant.example>".
NOTIFY_FROM_EMAIL = env_str("MAIL_FROM", "")
# Webhooks (hooks/): a failed post waits WEBHOOK_RETRY_BASE_SECONDS, doubling up to the cap; failed for
# good after WEBHOOK_RETRY_MAX_ATTEMPTS. A receiver has WEBHOOK_TIMEOUT_SECONDS to answer.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
WEBHOOK_RETRY_MAX_ATTEMPTS = env_int("WEBHOOK_RETRY_MAX_ATTEMPTS", 8, minimum=1, maximum=100)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=1, maximum=86400)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", 3600, minimum=1, maximum=7 * 86400)
WEBHOOK_DELIVER_SECONDS = env_int("WEBHOOK_DELIVER_SECONDS", 30, minimum=5, maximum=3600)
# Reminder before a PROD deployment's window opens (notify/sweeps.py).
NOTIFY_WINDOW_REMINDER_MINUTES = env_int("NOTIFY_WINDOW_REMINDER_MINUTES", 60, minimum=1, maximum=10080)
NOTIFY_SWEEP_SECONDS = env_int("NOTIFY_SWEEP_SECONDS", 60, minimum=5, maximum=3600)
# Release rings (E10): how long a ring's sites run a release in PROD before the next ring may start,
# where a release has no saved rollout plan of its own.
# Risk assessment (releases/risk.py): the score out of 100 from which a change is medium, high risk.
RISK_MEDIUM_FROM = env_int("RISK_MEDIUM_FROM", 30, minimum=1, maximum=100)
RISK_HIGH_FROM = env_int("RISK_HIGH_FROM", 60, minimum=1, maximum=100)
if RISK_MEDIUM_FROM >= RISK_HIGH_FROM:
    raise ImproperlyConfigured(
        f"RISK_MEDIUM_FROM={RISK_MEDIUM_FROM} must be below RISK_HIGH_FROM={RISK_HIGH_FROM}"
    )
# The slot picker offers PROD starts on this grid (minutes): a short change is not held to hour blocks.
SLOT_STEP_MINUTES = env_int("SLOT_STEP_MINUTES", 15, minimum=1, maximum=240)
# X3: the smoke test's latency may exceed the baseline's by 20 % and at least this many milliseconds
# (measurement noise: a 20 ms call that takes 30 ms is no regression) before the deployment rolls back.
SMOKE_NOISE_MS = env_int("SMOKE_NOISE_MS", 15, minimum=0, maximum=60_000)
# Business signals (plant/signals.py): the worker reads PROD's readiness signals this often; the gate
# before PROD trusts a reading this many minutes old at most (the deployment reads them again anyway).
SIGNALS_READ_SECONDS = env_int("SIGNALS_READ_SECONDS", 300, minimum=10, maximum=3600)
SIGNALS_FRESH_MINUTES = env_int("SIGNALS_FRESH_MINUTES", 15, minimum=1, maximum=1440)
ROLLOUT_SOAK_MINUTES = env_int("ROLLOUT_SOAK_MINUTES", 24 * 60, minimum=0, maximum=90 * 24 * 60)

# --- Mail outbox (outbox/): every mail is a row, delivered by a worker and retried ----------------
# A failed try waits MAIL_RETRY_BASE_SECONDS, then twice that, four times … up to MAIL_RETRY_MAX_SECONDS;
# after MAIL_RETRY_MAX_ATTEMPTS tries the mail is failed for good (audited). Beat delivers due mail
# every MAIL_DELIVER_SECONDS; a commit that queues mail also wakes a worker at once.
MAIL_RETRY_MAX_ATTEMPTS = env_int("MAIL_RETRY_MAX_ATTEMPTS", 8, minimum=1, maximum=100)
MAIL_RETRY_BASE_SECONDS = env_int("MAIL_RETRY_BASE_SECONDS", 60, minimum=1, maximum=86400)
MAIL_RETRY_MAX_SECONDS = env_int("MAIL_RETRY_MAX_SECONDS", 3600, minimum=1, maximum=7 * 86400)
MAIL_DELIVER_SECONDS = env_int("MAIL_DELIVER_SECONDS", 30, minimum=5, maximum=3600)
# Seconds an SMTP connection may block: a hung server fails the try instead of the worker.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1, maximum=600)

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.PortalAutoSchema",  # documents each operation's errors
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "changecontrol.api.exception_handler",
    # JSON only: the browsable API's pages carry inline styles the CSP refuses; /api/docs/ is the
    # API's page for people.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # A stock DRF throttle never reads X-Forwarded-For; the portal's use core/clientip.py
    # (accounts/throttling.py ClientAddressMixin).
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Plant Change Control API",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served by the portal itself: plants sit on closed networks, nothing loads from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "state": give each enum its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "RfcStateEnum": "releases.states.RfcState",
        "ChangeClassEnum": "releases.versioning.ChangeClass",
        "EvidenceKindEnum": "releases.models.EvidenceKind",
        "RfcTransitionEnum": "workflow.serializers.TRANSITION_NAMES",
        "RoundStateEnum": "approvals.models.RoundState",
        "StepStateEnum": "approvals.models.StepState",
        "ApprovalStateEnum": "approvals.models.ApprovalState",
        "DecisionEnum": "approvals.models.Decision",
        "DeploymentStateEnum": "deployments.models.DeploymentState",
        "DeploymentStepStateEnum": "deployments.models.StepState",
        "RunStateEnum": "environments.models.RunState",
        "CheckKindEnum": "deployments.models.CheckKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "one_line_refusals": {"()": "core.logfilters.OneLineRefusals"},
        "quiet_polls": {"()": "core.logfilters.QuietPolls"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        # A refused request (400/403/404) logs one line, not a traceback (core/logfilters.py).
        "django.request": {"filters": ["one_line_refusals"]},
        # Timer-driven refreshes (poll=1) are not logged per request by the development server.
        "django.server": {"filters": ["quiet_polls"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- MFA: two-step sign-in with an authenticator app (accounts/mfa.py) -----------------------------
# django-otp: TOTP devices, recovery codes (static tokens), and the verified-session middleware;
# accounts' middleware sends a signed-in session to the code page or to enrolment before anything else.
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1, "accounts.mfa_middleware.MFAMiddleware"
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("accounts.context_processors.signing")
# Roles (core/roles.py values) whose holders, at any site, must use MFA. Empty: nobody must (anyone may).
MFA_REQUIRED_ROLES = env_list(
    "MFA_REQUIRED_ROLES",
    ["it_manager", "operations_manager", "cio", "plant_director", "key_user", "release_manager", "admin"],
)
from core.roles import Role  # noqa: E402

_unknown_roles = sorted(set(MFA_REQUIRED_ROLES) - set(Role.values))
if _unknown_roles:
    raise ImproperlyConfigured(f"MFA_REQUIRED_ROLES names unknown roles: {', '.join(_unknown_roles)}")
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env_str("MFA_ISSUER", "Plant Change Control")
