"""Names for the audit: each entity's fields after each of its events, and what to call it.

A timeline is one entity's history folded on its own, so the audit can say what a reference
pointed at (a username, a title, a state name) at the moment of any event, deleted entities
included.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventvault.catalog import SCHEMA_TYPE
from eventvault.errors import SchemaError
from eventvault.events import ACCESS_DENIED, CREATED, DELETED, Event, FieldValue
from eventvault.fold import SchemaHistory
from eventvault.log_read import EVENT_COLUMNS, row_to_event
from eventvault.reader import Reader
from eventvault.story_names import story_names

# The readable name of the story's types, in the story's field names (story_names.py): a
# field of its own or, for a type without one, the name of what one of its references points
# at (a workflow reads as its document's title). Another type reads as its one-field natural
# key, else its first field.
STORY_NAME_FIELDS: dict[str, str] = {
    "user": "username", "workflow_state": "name", "placeholder": "key",
    "backup_config": "name", "document": "title", "workflow": "document",
    "backup_job": "config", "restore_job": "requested_by",
}
NAME_HOPS = 3  # references one name may follow; a bound, should names ever form a cycle
CACHE_ENTITIES = 10_000
LOAD_BATCH = 500  # entity ids per IN (...) query


@dataclass(frozen=True, slots=True)
class TypeFacts:
    """What the audit needs of one type of the vault's current schema."""

    references: frozenset[str]
    name_field: str | None
    defaults: dict[str, FieldValue]


_FACTS: dict[tuple[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]],
             dict[str, TypeFacts]] = {}


def type_facts(history: SchemaHistory) -> dict[str, TypeFacts]:
    """Per type of the current schema: its references, name field and defaults."""
    story = story_names(history)
    key = (history.catalog.hash,
           tuple((t, tuple(sorted(r.items()))) for t, r in sorted(story.forward.items())))
    found = _FACTS.get(key)
    if found is None:
        found = {}
        for spec in history.catalog.schema.types:
            named = STORY_NAME_FIELDS.get(spec.name)
            name = story.current(spec.name, named) if named is not None else None
            if name is None or name not in spec.field_names:
                name = (spec.natural_key[0] if len(spec.natural_key) == 1
                        else spec.field_names[0] if spec.field_names else None)
            found[spec.name] = TypeFacts(
                frozenset(r.name for r in spec.references), name,
                {**{f.name: f.default for f in spec.fields},
                 **{r.name: None for r in spec.references}})
        _FACTS[key] = found
    return found


def current_fields(history: SchemaHistory, event: Event) -> dict[str, FieldValue]:
    """An event's fields in the vault's current names: a field renamed since the event was
    written shows under its new name, with the value the event recorded (schemadoc/upcast.py).
    A type removed since keeps its names."""
    fields = event.fields
    upcaster = history.upcaster
    if upcaster is None or event.schema_version == history.catalog.version \
            or event.entity_type == SCHEMA_TYPE:
        return fields
    try:
        plan = upcaster.plan(event.entity_type, event.schema_version)
    except SchemaError:
        return fields
    return fields if plan is None else plan.apply(fields, event.event_type == CREATED)


@dataclass(frozen=True, slots=True)
class Timeline:
    """One entity's fields after each of its events, in seq order; None once deleted."""

    entity_type: str
    seqs: list[int]
    states: list[dict[str, FieldValue] | None]

    def at(self, seq: int) -> dict[str, FieldValue] | None:
        """The fields in force right after the vault's event `seq`; None: absent then."""
        index = bisect_right(self.seqs, seq) - 1
        return self.states[index] if index >= 0 else None

    def named_at(self, seq: int) -> dict[str, FieldValue] | None:
        """The fields to name it by at `seq`: those in force, else its last, else its first."""
        for index in range(bisect_right(self.seqs, seq) - 1, -1, -1):
            if self.states[index] is not None:
                return self.states[index]
        return next((state for state in self.states if state is not None), None)


def fold_timeline(type_name: str, entity_events: Iterable[Event],
                  history: SchemaHistory) -> Timeline:
    """Fold one entity's events alone, without checking its references: the audit shows the
    log as it is (judging it is `verify`'s job), and the referenced entities are not here.
    Fields are in the current schema's names, however old the events."""
    facts = type_facts(history).get(type_name)
    defaults = facts.defaults if facts is not None else {}
    timeline = Timeline(type_name, [], [])
    state: dict[str, FieldValue] | None = None
    for event in entity_events:
        if event.event_type == ACCESS_DENIED:
            continue  # it changes no field
        if event.event_type == CREATED:
            state = {**defaults, **current_fields(history, event)}
        elif event.event_type == DELETED:
            state = None
        else:
            state = {**(state or {}), **current_fields(history, event)}
        timeline.seqs.append(event.seq)
        timeline.states.append(state)
    return timeline


