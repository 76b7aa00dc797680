"""Where the verifier gets the worker's public keys: a static JWKS, or the worker's
``/.edge-session/jwks.json`` fetched through PyJWT's PyJWKClient and cached."""
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.exceptions import PyJWKClientError, PyJWKSetError, PyJWTError

from .errors import KeysUnavailable


def es256_keys(jwks):
    """kid -> public key, for the EC P-256 signing keys of a JWKS object ``{"keys": [...]}``;
    other keys (RSA, other curves, another alg, use "enc", no kid) are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('a JWKS is an object {"keys": [...]}')
    try:
        keyset = jwt.PyJWKSet.from_dict(jwks)
    except PyJWKSetError:
        return {}
    keys = {}
    for jwk in keyset.keys:
        key = jwk.key
        usable = isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
        if usable and jwk.algorithm_name == "ES256" and jwk.public_key_use in (None, "sig") and jwk.key_id:
            keys[jwk.key_id] = key
    return keys


class StaticKeys:
    """The keys of a JWKS given in the configuration."""

    def __init__(self, jwks):
        self._keys = es256_keys(jwks)
        if not self._keys:
            raise ValueError("the JWKS has no usable ES256 (EC P-256) signing key")

    def key(self, kid):
        """The key named ``kid``, or None."""
        return self._keys.get(kid)


class RemoteKeys:
    """The JWKS at ``url``, fetched on first use and again after ``lifespan`` seconds or when
    a token names an unknown kid (at most once per ``cooldown`` seconds). After a failed fetch
    the last good keys are still used, and the next fetch waits ``retry`` seconds, so a JWKS
    that is down costs one timeout per ``retry``, not one per request."""

    def __init__(self, url, *, timeout=5.0, lifespan=300.0, cooldown=30.0, retry=5.0, clock=time.monotonic):
        # PyJWKClient fetches (http(s) only, no redirects, the timeout); the caching is ours,
        # since it must keep the last good keys through a failed fetch.
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self.url = url
        self._lifespan, self._cooldown, self._retry, self._clock = lifespan, cooldown, retry, clock
        self._keys = {}
        self._fetched_at = None
        self._failure = None  # (when, why) of the last fetch, while it keeps failing
        self._lock = threading.Lock()

    def key(self, kid):
        """The key named ``kid``, None when the JWKS has no such key, or KeysUnavailable when
        the JWKS could not be fetched and the key is not among the last good ones."""
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._lifespan:
                self._fetch(now)
            elif kid not in self._keys and now - self._fetched_at >= self._cooldown:
                self._fetch(now)
            if kid in self._keys:
                return self._keys[kid]
            if self._failure is not None:
                raise KeysUnavailable(f"the JWKS at {self.url} could not be fetched: {self._failure[1]}")
            return None

    def _fetch(self, now):
        if self._failure is not None and now - self._failure[0] < self._retry:
            return
        try:
            jwks = self._client.fetch_data()
            keys = es256_keys(jwks)
            if not keys:
                raise ValueError("it has no usable ES256 (EC P-256) signing key")
        except (PyJWTError, PyJWKClientError, ValueError, OSError) as e:
            self._failure = (now, str(e) or type(e).__name__)
            return
        self._keys, self._fetched_at, self._failure = keys, now, None
