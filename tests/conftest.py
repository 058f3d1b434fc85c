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
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from eventvault.cli import main


class Server:
    """A database server the tests make throwaway databases on; its reachability is checked once.

    Without it, a test that needs it is skipped with the reason, or fails where `required`.
    """

    def __init__(self, label: str, url: str, required_by: str, quote: str) -> None:
        self.label, self.url, self.required_by, self.quote = label, url, required_by, quote
        self.required = os.environ.get(required_by) == "1"
        self._problem: list[str | None] = []

    def problem(self) -> str | None:
        """Why the server cannot be used, or None when it can."""
        if not self._problem:
            try:
                engine = create_engine(self.url, connect_args={"connect_timeout": 3})
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                engine.dispose()
                self._problem.append(None)
            except Exception as error:  # any failure means: not usable here
                first = str(error).strip().splitlines()[0]
                self._problem.append(f"{self.label} at {self.url} is not reachable: {first}")
        return self._problem[0]

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """The URL of a new, uniquely named database, dropped afterwards."""
        problem = self.problem()
        if problem:
            if self.required:
                pytest.fail(f"{problem} ({self.required_by}=1)")
            pytest.skip(problem)
        name = self.quote + f"evtest_{uuid.uuid4().hex[:16]}" + self.quote
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        try:
            bare = name.strip(self.quote)
            yield make_url(self.url).set(database=bare).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                self._drop(connection, bare, name)
            admin.dispose()

    def _drop(self, connection: Connection, bare: str, quoted: str) -> None:
        if self.label == "PostgreSQL":
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            return
        # Sessions a test left open would hold metadata locks MariaDB's DROP waits for.
        for (session,) in connection.execute(text(
                "SELECT id FROM information_schema.processlist WHERE db = :d"), {"d": bare}).all():
            with contextlib.suppress(Exception):
                connection.execute(text(f"KILL {int(session)}"))
        connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))


POSTGRES = Server("PostgreSQL", os.environ.get(
    "EVENTVAULT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "EVENTVAULT_REQUIRE_POSTGRES", '"')
MARIADB = Server("MariaDB", os.environ.get(
    "EVENTVAULT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/"),
    "EVENTVAULT_REQUIRE_MARIADB", "`")
# The names the test modules import.
PG_SERVER, MARIADB_SERVER = POSTGRES.url, MARIADB.url
postgres_problem, mariadb_problem = POSTGRES.problem, MARIADB.problem
postgres_database, mariadb_database = POSTGRES.database, MARIADB.database


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
