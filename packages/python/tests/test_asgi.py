"""The ASGI middleware driven by hand with asyncio: a raw ASGI app, a receive that gives one
request, a send that records the messages."""
import asyncio
import json

from edge_session import Verifier
from edge_session.asgi import EdgeSessionMiddleware
from jwks_server import closed_port_url
from signing import SIGNER, SITE

verifier = Verifier(SITE, keys=SIGNER.jwks())


def run(app, headers=None, path="/", scope_type="http", query_string=b"", **options):
    """(status, headers, body, scope the app saw) of one request through the middleware."""
    sent, seen = [], {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def recording(scope, receive, send):
        seen["scope"] = scope
        await app(scope, receive, send)

    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    scope = {"type": scope_type, "path": path, "method": "GET", "headers": raw, "query_string": query_string}
    middleware = EdgeSessionMiddleware(recording, options.pop("verifier", verifier), **options)
    asyncio.run(middleware(scope, receive, send))
    if scope_type != "http":
        return sent, seen["scope"]
    start = sent[0]
    assert start["type"] == "http.response.start"
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], head, body, seen.get("scope")


async def site(scope, receive, send):
    s, path = scope["edge_session"], scope["path"]
    if path == "/count":
        s.data["n"] = s.data.get("n", 0) + 1
    elif path == "/login":
        s.login("김철수", remember=scope.get("query_string") == b"remember")
    elif path == "/big":
        s.data["big"] = "x" * 5000
    elif path == "/bad":
        s.data["bad"] = {1, 2}
    elif path == "/raise":
        s.login("alice", {"big": "y" * 3000})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
    await send({"type": "http.response.body", "body": (s.user or ("a guest" if s.guest else "nobody")).encode()})


def test_a_verified_request_and_a_read_that_sends_nothing():
    status, headers, body, scope = run(site, SIGNER.headers("bob", data={"n": 1}), "/read")
    assert (status, body) == (200, b"hello bob")
    assert "x-edge-session-data" not in headers and scope["edge_session"].data == {"n": 1}


def test_a_change_goes_into_the_response_head():
    status, headers, body, _ = run(site, SIGNER.headers("bob", data={"n": 1}), "/count")
    assert (status, headers["x-edge-session-data"], headers["content-type"]) == (200, '{"n":2}', "text/plain")


def test_login_from_an_anonymous_request():
    status, headers, body, _ = run(site, None, "/login")
    assert headers["x-edge-session-login"] == "%EA%B9%80%EC%B2%A0%EC%88%98"


def test_a_guest_a_visitor_and_remember_me():
    status, headers, body, scope = run(site, SIGNER.headers(guest=True, data={"n": 1}), "/count")
    assert (status, body, headers["x-edge-session-data"]) == (200, b"hello a guest", '{"n":2}')
    status, _, body, _ = run(site, SIGNER.headers(guest=True), required=True)
    assert status == 401 and json.loads(body)["error"] == "missing_assertion"
    status, headers, body, _ = run(site, None, "/count")
    assert (status, body, headers["x-edge-session-data"]) == (200, b"hello nobody", '{"n":1}')
    status, _, _, scope = run(site, {"X-Session-Data-Status": "unavailable"}, "/read")
    assert status == 200 and scope["edge_session"].data_status == "unavailable" and scope["edge_session"].data is None
    status, headers, _, _ = run(site, SIGNER.headers(guest=True, data={"n": 1}), "/login", query_string=b"remember")
    assert (headers["x-edge-session-login"], headers["x-edge-session-remember"]) == ("%EA%B9%80%EC%B2%A0%EC%88%98", "1")


def test_refusals_are_json():
    status, headers, body, scope = run(site, {**SIGNER.headers(), "X-Session-Assertion": "abc"})
    assert status == 401 and json.loads(body)["error"] == "invalid_assertion" and scope is None
    assert headers["cache-control"] == "no-store"
    status, _, body, _ = run(site, None, required=True)
    assert status == 401 and json.loads(body)["error"] == "missing_assertion"
    status, _, body, _ = run(site, SIGNER.headers(), verifier=Verifier(SITE, jwks_url=closed_port_url()))
    assert status == 503 and json.loads(body)["error"] == "keys_unavailable" and b"Traceback" not in body


def test_a_change_that_cannot_be_sent_replaces_the_response():
    for path, code in (("/big", "data_too_large"), ("/bad", "data_not_serializable"), ("/raise", "data_too_large")):
        status, headers, body, _ = run(site, SIGNER.headers(data={}), path)
        assert status == 503 and json.loads(body)["error"] == code, path
        assert b"hello" not in body and not any(k.startswith("x-edge-session") for k in headers)


def test_lifespan_and_websocket_pass_through_untouched():
    async def app(scope, receive, send):
        await send({"type": f"{scope['type']}.seen", "edge": "edge_session" in scope})

    for kind in ("lifespan", "websocket"):
        sent, scope = run(app, SIGNER.headers(), scope_type=kind)
        assert sent == [{"type": f"{kind}.seen", "edge": False}] and scope["type"] == kind
