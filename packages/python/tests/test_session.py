import json
import math

import pytest

from edge_session import DataNotSerializable, DataTooLarge, Session, Verifier
from signing import SIGNER, SITE

verifier = Verifier(SITE, keys=SIGNER.jwks())


def session(data=None, status=None, limit=4096, user="alice", **kwargs):
    return Session(verifier.verify(SIGNER.headers(user, data=data, status=status, **kwargs)), data_limit=limit)


def guest(data=None, status=None):
    return session(data, status, guest=True)


def patch(s):
    values = [v for k, v in s.response_headers() if k == "X-Edge-Session-Data"]
    return json.loads(values[0]) if values else None


def test_a_request_that_only_reads_sends_nothing():
    s = session({"cart": [1, 2], "n": 1})
    assert s.data["cart"] == [1, 2] and s.data.get("n") == 1 and "x" not in s.data
    s.data["n"] = 1  # the same value again
    assert s.response_headers() == []


def test_changed_and_new_keys_are_sent_and_nested_changes_caught():
    s = session({"cart": [1, 2], "n": 1, "keep": {"a": 1}})
    s.data["cart"].append(3)
    s.data["new"] = "é"
    assert patch(s) == {"cart": [1, 2, 3], "new": "é"}
    value = dict(s.response_headers())["X-Edge-Session-Data"]
    assert value == '{"cart":[1,2,3],"new":"\\u00e9"}'  # compact ASCII, the same on every call
    assert dict(s.response_headers())["X-Edge-Session-Data"] == value


def test_removed_keys_and_none_are_sent_as_null():
    s = session({"a": 1, "b": 2, "c": 3})
    del s.data["a"]
    s.data["b"] = None
    s.data["absent"] = None  # nothing to remove: not sent
    s.patch({"c": None})
    assert patch(s) == {"a": None, "b": None, "c": None}


def test_every_json_header_is_ascii_and_has_no_del():
    s = session({})
    s.data["text"] = "a\x7fb 김"
    value = dict(s.response_headers())["X-Edge-Session-Data"]
    assert value.isascii() and "\x7f" not in value and "\\u007f" in value
    assert json.loads(value) == {"text": "a\x7fb 김"}


def test_a_visitors_changes_are_sent_the_worker_makes_them_a_guest_sessions_first_data():
    s = Session(None)
    assert (s.user, s.guest, s.remember, s.data, s.data_status, s.source) == (None, False, False, {}, "none", None)
    assert s.response_headers() == [], "nothing stored, nothing sent"
    s.data["cart"] = [1]
    s.flash("notice", "hi")
    assert s.response_headers() == [("X-Edge-Session-Data", '{"cart":[1],"notice":"hi"}')]


def test_a_visitor_the_worker_could_not_check_has_unavailable_data_and_blind_changes_go():
    s = Session(None, data_status="unavailable")
    assert (s.user, s.guest, s.data, s.data_status) == (None, False, None, "unavailable")
    assert s.flash("notice") is None
    s.patch({"cart:tea": None})
    assert patch(s) == {"cart:tea": None}
    with pytest.raises(ValueError):
        Session(None, data_status="ok")


def test_a_guest_reads_and_writes_its_data_as_a_user_does():
    s = guest({"cart:tea": {"qty": 1}, "notice": "Added"})
    assert (s.user, s.guest, s.remember, s.claims, s.source, s.auth_time) == (None, True, False, {}, "state", None)
    assert (s.data_status, s.data_version, s.session_hash) == ("ok", 1, "ab" * 32)
    s.data["cart:tea"]["qty"] = 2
    s.data["cart:mug"] = {"qty": 1}
    assert s.flash("notice") == "Added"
    assert patch(s) == {"cart:tea": {"qty": 2}, "cart:mug": {"qty": 1}, "notice": None}


