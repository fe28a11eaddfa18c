"""The IPMI probe's two UDP exchanges share one socket: each reply reaches the exchange it answers.

A BMC on 127.0.0.1 (a small asyncio responder) answers the ASF presence ping and the Get Channel
Authentication Capabilities request in either order. Both exchanges wait at once; a reply one of
them does not want must still reach the other (it was once dropped by whichever exchange read it
first, so a BMC answering the capabilities request before the ping lost both answers).
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from gpufence.collect.bmc.ipmi import probe_ipmi

_RMCP_ASF = bytes([0x06, 0x00, 0xFF, 0x06])
_RMCP_IPMI = bytes([0x06, 0x00, 0xFF, 0x07])


def _caps_reply() -> bytes:
    """IPMI 2.0 extended capabilities: MD5 only, non-null users, IPMI 1.5 and 2.0."""
    data = bytes([0x01, 0x84, 0x04, 0x03, 0, 0, 0, 0])
    header = bytes([0x81, 0x07 << 2])
    body = bytes([0x20, 0x00, 0x38, 0x00]) + data
    message = header + bytes([(-sum(header)) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF])
    return _RMCP_IPMI + bytes([0x00]) + b"\x00" * 8 + bytes([len(message)]) + message


def _pong(tag: int) -> bytes:
    """ASF presence pong (DSP0136 3.2.4.3) that says IPMI is supported (entities bit 7)."""
    data = struct.pack(">II", 4542, 0) + bytes([0x81, 0x00]) + b"\x00" * 6
    return _RMCP_ASF + struct.pack(">IBBBB", 4542, 0x40, tag, 0x00, len(data)) + data


class _Bmc(asyncio.DatagramProtocol):
    """Answers both requests; the ping's answer is sent ``pong_delay`` seconds after the other."""

    def __init__(self, pong_delay: float, caps_delay: float) -> None:
        self.pong_delay = pong_delay
        self.caps_delay = caps_delay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        if data[:4] == _RMCP_ASF:
            loop.call_later(self.pong_delay, self.transport.sendto, _pong(data[9]), addr)
        elif data[:4] == _RMCP_IPMI:
            loop.call_later(self.caps_delay, self.transport.sendto, _caps_reply(), addr)


@pytest.mark.parametrize(
    ("pong_delay", "caps_delay"),
    [(0.15, 0.0), (0.0, 0.15), (0.0, 0.0)],
    ids=["capabilities-first", "pong-first", "together"],
)
def test_each_reply_reaches_its_exchange(pong_delay: float, caps_delay: float) -> None:
    async def scan() -> object:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Bmc(pong_delay, caps_delay), local_addr=("127.0.0.1", 0)
        )
        try:
            port = transport.get_extra_info("sockname")[1]
            return await probe_ipmi("127.0.0.1", port, timeout=0.6)
        finally:
            transport.close()

    probe = asyncio.run(scan())
    assert probe.answered, probe  # type: ignore[attr-defined]
    assert probe.asf_pong is True, probe  # type: ignore[attr-defined]
    assert probe.ipmi_in_pong is True, probe  # type: ignore[attr-defined]
    caps = probe.caps  # type: ignore[attr-defined]
    assert caps is not None, probe
    assert caps.auth_md5 and not caps.auth_none and caps.ipmi_v2_0
