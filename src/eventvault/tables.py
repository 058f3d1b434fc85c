"""SQLAlchemy tables: the append-only `events` log, vault metadata, and the projection.

The projection tables are generated from a schema (catalog.py) and look like a conventional
application's: integer auto-increment `id`, a unique `uuid`, integer foreign keys. Replay
therefore has to resolve every UUID to whatever ID the target database hands out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.expression import false, text, true
from sqlalchemy.types import TypeEngine

from eventvault.catalog import LEGACY_HASH, Catalog, legacy
from eventvault.schemadoc import TypeSpec

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index to maintain.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def LongText() -> TypeEngine[str]:
    """Text: MariaDB's TEXT holds 65,535 bytes, less than a value may (values.py), so there
    it is MEDIUMTEXT; the same type everywhere else."""
    return Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


# The canonical records: MariaDB's BLOB holds 64 KiB, a record with long texts more.
RECORD_TYPE = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
# SHA-256 hashes: exactly 32 bytes (MariaDB would make a LargeBinary(32) a TINYBLOB).
HASH_TYPE = LargeBinary(32).with_variant(mysql.BINARY(32), "mysql", "mariadb")

events = Table(
    "events",
    metadata,
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(36), nullable=False),
    Column("entity_version", Integer, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("actor_id", String(36), nullable=False),
    Column("reason", LongText(), nullable=True),
    Column("recorded_at", BigInteger, nullable=False),  # µs since the epoch, UTC
    # The event's canonical record (events.py), the very bytes the hash chain covers and a
    # package carries; zstd-compressed where it pays (codec.py). The columns before it are
    # its index, for queries; `verify` checks that they agree with it.
    Column("record", RECORD_TYPE, nullable=False),
    Column("hash", HASH_TYPE, nullable=False),
    # Unique indexes rather than constraints: a replay drops and rebuilds them around its bulk
    # load (sorting once beats updating a B-tree of random UUIDs row by row).
    Index(None, "event_id", unique=True),
    # Optimistic concurrency: two writers cannot both append version n of one entity.
    Index(None, "entity_id", "entity_version", unique=True),
    Index(None, "actor_id", "seq"),
    Index(None, "recorded_at"),
    Index(None, "entity_type", "seq"),
)

vault_meta = Table(
    "vault_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LongText(), nullable=False),
)

# The state digest and live counts per type at the log's head (seq, hash), maintained in the
# same transaction as every append (log_state.py): `status` reads them instead of folding or
# scanning, `snapshot` takes a package's head figures from them. One row, `id` 1.
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("head_seq", BigInteger, nullable=False),
    Column("head_hash", HASH_TYPE, nullable=False),
    Column("state_digest", String(64), nullable=False),
    Column("counts", Text, nullable=False),  # JSON object: entity type -> live entities
)

# The built-in dms v1's tables, as its alembic migration (0001) created them: every plain
# field NOT NULL, integers as INTEGER. Frozen with dms_v1.schema; declared schemas get theirs
# from `projection_for`.
_COLUMN_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "str": LongText,
    "int": Integer,
    "bool": Boolean,
}


def _legacy_table(spec: TypeSpec, catalog: Catalog) -> Table:
    key = spec.natural_key[0] if len(spec.natural_key) == 1 else None
    columns: list[Column[object]] = [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uuid", String(36), nullable=False, unique=True, index=True),
        Column("version", Integer, nullable=False),
    ]
    for field in spec.fields:
        columns.append(
            Column(field.name, _COLUMN_TYPES[field.kind](), nullable=False,
                   unique=field.name == key or None, index=field.name == key or None)
        )
    for ref in spec.references:
        target = catalog.schema.type(ref.target)
        assert target is not None
        columns.append(
            Column(ref.column, Integer, ForeignKey(f"{target.table}.id"),
                   nullable=not ref.required, index=True)
        )
    return Table(spec.table, metadata, *columns)


projection: dict[str, Table] = {t.name: _legacy_table(t, legacy()) for t in legacy().schema.types}


# A declared schema's projection: one table per type, generated from the declaration. The
# built-in dms v1 keeps the tables its alembic migration created (`projection`, equal field
# for field); others are created by the vault when a schema declares them.
# On MariaDB (variants only: the other engines' DDL is unchanged) a VARCHAR needs a length,
# TEXT and BLOB hold 64 KiB, less than a value may, and FLOAT is single precision (1/3 read
# back 0.333333): DOUBLE, as floats are on the other engines, read as a float.
_DECLARED_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "str": LongText, "int": BigInteger, "bool": Boolean, "decimal": LongText,
    "float": lambda: Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb"),
    "date": lambda: String().with_variant(mysql.VARCHAR(10), "mysql", "mariadb"),
    "datetime": BigInteger, "json": LongText,
    "bytes": lambda: LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
    "uuid": lambda: String().with_variant(mysql.VARCHAR(36), "mysql", "mariadb"),
}
_PROJECTIONS: dict[str, dict[str, Table]] = {}


def projection_for(catalog: Catalog) -> dict[str, Table]:
    """The projection tables of a schema (type name -> Table), built once per process."""
    if catalog.hash == LEGACY_HASH:
        return projection
    found = _PROJECTIONS.get(catalog.hash)
    if found is None:
        own = MetaData(naming_convention=metadata.naming_convention)
        found = {}
        for spec in catalog.schema.types:
            found[spec.name] = _declared_table(own, spec, catalog)
        _PROJECTIONS[catalog.hash] = found
    return found


def _declared_table(own: MetaData, spec: TypeSpec, catalog: Catalog) -> Table:
    key = set(spec.natural_key)
    single = len(key) == 1
    columns: list[Any] = [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uuid", String(36), nullable=False, unique=True, index=True),
        Column("version", Integer, nullable=False),
    ]
    for field in spec.fields:
        columns.append(Column(field.name, _DECLARED_TYPES[field.kind](),
                              nullable=not field.required,
                              server_default=_server_default(field.default),
                              unique=(single and field.name in key) or None,
                              index=(single and field.name in key) or None))
    for ref in spec.references:
        target = catalog.schema.type(ref.target)
        assert target is not None
        columns.append(Column(ref.column, Integer, ForeignKey(f"{target.table}.id"),
                              nullable=not ref.required, index=True))
    if len(key) > 1:
        names = [spec.reference(n).column if spec.reference(n) else n  # type: ignore[union-attr]
                 for n in spec.natural_key]
        columns.append(UniqueConstraint(*names))
    return Table(spec.table, own, *columns)


def _server_default(value: object) -> Any:
    """The column default for a field's default: rows written by code that predates the
    field (the story's commands after `schema apply` added it) get what the fold gives."""
    if value is None or isinstance(value, bytes):
        return None
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int | float):
        return text(repr(value))
    return text("'" + str(value).replace("'", "''") + "'")
