"""Audit query latency: history of an entity, an actor's first page, an entity as of a time.

Random picks (seeded) from the source vault: documents and workflows for the history, users
who did something for the actor page, documents at a random moment of their life for as-of.
Each query is timed three ways, median over the picks:
- `vault`: the library call given the Vault, as the CLI and API callers make it (it opens a
  read transaction and checks the schema revision each time);
- `connection`: the same call on an already open read transaction (the query work alone);
- `raw`: plain sqlite3 reading the same events by the same index (the floor for that query).
One untimed call of each kind first, so imports and statement caches are warm.
"""

from __future__ import annotations

import contextlib
import io
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

from eventvault import audit
from eventvault.cli import main as cli_main
from eventvault.events import us_to_iso
from eventvault.vault import Vault

Result = dict[str, Any]
Query = Callable[[Any], object]  # called with a Vault or a Connection

FIRST_PAGE = 100  # the audit's default page size


def measure(url: str, path: str, picks: int = 50, seed: int = 6) -> Result:
    """`url` of the vault, `path` of its SQLite file (for the plain sqlite3 reads)."""
    rng = random.Random(seed)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as raw:
        cases = _cases(raw, rng, picks)
        vault = Vault(url)
        try:
            figures = {name: _time(vault, queries) for name, queries in cases.items()}
        finally:
            vault.close()
    raw.close()
    return {"picks": picks, "api": "library" if _has_library() else "cli", **figures}


def _cases(raw: sqlite3.Connection, rng: random.Random,
           picks: int) -> dict[str, list[tuple[Query, Callable[[], object]]]]:
    """Per query kind: (library call, equivalent plain sqlite3 read) for each pick."""
    subjects = [row[0] for row in raw.execute(
        "SELECT uuid FROM documents UNION ALL SELECT uuid FROM workflows")]
    actors = [row[0] for row in raw.execute(
        "SELECT username, uuid FROM users WHERE uuid IN (SELECT DISTINCT actor_id FROM events)")]
    actor_ids = dict(raw.execute("SELECT username, uuid FROM users").fetchall())
    documents = [row[0] for row in raw.execute("SELECT uuid FROM documents")]
    head_time = raw.execute("SELECT max(recorded_at) FROM events").fetchone()[0]
    history, actor, as_of = [], [], []
    for entity_id in rng.choices(subjects, k=picks):
        history.append((_history(entity_id), _raw(
            raw, "SELECT * FROM events WHERE entity_id = ? ORDER BY seq", (entity_id,))))
    for username in rng.choices(actors, k=picks):
        actor.append((_actor(username), _raw(
            raw, "SELECT * FROM events WHERE actor_id = ? ORDER BY seq LIMIT ?",
            (actor_ids[username], FIRST_PAGE + 1))))
    for entity_id in rng.choices(documents, k=picks):
        created = raw.execute("SELECT min(recorded_at) FROM events WHERE entity_id = ?",
                              (entity_id,)).fetchone()[0]
        moment = created + int(rng.random() * (head_time - created))
        as_of.append((_as_of(entity_id, moment), _raw(
            raw, "SELECT * FROM events WHERE entity_id = ? AND recorded_at <= ? ORDER BY seq",
            (entity_id, moment))))
    return {"history": history, "actor": actor, "as_of": as_of}


def _time(vault: Vault, queries: list[tuple[Query, Callable[[], object]]]) -> Result:
    first, first_raw = queries[0]
    first(vault)
    first_raw()
    through_vault, on_connection, plain = [], [], []
    for query, raw_query in queries:
        through_vault.append(_seconds(lambda q=query: q(vault)))
        with vault.read() as reader:
            on_connection.append(_seconds(lambda q=query, r=reader: q(r)))
        plain.append(_seconds(raw_query))
    return {
        "vault_ms": _summary(through_vault),
        "connection_ms": _summary(on_connection),
        "raw_ms": _summary(plain),
    }


def _seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _summary(seconds: list[float]) -> Result:
    ordered = sorted(seconds)
    return {"median": statistics.median(ordered) * 1000,
            "p90": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
            "max": ordered[-1] * 1000}


def _raw(connection: sqlite3.Connection, sql: str,
         parameters: tuple[object, ...]) -> Callable[[], object]:
    return lambda: connection.execute(sql, parameters).fetchall()


# --- the three queries: the library's functions, or the CLI where they are missing ---------

def _has_library() -> bool:
    return all(hasattr(audit, name) for name in ("history", "actor_events", "as_of"))


def _history(entity_id: str) -> Query:
    if _has_library():
        return lambda source: audit.history(source, entity_id)
    return _cli(["audit", "history", entity_id, "--json"])


def _actor(username: str) -> Query:
    if _has_library():
        return lambda source: audit.actor_events(source, username, limit=FIRST_PAGE)
    return _cli(["audit", "actor", username, "--limit", str(FIRST_PAGE), "--json"])


def _as_of(entity_id: str, moment: int) -> Query:
    if _has_library():
        return lambda source: audit.as_of(source, entity_id, moment)
    return _cli(["audit", "as-of", entity_id, "--at", us_to_iso(moment), "--json"])


def _cli(words: list[str]) -> Query:
    def run(source: Any) -> object:
        url = source.url.render_as_string(hide_password=False) if isinstance(
            source, Vault) else str(source.engine.url)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            if cli_main(["--db", url, *words]) != 0:
                raise RuntimeError(f"eventvault {' '.join(words)} failed")
        return out.getvalue()
    return run
