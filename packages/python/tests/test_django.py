"""edge_session.django with the Django test client (settings in conftest.py: sqlite in memory,
sessions and auth, REQUEST_SESSION on)."""
import json
import logging
import time

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from edge_session.django.views import CREATED_KEY
from jwks_server import closed_port_url
from signing import SIGNER, SITE


def http(headers):
    """Django's test client takes headers as headers=, names as given."""
    return {"headers": headers}


def edge(user="alice", **kwargs):
    return http(SIGNER.headers(user, **kwargs))


def patch(response):
    value = response.headers.get("X-Edge-Session-Data")
    return None if value is None else json.loads(value)


@pytest.fixture
def client():
    return Client()


@pytest.fixture(scope="module")
def alice():
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="alice", defaults={"first_name": "Alice", "is_staff": True})
    user.set_password("wonderland")
    user.is_active = True
    user.save()
    return user


def test_the_app_is_installed_and_stamps_logins(client, alice):
    assert apps.get_app_config("edge_session").name == "edge_session.django"
    before = int(time.time())
    assert client.login(username="alice", password="wonderland")
    assert before <= client.session[CREATED_KEY] <= time.time()


def test_request_edge_session_from_a_verified_assertion(client):
    body = client.get("/whoami", **edge("김철수", claims={"role": "admin"}, src="kv")).json()
    assert body == {"user": "김철수", "claims": {"role": "admin"}, "source": "kv", "site_user": None}
    assert client.get("/whoami").json()["user"] is None


def test_a_bad_assertion_is_401_json_and_keys_unavailable_503(client):
    r = client.get("/whoami", **http({**SIGNER.headers(), "X-Session-Assertion": "e30.e30.AAAA"}))
    assert r.status_code == 401 and r.json()["error"] == "invalid_assertion" and r["Cache-Control"] == "no-store"
    r = client.get("/whoami", **http({**SIGNER.headers(data={"a": 1}), "X-Session-Data-Version": "5"}))
    assert r.status_code == 401 and r.json()["error"] == "data_mismatch"
    with override_settings(EDGE_SESSION={"SITE": SITE, "JWKS_URL": closed_port_url()}):
        r = Client().get("/whoami", **edge())
    assert r.status_code == 503 and r.json()["error"] == "keys_unavailable" and b"Traceback" not in r.content


def test_request_session_reads_and_writes_edge_data(client):
    r = client.get("/read", **edge(data={"count": 4}))
    assert r.json() == {"count": 4, "keys": ["count"]} and patch(r) is None
    r = client.post("/count", **edge(data={"count": 4}))
    assert r.json() == {"count": 5} and patch(r) == {"count": 5}
    r = client.post("/nested", **edge(data={"list": [0]}))
    assert patch(r) == {"list": [0, 1]}
    r = client.post("/remove?key=gone", **edge(data={"gone": 1, "kept": 2}))
    assert patch(r) == {"gone": None}
    r = client.post("/remove?key=absent", **edge(data={"kept": 2}))
    assert r.status_code == 200 and patch(r) is None
    r = client.post("/put?what=none", **edge(data={"value": 1}))
    assert patch(r) == {"value": None}
    assert "sessionid" not in r.cookies, "edge data went into Django's session"


def test_unavailable_data_refuses_reads_and_still_sends_a_removal(client):
    r = client.get("/read", **edge(status="unavailable"))
    assert r.status_code == 503 and r.json()["error"] == "data_unavailable"
    r = client.post("/remove?key=cart:tea", **edge(status="unavailable"))
    assert r.status_code == 200 and patch(r) == {"cart:tea": None}


def test_a_change_that_cannot_be_sent_is_503_json_logged(client, caplog):
    for what, code in (("big", "data_too_large"), ("bad", "data_not_serializable")):
        with caplog.at_level(logging.ERROR, logger="edge_session"):
            r = client.post(f"/put?what={what}", **edge(data={}))
        assert r.status_code == 503 and r.json()["error"] == code
        assert "X-Edge-Session-Data" not in r.headers and b"Traceback" not in r.content
    assert "was replaced" in caplog.text
    r = client.get("/raise", **edge())
    assert r.status_code == 503 and r.json()["error"] == "data_unavailable"


def test_login_required(client):
    r = client.get("/private")
    assert r.status_code == 401 and r.json()["error"] == "missing_assertion"
    assert client.get("/private", **edge("bob")).json() == {"user": "bob"}


