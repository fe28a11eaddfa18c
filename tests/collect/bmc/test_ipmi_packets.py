"""IPMI packet layout: the unauthenticated Get Channel Authentication Capabilities exchange."""

from __future__ import annotations

import pytest

from gpufence.collect.bmc.ipmi import (
    build_asf_ping,
    build_auth_caps_request,
    parse_auth_caps_response,
)


def _reply(data: bytes, completion: int = 0x00, auth_type: int = 0x00) -> bytes:
    header = bytes([0x81, 0x07 << 2])
    body = bytes([0x20, 0x00, 0x38, completion]) + data
    message = header + bytes([(-sum(header)) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF])
    session = bytes([auth_type]) + b"\x00" * 8
    if auth_type not in (0x00, 0x06):
        session += b"\x11" * 16
    return bytes([0x06, 0x00, 0xFF, 0x07]) + session + bytes([len(message)]) + message


def test_request_layout() -> None:
    packet = build_auth_caps_request()
    assert packet[:4] == bytes([0x06, 0x00, 0xFF, 0x07])  # RMCP, class IPMI
    assert packet[4] == 0x00  # authentication type NONE
    message = packet[14:]
    assert len(message) == packet[13] == 9
    assert message[:2] == bytes([0x20, 0x18])  # BMC, netfn App
    assert sum(message[:3]) & 0xFF == 0  # header checksum
    assert message[5:8] == bytes([0x38, 0x8E, 0x04])  # cmd, channel=current+v2 data, admin
    assert sum(message[3:]) & 0xFF == 0  # body checksum
    assert build_asf_ping()[4:8] == (4542).to_bytes(4, "big")


def test_ipmi_sim_style_reply() -> None:
    # What ipmi_sim answers for the lab config of the BMC note: 0x97, 0x05, 0x03.
    caps = parse_auth_caps_response(_reply(bytes([0x01, 0x97, 0x05, 0x03, 0, 0, 0, 0])))
    assert caps.channel == 1
    assert caps.auth_none and caps.auth_md2 and caps.auth_md5 and caps.auth_straight_password
    assert caps.v2_extended and caps.ipmi_v1_5 and caps.ipmi_v2_0
    assert caps.anonymous_login and caps.non_null_users and not caps.null_users
    assert not caps.kg_set
    assert caps.cleartext_auth == ["NONE", "straight password"]


def test_hardened_and_legacy_replies() -> None:
    hardened = parse_auth_caps_response(_reply(bytes([0x01, 0x80, 0x24, 0x02, 0xA2, 0x02, 0, 0])))
    assert hardened.ipmi_v2_0 and not hardened.ipmi_v1_5
    assert hardened.kg_set and not hardened.anonymous_login
    assert hardened.cleartext_auth == []
    assert hardened.oem_id == 0x0002A2
    legacy = parse_auth_caps_response(
        _reply(bytes([0x02, 0x04, 0x02, 0x00, 0, 0, 0, 0]), auth_type=0x02)
    )
    assert legacy.ipmi_v1_5 and not legacy.ipmi_v2_0  # no extended data: IPMI 1.5 only
    assert legacy.null_users


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (b"\x06\x00\xff\x06" + b"\x00" * 12, "not an RMCP IPMI packet"),
        (_reply(bytes(8), completion=0xC1), "completion code 0xc1"),
        (_reply(bytes(3)), "reply too short"),
    ],
)
def test_bad_replies(packet: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_auth_caps_response(packet)
