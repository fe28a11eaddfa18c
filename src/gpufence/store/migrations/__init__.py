"""Alembic migrations of the findings store (run by :func:`gpufence.store.open_store`)."""
