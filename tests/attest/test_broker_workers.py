"""Worker processes sharing one broker's SQLite state (WAL): the audit chain stays intact under
concurrent appends, and a challenge nonce or a token is consumed exactly once across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from gpufence.attest.broker.audit_log import AuditLog, verify_audit_log
from gpufence.attest.broker.crypto import LocalKek
from gpufence.attest.broker.store import BrokerStore

KEY = bytes(range(32))
NONCES = [bytes([i]) * 32 for i in range(40)]


def _append(path: str, who: int, count: int) -> None:
    log = AuditLog(path, KEY)
    for i in range(count):
        log.append("test", "allowed", ts=float(i), detail={"worker": who, "i": i})
    log.close()


def _consume(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = BrokerStore(path, LocalKek(KEY, "test"))
    won = [n.hex() for n in NONCES if store.consume_challenge(n, 0.0)[0] == "ok"]
    spent = [f"jti-{i}" for i in range(40) if store.spend_token(f"jti-{i}", 0.0)]
    queue.put((won, spent))
    store.close()


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditLog(path, KEY).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(path), w, 150)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    result = verify_audit_log(path, KEY)
    assert result.ok and result.entries == 450, result.detail


def test_nonces_and_tokens_are_single_use_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    store = BrokerStore(path, LocalKek(KEY, "test"))
    for nonce in NONCES:
        store.add_challenge(nonce, 10.0)
    store.close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(str(path), queue)) for _ in range(3)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(60)
    won = [n for r in results for n in r[0]]
    spent = [t for r in results for t in r[1]]
    assert sorted(won) == sorted(n.hex() for n in NONCES)  # each exactly once
    assert sorted(spent) == sorted(f"jti-{i}" for i in range(40))
