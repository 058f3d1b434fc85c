"""Progress bars: drawn on stderr when it is a terminal (checked through a pseudo-terminal,
running the real console script), ending on a 100 % line; never on a non-terminal stderr,
and never with --quiet."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from terminal import EVENTVAULT, on_terminal

from eventvault.progress import shown


def last_line(terminal: str) -> str:
    lines = [line for line in re.split(r"[\r\n]+", terminal) if line.strip()]
    return lines[-1] if lines else ""


def test_long_commands_draw_progress_to_100_percent(vault: str, tmp_path: Path) -> None:
    package = str(tmp_path / "p.evpkg")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    demo_target = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run_cli("init", db=demo_target).code == 0
    for words, unit, done in [
        (("--db", vault, "snapshot", "-o", package), "events", "88/88"),
        (("verify", package), "events", "88/88"),
        (("--db", vault, "verify"), "events", "88/88"),
        (("--db", fresh, "replay", package), "events", "88/88"),
        (("--db", vault, "export"), "entities", "76/76"),
        (("--db", demo_target, "demo", "--scale", "3"), "stories", "3/3"),
    ]:
        run = on_terminal(*words)
        assert run.code == 0, run.terminal
        final = last_line(run.terminal)
        assert "100%" in final and done in final, (words, run.terminal)
        assert f"{unit}/s" in final and "<" in final, final  # rate and time left
        assert run.out  # the report itself is on stdout, after the bar


def test_no_progress_on_a_non_terminal_stderr(vault: str, tmp_path: Path) -> None:
    package = str(tmp_path / "p.evpkg")
    for words in (("--db", vault, "snapshot", "-o", package), ("verify", package),
                  ("--db", f"sqlite:///{tmp_path / 'fresh.db'}", "replay", package),
                  ("--db", vault, "export")):
        done = subprocess.run([str(EVENTVAULT), *words], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0 and done.stderr == "", words


def test_quiet_draws_nothing_and_reports_nothing(vault: str, tmp_path: Path) -> None:
    package = str(tmp_path / "p.evpkg")
    for words in (("--db", vault, "snapshot", "-o", package, "--quiet"),
                  ("verify", package, "-q"),
                  ("--db", f"sqlite:///{tmp_path / 'fresh.db'}", "replay", package, "-q")):
        run = on_terminal(*words)
        assert (run.code, run.out, run.terminal) == (0, "", ""), words
    run = on_terminal("--db", vault, "export", "--quiet")
    assert run.terminal == "" and len(run.out.splitlines()) == 76  # the answer stays


def test_an_error_does_not_run_into_the_bar(vault: str, tmp_path: Path) -> None:
    package = tmp_path / "p.evpkg"
    assert run_cli("snapshot", "-o", str(package), db=vault).code == 0
    run = on_terminal("--db", vault, "replay", str(package))  # not empty: refused
    assert run.code == 1
    assert re.search(r"(^|\n)eventvault: target vault is not empty", run.terminal)


def test_uploads_and_downloads_draw_their_bytes(vault: str, tmp_path: Path) -> None:
    """A package going to or coming from a repository: a byte bar after the event bar,
    each ending at 100 % on a line of its own."""
    repository = str(tmp_path / "repository")
    assert run_cli("repo", "init", repository).code == 0
    stored = on_terminal("--db", vault, "snapshot", "--repo", repository)
    assert stored.code == 0, stored.terminal
    replayed = on_terminal("--db", f"sqlite:///{tmp_path / 'fresh.db'}", "replay",
                           "--repo", repository)
    assert replayed.code == 0, replayed.terminal
    for run, first, second in ((stored, "snapshot", "upload"),
                               (replayed, "download", "replay")):
        finals = [line for line in re.split(r"[\r\n]+", run.terminal) if "100%" in line]
        assert [line.split(":")[0].strip() for line in finals] == [first, second], run.terminal
    byte_bar = next(line for line in re.split(r"[\r\n]+", stored.terminal)
                    if line.startswith("upload") and "100%" in line)
    assert re.search(r"\d[kMG]?B/s\]", byte_bar), byte_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_count_past_its_total_draws_no_more_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged object larger than its index says keeps counting after 100 %: the bar has
    ended, and it stays one line (a 1 GB one drew a thousand)."""
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with shown("download", "B") as update:
        assert update is not None
        for done in (40, 100, 100, 150, 200):
            update(done, 100)
    drawn = terminal.getvalue()
    assert drawn.count("\n") == 1 and "100%" in drawn, drawn
