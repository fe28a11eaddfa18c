"""SQLite state of the broker: sealed secrets, single-use challenges, spent tokens.

Consuming a challenge is one ``UPDATE ... SET used = used + 1 ... RETURNING`` and spending a
token one ``INSERT`` on a primary key: each is atomic in SQLite, so of two concurrent requests
with the same nonce or token exactly one wins, also across worker processes sharing the file
(WAL). Nonces are stored as SHA-256 digests; secrets only sealed under the KEK.

``synchronous=NORMAL`` (the default, ``broker.sqlite_synchronous``) does not fsync each commit
in WAL mode: nothing is lost when a process crashes, but a power loss can roll back the last
commits (a spent token or challenge could then be used once more within its TTL). ``FULL``
fsyncs every commit, at about ten times the cost per release.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gpufence.attest.broker.crypto import KeyEncryptionKey

__all__ = ["BrokerStore", "Challenge", "ConsumeResult"]

ConsumeResult = Literal["ok", "unknown", "expired", "replayed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    id TEXT PRIMARY KEY, sealed BLOB NOT NULL, kek TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (
    digest TEXT PRIMARY KEY, nonce BLOB NOT NULL, expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS spent_tokens (jti TEXT PRIMARY KEY, spent_at REAL NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Challenge:
    """An issued nonce and when it expires."""

    nonce: bytes
    expires_at: float


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BrokerStore:
    """The broker's database: secrets sealed under the KEK, and outstanding challenges."""

    def __init__(
        self, path: Path | str, kek: KeyEncryptionKey, *, synchronous: str = "NORMAL"
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.kek = kek

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- secrets ------------------------------------------------------------------------

    def put_secret(self, secret_id: str, plaintext: bytes, now: float) -> None:
        """Seal ``plaintext`` under the KEK and store it as ``secret_id``."""
        sealed = self.kek.seal(plaintext, secret_id.encode())
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO secrets VALUES (?, ?, ?, ?)",
                (secret_id, sealed, self.kek.name, now),
            )

    def get_secret(self, secret_id: str) -> bytes | None:
        """The secret ``secret_id`` unsealed, None when there is none."""
        with self._lock:
            row = self._db.execute(
                "SELECT sealed FROM secrets WHERE id = ?", (secret_id,)
            ).fetchone()
        if row is None:
            return None
        return self.kek.open(bytes(row[0]), secret_id.encode())

    def secret_ids(self) -> list[str]:
        """The IDs of stored secrets."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM secrets ORDER BY id")]

    # -- challenges ---------------------------------------------------------------------

    def add_challenge(self, nonce: bytes, expires_at: float) -> None:
        """Remember a nonce until ``expires_at``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO challenges (digest, nonce, expires_at) VALUES (?,?,?)",
                (_digest(nonce), nonce, expires_at),
            )

    def consume_challenge(self, nonce: bytes, now: float) -> tuple[ConsumeResult, Challenge | None]:
        """Mark the challenge used (once); say why not when it cannot be."""
        key = _digest(nonce)
        with self._lock:
            # Used even when expired: an expired nonce must not come back to life.
            row = self._db.execute(
                "UPDATE challenges SET used = used + 1 WHERE digest = ? "
                "RETURNING nonce, expires_at, used",
                (key,),
            ).fetchone()
        if row is None:
            return "unknown", None
        challenge = Challenge(bytes(row[0]), row[1])
        if row[2] > 1:
            return "replayed", challenge
        if now > challenge.expires_at:
            return "expired", challenge
        return "ok", challenge

    def purge(self, now: float) -> None:
        """Drop challenges that expired before ``now``."""
        with self._lock:
            self._db.execute("DELETE FROM challenges WHERE expires_at < ?", (now - 3600,))

    # -- tokens -------------------------------------------------------------------------

    def spend_token(self, jti: str, now: float) -> bool:
        """True the first time ``jti`` is spent, False on every replay."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO spent_tokens VALUES (?, ?)", (jti, now))
            except sqlite3.IntegrityError:
                return False
        return True
