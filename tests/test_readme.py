"""The README's console sessions are run for real, so the README cannot drift from the code.

Values that differ on every run (hashes, UUIDs, times, sizes, durations) are masked; every
other character of the story's output must match what the README shows.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"
VOLATILE = [
    (re.compile(r"[0-9a-f]{64}"), "<hash>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?"), "<time>"),
    (re.compile(r"\d{8}T\d{12}Z"), "<stamp>"),
    (re.compile(r"\d+ bytes"), "<n> bytes"),
    (re.compile(r"in \d+\.\d\d s"), "in <n> s"),
    (re.compile(r"\[[0-9a-f]{8}\]"), "[<id>]"),
]


def mask(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def sessions() -> list[list[tuple[str, str]]]:
    """Each ```console block as (command, expected output) pairs."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), re.S):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        found.append([(command, "\n".join(lines)) for command, lines in steps])
    return found


def run(command: str, substitutions: dict[str, str]) -> tuple[int, str]:
    for placeholder, value in substitutions.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command)
    assert words[0] == "eventvault"
    result = run_cli(*words[1:])
    return result.code, (result.out + result.err).rstrip("\n")


def test_the_readme_story_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVENTVAULT_DB", raising=False)
    story, audit = sessions()
    for command, expected in story:
        _code, output = run(command, {})
        assert mask(output) == mask(expected), command

    # The audit session names a document of the README's own run by UUID: use ours with the
    # same title (the demo's titles are the same every run, their UUIDs are not).
    readme_document = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", audit[0][0]).group(0)
    title = re.search(r'^document \S+ "(.*)"$', audit[1][1], re.M).group(1)
    ours = next(json.loads(line) for line in run_cli("export").lines
                if f'"title":"{title}"' in line)
    document = ours["uuid"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    for command, expected in audit:
        moment = re.search(r"--at (\S+)", command)
        substitutions = {readme_document: document, **({moment.group(1): now} if moment else {})}
        code, output = run(command, substitutions)
        assert code == 0, output
        assert len(output.splitlines()) == len(expected.splitlines()), command
        assert mask(output).split()[:2] == mask(expected).split()[:2], command


def test_the_docs_link_nothing_outside_the_repository() -> None:
    root = README.parent
    for page in (README, *sorted((root / "docs").glob("*.md"))):
        text = page.read_text()
        targets = re.findall(r"\]\(([^)#\s]+)", text) + re.findall(r"`(\.\./[^`]+)`", text)
        for target in targets:
            if re.match(r"[a-z]+://", target):
                continue
            found = (page.parent / target).resolve()
            assert found.is_relative_to(root) and found.exists(), (page.name, target)
