"""Redfish facts read right (issue 11): captures written in each vendor's documented shape.

Each test feeds the real reader, walker and extractor (httpx MockTransport, no network) a capture
that misled the scanner before: the facts must say what the BMC says, or that it is unknown.
Shapes: DMTF Redfish schemas (DSP0266/DSP8010), Dell iDRAC9 attribute registry names
(iDRAC.Embedded.1 Attributes, e.g. ``SysLog.1.SysLogEnable``), HPE iLO 5/6 ``Oem.Hpe`` manager
properties (the DL380a capture in ../shared/redfish-mockups).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from gpufence.collect.bmc.facts import Observations, from_anonymous
from gpufence.collect.bmc.redfish import RedfishReader, Walk, walk
from gpufence.controls import controls_by_id
from gpufence.controls.engine import run_controls
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import Status
from gpufence.testing.mockup_server import MockupTree
from tests.collect.bmc.test_walk_facts import BASE, _facts
from tests.inventories import base_inventory, write_inventory

ROOT = "/redfish/v1"


def _dell(attributes: dict[str, Any], manager: dict[str, Any] | None = None) -> dict[str, Any]:
    """An iDRAC9 service: root -> Managers -> iDRAC.Embedded.1 -> its Attributes document."""
    idrac = f"{ROOT}/Managers/iDRAC.Embedded.1"
    return {
        ROOT: {"Managers": {"@odata.id": f"{ROOT}/Managers"}, "Vendor": "Dell"},
        f"{ROOT}/Managers": {"Members": [{"@odata.id": idrac}]},
        idrac: {
            "Id": "iDRAC.Embedded.1",
            "Model": "16G Monolithic",
            "FirmwareVersion": "7.00.00.00",
            "Links": {"Oem": {"Dell": {"DellAttributes": [{"@odata.id": f"{idrac}/Attributes"}]}}},
            **(manager or {}),
        },
        f"{idrac}/Attributes": {"Attributes": attributes},
    }


def test_dell_attribute_keys_are_case_insensitive() -> None:
    # The iDRAC9 attribute registry spells it SysLog.1.SysLogEnable (capital L in "SysLog").
    obs, _ = _facts(_dell({"SysLog.1.SysLogEnable": "Enabled", "ssh.1.enable": "Disabled"}))
    assert obs.observed["bmc.remote_logging"] == {"value": True, "sinks": ["remote syslog"]}
    assert obs.observed["bmc.protocols"]["SSH"]["enabled"] is False


def test_console_connect_types_are_not_telnet_when_telnet_is_off() -> None:
    manager = {
        "SerialConsole": {"ServiceEnabled": True, "ConnectTypesSupported": ["SSH", "Telnet"]},
        "CommandShell": {"ServiceEnabled": True, "ConnectTypesSupported": ["SSH", "Telnet"]},
    }
    docs = _dell({"Telnet.1.Enable": "Disabled"}, manager)
    docs[f"{ROOT}/Managers/iDRAC.Embedded.1"]["NetworkProtocol"] = {
        "@odata.id": f"{ROOT}/Managers/iDRAC.Embedded.1/NetworkProtocol"
    }
    docs[f"{ROOT}/Managers/iDRAC.Embedded.1/NetworkProtocol"] = {
        "Telnet": {"ProtocolEnabled": False, "Port": 23},
        "SSH": {"ProtocolEnabled": True, "Port": 22},
    }
    obs, _ = _facts(docs)
    finding = _judge("OOB-019", obs)
    assert finding.status is Status.PASS, finding.message
    # The same console with Telnet on is a FAIL: the test can fail.
    obs.observed["bmc.protocols"]["Telnet"]["enabled"] = True  # type: ignore[index]
    assert _judge("OOB-019", obs).status is Status.FAIL


def _system_docs(system: dict[str, Any]) -> dict[str, Any]:
    return {
        ROOT: {"Systems": {"@odata.id": f"{ROOT}/Systems"}},
        f"{ROOT}/Systems": {"Members": [{"@odata.id": f"{ROOT}/Systems/1"}]},
        f"{ROOT}/Systems/1": {"Id": "1", **system},
    }


def test_an_empty_trusted_module_entry_is_unknown_not_no_tpm() -> None:
    obs, _ = _facts(_system_docs({"TrustedModules": [{}]}))
    (system,) = obs.observed["bmc.systems"]  # type: ignore[misc]
    assert system["tpm"] is None
    assert _judge("FW-004", obs).status is Status.NOT_EVALUATED
    # A real TPM 1.2 entry is still judged (FAIL: FW-004 wants TPM 2.0).
    obs, _ = _facts(
        _system_docs(
            {"TrustedModules": [{"InterfaceType": "TPM1_2", "Status": {"State": "Enabled"}}]}
        )
    )
    assert _judge("FW-004", obs).status is Status.FAIL


def test_hpe_idle_connection_timeout_is_read(shared_dir: Path) -> None:
    tree = MockupTree(shared_dir / "redfish-mockups/hpe-ilo-redfish-emulator/DL380a")
    docs: dict[str, Any] = {k: json.loads(v) for k, v in tree.documents.items()}
    manager = docs[f"{ROOT}/Managers/1"]
    assert manager["Oem"]["Hpe"]["IdleConnectionTimeoutMinutes"] == 30
    obs, _ = _facts(docs)
    assert obs.observed["bmc.session.vendor_idle_timeout"]["seconds"] == 1800  # type: ignore[index]
    assert _judge("OOB-017", obs).status is Status.PASS
    manager["Oem"]["Hpe"]["IdleConnectionTimeoutMinutes"] = 0  # iLO: 0 = never time out
    obs, _ = _facts(docs)
    finding = _judge("OOB-017", obs)
    assert finding.status is Status.FAIL and "never" in finding.message


def test_ntp_enabled_with_an_empty_server_list_is_no_time_source() -> None:
    docs = {
        ROOT: {"Managers": {"@odata.id": f"{ROOT}/Managers"}},
        f"{ROOT}/Managers": {"Members": [{"@odata.id": f"{ROOT}/Managers/BMC"}]},
        f"{ROOT}/Managers/BMC": {
            "Id": "BMC",
            "NetworkProtocol": {"@odata.id": f"{ROOT}/Managers/BMC/NetworkProtocol"},
        },
        f"{ROOT}/Managers/BMC/NetworkProtocol": {
            "NTP": {"ProtocolEnabled": True, "NTPServers": ["", "0.0.0.0"]},
        },
    }
    obs, _ = _facts(docs)
    assert obs.observed["bmc.ntp"]["value"] is False  # type: ignore[index]
    assert _judge("OOB-023", obs).status is Status.FAIL
    del docs[f"{ROOT}/Managers/BMC/NetworkProtocol"]["NTP"]["NTPServers"]
    obs, _ = _facts(docs)
    assert _judge("OOB-023", obs).status is Status.NOT_EVALUATED


def test_protocols_absent_from_network_protocol_are_not_evaluated() -> None:
    docs = {
        ROOT: {"Managers": {"@odata.id": f"{ROOT}/Managers"}},
        f"{ROOT}/Managers": {"Members": [{"@odata.id": f"{ROOT}/Managers/BMC"}]},
        f"{ROOT}/Managers/BMC": {
            "Id": "BMC",
            "NetworkProtocol": {"@odata.id": f"{ROOT}/Managers/BMC/NetworkProtocol"},
        },
        f"{ROOT}/Managers/BMC/NetworkProtocol": {
            "HTTPS": {"ProtocolEnabled": True, "Port": 443},
            "SNMP": {"ProtocolEnabled": False},
        },
    }
    obs, _ = _facts(docs)
    finding = _judge("OOB-018", obs)
    assert finding.status is Status.NOT_EVALUATED and "Telnet, FTP, SSDP" in finding.message


def test_zero_anonymous_probes_leave_anonymous_reads_unknown() -> None:
    obs = Observations()
    from_anonymous(obs, {"RedfishVersion": "1.15.0"}, [], "https", probed=0)
    obs.finish("unknown")
    assert "bmc.redfish.anonymous_readable" not in obs.observed
    assert "no resource" in obs.missing["bmc.redfish.anonymous_readable"]
    assert _judge("OOB-008", obs).status is Status.NOT_EVALUATED
    probed = Observations()
    from_anonymous(probed, {}, [], "https", probed=4)
    assert _judge("OOB-008", probed).status is Status.PASS


def test_expand_refused_with_404_is_retried_as_a_plain_get() -> None:
    seen: list[str] = []
    docs = {
        ROOT: {
            "ProtocolFeaturesSupported": {"ExpandQuery": {"Levels": True, "NoLinks": True}},
            "Systems": {"@odata.id": f"{ROOT}/Systems"},
        },
        f"{ROOT}/Systems": {"Members": [{"@odata.id": f"{ROOT}/Systems/1"}]},
        f"{ROOT}/Systems/1": {"Id": "1", "TrustedModules": []},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/") or "/"
        query = request.url.query.decode()
        seen.append(f"{path}?{query}" if query else path)
        if query or path not in docs:
            return httpx.Response(404, json={})
        return httpx.Response(200, json=docs[path])

    async def run() -> Walk:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            reader = RedfishReader(client, BASE, ("u", "p"))
            root = await reader.get(f"{ROOT}/", anonymous=True)
            assert root.data is not None
            return await walk(reader, root.data, Walk())

    result = asyncio.run(run())
    assert any("$expand" in s for s in seen)
    assert f"{ROOT}/Systems" in seen
    assert [d.get("Id") for d in result.all("system")] == ["1"]


def test_mockup_server_tree_survives_a_null_root(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("null")
    (tmp_path / "Systems").mkdir()
    (tmp_path / "Systems" / "index.json").write_text('{"Members": [{"@odata.id": 5}]}')
    tree = MockupTree(tmp_path)
    assert tree.get(ROOT) == b"null" and not tree.expands
    assert tree._expand(f"{ROOT}/Systems") is not None  # odd members are served as they are


def _judge(control: str, obs: Observations) -> Any:
    """Run one control over a scan's observations for the base inventory's BMC."""
    import tempfile

    doc = EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": "bmc/n1-bmc",
            "collector": "gpufence-bmc-scan",
            "collected_at": "2026-11-20T09:00:00Z",
            "observed": obs.observed,
            "not_observed": [{"fact": f, "reason": r} for f, r in obs.missing.items()],
        }
    )
    from gpufence.load.inventory import load_snapshot

    with tempfile.TemporaryDirectory() as tmp:
        snapshot = load_snapshot(write_inventory(Path(tmp), base_inventory()), [(doc, "ev.json")])
        findings = run_controls(snapshot, [controls_by_id()[control]])
    (found,) = [f for f in findings if f.resource == "bmc/n1-bmc"]
    return found
