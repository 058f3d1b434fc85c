"""Reflect an application's database into a vault schema and the mapping that goes with it.

The rules (issue 13, DESIGN.md "Protecting an existing application"):
- every table with a single-column primary key is an entity type; a table without one is
  refused by name unless excluded (`django_migrations`, `alembic_version` are always skipped:
  they belong to the application's migration tool, which recreates them);
- an integer primary key is the application's surrogate: the vault names the row by UUID and
  never stores the integer. Any other primary key (text, UUID) is data: a field, and the key;
- each single-column foreign key is a reference to the referenced table's type; column
  `author_id` becomes reference `author`;
- the natural key is the first unique constraint (then unique index) that does not include
  the primary key and whose columns are all NOT NULL and keyable (not float or JSON).

Names. A type is named after its table and a field after its column, made schemadoc
identifiers (lowercase, `[a-z0-9_]`, at most 60 characters). The vault's own `user` type (its
actors) is always in the schema; an application's users are a different type (`auth_user` for
Django), and a table literally named `user` becomes type `app_user`. Each type's projection
table in the vault is `app_<type>`, so no application table can collide with the vault's own
tables (`users`, `events`, ...). Every decision is recorded, table by table.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import MetaData, Table, inspect, text
from sqlalchemy.engine import Engine

from eventvault.app.columns import is_integer, kind_of
from eventvault.app.mapping import AppField, AppMapping, AppReference, AppTable
from eventvault.errors import ValidationError
from eventvault.schemadoc import Schema, from_document

ALWAYS_SKIPPED = ("django_migrations", "alembic_version")
KEY_FIELD = "app_key"  # a surrogate table without a natural key: the row's key (identity.py)
_RESERVED_FIELDS = frozenset({"id", "uuid", "version", KEY_FIELD})
# The type of the one entity recording the attachment itself (vault_link.py); its projection
# table has no `app_` prefix, so no application table's type can take either name.
LINK_TYPE = "attached_app"
_UNKEYABLE = frozenset({"float", "json"})
TABLE_PREFIX = "app_"


def identifier(name: str, taken: set[str], reserved: Iterable[str] = ()) -> str:
    """A schemadoc identifier for an application's name, unique among `taken` (added)."""
    text = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if not text or not text[0].isalpha():
        text = f"t_{text}"
    if text in reserved:
        text = f"{text}_"
    if len(text) > 55:  # room for a suffix; the hash keeps long names distinct
        text = f"{text[:46]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    candidate, number = text, 2
    while candidate in taken:
        candidate, number = f"{text}_{number}", number + 1
    taken.add(candidate)
    return candidate


