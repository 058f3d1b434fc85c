"""Field values for one entity type: command-line words and API values to stored values, and
stored payloads checked against the declaration, with every error naming the type and field.

References are not resolved here: their value is a REF (UUID, `type:key`, username) that only
the database can turn into a UUID, so it passes through as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventvault.errors import UsageError
from eventvault.schemadoc import kinds
from eventvault.schemadoc.model import FieldSpec, TypeSpec


def _field(spec: TypeSpec, name: str) -> FieldSpec | None:
    """The plain field `name`, None for a reference; an unknown name is a usage error."""
    field = spec.field(name)
    if field is None and spec.reference(name) is None:
        raise UsageError(f"{spec.name} has no field {name!r} "
                         f"(fields: {', '.join(spec.field_names) or 'none'})")
    return field


def _chosen(spec: TypeSpec, field: FieldSpec, value: kinds.Stored) -> kinds.Stored:
    if field.choices and value not in field.choices:
        raise UsageError(f"{spec.name} field {field.name!r}: {value!r} is not one of "
                         f"{', '.join(map(str, field.choices))}")
    return value


def parse_field(spec: TypeSpec, name: str, text: str) -> kinds.Stored | None:
    """The stored value of `--set NAME=TEXT`. An empty TEXT clears an optional field that is
    not text (a text field holds the empty string); a reference's TEXT is returned as is."""
    field = _field(spec, name)
    if field is None:
        return text or None
    if text == "" and field.kind != "str":
        if field.required:
            raise UsageError(f"{spec.name} field {name!r} ({field.kind}) cannot be empty")
        return None
    try:
        value = kinds.parse(field.kind, text)
    except kinds.KindError as error:
        raise UsageError(f"{spec.name} field {name!r} ({field.kind}): {error}") from None
    return _chosen(spec, field, value)


def parse_assignments(spec: TypeSpec, words: Iterable[str]) -> dict[str, kinds.Stored | None]:
    """`["price=1.50", "title=Dune"]` as stored values; a field set twice is refused."""
    values: dict[str, kinds.Stored | None] = {}
    for word in words:
        name, equals, text = word.partition("=")
        if not equals or not name:
            raise UsageError(f"--set {word!r}: expected FIELD=VALUE")
        if name in values:
            raise UsageError(f"{spec.name} field {name!r} is set twice")
        values[name] = parse_field(spec, name, text)
    return values


def encode_field(spec: TypeSpec, name: str, value: object) -> kinds.Stored | None:
    """The stored value of a Python value given through the API (Decimal, date, ...)."""
    field = _field(spec, name)
    if field is None or value is None:
        if value is None and field is not None and field.required:
            raise UsageError(f"{spec.name} field {name!r} cannot be empty")
        return value  # type: ignore[return-value]
    try:
        stored = kinds.encode(field.kind, value)
    except kinds.KindError as error:
        raise UsageError(f"{spec.name} field {name!r} ({field.kind}): {error}") from None
    return _chosen(spec, field, stored)


def payload_problems(spec: TypeSpec, payload: Mapping[str, object]) -> list[str]:
    """What is wrong with a stored payload of this type, one line per field (for verify):
    unknown names, empty required fields, values not in their kind's canonical form, values
    outside the choices. References are checked to be UUIDs; whether the entity exists is the
    fold's business."""
    problems: list[str] = []
    for name, value in payload.items():
        field, reference = spec.field(name), spec.reference(name)
        where = f"{spec.name} field {name!r}"
        if field is None and reference is None:
            problems.append(f"{spec.name} has no field {name!r}")
        elif value is None:
            if (field or reference).required:  # type: ignore[union-attr]
                problems.append(f"{where} cannot be empty")
        elif field is None:
            try:
                kinds.check("uuid", value)  # an event stores a reference as its target's UUID
            except kinds.KindError:
                problems.append(f"{where} holds {value!r}, not a UUID")
        else:
            try:
                kinds.check(field.kind, value)
            except kinds.KindError as error:
                problems.append(f"{where}: {error}")
                continue
            if field.choices and value not in field.choices:
                problems.append(f"{where}: {value!r} is not one of the choices")
    return problems
