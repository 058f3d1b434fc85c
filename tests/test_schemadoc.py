"""Schemas as data, the pure part: parsing and checking, the shipped reference domain, the
canonical form and hash, evolution, upcasting. No database."""

from __future__ import annotations

import json
import math
import re
import textwrap
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventvault.catalog import legacy
from eventvault.errors import SchemaError, UsageError
from eventvault.schemadoc import (
    USER_TYPE,
    Schema,
    Upcaster,
    canonical,
    default_schema,
    encode_field,
    evolve,
    from_canonical,
    from_document,
    kinds,
    load,
    loads,
    parse_assignments,
    parse_field,
    payload_problems,
    schema_hash,
    to_json,
    to_plain,
    to_toml,
)

ROOT = Path(__file__).resolve().parents[1]

# DESIGN.md's library, before and after: v2 renames book.code to isbn, adds a defaulted price
# and a loan type referencing book and user (a type the schema does not declare: injected).
LIBRARY_V1 = """
name = "library"
version = 1

[[types]]
name = "author"
table = "authors"
natural_key = ["name"]
fields = [
  { name = "name", kind = "str" },
  { name = "born", kind = "date", required = false },
]
writers = ["admin", "author"]

[[types]]
name = "book"
table = "books"
fields = [
  { name = "title", kind = "str" },
  { name = "code", kind = "str", required = false },
]
references = [{ name = "author", target = "author" }]
"""

LIBRARY_V2 = """
name = "library"
version = 2

[[types]]
name = "author"
table = "authors"
natural_key = ["name"]
fields = [
  { name = "name", kind = "str" },
  { name = "born", kind = "date", required = false },
]
writers = ["admin", "author"]          # roles that may create/update/delete; default: admin

[[types]]
name = "book"
table = "books"
fields = [
  { name = "title", kind = "str" },
  { name = "isbn", kind = "str", required = false, renamed_from = "code" },
  { name = "price", kind = "decimal", default = "0.00" },
]
references = [{ name = "author", target = "author" }]

[[types]]
name = "loan"
table = "loans"
fields = [
  { name = "due", kind = "date" },
  { name = "returned", kind = "bool", default = false },
]
references = [{ name = "book", target = "book" }, { name = "borrower", target = "user" }]
"""


def test_the_shipped_domain_is_the_frozen_dms_v1() -> None:
    # The story's commands and the audit speak dms version 1's names (story_names.py); the
    # shipped file must be that schema, byte for byte in canonical form.
    schema = default_schema()
    assert schema.name == "dms" and schema.version == 1
    assert canonical(schema) == legacy().canonical
    assert [(t.name, f.name) for t in schema.types for f in t.fields if f.choices] == [
        ("user", "role"), ("document", "status")]
    assert schema.type("user") == USER_TYPE  # the injected user is the story's user


def test_the_library_example_parses_with_an_injected_user() -> None:
    schema = loads(LIBRARY_V2)
    assert schema.type_names == ("user", "author", "book", "loan")
    book = schema.type("book")
    assert book is not None and book.natural_key == () and book.writers == ("admin",)
    assert book.field("price").default == "0.00"  # type: ignore[union-attr]
    assert book.field("isbn").renamed_from == "code"  # type: ignore[union-attr]
    assert schema.type("author").writers == ("admin", "author")  # type: ignore[union-attr]
    assert [(r.name, r.target, r.column) for r in schema.type("loan").references] == [  # type: ignore[union-attr]
        ("book", "book", "book_id"), ("borrower", "user", "borrower_id")]
    assert schema.referrers("book")[0][0].name == "loan"


def test_the_library_evolves_from_v1_to_v2() -> None:
    change = evolve(loads(LIBRARY_V1), loads(LIBRARY_V2))
    assert change.added_types == ("loan",)
    assert change.removed_types == ()
    assert change.added_fields == (("book", "price"),)
    assert change.renamed_fields == (("book", "code", "isbn"),)
    assert "type 'book' field 'isbn': renamed from 'code'" in change.notes
    assert not change.empty
    assert evolve(loads(LIBRARY_V2), loads(LIBRARY_V2)).empty


def schema_with(types: str, header: str = 'name = "t"\nversion = 1\n') -> str:
    return header + textwrap.dedent(types)


