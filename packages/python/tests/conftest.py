"""Django is configured here once, minimally (sqlite in memory), for test_django.py; the other
tests do not use it. The package tested is the one Python imports: the installed wheel (this
directory has no import path tricks), as printed in the report header."""
import django
from django.conf import settings

import edge_session
from signing import SIGNER, SITE


def pytest_report_header(config):
    return f"edge_session {edge_session.__version__} from {edge_session.__file__}"


def pytest_configure(config):
    settings.configure(
        SECRET_KEY="test-only-" + "x" * 40,
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "edge_session.django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "edge_session.django.EdgeSessionMiddleware",
        ],
        ROOT_URLCONF="django_site",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        EDGE_SESSION={
            "SITE": SITE,
            "KEYS": SIGNER.jwks(),
            "REQUEST_SESSION": True,
            "LOOKUP_TOKEN": "lookup-token",
            "CLAIMS": "django_site.claims_of",
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
