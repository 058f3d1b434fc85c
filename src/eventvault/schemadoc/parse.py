"""Reading a schema document (TOML, or the canonical form's map) into a checked `Schema`.

Every problem found is reported, one self-contained line each, in one `SchemaError`: a user
fixing a file sees all mistakes at once. Nothing here touches a database.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventvault.errors import SchemaError
from eventvault.schemadoc import kinds
from eventvault.schemadoc.model import USER_TYPE, FieldSpec, ReferenceSpec, Schema, TypeSpec
from eventvault.schemadoc.order import dependency_order, required_cycle

# Lowercase ASCII: one spelling on every engine, no quoting surprises, and short enough that
# a reference's "<name>_id" column fits PostgreSQL's 63-byte identifiers.
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,59}")
RESERVED_TABLES = frozenset({"events", "vault_meta", "alembic_version"})
RESERVED_PREFIXES = ("sqlite_", "pg_")
RESERVED_COLUMNS = frozenset({"id", "uuid", "version"})  # every projection table has them
UNKEYABLE_KINDS = frozenset({"float", "json"})  # equality too loose or values too large

# `format`: the canonical map's own version (canonical.py), accepted so that the JSON shown
# by `schema show --json` reads back; absent in a TOML file.
_TOP_KEYS = {"format", "name", "version", "types"}
FORMAT = 1
_TYPE_KEYS = {"name", "table", "natural_key", "fields", "references", "writers"}
_FIELD_KEYS = {"name", "kind", "required", "default", "renamed_from", "choices"}
_REFERENCE_KEYS = {"name", "target", "required", "renamed_from"}


def load(path: str | Path) -> Schema:
    """Read and check a schema file; problems are reported as `FILE: ...` lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SchemaError(f"{path}: cannot read the schema: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SchemaError(f"{path}: the schema is not UTF-8 text") from None
    return loads(text, str(path))


def loads(text: str, source: str = "schema") -> Schema:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SchemaError(f"{source}: not valid TOML: {error}") from None
    return from_document(document, source)


def from_document(document: Mapping[str, Any], source: str = "schema",
                  stored: bool = False) -> Schema:
    """Check a parsed document. `stored`: defaults and choices are already stored values
    (the canonical form), not file values such as TOML dates or hex strings."""
    reader = _Reader(source, stored)
    schema = reader.schema(document)
    if reader.problems:
        raise SchemaError(reader.problems)
    return schema


class _Reader:
    def __init__(self, source: str, stored: bool) -> None:
        self.source = source
        self.stored = stored
        self.problems: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{self.source}: {where}{': ' if where else ''}{what}")

    def take(self, table: Any, key: str, expected: type | tuple[type, ...], where: str,
             default: Any = None, required: bool = False) -> Any:
        value = table.get(key) if isinstance(table, Mapping) else None
        if value is None:
            if required:
                self.fail(where, f"'{key}' is missing")
            return default
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            name = expected.__name__ if isinstance(expected, type) else "list"
            self.fail(where, f"'{key}' must be {_ARTICLE.get(name, name)}")
            return default
        return value

    def unknown_keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.fail(where, f"unknown key '{key}' (known: {', '.join(sorted(allowed))})")

    def identifier(self, value: Any, where: str, what: str) -> bool:
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            self.fail(where, f"{what} {value!r} is not a lowercase identifier "
                             "(a-z, 0-9, _; at most 60 characters, starting with a letter)")
            return False
        return True

    def schema(self, document: Mapping[str, Any]) -> Schema:
        self.unknown_keys(document, _TOP_KEYS, "")
        if document.get("format", FORMAT) != FORMAT:
            self.fail("", f"schema format {document['format']!r} is not known to this "
                          f"eventvault (it reads format {FORMAT}); upgrade eventvault")
        name = self.take(document, "name", str, "", "", required=True)
        if "name" in document and not str(name).strip():
            self.fail("", "'name' is empty")
        version = self.take(document, "version", int, "", 1, required=True)
        if version < 1:
            self.fail("", "'version' must be 1 or more")
        raw_types = self.take(document, "types", list, "", [])
        types: list[TypeSpec] = []
        for index, raw in enumerate(raw_types):
            if not isinstance(raw, Mapping):
                self.fail(f"types[{index}]", "must be a table")
                continue
            spec = self.type_spec(raw, index)
            if spec is not None:
                types.append(spec)
        if not any(t.name == "user" for t in types):
            types.insert(0, USER_TYPE)
        self.cross_check(types)
        return Schema(name, version, dependency_order(types) or tuple(types))

    def type_spec(self, raw: Mapping[str, Any], index: int) -> TypeSpec | None:
        name = self.take(raw, "name", str, f"types[{index}]", required=True)
        if name is None or not self.identifier(name, f"types[{index}]", "type name"):
            return None
        where = f"type '{name}'"
        self.unknown_keys(raw, _TYPE_KEYS, where)
        table = self.take(raw, "table", str, where, "", required=True)
        if table and self.identifier(table, where, "table") and (
                table in RESERVED_TABLES or table.startswith(RESERVED_PREFIXES)):
            self.fail(where, f"table '{table}' is reserved for the vault or the engine")
        fields = tuple(
            spec for i, item in enumerate(self.take(raw, "fields", list, where, []))
            if (spec := self.field_spec(item, f"{where} fields[{i}]", where)) is not None
        )
        references = tuple(
            spec for i, item in enumerate(self.take(raw, "references", list, where, []))
            if (spec := self.reference_spec(item, f"{where} references[{i}]", where))
        )
        natural_key = tuple(self.names(raw, "natural_key", where))
        writers = tuple(sorted(set(self.names(raw, "writers", where)))) or ("admin",)
        spec = TypeSpec(name, table, fields, references, natural_key, writers)
        self.check_type(spec)
        return spec

    def names(self, raw: Mapping[str, Any], key: str, where: str) -> list[str]:
        values = self.take(raw, key, list, where, [])
        if not all(isinstance(v, str) for v in values):
            self.fail(where, f"'{key}' must be a list of names")
            return []
        return values

    def field_spec(self, raw: Any, where: str, type_where: str) -> FieldSpec | None:
        if not isinstance(raw, Mapping):
            self.fail(where, "must be a table")
            return None
        name = self.take(raw, "name", str, where, required=True)
        if name is None or not self.identifier(name, where, "field name"):
            return None
        where = f"{type_where} field '{name}'"
        self.unknown_keys(raw, _FIELD_KEYS, where)
        kind = self.take(raw, "kind", str, where, "str", required=True)
        if kind not in kinds.KINDS:
            self.fail(where, f"unknown kind {kind!r} (kinds: {' '.join(kinds.KINDS)})")
            return None
        required = self.take(raw, "required", bool, where, True)
        renamed_from = self.take(raw, "renamed_from", str, where)
        if renamed_from is not None:
            self.identifier(renamed_from, where, "renamed_from")
        choices: list[kinds.Stored] = []
        raw_choices = self.take(raw, "choices", list, where, [])
        if raw_choices and kind not in ("str", "int"):
            self.fail(where, f"choices are for str and int fields, not {kind}")
        for choice in raw_choices if kind in ("str", "int") else []:
            value = self.value(kind, choice, where, "choice")
            if value in choices:
                self.fail(where, f"choice {choice!r} is listed twice")
            elif value is not None:
                choices.append(value)
        default = None
        if "default" in raw and raw["default"] is not None:
            default = self.value(kind, raw["default"], where, "default")
            if default is not None and choices and default not in choices:
                self.fail(where, f"default {raw['default']!r} is not one of the choices")
        return FieldSpec(name, kind, required, default, renamed_from, tuple(choices))

    def value(self, kind: str, raw: Any, where: str, what: str) -> kinds.Stored | None:
        try:
            if self.stored:
                kinds.check(kind, raw)
                return raw  # type: ignore[no-any-return]
            return kinds.encode(kind, raw)
        except kinds.KindError as error:
            self.fail(where, f"{what} {raw!r} is not a valid {kind}: {error}")
            return None

    def reference_spec(self, raw: Any, where: str, type_where: str) -> ReferenceSpec | None:
        if not isinstance(raw, Mapping):
            self.fail(where, "must be a table")
            return None
        name = self.take(raw, "name", str, where, required=True)
        if name is None or not self.identifier(name, where, "reference name"):
            return None
        where = f"{type_where} reference '{name}'"
        self.unknown_keys(raw, _REFERENCE_KEYS, where)
        target = self.take(raw, "target", str, where, "", required=True)
        required = self.take(raw, "required", bool, where, True)
        renamed_from = self.take(raw, "renamed_from", str, where)
        if renamed_from is not None:
            self.identifier(renamed_from, where, "renamed_from")
        return ReferenceSpec(name, target, required, renamed_from)

    def check_type(self, spec: TypeSpec) -> None:
        """Checks inside one type: names, columns, renames, natural key."""
        where = f"type '{spec.name}'"
        seen: set[str] = set()
        columns = {r.column: r.name for r in spec.references}
        for name in spec.field_names:
            if name in seen:
                self.fail(where, f"field '{name}' is declared twice")
            seen.add(name)
            if name in RESERVED_COLUMNS:
                self.fail(where, f"field '{name}' is reserved (every table has id, uuid, "
                                 "version)")
            if name in columns:
                self.fail(where, f"field '{name}' clashes with reference '{columns[name]}' "
                                 "(stored in column {name})")
        for item in (*spec.fields, *spec.references):
            # A renamed_from naming another current field is a stale one (that rename happened
            # versions ago) and is ignored; evolve refuses a rename it would make ambiguous.
            if item.renamed_from == item.name:
                self.fail(where, f"field '{item.name}' is renamed_from itself")
        for name in spec.natural_key:
            field, reference = spec.field(name), spec.reference(name)
            if field is None and reference is None:
                self.fail(where, f"natural_key names '{name}', which is not a field")
            elif not (field or reference).required:  # type: ignore[union-attr]
                self.fail(where, f"natural_key field '{name}' must be required")
            elif field is not None and field.kind in UNKEYABLE_KINDS:
                self.fail(where, f"natural_key field '{name}' cannot be of kind {field.kind}")
        if len(set(spec.natural_key)) != len(spec.natural_key):
            self.fail(where, "natural_key names a field twice")

    def cross_check(self, types: list[TypeSpec]) -> None:
        """Checks across types: unique names and tables, targets, the user type, writers."""
        names: set[str] = set()
        tables: dict[str, str] = {}
        for spec in types:
            if spec.name in names:
                self.fail("", f"type '{spec.name}' is declared twice")
            names.add(spec.name)
            if spec.table in tables and spec.table:
                self.fail(f"type '{spec.name}'", f"table '{spec.table}' is already the table "
                                                 f"of type '{tables[spec.table]}'")
            tables.setdefault(spec.table, spec.name)
        for spec in types:
            for reference in spec.references:
                if reference.target not in names:
                    self.fail(f"type '{spec.name}' reference '{reference.name}'",
                              f"target '{reference.target}' is not a declared type")
        user = next(t for t in types if t.name == "user")
        roles = self.check_user(user)
        for spec in types:
            for role in spec.writers:
                if roles and role not in roles:
                    self.fail(f"type '{spec.name}'", f"writer '{role}' is not a role "
                                                     f"(roles: {', '.join(map(str, roles))})")
        targets_known = all(r.target in names for t in types for r in t.references)
        if targets_known and dependency_order(types) is None:
            stuck = required_cycle(types)
            self.fail("", f"required references form a cycle ({' -> '.join(stuck)}): no "
                          "entity on it could be created first; make one optional")

    def check_user(self, user: TypeSpec) -> tuple[kinds.Stored, ...]:
        """The fields the vault itself relies on: actors log in by username and act by role."""
        for expected in USER_TYPE.fields:
            found = user.field(expected.name)
            if found is None or found.kind != expected.kind:
                self.fail("type 'user'", f"must have a {expected.kind} field "
                                         f"'{expected.name}' (the vault's actors need it)")
        if user.natural_key != ("username",):
            self.fail("type 'user'", "natural_key must be [\"username\"]")
        role = user.field("role")
        roles = role.choices if role is not None else ()
        if role is not None and "admin" not in roles:
            self.fail("type 'user' field 'role'", "choices must include 'admin'")
        return roles


_ARTICLE = {"str": "a string", "int": "an integer", "bool": "true or false",
            "list": "a list", "tuple": "a list"}