@pytest.mark.parametrize(("types", "message"), [
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "x", kind = "text" }]',
     "type 'a' field 'x': unknown kind 'text'"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "x", kind = "str" }, '
     '{ name = "x", kind = "int" }]', "type 'a': field 'x' is declared twice"),
    ('[[types]]\nname = "a"\ntable = "as"\n[[types]]\nname = "a"\ntable = "bs"',
     "type 'a' is declared twice"),
    ('[[types]]\nname = "a"\ntable = "as"\nreferences = [{ name = "b", target = "nope" }]',
     "type 'a' reference 'b': target 'nope' is not a declared type"),
    ('[[types]]\nname = "a"\ntable = "as"\nnatural_key = ["y"]\n'
     'fields = [{ name = "x", kind = "str" }]', "natural_key names 'y', which is not a field"),
    ('[[types]]\nname = "a"\ntable = "as"\nnatural_key = ["x"]\n'
     'fields = [{ name = "x", kind = "str", required = false }]',
     "natural_key field 'x' must be required"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "n", kind = "int", default = "3" }]',
     "type 'a' field 'n': default '3' is not a valid int"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "p", kind = "decimal", '
     'default = 1.5 }]', "write a decimal as a string"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "d", kind = "datetime", '
     'default = 2026-01-01T10:00:00 }]', "a datetime needs a zone"),
    ('[[types]]\nname = "a"\ntable = "As-1"', "table 'As-1' is not a lowercase identifier"),
    ('[[types]]\nname = "a"\ntable = "events"', "table 'events' is reserved"),
    ('[[types]]\nname = "a"\ntable = "users"', "table 'users' is already the table of type"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "id", kind = "int" }]',
     "field 'id' is reserved"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "b_id", kind = "int" }]\n'
     'references = [{ name = "b", target = "user" }]', "clashes with reference 'b'"),
    ('[[types]]\nname = "a"\ntable = "as"\nnatual_key = ["x"]', "unknown key 'natual_key'"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "s", kind = "str", '
     'choices = ["x"], default = "y" }]', "default 'y' is not one of the choices"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "s", kind = "bool", '
     'choices = [true] }]', "choices are for str and int fields"),
    ('[[types]]\nname = "a"\ntable = "as"\nwriters = ["janitor"]',
     "writer 'janitor' is not a role"),
    ('[[types]]\nname = "a"\ntable = "as"\nreferences = [{ name = "up", target = "a" }]',
     "required references form a cycle (a -> a)"),
    ('[[types]]\nname = "a"\ntable = "as"\nreferences = [{ name = "b", target = "b" }]\n'
     '[[types]]\nname = "b"\ntable = "bs"\nreferences = [{ name = "a", target = "a" }]',
     "required references form a cycle (a -> b -> a)"),
    ('[[types]]\nname = "user"\ntable = "users"\nnatural_key = ["username"]\n'
     'fields = [{ name = "username", kind = "str" }]',
     "type 'user': must have a str field 'email'"),
    ('[[types]]\nname = "a"\ntable = "as"\nfields = [{ name = "x", kind = "str", '
     'renamed_from = "x" }]', "type 'a': field 'x' is renamed_from itself"),
])
def test_each_problem_is_one_line_naming_the_type_and_field(types: str, message: str) -> None:
    with pytest.raises(SchemaError) as raised:
        loads(schema_with(types), "lib.toml")
    assert isinstance(raised.value, UsageError) and raised.value.exit_code == 2
    assert any(message in line and line.startswith("lib.toml: ")
               for line in raised.value.problems), raised.value.problems


def test_every_problem_is_reported_at_once() -> None:
    text = schema_with("""
        [[types]]
        name = "a"
        table = "as"
        fields = [{ name = "x", kind = "text" }, { name = "n", kind = "int", default = "y" }]
        references = [{ name = "b", target = "nope" }]
    """)
    with pytest.raises(SchemaError) as raised:
        loads(text)
    assert len(raised.value.problems) == 3
    assert str(raised.value).count("\n") == 2


def test_a_file_that_is_not_toml_or_missing_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(SchemaError, match=r"bad.toml: not valid TOML"):
        load(tmp_path / "bad.toml")
    with pytest.raises(SchemaError, match=r"cannot read the schema"):
        load(tmp_path / "absent.toml")


def test_a_cycle_through_an_optional_reference_is_allowed_and_ordered() -> None:
    schema = loads(schema_with("""
        [[types]]
        name = "folder"
        table = "folders"
        references = [{ name = "parent", target = "folder", required = false },
                      { name = "cover", target = "file", required = false }]
        [[types]]
        name = "file"
        table = "files"
        references = [{ name = "folder", target = "folder" }]
    """))
    # folder needs nothing required; file requires folder, so folder loads first.
    assert schema.type_names == ("user", "folder", "file")


