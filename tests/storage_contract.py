"""The storage contract: what every engine behind eventvault.storage must do.

Abstract cases, subclassed once per engine (tests/test_storage_<engine>.py sets `engine`),
after the eventsourcing library's recorder test cases and restic's backend suite: a new
engine passes these before anything else runs on it (docs/STORAGE.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc

import eventvault
from eventvault import log_read, schema, storage, store
from eventvault.events import Event
from eventvault.vault import Vault

WRITERS = 4
WRITES_EACH = 8


class StorageContract:
    engine: str  # the make_db name of the engine under test
    # Whether TRUNCATE of events can be refused on this engine (all three: see each module).
    refuses_truncate = True

    @pytest.fixture
    def url(self, make_db: Callable[[str], str]) -> str:
        return make_db(self.engine)

    @pytest.fixture
    def vault(self, url: str) -> Vault:
        with Vault(url) as vault:
            vault.init()
            yield vault

    def _log(self, vault: Vault) -> list[tuple[Event, bytes]]:
        with vault.reading() as connection:
            return [(event, event.record()) for event in store.read_events(connection)]

    # --- the storage is the engine's ------------------------------------------------------

    def test_the_url_finds_this_engines_storage(self, vault: Vault) -> None:
        with vault.reading() as connection:
            assert storage.for_connection(connection) is storage.for_url(vault.url)
            assert storage.for_url(vault.url).name.lower().startswith(self.engine[:5])

    # --- append-only ----------------------------------------------------------------------

    @pytest.mark.parametrize("statement", [
        "UPDATE events SET reason = 'forged' WHERE seq = 3",
        "DELETE FROM events WHERE seq = 3",
        "DELETE FROM events",
    ])
    def test_the_guard_refuses_changing_the_log(self, vault: Vault, url: str,
                                                statement: str) -> None:
        before = self._log(vault)
        engine = create_engine(url)
        with pytest.raises(sa_exc.DatabaseError, match="append-only"), \
                engine.begin() as connection:
            connection.execute(text(statement))
        engine.dispose()
        assert self._log(vault) == before

    def test_the_guard_refuses_truncate(self, vault: Vault, url: str) -> None:
        if not self.refuses_truncate:
            pytest.skip("this engine has no TRUNCATE to refuse")
        before = self._log(vault)
        engine = create_engine(url)
        with pytest.raises(sa_exc.DatabaseError), engine.begin() as connection:
            connection.execute(text("TRUNCATE TABLE events"))
        engine.dispose()
        assert self._log(vault) == before

    # --- appends serialise ----------------------------------------------------------------

    def test_concurrent_appends_are_gapless_and_commit_in_seq_order(self, vault: Vault,
                                                                     url: str) -> None:
        """While writers append concurrently, every look at the log sees seq 1..n, never a
        later seq without an earlier one: seq order is commit order."""
        done = threading.Event()
        failures: list[BaseException] = []
        looks: list[tuple[int, int]] = []

        def write(number: int) -> None:
            try:
                with Vault(url) as own:
                    for at in range(WRITES_EACH):
                        own.write_retrying(
                            lambda commands, at=at: commands.add_user(
                                f"w{number}x{at}", role="viewer",
                                email=f"w{number}x{at}@example.com"),
                            actor="admin")
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        def look() -> None:
            with Vault(url) as own:
                while not done.is_set():
                    with own.connect(consistent=True) as connection:
                        looks.append(tuple(connection.execute(text(
                            "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events")).one()))

        writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        looker = threading.Thread(target=look)
        looker.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        looker.join()
        assert not failures, failures
        assert looks and all(count == top for count, top in looks)
        events = [event for event, _ in self._log(vault)]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert sum(e.entity_type == "user" and e.event_type == "created"
                   for e in events) >= WRITERS * WRITES_EACH
        assert eventvault.verify(vault).ok

    def test_the_append_lock_is_held_to_the_commit(self, vault: Vault, url: str) -> None:
        """A second appender waits for the first one's commit, then continues its chain."""
        holding, release = threading.Event(), threading.Event()
        second_seq: list[int] = []

        def first() -> None:
            with vault.write("admin") as commands:
                commands.add_user("first", role="viewer", email="first@example.com")
                holding.set()
                release.wait(60)

        def second() -> None:
            with Vault(url) as own, own.write("admin") as commands:
                commands.add_user("second", role="viewer", email="second@example.com")
            with own.reading() as connection:
                second_seq.append(log_read.read_head(connection).seq)

        one = threading.Thread(target=first)
        one.start()
        assert holding.wait(60)
        two = threading.Thread(target=second)
        two.start()
        two.join(0.5)  # not a timing assertion: it must still be waiting, however long
        assert two.is_alive() and not second_seq
        release.set()
        one.join()
        two.join()
        assert second_seq
        head = self._log(vault)
        assert [e.seq for e, _ in head] == list(range(1, len(head) + 1))
        assert eventvault.verify(vault).ok

    # --- reading --------------------------------------------------------------------------

    def test_read_ranges(self, vault: Vault) -> None:
        every = [event for event, _ in self._log(vault)]
        with vault.reading() as connection:
            middle = list(store.read_events(connection, after_seq=10, until_seq=20))
            assert middle == every[10:20]
            assert list(store.read_events(connection, after_seq=len(every))) == []
            moment = every[30].recorded_at
            assert log_read.first_seq_from(connection, moment) <= every[30].seq
            assert log_read.last_seq_until(connection, moment) >= every[30].seq
            assert log_read.last_seq_until(connection, 0) == 0
            assert log_read.read_head(connection).seq == len(every)

    def test_a_reader_finds_tables_and_quotes_names(self, vault: Vault) -> None:
        """What the plain-SQL reads (reader.py) ask of an engine: whether a table exists,
        a reserved word as a column name (vault_meta's `key`), `?` as the marker."""
        with vault.read() as reader:
            assert reader.has_table("events") and reader.has_table("log_state")
            assert not reader.has_table("no_such_table")
            assert reader.scalar(f"SELECT count(*) FROM vault_meta WHERE {reader.quote('key')}"
                                 " IN (?, ?)", ("vault_id", "created_at")) == 2
            assert log_read.vault_id(reader) == vault.status().vault_id

    def test_stream_rows_in_batches_with_parameters(self, vault: Vault,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(storage, "READ_BATCH", 7)
        with vault.reading() as connection:
            rows = list(store.stream_rows(
                connection, "SELECT seq, entity_type FROM events WHERE seq > ? ORDER BY seq",
                (5,)))
            expected = [(e.seq, e.entity_type) for e in store.read_events(connection, 5)]
        assert [tuple(row) for row in rows] == expected and len(rows) > 7

    def test_a_stream_left_half_read_leaves_the_connection_usable(
            self, vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
        # MariaDB streams through an unbuffered cursor: until it is read or closed the
        # connection can run no other query, and closing it must read the rest away.
        monkeypatch.setattr(storage, "READ_BATCH", 5)
        with vault.reading() as connection:
            head = log_read.read_head(connection).seq
            rows = store.stream_rows(connection, "SELECT seq FROM events ORDER BY seq")
            assert [next(rows)[0] for _ in range(12)] == list(range(1, 13))
            rows.close()
            assert log_read.read_head(connection).seq == head
            again = [row[0] for row in store.stream_rows(connection, "SELECT seq FROM events")]
            assert sorted(again) == list(range(1, head + 1))

    # --- bulk loads -----------------------------------------------------------------------

    def test_bulk_load_of_events_reads_back_identical(self, vault: Vault,
                                                      make_db: Callable[[str], str]) -> None:
        log = self._log(vault)
        with Vault(make_db(self.engine)) as target:
            with target.connect(write=True, create=True, bulk=True) as connection:
                schema.upgrade(connection)
                store.insert_events(connection, log[:20], bulk=True)
                store.insert_events(connection, log[20:], bulk=True)
            assert self._log(target) == log

    def test_a_replay_bulk_loads_rows_and_new_rows_get_new_ids(
            self, vault: Vault, make_db: Callable[[str], str], tmp_path) -> None:
        package = tmp_path / "p.evpkg"
        eventvault.snapshot(vault, package)
        with Vault(make_db(self.engine)) as target:
            eventvault.replay(target, [package])
            with target.write("admin") as commands:  # its ID must not collide with a loaded one
                commands.add_user("after", role="viewer", email="after@example.com")
            assert eventvault.verify(target).ok
            assert list(target.export())[:-1] != []
