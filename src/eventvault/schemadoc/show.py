"""A schema written back as a TOML schema file, for `schema show`: edit it, `schema apply` it.

Only what differs from the defaults is written (as a person would write the file), and
`loads(to_toml(schema)) == schema` always holds; the test suite checks it for every kind.
"""

from __future__ import annotations

import json
from typing import Any

from eventvault.errors import SchemaError
from eventvault.schemadoc import kinds
from eventvault.schemadoc.model import FieldSpec, ReferenceSpec, Schema, TypeSpec


def to_toml(schema: Schema) -> str:
    lines = [f"name = {_toml(schema.name)}", f"version = {schema.version}"]
    for spec in schema.types:
        lines += ["", *_type(spec)]
    return "\n".join(lines) + "\n"


def _type(spec: TypeSpec) -> list[str]:
    lines = ["[[types]]", f"name = {_toml(spec.name)}", f"table = {_toml(spec.table)}"]
    if spec.natural_key:
        lines.append(f"natural_key = {_toml(list(spec.natural_key))}")
    if spec.writers != ("admin",):
        lines.append(f"writers = {_toml(list(spec.writers))}")
    for key, items in (("fields", spec.fields), ("references", spec.references)):
        if items:
            lines.append(f"{key} = [")
            lines += [f"  {_inline(_entry(spec, item))}," for item in items]
            lines.append("]")
    return lines


def _entry(spec: TypeSpec, item: FieldSpec | ReferenceSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": item.name}
    if isinstance(item, FieldSpec):
        entry["kind"] = item.kind
        if item.default is not None:
            entry["default"] = kinds.file_value(item.kind, item.default)
        if item.choices:
            entry["choices"] = [kinds.file_value(item.kind, c) for c in item.choices]
    else:
        entry["target"] = item.target
    if not item.required:
        entry["required"] = False
    if item.renamed_from is not None:
        entry["renamed_from"] = item.renamed_from
    return entry


def _inline(entry: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{key} = {_toml(value)}" for key, value in entry.items()) + " }"


def _toml(value: Any) -> str:
    """A TOML value. JSON's string escapes are TOML's, except that TOML also forbids a raw
    DEL character; numbers, booleans and arrays are spelled alike."""
    if value is None:
        raise SchemaError("a json default holding null cannot be written as TOML; "
                          "use `schema show --json`")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(str(key))} = {_toml(item)}"
                                for key, item in value.items()) + " }" if value else "{}"
    raise SchemaError(f"cannot write {type(value).__name__} as TOML")