def test_types_are_put_in_dependency_order() -> None:
    schema = loads(schema_with("""
        [[types]]
        name = "b"
        table = "bs"
        references = [{ name = "a", target = "a" }]
        [[types]]
        name = "a"
        table = "as"
    """))
    assert schema.type_names == ("user", "a", "b")


def test_canonical_bytes_round_trip_and_name_the_schema() -> None:
    for schema in (default_schema(), loads(LIBRARY_V1), loads(LIBRARY_V2)):
        data = canonical(schema)
        again = from_canonical(data)
        assert again == schema and canonical(again) == data
        assert schema_hash(again) == schema_hash(schema)
        # The readable JSON form reads back to the same schema.
        assert from_document(json.loads(to_json(schema))) == schema
    assert schema_hash(loads(LIBRARY_V1)) != schema_hash(loads(LIBRARY_V2))


def test_the_shipped_domain_hash_is_pinned() -> None:
    # The hash names the schema in every vault and package: a change to dms.toml or to the
    # canonical encoding must be deliberate (and then come with a new version).
    assert schema_hash(default_schema()) == (
        "f707b50b3952885afe9cf99a463824264caea3e471156e85a122cb95d95bb296")


def test_spelling_does_not_change_the_hash() -> None:
    plain = loads(schema_with("""
        [[types]]
        name = "a"
        table = "as"
        writers = ["author", "admin"]
        fields = [{ name = "p", kind = "decimal", default = "1.50" },
                  { name = "d", kind = "date", default = 2026-03-01 }]
    """))
    respelled = loads(schema_with("""
        [[types]]
        name = "a"
        table = "as"
        writers = ["admin", "author", "admin"]
        fields = [{ name = "p", kind = "decimal", default = "+1.50", required = true },
                  { name = "d", kind = "date", default = "2026-03-01" }]
    """))
    assert schema_hash(plain) == schema_hash(respelled)


def test_non_canonical_bytes_are_refused() -> None:
    plain = to_plain(default_schema())
    unsorted = msgpack.packb(plain, use_bin_type=True)  # keys in declaration order
    with pytest.raises(SchemaError, match="not in canonical form"):
        from_canonical(unsorted)
    with pytest.raises(SchemaError, match="format 9 is not known"):
        from_canonical(msgpack.packb({**plain, "format": 9}))
    with pytest.raises(SchemaError, match="not a canonical schema"):
        from_canonical(b"\xc1garbage")


BASE = """
name = "shop"
version = 1

[[types]]
name = "item"
table = "items"
natural_key = ["sku"]
fields = [
  { name = "sku", kind = "str" },
  { name = "count", kind = "int", default = 0 },
  { name = "note", kind = "str", required = false },
  { name = "state", kind = "str", default = "new", choices = ["new", "old"] },
]
references = [{ name = "owner", target = "user", required = false }]

[[types]]
name = "gone"
table = "gones"
"""


def shop(replace: dict[str, str] | None = None, version: int = 2) -> str:
    text = BASE.replace("version = 1", f"version = {version}")
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(("edit", "message"), [
    ({'{ name = "count", kind = "int", default = 0 }': '{ name = "count", kind = "float" }'},
     "type 'item' field 'count': kind changes from int to float"),
    ({'{ name = "note", kind = "str", required = false },':
      '{ name = "note", kind = "str", required = false },\n  { name = "size", kind = "int" },'},
     "type 'item' field 'size': is new and required without a default"),
    ({'  { name = "note", kind = "str", required = false },\n': ""},
     "type 'item' field 'note': is removed; fields cannot be removed"),
    ({'target = "user", required = false': 'target = "gone", required = false'},
     "type 'item' reference 'owner': target changes from 'user' to 'gone'"),
    ({'{ name = "note", kind = "str", required = false }': '{ name = "note", kind = "str" }'},
     "type 'item' field 'note': becomes required"),
    ({'target = "user", required = false': 'target = "user"'},
     "type 'item' reference 'owner': becomes required"),
    ({'choices = ["new", "old"]': 'choices = ["new"]'},
     "type 'item' field 'state': choices can only grow, but old would be dropped"),
    ({'{ name = "note", kind = "str", required = false }':
      '{ name = "note", kind = "str", required = false, choices = ["a"] }'},
     "type 'item' field 'note': gains choices"),
    ({'table = "items"': 'table = "things"'}, "type 'item': table changes from 'items'"),
    ({'natural_key = ["sku"]': 'natural_key = ["sku", "count"]'},
     "type 'item': natural_key changes from ['sku'] to ['sku', 'count']"),
    ({'references = [{ name = "owner", target = "user", required = false }]':
      'references = [{ name = "owner", target = "user", required = false }, '
      '{ name = "maker", target = "user" }]'},
     "type 'item' reference 'maker': is new and required without a default"),
])
def test_evolution_refuses_what_would_invalidate_or_lose_data(edit: dict[str, str],
                                                              message: str) -> None:
    with pytest.raises(SchemaError) as raised:
        evolve(loads(BASE), loads(shop(edit)))
    assert any(message in line for line in raised.value.problems), raised.value.problems


