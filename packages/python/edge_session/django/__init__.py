"""edge-session for Django.

settings.py::

    INSTALLED_APPS += ["edge_session.django"]        # the lookup's login-time stamp
    MIDDLEWARE += ["edge_session.django.EdgeSessionMiddleware"]   # request.edge_session
    EDGE_SESSION = {"SITE": "https://www.example.com", "REQUEST_SESSION": True}

urls.py (attach mode)::

    from edge_session.django import lookup
    path("edge-session/lookup", lookup)
"""
from .decorators import login_required
from .views import lookup
from .middleware import EdgeSessionMiddleware
from .adapter import SessionAdapter

__all__ = ["EdgeSessionMiddleware", "SessionAdapter", "login_required", "lookup"]
