"""One transaction per decision: a failure between the state change and its log entry leaves
neither (issue 12: a release used to spend the token in one SQLite file and log it in another,
so a crash between the two left a spent token with no entry, or an entry with no spend)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gpufence.attest.broker import database
from gpufence.attest.broker.audit_log import verify_audit_log
from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.config import load_broker_config
from gpufence.attest.broker.database import AuditEntry
from gpufence.attest.broker.service import BrokerService, Refusal
from gpufence.errors import InputError

from .brokerkit import SECRET, BrokerKit, make_broker_kit


class Crash(Exception):
    """Stands for the process dying between the two writes."""


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    kit = make_broker_kit(tmp_path)
    svc = BrokerService.from_config(load_broker_config(kit.config))
    svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", 0.0))
    yield svc, kit
    svc.close()


def _crash_while_chaining(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next audit append fails after the state change ran (its HMAC is computed between the
    UPDATE/INSERT of the state and the INSERT of the entry)."""

    def crash(*_: Any) -> str:
        raise Crash

    monkeypatch.setattr(database, "entry_hash", crash)


def _rows(kit: BrokerKit, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(kit.audit_log) as db:
        return db.execute(sql).fetchall()


def _events(svc: BrokerService) -> list[tuple[str, str]]:
    return [(e["event"], e["decision"]) for e in svc.db.entries()]


def test_a_crash_during_release_spends_no_token_and_logs_nothing(
    broker: tuple[BrokerService, BrokerKit], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, kit = broker
    requester = Requester()
    nonce = str(svc.challenge()["nonce"])
    token = svc.attest(nonce, requester.public_pem, kit.evidence(requester.gpu_nonce(nonce)))
    before = _events(svc)
    with monkeypatch.context() as patch:
        _crash_while_chaining(patch)
        with pytest.raises(Crash):
            svc.release(f"Bearer {token['token']}", "weights")
    assert _rows(kit, "SELECT * FROM spent_tokens") == []  # the spend rolled back
    assert _events(svc) == before  # and no entry
    # The token is still good exactly once, and that release is logged.
    assert requester.open(svc.release(f"Bearer {token['token']}", "weights")) == SECRET
    with pytest.raises(Refusal) as err:
        svc.release(f"Bearer {token['token']}", "weights")
    assert err.value.code == "TOKEN_REPLAYED"
    assert _events(svc)[len(before) :] == [("release", "allowed"), ("release", "refused")]
    assert len(_rows(kit, "SELECT * FROM spent_tokens")) == 1
    assert verify_audit_log(kit.audit_log, svc.db._key).ok


def test_a_crash_during_attest_consumes_no_challenge_and_logs_nothing(
    broker: tuple[BrokerService, BrokerKit], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, kit = broker
    requester = Requester()
    nonce = str(svc.challenge()["nonce"])
    evidence = kit.evidence(requester.gpu_nonce(nonce))
    before = _events(svc)
    with monkeypatch.context() as patch:
        _crash_while_chaining(patch)
        with pytest.raises(Crash):
            svc.attest(nonce, requester.public_pem, evidence)
    assert _rows(kit, "SELECT used FROM challenges") == [(0,)]
    assert _events(svc) == before
    assert svc.attest(nonce, requester.public_pem, evidence)["token"]
    assert _events(svc)[len(before) :] == [("attest", "allowed")]
    assert _rows(kit, "SELECT used FROM challenges") == [(1,)]


def test_a_crash_while_issuing_a_challenge_leaves_no_challenge(
    broker: tuple[BrokerService, BrokerKit], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, kit = broker
    with monkeypatch.context() as patch:
        _crash_while_chaining(patch)
        with pytest.raises(Crash):
            svc.challenge()
    assert _rows(kit, "SELECT * FROM challenges") == []
    assert _events(svc) == [("secret.put", "stored")]


def _config_error(tmp_path: Path, old: str, new: str) -> InputError | None:
    kit = make_broker_kit(tmp_path)
    kit.config.write_text(kit.config.read_text().replace(old, new))
    try:
        load_broker_config(kit.config)
    except InputError as exc:
        return exc
    return None


def test_a_separate_audit_log_is_refused_with_how_to_move_on(tmp_path: Path) -> None:
    db = "  database: broker.db\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    err = _config_error(tmp_path / "a", db, db + "  audit_log: audit.db\n")
    assert err is not None
    assert "broker.audit_log" in str(err) and "audit-log verify" in str(err)
    assert err.location is not None and err.location.line is not None
    # The database itself is accepted.
    assert _config_error(tmp_path / "b", db, db + "  audit_log: ./broker.db\n") is None


def test_a_database_url_with_another_scheme_is_refused_without_its_password(
    tmp_path: Path,
) -> None:
    url = "mysql://admin:hunter2@db.example/broker"
    err = _config_error(tmp_path, "database: broker.db", f"database: {url}")
    assert err is not None and "hunter2" not in str(err) and "postgresql://" in str(err)
