"""IPMI over LAN (UDP 623): what a BMC reveals to anyone, and (opt-in) what it lets in.

Without credentials: an RMCP/ASF presence ping and the IPMI 1.5 "Get Channel Authentication
Capabilities" command (netfn App, cmd 0x38, channel 0x8E = current channel + IPMI v2 extended
data, privilege Administrator). The reply says whether IPMI 1.5 and 2.0 are on, which 1.5
authentication types are allowed (NONE and straight password are cleartext), and whether
anonymous login, null user names and a non-zero BMC key (Kg) are configured.

Intrusive (``--intrusive`` only), RMCP+ (IPMI 2.0) session setup, which never submits a guessed
password to the BMC:

- **cipher suite 0**: open a session with authentication, integrity and confidentiality all
  "none" and finish RAKP with no key at all; if the BMC accepts, anyone who knows a user name is
  in (the bypass ``ipmi_sim`` reproduces). The session is closed right away.
- **default passwords**: RAKP message 2 carries an HMAC-SHA1 keyed with the user's password
  (the IPMI 2.0 design flaw behind CVE-2013-4786); candidate default passwords are checked
  against it offline, so no failed login is ever recorded and no account can be locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "AuthCapabilities",
    "IntrusiveIpmi",
    "IpmiProbe",
    "build_auth_caps_request",
    "parse_auth_caps_response",
    "probe_ipmi",
    "try_ipmi_intrusive",
]

_RMCP_ASF = bytes([0x06, 0x00, 0xFF, 0x06])
_RMCP_IPMI = bytes([0x06, 0x00, 0xFF, 0x07])
_ASF_IANA = 4542
_AUTH_RMCP_PLUS = 0x06

# RAKP status codes that mean "no such user" / "role not allowed" (IPMI 2.0 table 13-15).
_RAKP_STATUS = {
    0x00: "ok",
    0x01: "insufficient resources",
    0x02: "invalid session id",
    0x09: "invalid role",
    0x0D: "unauthorized name",
    0x11: "invalid cipher suite / no cipher suite match",
    0x12: "invalid integrity algorithm",
}


def _checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def _ipmi_message(netfn: int, cmd: int, data: bytes, seq: int = 0) -> bytes:
    header = bytes([0x20, netfn << 2])
    body = bytes([0x81, (seq & 0x3F) << 2, cmd]) + data
    return header + bytes([_checksum(header)]) + body + bytes([_checksum(body)])


def build_asf_ping(tag: int = 0x01) -> bytes:
    return _RMCP_ASF + struct.pack(">IBBBB", _ASF_IANA, 0x80, tag, 0x00, 0x00)


def build_auth_caps_request(seq: int = 0) -> bytes:
    """An RMCP/IPMI Get Channel Authentication Capabilities request."""
    message = _ipmi_message(0x06, 0x38, bytes([0x8E, 0x04]), seq)
    session = bytes([0x00]) + b"\x00" * 8 + bytes([len(message)])
    return _RMCP_IPMI + session + message


@dataclass(frozen=True)
class AuthCapabilities:
    """Decoded Get Channel Authentication Capabilities reply."""

    channel: int
    auth_none: bool
    auth_md2: bool
    auth_md5: bool
    auth_straight_password: bool
    auth_oem: bool
    v2_extended: bool
    kg_set: bool
    per_message_auth_disabled: bool
    user_level_auth_disabled: bool
    non_null_users: bool
    null_users: bool
    anonymous_login: bool
    ipmi_v1_5: bool
    ipmi_v2_0: bool
    oem_id: int

    @property
    def cleartext_auth(self) -> list[str]:
        """IPMI 1.5 authentication types that protect nothing."""
        out = []
        if self.auth_none:
            out.append("NONE")
        if self.auth_straight_password:
            out.append("straight password")
        return out


def parse_auth_caps_response(packet: bytes) -> AuthCapabilities:
    """Decode the reply; ValueError when it is not one."""
    if len(packet) < 4 or packet[:4] != _RMCP_IPMI:
        raise ValueError("not an RMCP IPMI packet")
    offset = 4
    auth_type = packet[offset]
    offset += 1 + 4 + 4  # auth type, sequence, session id
    if auth_type not in (0x00, _AUTH_RMCP_PLUS):
        offset += 16  # authentication code
    if auth_type == _AUTH_RMCP_PLUS:
        raise ValueError("unexpected RMCP+ reply to an IPMI 1.5 request")
    length = packet[offset]
    message = packet[offset + 1 : offset + 1 + length]
    if len(message) < 7 or message[5] != 0x38:
        raise ValueError("not a Get Channel Authentication Capabilities reply")
    completion = message[6]
    if completion != 0x00:
        raise ValueError(f"completion code 0x{completion:02x}")
    data = message[7:-1]
    if len(data) < 8:
        raise ValueError("reply too short")
    support, status, ext = data[1], data[2], data[3]
    v2_extended = bool(support & 0x80)
    return AuthCapabilities(
        channel=data[0],
        auth_none=bool(support & 0x01),
        auth_md2=bool(support & 0x02),
        auth_md5=bool(support & 0x04),
        auth_straight_password=bool(support & 0x10),
        auth_oem=bool(support & 0x20),
        v2_extended=v2_extended,
        kg_set=bool(status & 0x20),
        per_message_auth_disabled=bool(status & 0x10),
        user_level_auth_disabled=bool(status & 0x08),
        non_null_users=bool(status & 0x04),
        null_users=bool(status & 0x02),
        anonymous_login=bool(status & 0x01),
        # Without extended data the BMC speaks IPMI 1.5 only.
        ipmi_v1_5=bool(ext & 0x01) if v2_extended else True,
        ipmi_v2_0=bool(ext & 0x02) if v2_extended else False,
        oem_id=int.from_bytes(data[4:7], "little"),
    )


class _Datagram(asyncio.DatagramProtocol):
    """Hands each reply to the first waiting exchange that accepts it.

    Several exchanges may wait on one socket at once (the presence ping and the capabilities
    request): a reply one of them does not want belongs to another, never to the floor.
    """

    def __init__(self) -> None:
        self.waiters: list[tuple[Callable[[bytes], bool], asyncio.Future[bytes]]] = []
        self.unclaimed: deque[bytes] = deque(maxlen=8)
        """Replies no exchange wanted when they came (a late answer to a request resent)."""
        self.refused: ConnectionRefusedError | None = None
        """The port is closed (ICMP port unreachable): every exchange, now or later, learns it."""

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        for accept, waiter in self.waiters:
            if not waiter.done() and accept(data):
                waiter.set_result(data)
                return
        self.unclaimed.append(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused = exc
            for _accept, waiter in self.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
        # Other ICMP errors (a transient 'host unreachable') leave the exchanges waiting.


class _Udp:
    """One UDP 'connection' to a BMC with request/response helpers."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Datagram) -> None:
        self.transport = transport
        self.protocol = protocol

    @classmethod
    async def open(cls, host: str, port: int) -> _Udp:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagram, remote_addr=(host, port)
        )
        return cls(transport, protocol)

    def close(self) -> None:
        self.transport.close()

    async def exchange(
        self, packet: bytes, accept: Callable[[bytes], bool], timeout: float, tries: int = 2
    ) -> bytes | None:
        """Send ``packet`` until a reply that ``accept(reply)`` likes arrives (or give up).

        Raises :class:`ConnectionRefusedError` when the port is closed.
        """
        protocol = self.protocol
        loop = asyncio.get_running_loop()
        for attempt in range(tries):
            if protocol.refused is not None:
                raise protocol.refused
            if attempt:  # the previous try's answer may have come just after its deadline
                for reply in protocol.unclaimed:
                    if accept(reply):
                        protocol.unclaimed.remove(reply)
                        return reply
            waiter: asyncio.Future[bytes] = loop.create_future()
            entry = (accept, waiter)
            protocol.waiters.append(entry)
            try:
                self.transport.sendto(packet)
                return await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                continue
            finally:
                protocol.waiters.remove(entry)
        return None


