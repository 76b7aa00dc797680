import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge_session import DataMismatch, Identity, InvalidAssertion, MissingAssertion, Verifier, data_hash
from edge_session.keys import es256_keys
from signing import SID, SIGNER, SITE, Signer, compact

verifier = Verifier(SITE, keys=SIGNER.jwks())


def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(headers, error=InvalidAssertion):
    with pytest.raises(error) as e:
        verifier.verify(headers)
    return e.value.detail


def test_a_valid_assertion_gives_the_identity():
    identity = verifier.verify(SIGNER.headers("alice", claims={"role": "admin"}))
    assert isinstance(identity, Identity)
    assert (identity.user, identity.claims, identity.source, identity.session_hash) == ("alice", {"role": "admin"}, "ticket", SID)
    assert (identity.data, identity.data_version, identity.data_status) == ({}, None, "none")
    assert identity.auth_time <= time.time()
    assert (identity.guest, identity.remember) == (False, False)


def test_a_unicode_user_arrives_percent_encoded_and_is_decoded():
    headers = SIGNER.headers("김철수")
    assert headers["X-Session-User"] == "%EA%B9%80%EC%B2%A0%EC%88%98"
    assert verifier.verify(headers).user == "김철수"


def test_header_names_in_any_case_and_pairs_of_bytes():
    headers = SIGNER.headers("bob")
    assert verifier.verify({k.lower(): v for k, v in headers.items()}).user == "bob"
    assert verifier.verify([(k.encode(), v.encode()) for k, v in headers.items()]).user == "bob"


def test_data_signed_by_dh_and_dv():
    data = {"cart:tea": {"name": "Café", "qty": 2}}
    identity = verifier.verify(SIGNER.headers(data=data, version=7))
    assert (identity.data, identity.data_version, identity.data_status) == (data, 7, "ok")


def test_dh_is_over_the_exact_bytes_as_latin_1_text():
    text = compact({"a": "é"})
    assert text.isascii() and data_hash(text) == data_hash(text.encode())
    assert data_hash("\xe9") == data_hash(b"\xe9")


def test_no_assertion_is_anonymous_and_missing_where_required():
    assert verifier.verify({"Accept": "text/html"}) is None
    assert verifier.session({}).user is None
    with pytest.raises(MissingAssertion) as e:
        verifier.session({}, required=True)
    assert (e.value.code, e.value.status) == ("missing_assertion", 401)


@pytest.mark.parametrize("name", ["X-Session-User", "x-session-claims", "X-Session-Source", "X-Session-Data", "X-Session-Data-Version", "X-Session-Data-Status"])
def test_identity_headers_without_an_assertion_are_forged(name):
    assert f"{name.lower()} without X-Session-Assertion" in refused({name: "alice"})


def test_a_lone_unavailable_status_is_a_visitor_the_worker_could_not_check():
    assert verifier.verify({"X-Session-Data-Status": "unavailable"}) is None
    session = verifier.session({"X-Session-Data-Status": "unavailable"})
    assert (session.user, session.guest, session.data, session.data_status, session.data_version) == (None, False, None, "unavailable", None)
    assert verifier.session({}).data_status == "none"
    # any other value, or beside any other identity header, is still forged
    assert 'only "unavailable" comes alone' in refused({"X-Session-Data-Status": "later"})
    for name in ("X-Session-User", "X-Session-Data", "X-Session-Source", "X-Session-Data-Version", "X-Session-Claims"):
        assert f"{name.lower()} without X-Session-Assertion" in refused({"X-Session-Data-Status": "unavailable", name: "1"})
    with pytest.raises(MissingAssertion):
        verifier.session({"X-Session-Data-Status": "unavailable"}, required=True)


