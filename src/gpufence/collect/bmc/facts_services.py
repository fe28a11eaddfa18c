"""Fact extraction for services, host paths, logging, time and network placement (pure).

Part of :mod:`gpufence.collect.bmc.facts`: reads roles of a :class:`~redfish.Walk` (DMTF
properties first, then the iLO and iDRAC equivalents) into ``bmc.*`` facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpufence.collect.bmc.observations import Observations, enabled, get
from gpufence.collect.bmc.redfish import Json, Walk

__all__ = ["placement", "services"]

_PROTOCOLS = (
    "HTTP",
    "HTTPS",
    "IPMI",
    "SSH",
    "SNMP",
    "SSDP",
    "Telnet",
    "KVMIP",
    "VirtualMedia",
    "RFB",
    "NTP",
    "FTP",
    "RDP",
)
_DEFAULT_COMMUNITIES = {"public", "private"}


def services(obs: Observations, walk: Walk, params: dict[str, Json], dell: dict[str, Any]) -> None:
    """Record the BMC's network services (protocols, ports, settings) from the walk."""
    protocol = walk.first("network_protocol")
    protocols: dict[str, Any] = {}
    if protocol is not None:
        for name in _PROTOCOLS:
            entry = protocol.get(name)
            if isinstance(entry, dict) and "ProtocolEnabled" in entry:
                protocols[name] = {
                    "enabled": enabled(entry["ProtocolEnabled"]),
                    "port": entry.get("Port"),
                }
    for attr, name in (
        ("SSH.1.Enable", "SSH"),
        ("Telnet.1.Enable", "Telnet"),
        ("IPMILan.1.Enable", "IPMI"),
    ):
        if attr in dell:
            protocols[name] = {"enabled": enabled(dell[attr]), "port": None}
    if protocols:
        obs.set("bmc.protocols", protocols)
    obs.miss("bmc.protocols", walk.why_missing("network_protocol"))
    # IPMI over LAN from configuration (the UDP probe, when it answers, takes precedence).
    ipmi: bool | None = protocols.get("IPMI", {}).get("enabled")
    if "IPMI/DCMI Over LAN" in params:
        ipmi = enabled(params["IPMI/DCMI Over LAN"].get("State"))
    obs.set_default("bmc.ipmi_over_lan", ipmi)
    _snmp(obs, walk, protocol, dell)
    _console(obs, walk, dell)
    _host_interface(obs, walk, protocol, params, dell)
    _logging_and_time(obs, walk, protocol, dell)


def _snmp(obs: Observations, walk: Walk, protocol: Json | None, dell: dict[str, Any]) -> None:
    snmp: dict[str, Any] = {}
    entry = get(protocol, "SNMP")
    if isinstance(entry, dict):
        on = enabled(entry.get("ProtocolEnabled"))
        for version, key in (
            ("v1", "EnableSNMPv1"),
            ("v2c", "EnableSNMPv2c"),
            ("v3", "EnableSNMPv3"),
        ):
            if key in entry:
                snmp[version] = bool(on) and bool(enabled(entry[key]))
        communities = [
            c.get("CommunityString")
            for c in entry.get("CommunityStrings") or []
            if isinstance(c, dict)
        ]
        snmp["default_community"] = any(
            isinstance(c, str) and c.lower() in _DEFAULT_COMMUNITIES for c in communities
        )
        if on is False:
            snmp.update({"v1": False, "v2c": False, "v3": False})
        snmp["enabled"] = on
    for service in walk.all("hpe_snmp"):
        on = snmp.get("enabled", True)
        if "SNMPv1Enabled" in service:
            snmp["v1"] = bool(on) and bool(enabled(service["SNMPv1Enabled"]))
        if "SNMPv3RequestsEnabled" in service:
            snmp["v3"] = bool(on) and bool(enabled(service["SNMPv3RequestsEnabled"]))
        reads = service.get("ReadCommunities") or []
        snmp["default_community"] = snmp.get("default_community", False) or any(
            isinstance(c, str) and c.lower() in _DEFAULT_COMMUNITIES for c in reads
        )
    if "SNMP.1.AgentEnable" in dell:
        on = enabled(dell["SNMP.1.AgentEnable"])
        version = str(dell.get("SNMP.1.SNMPProtocol", "")).lower()
        snmp.update(
            {
                "enabled": on,
                "v1": bool(on) and version == "all",
                "v2c": bool(on) and version == "all",
                "v3": bool(on),
            }
        )
        snmp["default_community"] = str(dell.get("SNMP.1.AgentCommunity", "")).lower() in (
            _DEFAULT_COMMUNITIES
        )
    if snmp:
        obs.set("bmc.snmp", snmp)
    obs.miss("bmc.snmp", walk.why_missing("network_protocol"))


def _console(obs: Observations, walk: Walk, dell: dict[str, Any]) -> None:
    manager = walk.first("manager")
    if manager is None:
        obs.miss("bmc.console", walk.why_missing("manager"))
        return
    console: dict[str, Any] = {}
    for key in ("GraphicalConsole", "SerialConsole", "CommandShell"):
        entry = manager.get(key)
        if isinstance(entry, dict):
            console[key] = {
                "enabled": enabled(entry.get("ServiceEnabled")),
                "connect_types": entry.get("ConnectTypesSupported") or [],
            }
    protocol = walk.first("network_protocol")
    encrypted = get(protocol, "Oem.Hpe.VirtualMediaEncryptionEnabled")
    if encrypted is not None:
        console["virtual_media_encrypted"] = enabled(encrypted)
    if "VirtualConsole.1.EncryptEnable" in dell:
        console["kvm_encrypted"] = enabled(dell["VirtualConsole.1.EncryptEnable"])
    obs.set("bmc.console", console)