def test_login_required_refuses_a_guest_as_a_visitor(client):
    r = client.get("/private", **edge(guest=True, data={"cart:tea": {"qty": 1}}))
    assert r.status_code == 401 and r.json() == {"error": "missing_assertion", "detail": "this page needs a signed-in user: the request comes from a guest session (not signed in)"}
    assert client.get("/private").json()["detail"] == "this page needs a signed-in user: the request carries no X-Session-Assertion"


def test_request_session_for_visitors_and_guests(client):
    r = client.post("/count")
    assert r.json() == {"count": 1} and patch(r) is None, "with Django's session, a visitor's keys are the site's own"
    assert r.cookies["sessionid"].value and client.session["count"] == 1
    r = client.get("/read")
    assert r.json() == {"count": 1, "keys": ["count"]} and patch(r) is None
    client = Client()
    r = client.get("/read", **edge(guest=True, data={"count": 4}))
    assert r.json() == {"count": 4, "keys": ["count"]} and patch(r) is None
    r = client.post("/count", **edge(guest=True, data={"count": 4}))
    assert r.json() == {"count": 5} and patch(r) == {"count": 5}
    assert client.get("/whoami", **edge(guest=True)).json()["user"] is None


def test_a_lone_unavailable_status_is_a_visitor_whose_data_cannot_be_read(client):
    assert client.get("/whoami", **http({"X-Session-Data-Status": "unavailable"})).json()["user"] is None
    r = client.get("/read", **http({"X-Session-Data-Status": "unavailable"}))
    assert r.status_code == 503 and r.json()["error"] == "data_unavailable"
    r = client.post("/remove?key=cart:tea", **http({"X-Session-Data-Status": "unavailable"}))
    assert r.status_code == 200 and patch(r) == {"cart:tea": None}
    r = client.get("/whoami", **http({"X-Session-Data-Status": "unavailable", "X-Session-Data": "{}"}))
    assert r.status_code == 401 and r.json()["error"] == "invalid_assertion"


def test_djangos_login_keeps_a_guests_data(client, alice):
    r = client.post("/guest-login", {"username": "alice", "password": "wonderland"}, **edge(guest=True, data={"cart:tea": {"qty": 2}}))
    assert r.status_code == 200 and r["X-Edge-Session-Login"] == "alice" and "X-Edge-Session-Remember" not in r.headers
    assert r.json() == {"user": "alice", "guest": False, "data_status": "ok", "keys": ["cart:mug", "cart:tea"]}
    assert patch(r) == {"cart:mug": {"qty": 1}}, "only the new item: the worker carries the guest's cart, nothing removed"
    assert client.session["_auth_user_id"] == str(alice.pk), "Django's own keys stay in Django's session"
    r = client.post("/guest-login", {"username": "alice", "password": "wonderland", "remember": "1"}, **edge(guest=True, data={"cart:tea": {"qty": 2}}))
    assert r["X-Edge-Session-Remember"] == "1"


def test_djangos_login_from_a_guest_whose_data_cannot_be_read_does_not_empty_it(client, alice):
    r = client.post("/guest-login", {"username": "alice", "password": "wonderland"}, **edge(guest=True, status="unavailable"))
    assert r.json() == {"user": "alice", "guest": False, "data_status": "unavailable", "keys": None}
    assert patch(r) == {"cart:mug": {"qty": 1}}, "a blind change, nothing removed"


@override_settings(MIDDLEWARE=["edge_session.django.EdgeSessionMiddleware"])
def test_djangos_login_keeps_a_guests_data_without_djangos_session(alice):
    r = Client().post("/guest-login", {"username": "alice", "password": "wonderland"}, **edge(guest=True, data={"cart:tea": {"qty": 2}}))
    assert r.json()["keys"] == ["cart:mug", "cart:tea"]
    sent = patch(r)
    assert sent["cart:mug"] == {"qty": 1} and sent["_auth_user_id"] == str(alice.pk), "Django's keys are edge data here"
    assert "cart:tea" not in sent and None not in sent.values()


def test_edge_login_and_logout_signals(client):
    r = client.post("/edge-login", {"user": "zoë"})
    assert r["X-Edge-Session-Login"] == "zo%C3%AB" and r["X-Edge-Session-Claims"] == '{"role":"reader"}'
    assert patch(r) == {"visits": 0}
    r = client.post("/edge-logout", **edge(data={"visits": 3}))
    assert "X-Edge-Session-Logout" not in r.headers, "with Django's session, flush() is Django's logout"


SIGN_IN = {"username": "alice", "password": "wonderland"}


