"""The `eventvault audit` commands: parse, ask `eventvault.audit`, print via `render`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import click

from eventvault.cli.context import Context
from eventvault.errors import UsageError
from eventvault.events import parse_time, principal_text
from eventvault.render import CSV_LINE_END, Column, Format, for_terminal, render

if TYPE_CHECKING:  # the queries and what they read: imported when a command runs, not for --help
    from eventvault import audit as queries

DEFAULT_LIMIT = 100  # events a page by default; equal to audit.DEFAULT_LIMIT (a test says so)

# With --limit 0 (everything) the events come this many a query, each page its own read
# transaction: the log is append-only and pages follow seq, so none is missed or repeated.
PAGE = 1000

EVENT_FIELDS = ("seq", "recorded_at", "event_type", "entity_type", "entity_id", "entity_name",
                "actor", "actor_id", "principal", "reason", "command", "changes")

STATE_FIELDS = ("entity_type", "entity_id", "at", "seq", "field", "value", "uuid")

REF_HELP = ("REF is a UUID, TYPE:NAME (user:admin, workflow_state:draft, placeholder:KEY, "
            "backup_config:NAME, document:TITLE) or a plain username; deleted entities too.")


@click.group()
def audit() -> None:
    """Who changed what, when, and what everything looked like at a moment.

    Tables for people; --json (one object a line) and --csv for tools. Times are ISO-8601;
    a time without a zone is UTC.
    """


def _time(_ctx: click.Context, _param: click.Parameter, text: str | None) -> int | None:
    return None if text is None else parse_time(text)  # malformed: a UsageError (exit 2)


def output_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--csv", "as_csv", is_flag=True,
                            help="CSV: a header, then one row each.")(function)
    return click.option("--json", "as_json", is_flag=True,
                        help="One JSON object a line.")(function)


def range_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--since", metavar="TIME", callback=_time, help="From this time on."),
        click.option("--until", metavar="TIME", callback=_time, help="Up to this time."),
        click.option("--after", metavar="SEQ", type=click.IntRange(min=0), default=0,
                     help="Continue after this seq (the previous page's last)."),
        click.option("--limit", metavar="N", type=click.IntRange(min=0),
                     default=DEFAULT_LIMIT, show_default=True,
                     help="At most this many events; 0 for all."),
        click.option("-q", "--quiet", is_flag=True,
                     help="No 'more follow' line when --limit cuts the answer."),
    )):
        function = option(function)
    return function


def output_format(as_json: bool, as_csv: bool) -> Format:
    if as_json and as_csv:
        raise UsageError("give --json or --csv, not both")
    return "json" if as_json else "csv" if as_csv else "table"


# --- commands ----------------------------------------------------------------------------

@audit.command(epilog=REF_HELP)
@click.argument("ref")
@output_options
@click.pass_obj
def history(context: Context, ref: str, as_json: bool, as_csv: bool) -> None:
    """Every event of one entity in order, with each field's old and new value."""
    fmt = output_format(as_json, as_csv)
    from eventvault import audit as queries

    with context.reading() as reader:
        found = queries.history(reader, ref)
    if fmt == "table":
        state = " (deleted)" if found.deleted else ""
        click.echo(for_terminal(
            f"{found.entity_type} {found.entity_id} {_name(found.name)}{state}"))
    columns = [SEQ, TIME, ACTOR, PRINCIPAL, EVENT, REASON, CHANGES]
    _print(fmt, (event.as_json() for event in found.events), columns)


@audit.command()
@click.argument("username")
@range_options
@output_options
@click.pass_obj
def actor(context: Context, username: str, since: int | None, until: int | None,
          after: int, limit: int, quiet: bool, as_json: bool, as_csv: bool) -> None:
    """Everything USERNAME did, in order; a user deleted since too."""
    fmt = output_format(as_json, as_csv)
    from eventvault import audit as queries

    def page(after: int, size: int) -> queries.Page:
        with context.reading() as reader:
            return queries.actor_events(reader, username, since=since, until=until,
                                        after=after, limit=size)

    pages = Pages(page)
    _print(fmt, pages.records(after, limit),
           [SEQ, TIME, PRINCIPAL, ENTITY, EVENT, REASON, CHANGES])
    pages.tell_more(quiet)


@audit.command("log")
@click.option("--type", "type_name", metavar="ENTITY_TYPE",
              help="Only events of this entity type (`eventvault schema show` lists them).")
@click.option("--actor", "actor_name", metavar="USERNAME", help="Only events by this user.")
@range_options
@output_options
@click.pass_obj
def log(context: Context, type_name: str | None, actor_name: str | None,
        since: int | None, until: int | None, after: int, limit: int, quiet: bool,
        as_json: bool, as_csv: bool) -> None:
    """The event log in order, filtered by entity type, actor and time."""
    fmt = output_format(as_json, as_csv)
    from eventvault import audit as queries

    def page(after: int, size: int) -> queries.Page:
        with context.reading() as reader:
            return queries.log(reader, type_name=type_name, actor=actor_name, since=since,
                               until=until, after=after, limit=size)

    pages = Pages(page)
    _print(fmt, pages.records(after, limit),
           [SEQ, TIME, ACTOR, PRINCIPAL, ENTITY, EVENT, REASON, CHANGES])
    pages.tell_more(quiet)


