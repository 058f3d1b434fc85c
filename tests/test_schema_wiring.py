"""The schema is the log's own: packages and vaults carry it, readers use it, it evolves.

A log without a schema event means the built-in dms schema version 1 (frozen bytes, not the
code's current dms.toml); `schema apply` records a new version in the log, and every package
written before it still verifies and replays to the same state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from conftest import Result
from sqlalchemy.engine import make_url
from test_roles import writer_role  # noqa: F401  (the fixture: a database and its writer role)

from eventvault.catalog import LEGACY_HASH
from eventvault.package import PackageReader
from eventvault.schemadoc import canonical, default_schema, load, schema_hash

Cli = Callable[..., Result]
DMS = resources.files("eventvault.schemadoc").joinpath("dms.toml").read_text(encoding="utf-8")

# Version 2 of the story's schema: one new type, one new optional field with a default.
DMS_V2 = DMS.replace("version = 1", "version = 2", 1).replace(
    '  { name = "title", kind = "str" },\n',
    '  { name = "title", kind = "str" },\n'
    '  { name = "summary", kind = "str", required = false, default = "none yet" },\n', 1,
) + '''
[[types]]
name = "tag"
table = "tags"
natural_key = ["label"]
fields = [{ name = "label", kind = "str" }, { name = "weight", kind = "int", default = 1 }]
'''


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def status(cli: Cli, db: str) -> dict[str, object]:
    return json.loads(ok(cli("status", "--json", db=db)).out)


def test_the_built_in_schema_of_old_logs_is_frozen() -> None:
    data = resources.files("eventvault").joinpath("dms_v1.schema").read_bytes()
    assert hashlib.sha256(data).hexdigest() == LEGACY_HASH
    # Today's dms.toml is still version 1; when it moves on, old logs keep dms_v1.schema.
    assert schema_hash(default_schema()) == LEGACY_HASH


def test_schema_show_prints_the_vaults_schema(cli: Cli, db_url: str) -> None:
    ok(cli("init", db=db_url))
    shown = ok(cli("schema", "show", db=db_url)).out
    assert LEGACY_HASH in shown and 'name = "dms"' in shown
    as_json = json.loads(ok(cli("schema", "show", "--json", db=db_url)).out)
    assert as_json["version"] == 1 and as_json["types"][0]["name"] == "user"


def test_adding_a_type_leaves_every_earlier_package_verifying_and_replaying(
    cli: Cli, db_url: str, make_db: Callable[[str], str], tmp_path: Path,
) -> None:
    ok(cli("init", db=db_url))
    ok(cli("demo", db=db_url))
    before = str(tmp_path / "before.evpkg")
    ok(cli("snapshot", "-o", before, db=db_url))
    assert PackageReader(before).footer.schema is None  # dms v1: the 0.1 footer, unchanged
    export_before = ok(cli("export", db=db_url)).out
    v2 = tmp_path / "dms-v2.toml"
    v2.write_text(DMS_V2)

    applied = ok(cli("schema", "apply", str(v2), "--as", "admin", db=db_url))
    assert "version 1 -> 2" in applied.out
    after_status = status(cli, db_url)
    assert after_status["counts"]["tag"] == 0  # type: ignore[index]
    assert json.loads(ok(cli("schema", "show", "--json", db=db_url)).out)["version"] == 2
    # Existing documents got the default the field was added with.
    assert '"summary":"none yet"' in ok(cli("export", db=db_url)).out
    ok(cli("document", "add", "Written under v2", "--author", "admin", db=db_url))
    ok(cli("verify", db=db_url))

    # The package written before the change: still verifies, still replays to its state.
    ok(cli("verify", before))
    old_target = make_db("sqlite")
    ok(cli("replay", before, db=old_target))
    assert [line for line in ok(cli("export", db=old_target)).out.splitlines()
            if '"restore_job"' not in line] == [
        line for line in export_before.splitlines() if '"restore_job"' not in line]
    assert "tag" not in status(cli, old_target)["counts"]  # type: ignore[operator]

    # A package with the change in it, and an increment over the old one.
    after = str(tmp_path / "after.evpkg")
    ok(cli("snapshot", "-o", after, db=db_url))
    increment = str(tmp_path / "increment.evpkg")
    ok(cli("snapshot", "-o", increment, "--since", before, db=db_url))
    ok(cli("verify", after))
    ok(cli("verify", before, increment))
    engine = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    for packages in ([after], [before, increment]):
        target = make_db(engine)
        ok(cli("replay", *packages, db=target))
        assert status(cli, target)["state_digest"] != ""
        ok(cli("verify", db=target))
        shown = json.loads(ok(cli("schema", "show", "--json", db=target)).out)
        assert shown["version"] == 2 and "tag" in [t["name"] for t in shown["types"]]


def test_a_change_that_would_invalidate_data_is_refused(cli: Cli, db_url: str,
                                                        tmp_path: Path) -> None:
    ok(cli("init", db=db_url))
    head = status(cli, db_url)["head_hash"]
    bad = tmp_path / "bad.toml"
    bad.write_text(DMS.replace("version = 1", "version = 2", 1).replace(
        '  { name = "title", kind = "str" },\n',
        '  { name = "title", kind = "str" },\n  { name = "pages", kind = "int" },\n', 1))
    refused = cli("schema", "apply", str(bad), "--as", "admin", db=db_url)
    assert refused.code == 2 and "pages" in refused.err and "Traceback" not in refused.err
    assert status(cli, db_url)["head_hash"] == head  # nothing recorded
    removed = tmp_path / "removed.toml"
    text = DMS.replace("version = 1", "version = 2", 1)
    removed.write_text(text[:text.index("[[types]]\nname = \"placeholder\"")]
                       + text[text.index("[[types]]\nname = \"backup_config\""):])
    refused = cli("schema", "apply", str(removed), "--as", "admin", db=db_url)
    assert refused.code == 2 and "placeholder" in refused.err and "live" in refused.err
    assert status(cli, db_url)["head_hash"] == head


@pytest.mark.parametrize("who", ["viewer1"])
def test_only_an_admin_applies_a_schema(cli: Cli, db_url: str, tmp_path: Path,
                                        who: str) -> None:
    ok(cli("init", db=db_url))
    ok(cli("user", "add", who, "--role", "viewer", "--as", "admin", db=db_url))
    v2 = tmp_path / "dms-v2.toml"
    v2.write_text(DMS_V2)
    refused = cli("schema", "apply", str(v2), "--as", who, db=db_url)
    assert refused.code != 0 and "may not" in refused.err


LIBRARY_V1 = '''
name = "library"
version = 1

[[types]]
name = "author"
table = "authors"
natural_key = ["name"]
fields = [{ name = "name", kind = "str" }, { name = "born", kind = "date", required = false }]
writers = ["admin", "author"]

[[types]]
name = "book"
table = "books"
fields = [{ name = "title", kind = "str" }, { name = "code", kind = "str", required = false }]
references = [{ name = "author", target = "author" }]

[[types]]
name = "loan"
table = "loans"
fields = [{ name = "due", kind = "date" }, { name = "returned", kind = "bool", default = false }]
references = [{ name = "book", target = "book" }, { name = "borrower", target = "user" }]
'''
# Version 2: a new optional field with a default, and a rename (code -> isbn).
LIBRARY_V2 = LIBRARY_V1.replace("version = 1", "version = 2").replace(
    '{ name = "code", kind = "str", required = false }',
    '{ name = "isbn", kind = "str", required = false, renamed_from = "code" }, '
    '{ name = "price", kind = "decimal", default = "0.00" }')


def test_a_declared_schema_through_init_snapshot_replay_and_apply(
    cli: Cli, db_url: str, make_db: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # replay --replace leaves its safety package in the cwd
    engine = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    v1, v2 = tmp_path / "library.toml", tmp_path / "library-v2.toml"
    v1.write_text(LIBRARY_V1)
    v2.write_text(LIBRARY_V2)
    ok(cli("init", "--schema", str(v1), db=db_url))
    ok(cli("init", db=db_url))  # idempotent: the vault keeps its schema
    counts = status(cli, db_url)["counts"]
    assert counts == {"user": 2, "author": 0, "book": 0, "loan": 0}
    shown = json.loads(ok(cli("schema", "show", "--json", db=db_url)).out)
    assert shown["name"] == "library" and shown["version"] == 1
    other = tmp_path / "other.toml"
    other.write_text(LIBRARY_V1.replace('"library"', '"other"'))
    refused = cli("init", "--schema", str(other), db=db_url)
    assert refused.code == 2 and "schema apply" in refused.err
    ok(cli("user", "add", "reader", "--role", "viewer", "--as", "admin", db=db_url))
    ok(cli("verify", db=db_url))
    first = str(tmp_path / "first.evpkg")
    ok(cli("snapshot", "-o", first, db=db_url))
    ok(cli("verify", first))
    # The package names its schema in its footer too (docs/FORMAT.md), readable unfolded.
    assert PackageReader(first).footer.schema == canonical(load(v1))
    target = make_db(engine)
    ok(cli("replay", first, db=target))
    assert status(cli, target)["counts"] == {"user": 3, "author": 0, "book": 0, "loan": 0}
    assert json.loads(ok(cli("schema", "show", "--json", db=target)).out)["name"] == "library"
    ok(cli("verify", db=target))
    assert "reader" in ok(cli("audit", "history", "user:reader", db=target)).out

    applied = ok(cli("schema", "apply", str(v2), "--as", "admin", db=db_url))
    assert "version 1 -> 2" in applied.out
    shown = json.loads(ok(cli("schema", "show", "--json", db=db_url)).out)
    assert [f["name"] for f in shown["types"][2]["fields"]] == ["title", "isbn", "price"]
    ok(cli("verify", db=db_url))
    second = str(tmp_path / "second.evpkg")
    ok(cli("snapshot", "-o", second, "--since", first, db=db_url))
    ok(cli("verify", first, second))
    again = make_db(engine)
    ok(cli("replay", first, second, db=again))
    ok(cli("verify", db=again))
    assert json.loads(ok(cli("schema", "show", "--json", db=again)).out)["version"] == 2
    # A replay over a vault of a declared schema replaces it whole.
    ok(cli("replay", first, "--replace", "--as", "admin", db=again))
    assert json.loads(ok(cli("schema", "show", "--json", db=again)).out)["version"] == 1


def test_reinit_keeps_a_declared_schema(cli: Cli, db_url: str, tmp_path: Path) -> None:
    v2 = tmp_path / "library-v2.toml"
    v2.write_text(LIBRARY_V2)
    ok(cli("init", "--schema", str(v2), db=db_url))
    ok(cli("user", "add", "reader", "--as", "admin", db=db_url))
    ok(cli("reinit", "--yes", "--as", "admin", db=db_url))
    assert status(cli, db_url)["counts"] == {"user": 2, "author": 0, "book": 0, "loan": 0}
    assert json.loads(ok(cli("schema", "show", "--json", db=db_url)).out)["version"] == 2
    ok(cli("verify", db=db_url))


def test_entity_commands_for_any_declared_type(
    cli: Cli, db_url: str, make_db: Callable[[str], str], tmp_path: Path,
) -> None:
    v1, v2 = tmp_path / "library.toml", tmp_path / "library-v2.toml"
    v1.write_text(LIBRARY_V1)
    v2.write_text(LIBRARY_V2)
    ok(cli("init", "--schema", str(v1), db=db_url))
    ok(cli("user", "add", "ann", "--role", "author", "--as", "admin", db=db_url))
    ok(cli("user", "add", "vic", "--role", "viewer", "--as", "admin", db=db_url))
    ok(cli("entity", "add", "author", "--set", "name=Le Guin", "--set", "born=1929-10-21",
           "--as", "ann", db=db_url))
    book = ok(cli("entity", "add", "book", "--set", "title=Earthsea",
                  "--set", "author=author:Le Guin", "--set", "code=X1",
                  "--as", "admin", db=db_url)).out.strip()
    loan = ok(cli("entity", "add", "loan", "--set", f"book={book}", "--set", "borrower=vic",
                  "--set", "due=2026-12-24", "--as", "admin", db=db_url)).out.strip()
    shown = json.loads(ok(cli("entity", "show", loan, "--json", db=db_url)).out)
    assert shown["fields"] == {"book": book, "borrower": shown["fields"]["borrower"],
                               "due": "2026-12-24", "returned": False}
    # Who may write a type is the schema's `writers`: a viewer may not; the refusal is kept.
    refused = cli("entity", "add", "author", "--set", "name=X", "--as", "vic", db=db_url)
    assert refused.code != 0 and "writers: admin, author" in refused.err
    # Bad input: one line, nothing half-applied.
    head = status(cli, db_url)["head_hash"]
    for args, message in (
            (("entity", "add", "book", "--set", "title=T"), "needs author"),
            (("entity", "add", "author", "--set", "name=Le Guin"), "exists already"),
            (("entity", "add", "author", "--set", "name=Y", "--set", "born=soon"), "born"),
            (("entity", "add", "shelf"), "unknown entity type"),
            (("entity", "add", "book", "--set", "title=T", "--set", f"author=book:{book}"),
             "must name a author"),
            (("entity", "delete", f"author:{'Le Guin'}"), "still referenced")):
        result = cli(*args, "--as", "admin", db=db_url)
        assert result.code != 0 and message in result.err and "Traceback" not in result.err
    assert status(cli, db_url)["head_hash"] == head
    ok(cli("entity", "update", loan, "--set", "returned=yes", "--as", "admin", db=db_url))
    assert json.loads(ok(cli("entity", "show", loan, "--json", db=db_url)).out)[
        "fields"]["returned"] is True
    assert status(cli, db_url)["counts"] == {"user": 4, "author": 1, "book": 1, "loan": 1}
    listed = ok(cli("list", "book", "--where", "author=Le Guin", db=db_url)).out
    assert "Earthsea" in listed and book in listed
    ok(cli("verify", db=db_url))
    history = ok(cli("audit", "history", book, db=db_url)).out
    assert "created" in history
    # Audit names entities of declared types by their natural key, and filters by type.
    assert "created" in ok(cli("audit", "history", "author:Le Guin", db=db_url)).out
    logged = ok(cli("audit", "log", "--type", "loan", db=db_url)).out
    seqs = [line.split()[0] for line in logged.splitlines()[1:] if line[:1].isdigit()]
    assert len(seqs) == 2 and logged.count("loan 2026-12-24") == 2  # created, updated
    unknown = cli("audit", "log", "--type", "shelf", db=db_url)
    assert unknown.code == 2 and "known types: user, author, book, loan" in unknown.err

    # v2 renames code -> isbn and adds price: the old book is upcast, new ones use the names.
    ok(cli("schema", "apply", str(v2), "--as", "admin", db=db_url))
    shown = json.loads(ok(cli("entity", "show", book, "--json", db=db_url)).out)
    assert shown["fields"]["isbn"] == "X1" and shown["fields"]["price"] == "0.00"
    ok(cli("entity", "update", book, "--set", "price=12.50", "--as", "admin", db=db_url))
    ok(cli("entity", "delete", loan, "--as", "admin", db=db_url))
    ok(cli("verify", db=db_url))
    package = str(tmp_path / "library.evpkg")
    ok(cli("snapshot", "-o", package, db=db_url))
    ok(cli("verify", package))
    target = make_db("postgresql" if db_url.startswith("postgresql") else "sqlite")
    ok(cli("replay", package, db=target))
    ok(cli("verify", db=target))
    assert ok(cli("export", db=target)).out == ok(cli("export", db=db_url)).out
    replayed = json.loads(ok(cli("entity", "show", book, "--json", db=target)).out)
    assert replayed["fields"]["price"] == "12.50" and replayed["fields"]["isbn"] == "X1"


def test_a_writer_role_writes_a_declared_schemas_types(
    writer_role: tuple[str, str], cli: Cli, tmp_path: Path,  # noqa: F811
) -> None:
    owner_url, role = writer_role
    v1 = tmp_path / "library.toml"
    v1.write_text(LIBRARY_V1)
    ok(cli("init", "--schema", str(v1), "--writer-role", role, db=owner_url))
    writer_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
    ok(cli("entity", "add", "author", "--set", "name=Tolkien", "--as", "admin", db=writer_url))
    ok(cli("verify", db=writer_url))


def test_code_that_knows_more_types_gives_an_old_log_the_same_digest(
    cli: Cli, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 0.1.0 packages fold to the digest 0.1.0 wrote, even when the shipped default
    schema has moved on: a log without a schema event means the frozen dms v1."""
    import eventvault.schemadoc as schemadoc
    from eventvault.schemadoc import loads

    fixtures = Path(__file__).parent / "fixtures" / "v0.1.0"
    heads = json.loads((fixtures / "heads.json").read_text())
    newer = loads(DMS_V2, "dms-v2.toml")
    monkeypatch.setattr(schemadoc, "default_schema", lambda: newer)
    checked = ok(cli("verify", str(fixtures / "full.evpkg")))
    assert heads["vault"]["state_digest"] in checked.out
