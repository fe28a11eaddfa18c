"""A fleet of closed UDP ports: every probe's outcome is consumed, none is left to the GC.

At fleet scale the IPMI probe once left thousands of "Task exception was never retrieved"
tracebacks on stderr (a ``ConnectionRefusedError`` raised in a task nobody awaited). asyncio's
debug mode and the garbage collector make such a task report itself; the test fails on it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from gpufence.collect.bmc.credentials import CredentialStore
from gpufence.collect.bmc.ipmi import probe_ipmi
from gpufence.collect.bmc.scanner import ScanOptions, scan_fleet
from gpufence.collect.bmc.targets import parse_targets


def _below_ephemeral_range() -> range:
    """Ports the kernel never hands to a ``bind(0)``: the integration tests' ipmi_sim servers
    take such released ports, and one that took a port this test had released answered its
    probe ("scanned" instead of "unreachable", seen once under load)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10_000, max(10_001, low))


def closed_udp_ports(count: int) -> list[int]:
    """UDP ports on 127.0.0.1 that nothing listens on (each checked free by binding it)."""
    found: list[int] = []
    for port in random.sample(_below_ephemeral_range(), 4 * count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError("no free UDP ports below the ephemeral range")


def _run_debug(coro: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``coro`` with asyncio debug on; every context given to the exception handler."""
    reported: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        return await coro

    result = asyncio.run(main(), debug=True)
    gc.collect()  # a task whose exception nobody retrieved reports itself when collected
    return result, reported


def test_probe_of_closed_ports_retrieves_every_exception(caplog: pytest.LogCaptureFixture) -> None:
    ports = closed_udp_ports(40)

    async def probes() -> list[Any]:
        return await asyncio.gather(*(probe_ipmi("127.0.0.1", p, timeout=0.5) for p in ports))

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        results, reported = _run_debug(probes())
        gc.collect()
    assert all(not r.answered for r in results)
    assert any("closed" in str(r.error) for r in results), [r.error for r in results]
    messages = [str(ctx.get("message")) for ctx in reported] + [
        r.getMessage() for r in caplog.records
    ]
    assert not [m for m in messages if "never retrieved" in m], messages


def test_fleet_scan_of_closed_ipmi_ports_leaves_no_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = closed_udp_ports(60)
    targets = parse_targets([f"b{i}=ipmi://127.0.0.1:{p}" for i, p in enumerate(ports)])
    opts = ScanOptions(concurrency=60, ipmi_timeout=0.5, bmc_timeout=10)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        scans, reported = _run_debug(scan_fleet(targets, CredentialStore(None, {}), opts))
        gc.collect()
    assert [s.state()[0] for s in scans] == ["unreachable"] * len(ports)
    messages = [str(ctx.get("message")) for ctx in reported] + [
        r.getMessage() for r in caplog.records
    ]
    assert not [m for m in messages if "never retrieved" in m], messages


def test_two_refusals_on_one_socket_are_both_consumed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under load both probes on a socket see an ICMP error (one per datagram sent).

    On an idle loopback the kernel folds them into one; the fleet at scale did not. The errors
    are delivered here as the kernel delivers them under load: one per exchange.
    """
    from gpufence.collect.bmc import ipmi

    opened = ipmi._Udp.open

    async def open_refusing(host: str, port: int) -> ipmi._Udp:
        udp = await opened(host, port)
        for _ in range(2):
            udp.protocol.error_received(ConnectionRefusedError(111, "Connection refused"))
        return udp

    monkeypatch.setattr(ipmi._Udp, "open", open_refusing)
    ports = closed_udp_ports(5)

    async def probes() -> list[Any]:
        return await asyncio.gather(*(probe_ipmi("127.0.0.1", p, timeout=0.5) for p in ports))

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        results, reported = _run_debug(probes())
        gc.collect()
    assert [r.answered for r in results] == [False] * len(ports)
    messages = [str(ctx.get("message")) for ctx in reported] + [
        r.getMessage() for r in caplog.records
    ]
    assert not [m for m in messages if "never retrieved" in m], messages
