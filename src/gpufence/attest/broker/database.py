"""The broker's one database: sealed secrets, single-use challenges, spent tokens, decision log.

Every state change and the audit entry that records it commit in **one transaction**: issuing a
challenge, consuming it with the attest decision, spending a token with the release. A crash (or
an error while chaining) can therefore never leave a spent token without its log entry, nor an
entry for a release that did not happen.

Backends:

* **SQLite** (a file path, the default, one host): ``BEGIN IMMEDIATE`` takes the database's
  write lock before the transaction reads the chain head, so appends from several worker
  processes sharing the file (WAL) are serialized and the chain cannot fork.
  ``synchronous=FULL`` (the default, ``broker.sqlite_synchronous``) fsyncs every commit, so a
  power loss cannot roll back a spent token; ``NORMAL`` (opt-in) skips that fsync in WAL mode.
* **PostgreSQL** (``postgresql://USER@HOST[:PORT]/DB``, psycopg 3; several broker hosts): each
  decision transaction takes the transaction-scoped advisory lock :data:`CHAIN_LOCK` before it
  reads the chain head. A challenge is consumed by ``UPDATE ... RETURNING`` (row lock) and a
  token spent by ``INSERT ... ON CONFLICT DO NOTHING`` on its primary key, so of two hosts racing
  on the same nonce or token exactly one wins. The password comes from libpq's usual places
  (``PGPASSWORD``, ``~/.pgpass``, ``passfile=``): a URL is never printed with its password.

Nonces are stored as SHA-256 digests (the raw nonce beside it, to check expiry); secrets only
sealed under the KEK; the log holds digests, never secrets, keys or raw nonces.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from gpufence.attest.broker._url import is_database_url, postgres_conninfo
from gpufence.attest.broker.audit_log import GENESIS, check_meta, entry_hash, meta_rows
from gpufence.attest.broker.crypto import KeyEncryptionKey
from gpufence.errors import InputError, redact_secrets

__all__ = [
    "CHAIN_LOCK",
    "AuditEntry",
    "BrokerDatabase",
    "Challenge",
    "ConsumeResult",
    "DatabaseUnavailable",
    "is_database_url",
    "open_broker_database",
    "postgres_conninfo",
]

ConsumeResult = Literal["ok", "unknown", "expired", "replayed"]

CHAIN_LOCK = 0x6770_6663_6175_6474  # "gpfcaudt": pg_advisory_xact_lock key of the chain head

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    id TEXT PRIMARY KEY, sealed BLOB NOT NULL, kek TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (
    digest TEXT PRIMARY KEY, nonce BLOB NOT NULL, expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS spent_tokens (jti TEXT PRIMARY KEY, spent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, event TEXT NOT NULL, decision TEXT NOT NULL,
    reason TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_POSTGRES_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS secrets (id TEXT PRIMARY KEY, sealed BYTEA NOT NULL, "
    "kek TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS challenges (digest TEXT PRIMARY KEY, nonce BYTEA NOT NULL, "
    "expires_at DOUBLE PRECISION NOT NULL, used INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS spent_tokens (jti TEXT PRIMARY KEY, "
    "spent_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, "
    "event TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT, detail TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


class DatabaseUnavailable(Exception):
    """The database cannot be used right now (locked past the timeout, I/O error, the server
    went away); nothing of the transaction was committed. The message is safe to print."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """An issued nonce and when it expires."""

    nonce: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One decision for the log (``detail`` is stored as canonical JSON)."""

    event: str
    decision: str
    ts: float
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BrokerDatabase(ABC):
    """Secrets, challenges, spent tokens and the keyed decision log, in one database.

    Use :func:`open_broker_database`. Thread-safe (one connection behind a lock) and safe across
    processes and hosts sharing the database (see the module docstring).
    """

    placeholder = "?"

    def __init__(self, kek: KeyEncryptionKey, key: bytes, shown: str) -> None:
        self.kek = kek
        self._key = key
        self.shown = shown
        """The database's name with any password redacted: safe to print."""
        self._lock = threading.Lock()

    # -- backend hooks ------------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[_Cursor]:
        """A cursor in one transaction: committed on exit, rolled back on an exception."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[_Cursor]:
        """A cursor for reads."""

    @abstractmethod
    def _lock_chain(self, cur: _Cursor) -> None:
        """Serialize chain appends across processes and hosts, inside a transaction."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _setup_meta(self) -> None:
        with self._transaction() as cur:
            self._lock_chain(cur)
            check_meta(
                meta_rows(cur),
                cur.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None,
                self._key,
                write=lambda rows: [
                    cur.execute(
                        self._sql("INSERT INTO audit_meta VALUES (?, ?) ON CONFLICT DO NOTHING"),
                        row,
                    )
                    for row in rows
                ],
            )

    # -- the chain ----------------------------------------------------------------------

    def _append(self, cur: _Cursor, entry: AuditEntry) -> str:
        """Chain ``entry`` after the head, inside the caller's transaction."""
        self._lock_chain(cur)
        row = cur.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        detail = json.dumps(dict(entry.detail), sort_keys=True, separators=(",", ":"))
        digest = entry_hash(
            self._key, prev, seq, entry.ts, entry.event, entry.decision, entry.reason, detail
        )
        cur.execute(
            self._sql("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            (seq, entry.ts, entry.event, entry.decision, entry.reason, detail, prev, digest),
        )
        return digest

    def append(self, entry: AuditEntry) -> str:
        """Append one decision that changes no state (a refusal); returns its hash."""
        with self._transaction() as cur:
            return self._append(cur, entry)

    def head(self) -> tuple[int, str]:
        """(entries, hash of the newest entry); (0, GENESIS) for an empty log."""
        with self._read() as cur:
            row = cur.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry in order."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT seq, ts, event, decision, reason, detail FROM audit ORDER BY seq"
            ).fetchall()
        return [
            {
                "seq": r[0],
                "ts": r[1],
                "event": r[2],
                "decision": r[3],
                "reason": r[4],
                "detail": json.loads(r[5]),
            }
            for r in rows
        ]

    def chain_rows(self) -> list[tuple[Any, ...]]:
        """Every entry with its stored hashes, for :func:`audit_log.verify_chain`."""
        with self._read() as cur:
            return [
                tuple(r)
                for r in cur.execute(
                    "SELECT seq, ts, event, decision, reason, detail, prev_hash, hash "
                    "FROM audit ORDER BY seq"
                ).fetchall()
            ]

    # -- secrets ------------------------------------------------------------------------

    def put_secret(self, secret_id: str, plaintext: bytes, entry: AuditEntry) -> None:
        """Seal ``plaintext`` under the KEK, store it as ``secret_id`` and log ``entry``."""
        sealed = self.kek.seal(plaintext, secret_id.encode())
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO secrets VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "sealed = excluded.sealed, kek = excluded.kek, created_at = excluded.created_at"
                ),
                (secret_id, sealed, self.kek.name, entry.ts),
            )
            self._append(cur, entry)

    def get_secret(self, secret_id: str) -> bytes | None:
        """The secret ``secret_id`` unsealed, None when there is none."""
        with self._read() as cur:
            row = cur.execute(
                self._sql("SELECT sealed FROM secrets WHERE id = ?"), (secret_id,)
            ).fetchone()
        if row is None:
            return None
        return self.kek.open(bytes(row[0]), secret_id.encode())

    def secret_ids(self) -> list[str]:
        """The IDs of stored secrets."""
        with self._read() as cur:
            return [str(r[0]) for r in cur.execute("SELECT id FROM secrets ORDER BY id").fetchall()]

    # -- challenges ---------------------------------------------------------------------

    def issue_challenge(self, nonce: bytes, expires_at: float, entry: AuditEntry) -> None:
        """Remember ``nonce`` until ``expires_at`` and log ``entry``, in one transaction."""
        with self._transaction() as cur:
            cur.execute(
                self._sql("INSERT INTO challenges (digest, nonce, expires_at) VALUES (?, ?, ?)"),
                (_digest(nonce), nonce, expires_at),
            )
            self._append(cur, entry)

    def challenge_state(self, nonce: bytes, now: float) -> ConsumeResult:
        """What consuming ``nonce`` now would give, without consuming it (a cheap early check)."""
        with self._read() as cur:
            row = cur.execute(
                self._sql("SELECT expires_at, used FROM challenges WHERE digest = ?"),
                (_digest(nonce),),
            ).fetchone()
        return _state(row, now)

    def consume_challenge(
        self, nonce: bytes, now: float, entry: Callable[[ConsumeResult], AuditEntry]
    ) -> ConsumeResult:
        """Mark the challenge used and log ``entry(state)`` in one transaction; the state.

        Only the first consumption is ``ok``; an expired challenge is marked used too, so an
        expired nonce never comes back to life.
        """
        with self._transaction() as cur:
            row = cur.execute(
                self._sql(
                    "UPDATE challenges SET used = used + 1 WHERE digest = ? "
                    "RETURNING expires_at, used"
                ),
                (_digest(nonce),),
            ).fetchone()
            state = _state(None if row is None else (row[0], row[1] - 1), now)
            self._append(cur, entry(state))
        return state

    def purge(self, now: float) -> None:
        """Drop challenges that expired more than an hour before ``now``."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM challenges WHERE expires_at < ?"), (now - 3600,))

    # -- tokens -------------------------------------------------------------------------

    def spend_token(
        self,
        jti: str,
        now: float,
        entry: Callable[[bool], AuditEntry],
    ) -> bool:
        """Spend ``jti`` and log ``entry(first)`` in one transaction; True the first time only."""
        with self._transaction() as cur:
            cur.execute(
                self._sql("INSERT INTO spent_tokens VALUES (?, ?) ON CONFLICT DO NOTHING"),
                (jti, now),
            )
            first = cur.rowcount == 1
            self._append(cur, entry(first))
        return first


def _state(row: Any, now: float) -> ConsumeResult:
    """The state of a challenge row (expires_at, times used before) at ``now``."""
    if row is None:
        return "unknown"
    if row[1] > 0:
        return "replayed"
    if now > row[0]:
        return "expired"
    return "ok"


_LOCK_WAIT_S = 30.0


def _begin_immediate(cur: _Cursor) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in steps of 50 us to 1 ms.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries: with several worker
    processes committing a few hundred decisions a second, a worker that met the lock held for
    a fraction of a millisecond slept for milliseconds (the event loop with it), and two
    workers served little more than one. The statements after BEGIN keep the 30 s timeout.
    """
    deadline = time.monotonic() + _LOCK_WAIT_S
    pause = 0.00005
    cur.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
    finally:
        cur.execute(f"PRAGMA busy_timeout={int(_LOCK_WAIT_S * 1000)}")


