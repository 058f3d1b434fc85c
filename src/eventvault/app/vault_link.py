"""An application attached to a vault: attach, capture and restore, with everything the vault
needs to do them again kept in its log, so that a package carries it and a replay into a
fresh vault reproduces it (docs/APP.md, "What the vault keeps"):

- the schema, as `schema` events;
- the attachment, one entity of type `attached_app` (reflect.LINK_TYPE): the application's
  URL without its password, the `--exclude` patterns and the mapping (AppMapping.to_dict);
  re-attaching, and restoring into another database, update it;
- the identity of rows without a natural key: their primary key in the application, a
  field (`app_key`) of each such entity, set when a capture creates it and updated by a
  restore that had to give a row another key. The identity map is derived from the state.

A vault replayed from a 0.2.0 package (which kept the attachment in vault_meta) has none of
this: its first `app restore` records it (`_adopt`).
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import make_url

from eventvault import projection_read, vault_schema
from eventvault.app.capture import capture as capture_changes
from eventvault.app.connect import app_engine
from eventvault.app.evolution import reattach, settled
from eventvault.app.identity import NAMESPACE, IdentityMap, successor
from eventvault.app.mapping import AppMapping
from eventvault.app.record import record
from eventvault.app.reflect import LINK_TYPE, reflect
from eventvault.app.restore import RestoreReport
from eventvault.app.restore import restore as restore_state
from eventvault.app.state import (
    Change,
    State,
    StateView,
    StoredRows,
    diff,
    field_values,
    renamed,
    successors,
)
from eventvault.catalog import Catalog
from eventvault.entities import Entities
from eventvault.errors import NotAVaultError, UsageError, ValidationError
from eventvault.schemadoc import Schema, canonical, kinds
from eventvault.system import SYSTEM_ACTOR
from eventvault.tables import events, projection_for
from eventvault.vault import Vault

# The attachment entity: one per vault, the same UUID in every vault.
LINK_ID = str(uuid.uuid5(NAMESPACE, LINK_TYPE))


@contextmanager
def _bulk() -> Iterator[None]:
    """The cycle collector off while a capture or restore holds a state of every row: it
    finds no cycles there but walks the growing heap again and again (as in replay.py)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def public_url(url: str) -> str:
    """The URL without its password (never stored)."""
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Link:
    """What the attachment entity holds."""

    url: str
    exclude: tuple[str, ...]
    mapping: AppMapping

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "exclude": kinds.encode("json", list(self.exclude)),
                # the decisions are what attach printed, not what capture and restore use
                "mapping": kinds.encode("json", replace(self.mapping, decisions=()).to_dict())}


def _link(connection: Connection, catalog: Catalog) -> Link | None:
    if catalog.schema.type(LINK_TYPE) is None:
        return None
    table = projection_for(catalog)[LINK_TYPE]
    row = connection.execute(select(table.c.url, table.c.exclude, table.c.mapping)
                             .where(table.c.uuid == LINK_ID)).first()
    if row is None:
        return None
    return Link(row.url, tuple(kinds.decode("json", row.exclude)),  # type: ignore[arg-type]
                AppMapping.from_dict(kinds.decode("json", row.mapping)))  # type: ignore[arg-type]


def stored(vault: Vault) -> Link | None:
    """The attachment the vault's log records, or None (no application attached; a vault
    replayed from a package made before eventvault kept it in the log)."""
    with vault.reading() as connection:
        return _link(connection, vault_schema.history(connection).catalog)


def _write_link(entities: Entities, link: Link) -> None:
    """Create the attachment entity or update what changed in it."""
    previous = _link(entities.connection, entities.catalog)
    if previous is None:
        record(entities, [Change("created", LINK_TYPE, LINK_ID, link.fields())])
        return
    before = previous.fields()
    changed = {n: v for n, v in link.fields().items() if before[n] != v}
    if changed:
        record(entities, [Change("updated", LINK_TYPE, LINK_ID, changed)])


@dataclass
class Attached:
    mapping: AppMapping
    url: str
    version: int
    notes: tuple[str, ...]
    exclude: tuple[str, ...]


