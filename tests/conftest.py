"""Test fixtures: real vaults on a SQLite file, the PostgreSQL and the MariaDB server, and a
CLI runner.

Every storage test runs on the three engines through the `db_url` fixture. The servers
outlive the test run, so each test gets its own uniquely named database, dropped afterwards.
Without a reachable server those tests are skipped with the reason, except where
EVENTVAULT_REQUIRE_POSTGRES=1 / EVENTVAULT_REQUIRE_MARIADB=1 (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from eventvault.cli import main

PG_SERVER = os.environ.get(
    "EVENTVAULT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_REQUIRED = os.environ.get("EVENTVAULT_REQUIRE_POSTGRES") == "1"
_pg_problem: list[str | None] = []


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once)."""
    if not _pg_problem:
        try:
            engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            _pg_problem.append(None)
        except Exception as error:  # any failure means: not usable here
            first = str(error).strip().splitlines()[0]
            _pg_problem.append(f"PostgreSQL at {PG_SERVER} is not reachable: {first}")
    return _pg_problem[0]


MARIADB_SERVER = os.environ.get(
    "EVENTVAULT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/"
)
MARIADB_REQUIRED = os.environ.get("EVENTVAULT_REQUIRE_MARIADB") == "1"
_mariadb_problem: list[str | None] = []


def mariadb_problem() -> str | None:
    """Why MariaDB cannot be used, or None when it can (checked once)."""
    if not _mariadb_problem:
        try:
            engine = create_engine(MARIADB_SERVER, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            _mariadb_problem.append(None)
        except Exception as error:  # any failure means: not usable here
            first = str(error).strip().splitlines()[0]
            _mariadb_problem.append(f"MariaDB at {MARIADB_SERVER} is not reachable: {first}")
    return _mariadb_problem[0]


REPOSITORY = Path(__file__).resolve().parents[1]
_NOT_OURS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
             ".mypy_cache"}


def repository_files() -> set[Path]:
    """Every file in the repository, caches and the virtual environment aside."""
    found = set()
    for directory, subdirectories, files in os.walk(REPOSITORY):
        subdirectories[:] = [name for name in subdirectories
                             if name not in _NOT_OURS and not name.endswith(".egg-info")]
        found.update(Path(directory, name) for name in files)
    return found


@pytest.fixture(scope="session", autouse=True)
def tests_leave_no_files_in_the_repository() -> Iterator[None]:
    """A test that writes into the repository (a safety snapshot in the cwd, say) fails the
    run: tests write into tmp_path."""
    before = repository_files()
    yield
    created = sorted(str(path.relative_to(REPOSITORY)) for path in repository_files() - before)
    if created:
        pytest.fail(f"the tests left {len(created)} file(s) in the repository: "
                    f"{', '.join(created[:10])}")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    problem = postgres_problem()
    if problem:
        if PG_REQUIRED:
            pytest.fail(f"{problem} (EVENTVAULT_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    name = f"evtest_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def mariadb_database() -> Iterator[str]:
    problem = mariadb_problem()
    if problem:
        if MARIADB_REQUIRED:
            pytest.fail(f"{problem} (EVENTVAULT_REQUIRE_MARIADB=1)")
        pytest.skip(problem)
    name = f"evtest_{uuid.uuid4().hex[:16]}"
    admin = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        yield make_url(MARIADB_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # Sessions a test left open would hold metadata locks the DROP waits for.
            for (session,) in connection.execute(text(
                    "SELECT id FROM information_schema.processlist WHERE db = :d"),
                    {"d": name}).all():
                with contextlib.suppress(Exception):
                    connection.execute(text(f"KILL {int(session)}"))
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


ENGINES = ("sqlite", "postgresql", "mariadb")


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory: make_db(ENGINE) (one of ENGINES) gives the URL of a new, empty database."""
    with contextlib.ExitStack() as stack:
        def make(engine: str) -> str:
            if engine == "sqlite":
                return f"sqlite:///{tmp_path / f'vault-{uuid.uuid4().hex[:8]}.db'}"
            if engine == "mariadb":
                return stack.enter_context(mariadb_database())
            return stack.enter_context(postgres_database())

        yield make


# The engines the whole suite runs on (MariaDB joins once the suite passes on it; until then
# it runs the storage contract, tests/test_storage_mariadb.py).
SUITE_ENGINES = ENGINES


@pytest.fixture(params=SUITE_ENGINES)
def db_url(request: pytest.FixtureRequest, make_db: Callable[[str], str]) -> str:
    """An empty database on each engine in turn."""
    return make_db(request.param)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(*args: str, db: str | None = None) -> Result:
    """Run the eventvault CLI in-process, exactly as the console script does."""
    argv = (["--db", db] if db else []) + list(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@pytest.fixture
def demo_db(db_url: str) -> str:
    """A vault on each engine holding the story's demo data."""
    assert run_cli("init", db=db_url).code == 0
    assert run_cli("demo", db=db_url).code == 0
    return db_url


def ok(*args: str, db: str | None = None) -> Result:
    """Run the CLI and insist it succeeded."""
    result = run_cli(*args, db=db)
    assert result.code == 0, result.err
    return result


@pytest.fixture(name="vault")
def sqlite_demo_vault(tmp_path: Path) -> str:
    """A SQLite vault file holding the story's demo data (for tests where the engine does not
    matter)."""
    db = f"sqlite:///{tmp_path / 'vault.db'}"
    ok("init", db=db)
    ok("demo", db=db)
    return db