@pytest.mark.parametrize("src", ["state", "ticket", "stale"])
def test_a_guests_assertion_no_user_guest_true_its_data(src):
    headers = SIGNER.headers(guest=True, data={"cart:tea": {"qty": 2}}, version=3, src=src)
    assert "X-Session-User" not in headers
    identity = verifier.verify(headers)
    assert (identity.user, identity.guest, identity.remember, identity.claims, identity.auth_time) == (None, True, False, {}, None)
    assert (identity.source, identity.session_hash) == (src, SID)
    assert (identity.data, identity.data_version, identity.data_status) == ({"cart:tea": {"qty": 2}}, 3, "ok")
    assert identity.payload["guest"] is True and "sub" not in identity.payload
    unavailable = verifier.verify(SIGNER.headers(guest=True, status="unavailable"))
    assert (unavailable.guest, unavailable.data, unavailable.data_status) == (True, None, "unavailable")


def test_a_guests_data_is_checked_as_a_users():
    headers = SIGNER.headers(guest=True, data={"qty": 1})
    assert "dh does not match" in refused({**headers, "X-Session-Data": '{"qty":9}'}, DataMismatch)
    assert "dv does not match" in refused({**headers, "X-Session-Data-Version": "2"}, DataMismatch)
    assert "no ds" in refused({**SIGNER.headers(guest=True), "X-Session-Data-Status": "unavailable"}, DataMismatch)


def guest_headers(extra_headers=None, **payload):
    p = SIGNER.guest_payload(**payload)
    return {"X-Session-Assertion": SIGNER.token(p), "X-Session-Source": p["src"], **(extra_headers or {})}


def test_a_guest_never_passes_as_a_user():
    assert "a guest's assertion has no sub" in refused(guest_headers(sub="alice"))
    assert "a guest's assertion has no sub" in refused(guest_headers({"X-Session-User": "alice"}, sub="alice"))
    assert "no auth_time" in refused(guest_headers(auth_time=int(time.time())))
    assert "no claims" in refused(guest_headers(claims={"role": "admin"}))
    assert "no remember" in refused(guest_headers(remember=True))
    assert "X-Session-User beside a guest's assertion" in refused(guest_headers({"X-Session-User": "alice"}))
    assert "X-Session-Claims beside a guest's assertion" in refused(guest_headers({"X-Session-Claims": "{}"}))
    for src in ("kv", "lookup"):
        assert "src must be one of ticket, state, stale for a guest" in refused(guest_headers(src=src))
    assert "X-Session-Source" in refused(guest_headers({"X-Session-Source": "ticket"}))
    # "guest" is true or absent: false (or anything else) is not a way to say "a user"
    for value in (False, "true", 1):
        assert "guest must be true when present" in refused(SIGNER.headers(payload=SIGNER.payload(guest=value)))


def test_no_sub_and_no_guest_is_refused_and_state_is_a_guests_source_only():
    assert "sub is missing" in refused(SIGNER.headers(sub=None))
    assert "sub is missing" in refused({k: v for k, v in SIGNER.headers(sub=None).items() if k != "X-Session-User"})
    assert "src must be one of ticket, kv, lookup, stale, not 'state'" in refused(SIGNER.headers(src="state"))


def test_remember_is_exposed_and_must_be_a_boolean():
    assert verifier.verify(SIGNER.headers(remember=True)).remember is True
    assert verifier.verify(SIGNER.headers(remember=False)).remember is False
    assert verifier.verify(SIGNER.headers()).remember is False
    assert "remember must be true or false" in refused(SIGNER.headers(remember="yes"))


def test_required_refuses_a_guest_as_a_visitor():
    with pytest.raises(MissingAssertion) as e:
        verifier.session(SIGNER.headers(guest=True, data={"a": 1}), required=True)
    assert e.value.detail == "this page needs a signed-in user: the request comes from a guest session (not signed in)"
    with pytest.raises(MissingAssertion) as e:
        verifier.session({}, required=True)
    assert e.value.detail == "this page needs a signed-in user: the request carries no X-Session-Assertion"
    assert verifier.session(SIGNER.headers(), required=True).user == "alice"


def test_an_empty_assertion_is_malformed():
    assert "malformed" in refused({**SIGNER.headers(), "X-Session-Assertion": ""})


def test_forged_signature():
    other = Signer(kid=SIGNER.kid)  # same kid, another key
    assert refused(other.headers()) == "bad signature"
    headers = SIGNER.headers()
    head, _, sig = headers["X-Session-Assertion"].split(".")
    headers["X-Session-Assertion"] = ".".join([head, b64(SIGNER.payload("mallory")), sig])
    headers["X-Session-User"] = "mallory"
    assert refused(headers) == "bad signature"


