"""Test keys and assertions: an ES256 key made with cryptography, tokens signed with PyJWT,
request headers as the worker sends them."""
import base64
import hashlib
import json
import time
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

SITE = "http://127.0.0.1:8787"
SID = "ab" * 32


def compact(data):
    """X-Session-Data as the worker writes it: compact ASCII JSON."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def dh(text):
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode("latin-1")).digest()).rstrip(b"=").decode()


class Signer:
    def __init__(self, kid="k1", curve=None):
        self.kid = kid
        self.private = ec.generate_private_key(curve or ec.SECP256R1())

    def jwk(self):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def jwks(self):
        return {"keys": [self.jwk()]}

    def payload(self, user="alice", **overrides):
        now = int(time.time())
        p = {"iss": "edge-session", "sub": user, "sid": SID, "src": "ticket", "aud": SITE, "iat": now, "exp": now + 120, "auth_time": now - 60}
        p.update(overrides)
        return {k: v for k, v in p.items() if v is not None}

    def guest_payload(self, **overrides):
        """A guest's payload as the worker signs it: no sub, auth_time or claims, "guest": true,
        src "state" (None removes a field)."""
        now = int(time.time())
        p = {"iss": "edge-session", "sid": SID, "src": "state", "aud": SITE, "iat": now, "exp": now + 120, "guest": True}
        p.update(overrides)
        return {k: v for k, v in p.items() if v is not None}

    def token(self, payload=None, **header):
        return jwt.encode(payload or self.payload(), self.private, algorithm="ES256", headers={"kid": self.kid, **header})

    def headers(self, user="alice", data=None, version=1, status=None, payload=None, guest=False, **claims):
        """Request headers for ``user``; with ``data`` (a dict, or the exact header text) also
        the data headers and dv/dh; ``claims`` go into the payload (None removes one).
        ``guest=True``: a guest's (guest_payload, no X-Session-User)."""
        if guest:
            h = {"X-Session-Source": claims.get("src", "state")}
        else:
            h = {"X-Session-User": quote(user, safe="@"), "X-Session-Source": claims.get("src", "ticket")}
        if data is not None:
            text = data if isinstance(data, str) else compact(data)
            h["X-Session-Data"], h["X-Session-Data-Version"] = text, str(version)
            claims = {"dv": version, "dh": dh(text), **claims}
        if status is not None:
            h["X-Session-Data-Status"] = status
            if status == "unavailable":
                claims = {"ds": status, **claims}
        h["X-Session-Assertion"] = self.token(payload or (self.guest_payload(**claims) if guest else self.payload(user, **claims)))
        return h


SIGNER = Signer()
