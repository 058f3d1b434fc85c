"""The command line: thin click commands, one module per group, over the library.

`root.py` holds the `eventvault` group and `main` (errors become one line and an exit code);
`context.py` what the commands share. No module here imports SQLAlchemy at import time:
`eventvault --help` and `--version` load none of the database layers.
"""

from eventvault.cli.root import cli, main

__all__ = ["cli", "main"]