@dataclass(frozen=True)
class IpmiProbe:
    """What the UDP 623 probe learnt: whether the BMC answered, ASF pong and auth capabilities."""

    answered: bool
    asf_pong: bool | None = None
    ipmi_in_pong: bool | None = None
    caps: AuthCapabilities | None = None
    error: str | None = None
    """Why nothing is known (no reply, port closed, unparseable reply)."""


async def probe_ipmi(host: str, port: int, *, timeout: float = 1.0) -> IpmiProbe:
    """Presence ping + Get Channel Authentication Capabilities (no credentials)."""
    try:
        udp = await _Udp.open(host, port)
    except OSError as exc:
        return IpmiProbe(False, error=f"cannot open UDP socket: {exc}")
    try:
        # Both exchanges run together and both outcomes are collected: an exception left in a
        # task nobody awaits would be lost (and logged as "never retrieved" at fleet scale).
        pong_or_error, caps_or_error = await asyncio.gather(
            udp.exchange(build_asf_ping(), lambda b: b[:4] == _RMCP_ASF, timeout, tries=1),
            udp.exchange(build_auth_caps_request(), lambda b: b[:4] == _RMCP_IPMI, timeout),
            return_exceptions=True,
        )
    finally:
        udp.close()
    for outcome in (pong_or_error, caps_or_error):
        if isinstance(outcome, ConnectionRefusedError):
            return IpmiProbe(False, error=f"UDP {port} closed (ICMP port unreachable)")
        if isinstance(outcome, BaseException):
            raise outcome
    pong: bytes | None = pong_or_error  # type: ignore[assignment]
    caps_reply: bytes | None = caps_or_error  # type: ignore[assignment]
    asf, ipmi_in_pong = (False, None) if pong is None else (True, _pong_says_ipmi(pong))
    if caps_reply is None:
        if asf:
            return IpmiProbe(True, True, ipmi_in_pong, error="answers ASF ping only")
        return IpmiProbe(False, error=f"no reply on UDP {port} within {timeout * 2:.0f} s")
    try:
        caps = parse_auth_caps_response(caps_reply)
    except ValueError as exc:
        return IpmiProbe(True, asf, ipmi_in_pong, error=f"unexpected reply: {exc}")
    return IpmiProbe(True, asf, ipmi_in_pong, caps)


