"""Value kinds: how each kind of field value is stored in an event payload, parsed, shown.

A *stored* value is what the payload (a msgpack map) holds, and what the state digest hashes,
so each value has exactly one stored spelling: two equal values always store as equal bytes.

| kind     | stored as | canonical spelling                                         |
|----------|-----------|------------------------------------------------------------|
| str      | str       | as given; no NUL (PostgreSQL text cannot hold one)         |
| int      | int       | signed 64-bit (what every engine's BIGINT holds)           |
| bool     | bool      |                                                            |
| float    | float     | finite; -0.0 stored as 0.0 (engines do not keep the sign)  |
| decimal  | str       | plain digits, scale kept ("1.50"), no exponent, no -0      |
| date     | str       | ISO 8601 "YYYY-MM-DD"                                      |
| datetime | int       | microseconds since 1970-01-01T00:00:00Z; zone required     |
| json     | str       | JSON with sorted keys, no spaces, UTF-8, no NaN            |
| bytes    | bytes     | msgpack bin; written as hex in schema files and on the CLI |
| uuid     | str       | lowercase, hyphenated, 36 characters                       |

Every function raises `KindError` (a ValueError) with the reason only; the callers name the
type and field.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

Stored = str | int | bool | float | bytes

KINDS = ("str", "int", "bool", "float", "decimal", "date", "datetime", "json", "bytes", "uuid")
# The Python type of each kind's stored value: the fold's per-value check is `type(v) is T`.
STORED_TYPE: dict[str, type] = {
    "str": str, "int": int, "bool": bool, "float": float, "decimal": str, "date": str,
    "datetime": int, "json": str, "bytes": bytes, "uuid": str,
}
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
DECIMAL_MAX_CHARS = 100  # a schema value, not a bignum library: "1E+999999" would be 1 MB
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Stored datetimes are limited to what Python's datetime can represent (years 1 to 9999).
DATETIME_MIN = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // _MICROSECOND
DATETIME_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // _MICROSECOND
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_BOOL_TEXT = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class KindError(ValueError):
    """A value does not fit its kind; the message is the reason, without the field's name."""


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise KindError(f"expected text, got {_typename(value)}")
    if "\x00" in value:
        raise KindError("text cannot contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise KindError("text is not valid Unicode (lone surrogate)") from None
    return str(value)


def _int(value: object) -> int:
    if type(value) is not int:  # `is`: True is an int to Python, never to a schema
        raise KindError(f"expected an integer, got {_typename(value)}")
    if not INT_MIN <= value <= INT_MAX:
        raise KindError("integer outside the signed 64-bit range; use kind decimal")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise KindError(f"expected true or false, got {_typename(value)}")
    return value


def _float(value: object) -> float:
    if type(value) is int:
        result = float(value) if abs(value) < 1 << 1024 else math.inf
        if math.isfinite(result) and int(result) != value:
            raise KindError(f"{value} is not exactly representable as a float")
    elif type(value) is float:
        result = value
    else:
        raise KindError(f"expected a number, got {_typename(value)}")
    # NaN is refused: it is unequal to itself (no "unchanged" test, no stable digest) and
    # SQLite stores it as NULL. Infinities are refused: MariaDB cannot store them.
    if not math.isfinite(result):
        raise KindError("a float must be finite (no NaN or infinity)")
    return result + 0.0  # -0.0 + 0.0 == 0.0: the sign of zero does not survive every engine


def _decimal(value: object) -> str:
    if isinstance(value, float):
        raise KindError("write a decimal as a string (\"1.50\"): a float is already rounded")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise KindError(f"expected a decimal, got {_typename(value)}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise KindError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise KindError("a decimal must be finite (no NaN or infinity)")
    if number.is_zero():
        number = abs(number)  # -0.00 and 0.00 are one value
    text = format(number, "f")
    if len(text) > DECIMAL_MAX_CHARS:
        raise KindError(f"decimal longer than {DECIMAL_MAX_CHARS} characters")
    return text


def _date(value: object) -> str:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise KindError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if type(value) is not date:  # a datetime is a date subclass; it is not a date value
        raise KindError(f"expected a date, got {_typename(value)}")
    return value.isoformat()


def _datetime(value: object) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise KindError(f"{value!r} is not an ISO 8601 date and time") from None
    if not isinstance(value, datetime):
        raise KindError(f"expected a date and time, got {_typename(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise KindError("a datetime needs a zone (e.g. 2026-03-01T09:30:00Z or +01:00)")
    return (value - EPOCH) // _MICROSECOND


def _json_value(value: object, depth: int = 0) -> None:
    """Refuse what JSON cannot say exactly: tuples, non-text keys, NaN, other objects."""
    if depth > 64:
        raise KindError("JSON nested deeper than 64 levels")
    if value is None or type(value) in (bool, int, str):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise KindError("JSON cannot hold NaN or infinity")
    elif type(value) is list:
        for item in value:
            _json_value(item, depth + 1)
    elif type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise KindError("JSON object keys must be text")
            _json_value(item, depth + 1)
    else:
        raise KindError(f"{_typename(value)} is not a JSON value")


def _json(value: object) -> str:
    _json_value(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _str(text)  # lone surrogates in keys or values are refused here


def _bytes(value: object) -> bytes:
    if isinstance(value, str):  # schema files and the CLI have no byte strings: hex
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise KindError(f"{value!r} is not hexadecimal") from None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise KindError(f"expected bytes, got {_typename(value)}")


def _uuid(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise KindError(f"expected a UUID, got {_typename(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise KindError(f"{value!r} is not a UUID") from None


_ENCODERS: dict[str, Callable[[object], Stored]] = {
    "str": _str, "int": _int, "bool": _bool, "float": _float, "decimal": _decimal,
    "date": _date, "datetime": _datetime, "json": _json, "bytes": _bytes, "uuid": _uuid,
}


def encode(kind: str, value: object) -> Stored:
    """The stored value of a Python (or TOML) value: Decimal, date, aware datetime, UUID,
    dict/list for json; a string where that kind has a text form (decimal, date, datetime,
    uuid, bytes as hex). Never None: whether a field may be empty is the field's business."""
    return _ENCODERS[kind](value)


def parse(kind: str, text: str) -> Stored:
    """The stored value of a command-line word (`--set price=1.50`)."""
    if kind == "int":
        if not _INT_TEXT.fullmatch(text.strip()):
            raise KindError(f"{text!r} is not an integer")
        return _int(int(text))
    if kind == "bool":
        try:
            return _BOOL_TEXT[text.strip().lower()]
        except KeyError:
            raise KindError(f"{text!r} is not true or false") from None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise KindError(f"{text!r} is not a number") from None
        return _float(number)
    if kind == "json":
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as error:
            raise KindError(f"not JSON: {error.msg} at character {error.pos}") from None
        return _json(value)
    return _ENCODERS[kind](text)


def _no_constant(name: str) -> object:
    raise KindError(f"JSON cannot hold {name}")


def decode(kind: str, stored: Stored) -> object:
    """The Python value of a stored value: Decimal, date, UTC datetime, parsed JSON, UUID."""
    if kind == "decimal":
        return Decimal(stored)  # type: ignore[arg-type]
    if kind == "date":
        return date.fromisoformat(stored)  # type: ignore[arg-type]
    if kind == "datetime":
        return EPOCH + stored * _MICROSECOND  # type: ignore[operator]
    if kind == "json":
        return json.loads(stored)  # type: ignore[arg-type]
    if kind == "uuid":
        return uuid.UUID(stored)  # type: ignore[arg-type]
    return stored


def render(kind: str, stored: Stored) -> str:
    """The text form of a stored value; `parse(kind, render(kind, v)) == v` for every kind."""
    if kind == "bool":
        return "true" if stored else "false"
    if kind == "float":
        return repr(stored)
    if kind == "datetime":
        moment = EPOCH + stored * _MICROSECOND  # type: ignore[operator]
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if kind == "bytes":
        return stored.hex()  # type: ignore[union-attr]
    return str(stored)


def file_value(kind: str, stored: Stored) -> object:
    """The value as a schema file writes it (TOML or JSON): `encode` gives `stored` back."""
    if kind == "json":
        return json.loads(stored)  # type: ignore[arg-type]
    if kind in ("bytes", "datetime"):
        return render(kind, stored)
    return stored


def check(kind: str, stored: object) -> None:
    """Refuse a stored value that is not in its kind's canonical spelling (for verify)."""
    if type(stored) is not STORED_TYPE[kind]:
        raise KindError(f"stored {kind} is {_typename(stored)}, not "
                        f"{STORED_TYPE[kind].__name__}")
    if kind == "datetime":
        if not DATETIME_MIN <= stored <= DATETIME_MAX:  # type: ignore[operator]
            raise KindError("stored datetime outside years 1 to 9999")
        return
    try:
        again = encode(kind, decode(kind, stored))  # type: ignore[arg-type]
    except (ValueError, ArithmeticError) as error:
        raise KindError(f"stored {kind} {stored!r} is invalid: {error}") from None
    if again != stored or (kind == "float" and math.copysign(1, stored) < 0):  # type: ignore[arg-type]
        raise KindError(f"stored {kind} {stored!r} is not canonical (expected {again!r})")


def _typename(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
