"""Alembic environment: migrate on the connection the store hands over (no ini file, no logging
setup: the store runs migrations itself when it opens)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from gpufence.store._schema import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("gpufence store migrations run through gpufence.store.open_store()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
