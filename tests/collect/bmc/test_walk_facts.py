"""The Redfish walk and fact extraction, offline: httpx's MockTransport serves the real captures.

Runs the real reader, walker and extractor (no network): what each capture says must come out
as the facts the controls read, with reasons for what it does not say.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpufence.collect.bmc.facts import FACTS, Observations, from_anonymous, from_walk
from gpufence.collect.bmc.redfish import RedfishReader, Walk, anonymous_probe_links, walk
from gpufence.testing.mockup_server import MockupTree

BASE = "https://bmc.test:443"


def _transport(documents: dict[str, Any], seen: list[str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/") or "/"
        if seen is not None:
            seen.append(path)
        if path not in documents:
            return httpx.Response(404, json={})
        body = documents[path]
        if isinstance(body, httpx.Response):
            return body
        return httpx.Response(200, content=body if isinstance(body, bytes) else json.dumps(body))

    return httpx.MockTransport(handler)


def _walk(documents: dict[str, Any], seen: list[str] | None = None) -> tuple[Walk, RedfishReader]:
    async def run() -> tuple[Walk, RedfishReader]:
        async with httpx.AsyncClient(transport=_transport(documents, seen)) as client:
            reader = RedfishReader(client, BASE, ("u", "p"), max_body=1 << 20)
            root = await reader.get("/redfish/v1/", anonymous=True)
            assert root.data is not None, root.error
            return await walk(reader, root.data, Walk()), reader

    return asyncio.run(run())


def _facts(documents: dict[str, Any]) -> tuple[Observations, Walk]:
    result, _ = _walk(documents)
    obs = Observations()
    root = result.first("root")
    assert root is not None
    from_anonymous(obs, root, [], "https")
    from_walk(obs, result)
    obs.finish("unknown")
    return obs, result


@pytest.fixture
def tree(shared_dir: Path) -> Callable[[str], dict[str, Any]]:
    def load(name: str) -> dict[str, Any]:
        return dict(MockupTree(shared_dir / "redfish-mockups" / name).documents)

    return load


def test_dmtf_rackmount_facts(tree: Callable[[str], dict[str, Any]]) -> None:
    obs, result = _facts(tree("dmtf-public-rackmount1"))
    facts = obs.observed
    assert facts["bmc.protocols"]["IPMI"]["enabled"] is True
    assert facts["bmc.protocols"]["Telnet"]["enabled"] is True
    assert facts["bmc.snmp"]["v1"] is True and facts["bmc.snmp"]["v2c"] is False
    assert facts["bmc.ipmi_over_lan"] is True
    assert facts["bmc.secure_boot"] is False
    assert facts["bmc.account.lockout_threshold"] == 5
    assert facts["bmc.account.min_password_length"] == 8
    assert facts["bmc.session.timeout_s"] == 30
    assert facts["bmc.host_interface.credential_free"]["value"] is True
    assert facts["bmc.shared_nic"] is False
    assert facts["bmc.nic_vlan"] == [
        {"id": "eth0", "vlan_enabled": True, "vlan_id": 101, "type": None}
    ]
    assert facts["bmc.tls.configured_legacy"] == []
    assert "expired 2019-09-07T13:22:05Z" in facts["bmc.tls.reported_cert_problems"]
    assert facts["bmc.vendor"] == "Contoso"  # from the firmware entry related to the manager
    assert facts["bmc.systems"][0]["tpm"] == [
        {"type": "TPM1_2", "state": "Enabled", "firmware": "1.13b"}
    ]
    # Read in full, the manager links no vendor dashboard: "none", not "unknown".
    assert facts["bmc.vendor_dashboard"] == {"vendor": None, "overall": None, "params": []}
    assert set(obs.observed) | set(obs.missing) == set(FACTS)
    assert result.stopped is None and not result.failed


def test_hpe_dl380a_facts(tree: Callable[[str], dict[str, Any]]) -> None:
    obs, result = _facts(tree("hpe-ilo-redfish-emulator/DL380a"))
    facts = obs.observed
    assert facts["bmc.vendor"] == "HPE" and facts["bmc.model"] == "iLO 6"
    assert facts["bmc.firmware_version"] == "iLO 6 v1.66"
    assert facts["bmc.ipmi_over_lan"] is False
    assert facts["bmc.snmp"]["v1"] is True
    assert facts["bmc.account.password_complexity"] is False
    assert facts["bmc.account.failure_delay"] == {"after_failures": 1, "delay_s": 10}
    assert "bmc.account.lockout_threshold" not in facts
    assert (
        obs.missing["bmc.account.lockout_threshold"]
        == "AccountService has no AccountLockoutThreshold"
    )
    assert facts["bmc.tls.configured_legacy"] == ["TLSv1", "TLSv1.1"]
    assert facts["bmc.tls.weak_ciphers"] is True
    assert "HPE iLO factory certificate" in facts["bmc.tls.reported_cert_problems"]
    assert facts["bmc.component_integrity"]["global_policy"] == "Disabled"
    board = facts["bmc.vendor_dashboard"]
    assert board["overall"] == "Risk" and len(board["params"]) == 13
    names = {p["name"] for p in facts["bmc.firmware_inventory"]}
    assert {"NVIDIA H100 NVL", "ConnectX-7 200GE 2P NIC", "iLO 6"} <= names
    # Trailing-slash links (iLO writes '/SecurityService/') are read once.
    assert len(result.fetched) == len({p.rstrip("/") for p in result.fetched})


def test_links_to_other_hosts_are_not_followed() -> None:
    documents: dict[str, Any] = {
        "/redfish/v1": {
            "Managers": {"@odata.id": "https://evil.example/redfish/v1/Managers"},
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
            "AccountService": {"@odata.id": f"{BASE}/redfish/v1/AccountService"},
        },
        "/redfish/v1/Systems": {"Members": [{"@odata.id": "/etc/passwd"}]},
        "/redfish/v1/AccountService": {"AccountLockoutThreshold": 3},
    }
    seen: list[str] = []
    result, _ = _walk(documents, seen)
    assert "/etc/passwd" not in seen and "/redfish/v1/Managers" not in seen
    assert result.first("account_service") == {"AccountLockoutThreshold": 3}
    assert result.why_missing("manager") == "root has no Managers link"


def test_first_401_stops_the_walk() -> None:
    documents: dict[str, Any] = {
        "/redfish/v1": {
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
            "Managers": {"@odata.id": "/redfish/v1/Managers"},
        },
        "/redfish/v1/Systems": httpx.Response(401, json={}),
        "/redfish/v1/Managers": {"Members": []},
    }
    seen: list[str] = []
    result, _ = _walk(documents, seen)
    assert result.stopped == "credentials rejected (401)"
    assert "/redfish/v1/Managers" not in seen
    assert "401" in result.why_missing("system")


def test_collections_are_capped_and_bodies_checked() -> None:
    members = [{"@odata.id": f"/redfish/v1/AccountService/Accounts/{i}"} for i in range(100)]
    documents: dict[str, Any] = {
        "/redfish/v1": {"AccountService": {"@odata.id": "/redfish/v1/AccountService"}},
        "/redfish/v1/AccountService": {
            "Accounts": {"@odata.id": "/redfish/v1/AccountService/Accounts"}
        },
        "/redfish/v1/AccountService/Accounts": {"Members": members},
        **{
            m["@odata.id"]: {"UserName": f"u{i}", "RoleId": "ReadOnly"}
            for i, m in enumerate(members)
        },
    }
    documents["/redfish/v1/AccountService/Accounts/0"] = b'{"UserName": '  # malformed
    documents["/redfish/v1/AccountService/Accounts/1"] = b"[1, 2]"  # not an object
    result, _ = _walk(documents)
    assert len(result.fetched) == 2 + 32
    errors = dict(result.failed["account"])
    assert errors["/redfish/v1/AccountService/Accounts/0"].startswith("malformed JSON")
    assert errors["/redfish/v1/AccountService/Accounts/1"] == "JSON is not an object"
    assert result.counts["accounts"] == 100


def test_dell_attributes_feed_the_same_facts() -> None:
    # Attribute names as in the iDRAC 9 guide and the BMC note (no Dell capture is vendored).
    attributes = {
        "IPMILan.1.Enable": "Enabled",
        "WebServer.1.TLSProtocol": "TLS 1.1 and Higher",
        "SNMP.1.AgentEnable": "Enabled",
        "SNMP.1.AgentCommunity": "public",
        "SNMP.1.SNMPProtocol": "All",
        "Telnet.1.Enable": "Disabled",
        "SSH.1.Enable": "Enabled",
        "IPBlocking.1.BlockEnable": "Disabled",
        "IPBlocking.1.FailCount": 3,
        "OS-BMC.1.AdminState": "Enabled",
        "Syslog.1.SysLogEnable": "Disabled",
        "Lockdown.1.SystemLockdown": "Disabled",
    }
    documents: dict[str, Any] = {
        "/redfish/v1": {"Managers": {"@odata.id": "/redfish/v1/Managers"}},
        "/redfish/v1/Managers": {
            "Members": [{"@odata.id": "/redfish/v1/Managers/iDRAC.Embedded.1"}]
        },
        "/redfish/v1/Managers/iDRAC.Embedded.1": {
            "Model": "14G Monolithic",
            "FirmwareVersion": "3.34.34.34",
            "Links": {
                "Oem": {
                    "Dell": {
                        "DellAttributes": [
                            {"@odata.id": "/redfish/v1/Managers/iDRAC.Embedded.1/Attributes"}
                        ]
                    }
                }
            },
            "Oem": {"Dell": {}},
        },
        "/redfish/v1/Managers/iDRAC.Embedded.1/Attributes": {"Attributes": attributes},
    }
    obs, _ = _facts(documents)
    facts = obs.observed
    assert facts["bmc.vendor"] == "Dell"
    assert facts["bmc.ipmi_over_lan"] is True
    assert facts["bmc.tls.configured_legacy"] == ["TLSv1.1"]
    assert facts["bmc.snmp"]["v1"] is True and facts["bmc.snmp"]["default_community"] is True
    assert facts["bmc.protocols"]["Telnet"]["enabled"] is False
    assert facts["bmc.account.ip_blocking"]["enabled"] is False
    assert facts["bmc.host_interface.credential_free"]["value"] is True
    assert facts["bmc.physical"]["config_lock"] == "Disabled"


def test_anonymous_probe_links_skip_foreign_hosts() -> None:
    root = {
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
        "AccountService": {"@odata.id": "/redfish/v1/AccountService"},
        "Systems": {"@odata.id": "https://other.example/redfish/v1/Systems"},
    }
    assert anonymous_probe_links(root, BASE) == [
        "/redfish/v1/SessionService/Sessions",
        "/redfish/v1/AccountService",
    ]


def test_expand_reads_collections_in_one_request(shared_dir: Path) -> None:
    tree = MockupTree(shared_dir / "redfish-mockups/hpe-ilo-redfish-emulator/DL380a")
    assert tree.expands  # iLO advertises ExpandQuery Levels + NoLinks

    def run(expanding: bool) -> tuple[Walk, list[str]]:
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path.rstrip("/") or "/"
            query = request.url.query.decode() if expanding else ""
            seen.append(f"{path}?{query}" if query else path)
            body = tree.get(path, query)
            return (
                httpx.Response(404, json={}) if body is None else httpx.Response(200, content=body)
            )

        async def go() -> Walk:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                reader = RedfishReader(client, BASE, ("u", "p"))
                root = await reader.get("/redfish/v1/", anonymous=True)
                assert root.data is not None
                return await walk(reader, root.data, Walk())

        return asyncio.run(go()), seen

    expanded, with_expand = run(True)
    plain, without = run(False)
    assert any("$expand=.($levels=1)" in p for p in with_expand)
    assert len(with_expand) < len(without) / 2
    for walked in (expanded, plain):
        assert len(walked.all("firmware")) == 34 and len(walked.all("hpe_security_param")) == 13

    def facts(walked: Walk) -> dict[str, Any]:
        obs = Observations()
        from_walk(obs, walked)
        return obs.observed

    assert facts(expanded) == facts(plain)
