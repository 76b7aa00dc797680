"""ASGI middleware (FastAPI, Starlette, any ASGI app): ``scope["edge_session"]``; in
Starlette and FastAPI, ``request.scope["edge_session"]``.

    app = EdgeSessionMiddleware(app, Verifier(site="https://www.example.com"))
    # FastAPI/Starlette: app.add_middleware(EdgeSessionMiddleware, verifier=Verifier(...))

HTTP only: lifespan and websocket scopes are passed through untouched.
"""
import asyncio
import logging

from .errors import EdgeSessionError, error_response

log = logging.getLogger("edge_session")


def _raw(headers):
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def _answer(send, error):
    status, headers, body = error_response(error)
    await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
    await send({"type": "http.response.body", "body": body})


class EdgeSessionMiddleware:
    """As edge_session.wsgi.EdgeSessionMiddleware: 401/503 JSON for a bad assertion or keys
    that cannot be had (and without one, if ``required``), ``scope[key]`` a Session, its
    headers added to the response head, or a 503 JSON answer instead when its change cannot
    be sent. The verification runs in a thread: fetching the JWKS blocks."""

    def __init__(self, app, verifier, required=False, key="edge_session"):
        self.app, self.verifier, self.required, self.key = app, verifier, required, key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            session = await asyncio.to_thread(self.verifier.session, scope.get("headers", []), self.required)
        except EdgeSessionError as e:
            log.warning("edge-session refused %s %s: %s", scope.get("method"), scope.get("path"), e.detail)
            return await _answer(send, e)
        scope = dict(scope)
        scope[self.key] = session
        state = {"started": False, "replaced": False}

        async def send_with_session(message):
            if state["replaced"]:
                return  # the app's own answer, after ours replaced it
            if message["type"] == "http.response.start":
                try:
                    extra = session.response_headers()
                except EdgeSessionError as e:
                    log.error("edge-session: the response to %s was replaced: %s", scope.get("path"), e.detail)
                    state["replaced"] = True
                    return await _answer(send, e)
                message = dict(message, headers=list(message.get("headers", [])) + _raw(extra))
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except EdgeSessionError as e:  # raised by the app itself (login() with claims too large)
            if state["started"] or state["replaced"]:
                raise
            log.error("edge-session: %s", e.detail)
            await _answer(send, e)
