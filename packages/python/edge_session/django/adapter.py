import copy
import logging

from .._json import ascii_json
from ..errors import DataNotSerializable, DataUnavailable

_MISSING = object()
_FLAGS = ("modified", "accessed")
log = logging.getLogger("edge_session")


class SessionAdapter:
    """``request.session`` with ``REQUEST_SESSION: True``: a dict-like view of the edge
    session's data, so that ``request.session["cart"]`` code keeps working. Keys starting with
    "_" (Django's own: ``_auth_user_id``, ``_auth_user_hash``, ...) stay in Django's session
    when the site has one; everything else it has (``session_key``, ``set_expiry``, ``save``,
    ...) is Django's too. Reading while the data cannot be read raises DataUnavailable (503):
    never an empty answer. ``del`` then still sends the removal, which needs no read.

    Who keeps what:

    - a signed-in user, and a guest the worker made (edge mode): the edge data, as above;
    - a visitor without an edge session on a site with Django's session (attach mode, where
      the worker makes no guest sessions): every key is Django's, in the site's own guest
      session (the cart of a visitor). A visitor whose session cookie the worker could not
      check (``data_status`` "unavailable": it may be a signed-in session) is not one: its
      data cannot be read, as above;
    - without Django's session (edge mode), a visitor's changes are the edge data too: on a
      guest path the worker makes them a guest session's first data.

    Signing in moves a visitor's keys: ``django.contrib.auth.login`` keeps them in Django's
    session (``cycle_key``), and the first use of ``request.session`` in a request from a
    signed-in user whose data can be read moves every key still there (not "_" ones) into the
    edge data. A key the data does not have is written to it (this request's change) and its
    Django copy kept; a key the data has, as the worker sent it (stored by an earlier move, or
    the session's own: the edge wins), loses its Django copy. So a copy goes only once the
    worker has shown that it stored the key: a change it refuses (503, after Django saved its
    session) loses nothing, the next request moves the key again, and parallel requests at
    most write the same value twice. Reads see the merged view. A value that is not JSON, or
    keys that would take the data over ``DATA_LIMIT``, stay in Django's session (logged), out
    of the view. ``del`` (and ``pop``) removes a key from both, so that no copy comes back.
    ``request.edge_session.data`` is the edge data alone, before any move."""

    __slots__ = ("_edge", "_django", "_merged")

    def __init__(self, edge, django_session=None):
        object.__setattr__(self, "_edge", edge)
        object.__setattr__(self, "_django", django_session)
        object.__setattr__(self, "_merged", False)

    def _visitor(self):
        """A visitor without an edge session, on a site with Django's session (and not one
        this response signs in at the edge): all its keys are Django's."""
        edge = self._edge
        return self._django is not None and edge.identity is None and edge.user is None and edge.data_status != "unavailable"

    def _own(self, key):
        """Django's session for the keys it keeps, None for edge data."""
        if self._django is None:
            return None
        if (isinstance(key, str) and key.startswith("_")) or self._visitor():
            return self._django
        return None

    def _merge(self):
        """Once, at the first use of the data: a signed-in user's keys still in Django's session
        move into the edge data (the class docstring says how)."""
        edge = self._edge
        if self._merged or self._django is None or edge.identity is None or edge.identity.user is None:
            return
        if edge.user is None or edge.data is None:  # signing out, or the data cannot be read: nothing moves
            return
        object.__setattr__(self, "_merged", True)
        data, stored = edge.data, edge._snapshot  # stored: the keys the worker sent
        moving = {}
        for key in [k for k in self._django.keys() if isinstance(k, str) and not k.startswith("_")]:
            value = self._django[key]
            if key in stored or value is None:
                del self._django[key]  # the worker has it (its value wins), or there is nothing to move
            elif key not in data:
                try:
                    ascii_json(value)
                except DataNotSerializable:
                    log.warning("edge-session: %r stays in Django's session: its value is not JSON", key)
                    continue
                moving[key] = copy.deepcopy(value)
        if not moving:
            return
        merged = {k: v for k, v in {**data, **moving}.items() if v is not None}
        size = len(ascii_json(merged))
        if size > edge.data_limit:
            log.warning("edge-session: %s stay in Django's session: the data would be %d bytes, over %d", ", ".join(map(repr, moving)), size, edge.data_limit)
            return
        data.update(moving)

    def _data(self):
        self._merge()
        data = self._edge.data
        if data is None:
            raise DataUnavailable("the session's data cannot be read now (request.edge_session.data_status is 'unavailable')")
        return data

    def __getitem__(self, key):
        own = self._own(key)
        return own[key] if own is not None else self._data()[key]

    def __setitem__(self, key, value):
        own = self._own(key)
        if own is not None:
            own[key] = value
            return
        self._merge()
        if self._edge.data is None:
            self._edge.patch({key: value})  # a write needs no read
        else:
            self._edge.data[key] = value

    def __delitem__(self, key):
        own = self._own(key)
        if own is not None:
            del own[key]
            return
        self._merge()
        copied = self._django is not None and key in self._django
        if copied:
            del self._django[key]  # a copy still waiting to move would bring the key back
        if copied or self._edge.data is None:
            self._edge.patch({key: None})  # sent whatever was read: a removal needs no read
        else:
            del self._edge.data[key]

    def __contains__(self, key):
        own = self._own(key)
        return key in own if own is not None else key in self._data()

    def get(self, key, default=None):
        own = self._own(key)
        return own.get(key, default) if own is not None else self._data().get(key, default)

    def pop(self, key, default=_MISSING):
        own = self._own(key)
        if own is not None:
            return own.pop(key) if default is _MISSING else own.pop(key, default)
        data = self._data()
        if key not in data:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = data[key]
        del self[key]
        return value

    def setdefault(self, key, value):
        if key not in self:
            self[key] = value
        return self[key]

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def keys(self):
        if self._visitor():
            return list(self._django.keys())
        own = [k for k in self._django.keys() if k.startswith("_")] if self._django is not None else []
        return list(self._data().keys()) + own

    def values(self):
        return [self[k] for k in self.keys()]

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def clear(self):
        """Empties the data (and Django's session, as SessionBase.clear does)."""
        if not self._visitor():
            self._data().clear()
        if self._django is not None:
            self._django.clear()

    def is_empty(self):
        return self._django.is_empty() if self._django is not None else not self._edge.data

    def flush(self):
        """Ends the session, as ``django.contrib.auth.logout`` asks. With Django's session:
        it is flushed (its cookie cleared, which the worker reads as the end; a visitor's keys,
        and a signed-in user's still waiting to move, go with it) and the data starts empty for
        whatever session follows; without one (edge mode): logout()."""
        if self._django is None:
            self._edge.logout()
        else:
            self._django.flush()
            self._edge._restart(keep_data=False)

    def cycle_key(self):
        """Django's new session key (``django.contrib.auth.login`` calls it): the data is kept.
        A visitor's (in Django's session: Django keeps it under the new key, and the next
        signed-in request moves it into the edge data) or a guest's stays as it is: the worker
        carries a guest's data into the signed-in session by itself. A signed-in session's
        (attach mode: Django's new cookie is a new session at the worker) is sent whole, as the
        new session's first data, and keys still waiting in Django's session go on moving into
        it (the worker has none of them yet for the new session). Without Django's session,
        nothing else: the worker rotates its session ID at every login() by itself."""
        if self._django is not None:
            self._django.cycle_key()
            identity = self._edge.identity
            if identity is not None and identity.user is not None:
                self._edge._restart(keep_data=True)

    def __getattr__(self, name):
        django = object.__getattribute__(self, "_django")
        if django is not None:
            return getattr(django, name)
        if name in _FLAGS:
            return False
        if name == "session_key":
            return None
        raise AttributeError(f"{name!r}: this site has no Django session (edge mode), only edge data")

    def __setattr__(self, name, value):
        if self._django is not None:
            setattr(self._django, name, value)
        elif name not in _FLAGS:  # "modified = True" after a nested change: the snapshot sees it
            raise AttributeError(f"{name!r}: this site has no Django session (edge mode)")