def visitor_signs_in(client, *keys, item=None):
    """Attach mode: a visitor adds ``keys`` to its cart (in Django's session), then signs in
    with Django's login (``item``: one more key added in the login's request)."""
    for key in keys:
        r = client.post(f"/add?key={key}")
        assert r.status_code == 200 and patch(r) is None
    guest = client.cookies["sessionid"].value if "sessionid" in client.cookies else None
    r = client.post("/site-login", {**SIGN_IN, **({"item": item} if item else {})})
    assert r.status_code == 200 and patch(r) is None, "nothing is sent at the login: the keys stay in Django's session"
    assert r.cookies["sessionid"].value != guest, "cycle_key: a new session key"
    return r


def test_attach_mode_a_visitors_cart_is_in_djangos_session_until_sign_in_moves_it(client, alice):
    r = client.post("/add?key=cart:tea")
    assert patch(r) is None and client.session["cart:tea"] == {"qty": 1}, "a visitor's keys are the site's own session's"
    assert client.post("/add?key=cart:tea").status_code == 200
    assert client.get("/dump").json() == {"cart:tea": {"qty": 2}}
    visitor_signs_in(client, item="cart:mug")
    cart = {"cart:tea": {"qty": 2}, "cart:mug": {"qty": 1}}
    assert {k: client.session[k] for k in cart} == cart, "cycle_key kept the visitor's keys"
    assert client.session["_auth_user_id"] == str(alice.pk) and isinstance(client.session[CREATED_KEY], int)
    assert client.get("/whoami", **edge("alice")).json()["site_user"] == "alice"

    # The first signed-in request: the keys the edge data lacks are written to it...
    r = client.get("/dump", **edge("alice"))
    assert r.json() == cart and patch(r) == cart
    assert {k: client.session[k] for k in cart} == cart, "a copy went before the worker stored its key"
    # ...as often as a request sees them missing (parallel requests, a change the worker refused).
    r = client.post("/add?key=cart:cafe", **edge("alice"))
    assert patch(r) == {**cart, "cart:cafe": {"qty": 1}}
    # Once the edge data shows a key, its copy goes (and nothing is sent for it).
    r = client.get("/dump", **edge("alice", data={**cart, "cart:cafe": {"qty": 1}}))
    assert r.json() == {**cart, "cart:cafe": {"qty": 1}} and patch(r) is None
    assert not any(k in client.session for k in cart), "the copies outlived the move"
    assert client.session["_auth_user_id"] == str(alice.pk) and isinstance(client.session[CREATED_KEY], int)
    r = client.post("/remove?key=cart:tea", **edge("alice", data=cart))
    assert patch(r) == {"cart:tea": None}
    r = client.get("/dump", **edge("alice", data={"cart:mug": {"qty": 1}}))
    assert r.json() == {"cart:mug": {"qty": 1}} and patch(r) is None, "a removed key came back"

    r = client.post("/site-logout", **edge("alice", data={"cart:mug": {"qty": 1}}))
    assert r.cookies["sessionid"].value == "" and patch(r) is None
    assert client.get("/dump").json() == {}


def test_a_key_the_edge_data_has_wins_and_its_django_copy_goes(client, alice):
    visitor_signs_in(client, "cart:tea", "cart:cafe")
    r = client.post("/add?key=cart:tea", **edge("alice", data={"cart:tea": {"qty": 5}}))
    assert patch(r) == {"cart:tea": {"qty": 6}, "cart:cafe": {"qty": 1}}, "the edge's cart:tea, plus one; cart:cafe moves"
    assert "cart:tea" not in client.session and client.session["cart:cafe"] == {"qty": 1}


def test_a_removal_in_the_moving_request_removes_the_django_copy_too(client, alice):
    visitor_signs_in(client, "cart:tea", "cart:cafe")
    r = client.post("/remove?key=cart:tea", **edge("alice"))
    assert patch(r) == {"cart:tea": None, "cart:cafe": {"qty": 1}}, "the removal is sent: a parallel move may have stored it"
    assert "cart:tea" not in client.session and client.session["cart:cafe"] == {"qty": 1}
    r = client.get("/dump", **edge("alice", data={"cart:cafe": {"qty": 1}}))
    assert r.json() == {"cart:cafe": {"qty": 1}} and patch(r) is None


def test_unavailable_data_moves_nothing_and_loses_nothing(client, alice):
    visitor_signs_in(client, "cart:tea", "cart:cafe")
    r = client.get("/dump", **edge("alice", status="unavailable"))
    assert r.status_code == 503 and r.json()["error"] == "data_unavailable"
    r = client.post("/remove?key=cart:cafe", **edge("alice", status="unavailable"))
    assert r.status_code == 200 and patch(r) == {"cart:cafe": None}, "a blind removal, of both copies"
    assert client.session["cart:tea"] == {"qty": 1} and "cart:cafe" not in client.session
    r = client.get("/dump", **edge("alice"))
    assert r.json() == {"cart:tea": {"qty": 1}} and patch(r) == {"cart:tea": {"qty": 1}}, "moved once the data could be read"


