"""The findings store: every recorded run with its inputs, policy and findings by fingerprint.

SQLite by default (``--store default``: ``$XDG_STATE_HOME/gpufence/store.db``), PostgreSQL for
teams (``postgresql://USER@HOST/DB``, psycopg 3). The schema is migrated by Alembic when a store
opens. URLs are never stored, and any password in them is redacted in every message.

Layer: beside ``load`` (reads and writes what users keep); imports model and errors only.
"""

from gpufence.store._store import (
    EvidenceStamp,
    FindingsStore,
    NewRun,
    digest_inputs,
    open_store,
)
from gpufence.store._url import DEFAULT_STORE, default_store_path, redact, resolve_store_url

__all__ = [
    "DEFAULT_STORE",
    "EvidenceStamp",
    "FindingsStore",
    "NewRun",
    "default_store_path",
    "digest_inputs",
    "open_store",
    "redact",
    "resolve_store_url",
]
