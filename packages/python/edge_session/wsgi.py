"""WSGI middleware (Flask, Bottle, Pyramid, any WSGI app): ``environ["edge_session"]``.

    app.wsgi_app = EdgeSessionMiddleware(app.wsgi_app, Verifier(site="https://www.example.com"))
"""
import logging
import sys

from .errors import EdgeSessionError, error_response

log = logging.getLogger("edge_session")
_STATUS = {401: "401 Unauthorized", 503: "503 Service Unavailable"}


def headers_of(environ):
    """The request headers of a WSGI environ, as {name: value} (Latin-1 text, as WSGI gives it)."""
    headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-")] = environ[name]
    return headers


def _answer(start_response, error, exc_info=None):
    status, headers, body = error_response(error)
    start_response(_STATUS.get(status, f"{status} Error"), headers, exc_info)
    return [body]


class EdgeSessionMiddleware:
    """Verifies every request (401 on a bad assertion, 503 when the keys cannot be had; with
    ``required`` also 401 without one), gives the app ``environ[key]`` (a Session) and adds
    the session's headers to the response; a change that cannot be sent (too large, not
    JSON) turns the response into a 503 JSON answer, logged."""

    def __init__(self, app, verifier, required=False, key="edge_session"):
        self.app, self.verifier, self.required, self.key = app, verifier, required, key

    def __call__(self, environ, start_response):
        try:
            session = self.verifier.session(headers_of(environ), self.required)
        except EdgeSessionError as e:
            log.warning("edge-session refused %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), e.detail)
            return _answer(start_response, e)
        environ[self.key] = session
        failed = []

        def start(status, headers, exc_info=None):
            try:
                extra = session.response_headers()
            except EdgeSessionError as e:
                log.error("edge-session: the response to %s was replaced: %s", environ.get("PATH_INFO"), e.detail)
                failed.append(e)
                return lambda data: None
            return start_response(status, list(headers) + extra, exc_info)

        try:
            body = _Body(self.app(environ, start))
        except EdgeSessionError as e:  # raised by the app itself (login() with claims too large)
            log.error("edge-session: %s", e.detail)
            return _answer(start_response, e, sys.exc_info())
        if failed:
            body.close()
            return _answer(start_response, failed[0])
        return body


class _Body:
    """The app's body, with its first chunk drawn already: PEP 3333 lets an app call
    start_response as late as that, and a refused change must be known before the head."""

    def __init__(self, result):
        self._result = result
        self._it = iter(result)
        self._first = []
        try:
            for chunk in self._it:
                self._first.append(chunk)
                break
        except BaseException:
            self.close()
            raise

    def __iter__(self):
        yield from self._first
        yield from self._it

    def close(self):
        if hasattr(self._result, "close"):
            self._result.close()