def test_evolution_refuses_another_schema_or_the_same_version() -> None:
    with pytest.raises(SchemaError, match="is not a version of schema 'shop'"):
        evolve(loads(BASE), loads(shop({'name = "shop"': 'name = "shop2"'})))
    with pytest.raises(SchemaError, match="give the new one a higher version"):
        evolve(loads(BASE), loads(shop({'default = 0 }': 'default = 1 }'}, version=1)))


def test_evolution_accepts_additions_renames_and_relaxations() -> None:
    new = loads(shop({
        '{ name = "count", kind = "int", default = 0 }':
            '{ name = "quantity", kind = "int", default = 5, renamed_from = "count" }',
        '{ name = "note", kind = "str", required = false },':
            '{ name = "note", kind = "str", required = false },\n'
            '  { name = "size", kind = "int", default = 1 },\n'
            '  { name = "tag", kind = "str", required = false },',
        'choices = ["new", "old"]': 'choices = ["new", "old", "broken"]',
        'target = "user", required = false }]':
            'target = "user", required = false }, { name = "seller", target = "user", '
            'required = false }]',
        '[[types]]\nname = "gone"\ntable = "gones"\n': '',
    }))
    change = evolve(loads(BASE), new)
    assert change.removed_types == ("gone",)  # the caller refuses if any is alive
    assert change.added_fields == (("item", "size"), ("item", "tag"), ("item", "seller"))
    assert change.renamed_fields == (("item", "count", "quantity"),)
    assert "type 'item' field 'quantity': default becomes 5 (for entities created from now on)" \
        in change.notes
    assert "type 'item' field 'state': choices become new, old, broken" in change.notes


def test_a_natural_key_follows_its_field_through_a_rename() -> None:
    new = loads(shop({'natural_key = ["sku"]': 'natural_key = ["code"]',
                      '{ name = "sku", kind = "str" }':
                          '{ name = "code", kind = "str", renamed_from = "sku" }'}))
    assert evolve(loads(BASE), new).renamed_fields == (("item", "sku", "code"),)


def library_v3() -> str:
    # v3: the rename of code to isbn is old news (its renamed_from is stale and ignored),
    # price's default changes, isbn is renamed again, and a new field arrives.
    return (LIBRARY_V2.replace("version = 2", "version = 3")
            .replace('default = "0.00"', 'default = "9.99"')
            .replace('{ name = "isbn", kind = "str", required = false, renamed_from = "code" }',
                     '{ name = "isbn13", kind = "str", required = false, renamed_from = "isbn" },'
                     '\n  { name = "pages", kind = "int", required = false }'))


def test_upcasting_renames_and_fills_what_was_added_since() -> None:
    v1, v2, v3 = loads(LIBRARY_V1), loads(LIBRARY_V2), loads(library_v3())
    upcaster = Upcaster([v1, v2, v3])
    created_v1 = {"title": "Dune", "code": "978-0", "author": "a-uuid"}
    assert upcaster.upcast("book", 1, dict(created_v1), created=True) == {
        "title": "Dune", "isbn13": "978-0", "author": "a-uuid",
        # price was added in v2 with default 0.00: that is what v1 books got, not v3's 9.99
        "price": "0.00", "pages": None,
    }
    # An update names only what it changed: nothing is filled in.
    assert upcaster.upcast("book", 1, {"code": "979-1"}, created=False) == {"isbn13": "979-1"}
    assert upcaster.upcast("book", 2, {"isbn": "x", "title": "t", "author": "a",
                                       "price": "3.00"}, created=True) == {
        "isbn13": "x", "title": "t", "author": "a", "price": "3.00", "pages": None}
    assert upcaster.plan("book", 1, 2).renames == {"code": "isbn"}  # type: ignore[union-attr]
    # Payloads already in the current version's names go through untouched, same object.
    payload = {"title": "t"}
    assert upcaster.upcast("author", 1, payload, created=True) is payload
    assert upcaster.plan("author", 1).identity  # type: ignore[union-attr]
    assert upcaster.plan("book", 1) is upcaster.plan("book", 1)  # computed once


