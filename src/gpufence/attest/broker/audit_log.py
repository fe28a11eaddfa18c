"""The broker's decision log: a chain keyed under the KEK, its signed head, and verification.

The entries live in the broker database (:mod:`gpufence.attest.broker.database`, table
``audit``), written in the same transaction as the state change they record. Every entry stores
``hash = HMAC-SHA256(K, prev_hash || canonical JSON of the entry)``, where
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gpufence.attest.broker._url import is_database_url, postgres_conninfo
from gpufence.attest.broker.crypto import KeyEncryptionKey, TokenError, TokenSigner
from gpufence.errors import redact_secrets

__all__ = [
    "FORMAT",
    "GENESIS",
    "AuditLogError",
    "AuditVerification",
    "audit_key",
    "check_meta",
    "decision_counts",
    "entry_hash",
    "meta_rows",
    "read_head",
    "sign_head",
    "verify_audit_log",
    "verify_chain",
]

T = TypeVar("T")

GENESIS = "0" * 64
FORMAT = "gpufence-broker/audit-log/v2 hmac-sha256"
AUDIT_KEY_INFO = b"gpufence-broker/audit-log/v2"
HEAD_FORMAT = "gpufence-broker/audit-head/v1"


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


def entry_hash(
    key: bytes,
    prev: str,
    seq: int,
    ts: float,
    event: str,
    decision: str,
    reason: str | None,
    detail: str,
) -> str:
    """``HMAC-SHA256(key, prev || canonical JSON of the entry)``: one link of the chain."""
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


def meta_rows(cursor: Any) -> dict[str, str]:
    """The ``audit_meta`` table (format, key id) read through a DB-API cursor."""
    return {
        str(n): str(v) for n, v in cursor.execute("SELECT name, value FROM audit_meta").fetchall()
    }


def check_meta(
    rows: Mapping[str, str],
    has_entries: bool,
    key: bytes,
    *,
    write: Callable[[list[tuple[str, str]]], object] | None = None,
) -> None:
    """Refuse a log in another format or chained under another key (AuditLogError).

    ``write`` records the format and key id in an empty log (None: read only).
    """
    if not rows:
        if has_entries:
            raise AuditLogError(
                "the audit log has entries but no key record: it predates keyed chaining "
                "(gpufence < issue 12); archive it and start a new one"
            )
        if write is not None:
            write([("format", FORMAT), ("key_id", _key_id(key))])
        return
    if rows.get("format") != FORMAT:
        raise AuditLogError(f"unknown audit log format {rows.get('format')!r}")
    if rows.get("key_id") != _key_id(key):
        raise AuditLogError("the audit log was chained under another KEK (key id differs)")


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


def _read_only(target: Path | str, query: Callable[[Any], T]) -> T:
    """``query(cursor)`` on the broker database ``target`` opened read-only (one snapshot)."""
    if isinstance(target, str) and is_database_url(target):
        return _postgres_read(target, query)
    path = Path(target)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return query(db)
    finally:
        db.close()


def _postgres_read(url: str, query: Callable[[Any], T]) -> T:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the installation
        raise AuditLogError("psycopg is not installed: pip install 'gpufence[broker]'") from None
    try:
        with psycopg.connect(postgres_conninfo(url)) as db, db.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return query(cur)
    except psycopg.Error as exc:
        reason = redact_secrets(str(exc).strip().splitlines()[0] if str(exc) else repr(exc))
        raise AuditLogError(f"cannot read {redact_secrets(url)}: {reason}") from None


def _chain_rows(key: bytes) -> Callable[[Any], list[tuple[Any, ...]]]:
    def query(cur: Any) -> list[tuple[Any, ...]]:
        has_entries = cur.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None
        check_meta(meta_rows(cur), has_entries, key)
        return [tuple(r) for r in cur.execute(_CHAIN_ROWS).fetchall()]

    return query


def decision_counts(target: Path | str) -> list[tuple[str, str, str, int, float]]:
    """(event, decision, reason or '', entries, newest ts) over the log in ``target`` (an
    SQLite path or a PostgreSQL URL), read-only; for the exporter's metrics."""

    def query(cur: Any) -> list[tuple[str, str, str, int, float]]:
        rows = cur.execute(
            "SELECT event, decision, COALESCE(reason, ''), COUNT(*), MAX(ts) "
            "FROM audit GROUP BY event, decision, reason"
        ).fetchall()
        return [(str(e), str(d), str(r), int(n), float(ts)) for e, d, r, n, ts in rows]

    return _read_only(target, query)


_CHAIN_ROWS = (
    "SELECT seq, ts, event, decision, reason, detail, prev_hash, hash FROM audit ORDER BY seq"
)


def verify_audit_log(
    target: Path | str, key: bytes, *, head: tuple[int, str] | None = None
) -> AuditVerification:
    """Recompute the keyed chain of the broker database ``target`` (an SQLite path or a
    PostgreSQL URL); with ``head`` (entries, hash) also check nothing was cut off.

    Raises FileNotFoundError, AuditLogError (not a keyed log, another key, a server that cannot
    be read) or sqlite3.DatabaseError; a tampered log is a result with ``ok`` False.
    """
    return verify_chain(_read_only(target, _chain_rows(key)), key, head=head)


def verify_chain(
    rows: Sequence[tuple[Any, ...]], key: bytes, *, head: tuple[int, str] | None = None
) -> AuditVerification:
    """Recompute the chain over ``rows`` (seq, ts, event, decision, reason, detail, prev_hash,
    hash, in seq order)."""
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
        if entry_hash(key, prev, seq, ts, event, decision, reason, detail) != digest:
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