def test_expired_beyond_the_leeway_only():
    now = int(time.time())
    assert verifier.verify(SIGNER.headers(iat=now - 140, exp=now - 20)).user == "alice"
    assert "Expired" in refused(SIGNER.headers(iat=now - 200, exp=now - 60))
    assert "Immature" in refused(SIGNER.headers(iat=now + 120, exp=now + 240))


def test_wrong_audience_or_issuer():
    assert "Audience" in refused(SIGNER.headers(aud="https://other.example"))
    assert verifier.verify(SIGNER.headers(aud=["https://other.example", SITE])).user == "alice"
    assert "Issuer" in refused(SIGNER.headers(iss="someone-else"))
    assert "aud" in refused(SIGNER.headers(aud=None))


def test_alg_none_and_hs256_are_refused():
    headers = SIGNER.headers()
    unsigned = b64({"alg": "none", "typ": "JWT", "kid": SIGNER.kid}) + "." + b64(SIGNER.payload()) + "."
    assert "malformed" in refused({**headers, "X-Session-Assertion": unsigned})
    unsigned += "AAAA"
    assert refused({**headers, "X-Session-Assertion": unsigned}) == "alg must be ES256, not 'none'"
    # HS256 keyed with the public key's PEM: the classic algorithm confusion
    pem = SIGNER.private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b64({"alg": "HS256", "typ": "JWT", "kid": SIGNER.kid}) + "." + b64(SIGNER.payload())
    forged = signing_input + "." + b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    assert refused({**headers, "X-Session-Assertion": forged}) == "alg must be ES256, not 'HS256'"


@pytest.mark.parametrize(
    "token, why",
    [
        ("e30.e30.AAAA", "alg must be ES256, not None"),
        (b64({"alg": "ES256"}) + ".e30.AAAA", "no kid"),
        ("abc", "three base64url parts"),
        ("a.b.c.d", "three base64url parts"),
        ("a b.c.d", "three base64url parts"),
        ("x" * 9000, "8 KB"),
        (b64(b"not json") + ".e30.AAAA", "not base64url JSON"),
        (b64([1, 2]) + ".e30.AAAA", "not base64url JSON"),
        (b64({"alg": "ES256", "kid": "k1", "typ": "JOSE"}) + ".e30.AAAA", "typ"),
        (b64({"alg": "ES256", "kid": "k1", "crit": ["b64"]}) + ".e30.AAAA", "crit"),
        (b64({"alg": "ES256", "kid": "k1"}) + ".e30.AAAA", "64 bytes"),
        (b64({"alg": "ES256", "kid": "k2"}) + ".e30." + b64(b"s" * 64), "unknown kid 'k2'"),
        (b64({"alg": "ES256", "kid": "k1"}) + ".bm90IGpzb24." + b64(b"s" * 64), "bad signature"),
    ],
)
def test_malformed(token, why):
    assert why in refused({**SIGNER.headers(), "X-Session-Assertion": token})


def test_payload_not_json_even_when_signed():
    token = jwt.api_jws.PyJWS().encode(b"[1]", SIGNER.private, algorithm="ES256", headers={"kid": SIGNER.kid})
    assert "DecodeError" in refused({**SIGNER.headers(), "X-Session-Assertion": token})


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"sub": ""}, "sub"),
        ({"sub": 7}, "Subject must be a string"),
        ({"src": "cookie"}, "src must be one of"),
        ({"sid": "AB" * 32}, "sid"),
        ({"sid": "ab" * 32 + "\n"}, "sid"),
        ({"auth_time": None}, "auth_time"),
        ({"auth_time": True}, "auth_time"),
        ({"claims": ["admin"]}, "claims must be a JSON object"),
        ({"exp": None}, "exp"),
    ],
)
def test_bad_claims(claims, why):
    headers = SIGNER.headers(payload=SIGNER.payload(**claims))
    assert why in refused(headers)


