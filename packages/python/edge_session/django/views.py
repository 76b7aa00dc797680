"""The lookup endpoint for a site whose sessions are django.contrib.sessions, signed in with
django.contrib.auth (attach mode): ``path("edge-session/lookup", lookup)``.

The worker sends POST with ``Authorization: Bearer <LOOKUP_TOKEN>`` and
``{"session_id": "<the session cookie>"}``. The session is read through the configured
SESSION_ENGINE and judged as django.contrib.auth.get_user judges it: a user who is gone or
inactive, or whose password changed since the login, is no longer signed in (404)."""
import json
import logging
import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .conf import config

CREATED_KEY = "_edge_session_created"
MAX_BODY = 8192
log = logging.getLogger("edge_session")


def stamp_created(sender, request, user, **kwargs):
    """user_logged_in receiver: Django does not record when a session began; the worker's
    absolute timeout needs it (the lookup's ``created``)."""
    if request is not None and hasattr(request, "session"):
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


def _session_id(request):
    if len(request.body) > MAX_BODY:
        return None
    try:
        session_id = json.loads(request.body)["session_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return session_id if isinstance(session_id, str) and session_id else None


def _answer(user, data, claims_path):
    answer = {"user": user.get_username()}
    if claims_path:
        answer["claims"] = import_string(claims_path)(user)
    if isinstance(data.get(CREATED_KEY), int):
        answer["created"] = data[CREATED_KEY]
    return answer


@csrf_exempt  # server to server, authenticated by the bearer token
@require_POST
def lookup(request):
    """200 {user, claims?, created?} / 404 not_found / 401 / 400 / 503 store_unavailable."""
    cfg = config()
    token = cfg.get("LOOKUP_TOKEN") or ""
    if not token or not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return JsonResponse({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
    session_id = _session_id(request)
    if session_id is None:
        return JsonResponse({"error": "bad_request"}, status=400)
    try:
        data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_id).load()
        user = user_of_session(data)  # {} for an unknown, malformed or expired session
        answer = None if user is None else _answer(user, data, cfg.get("CLAIMS"))
    except Exception:  # the store or the database is down: never 404, which signs people out
        log.exception("edge-session lookup: the session could not be read")
        return JsonResponse({"error": "store_unavailable"}, status=503)
    if answer is None:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse(answer)
