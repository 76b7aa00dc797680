from contextlib import suppress

from django.contrib.auth import authenticate, login, logout
from django.contrib.sessions.models import Session
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from edge_session.django import login_required


def _page(title, body, status=200):
    return HttpResponse(f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title><h1>{escape(title)}</h1>{body}", status=status)


def _local(path):
    return path if path and path.startswith("/") and url_has_allowed_host_and_scheme(path, allowed_hosts=None) else None


@require_GET
def home(request):
    return _page("Django site", '<p><a href="/account">Your account</a> · <a href="/cart">Your cart</a> · <a href="/login">Sign in</a></p>')


@require_http_methods(["GET", "POST"])
def login_view(request):
    back = _local(request.POST.get("return_to") or request.GET.get("return_to"))
    if request.method == "POST":
        user = authenticate(request, username=request.POST.get("username", ""), password=request.POST.get("password", ""))
        if user is not None:
            login(request, user)  # a new session key (no fixation); the worker sees the new cookie
            return HttpResponseRedirect(back or "/account")
    form = (
        '<form method="post" action="/login">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(get_token(request))}">'
        f'<input type="hidden" name="return_to" value="{escape(back or "")}">'
        '<input name="username"> <input name="password" type="password"> <button>Sign in</button></form>'
    )
    failed = request.method == "POST"
    return _page("Sign in", ("<p>Wrong username or password.</p>" if failed else "") + form, status=401 if failed else 200)


@require_POST
def logout_view(request):
    logout(request)  # flushes the session; its cleared cookie is the worker's logout signal
    return HttpResponseRedirect("/")


def claims_of(user):
    """What the worker passes on in X-Session-Claims and the assertion (EDGE_SESSION["CLAIMS"])."""
    return {"name": user.get_full_name() or user.get_username(), "role": "admin" if user.is_staff else "user"}


@require_GET
@login_required
def account(request):
    edge = request.edge_session
    return _page("Your account", f"<p>Signed in as <b>{escape(edge.user)}</b> (vouched for by {escape(edge.source)}).</p>")


@require_GET
@login_required
def whoami(request):
    edge = request.edge_session
    return JsonResponse(
        {
            "user": edge.user,
            "claims": edge.claims,
            "source": edge.source,
            "site_session_user": request.user.get_username() if request.user.is_authenticated else None,
        }
    )


@require_POST
@login_required
def sign_out_other_devices(request):
    """Ends the user's other sessions on the site only: the worker learns it at its
    next lookup (REVALIDATE_AFTER), as for any session the site ends by itself."""
    ended = 0
    for s in Session.objects.filter(expire_date__gt=timezone.now()):
        if s.session_key != request.session.session_key and s.get_decoded().get("_auth_user_id") == str(request.user.pk):
            s.delete()
            ended += 1
    return JsonResponse({"ended": ended})


# The cart, in request.session: with EDGE_SESSION["REQUEST_SESSION"], a signed-in user's is the
# worker's session data, not Django's session store. One key per product, "cart:<sku>":
# {"name", "qty"} (the name as it was when added), so that two products added at once (two
# tabs, two requests in flight) are both kept. Two changes of the same product at once: the one
# applied last wins.
#
# The cart pages are the worker's GUEST_PATHS, open to visitors too. The worker makes no guest
# sessions for a site that keeps its own (attach mode): a visitor's cart is in this site's own
# session (Django's, cookie "sessionid"), through the same request.session code. Signing in
# keeps it (login() keeps the session's data under a new key), and the first signed-in request
# that uses request.session moves it into the signed-in session's data.
PRODUCTS = {"tea": {"name": "Green tea"}, "cafe": {"name": "Café crème"}, "mug": {"name": "Mug"}}
CART = "cart:"
MAX_QTY = 99


def _cart_of(session):
    items = []
    for key, item in sorted(session.items()):
        if key.startswith(CART) and isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("qty"), int):
            items.append({"sku": key[len(CART):], "name": item["name"], "qty": item["qty"]})
    return items


def _sku(request):
    sku = request.POST.get("sku", "")
    return sku if sku in PRODUCTS else None


def _unavailable(request):
    """The session has data that cannot be read now: never show it as an empty cart."""
    return request.edge_session.data_status == "unavailable"


@require_GET
def api_cart(request):
    items = None if _unavailable(request) else _cart_of(request.session)
    return JsonResponse({"status": request.edge_session.data_status, "version": request.edge_session.data_version, "items": items})


@require_GET
def cart(request):
    # get_token: a visitor's first page gives it Django's csrftoken cookie, for the forms below
    csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(get_token(request))}">'
    if _unavailable(request):
        body = "<p>Your cart cannot be shown right now. It is not lost: try again in a moment.</p>"
    elif items := _cart_of(request.session):
        body = "<ul>" + "".join(
            f'<li>{escape(i["name"])} × {i["qty"]} <form method="post" action="/cart/remove">{csrf}'
            f'<input type="hidden" name="sku" value="{escape(i["sku"])}"><button>Remove</button></form></li>'
            for i in items
        ) + "</ul>"
    else:
        body = "<p>Your cart is empty.</p>"
    buy = "".join(
        f'<li>{escape(p["name"])} <form method="post" action="/cart/add">{csrf}'
        f'<input type="hidden" name="sku" value="{sku}"><button>Add</button></form></li>'
        for sku, p in PRODUCTS.items()
    )
    return _page("Your cart", f"{body}<h2>Products</h2><ul>{buy}</ul>")


@require_POST
def cart_add(request):
    sku = _sku(request)
    if sku is None:
        return _page("Your cart", "<p>No such product.</p>", status=400)
    if _unavailable(request):
        # The new quantity is computed from the current one: without it, do not guess.
        response = _page("Your cart", "<p>Your cart cannot be changed right now.</p>", status=503)
        response["Retry-After"] = "5"
        return response
    qty = request.session.get(CART + sku, {}).get("qty", 0)
    request.session[CART + sku] = {"name": PRODUCTS[sku]["name"], "qty": min(qty + 1, MAX_QTY)}
    return HttpResponseRedirect("/cart")


@require_POST
def cart_remove(request):
    sku = _sku(request)
    if sku is None:
        return _page("Your cart", "<p>No such product.</p>", status=400)
    # A removal needs no read: it is sent even when the data cannot be read right now.
    with suppress(KeyError):  # not in the cart
        del request.session[CART + sku]
    return HttpResponseRedirect("/cart")
