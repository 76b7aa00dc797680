import logging

from ..errors import EdgeSessionError
from .adapter import SessionAdapter
from .conf import config, error_json, verifier

log = logging.getLogger("edge_session")


class EdgeSessionMiddleware:
    """``request.edge_session`` (an edge_session.Session) from a verified assertion; 401 JSON
    for a bad one, 503 when the keys cannot be had. With ``REQUEST_SESSION: True``,
    ``request.session`` becomes a SessionAdapter over the session's data (put this after
    SessionMiddleware and AuthenticationMiddleware, if the site has them). A change that
    cannot be sent (too large, not JSON), or an EdgeSessionError a view raises, is answered
    503 JSON instead of the response."""

    def __init__(self, get_response):
        self.get_response = get_response
        cfg = config()
        self.verifier = verifier(cfg)
        self.request_session = bool(cfg.get("REQUEST_SESSION", False))

    def __call__(self, request):
        try:
            session = self.verifier.session(request.headers)
        except EdgeSessionError as e:
            log.warning("edge-session refused %s %s: %s", request.method, request.path, e.detail)
            return error_json(e)
        request.edge_session = session
        if self.request_session:
            request.session = SessionAdapter(session, getattr(request, "session", None))
        response = self.get_response(request)
        if getattr(response, "edge_session_error", False):
            return response
        try:
            headers = session.response_headers()
        except EdgeSessionError as e:
            log.error("edge-session: the response to %s %s was replaced: %s", request.method, request.path, e.detail)
            return error_json(e)
        for name, value in headers:
            response[name] = value
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, EdgeSessionError):
            log.error("edge-session: %s %s: %s", request.method, request.path, exception.detail)
            return error_json(exception)
        return None
