"""Run the real `eventvault` console script with stderr (and stdin) on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

EVENTVAULT = Path(sys.executable).with_name("eventvault")


@dataclass
class TerminalRun:
    code: int
    out: str
    terminal: str  # everything written to the terminal: stderr (and the echo of stdin)


def on_terminal(*words: str, stdin: bool = False, typed: str = "",
                cwd: Path | None = None) -> TerminalRun:
    main, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [str(EVENTVAULT), *words], stdout=subprocess.PIPE, stderr=secondary,
        stdin=secondary if stdin else subprocess.DEVNULL, cwd=cwd,
    )
    os.close(secondary)
    if typed:
        os.write(main, typed.encode())
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    out = process.stdout.read().decode() if process.stdout else ""
    code = process.wait(timeout=120)
    return TerminalRun(code, out, b"".join(chunks).decode(errors="replace"))
