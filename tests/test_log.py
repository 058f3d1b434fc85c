"""The event log: append-only in the database, gapless, hash-chained, optimistic concurrency."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc

from eventvault import codec, log_read, store
from eventvault.errors import ConcurrencyError
from eventvault.events import GENESIS_HASH, chain_hash, encode_record, pack_payload
from eventvault.vault import Vault


@pytest.fixture
def vault(demo_db: str) -> Vault:
    return Vault(demo_db)


@pytest.mark.parametrize("statement", [
    "UPDATE events SET reason = 'forged' WHERE seq = 3",
    "DELETE FROM events WHERE seq = 3",
    "DELETE FROM events",
])
def test_raw_sql_cannot_change_the_log(vault: Vault, demo_db: str, statement: str) -> None:
    before = vault.status()
    engine = create_engine(demo_db)
    with pytest.raises(sa_exc.DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()
    assert vault.status() == before


def test_postgres_refuses_truncate(make_db) -> None:
    url = make_db("postgresql")
    Vault(url).init()
    engine = create_engine(url)
    with pytest.raises(sa_exc.DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text("TRUNCATE events"))
    engine.dispose()


def test_seq_is_gapless_time_never_decreases_and_the_chain_holds(vault: Vault) -> None:
    with vault.reading() as connection:
        events = list(store.read_events(connection))
        head = log_read.read_head(connection)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(events))
    previous = GENESIS_HASH
    for event in events:
        previous = chain_hash(previous, event.record())
        assert previous == event.hash
    assert head.hash == previous and head.seq == len(events)


def test_a_stale_version_is_a_concurrency_error(vault: Vault) -> None:
    with vault.reading() as connection:
        document = next(e for e in store.read_events(connection) if e.entity_type == "document")
    with vault.write("admin") as commands:
        row = commands.find(document.entity_id, "document")
        version = row["version"]
        commands.update_document(document.entity_id, {"title": "first writer"}, version)
    before = vault.status()
    with pytest.raises(ConcurrencyError, match="reload and try again"), \
            vault.write("admin") as commands:
        commands.update_document(document.entity_id, {"title": "second writer"}, version)
    assert vault.status() == before


def test_the_database_refuses_a_duplicate_entity_version(vault: Vault) -> None:
    # Even a writer that skipped the domain's check cannot fork an entity's history.
    with vault.reading() as connection:
        document = next(e for e in store.read_events(connection) if e.entity_type == "document")
    before = vault.status()
    # The store's appender, below the commands (which keep theirs private).
    with pytest.raises(ConcurrencyError), vault.connect(write=True) as connection:
        appender = store.Appender(connection)
        appender.append(store.NewEvent(
            "document", document.entity_id, 1, "updated", document.actor_id, {"title": "x"}))
        appender.flush()
    assert vault.status() == before


def test_long_records_are_compressed_short_ones_kept() -> None:
    def record(title: str) -> bytes:
        return encode_record(1, "document", "d", 1, "created", 1, "a", None, 0,
                             pack_payload({"title": title}))

    short, long = record("Quality manual"), record("Quality manual " * 100)
    assert codec.to_stored(short) == short
    stored = codec.to_stored(long)
    assert stored.startswith(codec.ZSTD_MAGIC) and len(stored) < len(long) / 5
    assert codec.from_stored(stored) == long


def test_a_long_payload_round_trips_through_the_database(vault: Vault) -> None:
    title = "A very long title " * 80
    with vault.write("admin") as commands:
        document = commands.add_document(title, "author01")
    with vault.reading() as connection:
        (created,) = log_read.entity_events(connection, document)
    assert created.fields["title"] == title
