"""Progress of long commands, drawn on stderr when it is a terminal and never otherwise.

The library only calls a `Progress` callback, `(done, total)`, after each batch; drawing is
done here, by tqdm: it throttles redraws (a few a second), shows count, total, rate and time
left, fits the terminal's width, and leaves a final line at 100 %. It is imported only when
a bar is drawn, so scripts and cron jobs (stderr not a terminal) never pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Progress = Callable[[int, int], None]  # (done, total): what the library reports

REDRAW_SECONDS = 0.25


@contextmanager
def shown(label: str, unit: str, *, quiet: bool = False) -> Iterator[Progress | None]:
    """A callback drawing a bar for `label`, or None when nothing is to be drawn; `unit`
    "B" counts bytes (shown as kB, MB...).

    The bar is closed (its last state left on its own line) when it reaches its total, so
    the next bar starts on a line of its own, and however the block ends, so an error
    message never runs into it. A count that starts again below its end opens a new one.
    """
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None  # the open bar
    ended: tuple[int, int] | None = None  # where the last one closed

    def update(done: int, total: int) -> None:
        nonlocal bar, ended
        if bar is None:
            if ended is not None and total == ended[1] and done >= ended[0]:
                return  # its end told again, or counted past it (a bad object's extra bytes)
            from tqdm import tqdm

            in_bytes = unit == "B"
            bar = tqdm(total=total, desc=label, unit=unit if in_bytes else f" {unit}",
                       unit_scale=in_bytes, file=sys.stderr,
                       mininterval=REDRAW_SECONDS, dynamic_ncols=True, leave=True)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar, ended = None, (done, total)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
