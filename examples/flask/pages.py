"""What every page of the site uses: the request's session, the page layout, login_required."""
from functools import wraps

from flask import jsonify, render_template_string, request

PAGE = """<!doctype html><meta charset="utf-8"><title>{{ title }}</title><h1>{{ title }}</h1>
{% if notice %}<p class="notice">{{ notice }}</p>{% endif %}{{ body|safe }}"""


def edge():
    """This request's edge_session.Session (environ["edge_session"], set by the middleware)."""
    return request.environ["edge_session"]


def page(title, body="", status=200, notice=None, **context):
    return render_template_string(PAGE, title=title, notice=notice, body=render_template_string(body, **context)), status


def login_required(view):
    """401 unless the worker vouched for a user (it sends browser navigations without a
    session to LOGIN_URL itself: only direct requests get here)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if edge().user is None:
            return jsonify(error="missing_assertion"), 401
        return view(*args, **kwargs)

    return wrapped
