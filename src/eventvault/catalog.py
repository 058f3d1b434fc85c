"""The schema a log declares, compiled for the hot paths, and the events that declare it.

A log's schema is data in the log: an event of the reserved entity type `schema` carries a
schema's canonical bytes (docs/SCHEMA.md) and their hash, so the hash chain covers it and a
replay reproduces it at the same seq. A log with no such event (every vault before 0.2, and
every vault of the story's default schema) means the built-in dms schema version 1, whose
canonical bytes are frozen in `dms_v1.schema`: what an old log means never changes with
the code, even when the shipped dms.toml moves on.

A `Catalog` is one schema compiled once: per type, per field, the position, stored type,
reference target and nullability the fold checks each value against. Compiled catalogs are
cached by hash, so a process compiles each schema once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventvault.errors import IntegrityError, SchemaError
from eventvault.schemadoc import Schema, canonical, from_canonical, schema_hash
from eventvault.schemadoc.kinds import STORED_TYPE
from eventvault.system import system_uuid

SCHEMA_TYPE = "schema"  # the reserved entity type of schema events; no schema may declare it
# Every schema event is about one entity: the vault's schema. Its versions count the changes.
SCHEMA_ENTITY = system_uuid(SCHEMA_TYPE, "schema")
LEGACY_HASH = "f707b50b3952885afe9cf99a463824264caea3e471156e85a122cb95d95bb296"

# (position in the entity's values, stored type of a plain field, target of a reference,
# whether the value may be None)
FieldSpecTuple = tuple[int, type | None, str | None, bool]


@dataclass(frozen=True, slots=True)
class Catalog:
    """One schema, compiled: the look-ups the fold and the command path make per value."""

    schema: Schema
    hash: str
    canonical: bytes
    specs: dict[str, dict[str, FieldSpecTuple]]
    required: dict[str, list[int]]  # positions that may never be None
    defaults: dict[str, list[Any]]  # the values of a new entity before its payload
    names: dict[str, tuple[str, ...]]  # field names in value order (the digest's)

    @property
    def version(self) -> int:
        return self.schema.version

    @property
    def type_names(self) -> tuple[str, ...]:
        return self.schema.type_names

    def zero_counts(self) -> dict[str, int]:
        return dict.fromkeys(self.schema.type_names, 0)


_COMPILED: dict[bytes, Catalog] = {}


def compile_schema(schema: Schema) -> Catalog:
    """The catalog of `schema`, compiled once per process."""
    data = canonical(schema)
    found = _COMPILED.get(data)
    if found is None:
        if schema.type(SCHEMA_TYPE) is not None:
            raise SchemaError(f"type name '{SCHEMA_TYPE}' is reserved for the vault's own "
                              "schema events")
        specs: dict[str, dict[str, FieldSpecTuple]] = {}
        for t in schema.types:
            specs[t.name] = {
                **{f.name: (i, STORED_TYPE[f.kind], None, not f.required)
                   for i, f in enumerate(t.fields)},
                **{r.name: (len(t.fields) + i, None, r.target, not r.required)
                   for i, r in enumerate(t.references)},
            }
        found = _COMPILED[data] = Catalog(
            schema=schema, hash=schema_hash(schema), canonical=data, specs=specs,
            required={name: [p for p, _k, _t, nullable in s.values() if not nullable]
                      for name, s in specs.items()},
            defaults={t.name: [f.default for f in t.fields] + [None] * len(t.references)
                      for t in schema.types},
            names={t.name: t.field_names for t in schema.types},
        )
    return found


def legacy() -> Catalog:
    """The built-in dms schema version 1: what a log without a schema event means."""
    cached = _COMPILED.get(_legacy_bytes())
    if cached is not None:
        return cached
    return compile_schema(from_canonical(_legacy_bytes(), "dms_v1.schema"))


_LEGACY: list[bytes] = []


def _legacy_bytes() -> bytes:
    if not _LEGACY:
        # Beside this file (package data): importlib.resources would import zipfile, tempfile.
        data = (Path(__file__).parent / "dms_v1.schema").read_bytes()
        if hashlib.sha256(data).hexdigest() != LEGACY_HASH:  # frozen: a promise to old logs
            raise IntegrityError("the built-in dms_v1.schema is damaged (its hash changed)")
        _LEGACY.append(data)
    return _LEGACY[0]


def schema_fields(schema: Schema) -> dict[str, Any]:
    """The payload of a schema event."""
    return {"canonical": canonical(schema), "hash": schema_hash(schema)}


def schema_from_payload(payload: dict[str, Any], where: str) -> Schema:
    """The schema a schema event's payload declares, its bytes checked against its hash."""
    data, named = payload.get("canonical"), payload.get("hash")
    if type(data) is not bytes or type(named) is not str or set(payload) != {"canonical",
                                                                             "hash"}:
        raise IntegrityError(f"{where}: malformed schema event")
    if hashlib.sha256(data).hexdigest() != named:
        raise IntegrityError(f"{where}: the schema's bytes do not match its hash")
    try:
        return from_canonical(data, where)
    except SchemaError as error:
        raise IntegrityError(str(error)) from None