def _host_interface(
    obs: Observations,
    walk: Walk,
    protocol: Json | None,
    params: dict[str, Json],
    dell: dict[str, Any],
) -> None:
    paths: list[str] = []
    known = False
    for hi in walk.all("host_interface"):
        known = True
        if not enabled(hi.get("InterfaceEnabled")):
            continue
        modes = hi.get("AuthenticationModes") or []
        label = f"host interface {hi.get('Id', '?')}"
        if "AuthNone" in modes:
            paths.append(f"{label} allows AuthNone")
        if enabled(get(hi, "CredentialBootstrapping.Enabled")):
            role = get(hi, "CredentialBootstrapping.RoleId") or "?"
            paths.append(f"{label} bootstraps {role} credentials for the host")
    kcs = enabled(get(protocol, "Oem.Hpe.KcsEnabled"))
    require = params.get("Require Host Authentication")
    if require is not None:
        known = True
        if not enabled(require.get("State")) and kcs is not False:
            paths.append(
                "iLO 'Require Host Authentication' is disabled: host tools over KCS/CHIF "
                "configure iLO without credentials"
            )
    if "OS-BMC.1.AdminState" in dell:
        known = True
        if enabled(dell["OS-BMC.1.AdminState"]):
            paths.append("iDRAC OS-to-iDRAC pass-through is enabled")
    if known:
        obs.set("bmc.host_interface.credential_free", {"value": bool(paths), "paths": paths})
    obs.miss("bmc.host_interface.credential_free", walk.why_missing("host_interfaces"))


def _real(servers: Iterable[Any]) -> list[str]:
    unset = ("", "0.0.0.0", "::")  # noqa: S104 - iLO's "no server" placeholders, not a bind
    return [s for s in servers if isinstance(s, str) and s.strip() not in unset]


def _logging_and_time(
    obs: Observations, walk: Walk, protocol: Json | None, dell: dict[str, Any]
) -> None:
    sinks: list[str] = []
    known = False
    if "event_subscriptions" in walk.counts:
        known = True
        if walk.counts["event_subscriptions"] > 0:
            sinks.append(f"{walk.counts['event_subscriptions']} Redfish event subscription(s)")
    syslog = enabled(get(protocol, "Oem.Hpe.RemoteSyslogEnabled"))
    if syslog is not None:
        known = True
        if syslog:
            sinks.append("remote syslog")
    if "Syslog.1.SysLogEnable" in dell:
        known = True
        if enabled(dell["Syslog.1.SysLogEnable"]):
            sinks.append("remote syslog")
    if known:
        obs.set("bmc.remote_logging", {"value": bool(sinks), "sinks": sinks})
    obs.miss("bmc.remote_logging", walk.why_missing("event_subscriptions"))
    servers: list[str] = []
    ntp_known = False
    unlisted = False
    ntp = get(protocol, "NTP")
    if isinstance(ntp, dict):
        ntp_known = True
        if enabled(ntp.get("ProtocolEnabled")):
            # Enabled with an empty (or placeholder-only) list is no time source; enabled with
            # no list at all leaves the servers unknown.
            if isinstance(ntp.get("NTPServers"), list):
                servers += _real(ntp["NTPServers"])
            else:
                unlisted = True
    for dt in walk.all("hpe_datetime"):
        ntp_known = True
        servers += _real((dt.get("StaticNTPServers") or []) + (dt.get("NTPServers") or []))
    manager = walk.first("manager")
    if manager is not None and manager.get("DateTimeSource"):
        ntp_known = True
        if manager["DateTimeSource"] == "NTP":
            servers.append("(DateTimeSource NTP)")
    if "NTPConfigGroup.1.NTPEnable" in dell:
        ntp_known = True
        if enabled(dell["NTPConfigGroup.1.NTPEnable"]):
            servers.append("(iDRAC NTP enabled)")
    if ntp_known:
        info: dict[str, Any] = {"value": bool(servers), "servers": sorted(set(servers))}
        if unlisted and not servers:
            info["unlisted"] = True
        obs.set("bmc.ntp", info)
    obs.miss("bmc.ntp", "the manager reports no time source settings")


def placement(obs: Observations, walk: Walk) -> None:
    """Record how the BMC's management port is placed (dedicated or shared NIC)."""
    nics = walk.all("manager_nic")
    if not nics and not walk.counts.get("shared_ports"):
        obs.miss("bmc.shared_nic", walk.why_missing("manager_nics"))
        obs.miss("bmc.nic_vlan", walk.why_missing("manager_nics"))
        return
    shared = bool(walk.counts.get("shared_ports"))
    vlans: list[Json] = []
    for nic in nics:
        if isinstance(get(nic, "Links.HostInterface"), dict):
            continue  # the virtual NIC towards the host, not a management port
        kind = get(nic, "Oem.Hpe.InterfaceType")
        active = enabled(nic.get("InterfaceEnabled")) is not False
        if kind == "HostInterface":
            continue
        if kind == "Shared" and active:
            shared = True
        if active:
            vlan: Json = nic["VLAN"] if isinstance(nic.get("VLAN"), dict) else {}
            vlans.append(
                {
                    "id": nic.get("Id"),
                    "vlan_enabled": enabled(vlan.get("VLANEnable")),
                    "vlan_id": vlan.get("VLANId"),
                    "type": kind,
                }
            )
    obs.set("bmc.shared_nic", shared)
    obs.set("bmc.nic_vlan", vlans)
