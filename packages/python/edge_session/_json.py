"""JSON as the worker reads it in a header: compact, ASCII only (U+007F and above as \\uXXXX)."""
import json

from .errors import DataNotSerializable


def ascii_json(value, what="the value"):
    """Compact ASCII JSON of ``value``; DataNotSerializable when it is not JSON (an object, a
    set, bytes, NaN or Infinity, a cycle, a key that is not a string)."""
    try:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=_refuse)
    except (TypeError, ValueError, RecursionError) as e:
        raise DataNotSerializable(f"{what} is not JSON: {e}") from None
    # ensure_ascii leaves DEL (U+007F) raw, and an HTTP field value may not hold it; it can
    # only appear inside a string, where its escape means the same.
    return text.replace("\x7f", "\\u007f")


def _refuse(value):
    raise TypeError(f"a {type(value).__name__} is not JSON")


def parse_object(text):
    """The JSON object ``text`` holds, or ValueError."""
    value = json.loads(text, parse_constant=_no_constant)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")
