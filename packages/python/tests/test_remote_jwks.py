import time

import pytest

from edge_session import InvalidAssertion, KeysUnavailable, Verifier
from edge_session.keys import RemoteKeys
from jwks_server import JwksServer, closed_port_url, silent_port_url
from signing import SIGNER, SITE, Signer


@pytest.fixture
def server():
    s = JwksServer(SIGNER.jwks())
    yield s
    s.close()


def test_the_jwks_is_fetched_once_and_cached(server):
    verifier = Verifier(SITE, jwks_url=server.url)
    for user in ("alice", "bob", "zoë"):
        assert verifier.verify(SIGNER.headers(user)).user == user
    assert server.fetches == 1


def test_the_default_url_is_the_sites_own():
    assert Verifier("https://www.example.com")._keys.url == "https://www.example.com/.edge-session/jwks.json"


def test_a_new_kid_refetches_and_an_unknown_one_is_refused_without_hammering(server):
    verifier = Verifier(SITE, jwks_url=server.url)
    verifier._keys._cooldown = 0.2
    assert verifier.verify(SIGNER.headers()).user == "alice"
    rotated = Signer(kid="k2")
    server.body = {"keys": [rotated.jwk(), SIGNER.jwk()]}
    time.sleep(0.25)
    assert verifier.verify(rotated.headers("bob")).user == "bob"
    assert server.fetches == 2
    stranger = Signer(kid="k9")
    for _ in range(3):
        with pytest.raises(InvalidAssertion, match="unknown kid 'k9'"):
            verifier.verify(stranger.headers())
    assert server.fetches == 2, "an unknown kid refetched within the cooldown"


def test_a_closed_port_is_keys_unavailable_and_not_retried_at_once():
    verifier = Verifier(SITE, jwks_url=closed_port_url())
    with pytest.raises(KeysUnavailable, match="could not be fetched") as e:
        verifier.verify(SIGNER.headers())
    assert (e.value.code, e.value.status) == ("keys_unavailable", 503)
    started = time.monotonic()
    with pytest.raises(KeysUnavailable):
        verifier.verify(SIGNER.headers())
    assert time.monotonic() - started < 0.1


def test_a_jwks_that_does_not_answer_times_out():
    with silent_port_url() as url:
        verifier = Verifier(SITE, jwks_url=url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(KeysUnavailable, match="timed out"):
            verifier.verify(SIGNER.headers())
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "status, body",
    [(500, b"oops"), (200, b"<html>not json</html>"), (200, b"[1]"), (200, {"keys": []}), (200, {"keys": [{"kty": "RSA", "kid": "r"}]})],
    ids=["500", "html", "array", "empty", "no-es256"],
)
def test_a_jwks_that_is_not_usable_is_keys_unavailable(server, status, body):
    server.status, server.body = status, body
    with pytest.raises(KeysUnavailable):
        Verifier(SITE, jwks_url=server.url).verify(SIGNER.headers())


def test_the_last_good_keys_outlive_a_failed_refresh(server):
    now = [0.0]
    keys = RemoteKeys(server.url, lifespan=60, clock=lambda: now[0])
    assert keys.key(SIGNER.kid) is not None
    server.status = 503
    now[0] = 61.0  # past the lifespan: refetched, which fails
    assert keys.key(SIGNER.kid) is not None
    assert server.fetches == 2
    with pytest.raises(KeysUnavailable):
        keys.key("k-new")  # perhaps a rotated key: cannot tell, so not a 401
    assert server.fetches == 2, "retried within 5 s of a failure"
    server.status = 200
    now[0] = 67.0
    assert keys.key(SIGNER.kid) is not None and server.fetches == 3
    assert keys.key("k-new") is None  # the JWKS answered: now it is just unknown