def attach(vault: Vault, url: str, exclude: Iterable[str], actor: str) -> Attached:
    """Reflect the application; a new vault takes the derived schema, an attached one the
    evolution to it (`reattach`); the attachment (URL, patterns, mapping) is recorded.
    No patterns given on a re-attach: the recorded ones hold."""
    patterns = tuple(exclude)
    try:
        previous = stored(vault)
    except NotAVaultError:  # a new vault
        previous = None
    if not patterns and previous is not None:
        patterns = previous.exclude
    engine = app_engine(url)
    schema, mapping = reflect(engine, patterns)
    notes: tuple[str, ...] = ()
    if previous is None:
        vault.init(declared=schema)  # refused if the vault holds another schema's events
        version = schema.version
    else:
        old = vault.schema()
        new, mapping, change = reattach(old, schema, mapping)
        mapping = settled(mapping, previous.mapping)
        if canonical(replace(new, version=old.version)) != canonical(old) and \
                not _same(old, schema):
            vault.apply_schema(new, actor, "app attach", "app attach")
            notes, version = tuple(change.notes), new.version
        else:
            version = old.version
    link = Link(public_url(url), patterns, mapping)
    with vault.entities(actor, "app attach", "app attach") as entities:
        _write_link(entities, link)
    return Attached(mapping, link.url, version, notes, patterns)


def _same(previous: Schema, schema: Schema) -> bool:
    """The reflection declares what the vault has (only the version would differ)."""
    return bool(canonical(replace(schema, name=previous.name, version=previous.version))
                == canonical(previous))


def _require(link: Link | None) -> Link:
    if link is None:
        raise UsageError("no application is attached to this vault; run `eventvault app "
                         "attach APP_URL` first")
    return link


def _adopt(vault: Vault, engine: Engine, target: str) -> tuple[Link, Schema | None]:
    """The attachment of a vault whose log records none (a package of 0.2.0, which kept it
    in vault_meta): the target's reflection, as `app attach` would record it, and the schema
    evolution that gives the vault what the attachment needs (the `attached_app` type, the
    optional `app_key` field of rows without a natural key), or None if it has it. Computed
    before the restore, so that a vault the target does not fit is refused with nothing
    written; applied only after the restore succeeded."""
    schema, mapping = reflect(engine)
    old = vault.schema()
    missing = [t.type for t in mapping.tables if old.type(t.type) is None]
    if missing:
        raise ValidationError(f"the target has tables the vault's schema does not: "
                              f"{', '.join(missing)}; is it the attached application?")
    new, mapping, _ = reattach(old, schema, mapping)  # the vault's natural keys kept
    changed = canonical(replace(new, version=old.version)) != canonical(old)
    return Link(public_url(target), (), mapping), new if changed else None


def identity_of(state: StateView, mapping: AppMapping) -> IdentityMap:
    """(table, primary key) -> UUID of the rows without a natural key, from their key field;
    and the successors a read names rows with a natural key by (state.successors)."""
    return IdentityMap(
        ((spec.table, key, entity)
         for spec in mapping.tables if spec.key_field is not None
         for entity, key in field_values(state.get(spec.type, {}), spec.key_field).items()
         if key is not None), successors(state, mapping))


def capture(vault: Vault, source: str | None, actor: str) -> list[Change]:
    """Append the application's changes since the vault's state of its types, in one vault
    transaction. Nothing changed: nothing appended."""
    with _bulk():
        return _capture(vault, source, actor)


def _capture(vault: Vault, source: str | None, actor: str) -> list[Change]:
    with vault.reading() as connection:
        link = _require(_link(connection, vault_schema.history(connection).catalog))
    engine = app_engine(source or link.url)
    with vault.entities(actor, "app capture", "app capture") as entities:
        previous = _vault_state(entities.connection, entities.catalog, link.mapping)
        changes, current = capture_changes(engine, link.mapping, previous,
                                           identity_of(previous, link.mapping))
        # A new row of a type with a natural key may be one the vault holds deleted: the
        # application created that key again. Only such a row can be: any other new row
        # has a new random UUID.
        natural = {t.type for t in link.mapping.tables if t.natural_key}
        names = _incarnations(entities.connection, _live(previous), [
            c.entity for c in changes if c.action == "created" and c.type in natural])
        if names:
            changes = diff(previous, renamed(current, names, link.mapping), link.mapping)
        record(entities, changes)
    return changes


def _live(state: StateView) -> set[str]:
    return {entity for entities in state.values() for entity in entities}


def _incarnations(connection: Connection, live: set[str],
                  entities: Collection[str]) -> dict[str, str]:
    """For each of `entities` (not in `live`) that the log holds deleted, the UUID that names
    its row now: its successor, or the successor's if that was deleted too, until one is
    live or was never used. The others are not in the result."""
    names: dict[str, str] = {}
    pending = {entity: entity for entity in entities}  # entity -> the candidate for its row
    while pending:
        candidates = sorted(set(pending.values()))
        used: set[str] = set()
        for start in range(0, len(candidates), 500):
            used.update(connection.execute(
                select(events.c.entity_id).distinct()
                .where(events.c.entity_id.in_(candidates[start:start + 500]))).scalars())
        pending = {entity: successor(candidate) for entity, candidate in pending.items()
                   if candidate in used}
        names.update(pending)
        pending = {e: c for e, c in pending.items() if c not in live}
    return names


