"""Evolution: what moving a vault from one schema version to the next changes, or why not.

The rule is that no change may make data already in the log invalid, and none may lose it:
types and optional (or defaulted) fields may be added, fields renamed (`renamed_from`),
requirements relaxed and choices widened. A kind change, a retargeted reference, a field that
becomes required, a new required field without a default and a removed field are refused.
A removed type is allowed only while it has no live entities; counting them needs the
database, so `Change.removed_types` names them and the caller refuses if any is still alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventvault.errors import SchemaError
from eventvault.schemadoc.canonical import canonical
from eventvault.schemadoc.kinds import render
from eventvault.schemadoc.model import FieldSpec, ReferenceSpec, Schema, TypeSpec


@dataclass(frozen=True, slots=True)
class Change:
    """An accepted change from `old_version` to `new_version`."""

    old_version: int
    new_version: int
    added_types: tuple[str, ...] = ()
    removed_types: tuple[str, ...] = ()  # the caller refuses if any has live entities
    added_fields: tuple[tuple[str, str], ...] = ()  # (type, field or reference)
    renamed_fields: tuple[tuple[str, str, str], ...] = ()  # (type, old name, new name)
    notes: tuple[str, ...] = ()  # every change in words, for `schema apply` to print

    @property
    def empty(self) -> bool:
        return not self.notes


def origins(old: TypeSpec, new: TypeSpec) -> dict[str, str | None]:
    """For each field and reference of `new`, its name in `old`, or None if it is new.

    A field keeps its name, or is `renamed_from` a name that `old` has and `new` no longer
    has; a stale `renamed_from` (the rename happened versions ago) is ignored."""
    found: dict[str, str | None] = {}
    for items, old_names in ((new.fields, {f.name for f in old.fields}),
                             (new.references, {r.name for r in old.references})):
        for item in items:
            if item.name in old_names:
                found[item.name] = item.name
            elif item.renamed_from in old_names and item.renamed_from not in new.field_names:
                found[item.name] = item.renamed_from
            else:
                found[item.name] = None
    return found


def evolve(old: Schema, new: Schema) -> Change:
    """Classify the change from `old` to `new`, or raise `SchemaError` with every reason."""
    problems: list[str] = []
    if new.name != old.name:
        problems.append(f"schema '{new.name}' is not a version of schema '{old.name}' "
                        "(a vault keeps its schema's name)")
    elif canonical(new) == canonical(old):
        return Change(old.version, new.version)
    elif new.version <= old.version:
        problems.append(f"schema '{new.name}' version {new.version} differs from the "
                        f"vault's version {old.version}; give the new one a higher version")
    if problems:
        raise SchemaError(problems)
    added = tuple(t.name for t in new.types if old.type(t.name) is None)
    removed = tuple(t.name for t in old.types if new.type(t.name) is None)
    notes = [f"adds type '{name}'" for name in added]
    notes += [f"removes type '{name}' (allowed only while it has no live entities)"
              for name in removed]
    added_fields: list[tuple[str, str]] = []
    renamed: list[tuple[str, str, str]] = []
    for new_type in new.types:
        old_type = old.type(new_type.name)
        if old_type is not None:
            _compare(old_type, new_type, problems, notes, added_fields, renamed)
    if problems:
        raise SchemaError(problems)
    return Change(old.version, new.version, added, removed, tuple(added_fields),
                  tuple(renamed), tuple(notes))


def _compare(old: TypeSpec, new: TypeSpec, problems: list[str], notes: list[str],
             added: list[tuple[str, str]], renamed: list[tuple[str, str, str]]) -> None:
    where = f"type '{new.name}'"
    if new.table != old.table:
        problems.append(f"{where}: table changes from '{old.table}' to '{new.table}'; "
                        "a type keeps its table")
    matched = origins(old, new)
    for item in (*new.fields, *new.references):
        at = f"{where} {'field' if isinstance(item, FieldSpec) else 'reference'} '{item.name}'"
        before = matched[item.name]
        if before is None:
            if item.name in old.field_names:
                problems.append(f"{at}: changes between a field and a reference")
            elif item.required and getattr(item, "default", None) is None:
                problems.append(f"{at}: is new and required without a default, so every "
                                f"existing {new.name} would be invalid; give it a default "
                                "or make it optional (required = false)")
            else:
                added.append((new.name, item.name))
                notes.append(f"{at}: added")
            continue
        if before != item.name:
            renamed.append((new.name, before, item.name))
            notes.append(f"{at}: renamed from '{before}'")
        if isinstance(item, FieldSpec):
            _compare_field(old.field(before), item, at, problems, notes)  # type: ignore[arg-type]
        else:
            _compare_reference(old.reference(before), item, at, problems,  # type: ignore[arg-type]
                               notes)
    kept = {name for name in matched.values() if name is not None}
    for name in old.field_names:
        if name not in kept:
            problems.append(f"{where} field '{name}': is removed; fields cannot be removed "
                            "(live entities would lose their values); make it optional "
                            "(required = false) instead")
    rename = {before: name for name, before in matched.items() if before is not None}
    carried = tuple(rename.get(name, name) for name in old.natural_key)
    if carried != new.natural_key:
        problems.append(f"{where}: natural_key changes from {list(old.natural_key)} to "
                        f"{list(new.natural_key)}; existing entities may not be unique under "
                        "it")
    if new.writers != old.writers:
        notes.append(f"{where}: writers become {', '.join(new.writers)}")


def _compare_field(old: FieldSpec, new: FieldSpec, at: str, problems: list[str],
                   notes: list[str]) -> None:
    if new.kind != old.kind:
        problems.append(f"{at}: kind changes from {old.kind} to {new.kind}; a field keeps "
                        "its kind (add a new field instead)")
        return
    if new.required and not old.required:
        problems.append(f"{at}: becomes required, but existing entities may have it empty")
    elif old.required and not new.required:
        notes.append(f"{at}: becomes optional")
    if new.choices and not old.choices:
        problems.append(f"{at}: gains choices, but existing values may not be among them")
    elif old.choices:
        dropped = [str(c) for c in old.choices if new.choices and c not in new.choices]
        if dropped:
            problems.append(f"{at}: choices can only grow, but {', '.join(dropped)} "
                            "would be dropped")
        elif new.choices != old.choices:
            notes.append(f"{at}: choices become {', '.join(map(str, new.choices)) or 'any'}")
    if new.default != old.default:
        shown = "none" if new.default is None else render(new.kind, new.default)
        notes.append(f"{at}: default becomes {shown} (for entities created from now on)")


def _compare_reference(old: ReferenceSpec, new: ReferenceSpec, at: str,
                       problems: list[str], notes: list[str]) -> None:
    if new.target != old.target:
        problems.append(f"{at}: target changes from '{old.target}' to '{new.target}'; "
                        f"existing references point at a {old.target}")
    if new.required and not old.required:
        problems.append(f"{at}: becomes required, but existing entities may have it empty")
    elif old.required and not new.required:
        notes.append(f"{at}: becomes optional")