def _pong_says_ipmi(packet: bytes) -> bool | None:
    # RMCP(4) IANA(4) type(1) tag(1) reserved(1) length(1) IANA(4) OEM(4) entities(1) ...
    if len(packet) >= 21 and packet[8] == 0x40:
        return bool(packet[20] & 0x80)
    return None


# -- RMCP+ session setup (intrusive) ----------------------------------------------------------


def _rmcp_plus(payload_type: int, payload: bytes, session_id: int = 0, seq: int = 0) -> bytes:
    header = struct.pack("<BBIIH", _AUTH_RMCP_PLUS, payload_type, session_id, seq, len(payload))
    return _RMCP_IPMI + header + payload


def _payload_of(packet: bytes, payload_type: int) -> bytes | None:
    if len(packet) < 16 or packet[:4] != _RMCP_IPMI or packet[4] != _AUTH_RMCP_PLUS:
        return None
    if packet[5] & 0x3F != payload_type:
        return None
    (length,) = struct.unpack_from("<H", packet, 14)
    return packet[16 : 16 + length]


def _open_session_request(tag: int, console_sid: int, auth: int, integ: int, conf: int) -> bytes:
    algorithms = b"".join(
        bytes([kind, 0, 0, 8, alg, 0, 0, 0]) for kind, alg in ((0, auth), (1, integ), (2, conf))
    )
    return bytes([tag, 0x04, 0, 0]) + struct.pack("<I", console_sid) + algorithms


@dataclass
class _Rakp2:
    status: int
    console_sid: int
    bmc_sid: int
    console_random: bytes
    bmc_random: bytes
    bmc_guid: bytes
    role: int
    username: bytes
    auth_code: bytes


async def _rakp_start(
    udp: _Udp, username: str, auth: int, integ: int, conf: int, timeout: float
) -> _Rakp2 | str:
    """Open Session + RAKP 1/2. Returns RAKP 2 (with status) or why it stopped."""
    tag = 0x01
    console_sid = int.from_bytes(os.urandom(4), "little") | 1
    reply = await udp.exchange(
        _rmcp_plus(0x10, _open_session_request(tag, console_sid, auth, integ, conf)),
        lambda b: _payload_of(b, 0x11) is not None,
        timeout,
    )
    payload = _payload_of(reply, 0x11) if reply else None
    if payload is None or len(payload) < 12:
        return "no RMCP+ Open Session response"
    if payload[1] != 0:
        return f"open session refused: {_RAKP_STATUS.get(payload[1], hex(payload[1]))}"
    (bmc_sid,) = struct.unpack_from("<I", payload, 8)
    console_random = os.urandom(16)
    role = 0x14  # Administrator, name-only lookup
    name = username.encode()[:16]
    rakp1 = (
        bytes([tag, 0, 0, 0])
        + struct.pack("<I", bmc_sid)
        + console_random
        + bytes([role, 0, 0, len(name)])
        + name
    )
    reply = await udp.exchange(
        _rmcp_plus(0x12, rakp1), lambda b: _payload_of(b, 0x13) is not None, timeout
    )
    rakp2 = _payload_of(reply, 0x13) if reply else None
    if rakp2 is None or len(rakp2) < 2:
        return "no RAKP 2 response"
    if rakp2[1] != 0 or len(rakp2) < 40:
        return _Rakp2(rakp2[1], console_sid, bmc_sid, console_random, b"", b"", role, name, b"")
    return _Rakp2(
        status=0,
        console_sid=console_sid,
        bmc_sid=bmc_sid,
        console_random=console_random,
        bmc_random=rakp2[8:24],
        bmc_guid=rakp2[24:40],
        role=role,
        username=name,
        auth_code=rakp2[40:],
    )


