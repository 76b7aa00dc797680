"""The typed errors: each has a ``code`` (the JSON ``error`` the middlewares answer with) and
the HTTP ``status`` they answer it with."""
import json

__all__ = [
    "EdgeSessionError",
    "MissingAssertion",
    "InvalidAssertion",
    "DataMismatch",
    "KeysUnavailable",
    "DataTooLarge",
    "DataNotSerializable",
    "DataUnavailable",
    "error_response",
]


class EdgeSessionError(Exception):
    """Base class. ``detail`` says why, in words safe to show (no secrets, no traceback)."""

    code = "edge_session_error"
    status = 500

    def __init__(self, detail=""):
        super().__init__(detail)
        self.detail = detail


class MissingAssertion(EdgeSessionError):
    """No ``X-Session-Assertion`` where a user is required."""

    code, status = "missing_assertion", 401


class InvalidAssertion(EdgeSessionError):
    """Forged, expired, for another site or issuer, another algorithm, an unknown key, malformed."""

    code, status = "invalid_assertion", 401


class DataMismatch(EdgeSessionError):
    """The assertion's ``dh``/``dv`` do not match ``X-Session-Data``/``X-Session-Data-Version``."""

    code, status = "data_mismatch", 401


class KeysUnavailable(EdgeSessionError):
    """The JWKS cannot be had: unreachable, timed out, not JSON, no ES256 key in it."""

    code, status = "keys_unavailable", 503


class DataTooLarge(EdgeSessionError):
    """The patch, or the data after it, is over the limits: refused before it is sent."""

    code, status = "data_too_large", 503


class DataNotSerializable(EdgeSessionError):
    """A value in the data (or the claims) is not JSON: an object, a set, NaN, a cycle..."""

    code, status = "data_not_serializable", 503


class DataUnavailable(EdgeSessionError):
    """The Django ``request.session`` adapter was read while the session's data could not be
    read (``data_status == "unavailable"``): answering as if it were empty would be wrong."""

    code, status = "data_unavailable", 503


def needs_user(guest):
    """The MissingAssertion for a page that needs a signed-in user and got a visitor without a
    session or a guest (``guest``): the same answer for both, only the detail differs."""
    who = "comes from a guest session (not signed in)" if guest else "carries no X-Session-Assertion"
    return MissingAssertion(f"this page needs a signed-in user: the request {who}")


def error_response(error):
    """``(status, headers, body)`` of the JSON answer for ``error``: ``{"error", "detail"}``,
    ``Cache-Control: no-store``."""
    body = json.dumps({"error": error.code, "detail": error.detail}, ensure_ascii=True).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(body))),
    ]
    return error.status, headers, body
