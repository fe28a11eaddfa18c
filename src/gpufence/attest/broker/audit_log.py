"""Append-only decision log in SQLite, chained under a key only the broker holds, and its head.

Every entry stores ``hash = HMAC-SHA256(K, prev_hash || canonical JSON of the entry)``, where
``K = HKDF-SHA256(KEK, info="gpufence-broker/audit-log/v2")``: editing, deleting or reordering
an entry breaks the chain at that entry, and so does rewriting entries and recomputing the chain
without ``K`` (a plain SHA-256 chain could be recomputed by anyone who can write the database).

What a chain cannot show on its own is that its newest entries, or all of them, were removed.
``gpufence broker audit-log head`` exports a **head** (entry count + hash of that entry, signed
ES384 with the broker's token-signing key) to be kept outside the database (a ticket, a WORM
bucket, another team's log); ``audit-log verify --head FILE`` then also refuses a log with fewer
entries than the head names, or whose entry at that position differs from it.

Secrets, keys and raw nonces are never logged: only digests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpufence.attest.broker.crypto import KeyEncryptionKey, TokenError, TokenSigner

__all__ = [
    "FORMAT",
    "GENESIS",
    "AuditLog",
    "AuditLogError",
    "AuditVerification",
    "audit_key",
    "read_head",
    "sign_head",
    "verify_audit_log",
]

GENESIS = "0" * 64
FORMAT = "gpufence-broker/audit-log/v2 hmac-sha256"
AUDIT_KEY_INFO = b"gpufence-broker/audit-log/v2"
HEAD_FORMAT = "gpufence-broker/audit-head/v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, event TEXT NOT NULL, decision TEXT NOT NULL,
    reason TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _synchronous(mode: str) -> str:
    if mode.upper() not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {mode!r}")
    return mode.upper()


class AuditLogError(ValueError):
    """The file is not a keyed gpufence audit log, or the key is not the one it was written with."""


def audit_key(kek: KeyEncryptionKey) -> bytes:
    """The chain key: HKDF-SHA256 from the broker's KEK (never stored)."""
    return kek.derive_key(AUDIT_KEY_INFO)


def sign_head(signer: TokenSigner, entries: int, digest: str, now: float) -> dict[str, Any]:
    """The exportable head: count + hash of that entry, ES384-signed by the broker's key."""
    claims = {"typ": HEAD_FORMAT, "entries": entries, "hash": digest, "iat": int(now)}
    return {
        "format": HEAD_FORMAT,
        "entries": entries,
        "hash": digest,
        "signed_at": int(now),
        "kid": signer.kid,
        "jws": signer.sign(claims),
    }


def read_head(data: bytes, signer: TokenSigner) -> tuple[int, str]:
    """(entries, hash) from an exported head, after checking its signature (AuditLogError)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditLogError(f"not a head file (JSON): {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != HEAD_FORMAT:
        raise AuditLogError(f"not a head file (format is not {HEAD_FORMAT})")
    try:
        claims = signer.verify_signature(str(doc.get("jws", "")))
    except TokenError as exc:
        raise AuditLogError(f"the head's signature is not the broker's: {exc}") from None
    entries, digest = claims.get("entries"), claims.get("hash")
    if claims.get("typ") != HEAD_FORMAT or not isinstance(entries, int) or entries < 0:
        raise AuditLogError("the head's signed claims are not an audit head")
    if not isinstance(digest, str) or (entries, digest) != (doc.get("entries"), doc.get("hash")):
        raise AuditLogError("the head's readable fields differ from what was signed")
    return entries, digest


def _key_id(key: bytes) -> str:
    # Names the key without revealing it: tells "wrong KEK" apart from "tampered".
    return hmac.new(key, b"gpufence audit key id", hashlib.sha256).hexdigest()[:16]


def _entry_hash(
    key: bytes,
    prev: str,
    seq: int,
    ts: float,
    event: str,
    decision: str,
    reason: str | None,
    detail: str,
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "ts": ts,
            "event": event,
            "decision": decision,
            "reason": reason,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, prev.encode() + body.encode(), hashlib.sha256).hexdigest()


def _check_meta(db: sqlite3.Connection, key: bytes, *, create: bool) -> None:
    rows = dict(db.execute("SELECT name, value FROM audit_meta").fetchall())
    if not rows:
        if db.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None:
            raise AuditLogError(
                "the audit log has entries but no key record: it predates keyed chaining "
                "(gpufence < issue 12); archive it and start a new one"
            )
        if create:
            db.executemany(
                "INSERT OR IGNORE INTO audit_meta VALUES (?, ?)",
                [("format", FORMAT), ("key_id", _key_id(key))],
            )
        return
    if rows.get("format") != FORMAT:
        raise AuditLogError(f"unknown audit log format {rows.get('format')!r}")
    if rows.get("key_id") != _key_id(key):
        raise AuditLogError("the audit log was chained under another KEK (key id differs)")


_APPEND = """
INSERT INTO audit (seq, ts, event, decision, reason, detail, prev_hash, hash)
SELECT last.seq + 1, ?1, ?2, ?3, ?4, ?5, last.hash,
       audit_mac(last.hash, last.seq + 1, ?1, ?2, ?3, ?4, ?5)
