"""A small Django site that owns its sessions (django.contrib.sessions, database
backend) and is attached to edge-session through the lookup endpoint, with the edge-session
package (packages/python): its middleware verifies the worker's assertion, and
request.session keeps a signed-in user's cart in the worker's session data (a visitor's in
Django's session, until sign-in moves it).

Environment: DJANGO_SECRET_KEY (the same on every server of the site), DJANGO_DB
(the SQLite file), EDGE_LOOKUP_TOKEN (the worker's LOOKUP_TOKEN), EDGE_SITE (the
site as browsers address it: the assertion's audience), EDGE_JWKS_URL (default
$EDGE_SITE/.edge-session/jwks.json), COOKIE_SECURE=1 behind HTTPS.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret-change-me-in-production-0123456789")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "edge_session.django",  # stamps each login's time, which the lookup reports
    "edgesite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.edge_session from a verified X-Session-Assertion; request.session over its data
    "edge_session.django.EdgeSessionMiddleware",
]

ROOT_URLCONF = "edgesite.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions as Django keeps them by default: in the database, cookie "sessionid"
# (the worker's SESSION_COOKIE).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "sessionid"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = os.environ.get("COOKIE_SECURE") == "1"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

EDGE_SESSION = {
    "SITE": os.environ.get("EDGE_SITE", "http://127.0.0.1:8787"),
    "JWKS_URL": os.environ.get("EDGE_JWKS_URL"),
    "LOOKUP_TOKEN": os.environ.get("EDGE_LOOKUP_TOKEN", ""),
    "CLAIMS": "edgesite.views.claims_of",
    # request.session keeps its keys in the worker's session data; Django's own ("_auth_user_id",
    # ...) stay in Django's session, and so do a visitor's (the worker makes no guest sessions
    # in attach mode) until sign-in moves them
    "REQUEST_SESSION": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING"},
        "edge_session": {"handlers": ["console"], "level": "WARNING"},
    },
}