class _SqliteDatabase(BrokerDatabase):
    def __init__(self, path: Path, kek: KeyEncryptionKey, key: bytes, *, synchronous: str) -> None:
        super().__init__(kek, key, str(path))
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=_LOCK_WAIT_S
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SQLITE_SCHEMA)
            self._setup_meta()
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self._lock:
            cur = self._db.cursor()
            try:
                # IMMEDIATE: the write lock is taken now, before the head is read (no fork).
                _begin_immediate(cur)
            except sqlite3.OperationalError as exc:  # locked past the timeout, I/O error
                raise DatabaseUnavailable(f"{self.shown}: {exc}") from None
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise DatabaseUnavailable(f"{self.shown}: {exc}") from None
                raise

    @contextmanager
    def _read(self) -> Iterator[_Cursor]:
        with self._lock:
            yield self._db.cursor()

    def _lock_chain(self, cur: _Cursor) -> None:
        """Nothing to do: BEGIN IMMEDIATE took the database's write lock already."""

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class _PostgresDatabase(BrokerDatabase):
    placeholder = "%s"

    def __init__(self, url: str, kek: KeyEncryptionKey, key: bytes) -> None:
        super().__init__(kek, key, redact_secrets(url))
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the installation
            raise InputError(
                "broker.database is a PostgreSQL URL but psycopg is not installed: "
                "pip install 'gpufence[broker]'"
            ) from None
        self._psycopg = psycopg
        self._conninfo = postgres_conninfo(url)
        try:
            self._db = self._connect()
        except DatabaseUnavailable as exc:
            raise InputError(str(exc)) from None
        with self._transaction() as cur:
            # Concurrent first starts on several hosts: one creates the tables at a time.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            for statement in _POSTGRES_SCHEMA:
                cur.execute(statement)
        self._setup_meta()

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self._conninfo, autocommit=True)
        except self._psycopg.Error as exc:
            raise DatabaseUnavailable(self._reason("cannot connect", exc)) from None

    def _reason(self, what: str, exc: BaseException) -> str:
        # libpq messages name host and user, never the password; redact anyway.
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return f"broker.database {self.shown}: {what}: {redact_secrets(text)}"

    def _lock_chain(self, cur: _Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))

    @contextmanager
    def _cursor(self, *, transaction: bool) -> Iterator[_Cursor]:
        with self._lock:
            if self._db.closed or self._db.broken:
                self._db = self._connect()  # the server came back (or another one answers)
            try:
                if transaction:
                    with self._db.transaction(), self._db.cursor() as cur:
                        yield cur
                else:
                    with self._db.cursor() as cur:
                        yield cur
            except self._psycopg.OperationalError as exc:  # connection lost, server shut down
                raise DatabaseUnavailable(self._reason("unavailable", exc)) from None

    def _transaction(self) -> AbstractContextManager[_Cursor]:
        return self._cursor(transaction=True)

    def _read(self) -> AbstractContextManager[_Cursor]:
        # Reads are single statements: autocommit, one round trip (no BEGIN/COMMIT).
        return self._cursor(transaction=False)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


def open_broker_database(
    target: str | Path,
    kek: KeyEncryptionKey,
    key: bytes,
    *,
    synchronous: str = "FULL",
) -> BrokerDatabase:
    """Open (creating the tables) the broker database: an SQLite path or a PostgreSQL URL.

    ``key`` chains the decision log (:func:`audit_log.audit_key`); AuditLogError when the
    database holds a log chained under another key or in an older format.
    """
    if isinstance(target, str) and is_database_url(target):
        return _PostgresDatabase(target, kek, key)
    return _SqliteDatabase(Path(target), kek, key, synchronous=synchronous)
