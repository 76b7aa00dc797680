"""The URLconf and views test_django.py drives: ordinary Django session code."""
from contextlib import suppress

from django.contrib.auth import authenticate, login, logout
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from edge_session import DataUnavailable
from edge_session.django import login_required, lookup


def claims_of(user):
    return {"name": user.get_full_name() or user.get_username(), "staff": user.is_staff}


def whoami(request):
    s = request.edge_session
    site_user = request.user.get_username() if getattr(request, "user", None) and request.user.is_authenticated else None
    return JsonResponse({"user": s.user, "claims": s.claims, "source": s.source, "site_user": site_user})


@csrf_exempt
def count(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return JsonResponse({"count": request.session["count"]})


def read(request):
    return JsonResponse({"count": request.session.get("count"), "keys": sorted(request.session.keys())})


def dump(request):
    """What the view sees: every key but Django's own."""
    return JsonResponse({k: v for k, v in request.session.items() if not k.startswith("_")})


@csrf_exempt
def add(request):
    """One more of ``key`` (a cart line), read first as a cart's add does."""
    key = request.GET["key"]
    request.session[key] = {"qty": request.session.get(key, {"qty": 0})["qty"] + 1}
    return JsonResponse({})


@csrf_exempt
def nested(request):
    request.session["list"].append(len(request.session["list"]))
    return JsonResponse({"list": request.session["list"]})


@csrf_exempt
def remove(request):
    with suppress(KeyError):
        del request.session[request.GET["key"]]
    return JsonResponse({})


@csrf_exempt
def put(request):
    value = {"big": "x" * 5000, "bad": object(), "none": None}[request.GET["what"]]
    request.session["value"] = value
    return JsonResponse({})


@csrf_exempt
def site_login(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    login(request, user)
    if "item" in request.POST:  # a change in the login's request
        request.session[request.POST["item"]] = {"qty": 1}
    return JsonResponse({"ok": True})


@csrf_exempt
def guest_login(request):
    """Sign-in from a guest (edge mode): Django's login (cycle_key: a new key, no fixation), the
    worker's login, and one more item in the cart."""
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    login(request, user)
    request.edge_session.login(user.get_username(), remember=request.POST.get("remember") == "1")
    request.session["cart:mug"] = {"qty": 1}
    edge = request.edge_session
    keys = None if edge.data is None else sorted(k for k in request.session.keys() if not k.startswith("_"))
    return JsonResponse({"user": edge.user, "guest": edge.guest, "data_status": edge.data_status, "keys": keys})


@csrf_exempt
def site_logout(request):
    logout(request)
    return JsonResponse({})


@csrf_exempt
def edge_login(request):
    request.edge_session.login(request.POST["user"], {"role": "reader"})
    request.session["visits"] = 0
    return JsonResponse({})


@csrf_exempt
def edge_logout(request):
    request.session.flush()
    return JsonResponse({"session_key": request.session.session_key})


@login_required
def private(request):
    return JsonResponse({"user": request.edge_session.user})


def unavailable(request):
    raise DataUnavailable("test")


urlpatterns = [
    path("whoami", whoami),
    path("count", count),
    path("read", read),
    path("dump", dump),
    path("add", add),
    path("nested", nested),
    path("remove", remove),
    path("put", put),
    path("site-login", site_login),
    path("site-logout", site_logout),
    path("guest-login", guest_login),
    path("edge-login", edge_login),
    path("edge-logout", edge_logout),
    path("private", private),
    path("raise", unavailable),
    path("edge-session/lookup", lookup),
]