def rakp2_hmac(rakp: _Rakp2, password: str) -> bytes:
    """The HMAC-SHA1 a BMC puts in RAKP 2 for ``password`` (IPMI 2.0 section 13.31)."""
    message = (
        struct.pack("<II", rakp.console_sid, rakp.bmc_sid)
        + rakp.console_random
        + rakp.bmc_random
        + rakp.bmc_guid
        + bytes([rakp.role, len(rakp.username)])
        + rakp.username
    )
    # HMAC pads the key with zeros to the block size, so the 20-byte zero-padded K_UID and the
    # bare password give the same digest.
    return hmac.new(password.encode()[:20], message, hashlib.sha1).digest()


async def _close_session(udp: _Udp, bmc_sid: int) -> None:
    message = _ipmi_message(0x06, 0x3C, struct.pack("<I", bmc_sid), seq=1)
    udp.transport.sendto(_rmcp_plus(0x00, message, bmc_sid, 1))
    await asyncio.sleep(0)


@dataclass(frozen=True)
class IntrusiveIpmi:
    """What the intrusive IPMI checks found: cipher-suite-0 and default-password users."""

    cipher0_users: tuple[str, ...] = ()
    """User names that got a session with cipher suite 0 (no password checked)."""
    default_password_users: tuple[str, ...] = ()
    """User names whose password is a vendor default (matched offline from RAKP 2)."""
    tested_users: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)


async def try_ipmi_intrusive(
    host: str,
    port: int,
    usernames: Sequence[str],
    default_passwords: Sequence[tuple[str, str]],
    *,
    timeout: float = 1.0,
) -> IntrusiveIpmi:
    """Cipher-suite-0 sessions and offline default-password checks for each user name."""
    cipher0: list[str] = []
    defaults: list[str] = []
    tested: list[str] = []
    notes: dict[str, str] = {}
    try:
        udp = await _Udp.open(host, port)
    except OSError as exc:
        return IntrusiveIpmi(notes={"*": f"cannot open UDP socket: {exc}"})
    try:
        for user in dict.fromkeys(usernames):
            tested.append(user)
            label = user or "(null user)"
            zero = await _rakp_start(udp, user, 0, 0, 0, timeout)
            if isinstance(zero, _Rakp2) and zero.status == 0:
                rakp3 = bytes([0x01, 0, 0, 0]) + struct.pack("<I", zero.bmc_sid)
                reply = await udp.exchange(
                    _rmcp_plus(0x14, rakp3), lambda b: _payload_of(b, 0x15) is not None, timeout
                )
                rakp4 = _payload_of(reply, 0x15) if reply else None
                if rakp4 is not None and len(rakp4) >= 2 and rakp4[1] == 0:
                    cipher0.append(user)
                    await _close_session(udp, zero.bmc_sid)
            elif isinstance(zero, str):
                notes[f"cipher0:{label}"] = zero
            else:
                notes[f"cipher0:{label}"] = _RAKP_STATUS.get(zero.status, hex(zero.status))
            candidates = [pw for name, pw in default_passwords if name == user]
            if not candidates:
                continue
            sha1 = await _rakp_start(udp, user, 1, 0, 0, timeout)
            if isinstance(sha1, _Rakp2) and sha1.status == 0 and len(sha1.auth_code) >= 20:
                if any(
                    hmac.compare_digest(rakp2_hmac(sha1, pw), sha1.auth_code[:20])
                    for pw in candidates
                ):
                    defaults.append(user)
            elif isinstance(sha1, str):
                notes[f"rakp:{label}"] = sha1
            else:
                notes[f"rakp:{label}"] = _RAKP_STATUS.get(sha1.status, hex(sha1.status))
    except ConnectionRefusedError:
        notes["*"] = f"UDP {port} closed"
    finally:
        with contextlib.suppress(Exception):
            udp.close()
    return IntrusiveIpmi(tuple(cipher0), tuple(defaults), tuple(tested), notes)
