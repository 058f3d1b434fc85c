"""The storage contract on SQLite."""

from storage_contract import StorageContract


class TestSQLiteStorage(StorageContract):
    engine = "sqlite"
    refuses_truncate = False  # SQLite has no TRUNCATE; DELETE FROM is refused
