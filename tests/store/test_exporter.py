"""The Prometheus exporter, scraped over HTTP on loopback and parsed with prometheus-client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpufence.attest.broker.crypto import LocalKek
from gpufence.attest.broker.database import AuditEntry, open_broker_database
from gpufence.model.findings import Severity, Status
from gpufence.store import FindingsStore, open_store
from gpufence.store.metrics import serve
from tests.store.test_store import T0, _run, _state


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _fill(store: FindingsStore) -> None:
    old = _state("GPU-001", "node/a", Status.FAIL, Severity.CRITICAL)
    store.record(_run(T0, old))
    store.record(
        _run(
            T0 + timedelta(hours=1),
            old,
            _state("GPU-001", "node/b", Status.FAIL, Severity.CRITICAL),
            _state("GPU-002", "node/a", Status.PASS),
        )
    )
    store.record(_run(T0, _state("K8S-001", "ns/x", Status.NOT_EVALUATED), target="k8s/"))


AUDIT_KEY = bytes(range(32))
"""The audit chain's key (a broker derives it from its KEK)."""


def _broker_log(path: Path) -> Path:
    log = open_broker_database(path, LocalKek(AUDIT_KEY, "test"), AUDIT_KEY)
    try:
        log.append(AuditEntry("challenge", "issued", 100.0))
        log.append(AuditEntry("attest", "allowed", 101.0))
        log.append(AuditEntry("attest", "refused", 102.0, reason="nonce_mismatch"))
        log.append(AuditEntry("release", "allowed", 103.0))
    finally:
        log.close()
    return path


def test_scrape_store_and_broker_metrics(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url) as store:
        _fill(store)
    port = _free_port()
    log = _broker_log(tmp_path / "a.db")
    server, thread, store = serve(store_url, "127.0.0.1", port, log, AUDIT_KEY)
    try:
        reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()
    assert reply.status_code == 200
    samples = _samples(reply.text)
    assert samples["gpufence_store_up"] == [({}, 1.0)]
    findings = {
        (s["target"], s["control"], s["status"]): v for s, v in samples["gpufence_findings"]
    }
    # The newest run of inv.yaml (two GPU-001 FAILs, one PASS) and of k8s/; never older runs.
    assert findings == {
        ("inv.yaml", "GPU-001", "FAIL"): 2.0,
        ("inv.yaml", "GPU-002", "PASS"): 1.0,
        ("k8s/", "K8S-001", "NOT_EVALUATED"): 1.0,
    }
    started = {s["target"]: v for s, v in samples["gpufence_last_run_timestamp_seconds"]}
    assert started["inv.yaml"] == (T0 + timedelta(hours=1)).timestamp()
    assert {v for _, v in samples["gpufence_last_run_duration_seconds"]} == {1.25}
    ages = {(s["target"], s["plane"]): v for s, v in samples["gpufence_evidence_age_seconds"]}
    assert set(ages) == {("inv.yaml", "GPU"), ("k8s/", "GPU")}
    assert ages[("inv.yaml", "GPU")] > 0
    decisions = {
        (s["event"], s["decision"], s["reason"]): v
        for s, v in samples["gpufence_broker_decisions_total"]
    }
    assert decisions == {
        ("challenge", "issued", ""): 1.0,
        ("attest", "allowed", ""): 1.0,
        ("attest", "refused", "nonce_mismatch"): 1.0,
        ("release", "allowed", ""): 1.0,
    }
    assert samples["gpufence_broker_audit_log_intact"] == [({}, 1.0)]
    # Bounded cardinality: no label carries a fingerprint, a resource or a message.
    for name, rows in samples.items():
        for labels, _ in rows:
            assert not set(labels) & {"fingerprint", "resource", "message"}, name


def test_tampered_broker_log_reads_not_intact(tmp_path: Path) -> None:
    import sqlite3

    log = _broker_log(tmp_path / "a.db")
    db = sqlite3.connect(log)
    db.execute("UPDATE audit SET decision = 'allowed' WHERE seq = 3")
    db.commit()
    db.close()
    port = _free_port()
    server, thread, store = serve(
        f"sqlite:///{tmp_path / 's.db'}", "127.0.0.1", port, log, AUDIT_KEY
    )
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()
    assert _samples(text)["gpufence_broker_audit_log_intact"] == [({}, 0.0)]


def test_cli_exporter_serves_until_stopped(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with open_store(str(store)) as opened:
        _fill(opened)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpufence",
            "exporter",
            "--store",
            str(store),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "GPUFENCE_STORE": ""},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "gpufence_findings{" in text
    assert f"on http://127.0.0.1:{port}/metrics" in err.decode()


@pytest.mark.parametrize("listen", ["9108", "host:port", "127.0.0.1:70000"])
def test_bad_listen_address(listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    from gpufence.cli import main

    assert main(["exporter", "--store", "sqlite:///:memory:", "--listen", listen]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_every_metric_is_documented(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from gpufence.store.metrics import PostureCollector
    from tests.conftest import REPO

    with open_store(str(tmp_path / "s.db")) as store:
        _fill(store)
        registry = CollectorRegistry(auto_describe=False)
        log = _broker_log(tmp_path / "a.db")
        registry.register(PostureCollector(store, log, broker_audit_key=AUDIT_KEY))
        text = generate_latest(registry).decode()
    docs = (REPO / "docs" / "reporting.md").read_text(encoding="utf-8")
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    assert len(names) == 9
    for name in names:
        assert f"`{name}`" in docs, f"{name} is not documented in docs/reporting.md"


def test_without_the_chain_key_integrity_is_not_reported(tmp_path: Path) -> None:
    """The audit chain is keyed: without the key the exporter cannot tell, so it says nothing."""
    from prometheus_client import CollectorRegistry, generate_latest

    from gpufence.store.metrics import PostureCollector

    with open_store(str(tmp_path / "s.db")) as store:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PostureCollector(store, _broker_log(tmp_path / "a.db")))
        text = generate_latest(registry).decode()
        registry = CollectorRegistry(auto_describe=False)
        log = tmp_path / "a.db"
        registry.register(PostureCollector(store, log, broker_audit_key=bytes(32)))
        wrong_key = generate_latest(registry).decode()
    samples = _samples(text)
    assert "gpufence_broker_audit_log_intact" not in samples
    assert samples["gpufence_broker_decisions_total"]
    assert _samples(wrong_key)["gpufence_broker_audit_log_intact"] == [({}, 0.0)]
