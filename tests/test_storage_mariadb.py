"""The storage contract on MariaDB."""

from storage_contract import StorageContract


class TestMariaDBStorage(StorageContract):
    engine = "mariadb"