def _vault_state(connection: Connection, catalog: Catalog, mapping: AppMapping
                 ) -> dict[str, StoredRows]:
    # In table order: nothing here needs UUID order (the digest and diff sort), and the
    # index order read was the slower half of reading the vault's state.
    return {spec.type: StoredRows(catalog.names[spec.type], dict(
        projection_read.read_entities(connection, catalog, spec.type))) for spec in mapping.tables}


def restore(vault: Vault, target: str, *, at_seq: int | None = None, at: int | None = None,
            dry_run: bool = False, keep_extra: bool = False) -> RestoreReport:
    """The vault's state of the application's types (at a point if asked) written into the
    target. Then (not on a dry run) the vault records where the application now is: the
    attachment's URL, the new key of each row without a natural key whose key changed, and
    (restored at an earlier point) the rows whose entities were deleted since, created as
    their successors (identity.successor), so that the next capture of the restored
    application records only what differs from the vault's head otherwise."""
    with _bulk():
        return _restore(vault, target, at_seq=at_seq, at=at, dry_run=dry_run,
                        keep_extra=keep_extra)


def _restore(vault: Vault, target: str, *, at_seq: int | None, at: int | None,
             dry_run: bool, keep_extra: bool) -> RestoreReport:
    engine = app_engine(target)
    link = stored(vault)
    adopted: Schema | None = None
    if link is None:  # a package from before the attachment was in the log
        link, adopted = _adopt(vault, engine, target)
        # restored without the key field: the vault's schema may not have it yet
        mapping = replace(link.mapping, tables=tuple(replace(t, key_field=None)
                                                     for t in link.mapping.tables))
    else:
        mapping = link.mapping
    state: StateView
    if at_seq is None and at is None:  # the vault's tables hold the head's state
        with vault.reading(consistent=True) as connection:
            state = _vault_state(connection, vault_schema.history(connection).catalog,
                                 mapping)
    else:
        types = {t.type for t in mapping.tables}
        exported: State = {t: {} for t in types}
        for item in vault.export(at_seq=at_seq, at=at):
            if item["type"] in types:
                exported[item["type"]][item["uuid"]] = item["fields"]
        state = exported
    report = restore_state(engine, mapping, state, keep_extra=keep_extra, dry_run=dry_run)
    if dry_run:
        return report
    if adopted is not None:
        vault.apply_schema(adopted, SYSTEM_ACTOR, "app restore", "app restore")
    mapping = link.mapping
    with vault.entities(SYSTEM_ACTOR, "app restore", "app restore") as entities:
        current = state if at_seq is None and at is None else \
            _vault_state(entities.connection, entities.catalog, mapping)
        # Rows restored from an earlier point whose entities were deleted since: the
        # application has them again, under their successors (identity.successor)
        live = _live(current)
        names = _incarnations(entities.connection, live, [
            e for entities_of in state.values() for e in entities_of if e not in live])
        back = {t: {e: state[t][e] for e in state[t]  # a dict only for those
                    if e in names and names[e] not in live} for t in state}
        rebound = []
        by_table = {t.table: t for t in mapping.tables}
        held = {t.type: field_values(current.get(t.type, {}), t.key_field)
                for t in mapping.tables if t.key_field is not None}  # entity -> its key
        for table, key, entity in report.identity.items():
            spec = by_table[table]
            if entity in back.get(spec.type, {}) and spec.key_field is not None:
                back[spec.type][entity] = {**back[spec.type][entity], spec.key_field: key}
            entity = names.get(entity, entity)
            if spec.key_field is not None and entity in held[spec.type] and \
                    held[spec.type][entity] != key:
                rebound.append(Change("updated", spec.type, entity, {spec.key_field: key}))
        recreated = diff({}, renamed(back, names, mapping), mapping)
        order = {t.type: i for i, t in enumerate(mapping.tables)}
        rebound.sort(key=lambda c: order[c.type])  # record() batches consecutive types
        record(entities, recreated + rebound)
        _write_link(entities, replace(link, url=public_url(target)))
    report.rebound, report.recreated = len(rebound), sum(
        c.action == "created" for c in recreated)
    return report
