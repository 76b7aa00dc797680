"""Session: what a handler reads and changes, and the response headers that tell the worker."""
import copy
from urllib.parse import quote

from ._json import ascii_json
from .errors import DataTooLarge, DataNotSerializable

MAX_PATCH = 32768  # the worker reads X-Edge-Session-Data up to this many bytes
MAX_CLAIMS = 2048  # and X-Edge-Session-Claims up to this many
_MISSING = object()


class FrozenDict(dict):
    """A dict that refuses changes (the claims): still a dict for json.dumps and templates."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("the claims are read-only: they change at the next login")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


def freeze(value):
    """A read-only deep copy of a JSON value: dicts become FrozenDicts, lists tuples."""
    if isinstance(value, dict):
        return FrozenDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def _encode(data):
    """key -> compact ASCII JSON of its value, for every key of ``data``."""
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise DataNotSerializable(f"data keys must be strings, not {key!r}")
        out[key] = ascii_json(value, f"data[{key!r}]")
    return out


def _object(members):
    return "{" + ",".join(f"{ascii_json(k)}:{v}" for k, v in members.items()) + "}"


class Session:
    """The session of one request. ``user`` is None for a visitor without a session (no
    assertion) and for a guest (``guest`` True: a session without a user, on a guest path);
    ``data`` is a dict whose changes are sent back as a patch (per top-level key, compared as
    JSON with what arrived, so nested changes count and a request that changes nothing sends
    nothing), for users, guests and visitors alike, or None when ``data_status ==
    "unavailable"``: check it. ``data_status``, for a visitor (``identity`` None) only:
    "unavailable" when the request carried X-Session-Data-Status: unavailable alone (the
    worker could not check its session cookie); Verifier.session() sets it."""

    def __init__(self, identity=None, *, data_limit=4096, data_status="none"):
        if data_status not in ("none", "unavailable"):
            raise ValueError("data_status is 'none' or 'unavailable'")
        self.identity = identity
        self.data_limit = data_limit
        self._signal = None  # ("login", user, claims JSON or None, remember) or "logout"
        self._forced = {}  # keys patch() sends whatever the snapshot says
        self._snapshot = {}
        if identity is None:
            self._who(None, {})
            self.data_status, self.data_version = data_status, None
            self._data = None if data_status == "unavailable" else {}
            return
        self._who(identity.user, identity.claims, guest=identity.guest, remember=identity.remember)
        self.source, self.auth_time, self.session_hash = identity.source, identity.auth_time, identity.session_hash
        self.data_status, self.data_version = identity.data_status, identity.data_version
        self._data = copy.deepcopy(identity.data)
        self._snapshot = _encode(self._data) if self._data is not None else {}

    def _who(self, user, claims, *, guest=False, remember=False):
        self.user, self.claims, self.guest, self.remember = user, freeze(claims or {}), guest, remember
        self.source = self.auth_time = self.session_hash = None

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        if self._data is None:
            raise TypeError("the session's data could not be read (data_status 'unavailable'): it cannot be replaced whole")
        if not isinstance(value, dict):
            raise TypeError("session data is a dict")
        self._data = value

    def login(self, user, claims=None, remember=False):
        """Signs ``user`` in (a new session, with ``claims`` if given; remembered with
        ``remember=True``) with this response. Replacing a signed-in session, the new session
        starts empty: ``data`` is ``{}`` now, and what is put in it before the response goes
        becomes its first data. From a guest (or a visitor) the data goes on: the worker
        carries the guest's data into the new session, and the changes made here are applied
        on top of it."""
        if not isinstance(user, str) or user == "":
            raise ValueError("login() needs the user id as a non-empty string")
        if claims is not None and not isinstance(claims, dict):
            raise TypeError("claims are a dict")
        if not isinstance(remember, bool):
            raise TypeError("login(user, claims, remember): remember must be True or False")
        text = None if claims is None else ascii_json(claims, "the claims")
        if text is not None and len(text) > MAX_CLAIMS:
            raise DataTooLarge(f"the claims are {len(text)} bytes as JSON, over {MAX_CLAIMS}")
        self._who(user, claims, remember=remember)
        self._signal = ("login", user, text, remember)
        if self.identity is not None and self.identity.user is not None:
            self._restart(keep_data=False)  # a signed-in session's data does not carry over
        else:
            self.data_version = None  # a new session, which the guest's data (or these changes) starts

    def logout(self):
        """Ends the session with this response. No change to its data is sent (it goes with
        the session)."""
        self._who(None, {})
        self._restart(keep_data=False)
        self._signal = "logout"

    def flash(self, key, value=_MISSING):
        """``flash(key, value)`` keeps ``value`` for a later request; ``flash(key)`` returns it
        and removes it (None when there is none, or when the data cannot be read)."""
        if value is not _MISSING:
            self.patch({key: value})
            return None
        return None if self._data is None else self._data.pop(key, None)

    def patch(self, changes):
        """Sends these keys whatever was read (None removes one): a change made without
        reading, which works even while ``data_status == "unavailable"`` (the worker stores
        it, or answers 503 if it still cannot). The data, when it was read, changes too."""
        if not isinstance(changes, dict):
            raise TypeError("patch(changes): changes are a dict")
        for key, value in changes.items():
            self._forced[key] = value
            if self._data is None:
                continue
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def _restart(self, keep_data):
        """A new session follows this response (also without a login signal, in attach mode:
        the site's new session cookie): the data, kept or emptied, is sent whole as its first
        data. Data that could not be read stays None (its blind changes still go)."""
        if keep_data and self._data is None:
            self._snapshot, self.data_version = {}, None
            return
        self._data = copy.deepcopy(self._data) if keep_data else {}
        self._snapshot, self._forced = {}, {}
        self.data_status, self.data_version = "none", None

    def response_headers(self):
        """The headers to add to the response: [(name, value)], empty when there is nothing to
        tell. Raises DataNotSerializable or DataTooLarge (then send none of them)."""
        if self._signal == "logout":
            return [("X-Edge-Session-Logout", "1")]
        headers = []
        if self._signal is not None:
            _, user, claims, remember = self._signal
            headers.append(("X-Edge-Session-Login", quote(user, safe="")))
            if claims is not None:
                headers.append(("X-Edge-Session-Claims", claims))
            if remember:
                headers.append(("X-Edge-Session-Remember", "1"))
        patch = self._patch()  # a visitor's too: on a guest path the worker makes it a guest session's first data
        if patch is not None:
            headers.append(("X-Edge-Session-Data", patch))
        return headers

    def _patch(self):
        """The X-Edge-Session-Data value, or None when nothing changed."""
        if self._data is None:  # not read: only what patch() asked for, blind
            members = {k: "null" if v is None else ascii_json(v, f"data[{k!r}]") for k, v in self._forced.items()}
            result = None
        else:
            now = _encode(self._data)
            members = {k: v for k, v in now.items() if self._snapshot.get(k, "null") != v or k in self._forced}
            members.update((k, "null") for k in list(self._snapshot) + list(self._forced) if k not in now)
            result = {k: v for k, v in now.items() if v != "null"}
        if not members:
            return None
        text = _object(members)
        if len(text) > MAX_PATCH:
            raise DataTooLarge(f"the change is {len(text)} bytes as JSON, over {MAX_PATCH}")
        if result is not None and len(_object(result)) > self.data_limit:
            raise DataTooLarge(f"the data would be {len(_object(result))} bytes as JSON, over the limit of {self.data_limit}")
        return text
