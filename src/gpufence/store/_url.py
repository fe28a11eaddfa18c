"""Store URLs: the default embedded store, the accepted schemes, and redaction for messages."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from gpufence.errors import InputError

__all__ = ["DEFAULT_STORE", "default_store_path", "redact", "resolve_store_url"]

DEFAULT_STORE = "default"
"""``--store default``: SQLite at :func:`default_store_path`."""

_SENSITIVE_QUERY = ("password", "passfile", "sslpassword", "sslkey", "token", "secret")


def default_store_path() -> Path:
    """``$XDG_STATE_HOME/gpufence/store.db`` (``~/.local/state/gpufence/store.db`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gpufence" / "store.db"


def redact(url: str) -> str:
    """``url`` with any password (in the authority or the query) replaced by ``***``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not a URL at all (a path): nothing to hide, except a user:password@ lookalike.
        return url.split("@", 1)[-1] if "@" in url and "://" in url else url
    return _redacted(parsed)


def _redacted(parsed: URL) -> str:
    query = {
        key: ("***" if any(word in key.lower() for word in _SENSITIVE_QUERY) else value)
        for key, value in parsed.query.items()
    }
    shown = parsed.set(query=query)
    return shown.render_as_string(hide_password=True)


def resolve_store_url(store: str) -> URL:
    """The SQLAlchemy URL for ``--store``: 'default', a file path, sqlite:///, postgresql://.

    ``postgresql://`` and ``postgres://`` use psycopg 3; any other scheme is an input error.
    """
    text = store.strip()
    if text == DEFAULT_STORE:
        path = default_store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite", database=str(path))
    if "://" not in text:
        # A plain path names an SQLite file.
        return URL.create("sqlite", database=str(Path(text).expanduser()))
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise InputError(f"--store {redact(text)}: not a store URL: {exc}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername != "sqlite":
            raise InputError(f"--store {redact(text)}: use sqlite:///PATH (no driver)")
        return url
    if backend in ("postgresql", "postgres"):
        if url.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise InputError(
                f"--store {redact(text)}: the PostgreSQL driver is psycopg 3: "
                "use postgresql://USER@HOST/DB"
            )
        return url.set(drivername="postgresql+psycopg")
    raise InputError(
        f"--store {redact(text)}: unsupported store; use 'default', a file path, "
        "sqlite:///PATH or postgresql://USER@HOST/DB"
    )
