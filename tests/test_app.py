"""Protecting an existing application (issue 13): the seed's story with a real Django project,
and a SQLAlchemy-declared application for what Django's story does not cover.

The vault's side of the round trip is simulated by JSON lines (state.to_lines/from_lines)
until `app attach/capture/restore` are wired into the vault's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dms_project import production, reinit, show
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql

from eventvault.app import (
    IdentityMap,
    app_engine,
    apply,
    capture,
    digest,
    natural_uuid,
    reflect,
    restore,
)
from eventvault.app.evolution import reattach
from eventvault.app.state import from_lines, to_lines
from eventvault.errors import (
    IntegrityError,
    SchemaError,
    StoreUnavailableError,
    ValidationError,
)

BENCH = Path(__file__).resolve().parents[1] / "bench" / "app.py"


def through_the_vault(state: dict) -> dict:
    """What the vault would give back: the state as text and read again."""
    return from_lines(list(to_lines(state)))


# --- the seed's story ------------------------------------------------------------------

@pytest.mark.parametrize(("source_engine", "target_engine"), [
    ("sqlite", "sqlite"), ("postgresql", "postgresql"), ("sqlite", "postgresql")])
def test_the_story_restores_everything_after_a_reinit(
        make_db: Callable[[str], str], source_engine: str, target_engine: str) -> None:
    source_url, target_url = make_db(source_engine), make_db(target_engine)
    production(source_url)
    before = show(source_url)
    source = create_engine(source_url)
    _, mapping = reflect(source)
    identity = IdentityMap()
    changes, state = capture(source, mapping, {}, identity)
    assert apply({}, changes) == {t: e for t, e in state.items() if e}
    assert capture(source, mapping, state, identity)[0] == []  # nothing changed: nothing

    reinit(target_url)  # new database, migrate, the application's own init
    target = create_engine(target_url)
    fresh = show(target_url)["counts"]
    assert (fresh["User"], fresh["Document"], fresh["Placeholder"]) == (2, 0, 32)
    report = restore(target, mapping, through_the_vault(state))

    after = show(target_url)  # read through Django's own ORM
    assert after["counts"] == {"User": 10, "WorkflowState": 5, "Document": 5, "Workflow": 4,
                               "Placeholder": 32, "BackupConfig": 14, "BackupJob": 3,
                               "RestoreJob": 2}
    # every author and reviewer the same person, customised values back, datetimes exact
    assert after == before
    customised = [p[1] for p in after["placeholders"] if p[1].startswith("customised")]
    assert customised == ["customised 3", "customised 17", "customised 32"]
    assert report.inserted["auth_user"] == 8 and report.updated["auth_user"] >= 1
    # the keys did change: the restore remapped them
    with source.connect() as s, target.connect() as t:
        query = text("SELECT username, id FROM auth_user")
        keys_before, keys_after = dict(s.execute(query).all()), dict(t.execute(query).all())
    assert (keys_before["admin"], keys_after["admin"]) == (4, 1)
    assert keys_before != keys_after
    if source_engine == target_engine:  # the rebound identity: the next capture is empty
        assert capture(target, mapping, state, report.identity)[0] == []
    # sequences moved past the new keys: the application can add rows
    with target.begin() as connection:
        top = connection.execute(text("SELECT max(id) FROM auth_user")).scalar()
    _django_add_user(target_url)
    with target.connect() as connection:
        assert connection.execute(text("SELECT max(id) FROM auth_user")).scalar() > top


def _django_add_user(url: str) -> None:
    from dms_project import django
    django(url, "shell", "-c", "from django.contrib.auth.models import User; "
                               "User.objects.create_user('newcomer')")


@pytest.fixture
def story(make_db: Callable[[str], str]) -> tuple[str, object, dict]:
    """A production SQLite database, its mapping and captured state."""
    url = make_db("sqlite")
    production(url)
    engine = create_engine(url)
    _, mapping = reflect(engine)
    _, state = capture(engine, mapping, {}, IdentityMap())
    return url, mapping, state


def test_a_change_in_the_application_is_captured_as_only_that_field(story) -> None:
    url, mapping, state = story
    engine = create_engine(url)
    identity = IdentityMap()
    _, state = capture(engine, mapping, {}, identity)
    with engine.begin() as connection:
        connection.execute(text("UPDATE dms_document SET pages = 99 WHERE title = 'Document 2'"))
        connection.execute(text("DELETE FROM dms_workflow WHERE note = 'urgent'"))
    changes, _ = capture(engine, mapping, state, identity)
    assert [(c.action, c.type, c.fields) for c in changes] == [
        ("updated", "dms_document", {"pages": 99}), ("deleted", "dms_workflow", {})]


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_a_refused_restore_leaves_the_target_unchanged(
        make_db: Callable[[str], str], story, engine_name: str) -> None:
    _, mapping, state = story
    target_url = make_db(engine_name)
    reinit(target_url)
    target = create_engine(target_url)
    untouched = show(target_url)

    broken = through_the_vault(state)  # a required column emptied: the insert is refused
    entity = sorted(broken["dms_document"])[0]
    broken["dms_document"][entity]["title"] = None
    with pytest.raises(IntegrityError, match=f"table dms_document row {entity}: "):
        restore(target, mapping, broken)
    assert show(target_url) == untouched

    dangling = through_the_vault(state)
    del dangling["auth_user"][natural_uuid("auth_user", ["reviewer02"])]
    with pytest.raises(IntegrityError, match=r"table dms_document row .*: reference reviewer "
                                             r"points at .* which the backup does not hold"):
        restore(target, mapping, dangling)
    assert show(target_url) == untouched

    _django_add_user(target_url)  # a row the backup does not have
    untouched = show(target_url)
    with pytest.raises(ValidationError, match=r"the target has rows the backup does not: "
                                              r"auth_user \(username='newcomer'\)"):
        restore(target, mapping, state)
    assert show(target_url) == untouched

    report = restore(target, mapping, state, keep_extra=True, dry_run=True)
    assert report.kept_extra["auth_user"] == 1 and report.inserted["dms_document"] == 5
    assert show(target_url) == untouched  # a dry run writes nothing
    restore(target, mapping, state, keep_extra=True)
    assert show(target_url)["counts"]["User"] == 11


def test_a_value_the_target_cannot_hold_exactly_is_refused(make_db, story) -> None:
    """PostgreSQL rounds 12.125 into numeric(10,2); the digest sees it and nothing stays."""
    _, mapping, state = story
    target_url = make_db("postgresql")
    reinit(target_url)
    untouched = show(target_url)
    state = through_the_vault(state)
    entity = sorted(state["dms_document"])[0]
    state["dms_document"][entity]["fee"] = "12.125"
    with pytest.raises(IntegrityError, match=f"table dms_document {entity}: field fee is "
                                             "'12.13', the backup has '12.125'"):
        restore(create_engine(target_url), mapping, state)
    assert show(target_url) == untouched


def test_a_target_that_changes_what_was_written_is_refused(make_db, story) -> None:
    """A trigger of the target rewrites one document's title as it is inserted: the
    read-back differs from the backup in that row only, which the refusal names."""
    _, mapping, state = story
    target_url = make_db("sqlite")
    reinit(target_url)
    untouched = show(target_url)
    state = through_the_vault(state)
    entity = sorted(state["dms_document"])[0]
    title = state["dms_document"][entity]["title"]
    target = create_engine(target_url)
    with target.begin() as connection:
        connection.execute(text(
            "CREATE TRIGGER retitle AFTER INSERT ON dms_document WHEN NEW.title = :title "
            "BEGIN UPDATE dms_document SET title = 'changed' WHERE id = NEW.id; END"
            .replace(":title", "'" + title.replace("'", "''") + "'")))
    with pytest.raises(IntegrityError, match=f"table dms_document {entity}: field title is "
                                             f"'changed', the backup has '{title}'"):
        restore(target, mapping, state)
    assert show(target_url) == untouched


# --- a SQLAlchemy-declared application ----------------------------------------------------

MICROSECONDS = mysql.DATETIME(fsp=6)  # MariaDB's DATETIME alone drops the microseconds


def declare(metadata: MetaData) -> None:
    Table("region", metadata, Column("code", String(8), primary_key=True),
          Column("label", Text, nullable=False))
    Table("category", metadata, Column("id", Integer, primary_key=True),
          Column("name", String(40), nullable=False, unique=True),
          Column("parent_id", ForeignKey("category.id"), nullable=True))  # self-reference
    Table("person", metadata, Column("id", Integer, primary_key=True),
          Column("email", String(80), nullable=False, unique=True),
          Column("home_site_id", ForeignKey("site.id", use_alter=True), nullable=True))
    Table("site", metadata, Column("id", Integer, primary_key=True),
          Column("region_code", ForeignKey("region.code"), nullable=False),
          Column("number", Integer, nullable=False),
          Column("manager_id", ForeignKey("person.id"), nullable=True),  # cycle with person
          UniqueConstraint("region_code", "number"))  # composite natural key with a reference
    Table("badge", metadata, Column("id", Integer, primary_key=True),
          Column("owner_email", ForeignKey("person.email"), nullable=False),  # not the key
          Column("version", Integer, nullable=False))
    Table("sample", metadata, Column("id", BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True),
          Column("i", Integer), Column("big", BigInteger), Column("flag", Boolean),
          Column("ratio", Float), Column("amount", Numeric(14, 4)), Column("day", Date),
          Column("moment", DateTime(timezone=True).with_variant(MICROSECONDS, "mysql", "mariadb")),
          Column("naive", DateTime().with_variant(MICROSECONDS, "mysql", "mariadb")),
          Column("doc", JSON(none_as_null=True)), Column("blob", LargeBinary),
          Column("ident", Uuid),
          Column("note", Text), Column("category_id", ForeignKey("category.id")))


EMPTY = dict.fromkeys(["i", "big", "flag", "ratio", "amount", "day", "moment", "naive", "doc",
                       "blob", "ident", "note", "category_id"])
MOMENT = datetime(2026, 3, 1, 9, 30, 0, 123457, tzinfo=UTC)


def fill(engine) -> None:
    metadata = MetaData()
    declare(metadata)
    metadata.create_all(engine)
    t = metadata.tables
    with engine.begin() as c:
        # history: keys that differ from a fresh database's
        c.execute(insert(t["category"]), [{"id": 1, "name": "gone"}])
        c.execute(delete(t["category"]))
        c.execute(insert(t["region"]), [{"code": "eu", "label": "Europe"},
                                        {"code": "us", "label": "Americas"}])
        c.execute(insert(t["category"]), [{"id": 5, "name": "root"}])
        c.execute(insert(t["category"]), [{"id": 6, "name": "child", "parent_id": 5},
                                          {"id": 7, "name": "self", "parent_id": 7}])
        c.execute(insert(t["person"]), [{"id": 10, "email": "a@x"}, {"id": 11, "email": "b@x"}])
        c.execute(insert(t["site"]), [
            {"id": 20, "region_code": "eu", "number": 1, "manager_id": 10},
            {"id": 21, "region_code": "us", "number": 1, "manager_id": None}])
        c.execute(update(t["person"]).where(t["person"].c.id == 10).values(home_site_id=20))
        c.execute(insert(t["badge"]), [{"id": 3, "owner_email": "b@x", "version": 2}])
        c.execute(insert(t["sample"]), [
            {"id": 100, "i": -(1 << 31), "big": (1 << 62) + 1, "flag": True, "ratio": 0.1,
             "amount": Decimal("-1234567890.1234"), "day": date(1999, 12, 31),
             "moment": MOMENT, "naive": datetime(2001, 2, 3, 4, 5, 6, 7),
             "doc": {"b": [1, 2.5, None], "a": "ü"}, "blob": b"\x00\xff\x10",
             "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"), "note": "line\n✓",
             "category_id": 6},
            EMPTY | {"id": 101},  # every column NULL
            EMPTY | {"id": 102, "doc": JSON.NULL, "note": ""},  # JSON's null, not SQL's NULL
        ])


def _comparable(value: object) -> object:
    """A value as every engine can give it back: MariaDB has no boolean (TINYINT(1)), no
    zone on DATETIME (it holds UTC, as the restore writes it) and JSON as text; a UUID column
    is CHAR(32) on SQLite (its 32 hex digits), native elsewhere."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, str) and (value.startswith(("{", "[")) or value == "null"):
        return json.loads(value)
    return value


def raw(engine) -> dict:
    """Each table's rows without their surrogate keys, references as the referenced row's
    content: what must survive a restore exactly."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as c:
        def rows(name: str) -> list:
            return c.execute(select(metadata.tables[name])).mappings().all()
        names = {r["id"]: r["name"] for r in rows("category")}
        emails = {r["id"]: r["email"] for r in rows("person")}
        sites = {r["id"]: (r["region_code"], r["number"]) for r in rows("site")}
        return {
            "region": sorted((r["code"], r["label"]) for r in rows("region")),
            "category": sorted((r["name"], names.get(r["parent_id"])) for r in rows("category")),
            "person": sorted((r["email"], sites.get(r["home_site_id"])) for r in rows("person")),
            "site": sorted((r["region_code"], r["number"], emails.get(r["manager_id"]))
                           for r in rows("site")),
            "badge": sorted((r["owner_email"], r["version"]) for r in rows("badge")),
            "sample": sorted(
                (([(k, _comparable(v)) for k, v in r.items() if k not in ("id", "category_id")],
                  names.get(r["category_id"])) for r in rows("sample")), key=repr),
            "json_null": c.execute(select(func.count()).where(
                metadata.tables["sample"].c.doc.is_(None))).scalar(),
        }


def test_reflect_decides_table_by_table(make_db) -> None:
    engine = create_engine(make_db("sqlite"))
    fill(engine)
    schema, mapping = reflect(engine)
    assert schema.type("user").table == "users"  # the vault's actors, beside the app's types
    decided = {d["table"]: d for d in mapping.decisions}
    assert decided["site"]["natural_key"] == ["region_code", "number"]
    assert mapping.table("site").natural_key == ("region_code", "number")
    assert mapping.table("site").reference("region_code").target == "region"
    assert decided["region"]["natural_key"] == ["code"]  # a text key is data, and the key
    assert mapping.table("region").surrogate is False
    assert mapping.table("badge").field("version_").column == "version"  # reserved name
    assert mapping.table("badge").reference("owner_email").target_column == "email"
    assert mapping.table("sample").natural_key == ()
    assert {f.name: f.kind for f in mapping.table("sample").fields} == {
        "i": "int", "big": "int", "flag": "bool", "ratio": "float", "amount": "decimal",
        "day": "date", "moment": "datetime", "naive": "datetime", "doc": "json",
        "blob": "bytes", "ident": "str", "note": "str"}  # SQLite keeps a Uuid as CHAR(32)
    assert schema.type("sample").table == "app_sample"
    assert [t.type for t in mapping.tables].index("region") < [
        t.type for t in mapping.tables].index("site")

    with engine.begin() as c:
        c.execute(text("CREATE TABLE log (line TEXT)"))
        c.execute(text('CREATE TABLE "user" (id INTEGER PRIMARY KEY, name TEXT)'))
        c.execute(text("CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY)"))
    with pytest.raises(ValidationError, match=r"^table log has no single-column primary key; "
                                              r"exclude it \(--exclude log\)"):
        reflect(engine)
    schema, mapping = reflect(engine, exclude=["lo*"])
    assert mapping.table("app_user").table == "user"
    decided = {d["table"]: d["decision"] for d in mapping.decisions}
    assert (decided["log"], decided["alembic_version"]) == ("excluded", "skipped")


def test_a_reference_to_an_excluded_table_is_refused(make_db) -> None:
    engine = create_engine(make_db("sqlite"))
    fill(engine)
    with pytest.raises(ValidationError, match="table site column region_code references "
                                              "table region, which is not attached"):
        reflect(engine, exclude=["region"])


@pytest.mark.parametrize(("engine_name", "target_name"), [
    ("sqlite", "sqlite"), ("postgresql", "postgresql"), ("postgresql", "mariadb"),
    ("mariadb", "mariadb"), ("sqlite", "mariadb"), ("mariadb", "sqlite")])
def test_every_column_type_cycles_and_composite_keys_round_trip(make_db, engine_name,
                                                                target_name) -> None:
    source = create_engine(make_db(engine_name))
    fill(source)
    _, mapping = reflect(source)
    identity = IdentityMap()
    changes, state = capture(source, mapping, {}, identity)
    assert apply({}, changes) == {t: e for t, e in state.items() if e}
    created = [c.entity for c in changes if c.action == "created"]
    assert len(created) == len(set(created))  # the cycle: created empty, pointed after
    stored = next(v for v in state["sample"].values() if v["i"] is not None)
    assert stored["moment"] == 1772357400123457  # microseconds since the epoch, exact
    assert (stored["amount"], stored["doc"]) == ("-1234567890.1234", '{"a":"ü","b":[1,2.5,null]}')

    target = create_engine(make_db(target_name))
    metadata = MetaData()
    declare(metadata)
    metadata.create_all(target)
    with target.begin() as c:  # the target already has one row of the backup, other values
        c.execute(insert(metadata.tables["region"]), [{"code": "eu", "label": "old"}])
    report = restore(target, mapping, through_the_vault(state))
    assert report.updated["region"] == 1 and report.inserted["region"] == 1
    assert raw(target) == raw(source)
    assert capture(target, mapping, state, report.identity)[0] == []
    # sequences were moved past the restored keys: a new row gets a fresh key, no collision
    category = metadata.tables["category"]
    with target.begin() as c:
        top = c.execute(select(func.max(category.c.id))).scalar()
        new = c.execute(insert(category).values(name="new").returning(category.c.id)).scalar()
    assert new > top


@pytest.mark.parametrize("target_name", ["sqlite", "postgresql", "mariadb"])
def test_extra_rows_with_and_without_a_natural_key_are_refused_by_name_or_kept(
        make_db, target_name) -> None:
    source = create_engine(make_db("sqlite"))
    fill(source)
    _, mapping = reflect(source)
    _, state = capture(source, mapping, {}, IdentityMap())
    target = create_engine(make_db(target_name))
    metadata = MetaData()
    declare(metadata)
    metadata.create_all(target)
    t = metadata.tables
    with target.begin() as c:  # rows the backup does not have: a category (natural key),
        # a sample (none) pointing at it, one pointing at a category the backup has
        c.execute(insert(t["category"]), [{"id": 6, "name": "root"},
                                          {"id": 40, "name": "extra", "parent_id": 6}])
        c.execute(insert(t["sample"]), [EMPTY | {"id": 7, "note": "mine", "category_id": 40},
                                        EMPTY | {"id": 8, "note": "too", "category_id": 6}])
    with pytest.raises(ValidationError, match=r"category \(name='extra'\); sample \(id=7; "
                                              r"id=8\); .*--keep-extra"):
        restore(target, mapping, through_the_vault(state))
    extras = raw(target)
    report = restore(target, mapping, through_the_vault(state), keep_extra=True)
    assert (report.kept_extra["category"], report.kept_extra["sample"]) == (1, 2)
    assert report.counts["sample"] == len(state["sample"])  # what it restored, verified
    after = raw(target)
    for table in ("category", "sample"):  # the backup's rows and the extras, untouched
        assert sorted(after[table], key=repr) == sorted(
            raw(source)[table] + [r for r in extras[table] if r[0] != "root"], key=repr)
    # the next capture of the target records the extras, and nothing else
    changes, _ = capture(target, mapping, state, report.identity)
    assert sorted((c.action, c.type) for c in changes) == [
        ("created", "category"), ("created", "sample"), ("created", "sample")]


def test_reattaching_after_a_migration_is_an_evolution(make_db) -> None:
    engine = create_engine(make_db("sqlite"))
    fill(engine)
    schema, mapping = reflect(engine)
    identity = IdentityMap()
    _, state = capture(engine, mapping, {}, identity)
    with engine.begin() as c:  # the application migrates
        c.execute(text("ALTER TABLE person ADD COLUMN phone VARCHAR(20) NOT NULL DEFAULT ''"))
        c.execute(text("ALTER TABLE region DROP COLUMN label"))
        c.execute(text("CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
        c.execute(text("CREATE UNIQUE INDEX badge_owner ON badge (owner_email)"))
    new_schema, new_mapping, change = reattach(schema, *reflect(engine))
    assert new_schema.version == 2 and change.added_types == ("team",)
    assert ("person", "phone") in change.added_fields
    assert new_schema.type("person").field("phone").required is False
    assert new_schema.type("region").field("label").required is False  # kept, for the log
    assert new_mapping.table("region").field("label") is None  # no longer captured
    assert reflect(engine)[1].table("badge").natural_key == ("owner_email",)
    assert new_mapping.table("badge").natural_key == ()  # the key that names its entities
    changes, _ = capture(engine, new_mapping, state, identity)
    assert {(c.action, c.type, tuple(c.fields)) for c in changes} == {
        ("updated", "person", ("phone",))}

    with engine.begin() as c:  # a change no evolution carries: a kind changes
        c.execute(text("ALTER TABLE badge DROP COLUMN version"))
        c.execute(text("ALTER TABLE badge ADD COLUMN version TEXT"))
    with pytest.raises(SchemaError, match="type 'badge' field 'version_': kind changes from "
                                          "int to str"):
        reattach(new_schema, *reflect(engine))


def test_an_application_database_that_cannot_be_opened_is_one_line(tmp_path) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        app_engine("postgresql+psycopg://postgres:secret@127.0.0.1:1/none")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("cannot open the application database "
                                        "postgresql+psycopg://postgres:***@127.0.0.1:1/none: ")


def test_the_app_benchmark_runs(tmp_path) -> None:
    """bench/app.py at a tiny size (no timing is judged): it must keep working."""
    output = tmp_path / "app.json"
    done = subprocess.run([sys.executable, str(BENCH), "--objects", "300", "--workdir",
                           str(tmp_path / "work"), "--output", str(output)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["objects"] == 353
    assert results["capture"]["output"]["created"] >= 353
    assert sum(results["restore"]["output"]["inserted"].values()) == 300


def test_identity_is_stable_and_persistable() -> None:
    assert natural_uuid("auth_user", ["admin"]) == natural_uuid("auth_user", ["admin"])
    assert natural_uuid("auth_user", ["admin"]) != natural_uuid("auth_group", ["admin"])
    assert natural_uuid("t", [1]) != natural_uuid("t", ["1"]) != natural_uuid("t", [True])
    identity = IdentityMap()
    first = identity.assign("dms_document", 7)
    assert identity.assign("dms_document", 7) == first
    assert IdentityMap(identity.entries()) == identity
    identity.retain("dms_document", set())
    assert identity.assign("dms_document", 7) != first  # a reused key is a new entity


def test_the_digest_ignores_keys_and_order(story) -> None:
    _, mapping, state = story
    again = through_the_vault(state)
    assert digest(again, mapping) == digest(state, mapping)
    again["dms_placeholder"][sorted(again["dms_placeholder"])[0]]["value"] = "x"
    assert digest(again, mapping) != digest(state, mapping)


def test_raw_sqlite_numbers_of_a_decimal_column_store_as_their_digits(make_db) -> None:
    """Django's DecimalField on SQLite is a `decimal` column without a scale: SQLite hands its
    values back as floats or ints (NUMERIC affinity), read raw and stored as the decimal they
    spell, without trailing zeros; what no digit string spells is refused."""
    engine = create_engine(make_db("sqlite"))
    with engine.begin() as c:
        c.execute(text("CREATE TABLE price (id INTEGER PRIMARY KEY, amount decimal)"))
        c.execute(text("INSERT INTO price (id, amount) VALUES (1, '12.50'), (2, '5.00'), "
                       "(3, 0), (4, -0.0), (5, 1e16), (6, 0.1), (7, '-7.25'), (8, 1.5e-5), "
                       "(9, '123456789012.5'), (10, -3), (11, NULL)"))
    _, mapping = reflect(engine)
    _, state = capture(engine, mapping, {}, IdentityMap())
    assert {values["app_key"]: values["amount"] for values in state["price"].values()} == {
        1: "12.5", 2: "5", 3: "0", 4: "0", 5: "10000000000000000", 6: "0.1", 7: "-7.25",
        8: "0.000015", 9: "123456789012.5", 10: "-3", 11: None}
    with engine.begin() as c:
        c.execute(text("INSERT INTO price (id, amount) VALUES (12, 9e999)"))  # infinity
    with pytest.raises(ValidationError, match=r"^table price row 12 column amount: "):
        capture(engine, mapping, {}, IdentityMap())


@pytest.mark.parametrize("target_name", ["postgresql", "mariadb"])
def test_a_percent_sign_in_an_application_name_restores(make_db, target_name) -> None:
    """The restore writes its INSERT by hand with the driver's `%s` markers on PostgreSQL and
    MariaDB: a `%` in a table or column name must reach the database as it is (both drivers
    format only the parameters' part of the statement; a review suspected otherwise)."""
    metadata = MetaData()
    Table("rate%", metadata, Column("id", Integer, primary_key=True),
          Column("share%", Integer), Column("name", String(20), unique=True))
    source = create_engine(make_db("sqlite"))
    metadata.create_all(source)
    with source.begin() as c:
        c.execute(insert(metadata.tables["rate%"]), [
            {"name": "a", "share%": 10}, {"name": "b", "share%": None}])
    _, mapping = reflect(source)
    _, state = capture(source, mapping, {}, IdentityMap())
    target = create_engine(make_db(target_name))
    metadata.create_all(target)
    report = restore(target, mapping, through_the_vault(state))
    assert report.inserted == {"rate_": 2}  # the type's name: the table's, made a name
    with target.connect() as c:
        assert sorted(c.execute(select(metadata.tables["rate%"].c["name", "share%"])).all()) \
            == [("a", 10), ("b", None)]
