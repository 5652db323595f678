"""RaceWeb settings: one module, driven by environment variables.

Every variable is documented in README.md ("Configuration"). The defaults are the
embedded mode: a SQLite file, the in-memory channel layer, and the simulation running
inside the web process. Setting AMQP_URL switches to the distributed mode.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from races import wire
from races.wire import CONTROL_EXCHANGE

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envfloat(name: str, default: str) -> float:
    return float(os.getenv(name, default))


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


SECRET_KEY = os.getenv("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = envbool("DEBUG", "True")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# AMQP_URL unset means embedded mode: no broker, no Celery, no relay process.
AMQP_URL = os.getenv("AMQP_URL", "")
EMBEDDED = not AMQP_URL

if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("Set SECRET_KEY to a long random value when DEBUG is off.")
    if "guest:guest@" in AMQP_URL:
        raise ImproperlyConfigured("AMQP_URL uses the default guest credentials.")

# HTTPS. TLS ends at the ingress or reverse proxy; SECURE_PROXY_SSL_HEADER=True trusts its
# X-Forwarded-Proto (only safe when the proxy always sets it). Probes and Prometheus talk
# plain HTTP to the pod itself, so their paths are never redirected.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", str(not DEBUG))
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)/?$"]
if envbool("SECURE_PROXY_SSL_HEADER", "False"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if SECURE_SSL_REDIRECT else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "False")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "ninja",  # serves /api/docs' Swagger UI from its own static files (no CDN)
    "races",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "raceweb.urls"
ASGI_APPLICATION = "raceweb.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'data' / 'raceweb.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A file-backed test database, so live-server and consumer tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "data" / "test.sqlite3")}
    # Embedded mode writes from several threads (simulation, relay, requests): WAL lets
    # readers run beside the writer, and IMMEDIATE transactions wait for the write lock
    # (up to the timeout) instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_MANIFEST = envbool("STATIC_MANIFEST", "False")
# Without a collected manifest, WhiteNoise serves straight from the app and static dirs.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # The container image runs collectstatic and turns the manifest on.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Channel layer: in-memory in embedded mode, RabbitMQ otherwise. The capacities are
# sized well above the defaults (100), which silently dropped messages under bursts.
if EMBEDDED:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": envint("CHANNEL_LOCAL_CAPACITY", "10000"), "expiry": 60},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_rabbitmq.core.RabbitmqChannelLayer",
            "CONFIG": {
                "host": AMQP_URL,
                "local_capacity": envint("CHANNEL_LOCAL_CAPACITY", "10000"),
                "remote_capacity": envint("CHANNEL_REMOTE_CAPACITY", "10000"),
                # local_capacity is also the layer's AMQP prefetch. local_expiry defaults
                # to off in the code (not to `expiry` as its README says): set it.
                "expiry": 60,
                "local_expiry": 60,
            },
        }
    }

CELERY_BROKER_URL = AMQP_URL or "memory://"
# The simulation (races/simulation/driver.py, races/simulation/tasks.py): a race runs as a chain of
# segment tasks of SIMULATION_SEGMENT_SECONDS on SIMULATION_QUEUE; the watchdog restarts
# a running race whose heartbeat is older than SIMULATION_STALE_SECONDS.
SIMULATION_QUEUE = os.getenv("SIMULATION_QUEUE", wire.SIMULATION_QUEUE)  # a quorum queue
SIMULATION_SEGMENT_SECONDS = envfloat("SIMULATION_SEGMENT_SECONDS", "30")
SIMULATION_STALE_SECONDS = envfloat("SIMULATION_STALE_SECONDS", "15")
SIMULATION_WATCHDOG_SECONDS = envfloat("SIMULATION_WATCHDOG_SECONDS", "5")
SIMULATION_CONCURRENCY = envint("SIMULATION_CONCURRENCY", "8")  # races per worker process

# The fanout exchange race status notices go through to the relays.
RELAY_CONTROL_EXCHANGE = os.getenv("RELAY_CONTROL_EXCHANGE", CONTROL_EXCHANGE)
WS_ALLOWED_ORIGINS = envlist("WS_ALLOWED_ORIGINS")
# Spectator share links (races/spectators/tokens.py): HS256 JWTs signed with this secret, so
# a ticketing site holding it can mint its own. Empty: derived from SECRET_KEY.
SPECTATOR_TOKEN_SECRET = os.getenv("SPECTATOR_TOKEN_SECRET", "")
# How often an open private-race socket re-checks its token (expiry, revoked label).
SPECTATOR_TOKEN_RECHECK_SECONDS = envfloat("SPECTATOR_TOKEN_RECHECK_SECONDS", "30")
AUDIT_RETENTION_DAYS = envint("AUDIT_RETENTION_DAYS", "90")
# Per web process (races/spectators/socket_limits.py, races/spectators/socket_writer.py);
# 0 turns a limit off,
# except WS_SEND_BUFFER_BYTES: unsent bytes after which a spectator is dropped.
WS_MAX_CONNECTIONS_PER_IP = envint("WS_MAX_CONNECTIONS_PER_IP", "100")
WS_CLIENT_MESSAGES_PER_SECOND = envfloat("WS_CLIENT_MESSAGES_PER_SECOND", "2")
WS_CLIENT_MESSAGE_BURST = envint("WS_CLIENT_MESSAGE_BURST", "20")
WS_SEND_BUFFER_BYTES = envint("WS_SEND_BUFFER_BYTES", str(16 * 1024 * 1024))
FRAMES_PER_SECOND = envfloat("FRAMES_PER_SECOND", "4")
GPX_MAX_BYTES = envint("GPX_MAX_BYTES", str(10 * 1024 * 1024))
GPX_MAX_POINTS = envint("GPX_MAX_POINTS", "100000")
CHECKPOINT_INTERVAL_KM = envfloat("CHECKPOINT_INTERVAL_KM", "5")
DEMO_GPX_DIR = Path(os.getenv("DEMO_GPX_DIR", str(BASE_DIR / "samples" / "gpx")))
MAP_TILE_URL = os.getenv("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = os.getenv(
    "MAP_TILE_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)
METRICS_PORT = envint("METRICS_PORT", "9100")
# Race control's alerts (races/organizer/race_alerts.py); seconds are race-clock seconds.
RACE_ALERT_NO_POSITION_S = envfloat("RACE_ALERT_NO_POSITION_S", "300")
RACE_ALERT_NOT_MOVING_S = envfloat("RACE_ALERT_NOT_MOVING_S", "300")
RACE_ALERT_NOT_MOVING_M = envfloat("RACE_ALERT_NOT_MOVING_M", "25")
RACE_ALERT_OFF_COURSE_M = envfloat("RACE_ALERT_OFF_COURSE_M", "150")
RACE_ALERT_BACKWARDS_M = envfloat("RACE_ALERT_BACKWARDS_M", "200")
RACE_ALERT_CHECKPOINT_GAP_M = envfloat("RACE_ALERT_CHECKPOINT_GAP_M", "500")
# Wall seconds between two alert checks of a race in the relay.
RACE_ALERT_CHECK_EVERY_S = envfloat("RACE_ALERT_CHECK_EVERY_S", "1")

# Tracker ingest (races/trackers/): per device token, fixes per second on average and
# the burst a phone emptying its offline queue may send at once (0: no limit); request
# bodies over TRACKER_MAX_BODY_BYTES are refused (413).
TRACKER_FIXES_PER_SECOND = envfloat("TRACKER_FIXES_PER_SECOND", "5")
TRACKER_FIX_BURST = envint("TRACKER_FIX_BURST", "120")
TRACKER_MAX_BODY_BYTES = envint("TRACKER_MAX_BODY_BYTES", "8192")
# Fixes less accurate than TRACKER_MAX_ACCURACY_M metres are ignored by the endpoints
# (answered 200, counted) and refused by the relay (old producers reach it directly); the
# relay also refuses a fix that implies a faster run than TRACKER_MAX_SPEED_MPS from the
# athlete's last fix, or one more than TRACKER_FUTURE_TOLERANCE_S ahead of its clock.
TRACKER_MAX_ACCURACY_M = envfloat("TRACKER_MAX_ACCURACY_M", "100")
TRACKER_MAX_SPEED_MPS = envfloat("TRACKER_MAX_SPEED_MPS", "12")
TRACKER_FUTURE_TOLERANCE_S = envfloat("TRACKER_FUTURE_TOLERANCE_S", "60")

# Uploads larger than the GPX limit are refused before they are read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = GPX_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = GPX_MAX_BYTES + 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}
