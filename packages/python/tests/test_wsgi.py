import json
import logging
from wsgiref.util import setup_testing_defaults

from edge_session import Verifier
from edge_session.wsgi import EdgeSessionMiddleware, headers_of
from jwks_server import closed_port_url
from signing import SIGNER, SITE

verifier = Verifier(SITE, keys=SIGNER.jwks())


def environ_for(headers=None, path="/", method="GET"):
    environ = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    environ.update(PATH_INFO=path, REQUEST_METHOD=method)
    setup_testing_defaults(environ)
    return environ


def call(app, headers=None, path="/", **options):
    """Runs a WSGI app behind the middleware, as a server would: (status, headers, body)."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    result = EdgeSessionMiddleware(app, options.pop("verifier", verifier), **options)(environ_for(headers, path), start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return seen["status"], dict(seen["headers"]), body


def site(environ, start_response):
    """A small site: /count counts in data, /read reads it, /login, /logout, /big, /bad."""
    s, path = environ["edge_session"], environ["PATH_INFO"]
    if path == "/count":
        s.data["n"] = s.data.get("n", 0) + 1
    elif path == "/login":
        s.login("zoë", {"role": "reader"})
        s.data["visits"] = 0
    elif path == "/remember":
        s.login("zoë", remember=True)
    elif path == "/logout":
        s.logout()
    elif path == "/big":
        s.data["big"] = "x" * 5000
    elif path == "/bad":
        s.data["when"] = object()
    body = json.dumps({"user": s.user, "guest": s.guest, "data": s.data if path != "/bad" else "?"}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_a_verified_request_gets_its_session_and_a_read_sends_nothing():
    status, headers, body = call(site, SIGNER.headers("alice", data={"n": 2}), "/read")
    assert status == "200 OK" and json.loads(body) == {"user": "alice", "guest": False, "data": {"n": 2}}
    assert not any(k.startswith("X-Edge-Session") for k in headers)


def test_a_change_is_sent_as_a_patch():
    _, headers, _ = call(site, SIGNER.headers("alice", data={"n": 2}), "/count")
    assert headers["X-Edge-Session-Data"] == '{"n":3}'


def test_login_and_logout_signals():
    _, headers, _ = call(site, None, "/login")
    assert (headers["X-Edge-Session-Login"], headers["X-Edge-Session-Claims"]) == ("zo%C3%AB", '{"role":"reader"}')
    assert headers["X-Edge-Session-Data"] == '{"visits":0}'
    _, headers, _ = call(site, SIGNER.headers("alice", data={"n": 1}), "/logout")
    assert headers["X-Edge-Session-Logout"] == "1" and "X-Edge-Session-Data" not in headers


def test_anonymous_passes_unless_required():
    status, _, body = call(site, None, "/read")
    assert status == "200 OK" and json.loads(body)["user"] is None
    status, headers, body = call(site, None, "/read", required=True)
    assert status == "401 Unauthorized"
    assert json.loads(body)["error"] == "missing_assertion" and headers["Cache-Control"] == "no-store"


def test_a_guest_reads_and_writes_and_is_refused_where_a_user_is_required():
    status, headers, body = call(site, SIGNER.headers(guest=True, data={"n": 2}), "/count")
    assert status == "200 OK" and json.loads(body) == {"user": None, "guest": True, "data": {"n": 3}}
    assert headers["X-Edge-Session-Data"] == '{"n":3}'
    status, _, body = call(site, SIGNER.headers(guest=True, data={"n": 2}), "/read", required=True)
    assert status == "401 Unauthorized" and json.loads(body)["error"] == "missing_assertion"
    assert "guest session" in json.loads(body)["detail"]


def test_a_visitors_change_is_sent_and_a_lone_unavailable_status_is_accepted():
    status, headers, body = call(site, None, "/count")
    assert status == "200 OK" and headers["X-Edge-Session-Data"] == '{"n":1}'
    status, headers, body = call(site, {"X-Session-Data-Status": "unavailable"}, "/read")
    assert status == "200 OK" and json.loads(body) == {"user": None, "guest": False, "data": None}
    status, _, body = call(site, {"X-Session-Data-Status": "unavailable", "X-Session-Source": "state"}, "/read")
    assert status == "401 Unauthorized" and json.loads(body)["error"] == "invalid_assertion"


def test_login_with_remember():
    _, headers, _ = call(site, SIGNER.headers(guest=True, data={"n": 1}), "/remember")
    assert (headers["X-Edge-Session-Login"], headers["X-Edge-Session-Remember"]) == ("zo%C3%AB", "1")
    assert "X-Edge-Session-Data" not in headers, "the guest's data is carried by the worker"
    _, headers, _ = call(site, None, "/login")
    assert "X-Edge-Session-Remember" not in headers


def test_a_bad_assertion_is_401_json_without_a_traceback():
    status, headers, body = call(site, {**SIGNER.headers(), "X-Session-Assertion": "e30.e30.AAAA"}, "/read")
    assert status == "401 Unauthorized" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "invalid_assertion", "detail": "alg must be ES256, not None"}
    status, _, body = call(site, {**SIGNER.headers(data={"n": 1}), "X-Session-Data": '{"n":9}'}, "/read")
    assert status == "401 Unauthorized" and json.loads(body)["error"] == "data_mismatch"


def test_keys_that_cannot_be_had_are_503():
    status, _, body = call(site, SIGNER.headers(), "/read", verifier=Verifier(SITE, jwks_url=closed_port_url()))
    assert status == "503 Service Unavailable" and json.loads(body)["error"] == "keys_unavailable"
    assert b"Traceback" not in body


def test_a_change_that_cannot_be_sent_replaces_the_response_with_503(caplog):
    for path, code in (("/big", "data_too_large"), ("/bad", "data_not_serializable")):
        with caplog.at_level(logging.ERROR, logger="edge_session"):
            status, headers, body = call(site, SIGNER.headers(data={}), path)
        assert status == "503 Service Unavailable", path
        assert json.loads(body)["error"] == code and b"Traceback" not in body
        assert not any(k.startswith("X-Edge-Session") for k in headers)
        assert f"the response to {path} was replaced" in caplog.text


def test_an_app_that_starts_its_response_late_and_is_closed_when_replaced():
    closed = []

    def streaming(environ, start_response):
        environ["edge_session"].data["big"] = "x" * 5000 if environ["PATH_INFO"] == "/big" else 1
        try:
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"one "
            yield b"two"
        finally:
            closed.append(True)

    status, headers, body = call(streaming, SIGNER.headers(data={}), "/small")
    assert (status, body, headers["X-Edge-Session-Data"]) == ("200 OK", b"one two", '{"big":1}')
    status, _, body = call(streaming, SIGNER.headers(data={}), "/big")
    assert status == "503 Service Unavailable" and b"one" not in body and closed == [True, True]


def test_an_error_the_app_raises_is_answered_as_json():
    def app(environ, start_response):
        environ["edge_session"].login("alice", {"x": "y" * 3000})

    status, _, body = call(app, None, "/login")
    assert status == "503 Service Unavailable" and json.loads(body)["error"] == "data_too_large"


def test_headers_of_an_environ():
    environ = environ_for({"X-Session-User": "alice"})
    environ["CONTENT_TYPE"] = "application/json"
    headers = headers_of(environ)
    assert headers["X-SESSION-USER"] == "alice" and headers["CONTENT-TYPE"] == "application/json"