def test_upcasting_a_removed_type_or_an_unknown_version_is_refused() -> None:
    v1 = loads(BASE)
    v2 = loads(shop({'[[types]]\nname = "gone"\ntable = "gones"\n': ''}))
    upcaster = Upcaster([v1, v2])
    assert upcaster.plan("gone", 1) is None
    assert upcaster.plan("gone", 1, 1) is not None
    with pytest.raises(SchemaError, match="type 'gone' does not exist in schema version 2"):
        upcaster.upcast("gone", 1, {}, created=True)
    with pytest.raises(SchemaError, match="schema version 7 is not in this vault's schema"):
        upcaster.plan("item", 7)
    with pytest.raises(SchemaError, match="type 'loan' does not exist in schema version 1"):
        Upcaster([loads(LIBRARY_V1), loads(LIBRARY_V2)]).plan("loan", 1)


def test_an_invalid_history_is_refused_up_front() -> None:
    with pytest.raises(SchemaError, match="kind changes"):
        Upcaster([loads(BASE), loads(shop({'default = 0 }': 'default = 0.5 }',
                                           'kind = "int", default': 'kind = "float", default'}))])
    with pytest.raises(SchemaError, match="out of order"):
        Upcaster([loads(LIBRARY_V2), loads(LIBRARY_V1)])


# --- value kinds ---------------------------------------------------------------------------

UTC_2026 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)

