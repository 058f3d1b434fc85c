"""The storage contract on PostgreSQL."""

from storage_contract import StorageContract


class TestPostgreSQLStorage(StorageContract):
    engine = "postgresql"
