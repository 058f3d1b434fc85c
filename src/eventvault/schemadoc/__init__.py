"""Schemas as data: the entity types a vault holds, declared in a document, not in code.

A schema *document* (TOML, docs/SCHEMA.md) declares entity types, their fields, references,
natural keys and writers. This package is the pure part: parse and check a document
(`load`, `loads`) and write it back (`to_toml`, `to_json`); its canonical bytes and hash
(`canonical`, `schema_hash`, `from_canonical`); the rules for moving from one version to the
next (`evolve`); upcasting payloads written under an older version (`Upcaster`); the value
kinds (`kinds`) and the field values of one type (`parse_field`, `parse_assignments`,
`encode_field`, `payload_problems`). It touches no database.

Named `schemadoc` because `eventvault.schema` already manages the vault's own alembic schema.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventvault.errors import SchemaError
from eventvault.schemadoc import kinds

# Imported here, not on use: `canonical` and `evolve` share their names with their modules,
# which a later import of the module would leave in this namespace in the function's place;
# the model and the parser come with the canonical form, which every vault reads.
from eventvault.schemadoc.canonical import (
    CANONICAL_FORMAT,
    canonical,
    from_canonical,
    schema_hash,
    to_json,
    to_plain,
)
from eventvault.schemadoc.evolve import Change, evolve
from eventvault.schemadoc.model import USER_TYPE, FieldSpec, ReferenceSpec, Schema, TypeSpec
from eventvault.schemadoc.parse import from_document, load, loads

if TYPE_CHECKING:  # what the lazy names are, for type checkers and readers
    from eventvault.schemadoc.show import to_toml
    from eventvault.schemadoc.upcast import Plan, Upcaster
    from eventvault.schemadoc.values import (
        encode_field,
        parse_assignments,
        parse_field,
        payload_problems,
    )

# name -> the submodule that defines it, imported on first use (PEP 562): a read-only
# command (status, audit) needs the model and the canonical form, not upcasting, value
# parsing or TOML output, and every module imported is start-up an operator waits for.
_LAZY: dict[str, str] = {
    "to_toml": "show",
    "Plan": "upcast", "Upcaster": "upcast",
    "encode_field": "values", "parse_assignments": "values", "parse_field": "values",
    "payload_problems": "values",
}


def __getattr__(name: str) -> Any:
    """Import a name's submodule on first use, and keep the name (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CANONICAL_FORMAT",
    "USER_TYPE",
    "Change",
    "FieldSpec",
    "Plan",
    "ReferenceSpec",
    "Schema",
    "SchemaError",
    "TypeSpec",
    "Upcaster",
    "canonical",
    "default_schema",
    "encode_field",
    "evolve",
    "from_canonical",
    "from_document",
    "kinds",
    "load",
    "loads",
    "parse_assignments",
    "parse_field",
    "payload_problems",
    "schema_hash",
    "to_json",
    "to_plain",
    "to_toml",
]


@functools.cache
def default_schema() -> Schema:
    """The story's reference domain (dms.toml, shipped inside the package)."""
    # Beside this file (package data): importlib.resources would import zipfile and tempfile.
    text = (Path(__file__).parent / "dms.toml").read_text(encoding="utf-8")
    return loads(text, "dms.toml")