class Names:
    """Timelines of the entities an answer mentions: loaded in batches, kept in an LRU cache.

    The cache is bounded so that a long answer (`audit log --limit 0` over a million events)
    runs in constant memory; an evicted timeline is simply loaded again when it is needed.
    """

    def __init__(self, reader: Reader, history: SchemaHistory,
                 capacity: int = CACHE_ENTITIES) -> None:
        self._reader = reader
        self.history = history
        self._facts = type_facts(history)
        self._capacity = capacity
        self._cache: OrderedDict[str, Timeline | None] = OrderedDict()

    def seed(self, entity_id: str, type_name: str, entity_events: Sequence[Event]) -> Timeline:
        """Fold events the caller has read already, sparing a query."""
        timeline = fold_timeline(type_name, entity_events, self.history)
        self._put(entity_id, timeline)
        return timeline

    def timeline(self, entity_id: str) -> Timeline | None:
        if entity_id not in self._cache:
            self.load([entity_id])
        else:
            self._cache.move_to_end(entity_id)
        return self._cache.get(entity_id)

    def load(self, entity_ids: Iterable[str]) -> None:
        """Read the timelines not cached yet, LOAD_BATCH entities a query."""
        missing = [entity_id for entity_id in dict.fromkeys(entity_ids)
                   if entity_id not in self._cache]
        for start in range(0, len(missing), LOAD_BATCH):
            grouped: dict[str, list[Event]] = {i: [] for i in missing[start:start + LOAD_BATCH]}
            rows = self._reader.rows(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_id IN "
                f"({', '.join('?' * len(grouped))}) AND event_type <> ? ORDER BY seq",
                (*grouped, ACCESS_DENIED))
            for row in rows:
                event = row_to_event(row)
                grouped[event.entity_id].append(event)
            for entity_id, found in grouped.items():
                self._put(entity_id, fold_timeline(found[0].entity_type, found, self.history)
                                     if found else None)

    def prefetch(self, found: Sequence[Event]) -> None:
        """Load, in a few batched queries, every timeline that describing `found` reads."""
        subjects = {event.entity_id for event in found}
        self.load(subjects | {event.actor_id for event in found})
        wanted: set[str] = set().union(*(self.references(i) for i in subjects))
        for _ in range(NAME_HOPS):
            if not wanted:
                break
            self.load(wanted)
            wanted = set().union(*(self.references(i, names_only=True) for i in wanted))

    def references(self, entity_id: str, names_only: bool = False) -> set[str]:
        """The UUIDs a cached entity ever pointed at (only those its name comes from)."""
        timeline = self._cache.get(entity_id)
        if timeline is None:
            return set()
        fields = self.reference_fields(timeline.entity_type)
        if names_only:
            fields = fields & {self.name_field(timeline.entity_type)}
        return {str(state[name]) for state in timeline.states if state
                for name in fields if state.get(name) is not None}

    def name_at(self, entity_id: str, seq: int, hops: int = 0) -> str | None:
        """The entity's name as it was at `seq` (its last one if it was deleted by then)."""
        timeline = self.timeline(entity_id)
        state = timeline.named_at(seq) if timeline else None
        field = self.name_field(timeline.entity_type) if timeline else None
        value = state.get(field) if state and field else None
        if value is None or timeline is None or field is None:
            return None
        if field in self.reference_fields(timeline.entity_type):
            return self.name_at(str(value), seq, hops + 1) if hops < NAME_HOPS else None
        return str(value)

    def name_field(self, type_name: str) -> str | None:
        """The field a type's entities are named by (None: a type removed since)."""
        facts = self._facts.get(type_name)
        return None if facts is None else facts.name_field

    def reference_fields(self, type_name: str) -> frozenset[str]:
        facts = self._facts.get(type_name)
        return frozenset() if facts is None else facts.references

    def fields(self, event: Event) -> dict[str, FieldValue]:
        """The event's fields in the current names (`current_fields`)."""
        return current_fields(self.history, event)

    def _put(self, entity_id: str, timeline: Timeline | None) -> None:
        self._cache[entity_id] = timeline
        self._cache.move_to_end(entity_id)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
