"""Verifier: checks a request's X-Session-Assertion (and the session data it signs) and
returns who the request is from."""
import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote

import jwt

from ._json import parse_object
from .errors import DataMismatch, InvalidAssertion, needs_user
from .keys import RemoteKeys, StaticKeys
from .session import Session

ISSUER = "edge-session"
# what may vouch for a signed-in session (src), and for a guest's: its object ("state"), never KV or the lookup
SOURCES = ("ticket", "kv", "lookup", "stale")
GUEST_SOURCES = ("ticket", "state", "stale")
MAX_ASSERTION = 8192
# what the worker sends only with an assertion: without one, someone else sent them (except
# X-Session-Data-Status: unavailable alone, when the worker could not check a visitor's cookie)
IDENTITY_HEADERS = ("x-session-user", "x-session-claims", "x-session-source", "x-session-data", "x-session-data-version", "x-session-data-status")
_PART = re.compile(r"[A-Za-z0-9_-]+")
_SID = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True)
class Identity:
    """Who a verified request is from: a signed-in user, or a guest (``guest`` True, ``user``
    and ``auth_time`` None: check ``user``, not only that there is an identity). ``data`` is
    ``{}`` for a session without data (``data_status == "none"``) and None when it has data
    that cannot be read now (``"unavailable"``); ``remember``: signed in with "remember me";
    ``payload`` is the assertion's whole payload."""

    user: Optional[str]
    claims: dict
    source: str
    auth_time: Optional[int]
    session_hash: str
    data: Optional[dict]
    data_version: Optional[int]
    data_status: str
    payload: Any = None
    guest: bool = False
    remember: bool = False


def data_hash(value):
    """``dh``: base64url (no padding) SHA-256 of the X-Session-Data value as received. WSGI
    and Django hand header values over as Latin-1 text: encoding back gives the bytes."""
    if isinstance(value, str):
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            value = value.encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(value).digest()).rstrip(b"=").decode()


