"""End to end over HTTP on 127.0.0.1: `gpufence broker serve` releases to genuine evidence signed
by a test device CA (NVIDIA's layout) and refuses each attack with its reason code."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.attest.brokerkit import SECRET, SECRET_B, BrokerKit, make_broker_kit

from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.crypto import TokenMac, TokenSigner, b64d, load_kek

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpufence", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, BrokerKit]]:
    param = getattr(request, "param", 1)
    workers, backend = param if isinstance(param, tuple) else (param, "sqlite")
    workers = str(workers)
    kit = make_broker_kit(tmp_path)
    if backend == "postgres":  # a fresh database on the session's real PostgreSQL server
        import uuid

        import psycopg

        server = request.getfixturevalue("postgres_server_url")
        server = server.replace("postgresql+psycopg://", "postgresql://")
        name = f"broker_{uuid.uuid4().hex}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = server.rsplit("/", 1)[0] + "/" + name
        kit.config.write_text(
            kit.config.read_text().replace("database: broker.db", f"database: {url}")
        )
    (tmp_path / "secret.bin").write_bytes(SECRET)
    put = _cli(
        "broker",
        "secret",
        "put",
        "--config",
        str(kit.config),
        "weights",
        "--from-file",
        str(tmp_path / "secret.bin"),
    )
    assert put.returncode == 0, put.stderr
    assert SECRET.decode() not in put.stderr + put.stdout
    (tmp_path / "secret-b.bin").write_bytes(SECRET_B)
    put_b = _cli(
        "broker",
        "secret",
        "put",
        "--config",
        str(kit.config),
        "tenantB-weights",
        "--from-file",
        str(tmp_path / "secret-b.bin"),
    )
    assert put_b.returncode == 0, put_b.stderr
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpufence",
            "broker",
            "serve",
            "--config",
            str(kit.config),
            "--port",
            str(port),
            "--workers",
            workers,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"broker did not start: {out}")
            time.sleep(0.1)
        yield base, kit
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _attest(
    base: str, requester: Requester, kit: BrokerKit, **evidence_args: object
) -> httpx.Response:
    nonce = httpx.post(f"{base}/challenge").json()["nonce"]
    evidence = kit.evidence(requester.gpu_nonce(nonce), **evidence_args)  # type: ignore[arg-type]
    return httpx.post(
        f"{base}/attest",
        json={"nonce": nonce, "public_key": requester.public_pem, "evidence": evidence},
    )


def _refused(response: httpx.Response, code: str, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


def test_release_and_attacks_over_http(broker: tuple[str, BrokerKit]) -> None:
    base, kit = broker
    requester = Requester()
    # The correct flow releases the secret, encrypted to the requester's key only.
    granted = _attest(base, requester, kit)
    assert granted.status_code == 200, granted.text
    token = granted.json()["token"]
    released = httpx.get(f"{base}/resource/weights", headers={"Authorization": f"Bearer {token}"})
    assert released.status_code == 200
    assert requester.open(released.json()) == SECRET
    assert SECRET not in released.content
    # Replay of the token.
    _refused(
        httpx.get(f"{base}/resource/weights", headers={"Authorization": f"Bearer {token}"}),
        "TOKEN_REPLAYED",
        409,
    )
    # Replay of a challenge nonce.
    nonce = httpx.post(f"{base}/challenge").json()["nonce"]
    body = {
        "nonce": nonce,
        "public_key": requester.public_pem,
        "evidence": kit.evidence(requester.gpu_nonce(nonce)),
    }
    assert httpx.post(f"{base}/attest", json=body).status_code == 200
    _refused(httpx.post(f"{base}/attest", json=body), "NONCE_REPLAYED", 409)
    # A nonce the broker never issued.
    _refused(httpx.post(f"{base}/attest", json={**body, "nonce": "AAAA"}), "NONCE_UNKNOWN", 403)
    # Evidence made for another challenge (wrong nonce) ...
    old = httpx.post(f"{base}/challenge").json()["nonce"]
    fresh = httpx.post(f"{base}/challenge").json()["nonce"]
    stale = {
        "nonce": fresh,
        "public_key": requester.public_pem,
        "evidence": kit.evidence(requester.gpu_nonce(old)),
    }
    _refused(httpx.post(f"{base}/attest", json=stale), "NONCE_MISMATCH", 403)
    # ... or relayed to an attacker's key.
    thief = Requester()
    nonce = httpx.post(f"{base}/challenge").json()["nonce"]
    relayed = {
        "nonce": nonce,
        "public_key": thief.public_pem,
        "evidence": kit.evidence(requester.gpu_nonce(nonce)),
    }
    _refused(httpx.post(f"{base}/attest", json=relayed), "NONCE_MISMATCH", 403)
    # Tampered evidence.
    _refused(_attest(base, requester, kit, tamper=True), "EVIDENCE_REJECTED", 403)
    # Policy: two GPUs required, one attested.
    _refused(_attest(base, requester, kit, count=1), "POLICY_DENIED", 403)
    # Unreadable evidence.
    nonce = httpx.post(f"{base}/challenge").json()["nonce"]
    bad = {"nonce": nonce, "public_key": requester.public_pem, "evidence": [{"arch": "HOPPER"}]}
    _refused(httpx.post(f"{base}/attest", json=bad), "EVIDENCE_UNREADABLE", 400)
    # A token for another audience, signed with the broker's own key (as if from a sister broker).
    claims = json.loads(b64d(_attest(base, requester, kit).json()["token"].split(".")[1]))
    kek = load_kek("file", path=kit.config.parent / "kek.bin", env=None, options={})
    foreign = TokenMac.from_kek(kek).sign({**claims, "aud": "another-broker", "jti": "x1"})
    _refused(
        httpx.get(f"{base}/resource/weights", headers={"Authorization": f"Bearer {foreign}"}),
        "TOKEN_AUDIENCE",
        401,
    )
    # The same claims signed ES384 with the broker's own signing key: the token algorithm is
    # pinned (hs256 by default), so a correctly signed token of the other kind is refused.
    other_alg = TokenSigner(kit.signing_key).sign({**claims, "jti": "x2"})
    _refused(
        httpx.get(f"{base}/resource/weights", headers={"Authorization": f"Bearer {other_alg}"}),
        "TOKEN_INVALID",
        401,
    )
    _refused(httpx.get(f"{base}/resource/weights"), "TOKEN_MISSING", 401)
    good = _attest(base, requester, kit).json()["token"]
    # A resource the token was not issued for: unknown, or another tenant's (issue 12: a token
    # from tenant A's passing flow read tenantB-weights).
    for other in ("nope", "tenantB-weights"):
        _refused(
            httpx.get(f"{base}/resource/{other}", headers={"Authorization": f"Bearer {good}"}),
            "RESOURCE_NOT_GRANTED",
            403,
        )
    # Every decision is in the hash-chained log; tampering is detected by the CLI.
    check = _cli("broker", "audit-log", "verify", "--config", str(kit.config), "--format", "json")
    assert check.returncode == 0, check.stdout + check.stderr
    entries = json.loads(check.stdout)["entries"]
    assert entries >= 20
    reasons = {row[0] for row in sqlite3.connect(kit.audit_log).execute("SELECT reason FROM audit")}
    assert {
        "TOKEN_REPLAYED",
        "NONCE_REPLAYED",
        "NONCE_MISMATCH",
        "EVIDENCE_REJECTED",
        "POLICY_DENIED",
        "TOKEN_AUDIENCE",
    } <= reasons
    log_text = "\n".join(
        str(r) for r in sqlite3.connect(kit.audit_log).execute("SELECT detail FROM audit")
    )
    assert SECRET.decode() not in log_text and token not in log_text
    db = sqlite3.connect(kit.audit_log)
    db.execute("UPDATE audit SET decision = 'refused' WHERE seq = 3")
    db.commit()
    tampered = _cli("broker", "audit-log", "verify", "--config", str(kit.config))
    assert (
        tampered.returncode == 1 and "TAMPERED" in tampered.stdout and "entry 3" in tampered.stdout
    )


@pytest.mark.parametrize("broker", [2, (2, "postgres")], indirect=True, ids=["sqlite", "postgres"])
def test_two_worker_processes_share_state(broker: tuple[str, BrokerKit]) -> None:
    """Tokens issued by one process are honoured (once) by the other; the chain stays intact
    (SQLite shared by two workers, and PostgreSQL as several hosts would share it)."""
    base, kit = broker
    requester = Requester()
    tokens = []
    for _ in range(6):  # one connection per request: spread over both processes
        granted = _attest(base, requester, kit)
        assert granted.status_code == 200, granted.text
        tokens.append(granted.json()["token"])
    for token in tokens:
        auth = {"Authorization": f"Bearer {token}"}
        assert requester.open(httpx.get(f"{base}/resource/weights", headers=auth).json()) == SECRET
        _refused(httpx.get(f"{base}/resource/weights", headers=auth), "TOKEN_REPLAYED", 409)
    check = _cli("broker", "audit-log", "verify", "--config", str(kit.config), "--json")
    # 2 secret puts + 6 x (challenge, attest, release, refused replay)
    assert check.returncode == 0 and json.loads(check.stdout)["entries"] == 26, check.stdout


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process this user can read."""
    seen: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        seen[int(entry.name)] = (ppid, cmdline)
    return seen