def test_login_from_a_guest_keeps_its_data_and_sends_only_the_pending_changes():
    s = guest({"cart:tea": {"qty": 1}})
    s.data["cart:mug"] = {"qty": 1}
    s.login("alice", {"role": "reader"})
    assert (s.user, s.guest, s.data_status, s.data_version) == ("alice", False, "ok", None)
    assert s.data == {"cart:tea": {"qty": 1}, "cart:mug": {"qty": 1}}, "the cart is still there"
    s.data["welcome"] = True
    assert s.response_headers() == [
        ("X-Edge-Session-Login", "alice"),
        ("X-Edge-Session-Claims", '{"role":"reader"}'),
        ("X-Edge-Session-Data", '{"cart:mug":{"qty":1},"welcome":true}'),
    ]
    unchanged = guest({"cart:tea": {"qty": 1}})
    unchanged.login("alice")
    assert unchanged.response_headers() == [("X-Edge-Session-Login", "alice")], "the worker carries the data: nothing re-sent"
    visitor = Session(None)
    visitor.data["lang"] = "fr"
    visitor.login("bob")
    assert visitor.response_headers() == [("X-Edge-Session-Login", "bob"), ("X-Edge-Session-Data", '{"lang":"fr"}')]


def test_logout_from_a_guest_ends_it():
    s = guest({"cart": [1]})
    s.data["cart"].append(2)
    s.logout()
    assert (s.guest, s.user, s.data_status) == (False, None, "none")
    assert s.response_headers() == [("X-Edge-Session-Logout", "1")]


def test_login_with_remember_sends_the_remember_signal():
    s = Session(None)
    s.login("alice", remember=True)
    assert s.remember is True
    assert s.response_headers() == [("X-Edge-Session-Login", "alice"), ("X-Edge-Session-Remember", "1")]
    g = guest({})
    g.login("alice", {"role": "reader"}, remember=True)
    assert dict(g.response_headers()) == {"X-Edge-Session-Login": "alice", "X-Edge-Session-Claims": '{"role":"reader"}', "X-Edge-Session-Remember": "1"}
    plain = Session(None)
    plain.login("alice", remember=False)
    assert plain.remember is False and plain.response_headers() == [("X-Edge-Session-Login", "alice")]
    with pytest.raises(TypeError, match="remember must be True or False"):
        Session(None).login("alice", remember="yes")


def test_remember_is_the_assertions_and_ends_with_logout():
    s = session(remember=True)
    assert s.remember is True and s.identity.remember is True
    s.logout()
    assert s.remember is False
    again = session(remember=True)
    again.login("bob")
    assert again.remember is False, "a new login says again"


def test_login_with_a_unicode_user_percent_encoded_and_the_new_sessions_first_data():
    s = Session(None)
    s.login("김철수 100%", {"role": "reader", "name": "Zoë"})
    s.data["visits"] = 0
    headers = dict(s.response_headers())
    assert headers["X-Edge-Session-Login"] == "%EA%B9%80%EC%B2%A0%EC%88%98%20100%25"
    assert headers["X-Edge-Session-Claims"] == '{"role":"reader","name":"Zo\\u00eb"}'
    assert json.loads(headers["X-Edge-Session-Data"]) == {"visits": 0}
    assert (s.user, s.claims) == ("김철수 100%", {"role": "reader", "name": "Zoë"})


def test_login_replaces_a_session_whose_data_does_not_carry_over():
    s = session({"cart": [1]})
    s.login("bob")
    assert s.data == {} and s.data_status == "none"
    assert dict(s.response_headers()) == {"X-Edge-Session-Login": "bob"}  # no removals: the new session is empty


def test_login_refuses_what_the_worker_would():
    s = Session(None)
    with pytest.raises(ValueError):
        s.login("")
    with pytest.raises(TypeError):
        s.login("alice", ["admin"])
    with pytest.raises(DataTooLarge, match="claims"):
        s.login("alice", {"x": "y" * 2100})
    with pytest.raises(DataNotSerializable):
        s.login("alice", {"when": object()})
    assert s.user is None and s.response_headers() == []


def test_logout_sends_no_patch():
    s = session({"cart": [1]})
    s.data["cart"].append(2)
    s.logout()
    s.data["more"] = 1
    assert s.response_headers() == [("X-Edge-Session-Logout", "1")]
    assert (s.user, s.claims, s.data_status) == (None, {}, "none")


