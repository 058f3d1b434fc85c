"""The canonical form of a schema: one byte string per declaration, and its SHA-256.

msgpack, not JSON: the event records and package metadata are msgpack already (a reader needs
nothing new), and defaults are held as stored values of every kind exactly (bytes as bin,
int64, float64), where JSON would need a convention for bytes and a float formatter that every
reader reproduces. Canonical means: maps with keys sorted, every key present (nil or an empty
list when unset, so "absent" and "default" cannot be spelled two ways), lists in schema order
(types in dependency order, fields and choices as declared, writers sorted), integers in their
shortest encoding, floats as float64, text as str and bytes as bin.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgpack

from eventvault.errors import SchemaError
from eventvault.schemadoc import kinds
from eventvault.schemadoc.model import Schema
from eventvault.schemadoc.parse import FORMAT as CANONICAL_FORMAT
from eventvault.schemadoc.parse import from_document


def to_plain(schema: Schema, stored: bool = True) -> dict[str, Any]:
    """The declaration as plain maps and lists. `stored`: defaults and choices as stored values
    (the canonical form); otherwise as a schema file writes them (for JSON display), which
    `from_document` reads back to the same schema."""

    def value(kind: str, item: kinds.Stored | None) -> Any:
        return item if stored or item is None else kinds.file_value(kind, item)

    return {
        "format": CANONICAL_FORMAT,
        "name": schema.name,
        "version": schema.version,
        "types": [
            {
                "name": t.name,
                "table": t.table,
                "natural_key": list(t.natural_key),
                "writers": list(t.writers),
                "fields": [
                    {"name": f.name, "kind": f.kind, "required": f.required,
                     "default": value(f.kind, f.default), "renamed_from": f.renamed_from,
                     "choices": [value(f.kind, c) for c in f.choices]}
                    for f in t.fields
                ],
                "references": [
                    {"name": r.name, "target": r.target, "required": r.required,
                     "renamed_from": r.renamed_from}
                    for r in t.references
                ],
            }
            for t in schema.types
        ],
    }


def _sorted(item: Any) -> Any:
    if isinstance(item, dict):
        return {key: _sorted(item[key]) for key in sorted(item)}
    if isinstance(item, list):
        return [_sorted(element) for element in item]
    return item


def canonical(schema: Schema) -> bytes:
    """The canonical bytes: what a vault and a package store, and what the hash is of."""
    return msgpack.packb(_sorted(to_plain(schema)), use_bin_type=True)


def schema_hash(schema: Schema) -> str:
    """SHA-256 of the canonical bytes, as 64 lowercase hex digits: the schema's name."""
    return hashlib.sha256(canonical(schema)).hexdigest()


def to_json(schema: Schema) -> str:
    """The declaration as readable JSON (`schema show --json`); not canonical, not hashed."""
    return json.dumps(to_plain(schema, stored=False), indent=2, ensure_ascii=False)


def from_canonical(data: bytes, source: str = "stored schema") -> Schema:
    """Read canonical bytes back, refusing anything that is not exactly canonical: what a
    package carries is what its hash names, byte for byte."""
    try:
        document = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as error:
        raise SchemaError(f"{source}: not a canonical schema (msgpack: {error})") from None
    if not isinstance(document, dict):
        raise SchemaError(f"{source}: not a canonical schema (not a map)")
    found = document.get("format")
    if found != CANONICAL_FORMAT:
        raise SchemaError(f"{source}: canonical schema format {found!r} is not known to this "
                          f"eventvault (it reads format {CANONICAL_FORMAT}); upgrade eventvault")
    schema = from_document(document, source, stored=True)
    if canonical(schema) != data:
        raise SchemaError(f"{source}: schema bytes are not in canonical form")
    return schema