def excluded(table: str, patterns: Iterable[str]) -> str | None:
    """The pattern that excludes `table`, or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(table, p)), None)


def reflect(engine: Engine, exclude: Iterable[str] = (), name: str = "application",
            version: int = 1) -> tuple[Schema, AppMapping]:
    """The schema and mapping of the application at `engine`. Raises ValidationError naming
    every table it cannot take (one line each)."""
    patterns = tuple(exclude)
    inspector = inspect(engine)
    metadata = MetaData()
    metadata.reflect(engine)
    decisions: list[dict[str, Any]] = []
    problems: list[str] = []
    taken: list[Table] = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        if table.name in ALWAYS_SKIPPED or table.name.startswith("sqlite_"):
            decisions.append({"table": table.name, "decision": "skipped",
                              "reason": "the migration tool's own table"})
        elif (pattern := excluded(table.name, patterns)) is not None:
            decisions.append({"table": table.name, "decision": "excluded",
                              "reason": f"--exclude {pattern}"})
        elif len(table.primary_key.columns) != 1:
            problems.append(f"table {table.name} has no single-column primary key; "
                            f"exclude it (--exclude {table.name}) to attach without it")
        else:
            taken.append(table)
    names = {"user", LINK_TYPE}
    type_names = {t.name: identifier("app_user" if t.name.lower() == "user" else t.name, names)
                  for t in taken}
    tables: dict[str, AppTable] = {}
    for table in taken:
        spec, decision = _table(table, type_names, inspector, problems)
        if spec is not None:
            tables[spec.type] = spec
            decisions.append(decision)
    if problems:
        raise ValidationError("\n".join(problems))
    schema = from_document({"name": name, "version": version,
                            "types": [LINK_DOCUMENT, *(_document(t) for t in tables.values())]},
                           "application")
    ordered = tuple(tables[t.name] for t in schema.types if t.name in tables)
    decisions.sort(key=lambda d: d["table"])
    return schema, AppMapping(ordered, tuple(decisions))


def _table(table: Table, type_names: dict[str, str], inspector: Any,
           problems: list[str]) -> tuple[AppTable | None, dict[str, Any]]:
    (pk,) = table.primary_key.columns
    surrogate = is_integer(pk.type)
    names: set[str] = set()
    references: list[AppReference] = []
    reference_columns: set[str] = set()
    for constraint in sorted(table.foreign_key_constraints, key=lambda c: c.column_keys):
        columns = [element.parent for element in constraint.elements]
        if len(columns) != 1:
            problems.append(f"table {table.name}: foreign key ({', '.join(constraint.column_keys)}"
                            ") has several columns; exclude the table to attach without it")
            continue
        column, target = columns[0], constraint.elements[0].column
        if target.table.name not in type_names:
            problems.append(f"table {table.name} column {column.name} references table "
                            f"{target.table.name}, which is not attached; exclude both or "
                            "neither")
            continue
        base = column.name[:-3] if column.name.lower().endswith("_id") else column.name
        references.append(AppReference(
            identifier(base, names, _RESERVED_FIELDS), column.name,
            type_names[target.table.name], target.name, bool(column.nullable)))
        reference_columns.add(column.name)
    fields: list[AppField] = []
    json_columns = _mariadb_json(table, inspector)
    for column in table.columns:
        if column.name in reference_columns or (column is pk and surrogate):
            continue
        kind = "json" if column.name in json_columns else kind_of(column.type)
        if kind is None:
            problems.append(f"table {table.name} column {column.name}: no kind holds its type "
                            f"{column.type!r}; exclude the table to attach without it")
            continue
        scale = getattr(column.type, "scale", None) if kind == "decimal" else None
        fields.append(AppField(identifier(column.name, names, _RESERVED_FIELDS), column.name,
                               kind, bool(column.nullable) and column is not pk, scale))
    by_column = {f.column: f.name for f in fields} | {r.column: r.name for r in references}
    kinds_of = {f.column: f.kind for f in fields}
    natural_key: tuple[str, ...] = ()
    key_source = "none: rows are named by a UUID remembered per primary key"
    if not surrogate:
        natural_key, key_source = (by_column[pk.name],), f"primary key {pk.name} (not an integer)"
    else:
        for columns, source in _uniques(table, inspector):
            if pk.name in columns or not all(c in by_column for c in columns):
                continue
            if any(table.c[c].nullable or kinds_of.get(c) in _UNKEYABLE for c in columns):
                continue
            natural_key = tuple(by_column[c] for c in columns)
            key_source = f"{source} ({', '.join(columns)})"
            break
    spec = AppTable(type_names[table.name], table.name, pk.name, surrogate, tuple(fields),
                    tuple(references), natural_key, key_field_of(surrogate, natural_key))
    decision = {
        "table": table.name, "decision": "entity", "type": spec.type,
        "primary_key": pk.name + (" (replaced by a UUID)" if surrogate else " (kept)"),
        "natural_key": list(natural_key), "natural_key_from": key_source,
        "fields": {f.column: f.kind for f in fields},
        "references": {r.column: f"{r.target}.{r.target_column}" for r in references},
    }
    return spec, decision


def _mariadb_json(table: Table, inspector: Any) -> set[str]:
    """MariaDB's JSON is LONGTEXT with CHECK (json_valid(column)): reflection says text."""
    if inspector.dialect.name not in ("mysql", "mariadb"):
        return set()
    found = set()
    with inspector.bind.connect() as connection:  # a column's own CHECK: not reflected
        clauses = connection.execute(text(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": table.name})
        for (clause,) in clauses:
            match = re.fullmatch(r"\s*json_valid\(`([^`]+)`\)\s*", clause or "")
            if match and match.group(1) in table.c:
                found.add(match.group(1))
    return found


def _uniques(table: Table, inspector: Any) -> list[tuple[list[str], str]]:
    """Unique constraints, then unique indexes (partial ones aside), as the engine lists them."""
    if inspector.dialect.name == "sqlite":
        return _sqlite_uniques(table, inspector)
    found = [(list(c["column_names"]), f"unique constraint {c.get('name') or ''}".rstrip())
             for c in inspector.get_unique_constraints(table.name)]
    for index in inspector.get_indexes(table.name):
        where = index.get("dialect_options", {})
        if index.get("unique") and not any(k.endswith("_where") for k in where):
            found.append((list(index["column_names"]), f"unique index {index['name']}"))
    return found


def _sqlite_uniques(table: Table, inspector: Any) -> list[tuple[list[str], str]]:
    """SQLite's own list: SQLAlchemy's reflection misses a column's inline UNIQUE (Django
    declares `username varchar(150) NOT NULL UNIQUE`), which SQLite keeps as an autoindex."""
    quoted = table.name.replace('"', '""')
    with inspector.bind.connect() as connection:
        indexes = connection.exec_driver_sql(f'PRAGMA index_list("{quoted}")').all()
        # index_list lists the newest first; origin 'u' is a UNIQUE constraint, 'c' an index
        ordered = sorted((row for row in indexes if row[2] and row[3] in ("u", "c")
                          and not row[4]), key=lambda row: (row[3] != "u", -row[0]))
        found = []
        for row in ordered:
            index = row[1].replace('"', '""')
            columns = [info[2] for info in
                       connection.exec_driver_sql(f'PRAGMA index_info("{index}")')]
            if None not in columns:  # an index on an expression names no column
                what = "unique constraint" if row[3] == "u" else f"unique index {row[1]}"
                found.append((columns, what))
    return found


def key_field_of(surrogate: bool, natural_key: tuple[str, ...]) -> str | None:
    """The vault field that keeps a row's primary key: only where nothing else names it."""
    return KEY_FIELD if surrogate and not natural_key else None


# The attachment: the application's URL (without its password), the --exclude patterns and
# the mapping, as JSON (AppMapping.to_dict), in the log like any entity (vault_link.py).
LINK_DOCUMENT: dict[str, Any] = {
    "name": LINK_TYPE, "table": LINK_TYPE, "natural_key": [],
    "fields": [{"name": "url", "kind": "str", "required": True},
               {"name": "exclude", "kind": "json", "required": True},
               {"name": "mapping", "kind": "json", "required": True}],
    "references": [],
}


def _document(spec: AppTable) -> dict[str, Any]:
    """The schemadoc type declaration of a table."""
    key = ([{"name": spec.key_field, "kind": "int", "required": False}]
           if spec.key_field else [])
    return {
        "name": spec.type, "table": (TABLE_PREFIX + spec.type)[:60],
        "natural_key": list(spec.natural_key),
        "fields": [*({"name": f.name, "kind": f.kind, "required": not f.nullable}
                     for f in spec.fields), *key],
        "references": [{"name": r.name, "target": r.target, "required": not r.nullable}
                       for r in spec.references],
    }