def test_flash_is_read_once():
    s = session({"notice": "Saved"})
    assert s.flash("notice") == "Saved"
    assert s.flash("notice") is None and s.flash("never") is None
    s.flash("error", "Nope")
    assert patch(s) == {"notice": None, "error": "Nope"}


def test_claims_are_a_read_only_copy_that_is_still_json():
    s = Session(verifier.verify(SIGNER.headers(claims={"roles": ["a"], "org": {"id": 1}})))
    for change in (lambda c: c.update(x=1), lambda c: c.__setitem__("x", 1), lambda c: c["org"].pop("id"), lambda c: c.clear()):
        with pytest.raises(TypeError):
            change(s.claims)
    assert json.loads(json.dumps(s.claims)) == {"roles": ["a"], "org": {"id": 1}}
    assert s.identity.claims == {"roles": ["a"], "org": {"id": 1}}


def test_data_over_the_limit_is_refused_before_it_is_sent():
    s = session({"a": "x" * 3000})
    s.data["b"] = "y" * 1100
    with pytest.raises(DataTooLarge, match="over the limit of 4096") as e:
        s.response_headers()
    assert (e.value.code, e.value.status) == ("data_too_large", 503)
    s.data["a"] = None  # removing a big key makes room
    assert patch(s) == {"a": None, "b": "y" * 1100}


def test_a_patch_over_the_header_limit_is_refused_whatever_the_data_limit():
    s = session({}, limit=10**6)
    s.data["big"] = "z" * 33000
    with pytest.raises(DataTooLarge, match="over 32768"):
        s.response_headers()


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, b"bytes", math.nan, math.inf, lambda: 1, {("a",): 1}],
    ids=["object", "set", "bytes", "nan", "inf", "function", "tuple-key"],
)
def test_values_that_are_not_json(value):
    s = session({})
    s.data["bad"] = value
    with pytest.raises(DataNotSerializable, match=r"data\['bad'\] is not JSON") as e:
        s.response_headers()
    assert (e.value.code, e.value.status) == ("data_not_serializable", 503)


def test_a_cycle_and_a_key_that_is_not_a_string():
    s = session({})
    loop = []
    loop.append(loop)
    s.data["loop"] = loop
    with pytest.raises(DataNotSerializable):
        s.response_headers()
    s = session({})
    s.data[1] = "one"
    with pytest.raises(DataNotSerializable, match="keys must be strings"):
        s.response_headers()


def test_unavailable_data_is_none_and_a_change_that_needs_no_read_is_still_sent():
    s = session(status="unavailable")
    assert s.data is None and s.data_status == "unavailable"
    assert s.flash("notice") is None
    with pytest.raises(TypeError):
        s.data = {}
    assert s.response_headers() == []
    s.patch({"cart:tea": None, "seen": True})
    assert patch(s) == {"cart:tea": None, "seen": True}
    s.patch({"bad": object()})
    with pytest.raises(DataNotSerializable):
        s.response_headers()


def test_patch_sends_its_keys_whatever_was_read():
    s = session({"a": 1, "b": 2})
    s.patch({"a": 1, "b": None, "c": 3})
    assert s.data == {"a": 1, "c": 3}
    assert patch(s) == {"a": 1, "b": None, "c": 3}, "a is sent although it did not change"
    with pytest.raises(TypeError):
        s.patch([("a", 1)])
    visitor = Session(None)
    visitor.patch({"a": 1})
    assert patch(visitor) == {"a": 1}


def test_the_data_may_be_replaced_whole():
    s = session({"a": 1, "b": 2})
    s.data = {"b": 2, "c": 3}
    assert patch(s) == {"a": None, "c": 3}
    with pytest.raises(TypeError):
        s.data = [1]


def test_the_session_keeps_what_the_worker_said():
    s = session({"a": 1})
    assert (s.user, s.source, s.data_status, s.data_version, s.session_hash) == ("alice", "ticket", "ok", 1, "ab" * 32)
    s.data["a"] = 2
    assert s.identity.data == {"a": 1}, "the identity is the data as it arrived"
