"""A small Flask site in edge mode: it keeps no sessions at all. Its login form (a public path)
checks the password and signs the user in with the worker (session.login); every other
request arrives with the worker's verified identity, and the cart lives in the worker's
session data. The edge-session package (packages/python) does the verifying, the signals and
the data changes, through its WSGI middleware.

Environment: EDGE_SITE (the site as browsers address it: the assertion's audience),
EDGE_JWKS_URL (default $EDGE_SITE/.edge-session/jwks.json).
Worker settings: PUBLIC_PATHS=/,/login and LOGIN_URL=/login; no LOOKUP_URL.
"""
import os

from flask import Flask, jsonify, redirect, request
from werkzeug.security import check_password_hash, generate_password_hash

from cart import cart
from edge_session import Verifier
from edge_session.wsgi import EdgeSessionMiddleware
from pages import edge, login_required, page

app = Flask(__name__)
verifier = Verifier(site=os.environ.get("EDGE_SITE", "http://127.0.0.1:8787"), jwks_url=os.environ.get("EDGE_JWKS_URL"))
app.wsgi_app = EdgeSessionMiddleware(app.wsgi_app, verifier)

# The accounts (a real site reads its database): user id -> (password hash, claims).
USERS = {
    "alice": (generate_password_hash("wonderland"), {"name": "Alice", "role": "admin"}),
    "김철수": (generate_password_hash("비밀번호"), {"name": "김철수", "role": "user"}),
}

def local(path):
    return path if path and path.startswith("/") and not path.startswith(("//", "/\\")) else None


@app.get("/")
def home():
    return page("Flask site", '<p><a href="/account">Your account</a> · <a href="/cart">Your cart</a> · <a href="/login">Sign in</a></p>')


LOGIN_FORM = """{% if failed %}<p>Wrong username or password.</p>{% endif %}
<form method="post" action="/login"><input type="hidden" name="return_to" value="{{ back }}">
<input name="username"> <input name="password" type="password"> <button>Sign in</button></form>"""


@app.route("/login", methods=["GET", "POST"])
def login():
    back = local(request.values.get("return_to")) or ""
    if request.method == "POST":
        user = request.form.get("username", "")
        known = USERS.get(user)
        if known and check_password_hash(known[0], request.form.get("password", "")):
            edge().login(user, known[1])  # the worker creates the session and sets its cookies
            return redirect(back or "/account", 303)
    failed = request.method == "POST"
    return page("Sign in", LOGIN_FORM, status=401 if failed else 200, failed=failed, back=back)


@app.post("/logout")
@login_required
def logout():
    edge().logout()  # the worker ends the session, its data with it, and clears the cookies
    return redirect("/", 303)


@app.get("/account")
@login_required
def account():
    s = edge()
    return page("Your account", "<p>Signed in as <b>{{ s.user }}</b> ({{ s.claims.name }}, vouched for by {{ s.source }}).</p>", s=s)


@app.get("/api/whoami")
@login_required
def whoami():
    s = edge()
    return jsonify(user=s.user, claims=s.claims, source=s.source)


app.register_blueprint(cart)
