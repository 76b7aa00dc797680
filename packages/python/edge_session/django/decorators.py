from functools import wraps

from ..errors import needs_user
from .conf import error_json


def login_required(view):
    """401 JSON (``missing_assertion``) unless the worker vouched for a user: a visitor without
    a session and a guest are refused alike. (Browser navigations without a session never get
    here on protected paths: the worker sends them to LOGIN_URL.)"""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.edge_session.user is None:
            return error_json(needs_user(request.edge_session.guest))
        return view(request, *args, **kwargs)

    return wrapped
