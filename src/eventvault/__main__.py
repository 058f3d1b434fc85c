"""`python -m eventvault` is the `eventvault` command."""

from eventvault.cli import main

raise SystemExit(main())
