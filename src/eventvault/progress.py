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
    """A callback drawing a bar for `label`, or None when nothing is to be drawn.

    The bar is closed (its last state left on its own line) however the block ends, so an
    error message never runs into it.
    """
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, desc=label, unit=f" {unit}",
                             file=sys.stderr, mininterval=REDRAW_SECONDS,
                             dynamic_ncols=True, leave=True))
        bar = bars[0]
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bars:
            bars[0].close()