def test_keys_that_cannot_move_stay_in_djangos_session(client, alice, caplog):
    r = client.post("/put?what=big")  # a visitor's: Django's session takes it
    assert r.status_code == 200 and patch(r) is None
    visitor_signs_in(client, "cart:tea")
    with caplog.at_level(logging.WARNING, logger="edge_session"):
        r = client.get("/dump", **edge("alice"))
    assert r.status_code == 200 and r.json() == {} and patch(r) is None, "over DATA_LIMIT: nothing moves, nothing fails"
    assert "over 4096" in caplog.text
    assert client.session["value"] == "x" * 5000 and client.session["cart:tea"] == {"qty": 1}


def test_djangos_login_from_a_signed_in_session_sends_its_data_and_the_waiting_keys_move_after(client, alice):
    """Edge identity with a user, Django's session without one (cycle_key's signed-in path):
    the data is the new session's first data; keys waiting in Django's session move next."""
    assert client.post("/add?key=cart:tea").status_code == 200
    r = client.post("/site-login", SIGN_IN, **edge("alice", data={"cart:mug": {"qty": 3}}))
    assert patch(r) == {"cart:mug": {"qty": 3}} and client.session["cart:tea"] == {"qty": 1}
    r = client.get("/dump", **edge("alice", data={"cart:mug": {"qty": 3}}))
    assert r.json() == {"cart:mug": {"qty": 3}, "cart:tea": {"qty": 1}} and patch(r) == {"cart:tea": {"qty": 1}}


@override_settings(MIDDLEWARE=["edge_session.django.EdgeSessionMiddleware"])
def test_edge_mode_without_djangos_session():
    client = Client()
    r = client.post("/count")
    assert patch(r) == {"count": 1}, "a visitor's change is sent: on a guest path the worker makes it a guest session"
    r = client.post("/count", **edge(data={"_private": 1}))
    assert patch(r) == {"count": 1}
    r = client.get("/read", **edge(data={"_private": 1, "count": 2}))
    assert r.json() == {"count": 2, "keys": ["_private", "count"]}
    r = client.post("/edge-logout", **edge(data={"count": 2}))
    assert r["X-Edge-Session-Logout"] == "1" and patch(r) is None
    assert r.json() == {"session_key": None}


def lookup(client, session_id, token="lookup-token"):
    return client.post("/edge-session/lookup", json.dumps({"session_id": session_id}), content_type="application/json", headers={"Authorization": f"Bearer {token}"})


def test_lookup_answers_for_a_signed_in_session(client, alice):
    assert client.login(username="alice", password="wonderland")
    sid = client.cookies["sessionid"].value
    body = lookup(Client(), sid).json()
    assert body["user"] == "alice" and body["claims"] == {"name": "Alice", "staff": True}
    assert isinstance(body["created"], int)


def test_lookup_refusals(client, alice):
    other = Client()
    assert lookup(other, "nope").status_code == 404
    assert lookup(other, "nope", token="wrong").status_code == 401
    assert other.post("/edge-session/lookup", "{", content_type="application/json", headers={"Authorization": "Bearer lookup-token"}).status_code == 400
    assert other.post("/edge-session/lookup", json.dumps({"session_id": 7}), content_type="application/json", headers={"Authorization": "Bearer lookup-token"}).status_code == 400
    assert other.get("/edge-session/lookup").status_code == 405
    assert client.login(username="alice", password="wonderland")
    sid = client.cookies["sessionid"].value
    alice.set_password("changed")
    alice.save()
    assert lookup(other, sid).status_code == 404, "a password change ends the session"
    alice.set_password("wonderland")
    alice.save()
    assert client.login(username="alice", password="wonderland")
    sid = client.cookies["sessionid"].value
    alice.is_active = False
    alice.save()
    try:
        assert lookup(other, sid).status_code == 404
    finally:
        alice.is_active = True
        alice.save()


def test_lookup_with_the_store_down_is_503_not_404(client, monkeypatch):
    import edge_session.django.views as module

    def broken(name):
        raise RuntimeError("database is down")

    monkeypatch.setattr(module, "import_module", broken)
    r = lookup(client, "x")
    assert r.status_code == 503 and r.json() == {"error": "store_unavailable"}


def test_lookup_without_a_configured_token_refuses_everyone(client):
    with override_settings(EDGE_SESSION={"SITE": SITE, "KEYS": SIGNER.jwks()}):
        assert lookup(client, "x", token="").status_code == 401