# (kind, Python or file value, stored value, text form)
ROUND_TRIPS = [
    ("str", "", "", ""),
    ("str", "naïve ☃ 𝄞", "naïve ☃ 𝄞", "naïve ☃ 𝄞"),
    ("int", 0, 0, "0"),
    ("int", kinds.INT_MAX, kinds.INT_MAX, "9223372036854775807"),
    ("int", kinds.INT_MIN, kinds.INT_MIN, "-9223372036854775808"),
    ("bool", True, True, "true"),
    ("bool", False, False, "false"),
    ("float", 1.5, 1.5, "1.5"),
    ("float", -0.0, 0.0, "0.0"),
    ("float", 5e-324, 5e-324, "5e-324"),
    ("float", 1.7976931348623157e308, 1.7976931348623157e308, "1.7976931348623157e+308"),
    ("float", 3, 3.0, "3.0"),
    ("decimal", "1.50", "1.50", "1.50"),
    ("decimal", Decimal("-0.00"), "0.00", "0.00"),
    ("decimal", "1E+2", "100", "100"),
    ("decimal", 12, "12", "12"),
    ("decimal", "-123456789012345678901234567890.000000001",
     "-123456789012345678901234567890.000000001", "-123456789012345678901234567890.000000001"),
    ("date", date(2026, 3, 1), "2026-03-01", "2026-03-01"),
    ("date", date(1, 1, 1), "0001-01-01", "0001-01-01"),
    ("datetime", UTC_2026, 1772357400123456, "2026-03-01T09:30:00.123456Z"),
    ("datetime", datetime(2026, 3, 1, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
     1772357400123456, "2026-03-01T09:30:00.123456Z"),
    ("datetime", "2026-03-01T09:30:00.123456Z", 1772357400123456, "2026-03-01T09:30:00.123456Z"),
    ("datetime", datetime(1, 1, 1, tzinfo=UTC), kinds.DATETIME_MIN,
     "0001-01-01T00:00:00.000000Z"),
    ("datetime", datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), -1,
     "1969-12-31T23:59:59.999999Z"),
    ("json", {"b": [1, 2.5, None], "a": "x"}, '{"a":"x","b":[1,2.5,null]}',
     '{"a":"x","b":[1,2.5,null]}'),
    ("json", "text", '"text"', '"text"'),
    ("json", {"big": 10**30, "é": True}, '{"big":1000000000000000000000000000000,"é":true}',
     '{"big":1000000000000000000000000000000,"é":true}'),
    ("bytes", b"\x00\xff", b"\x00\xff", "00ff"),
    ("bytes", "00FF", b"\x00\xff", "00ff"),
    ("bytes", b"", b"", ""),
    ("uuid", "6F1C1F0E-5A0B-4C1E-9D43-2F6F0E7A9B10", "6f1c1f0e-5a0b-4c1e-9d43-2f6f0e7a9b10",
     "6f1c1f0e-5a0b-4c1e-9d43-2f6f0e7a9b10"),
    ("uuid", uuid.UUID(int=0), "00000000-0000-0000-0000-000000000000",
     "00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize(("kind", "value", "stored", "text"), ROUND_TRIPS)
def test_every_kind_round_trips(kind: str, value: object, stored: object, text: str) -> None:
    encoded = kinds.encode(kind, value)
    assert encoded == stored and type(encoded) is kinds.STORED_TYPE[kind]
    kinds.check(kind, encoded)
    assert kinds.render(kind, encoded) == text
    assert kinds.parse(kind, text) == stored  # the CLI's form comes back exactly
    assert kinds.encode(kind, kinds.decode(kind, encoded)) == stored
    assert kinds.encode(kind, kinds.file_value(kind, encoded)) == stored
    # The payload representation survives msgpack exactly (no float, no ext types).
    assert msgpack.unpackb(msgpack.packb(encoded, use_bin_type=True)) == stored


def test_decoded_values_are_python_values() -> None:
    assert kinds.decode("decimal", "1.50") == Decimal("1.50")
    assert kinds.decode("date", "2026-03-01") == date(2026, 3, 1)
    assert kinds.decode("datetime", 1772357400123456) == UTC_2026
    assert kinds.decode("datetime", 1772357400123456).tzinfo is UTC
    assert kinds.decode("json", '{"a":[1]}') == {"a": [1]}
    assert kinds.decode("uuid", "00000000-0000-0000-0000-000000000000") == uuid.UUID(int=0)
    assert math.copysign(1, kinds.encode("float", -0.0)) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "value", "reason"), [
    ("str", "a\x00b", "NUL"),
    ("str", "\ud800", "lone surrogate"),
    ("str", 5, "expected text, got int"),
    ("int", True, "expected an integer, got bool"),
    ("int", kinds.INT_MAX + 1, "64-bit range; use kind decimal"),
    ("int", kinds.INT_MIN - 1, "64-bit range"),
    ("int", 1.0, "expected an integer, got float"),
    ("bool", 1, "expected true or false"),
    ("float", math.nan, "finite"),
    ("float", math.inf, "finite"),
    ("float", 2**53 + 1, "not exactly representable"),
    ("float", 10**400, "finite"),
    ("float", False, "expected a number"),
    ("decimal", 1.5, "write a decimal as a string"),
    ("decimal", "NaN", "finite"),
    ("decimal", "-Infinity", "finite"),
    ("decimal", "1,5", "not a decimal"),
    ("decimal", "1E+999", "longer than"),
    ("date", datetime(2026, 1, 1, tzinfo=UTC), "expected a date, got datetime"),
    ("date", "2026-02-30", "not a date"),
    ("datetime", datetime(2026, 1, 1), "needs a zone"),
    ("datetime", "2026-03-01T09:30:00", "needs a zone"),
    ("datetime", 1772357400123456, "expected a date and time, got int"),
    ("datetime", "yesterday", "not an ISO 8601"),
    ("json", {"a": math.nan}, "NaN"),
    ("json", {1: "a"}, "keys must be text"),
    ("json", (1, 2), "tuple is not a JSON value"),
    ("bytes", "0g", "not hexadecimal"),
    ("uuid", "not-a-uuid", "is not a UUID"),
])
def test_bad_values_are_refused_with_the_reason(kind: str, value: object, reason: str) -> None:
    with pytest.raises(kinds.KindError, match=re.escape(reason)):
        kinds.encode(kind, value)


@pytest.mark.parametrize(("kind", "text", "reason"), [
    ("int", "1.5", "is not an integer"),
    ("int", "99999999999999999999", "64-bit range"),
    ("bool", "maybe", "is not true or false"),
    ("float", "nan", "finite"),
    ("float", "-inf", "finite"),
    ("float", "abc", "is not a number"),
    ("json", "{'a': 1}", "not JSON"),
    ("json", "NaN", "JSON cannot hold NaN"),
    ("json", "[1e999]", "NaN or infinity"),
])
def test_command_line_words_are_refused_with_the_reason(kind: str, text: str,
                                                        reason: str) -> None:
    with pytest.raises(kinds.KindError, match=re.escape(reason)):
        kinds.parse(kind, text)


