"""Alembic revisions of the findings store schema, oldest first."""
