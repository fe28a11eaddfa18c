"""The keyed audit chain and its signed head: the four tamper cases of issue 12.

Each case is run through the CLI (`gpufence broker audit-log head` / `verify --head`) on a log a
real broker wrote; each must exit 1 (TAMPERED), and the untouched log must exit 0.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gpufence.attest.broker.audit_log import GENESIS, entry_hash
from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.config import load_broker_config
from gpufence.attest.broker.database import AuditEntry
from gpufence.attest.broker.service import BrokerService, Refusal
from gpufence.cli import main

from .brokerkit import SECRET, BrokerKit, make_broker_kit


@pytest.fixture
def written(tmp_path: Path) -> BrokerKit:
    """A log with allowed and refused decisions, written by the broker itself."""
    kit = make_broker_kit(tmp_path)
    svc = BrokerService.from_config(load_broker_config(kit.config))
    try:
        svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", 0.0))
        requester = Requester()
        for tamper in (False, True, False):
            nonce = str(svc.challenge()["nonce"])
            evidence = kit.evidence(requester.gpu_nonce(nonce), tamper=tamper)
            try:
                token = svc.attest(nonce, requester.public_pem, evidence)["token"]
                svc.release(f"Bearer {token}", "weights")
            except Refusal:
                pass
    finally:
        svc.close()
    return kit


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["broker", "audit-log", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _head(kit: BrokerKit, capsys: pytest.CaptureFixture[str]) -> Path:
    head = kit.config.parent / "head.json"
    code, text = _cli(capsys, "head", "--config", str(kit.config), "-o", str(head))
    assert code == 0, text
    return head


def _rows(kit: BrokerKit) -> list[tuple]:  # type: ignore[type-arg]
    return sqlite3.connect(kit.audit_log).execute("SELECT * FROM audit ORDER BY seq").fetchall()


def _rechain(kit: BrokerKit, entry_hash: Callable[..., str], edit: Callable[[list], None]) -> None:  # type: ignore[type-arg]
    """Rewrite entries with ``edit`` and recompute every hash with ``entry_hash``."""
    rows = [list(r) for r in _rows(kit)]
    edit(rows)
    prev = GENESIS
    for row in rows:
        seq, ts, event, decision, reason, detail = row[:6]
        row[6] = prev
        row[7] = prev = entry_hash(prev, seq, ts, event, decision, reason, detail)
    db = sqlite3.connect(kit.audit_log)
    db.execute("DELETE FROM audit")
    db.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?)", rows)
    db.commit()


def _flip_refusal(rows: list) -> None:  # type: ignore[type-arg]
    row = next(r for r in rows if r[3] == "refused")
    row[3], row[4] = "allowed", None


def _sha256_chain(prev: str, *fields: object) -> str:
    names = ("seq", "ts", "event", "decision", "reason", "detail")
    body = json.dumps(
        dict(zip(names, fields, strict=True)),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(prev.encode() + body.encode()).hexdigest()


def test_intact_log_verifies_against_its_head(
    written: BrokerKit, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _head(written, capsys)
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 0 and "OK" in text and "consistent with the head" in text
    # The log keeps growing after the head was exported: still consistent.
    svc = BrokerService.from_config(load_broker_config(written.config))
    svc.challenge()
    svc.close()
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 0, text


def test_edited_entry(written: BrokerKit, capsys: pytest.CaptureFixture[str]) -> None:
    db = sqlite3.connect(written.audit_log)
    db.execute("UPDATE audit SET decision = 'allowed', reason = NULL WHERE decision = 'refused'")
    db.commit()
    code, text = _cli(capsys, "verify", "--config", str(written.config))
    assert code == 1 and "TAMPERED" in text and "was modified" in text


def test_newest_entries_removed(written: BrokerKit, capsys: pytest.CaptureFixture[str]) -> None:
    head = _head(written, capsys)
    total = len(_rows(written))
    db = sqlite3.connect(written.audit_log)
    db.execute("DELETE FROM audit WHERE seq > ?", (total - 3,))
    db.commit()
    # The chain alone still holds: only the head shows the cut.
    assert _cli(capsys, "verify", "--config", str(written.config))[0] == 0
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 1 and f"head anchored {total}" in text and "were removed" in text


def test_every_entry_removed(written: BrokerKit, capsys: pytest.CaptureFixture[str]) -> None:
    head = _head(written, capsys)
    db = sqlite3.connect(written.audit_log)
    db.execute("DELETE FROM audit")
    db.commit()
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 1 and "the log has 0 entries" in text


@pytest.mark.parametrize("how", ["sha256", "hmac-other-key", "hmac-right-key"])
def test_rewrite_with_rehash(
    written: BrokerKit, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    head = _head(written, capsys)
    if how == "sha256":  # what defeated the old unkeyed chain
        rehash = _sha256_chain
    else:
        key = b"\x01" * 32
        if how == "hmac-right-key":  # an insider with the KEK: only the head catches it
            svc = BrokerService.from_config(load_broker_config(written.config))
            key = svc.db._key
            svc.close()
        rehash = lambda prev, *f: entry_hash(key, prev, *f)  # noqa: E731
    _rechain(written, rehash, _flip_refusal)
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 1 and "TAMPERED" in text
    chain_only = _cli(capsys, "verify", "--config", str(written.config))[0]
    assert chain_only == (0 if how == "hmac-right-key" else 1)


def test_forged_or_foreign_head_is_refused(
    written: BrokerKit, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _head(written, capsys)
    doc = json.loads(head.read_text())
    doc["entries"] = 1  # a head that would hide everything after entry 1
    head.write_text(json.dumps(doc))
    code, text = _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))
    assert code == 2 and "differ from what was signed" in text
    head.write_text("{not json")
    assert _cli(capsys, "verify", "--config", str(written.config), "--head", str(head))[0] == 2


def test_log_under_another_kek_is_refused(
    written: BrokerKit, capsys: pytest.CaptureFixture[str]
) -> None:
    (written.config.parent / "kek.bin").write_bytes(bytes(range(1, 33)).hex().encode())
    code, text = _cli(capsys, "verify", "--config", str(written.config))
    assert code == 2 and "another KEK" in text
