"""Alembic migrations, installed as the package `eventvault.migrations`."""
