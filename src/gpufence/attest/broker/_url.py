"""``broker.database``: an SQLite file path, or a PostgreSQL URL (never printed with a password)."""

from __future__ import annotations

from gpufence.errors import InputError, redact_secrets

__all__ = ["is_database_url", "postgres_conninfo"]


def is_database_url(target: str) -> bool:
    """Whether ``broker.database`` names a server (``scheme://``) rather than an SQLite file."""
    return "://" in target


def postgres_conninfo(url: str) -> str:
    """A libpq URI from ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://``.

    The same schemes the findings store accepts (``--store``); any other is an InputError whose
    message shows the URL with its password redacted.
    """
    scheme, sep, rest = url.strip().partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql://{rest}"
    raise InputError(
        f"broker.database {redact_secrets(url)}: unsupported database; use a file path "
        "(SQLite, one host) or postgresql://USER@HOST/DB (several hosts)"
    )