def _workers_of(port: str) -> tuple[int, list[int]]:
    """The `broker serve --port PORT` supervisor and its worker processes."""
    table = _processes()
    (supervisor,) = [
        pid for pid, (_, cmd) in table.items() if "broker serve" in cmd and f"--port {port}" in cmd
    ]
    workers = [
        pid
        for pid, (ppid, cmd) in table.items()
        if ppid == supervisor and "multiprocessing" in cmd and "resource_tracker" not in cmd
    ]
    return supervisor, workers


@pytest.mark.parametrize("broker", [2], indirect=True, ids=["sqlite"])
def test_workers_hold_the_port_and_a_dead_worker_stops_the_broker(
    broker: tuple[str, BrokerKit],
) -> None:
    """Each worker listens on its own SO_REUSEPORT socket: a second broker on the same port is
    refused (exit 2, not a silent share of the connections), and a worker that dies stops the
    whole broker with exit 1 instead of leaving it half-serving."""
    base, kit = broker
    port = base.rsplit(":", 1)[1]
    serve = [sys.executable, "-m", "gpufence", "broker", "serve", "--config", str(kit.config)]
    second = subprocess.run(
        [*serve, "--port", port, "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr
    for _ in range(8):  # the first broker still answers on every connection
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200

    supervisor, workers = _workers_of(port)
    assert len(workers) == 2
    os.kill(workers[0], 9)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        table = _processes()
        if supervisor not in table and not set(workers) & set(table):
            break
        zombie = supervisor in table and Path(f"/proc/{supervisor}/stat").read_text().split()[2]
        if zombie == "Z" and workers[1] not in table:  # exited; the fixture reaps it later
            break
        time.sleep(0.1)
    else:
        pytest.fail("the broker kept running after a worker died")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)
