"""edge-session for Python sites: verify the worker's X-Session-Assertion, read and change the
session's data, sign users in and out.

    from edge_session import Verifier, Session
    verifier = Verifier(site="https://www.example.com")
    session = Session(verifier.verify(request_headers), data_limit=verifier.data_limit)
    ...
    response_headers += session.response_headers()

Frameworks: ``edge_session.django``, ``edge_session.wsgi`` (Flask, ...), ``edge_session.asgi``
(FastAPI, Starlette, ...).
"""
from . import errors
from ._json import ascii_json
from .errors import (
    DataMismatch,
    DataNotSerializable,
    DataTooLarge,
    DataUnavailable,
    EdgeSessionError,
    InvalidAssertion,
    KeysUnavailable,
    MissingAssertion,
    error_response,
)
from .session import Session
from .verifier import Identity, Verifier, data_hash

__version__ = "0.1.0"

__all__ = [
    "Verifier",
    "Identity",
    "Session",
    *errors.__all__,
    "ascii_json",
    "data_hash",
    "__version__",
]
