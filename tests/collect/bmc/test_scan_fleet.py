"""scan_fleet holds only the BMCs in flight, and still accounts for every target it was given.

Targets are IPMI endpoints on 127.0.0.1: closed UDP ports (answered at once with ICMP port
unreachable) or a bound socket that never answers (a BMC that hangs).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref

from gpufence.collect.bmc.credentials import CredentialStore
from gpufence.collect.bmc.scanner import BmcScan, ScanOptions, scan_fleet
from gpufence.collect.bmc.targets import parse_targets
from tests.collect.bmc.test_ipmi_closed_ports import closed_udp_ports


def test_digested_scans_are_not_kept() -> None:
    ports = closed_udp_ports(40)
    targets = parse_targets([f"b{i}=ipmi://127.0.0.1:{p}" for i, p in enumerate(ports)])
    seen: list[weakref.ref[BmcScan]] = []
    names: list[str] = []

    def digest(scan: BmcScan) -> None:
        names.append(scan.target.name)
        seen.append(weakref.ref(scan))

    opts = ScanOptions(concurrency=8, ipmi_timeout=0.5, bmc_timeout=10)
    left = asyncio.run(scan_fleet(targets, CredentialStore(None, {}), opts, digest=digest))
    gc.collect()
    assert left == []
    assert sorted(names) == sorted(t.name for t in targets)  # each exactly once
    alive = [ref() for ref in seen if ref() is not None]
    assert alive == [], f"{len(alive)} digested scans still referenced"


def test_budget_leaves_in_flight_and_unstarted_targets_with_their_reason() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        targets = parse_targets([f"hang{i}=ipmi://127.0.0.1:{port}" for i in range(3)])
        digested: list[str] = []
        opts = ScanOptions(concurrency=1, ipmi_timeout=5, bmc_timeout=30, budget=0.5)
        left = asyncio.run(
            scan_fleet(
                targets,
                CredentialStore(None, {}),
                opts,
                digest=lambda scan: digested.append(scan.target.name),
            )
        )
    finally:
        silent.close()
    assert digested == []
    assert [s.target.name for s in left] == ["hang0", "hang1", "hang2"]  # target order
    assert left[0].interrupted == "scan budget of 0.5 s exhausted"
    assert left[0].started  # it was in flight
    for scan in left[1:]:
        assert scan.interrupted == "not started: scan budget of 0.5 s exhausted"
        assert not scan.started
    assert all(s.state()[0] == "unreachable" for s in left)
