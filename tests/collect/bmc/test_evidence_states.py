"""Scan state, evidence documents and the evidence file (what `gpufence audit` reads back)."""

from __future__ import annotations

import datetime
from pathlib import Path

from pydantic import SecretStr

from gpufence.collect.bmc.credentials import Credential
from gpufence.collect.bmc.evidence import to_evidence, write_evidence
from gpufence.collect.bmc.facts import FACTS
from gpufence.collect.bmc.ipmi import IpmiProbe
from gpufence.collect.bmc.redfish import Walk
from gpufence.collect.bmc.scanner import BmcScan
from gpufence.collect.bmc.targets import BmcTarget
from gpufence.collect.bmc.tls import TlsProbe
from gpufence.load.evidence import EvidenceRules, load_evidence

TARGET = BmcTarget("b1", "10.0.0.1", "https://10.0.0.1:443", 623)
WHEN = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC)


def test_unreachable_bmc_lists_every_fact_with_the_reason() -> None:
    scan = BmcScan(
        TARGET,
        root_error="service root: connect timeout (TCP or TLS handshake)",
        tls=TlsProbe(error="handshake timed out"),
        ipmi=IpmiProbe(False, error="no reply on UDP 623 within 2 s"),
    )
    assert scan.state() == ("unreachable", "service root: connect timeout (TCP or TLS handshake)")
    document = to_evidence(scan, collected_at=WHEN)
    assert document.subject == "bmc/b1" and not document.observed
    reasons = {m.fact: m.reason for m in document.not_observed}
    assert set(reasons) == set(FACTS)
    assert "connect timeout" in reasons["bmc.account.lockout_threshold"]
    assert "UDP 623" in reasons["bmc.ipmi.caps"]
    assert document.raw["state"] == "unreachable"


def test_partial_when_a_resource_fails_but_404_is_fine() -> None:
    walk = Walk(fetched=["/redfish/v1/Systems"])
    walk.failed["firmware_inventory"] = [
        ("/redfish/v1/UpdateService/FirmwareInventory", "404 Not Found")
    ]
    scan = BmcScan(
        TARGET, root={"RedfishVersion": "1.15.0"}, walk=walk, tls=TlsProbe(negotiated="TLSv1.3")
    )
    assert scan.state() == ("scanned", None)
    walk.failed["manager"] = [("/redfish/v1/Managers/1", "500 server error")]
    assert scan.state() == ("partial", "/redfish/v1/Managers/1: 500 server error")
    scan.interrupted = "interrupted (Ctrl-C)"
    assert scan.state()[1] == "interrupted (Ctrl-C); /redfish/v1/Managers/1: 500 server error"


def test_evidence_file_round_trip_without_the_password(tmp_path: Path) -> None:
    scan = BmcScan(
        TARGET,
        credential=Credential("audit", SecretStr("hunter2-secret"), "creds.yaml:1:10"),
        root={"RedfishVersion": "1.15.0", "Vendor": "HPE"},
        walk_skipped="no credentials for this BMC: unauthenticated checks only",
    )
    path = tmp_path / "evidence.json"
    write_evidence([to_evidence(scan, collected_at=WHEN)], path)
    text = path.read_text()
    assert "hunter2-secret" not in text
    loaded = load_evidence([path], EvidenceRules(now=WHEN))
    assert not loaded.bad and not loaded.stale
    ((document, origin),) = loaded.documents
    assert origin == str(path)
    assert document.observed["bmc.vendor"] == "HPE"
    assert document.raw["credential"] == {"username": "audit", "from": "creds.yaml:1:10"}
    reasons = {m.fact: m.reason for m in document.not_observed}
    assert reasons["bmc.accounts"] == "no credentials for this BMC: unauthenticated checks only"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
