"""Worker processes (and hosts) sharing one broker database, SQLite (WAL) or a real PostgreSQL:
the audit chain has no fork under concurrent appends, and a challenge nonce or a token is
consumed exactly once across processes, each with its one log entry."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from pathlib import Path

import pytest

from gpufence.attest.broker.audit_log import verify_audit_log
from gpufence.attest.broker.crypto import LocalKek
from gpufence.attest.broker.database import AuditEntry, open_broker_database

KEY = bytes(range(32))
NONCES = [bytes([i]) * 32 for i in range(40)]
PROCESSES = 4


def _open(target: str):  # type: ignore[no-untyped-def]
    return open_broker_database(target, LocalKek(KEY, "test"), KEY)


def _append(target: str, who: int, count: int) -> None:
    db = _open(target)
    for i in range(count):
        db.append(AuditEntry("test", "allowed", float(i), detail={"worker": who, "i": i}))
    db.close()


def _consume(target: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    db = _open(target)

    def consumed(state: str) -> AuditEntry:
        return AuditEntry("attest", "allowed" if state == "ok" else "refused", 1.0, state)

    def spent(first: bool) -> AuditEntry:
        return AuditEntry("release", "allowed" if first else "refused", 1.0)

    won = [n.hex() for n in NONCES if db.consume_challenge(n, 0.0, consumed) == "ok"]
    tokens = [f"jti-{i}" for i in range(40) if db.spend_token(f"jti-{i}", 0.0, spent)]
    queue.put((won, tokens))
    db.close()


def _consume_in_processes(target: str) -> list:  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(target, queue)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    return results


def _appends(target: str) -> None:
    _open(target).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(target, w, 120)) for w in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    result = verify_audit_log(target, KEY)
    assert result.ok and result.entries == PROCESSES * 120, result.detail


def _single_use(target: str) -> None:
    db = _open(target)
    for nonce in NONCES:
        db.issue_challenge(nonce, 10.0, AuditEntry("challenge", "issued", 0.0))
    db.close()
    results = _consume_in_processes(target)
    won = [n for r in results for n in r[0]]
    spent = [t for r in results for t in r[1]]
    assert sorted(won) == sorted(n.hex() for n in NONCES)  # each exactly once
    assert sorted(spent) == sorted(f"jti-{i}" for i in range(40))
    db = _open(target)
    try:
        decisions = Counter((e["event"], e["decision"]) for e in db.entries())
    finally:
        db.close()
    # One entry per attempt, in the same transaction: the winners are logged as allowed, every
    # loser as refused, and nothing else.
    assert decisions[("attest", "allowed")] == len(NONCES)
    assert decisions[("attest", "refused")] == (PROCESSES - 1) * len(NONCES)
    assert decisions[("release", "allowed")] == 40
    assert decisions[("release", "refused")] == (PROCESSES - 1) * 40
    assert verify_audit_log(target, KEY).ok


def test_sqlite_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    _appends(str(tmp_path / "broker.db"))


def test_sqlite_nonces_and_tokens_are_single_use_across_processes(tmp_path: Path) -> None:
    _single_use(str(tmp_path / "broker.db"))


@pytest.fixture
def postgres_db(postgres_server_url: str) -> str:
    """A fresh database on the session's real PostgreSQL server."""
    import psycopg

    base = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"broker_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.mark.integration
def test_postgres_concurrent_appends_keep_the_chain(postgres_db: str) -> None:
    _appends(postgres_db)


@pytest.mark.integration
def test_postgres_nonces_and_tokens_are_single_use_across_processes(postgres_db: str) -> None:
    _single_use(postgres_db)


@pytest.mark.integration
def test_two_broker_hosts_share_one_postgres(
    postgres_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Host A issues the challenge and the token; host B releases; the replay on A is refused,
    and the one chain holds both hosts' decisions."""
    from gpufence.attest.broker.client import Requester
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.service import BrokerService, Refusal
    from gpufence.cli import main

    from .brokerkit import SECRET, make_broker_kit

    kit = make_broker_kit(tmp_path)
    kit.config.write_text(
        kit.config.read_text().replace("database: broker.db", f"database: {postgres_db}")
    )
    host_a = BrokerService.from_config(load_broker_config(kit.config))
    host_b = BrokerService.from_config(load_broker_config(kit.config))
    try:
        host_a.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", 0.0))
        requester = Requester()
        nonce = str(host_a.challenge()["nonce"])
        evidence = kit.evidence(requester.gpu_nonce(nonce))
        token = host_b.attest(nonce, requester.public_pem, evidence)["token"]
        with pytest.raises(Refusal) as err:
            host_a.attest(nonce, requester.public_pem, evidence)
        assert err.value.code == "NONCE_REPLAYED"
        assert requester.open(host_b.release(f"Bearer {token}", "weights")) == SECRET
        with pytest.raises(Refusal) as err:
            host_a.release(f"Bearer {token}", "weights")
        assert err.value.code == "TOKEN_REPLAYED"
        assert host_a.db.head() == host_b.db.head()
        result = verify_audit_log(postgres_db, host_a.db._key)
        assert result.ok and result.entries == 6, result.detail
    finally:
        host_a.close()
        host_b.close()
    # The exporter's broker metrics read the same database.
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from gpufence.store import open_store
    from gpufence.store.metrics import PostureCollector

    with open_store(str(tmp_path / "s.db")) as store:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PostureCollector(store, postgres_db, broker_audit_key=host_a.db._key))
        families = {
            f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
        }
    assert families["gpufence_broker_audit_log_intact"].samples[0].value == 1.0
    released = [
        s.value
        for s in families["gpufence_broker_decisions"].samples
        if s.labels == {"event": "release", "decision": "allowed", "reason": ""}
    ]
    assert released == [1.0]
    # The CLI reads the chain from the URL in the configuration; a URL with a password that
    # cannot be reached is an input error that never shows the password.
    assert main(["broker", "audit-log", "verify", "--config", str(kit.config)]) == 0
    port = postgres_db.split("@127.0.0.1:")[1].split("/")[0]
    wrong = f"postgresql://gpufence:s3cr3t-pw@127.0.0.1:{port}/no_such_db"
    assert main(["broker", "audit-log", "verify", "--config", str(kit.config), wrong]) == 2
    out = capsys.readouterr()
    assert "s3cr3t-pw" not in out.out + out.err and "gpufence:***@" in out.err, out.err


@pytest.mark.integration
def test_a_lost_postgres_connection_is_a_503_and_the_next_request_reconnects(
    postgres_db: str, tmp_path: Path
) -> None:
    import psycopg
    from starlette.testclient import TestClient

    from gpufence.attest.broker.app import create_app
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.service import BrokerService

    from .brokerkit import make_broker_kit

    kit = make_broker_kit(tmp_path)
    kit.config.write_text(
        kit.config.read_text().replace("database: broker.db", f"database: {postgres_db}")
    )
    service = BrokerService.from_config(load_broker_config(kit.config))
    try:
        client = TestClient(create_app(service), raise_server_exceptions=False)
        assert client.post("/challenge").status_code == 200
        before = service.db.head()
        pid = service.db._db.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        lost = client.post("/challenge")
        assert lost.status_code == 503 and lost.json()["error"] == "DATABASE_UNAVAILABLE"
        assert service.db.head() == before  # nothing of it was committed
        assert client.post("/challenge").status_code == 200  # reconnected
        assert service.db.head()[0] == before[0] + 1
        assert verify_audit_log(postgres_db, service.db._key).ok
    finally:
        service.close()
