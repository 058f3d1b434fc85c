"""Where a phase spends its time: sample it with py-spy and rank the lines and functions.

    python bench/hotspots.py replay --vault /tmp/evbench/source.db
    python bench/hotspots.py snapshot --vault /tmp/evbench/source.db
    python bench/hotspots.py append --events 50000

The phase runs exactly as in the benchmark (bench/child.py), under `py-spy record` (install it
with `pip install py-spy`). Printed: the share of samples spent *in* each source line (self
time, the line that was executing: for a C call such as executemany, the Python line that made
it), *under* each function (inclusive time), and per package (eventvault module, sqlalchemy,
msgpack, ...). The raw collapsed stacks are kept next to the package for flame graphs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
STDLIB = re.compile(r"/lib/python3\.\d+/")
PHASE_MODULES = ("bench/phases.py", "bench/workload.py", "bench/floor.py",
                 "bench/audit_latency.py")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    work = Path(options.workdir or tempfile.mkdtemp(prefix="eventvault-hotspots-"))
    work.mkdir(parents=True, exist_ok=True)
    phase, arguments = _phase(options, work)
    stacks = work / f"{options.phase}.stacks"
    command = ["py-spy", "record", "--format", "raw", "--rate", str(options.rate),
               "--full-filenames", "--output", str(stacks), "--",
               sys.executable, str(HERE / "child.py"), phase, json.dumps(arguments)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    # py-spy writes its own lines too; the child's result is the last JSON object.
    found = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not found:
        print(done.stderr, file=sys.stderr)
        return 1
    result = json.loads(found[-1])
    print(f"{options.phase}: {result.get('seconds', 0):.2f} s under the profiler, "
          f"peak RSS {result['rss_peak_mb']:.0f} MB; stacks in {stacks}")
    print(summary(stacks.read_text(), options.top))
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("append", "snapshot", "replay", "verify_package",
                                          "verify_vault"))
    parser.add_argument("--vault", metavar="PATH", help="a built vault (all but append)")
    parser.add_argument("--events", type=int, default=50_000, help="append: events to build")
    parser.add_argument("--batch", type=int, default=1000, help="append: commands a transaction")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=25, help="rows per ranking")
    parser.add_argument("--workdir", metavar="DIR", help="where packages and targets go")
    options = parser.parse_args(argv)
    if options.phase != "append" and not options.vault:
        parser.error(f"{options.phase} needs --vault PATH (a vault built by bench/run.py)")
    return options


def _phase(options: argparse.Namespace, work: Path) -> tuple[str, dict[str, object]]:
    """The child.py phase and arguments; a package is written first where one is needed."""
    url = f"sqlite:///{options.vault}"
    package = work / "profiled.evpkg"
    if options.phase in ("replay", "verify_package") and not package.exists():
        subprocess.run([sys.executable, str(HERE / "child.py"), "snapshot",
                        json.dumps({"url": url, "package": str(package)})],
                       check=True, capture_output=True)
    if options.phase == "append":
        target = work / "appended.db"
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        return "append", {"url": f"sqlite:///{target}", "events": options.events,
                          "batch": options.batch}
    if options.phase == "replay":
        target = work / "replayed.db"
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        return "replay", {"url": f"sqlite:///{target}", "package": str(package)}
    if options.phase == "snapshot":
        written = work / "snapshot.evpkg"
        written.unlink(missing_ok=True)
        return "snapshot", {"url": url, "package": str(written)}
    if options.phase == "verify_package":
        return "verify_package", {"package": str(package)}
    return "verify_vault", {"url": url}


# --- reading collapsed stacks ------------------------------------------------------------------

def summary(collapsed: str, top: int) -> str:
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(text) for text in stack.split(";")]
        if not any(_is_phase(function, file) for function, file, _ in frames):
            continue  # interpreter start and imports: not the phase's work
        total += count
        function, file, number = frames[-1]
        own[f"{_short(file)}:{number} {function}"] += count
        packages[_package(file)] += count
        for name in {f"{_short(file)} {function}" for function, file, _ in frames}:
            under[name] += count
    if not total:
        return "no samples"
    parts = [_ranking("self time by line (the line executing, C calls included)", own, total,
                      top),
             _ranking("inclusive time by function", under, total, top),
             _ranking("self time by package", packages, total, top)]
    return f"{total} samples in the phase itself\n\n" + "\n\n".join(parts)


def _is_phase(function: str, file: str) -> bool:
    return function != "<module>" and file.endswith(PHASE_MODULES)


def _ranking(title: str, counts: Counter[str], total: int, top: int) -> str:
    rows = [f"{100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]
    return "\n".join([title, *rows])


def _frame(text: str) -> tuple[str, str, str]:
    found = FRAME.match(text.strip())
    if found is None:
        return text, "?", "?"
    return found["function"], found["file"], found["line"] or "?"


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/src/"):
        if marker in file:
            return file.split(marker, 1)[1]
    stdlib = STDLIB.search(file)
    return f"stdlib/{file[stdlib.end():]}" if stdlib else file


def _package(file: str) -> str:
    short = _short(file)
    if short.startswith("eventvault/"):
        return short  # each module of ours on its own line
    return short.split("/", 1)[0] if "/" in short else short


if __name__ == "__main__":
    sys.exit(main())
