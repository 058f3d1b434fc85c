"""Column types and values: which kind holds a column, and values to and from stored form.

The kinds are schemadoc's (docs/SCHEMA.md): one canonical stored spelling per value, so a
value read from SQLite and the same value read from PostgreSQL store equal. Datetimes: a
column without a zone (SQLite's, `timestamp without time zone`) holds UTC, Django's
convention with USE_TZ; it is stored as that instant and written back without a zone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import cast, type_coerce
from sqlalchemy import types as sqltypes
from sqlalchemy.sql.schema import Column

from eventvault.schemadoc import kinds

# Order matters: subclasses before their bases (Float is a Numeric, BigInteger an Integer,
# DateTime is checked before Date, Text and Enum are Strings).
_KIND_OF: tuple[tuple[type, str], ...] = (
    (sqltypes.Boolean, "bool"),
    (sqltypes.Integer, "int"),
    (sqltypes.Float, "float"),
    (sqltypes.Numeric, "decimal"),
    (sqltypes.DateTime, "datetime"),
    (sqltypes.Date, "date"),
    (sqltypes.JSON, "json"),
    (sqltypes.LargeBinary, "bytes"),
    (sqltypes._Binary, "bytes"),
    (sqltypes.Uuid, "uuid"),
    (sqltypes.String, "str"),
)


def kind_of(column_type: Any) -> str | None:
    """The kind of a reflected column type; None: no kind holds it (TIME, INTERVAL, arrays,
    NullType for a column SQLite declared without a known type)."""
    for sqltype, kind in _KIND_OF:
        if isinstance(column_type, sqltype):
            return kind
    return None


def is_integer(column_type: Any) -> bool:
    return isinstance(column_type, sqltypes.Integer) and not isinstance(
        column_type, sqltypes.Boolean)


def _has_zone(column: Column[Any]) -> bool:
    return bool(getattr(column.type, "timezone", False))


_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def to_stored(kind: str, value: Any) -> kinds.Stored | None:
    """A value read from the application (after SQLAlchemy's type processing) as stored."""
    if value is None:
        return None
    # Fast paths for what a driver hands back most (a restore of 200,000 rows reads them all
    # twice); each gives what kinds.encode would.
    cls = type(value)
    if (kind == "str" and cls is str and "\x00" not in value) or (
            kind == "bool" and cls is bool):
        return value  # type: ignore[no-any-return]
    if kind == "int" and cls is int and kinds.INT_MIN <= value <= kinds.INT_MAX:
        return value  # type: ignore[no-any-return]
    if kind == "bool" and cls is int and value in (0, 1):
        return bool(value)  # MariaDB's BOOLEAN is TINYINT(1), read back as 0 or 1
    if kind == "int" and cls is bool:
        return int(value)  # and so attached from MariaDB it is an int, read from a BOOLEAN
    if kind == "datetime" and cls is datetime:
        if value.tzinfo is None:  # a column without a zone holds UTC
            return (value - _EPOCH_NAIVE) // _MICROSECOND  # type: ignore[no-any-return]
        return (value - kinds.EPOCH) // _MICROSECOND  # type: ignore[no-any-return]
    if kind == "bytes" and isinstance(value, memoryview):
        value = value.tobytes()
    elif kind == "str" and cls is UUID:
        # A text field (attached where the column is CHAR(32): SQLAlchemy's Uuid, Django's
        # UUIDField off PostgreSQL and MariaDB) restored into a native UUID column: its 32 hex
        # digits, as CHAR(32) holds them, so that it reads back as it was captured.
        return value.hex
    elif kind == "decimal" and isinstance(value, float):
        value = Decimal(repr(value))  # a raw SQLite number (see `reading_type`)
    elif kind == "json" and isinstance(value, str):
        value = json.loads(value)  # read as text (`read_expression`): JSON null is not NULL
    return kinds.encode(kind, value)


def normal_decimal(stored: str, scale: int | None) -> str:
    """One spelling of a decimal whatever engine it was read from: engines keep a value's
    scale differently (SQLite keeps none: 12.50 reads back 12.5; PostgreSQL's numeric(10,2)
    gives 12.50), so a capture -> restore -> capture across engines would see an update.
    The scale is the column's declared one when the application was attached (`scale`),
    so every engine's read gives the same digits; a column attached without one (Django's
    `decimal` on SQLite) keeps no trailing zeros. A value that the scale would round keeps
    its digits (restore then refuses it, the target being unable to hold it)."""
    if scale is not None:
        number = Decimal(stored)
        fitted = number.quantize(Decimal(1).scaleb(-scale))
        return stored if fitted != number else kinds.encode("decimal", fitted)  # type: ignore[return-value]
    if "." not in stored:
        return stored
    trimmed = stored.rstrip("0").rstrip(".")
    return trimmed if trimmed not in ("", "-") else "0"


def reading_type(column: Column[Any], kind: str, dialect: str) -> Any:
    """The type to read `column` as. A SQLite decimal column with no declared scale (Django
    declares plain `decimal`) would come back with ten decimal places; read the raw number
    instead, which gives 12.5 for 12.50: SQLite itself does not keep the scale. A float column
is read as a float."""
    if kind == "decimal" and dialect == "sqlite" and getattr(column.type, "scale", 0) is None:
        return sqltypes.NullType()
    if kind == "float" and getattr(column.type, "asdecimal", False):
        # MariaDB's DOUBLE (Django's FloatField) reflects as a Float that gives Decimals
        # rounded to ten places; the driver's own float is the exact value
        return sqltypes.Float()
    if kind == "json":
        # Read as text: SQLAlchemy's JSON type gives None for SQL NULL and for JSON null alike
        return sqltypes.Text()
    return column.type


def read_expression(column: Column[Any], kind: str, dialect: str) -> Any:
    """What to select for `column`: itself, or itself as text (JSON, see `reading_type`)."""
    if kind == "json":
        return cast(column, sqltypes.Text())
    return type_coerce(column, reading_type(column, kind, dialect))


def expected_in(kind: str, stored: kinds.Stored | None, column: Column[Any],
                scale: int | None) -> Any:
    """The stored value a target column will give back for `stored`, read as a capture reads
    it (`normal_decimal` with the attached `scale`): a decimal the column's declared scale
    would round does not come back (12.345 into numeric(10,2)). Anything else must come back
    exactly."""
    if kind != "decimal" or stored is None:
        return stored
    declared = getattr(column.type, "scale", None)
    if declared is not None:
        number = Decimal(stored)  # type: ignore[arg-type]
        if number.quantize(Decimal(1).scaleb(-declared)) != number:
            return stored  # it cannot come back: the verification names it
    return normal_decimal(stored, scale)  # type: ignore[arg-type]


def to_column(kind: str, stored: kinds.Stored | None, column: Column[Any]) -> Any:
    """A stored value as the Python value SQLAlchemy writes into `column` of the target.
    The stored kind is the vault's; the target column decides zones and JSON nulls."""
    if stored is None or kind in AS_STORED:
        return stored
    if kind == "json" and not isinstance(column.type, sqltypes.JSON):
        return stored  # MariaDB's JSON is LONGTEXT with a check: its canonical text
    if kind == "datetime":
        if _has_zone(column):
            return kinds.EPOCH + stored * _MICROSECOND
        return _EPOCH_NAIVE + stored * _MICROSECOND
    value = kinds.decode(kind, stored)
    if kind == "uuid" and not isinstance(column.type, sqltypes.Uuid):
        # A UUID into a text column (a native one captured, restored into SQLite): CHAR(32)
        # is SQLAlchemy's Uuid and Django's UUIDField, which look values up by 32 hex digits
        return value.hex if getattr(column.type, "length", None) == 32 else str(value)
    if kind == "json" and value is None:
        return sqltypes.JSON.NULL  # the JSON value null, not SQL NULL
    return value


def column_writer(kind: str, column: Column[Any]) -> Callable[[kinds.Stored], Any]:
    """`to_column` for one column and a value that is not None, its checks done once (a
    restore converts every row's datetimes)."""
    if kind == "datetime":
        base = kinds.EPOCH if _has_zone(column) else _EPOCH_NAIVE
        return lambda stored: base + stored * _MICROSECOND  # type: ignore[operator]
    return lambda stored: to_column(kind, stored, column)


AS_STORED = frozenset({"str", "int", "bool", "float", "bytes"})  # stored as Python holds them
