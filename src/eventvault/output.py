"""How commands report: lines for people, or exactly one JSON object with --json.

Every reporting command takes `--json` and `-q/--quiet`; both are kept in the click
context's `meta` (shared by a command and its group), so commands keep their signatures.
With --json an error is also one object on stdout, `{"error": ..., "exit_code": n}`, so a
script never has to parse stderr; the one line on stderr stays for people.

--quiet silences what is only information (progress bars and the report lines of init,
reinit, demo, snapshot, replay, verify, rebuild and the repo commands), so a successful
cron job prints nothing; an answer (a UUID written, an export, a listing) and errors are
always printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

JSON_KEY = "eventvault.json"
QUIET_KEY = "eventvault.quiet"

# Per run (set by `expect_json`): whether errors go to stdout as JSON too (decided before
# parsing, since an error may come first), and whether a JSON object was printed already
# (a failed verify prints its report: that is then the one object).
_run = {"json_errors": False, "emitted": False}


def _remember(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def store(context: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            context.meta[key] = True

    return store


def options(function: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` and `-q/--quiet` for a command, without changing its parameters."""
    function = click.option("-q", "--quiet", is_flag=True, expose_value=False,
                            callback=_remember(QUIET_KEY),
                            help="No progress and no information lines; errors still.")(
        function)
    return click.option("--json", is_flag=True, expose_value=False,
                        callback=_remember(JSON_KEY),
                        help="Exactly one JSON object on stdout (errors too).")(function)


def _meta() -> dict[str, Any]:
    context = click.get_current_context(silent=True)
    return context.meta if context is not None else {}


def as_json() -> bool:
    return bool(_meta().get(JSON_KEY))


def quiet() -> bool:
    return bool(_meta().get(QUIET_KEY))


def emit_json(data: Mapping[str, Any]) -> None:
    _run["emitted"] = True
    click.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def report(lines: str | Iterable[str], data: Mapping[str, Any]) -> None:
    """Information about what was done: the lines (unless --quiet), or `data` (--json)."""
    if as_json():
        emit_json(data)
    elif not quiet():
        for line in [lines] if isinstance(lines, str) else lines:
            click.echo(line)


def answer(lines: str | Iterable[str], data: Mapping[str, Any]) -> None:
    """The answer a command was run for: printed even with --quiet."""
    if as_json():
        emit_json(data)
    else:
        for line in [lines] if isinstance(lines, str) else lines:
            click.echo(line)


def expect_json(words: Iterable[str]) -> None:
    """Whether this run's errors go to stdout as JSON too: decided from the words
    themselves, since an error may come before click has parsed them."""
    _run["json_errors"] = "--json" in _options_part(words)
    _run["emitted"] = False


def _options_part(words: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for word in words:
        if word == "--":
            break
        kept.append(word)
    return kept


def fail(message: str, code: int) -> int:
    """One line on stderr (and with --json one object on stdout); returns the exit code."""
    if _run["json_errors"] and not _run["emitted"]:
        emit_json({"error": message, "exit_code": code})
    click.echo(f"eventvault: {message}", err=True)
    return code