FROM (SELECT COALESCE(MAX(seq), 0) AS seq,
             COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?6) AS hash
      FROM audit) AS last
RETURNING hash
"""


class AuditLog:
    """Appends entries; safe across threads and processes (one SQLite statement each)."""

    def __init__(self, path: Path | str, key: bytes, *, synchronous: str = "NORMAL") -> None:
        self._key = key
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={_synchronous(synchronous)}")
        self._db.create_function(
            "audit_mac",
            7,
            lambda prev, seq, ts, event, decision, reason, detail: _entry_hash(
                key, prev, seq, ts, event, decision, reason, detail
            ),
            deterministic=True,
        )
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _check_meta(self._db, key, create=True)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._db.close()
                raise

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def append(
        self,
        event: str,
        decision: str,
        *,
        ts: float,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> str:
        """One INSERT ... RETURNING: SQLite holds the write lock for the statement, so the next
        sequence number and the previous hash are read and chained atomically, also across
        processes sharing the file (the HMAC runs inside the statement)."""
        text = json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"))
        with self._lock:
            row = self._db.execute(_APPEND, (ts, event, decision, reason, text, GENESIS)).fetchone()
        return str(row[0])

    def head(self) -> tuple[int, str]:
        """(entries, hash of the newest entry); (0, GENESIS) for an empty log."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry in order."""
        with self._lock:
            rows = self._db.execute(
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


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The result of recomputing the chain: intact or where it breaks."""

    ok: bool
    entries: int
    head: str
    """Hash of the last entry that verified (GENESIS for an empty log)."""
    first_bad_seq: int | None
    detail: str
    anchored: int | None = None
    """The entry count of the head it was checked against (None: no head given)."""


def verify_audit_log(
    path: Path, key: bytes, *, head: tuple[int, str] | None = None
) -> AuditVerification:
    """Recompute the keyed chain; with ``head`` (entries, hash) also check nothing was cut off.

    Raises FileNotFoundError, AuditLogError (not a keyed log, or another key) or
    sqlite3.DatabaseError; a tampered log is a result with ``ok`` False.
    """
    if not path.is_file():
        raise FileNotFoundError(str(path))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        _check_meta(db, key, create=False)
        rows = db.execute(
            "SELECT seq, ts, event, decision, reason, detail, prev_hash, hash "
            "FROM audit ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    anchored = head[0] if head else None
    prev = GENESIS
    expected_seq = 1
    for seq, ts, event, decision, reason, detail, prev_hash, digest in rows:
        if seq != expected_seq:
            return AuditVerification(
                False,
                expected_seq - 1,
                prev,
                seq,
                f"entry {expected_seq} is missing (found {seq})",
                anchored,
            )
        if prev_hash != prev:
            return AuditVerification(
                False,
                seq - 1,
                prev,
                seq,
                f"entry {seq} does not chain to entry {seq - 1}",
                anchored,
            )
        if _entry_hash(key, prev, seq, ts, event, decision, reason, detail) != digest:
            return AuditVerification(
                False, seq - 1, prev, seq, f"entry {seq} was modified", anchored
            )
        if head is not None and seq == head[0] and digest != head[1]:
            return AuditVerification(
                False,
                seq - 1,
                prev,
                seq,
                f"entry {seq} is not the entry the head anchored (the log was rewritten)",
                anchored,
            )
        prev = digest
        expected_seq += 1
    count = len(rows)
    if head is not None and count < head[0]:
        return AuditVerification(
            False,
            count,
            prev,
            count + 1,
            f"the log has {count} entries but the head anchored {head[0]}: "
            f"entries {count + 1}..{head[0]} were removed",
            anchored,
        )
    detail = f"{count} entries, chain intact"
    if head is not None:
        detail += f", consistent with the head at entry {head[0]}"
    return AuditVerification(True, count, prev, None, detail, anchored)