def test_identity_headers_must_say_what_the_assertion_says():
    headers = SIGNER.headers("alice")
    assert "X-Session-User" in refused({**headers, "X-Session-User": "mallory"})
    assert "X-Session-User is missing" in refused({k: v for k, v in headers.items() if k != "X-Session-User"})
    assert "percent-encoded UTF-8" in refused({**headers, "X-Session-User": "%FF"})
    assert "X-Session-Source" in refused({**headers, "X-Session-Source": "kv"})


def test_data_mismatches():
    headers = SIGNER.headers(data={"a": 1}, version=3)
    assert "dh does not match" in refused({**headers, "X-Session-Data": '{"a":2}'}, DataMismatch)
    assert "dv does not match" in refused({**headers, "X-Session-Data-Version": "4"}, DataMismatch)
    assert "dv does not match" in refused({**headers, "X-Session-Data-Version": "³"}, DataMismatch)
    assert "Version is missing" in refused({k: v for k, v in headers.items() if k != "X-Session-Data-Version"}, DataMismatch)
    assert "is missing: the assertion has dh" in refused({k: v for k, v in headers.items() if k != "X-Session-Data"}, DataMismatch)
    plain = SIGNER.headers()  # no dv, dh
    assert "not covered" in refused({**plain, "X-Session-Data": '{"a":1}', "X-Session-Data-Version": "1"}, DataMismatch)
    assert "Status came with" in refused({**headers, "X-Session-Data-Status": "unavailable"}, DataMismatch)
    e = pytest.raises(DataMismatch, verifier.verify, {**headers, "X-Session-Data": "{}"}).value
    assert (e.code, e.status) == ("data_mismatch", 401)


def test_the_unavailable_status_is_signed_and_a_version_needs_data():
    # the Node package's rules: a plain assertion cannot be replayed beside the status
    plain = SIGNER.headers()
    assert "no ds" in refused({**plain, "X-Session-Data-Status": "unavailable"}, DataMismatch)
    unavailable = SIGNER.headers(status="unavailable")
    stripped = {k: v for k, v in unavailable.items() if k != "X-Session-Data-Status"}
    assert "Status is missing" in refused(stripped, DataMismatch)
    assert "not 'unavailable'" in refused({**plain, "X-Session-Data-Status": "later"}, DataMismatch)
    # dv without data, signed or sent, as Node refuses it
    assert "without X-Session-Data" in refused(SIGNER.headers(dv=2), DataMismatch)
    assert "without X-Session-Data" in refused({**plain, "X-Session-Data-Version": "2"}, DataMismatch)


def test_signed_data_that_is_not_an_object():
    assert "not a JSON object" in refused(SIGNER.headers(data="[1,2]"))


def test_data_that_cannot_be_read_now():
    identity = verifier.verify(SIGNER.headers(status="unavailable"))
    assert (identity.data, identity.data_version, identity.data_status) == (None, None, "unavailable")
    session = verifier.session(SIGNER.headers(status="unavailable"))
    assert session.data is None and session.data_status == "unavailable"


def test_only_es256_signing_keys_of_a_jwks_count():
    p384 = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key()))
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    good = SIGNER.jwk()
    jwks = {"keys": [{**p384, "kid": "p384"}, {**rsa_jwk, "kid": "rsa"}, {**good, "kid": "enc", "use": "enc"}, {**good, "kid": None}, {**good, "kid": "hs", "alg": "ES384"}, good]}
    assert list(es256_keys(jwks)) == [SIGNER.kid]
    with pytest.raises(ValueError, match="no usable ES256"):
        Verifier(SITE, keys={"keys": [{**rsa_jwk, "kid": "rsa"}]})


def test_configuration_errors():
    with pytest.raises(ValueError):
        Verifier("www.example.com", keys=SIGNER.jwks())
    with pytest.raises(ValueError):
        Verifier(SITE, keys=SIGNER.jwks(), jwks_url=SITE + "/jwks")
    with pytest.raises(ValueError):
        Verifier(SITE, keys=[SIGNER.jwk()])
    assert Verifier(SITE + "/", keys=SIGNER.jwks()).site == SITE
