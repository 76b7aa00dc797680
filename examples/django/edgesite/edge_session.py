"""edge-session for a Django site: the lookup endpoint and the identity middleware.

urls.py:     path("edge-session/lookup", edge_session.lookup)
settings.py: MIDDLEWARE += ["edgesite.edge_session.EdgeSessionMiddleware"]
             EDGE_SESSION = {"LOOKUP_TOKEN": ..., "SITE": "https://www.example.com"}

The worker sends POST with `Authorization: Bearer <LOOKUP_TOKEN>` and
{"session_id": "<the sessionid cookie>"}. The session is read through the configured
SESSION_ENGINE and judged as django.contrib.auth.get_user judges it: a user who is
gone or inactive, or whose password changed since the login (the session's auth hash
no longer matches), is no longer signed in, and the answer is 404.

Session data (README.md, "Session data"): the middleware also sets request.edge_data
(the dict the worker sent in X-Session-Data, checked against the assertion's `dh`),
request.edge_data_status ("none", "ok" or "unavailable") and request.edge_data_version;
patch_session_data(response, {...}) changes it with the X-Edge-Session-Data header.
"""
import base64
import hashlib
import json
import time
from importlib import import_module

import jwt
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model, user_logged_in
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

CREATED_KEY = "_edge_session_created"


@receiver(user_logged_in)
def _stamp_created(sender, request, user, **kwargs):
    # Django does not record when a session began; the worker's absolute timeout does.
    request.session[CREATED_KEY] = int(time.time())


def user_of_session(data):
    """The user a session's data signs in, or None (as django.contrib.auth.get_user decides)."""
    User = get_user_model()
    try:
        pk = User._meta.pk.to_python(data[SESSION_KEY])
    except (KeyError, ValidationError):
        return None
    user = User._default_manager.filter(pk=pk).first()
    if user is None or not getattr(user, "is_active", True):
        return None
    session_hash = data.get(HASH_SESSION_KEY)
    if not session_hash or not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return None
    return user


def claims_of(user):
    """What the worker passes on in X-Session-Claims and the assertion's claims."""
    return {"name": user.get_full_name() or user.get_username(), "role": "admin" if user.is_staff else "user"}


@csrf_exempt  # server to server, authenticated by the bearer token
@require_POST
def lookup(request):
    token = settings.EDGE_SESSION.get("LOOKUP_TOKEN") or ""
    if not token or not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return JsonResponse({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        session_id = json.loads(request.body)["session_id"]
    except (ValueError, KeyError, TypeError):
        session_id = None
    if not isinstance(session_id, str) or not session_id:
        return JsonResponse({"error": "bad_request"}, status=400)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_id)
    data = store.load()  # {} for an unknown, malformed or expired session
    user = user_of_session(data)
    if user is None:
        return JsonResponse({"error": "not_found"}, status=404)
    answer = {"user": user.get_username(), "claims": claims_of(user)}
    if isinstance(data.get(CREATED_KEY), int):
        answer["created"] = data[CREATED_KEY]
    return JsonResponse(answer)


def _b64_sha256(value):
    # WSGI hands header values over as Latin-1 text: encoding back gives the bytes received
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode("latin-1")).digest()).rstrip(b"=").decode()


def patch_session_data(response, patch):
    """Changes the session's data with `response`: a top-level merge patch (each key set
    to its value, None removes the key), as compact ASCII JSON."""
    response["X-Edge-Session-Data"] = json.dumps(patch, ensure_ascii=True, separators=(",", ":"))
    return response


class EdgeSessionMiddleware:
    """Sets request.edge_user, request.edge_claims and request.edge_source from a
    verified X-Session-Assertion (None without one), and request.edge_data,
    request.edge_data_status and request.edge_data_version from the session data it
    signs; refuses a bad assertion, or data it does not sign, with 401."""

    def __init__(self, get_response):
        self.get_response = get_response
        cfg = settings.EDGE_SESSION
        self.site = cfg["SITE"]
        self.jwks = jwt.PyJWKClient(cfg.get("JWKS_URL") or f"{self.site}/.edge-session/jwks.json")

    def __call__(self, request):
        request.edge_user, request.edge_claims, request.edge_source = None, {}, None
        request.edge_data, request.edge_data_status, request.edge_data_version = None, "none", None
        token = request.headers.get("X-Session-Assertion")
        if token:
            try:
                key = self.jwks.get_signing_key_from_jwt(token).key
                a = jwt.decode(token, key, algorithms=["ES256"], issuer="edge-session", audience=self.site, leeway=30)
            except jwt.PyJWTError as e:
                return JsonResponse({"error": "invalid_assertion", "detail": type(e).__name__}, status=401)
            request.edge_user, request.edge_claims, request.edge_source = a["sub"], a.get("claims", {}), a.get("src")
            raw, dh = request.headers.get("X-Session-Data"), a.get("dh")
            if (raw is None) != (dh is None) or (raw is not None and not (isinstance(dh, str) and constant_time_compare(_b64_sha256(raw), dh))):
                return JsonResponse({"error": "invalid_assertion", "detail": "X-Session-Data is not the one signed"}, status=401)
            if request.headers.get("X-Session-Data-Status") == "unavailable":
                request.edge_data_status = "unavailable"
            elif raw is not None:
                request.edge_data, request.edge_data_status = json.loads(raw), "ok"
                request.edge_data_version = int(request.headers["X-Session-Data-Version"])
            else:
                request.edge_data = {}
        return self.get_response(request)


def edge_login_required(view):
    """401 unless the worker vouched for the request."""

    def wrapped(request, *args, **kwargs):
        if request.edge_user is None:
            return JsonResponse({"error": "invalid_assertion", "detail": "missing X-Session-Assertion"}, status=401)
        return view(request, *args, **kwargs)

    return wrapped