def _lower(headers):
    if hasattr(headers, "items"):
        headers = headers.items()
    out = {}
    for name, value in headers:
        if isinstance(name, bytes):
            name, value = name.decode("latin-1"), value.decode("latin-1")
        out[name.lower()] = value
    return out


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Verifier:
    """Checks assertions for one site. ``site`` is the assertion's audience: the site as
    browsers address it (``https://www.example.com``). Keys: ``keys`` (a JWKS object) or
    ``jwks_url`` (default ``<site>/.edge-session/jwks.json``), fetched with ``timeout``
    seconds and kept ``cache_lifespan`` seconds. ``leeway``: clock skew allowed on exp/iat.
    ``data_limit``: the worker's SESSION_DATA_LIMIT, checked before a patch is sent."""

    def __init__(self, site, *, jwks_url=None, keys=None, leeway=30, data_limit=4096, timeout=5.0, cache_lifespan=300.0):
        if not isinstance(site, str) or not site.startswith(("http://", "https://")):
            raise ValueError("site must be the site's origin, as https://www.example.com")
        if keys is not None and jwks_url is not None:
            raise ValueError("give keys or jwks_url, not both")
        self.site = site.rstrip("/")
        self.leeway = leeway
        self.data_limit = data_limit
        if keys is not None:
            self._keys = StaticKeys(keys)
        else:
            url = jwks_url or f"{self.site}/.edge-session/jwks.json"
            self._keys = RemoteKeys(url, timeout=timeout, lifespan=cache_lifespan)

    def verify(self, headers):
        """The Identity of a request from its headers (a mapping, or (name, value) pairs;
        names in any case): a user's or a guest's; None when it carries no assertion (a
        visitor without a session; also with X-Session-Data-Status: unavailable alone).
        Raises InvalidAssertion (also for other identity headers without an assertion: the
        worker never sends those), DataMismatch or KeysUnavailable."""
        h = _lower(headers)
        token = h.get("x-session-assertion")
        if token is None:
            _check_no_identity(h)
            return None
        payload = self._decode(token)
        self._check_claims(payload)
        self._check_headers(payload, h)
        data, version, status = self._data(payload, h)
        guest = payload.get("guest") is True
        return Identity(
            user=None if guest else payload["sub"],
            claims=payload.get("claims", {}),
            source=payload["src"],
            auth_time=None if guest else payload["auth_time"],
            session_hash=payload["sid"],
            data=data,
            data_version=version,
            data_status=status,
            payload=payload,
            guest=guest,
            remember=payload.get("remember") is True,
        )

    def session(self, headers, required=False):
        """A Session for a request: verify() (a visitor when there is no assertion) with this
        verifier's data limit. ``required``: MissingAssertion unless a user is signed in (a
        visitor without a session and a guest are refused alike)."""
        h = _lower(headers)
        identity = self.verify(h)
        if required and (identity is None or identity.user is None):
            raise needs_user(identity is not None and identity.guest)
        if identity is None and h.get("x-session-data-status") == "unavailable":
            return Session(None, data_limit=self.data_limit, data_status="unavailable")
        return Session(identity, data_limit=self.data_limit)

    def _decode(self, token):
        """The payload of ``token`` once its form, header and signature are right."""
        kid = self._check_form(token)
        key = self._keys.key(kid)  # KeysUnavailable passes through: 503, not 401
        if key is None:
            raise InvalidAssertion(f"unknown kid {kid!r}")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.site,
                issuer=ISSUER,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},  # sub: _check_claims (a guest has none)
            )
        except jwt.InvalidSignatureError:
            raise InvalidAssertion("bad signature") from None
        except jwt.PyJWTError as e:
            raise InvalidAssertion(f"{type(e).__name__}: {e}") from None

    def _check_form(self, token):
        """The kid of a compact ES256 JWS, or InvalidAssertion."""
        if len(token) > MAX_ASSERTION:
            raise InvalidAssertion("malformed: longer than 8 KB")
        parts = token.split(".")
        if len(parts) != 3 or not all(_PART.fullmatch(p) for p in parts):
            raise InvalidAssertion("malformed: not a compact JWS (three base64url parts)")
        try:
            header = parse_object(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except (ValueError, binascii.Error):
            raise InvalidAssertion("malformed: the header is not base64url JSON") from None
        if header.get("alg") != "ES256":
            raise InvalidAssertion(f"alg must be ES256, not {header.get('alg')!r}")
        if header.get("typ", "JWT") != "JWT":
            raise InvalidAssertion(f"typ must be JWT, not {header.get('typ')!r}")
        if "crit" in header:
            raise InvalidAssertion("crit header parameters are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidAssertion("malformed: no kid in the header")
        if len(signature) != 64:
            raise InvalidAssertion(f"malformed: an ES256 signature is 64 bytes, this one {len(signature)}")
        return kid

    def _check_claims(self, p):
        """What PyJWT does not check: the worker's own claims. A guest's assertion ("guest":
        true) has no sub, auth_time, claims or remember, and its src is ticket, state or stale;
        anyone else's has a sub and never "guest" (the same rules as the Node package)."""
        if "guest" in p and p["guest"] is not True:
            raise InvalidAssertion(f"guest must be true when present, not {p['guest']!r}")
        guest = p.get("guest") is True
        if guest:
            for name in ("sub", "auth_time", "claims", "remember"):
                if name in p:
                    raise InvalidAssertion(f"a guest's assertion has no {name}")
        else:
            if not isinstance(p.get("sub"), str) or p["sub"] == "":
                raise InvalidAssertion("sub is missing or empty (and the assertion is not a guest's)")
            if not _number(p.get("auth_time")):
                raise InvalidAssertion("auth_time must be a number (unix seconds)")
            if "claims" in p and not isinstance(p["claims"], dict):
                raise InvalidAssertion("claims must be a JSON object")
            if "remember" in p and not isinstance(p["remember"], bool):
                raise InvalidAssertion("remember must be true or false")
        sources = GUEST_SOURCES if guest else SOURCES
        if p.get("src") not in sources:
            raise InvalidAssertion(f"src must be one of {', '.join(sources)}{' for a guest' if guest else ''}, not {p.get('src')!r}")
        if not isinstance(p.get("sid"), str) or not _SID.fullmatch(p["sid"]):
            raise InvalidAssertion("sid must be 64 lowercase hex digits")
        for name in ("iat", "exp"):
            if not _number(p.get(name)):
                raise InvalidAssertion(f"{name} must be a number (unix seconds)")

    def _check_headers(self, p, h):
        """X-Session-User (never for a guest) and X-Session-Source say what the assertion says."""
        if p.get("guest") is True:
            for name in ("X-Session-User", "X-Session-Claims"):
                if name.lower() in h:
                    raise InvalidAssertion(f"{name} beside a guest's assertion: the worker sends none for a guest")
            return self._check_source(p, h)
        user = h.get("x-session-user")
        if user is None:
            raise InvalidAssertion("X-Session-User is missing")
        try:
            user = unquote(user, errors="strict")
        except UnicodeDecodeError:
            raise InvalidAssertion("X-Session-User is not percent-encoded UTF-8") from None
        if user != p["sub"]:
            raise InvalidAssertion("sub does not match X-Session-User")
        self._check_source(p, h)

    def _check_source(self, p, h):
        if h.get("x-session-source") != p["src"]:
            raise InvalidAssertion("src does not match X-Session-Source (or it is missing)")

    def _data(self, p, h):
        """(data, version, status) from the data headers, once ``dh`` and ``dv`` (or
        ``ds`` for the status) match them: the same rules as the Node package."""
        raw, dh, dv = h.get("x-session-data"), p.get("dh"), p.get("dv")
        version, status = h.get("x-session-data-version"), h.get("x-session-data-status")
        if status is not None:
            if status != "unavailable":
                raise DataMismatch(f"X-Session-Data-Status {status!r} is not 'unavailable'")
            if raw is not None or version is not None:
                raise DataMismatch("X-Session-Data-Status came with X-Session-Data or its version")
            if dh is not None or dv is not None:
                raise DataMismatch("X-Session-Data-Status: unavailable, but the assertion has dh/dv")
            if p.get("ds") != "unavailable":
                raise DataMismatch("X-Session-Data-Status: unavailable is not covered by the assertion (no ds)")
            return None, None, "unavailable"
        if p.get("ds") is not None:
            raise DataMismatch("the assertion says the data is unavailable (ds), but X-Session-Data-Status is missing")
        if raw is None:
            if dh is not None:
                raise DataMismatch("X-Session-Data is missing: the assertion has dh")
            if dv is not None or version is not None:
                raise DataMismatch("a data version (dv or X-Session-Data-Version) without X-Session-Data")
            return {}, None, "none"
        if dh is None:
            raise DataMismatch("X-Session-Data is not covered by the assertion (no dh)")
        if not isinstance(dh, str) or not hmac.compare_digest(dh.encode(), data_hash(raw).encode()):
            raise DataMismatch("dh does not match X-Session-Data")
        if version is None:
            raise DataMismatch("X-Session-Data-Version is missing")
        if not _number(dv) or not _VERSION.fullmatch(version) or int(version) != dv:
            raise DataMismatch("dv does not match X-Session-Data-Version")
        try:
            data = parse_object(raw)
        except ValueError:
            raise InvalidAssertion("X-Session-Data is not a JSON object") from None
        return data, int(version), "ok"


def _check_no_identity(h):
    """A request without an assertion carries no identity header: someone else sent it. The
    one exception is X-Session-Data-Status: unavailable on its own."""
    for name in IDENTITY_HEADERS:
        if name not in h or (name == "x-session-data-status" and h[name] == "unavailable"):
            continue
        only = ' (only "unavailable" comes alone)' if name == "x-session-data-status" else ""
        raise InvalidAssertion(f"{name} without X-Session-Assertion: not sent by the worker{only}")


__all__ = ["Verifier", "Identity", "data_hash", "ISSUER", "SOURCES", "GUEST_SOURCES"]
