"""Rows out: an aligned table for people, JSON lines or CSV for tools.

Every function here turns records (plain mappings that `json.dumps` accepts) into lines of
text and yields them one at a time, so a caller can stream a long answer without holding it
in memory, and nothing here knows about audit events or click: the table's cells come from
`Column`s the caller declares.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Literal

Format = Literal["table", "json", "csv"]
FORMATS: tuple[Format, ...] = ("table", "json", "csv")

Record = Mapping[str, Any]

# A table measures its columns on this many rows and keeps those widths for the rest: long
# answers stream instead of being held in memory, at the cost of a rare ragged late row.
MEASURE_ROWS = 500
# No column but the last is wider than this; longer cells are cut with "..." (the full value
# is always in --json and --csv). The last column is never padded, so it is never cut.
MAX_WIDTH = 48
GAP = "  "
CSV_LINE_END = "\r\n"  # RFC 4180
# Control characters in a cell (a title or reason holding an escape sequence) are shown
# escaped, so stored text can never move the cursor or recolour a person's terminal.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), *range(127, 160)) if code != 10}
_CONTROL_LINE = {**_CONTROL, 10: "\\n"}


def _escape_format(text: str) -> str:
    """Format characters (Unicode category Cf: bidirectional overrides and isolates
    U+202A-U+202E and U+2066-U+2069, zero-width characters, ...) shown as \\uXXXX: they
    are invisible and can make text read as something else (a reversed file name)."""
    if text.isprintable():  # the common case, at C speed; every Cf character is unprintable
        return text
    return "".join(_escaped(c) if unicodedata.category(c) == "Cf" else c for c in text)


def _escaped(character: str) -> str:
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def for_terminal(text: str) -> str:
    """One line of text for people, whatever it quotes: control characters (escape
    sequences, CR, LF), format characters (bidirectional overrides, zero-width ones) and
    what is not valid Unicode are shown escaped, never sent raw."""
    text = _escape_format(text.translate(_CONTROL_LINE))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: its header and how to draw a record's cell (newlines: more lines)."""

    header: str
    cell: Callable[[Record], str]


def render(
    fmt: Format, records: Iterable[Record], columns: Sequence[Column],
    fields: Sequence[str] | None = None,
) -> Iterator[str]:
    """The records in `fmt`: a table of `columns`, JSON lines, or CSV of `fields`."""
    if fmt == "json":
        return json_lines(records)
    if fmt == "csv":
        return csv_lines(records, fields)
    return table_lines(columns, records)


def json_lines(records: Iterable[Record]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def csv_lines(records: Iterable[Record], fields: Sequence[str] | None = None) -> Iterator[str]:
    """A header, then one row a record; nested values become compact JSON in one cell.

    Without `fields` the columns are the first record's keys (so no records, no header).
    """
    iterator = iter(records)
    if fields is None:
        first = next(iterator, None)
        if first is None:
            return
        fields = list(first)
        iterator = chain([first], iterator)
    yield _csv_row(fields)
    for record in iterator:
        yield _csv_row([csv_cell(record.get(name)) for name in fields])


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _csv_row(cells: Sequence[str]) -> str:
    """One RFC 4180 record without its line end (the caller ends it with CRLF).

    The writer quotes a cell holding any character of its `lineterminator`: with CRLF there,
    a cell holding CR or LF is quoted (with an empty one, as before, it was not, and a title
    with a line break split its row in two)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=CSV_LINE_END).writerow(cells)
    return buffer.getvalue()[: -len(CSV_LINE_END)]


def table_lines(columns: Sequence[Column], records: Iterable[Record]) -> Iterator[str]:
    """A header line, then each record as one or more lines of aligned cells."""
    iterator = iter(records)
    head = [[_cell_lines(column.cell(record)) for column in columns]
            for record in islice(iterator, MEASURE_ROWS)]
    widths = [len(column.header) for column in columns]
    for cells in head:
        for index, lines in enumerate(cells[:-1]):
            widths[index] = min(MAX_WIDTH, max(widths[index], *(len(line) for line in lines)))
    yield _line([column.header for column in columns], widths)
    rest = ([_cell_lines(column.cell(record)) for column in columns] for record in iterator)
    for cells in chain(head, rest):
        for depth in range(max(len(lines) for lines in cells)):
            yield _line([lines[depth] if depth < len(lines) else "" for lines in cells], widths)


def _cell_lines(text: str) -> list[str]:
    return _escape_format(text.translate(_CONTROL)).split("\n") if text else [""]


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = [_fit(cell, width) for cell, width in zip(cells[:-1], widths, strict=False)]
    return GAP.join([*parts, cells[-1]]).rstrip()


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        text = text[: width - 3] + "..."
    return text.ljust(width)