@pytest.mark.parametrize(("kind", "stored"), [
    ("decimal", "1e2"), ("decimal", "-0"), ("date", "20260301"), ("json", '{"b":1, "a":2}'),
    ("uuid", "6F1C1F0E-5A0B-4C1E-9D43-2F6F0E7A9B10"), ("float", -0.0), ("float", math.nan),
    ("datetime", kinds.DATETIME_MAX + 1), ("int", True), ("decimal", 1), ("bytes", "00"),
])
def test_a_stored_value_must_be_canonical(kind: str, stored: object) -> None:
    with pytest.raises(kinds.KindError):
        kinds.check(kind, stored)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_decimals_keep_their_value_and_scale(value: Decimal) -> None:
    try:
        stored = kinds.encode("decimal", value)
    except kinds.KindError:
        return  # longer than DECIMAL_MAX_CHARS in plain digits
    assert Decimal(stored) == value  # type: ignore[arg-type]
    assert kinds.parse("decimal", stored) == stored  # type: ignore[arg-type]


@settings(max_examples=50)  # zoneinfo look-ups make each example slow
@given(st.datetimes(timezones=st.timezones()))
def test_aware_datetimes_are_exact_to_the_microsecond(value: datetime) -> None:
    try:
        stored = kinds.encode("datetime", value)
    except OverflowError:
        return
    # The same instant (compared in UTC: PEP 495 makes an ambiguous local time unequal to
    # every time in another zone, though its offset, with `fold`, is well defined).
    assert kinds.decode("datetime", stored) == value.astimezone(UTC)
    kinds.check("datetime", stored)
    assert kinds.parse("datetime", kinds.render("datetime", stored)) == stored


@settings(max_examples=50)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20))
def test_json_values_round_trip(value: object) -> None:
    try:
        stored = kinds.encode("json", value)
    except kinds.KindError:
        return  # lone surrogates in generated text
    assert kinds.decode("json", stored) == value
    assert kinds.parse("json", stored) == stored  # type: ignore[arg-type]


# --- field values of one type ------------------------------------------------------------


def test_command_line_assignments_become_stored_values() -> None:
    book = loads(LIBRARY_V2).type("book")
    assert book is not None
    assert parse_assignments(book, ["price=1.50", "title=Dune", "isbn=", "author=author:Frank"]) \
        == {"price": "1.50", "title": "Dune", "isbn": "", "author": "author:Frank"}
    loan = loads(LIBRARY_V2).type("loan")
    assert parse_field(loan, "due", "2026-03-01") == "2026-03-01"  # type: ignore[arg-type]
    assert parse_field(loan, "returned", "yes") is True  # type: ignore[arg-type]
    role = default_schema().type("user")
    assert parse_field(role, "role", "author") == "author"  # type: ignore[arg-type]
    assert encode_field(book, "price", Decimal("2.5")) == "2.5"
    assert encode_field(book, "isbn", None) is None


@pytest.mark.parametrize(("words", "message"), [
    (["price=1.5x"], "book field 'price' (decimal): '1.5x' is not a decimal number"),
    (["price="], "book field 'price' (decimal) cannot be empty"),
    (["pages=3"], "book has no field 'pages' (fields: title, isbn, price, author)"),
    (["title"], "--set 'title': expected FIELD=VALUE"),
    (["title=a", "title=b"], "book field 'title' is set twice"),
])
def test_bad_assignments_name_the_field(words: list[str], message: str) -> None:
    book = loads(LIBRARY_V2).type("book")
    with pytest.raises(UsageError) as raised:
        parse_assignments(book, words)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_values_outside_the_choices_are_refused() -> None:
    user = default_schema().type("user")
    with pytest.raises(UsageError, match="user field 'role': 'boss' is not one of admin, "
                                         "author, reviewer, viewer"):
        parse_field(user, "role", "boss")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="user field 'active' cannot be empty"):
        encode_field(user, "active", None)  # type: ignore[arg-type]


def test_stored_payloads_are_checked_against_the_type() -> None:
    book = loads(LIBRARY_V2).type("book")
    assert book is not None
    assert payload_problems(book, {"title": "t", "price": "1.50", "isbn": None,
                                   "author": "6f1c1f0e-5a0b-4c1e-9d43-2f6f0e7a9b10"}) == []
    assert payload_problems(book, {"title": None, "price": 1.5, "pages": 3, "author": 7}) == [
        "book field 'title' cannot be empty",
        "book field 'price': stored decimal is float, not str",
        "book has no field 'pages'",
        "book field 'author' holds 7, not a UUID",
    ]
    assert payload_problems(book, {"author": "author:Frank"}) == [
        "book field 'author' holds 'author:Frank', not a UUID"]
    user = default_schema().type("user")
    assert payload_problems(user, {"role": "boss"}) == [  # type: ignore[arg-type]
        "user field 'role': 'boss' is not one of the choices"]


