"""Append-only, hash-chained decision log in SQLite, and its verification.

Every entry stores ``hash = SHA-256(prev_hash || canonical JSON of the entry)``; the first entry
chains from 64 zeros. Editing, deleting or reordering any entry breaks the chain at that entry;
``gpufence broker audit-log verify`` reports the first broken sequence number and prints the head
hash, which operators should copy elsewhere (a chain cannot show that its newest entries were cut
off unless its head is anchored outside it). Secrets, keys and raw nonces are never logged: only
digests.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "verify_audit_log"]

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, event TEXT NOT NULL, decision TEXT NOT NULL,
    reason TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
"""


def _entry_hash(
    prev: str, seq: int, ts: float, event: str, decision: str, reason: str | None, detail: str
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
    return hashlib.sha256(prev.encode() + body.encode()).hexdigest()


class AuditLog:
    """The broker's append-only, hash-chained decision log (SQLite)."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

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
        """Append one decision, chained to the previous entry; returns the new entry's hash."""
        text = json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                digest = _entry_hash(prev, seq, ts, event, decision, reason, text)
                self._db.execute(
                    "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?)",
                    (seq, ts, event, decision, reason, text, prev, digest),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return digest

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


def verify_audit_log(path: Path) -> AuditVerification:
    """Recompute the chain; the first entry whose stored hashes disagree is reported."""
    if not path.is_file():
        raise FileNotFoundError(str(path))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT seq, ts, event, decision, reason, detail, prev_hash, hash "
            "FROM audit ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    prev = GENESIS
    expected_seq = 1
    for seq, ts, event, decision, reason, detail, prev_hash, digest in rows:
        if seq != expected_seq:
            return AuditVerification(
                False, expected_seq - 1, prev, seq, f"entry {expected_seq} is missing (found {seq})"
            )
        if prev_hash != prev:
            return AuditVerification(
                False, seq - 1, prev, seq, f"entry {seq} does not chain to entry {seq - 1}"
            )
        if _entry_hash(prev, seq, ts, event, decision, reason, detail) != digest:
            return AuditVerification(False, seq - 1, prev, seq, f"entry {seq} was modified")
        prev = digest
        expected_seq += 1
    return AuditVerification(True, len(rows), prev, None, f"{len(rows)} entries, chain intact")
