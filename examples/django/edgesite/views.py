from django.contrib.auth import authenticate, login, logout
from django.contrib.sessions.models import Session
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .edge_session import edge_login_required


def _page(title, body, status=200):
    return HttpResponse(f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title><h1>{escape(title)}</h1>{body}", status=status)


def _local(path):
    return path if path and path.startswith("/") and url_has_allowed_host_and_scheme(path, allowed_hosts=None) else None


@require_GET
def home(request):
    return _page("Django site", '<p><a href="/account">Your account</a> · <a href="/login">Sign in</a></p>')


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


@require_GET
@edge_login_required
def account(request):
    return _page("Your account", f"<p>Signed in as <b>{escape(request.edge_user)}</b> (vouched for by {escape(request.edge_source)}).</p>")


@require_GET
@edge_login_required
def whoami(request):
    return JsonResponse(
        {
            "user": request.edge_user,
            "claims": request.edge_claims,
            "source": request.edge_source,
            "site_session_user": request.user.get_username() if request.user.is_authenticated else None,
        }
    )


@require_POST
@edge_login_required
def sign_out_other_devices(request):
    """Ends the user's other sessions on the site only: the worker learns it at its
    next lookup (REVALIDATE_AFTER), as for any session the site ends by itself."""
    ended = 0
    for s in Session.objects.filter(expire_date__gt=timezone.now()):
        if s.session_key != request.session.session_key and s.get_decoded().get("_auth_user_id") == str(request.user.pk):
            s.delete()
            ended += 1
    return JsonResponse({"ended": ended})
