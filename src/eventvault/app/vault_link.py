"""An application attached to a vault: attach, capture and restore with the vault keeping the
schema (as `schema` events), the mapping, the application's URL and the identity map.

The mapping, URL and identity map live in `vault_meta` (JSON). They are not in a package: a
vault replayed from one has none, so a restore then reflects the target (an application
migrated to the same schema gives the same mapping) and the restore stores what it used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.engine import make_url

from eventvault import projection
from eventvault.app.capture import capture as capture_changes
from eventvault.app.connect import app_engine
from eventvault.app.evolution import reattach
from eventvault.app.identity import IdentityMap
from eventvault.app.mapping import AppMapping
from eventvault.app.reflect import reflect
from eventvault.app.restore import RestoreReport
from eventvault.app.restore import restore as restore_state
from eventvault.app.state import Change, State
from eventvault.errors import NotAVaultError, UsageError, ValidationError
from eventvault.schemadoc import canonical
from eventvault.tables import vault_meta
from eventvault.vault import Vault

URL_KEY, MAPPING_KEY, IDENTITY_KEY = "app_url", "app_mapping", "app_identity"


def public_url(url: str) -> str:
    """The URL without its password (never stored)."""
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def _get(connection: Connection, key: str) -> Any:
    value = connection.execute(select(vault_meta.c.value).where(vault_meta.c.key == key)
                               ).scalar()
    return None if value is None else json.loads(value)


def _put(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(delete(vault_meta).where(vault_meta.c.key.in_(list(values))))
    connection.execute(vault_meta.insert(), [{"key": k, "value": json.dumps(v)}
                                             for k, v in values.items()])


def stored(vault: Vault) -> tuple[str | None, AppMapping | None, IdentityMap]:
    """The attached application's URL, mapping and identity map (None, None, empty if none)."""
    with vault.reading() as connection:
        url, mapping = _get(connection, URL_KEY), _get(connection, MAPPING_KEY)
        entries = _get(connection, IDENTITY_KEY) or []
    return (url, None if mapping is None else AppMapping.from_dict(mapping),
            IdentityMap(tuple(e) for e in entries))


@dataclass
class Attached:
    mapping: AppMapping
    url: str
    version: int
    notes: tuple[str, ...]


def attach(vault: Vault, url: str, exclude: Iterable[str], actor: str) -> Attached:
    """Reflect the application; a new vault takes the derived schema, an attached one the
    evolution to it (`reattach`); the URL and mapping are stored."""
    engine = app_engine(url)
    schema, mapping = reflect(engine, exclude)
    try:
        previous_mapping = stored(vault)[1]
    except NotAVaultError:  # a new vault
        previous_mapping = None
    notes: tuple[str, ...] = ()
    if previous_mapping is None:
        vault.init(declared=schema)  # refused if the vault holds another schema's events
        version = schema.version
    else:
        previous = vault.schema()
        new, mapping, change = reattach(previous, schema, mapping)
        if canonical(new) != canonical(previous) and not _same(previous, schema):
            vault.apply_schema(new, actor, "app attach", "app attach")
            notes, version = tuple(change.notes), new.version
        else:
            version = previous.version
    with vault.connect(write=True) as connection:
        _put(connection, {URL_KEY: public_url(url), MAPPING_KEY: mapping.to_dict()})
    return Attached(mapping, public_url(url), version, notes)


def _same(previous: Any, schema: Any) -> bool:
    """The reflection declares what the vault has (only the version would differ)."""
    from dataclasses import replace
    return bool(canonical(replace(schema, name=previous.name, version=previous.version))
                == canonical(previous))


def _require(mapping: AppMapping | None) -> AppMapping:
    if mapping is None:
        raise UsageError("no application is attached to this vault; run `eventvault app "
                         "attach APP_URL` first")
    return mapping


def capture(vault: Vault, source: str | None, actor: str) -> list[Change]:
    """Append the application's changes since the vault's state of its types, and persist the
    identity map, in one vault transaction. Nothing changed: nothing appended."""
    url, mapping, identity = stored(vault)
    mapping = _require(mapping)
    url = source or url
    if url is None:
        raise UsageError("no application URL stored; give --source APP_URL")
    engine = app_engine(url)
    with vault.entities(actor, "app capture", "app capture") as entities:
        previous = _vault_state(entities.connection, entities.catalog, mapping)
        changes, _ = capture_changes(engine, mapping, previous, identity)
        for change in changes:
            if change.action == "created":
                entities.create(change.type, dict(change.fields), change.entity)
            elif change.action == "updated":
                entities.change(change.entity, dict(change.fields))
            else:
                entities.delete(change.entity)
        _put(entities.connection, {IDENTITY_KEY: [list(e) for e in identity.entries()]})
    return changes


def _vault_state(connection: Connection, catalog: Any, mapping: AppMapping) -> State:
    types = {t.type for t in mapping.tables}
    state: State = {t: {} for t in types}
    for type_name, entity_id, values in projection.read_state(connection, catalog,
                                                              by_uuid=True):
        if type_name in types:
            state[type_name][entity_id] = dict(zip(catalog.names[type_name], values,
                                                   strict=True))
    return state


def restore(vault: Vault, target: str, *, at_seq: int | None = None, at: int | None = None,
            dry_run: bool = False, keep_extra: bool = False) -> RestoreReport:
    """The vault's state of the application's types (at a point if asked) written into the
    target; then (not on a dry run) the identity map points at the target's keys."""
    engine = app_engine(target)
    mapping = stored(vault)[1]
    if mapping is None:  # a vault replayed from a package: the target says how it maps
        _, mapping = reflect(engine)
        missing = [t.type for t in mapping.tables if vault.schema().type(t.type) is None]
        if missing:
            raise ValidationError(f"the target has tables the vault's schema does not: "
                                  f"{', '.join(missing)}; is it the attached application?")
    types = {t.type for t in mapping.tables}
    state: State = {t: {} for t in types}
    for record in vault.export(at_seq=at_seq, at=at):
        if record["type"] in types:
            state[record["type"]][record["uuid"]] = record["fields"]
    report = restore_state(engine, mapping, state, keep_extra=keep_extra, dry_run=dry_run)
    if not dry_run:
        with vault.connect(write=True) as connection:
            _put(connection, {URL_KEY: public_url(target), MAPPING_KEY: mapping.to_dict(),
                              IDENTITY_KEY: [list(e) for e in report.identity.entries()]})
    return report
