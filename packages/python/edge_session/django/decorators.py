from functools import wraps

from ..errors import MissingAssertion
from .conf import error_json


def login_required(view):
    """401 JSON (``missing_assertion``) unless the worker vouched for a user. (Browser
    navigations without a session never get here: the worker sends them to LOGIN_URL.)"""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.edge_session.user is None:
            return error_json(MissingAssertion("this needs a signed-in user"))
        return view(request, *args, **kwargs)

    return wrapped