@audit.command("as-of", epilog=REF_HELP)
@click.argument("ref")
@click.option("--at", "moment", required=True, metavar="TIME", callback=_time,
              help="The moment (ISO-8601).")
@output_options
@click.pass_obj
def as_of(context: Context, ref: str, moment: int, as_json: bool, as_csv: bool) -> None:
    """One entity's fields as they were at a moment, an entity deleted later too."""
    fmt = output_format(as_json, as_csv)
    from eventvault import audit as queries

    with context.reading() as reader:
        state = queries.as_of(reader, ref, moment).as_json()
    if fmt == "json":
        click.echo(json.dumps(state, ensure_ascii=False, separators=(",", ":")))
        return
    rows = [{"entity_type": state["entity_type"], "entity_id": state["entity_id"],
             "at": state["at"], "seq": state["seq"], "field": field, **_split(value)}
            for field, value in state["fields"].items()]
    if fmt == "table":
        click.echo(for_terminal(f"{state['entity_type']} {state['entity_id']} "
                                f"{_name(state['name'])} as of {state['at']}"))
        click.echo(for_terminal(f"version {state['version']}, last changed at seq "
                                f"{state['changed_seq']} ({state['changed_at']}) by "
                                f"{state['changed_by']}"))
    _print(fmt, rows, [Column("FIELD", lambda r: r["field"]),
                       Column("VALUE", lambda r: _cell(r["shown"]))], STATE_FIELDS)


# --- pages and printing ------------------------------------------------------------------

class Pages:
    """A paginated query read page after page, so --limit 0 streams the whole log."""

    def __init__(self, fetch: Callable[[int, int], queries.Page]) -> None:
        self.fetch = fetch
        self.more_after: int | None = None
        self.shown = 0

    def records(self, after: int, limit: int) -> Iterator[dict[str, Any]]:
        while True:
            size = PAGE if limit == 0 else min(PAGE, limit - self.shown)
            page = self.fetch(after, size)
            for event in page.events:
                yield event.as_json()
            self.shown += len(page.events)
            if page.next_after is None:
                return
            if limit and self.shown >= limit:
                self.more_after = page.next_after
                return
            after = page.next_after

    def tell_more(self, quiet: bool) -> None:
        """A cut answer says so (on stderr, so JSON and CSV stay clean) and how to go on,
        unless --quiet."""
        if self.more_after is not None and not quiet:
            click.echo(f"eventvault: {self.shown} events shown, more follow; continue with "
                       f"--after {self.more_after}, or --limit 0 for all", err=True)


def _print(fmt: Format, records: Iterable[Mapping[str, Any]], columns: list[Column],
           fields: tuple[str, ...] = EVENT_FIELDS) -> None:
    lines = 0
    for line in render(fmt, records, columns, fields):
        lines += 1
        if fmt == "csv":  # RFC 4180 records end with CRLF
            click.echo(line + CSV_LINE_END, nl=False)
        else:
            click.echo(line)
    if fmt == "table" and lines <= 1:  # a header alone would look like a failure
        click.echo("(none)")


def _split(value: Any) -> dict[str, Any]:
    """An as-of field for CSV: its readable value, and the UUID when it is a reference."""
    if isinstance(value, dict):
        return {"value": value.get("name"), "uuid": value.get("uuid"), "shown": value}
    return {"value": value, "uuid": None, "shown": value}


def _name(name: str | None) -> str:
    return json.dumps(name, ensure_ascii=False) if name is not None else "(no name)"


def _cell(value: Any) -> str:
    """A value for people: strings quoted, references as name [uuid prefix]."""
    if isinstance(value, dict):
        return f"{value.get('name') or '?'} [{str(value.get('uuid'))[:8]}]"
    return json.dumps(value, ensure_ascii=False)


def _changes(record: Mapping[str, Any]) -> str:
    if record["event_type"] == "access_denied":
        return f"attempted: {record['command']}"
    if record["event_type"] == "created":
        return "\n".join(f"{field} = {_cell(change['new'])}"
                         for field, change in record["changes"].items())
    return "\n".join(f"{field}: {_cell(change['old'])} -> {_cell(change['new'])}"
                     for field, change in record["changes"].items())


def _entity(record: Mapping[str, Any]) -> str:
    return f"{record['entity_type']} {record['entity_name'] or ''} [{record['entity_id'][:8]}]"


SEQ = Column("SEQ", lambda r: str(r["seq"]))
TIME = Column("TIME", lambda r: r["recorded_at"])
ACTOR = Column("ACTOR", lambda r: r["actor"] or r["actor_id"])
# Who was really authenticated (the actor is only what --as claimed); "-" before 0.2.
PRINCIPAL = Column("AUTHENTICATED", lambda r: principal_text(r["principal"]) or "-")
ENTITY = Column("ENTITY", _entity)
EVENT = Column("EVENT", lambda r: r["event_type"])
REASON = Column("REASON", lambda r: r["reason"] or "")
CHANGES = Column("CHANGES", _changes)
