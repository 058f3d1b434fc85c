"""The `eventvault audit` commands (being written)."""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """Who changed what, when, and what everything looked like at a moment."""
