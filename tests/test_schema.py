"""The schema comes from the alembic migrations only, matches the code's tables, and undoes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from eventvault import schema, storage
from eventvault.tables import metadata
from eventvault.vault import Vault

ROOT = Path(__file__).resolve().parents[1]


def test_migrated_schema_matches_the_metadata(db_url: str) -> None:
    Vault(db_url).init()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        # The guard's own tables (MariaDB's TRUNCATE guard) are the storage's, not the schema's.
        internal = storage.for_connection(connection).internal_tables()
        context = MigrationContext.configure(connection, opts={
            "include_name": lambda name, kind, _: not (kind == "table" and name in internal)})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_drops_everything(db_url: str) -> None:
    vault = Vault(db_url)
    vault.init()
    with vault.connect(write=True) as connection:
        schema.drop_all(connection)
    with vault.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert tables <= {"alembic_version"}


def test_alembic_upgrade_head_from_the_repository_root(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alembic.db'}"
    environment = {**os.environ, "EVENTVAULT_DB": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT, env=environment, check=True, capture_output=True,
    )
    engine = create_engine(url)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert revision == schema.head_revision()


def test_an_outdated_schema_is_refused_with_advice(db_url: str, cli) -> None:
    Vault(db_url).init()
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    result = cli("status", db=db_url)
    assert result.code == 1
    assert "run `eventvault init` to upgrade" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_database_that_is_not_a_vault_is_refused(db_url: str, cli) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    engine.dispose()
    result = cli("status", db=db_url)
    assert result.code == 1
    assert "is not an EventVault vault" in result.err
