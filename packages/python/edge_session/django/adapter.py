from ..errors import DataUnavailable

_MISSING = object()
_FLAGS = ("modified", "accessed")


class SessionAdapter:
    """``request.session`` with ``REQUEST_SESSION: True``: a dict-like view of the edge
    session's data, so that ``request.session["cart"]`` code keeps working. Keys starting with
    "_" (Django's own: ``_auth_user_id``, ``_auth_user_hash``, ...) stay in Django's session
    when the site has one; everything else it has (``session_key``, ``set_expiry``, ``save``,
    ...) is Django's too. Reading while the data cannot be read raises DataUnavailable (503):
    never an empty answer. ``del`` then still sends the removal, which needs no read. It works
    alike for signed-in users, guests and visitors without a session (whose changes the worker
    makes a guest session's first data, on a guest path)."""

    __slots__ = ("_edge", "_django")

    def __init__(self, edge, django_session=None):
        object.__setattr__(self, "_edge", edge)
        object.__setattr__(self, "_django", django_session)

    def _own(self, key):
        """Django's session for its own keys, None for edge data."""
        if self._django is not None and isinstance(key, str) and key.startswith("_"):
            return self._django
        return None

    def _data(self):
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
        elif self._edge.data is None:
            self._edge.patch({key: value})  # a write needs no read
        else:
            self._edge.data[key] = value

    def __delitem__(self, key):
        own = self._own(key)
        if own is not None:
            del own[key]
        elif self._edge.data is None:
            self._edge.patch({key: None})
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
        store = own if own is not None else self._data()
        return store.pop(key) if default is _MISSING else store.pop(key, default)

    def setdefault(self, key, value):
        if key not in self:
            self[key] = value
        return self[key]

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def keys(self):
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
        self._data().clear()
        if self._django is not None:
            self._django.clear()

    def is_empty(self):
        return self._django.is_empty() if self._django is not None else not self._edge.data

    def flush(self):
        """Ends the session, as ``django.contrib.auth.logout`` asks. With Django's session:
        it is flushed (its cookie cleared, which the worker reads as the end) and the data
        starts empty for whatever session follows; without one (edge mode): logout()."""
        if self._django is None:
            self._edge.logout()
        else:
            self._django.flush()
            self._edge._restart(keep_data=False)

    def cycle_key(self):
        """Django's new session key (``django.contrib.auth.login`` calls it): the data is kept.
        A visitor's or a guest's stays as it is: the worker carries a guest's data into the
        signed-in session by itself, and a visitor's changes are still to be sent. A signed-in
        session's (attach mode: Django's new cookie is a new session at the worker) is sent
        whole, as the new session's first data. Without Django's session, nothing else: the
        worker rotates its session ID at every login() by itself."""
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