def test_the_documented_example_and_errors_are_true() -> None:
    doc = (ROOT / "docs" / "SCHEMA.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    assert loads(example) == loads(LIBRARY_V2)
    shown = re.search(r"problems? in a file.*?```\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    bad = (example.replace('default = "0.00"', 'default = "1,50"')
           .replace('target = "book"', 'target = "books"'))
    with pytest.raises(SchemaError) as raised:
        loads(bad, "lib.toml")
    assert str(raised.value) + "\n" == shown
    assert schema_hash(default_schema()) in doc


def test_upcasting_renames_that_swap_names_across_versions() -> None:
    def version(number: int, fields: str) -> Schema:
        return loads(schema_with(f'[[types]]\nname = "a"\ntable = "as"\nfields = [{fields}]',
                                 header=f'name = "t"\nversion = {number}\n'))

    v1 = version(1, '{ name = "x", kind = "str" }, { name = "y", kind = "str" }')
    v2 = version(2, '{ name = "x", kind = "str" }, '
                    '{ name = "z", kind = "str", renamed_from = "y" }')
    v3 = version(3, '{ name = "y", kind = "str", renamed_from = "x" }, '
                    '{ name = "z", kind = "str", renamed_from = "y" }')
    upcaster = Upcaster([v1, v2, v3])
    assert upcaster.plan("a", 1).renames == {"x": "y", "y": "z"}  # type: ignore[union-attr]
    assert upcaster.upcast("a", 1, {"x": "X", "y": "Y"}, created=True) == {"y": "X", "z": "Y"}
    # In one step, that shift is ambiguous: y is still a field, so z's renamed_from is taken
    # as stale, and the old y would be lost; the step is refused.
    with pytest.raises(SchemaError, match="field 'x': is removed"):
        evolve(v1, version(2, '{ name = "y", kind = "str", renamed_from = "x" }, '
                              '{ name = "z", kind = "str", renamed_from = "y" }'))


EVERY_KIND = """
name = "kinds"
version = 1

[[types]]
name = "sample"
table = "samples"
natural_key = ["s", "d"]
writers = ["reviewer", "admin"]
references = [{ name = "owner", target = "user", required = false, renamed_from = "holder" }]

[[types.fields]]
name = "s"
kind = "str"
default = "tab\\t \\"quoted\\" \\u007f é"
choices = ["tab\\t \\"quoted\\" \\u007f é", "b"]

[[types.fields]]
name = "i"
kind = "int"
default = -9223372036854775808
choices = [-9223372036854775808, 2]

[[types.fields]]
name = "b"
kind = "bool"
default = false
required = false

[[types.fields]]
name = "f"
kind = "float"
default = 1e-05

[[types.fields]]
name = "m"
kind = "decimal"
default = "-1.50"

[[types.fields]]
name = "d"
kind = "date"
default = 2026-03-01

[[types.fields]]
name = "t"
kind = "datetime"
default = 2026-03-01T09:30:00.5+01:00

[[types.fields]]
name = "j"
kind = "json"
default = { "a key" = [1, 2.5, "x", true, {}], big = 100000000000000000000 }

[[types.fields]]
name = "y"
kind = "bytes"
default = "00ff"

[[types.fields]]
name = "u"
kind = "uuid"
default = "6F1C1F0E-5A0B-4C1E-9D43-2F6F0E7A9B10"
renamed_from = "old_u"
"""


def test_a_schema_written_as_toml_reads_back_the_same() -> None:
    for schema in (default_schema(), loads(LIBRARY_V2), loads(EVERY_KIND)):
        assert loads(to_toml(schema)) == schema
    assert to_toml(default_schema()).startswith('name = "dms"\nversion = 1\n\n[[types]]\n')
    sample = loads(EVERY_KIND).type("sample")
    assert sample is not None and sample.field("t").default == 1772353800500000  # type: ignore[union-attr]
    assert sample.field("j").default == (  # type: ignore[union-attr]
        '{"a key":[1,2.5,"x",true,{}],"big":100000000000000000000}')


def test_a_json_default_holding_null_cannot_be_written_as_toml() -> None:
    document = json.loads(to_json(loads(EVERY_KIND)))
    document["types"][1]["fields"][7]["default"] = {"a": None}
    with pytest.raises(SchemaError, match="null cannot be written as TOML"):
        to_toml(from_document(document))
