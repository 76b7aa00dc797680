"""settings.EDGE_SESSION, read once per middleware (and at each lookup)."""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from ..errors import error_response
from ..verifier import Verifier

KNOWN = {"SITE", "JWKS_URL", "KEYS", "LOOKUP_TOKEN", "DATA_LIMIT", "REQUEST_SESSION", "CLAIMS"}


def config():
    cfg = getattr(settings, "EDGE_SESSION", None)
    if not isinstance(cfg, dict) or not cfg.get("SITE"):
        raise ImproperlyConfigured('settings.EDGE_SESSION = {"SITE": "https://www.example.com", ...} is required')
    unknown = set(cfg) - KNOWN
    if unknown:
        raise ImproperlyConfigured(f"EDGE_SESSION has unknown settings: {', '.join(sorted(unknown))}")
    return cfg


def verifier(cfg):
    try:
        return Verifier(cfg["SITE"], jwks_url=cfg.get("JWKS_URL"), keys=cfg.get("KEYS"), data_limit=cfg.get("DATA_LIMIT", 4096))
    except ValueError as e:
        raise ImproperlyConfigured(f"EDGE_SESSION: {e}") from None


def error_json(error):
    """The JSON answer for a typed error (marked, so the middleware adds no session headers)."""
    status, headers, body = error_response(error)
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    response.edge_session_error = True
    return response
