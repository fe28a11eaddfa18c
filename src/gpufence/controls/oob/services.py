"""BMC scan controls on services and surroundings (OOB-018 .. OOB-025): legacy protocols, consoles,
the host-to-BMC path, NIC placement, off-box logging, time, physical security, the vendor
dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._bmc import (
    Verdict,
    failing,
    is_enabled,
    passing,
    per_bmc,
)
from gpufence.controls.engine import Outcome, control
from gpufence.controls.oob._references import (
    DSP0266,
    HPE_ILO,
    NSA_BMC,
)
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.observed_bmc import ObservedBmc, Snmp
from gpufence.model.snapshot import Snapshot


@control(
    id="OOB-018",
    title="Cleartext or legacy management protocols enabled on a BMC",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Telnet, FTP and SNMPv1/v2c send passwords and community strings in clear; "
    "default communities and SSDP advertise the BMC to anyone on the segment.",
    remediation="Disable Telnet, FTP, SNMPv1/v2c and SSDP; use SSH and SNMPv3 with "
    "authentication and privacy, and never the 'public'/'private' communities.",
    references=(NSA_BMC, HPE_ILO),
)
def legacy_protocols(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        protocols, snmp = f.protocols, f.snmp or Snmp()
        if protocols is None and f.snmp is None:
            return None
        high = [name for name in ("Telnet", "FTP") if is_enabled(protocols, name)]
        high += [f"SNMP{v}" for v, on in (("v1", snmp.v1), ("v2c", snmp.v2c)) if on is True]
        if snmp.default_community:
            high.append("default SNMP community")
        medium = ["SSDP"] if is_enabled(protocols, "SSDP") else []
        if high:
            return failing("enabled: " + ", ".join(high + medium))
        if medium:
            return failing("enabled: SSDP (advertises the BMC on the segment)", Severity.LOW)
        # A protocol the BMC does not report is not a protocol that is off (as OOB-003/005).
        unreported = [n for n in ("Telnet", "FTP", "SSDP") if n not in (protocols or {})]
        if snmp.v1 is None and snmp.v2c is None and snmp.enabled is not False:
            unreported.append("SNMP versions")
        if unreported:
            return Verdict(
                Status.NOT_EVALUATED,
                "cannot judge the enabled protocols: the BMC does not report "
                + ", ".join(unreported),
            )
        return passing("no Telnet, FTP, SNMPv1/v2c or SSDP enabled")

    yield from per_bmc(snap, "the enabled protocols", ("bmc.protocols", "bmc.snmp"), judge)


@control(
    id="OOB-019",
    title="BMC remote console reachable over Telnet or unencrypted",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="A serial or shell console over Telnet, or unencrypted KVM/virtual media, exposes "
    "keystrokes, screens and mounted images of the host to the network.",
    remediation="Offer consoles over SSH only, enable KVM and virtual-media encryption, and turn "
    "off console services that are not used.",
    references=(NSA_BMC, HPE_ILO),
)
def console_exposure(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        console = f.console
        if console is None:
            return None
        # ConnectTypesSupported lists what the console can speak; with the Telnet service off
        # (NetworkProtocol or the vendor's attribute) it is not offered over Telnet.
        telnet = f.protocols.get("Telnet") if f.protocols is not None else None
        telnet_off = telnet is not None and telnet.enabled is False
        services = console.services()
        reasons = [
            f"{name} offers Telnet"
            for name in ("SerialConsole", "CommandShell")
            if (service := services.get(name)) is not None
            and service.enabled is True
            and "Telnet" in (service.connect_types or ())
            and not telnet_off
        ]
        for encrypted, label in (
            (console.virtual_media_encrypted, "virtual media"),
            (console.kvm_encrypted, "KVM"),
        ):
            if encrypted is False:
                reasons.append(f"{label} encryption off")
        if reasons:
            return failing("; ".join(reasons))
        enabled = [name for name, service in services.items() if service.enabled is True]
        return passing(
            f"consoles ({', '.join(enabled) or 'none'}) without Telnet or disabled encryption"
        )

    yield from per_bmc(snap, "the remote consoles", ("bmc.console", "bmc.protocols"), judge)


def _tenant_root_nodes(snap: Snapshot, nodes: tuple[str, ...]) -> list[str]:
    by_name = {v.node.name: v for v in snap.nodes}
    return [n for n in nodes if n in by_name and by_name[n].pool.tenant_root]


@control(
    id="OOB-020",
    title="Host OS can reach the BMC without credentials",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="A Redfish host interface with AuthNone or credential bootstrapping, or KCS/CHIF "
    "without host authentication, lets root on the host (a bare-metal tenant) reconfigure the "
    "BMC, add users or flash firmware, and so attack the next tenant of that server.",
    remediation="Disable the host interface or require credentials on it (no AuthNone, "
    "CredentialBootstrapping off); on iLO enable 'Require Host Authentication'; on iDRAC disable "
    "OS-to-iDRAC pass-through where tenants have root.",
    references=(NSA_BMC, HPE_ILO, DSP0266),
)
def host_to_bmc(snap: Snapshot) -> Iterator[Outcome]:
    nodes_of = {v.resource: v.nodes for v in snap.bmcs}
    for outcome in per_bmc(
        snap, "the host-to-BMC path", ("bmc.host_interface.credential_free",), _judge_host_path
    ):
        exposed = _tenant_root_nodes(snap, nodes_of.get(outcome.resource, ()))
        if outcome.status is Status.FAIL and exposed:
            # Tenants with root on the host are exactly who must not reach the BMC.
            yield Outcome(
                outcome.status,
                outcome.resource,
                f"{outcome.message}; tenants have root on {', '.join(exposed)}",
                outcome.evidence,
                outcome.pointer,
                Severity.CRITICAL,
            )
        else:
            yield outcome


def _judge_host_path(f: ObservedBmc) -> Verdict | None:
    info = f.host_credential_free
    if info is None:
        return None
    if info.value:
        return failing("; ".join(info.paths or ("credential-free host path",)))
    return passing("no credential-free path from the host to the BMC")


@control(
    id="OOB-021",
    title="BMC shares a host NIC without a management VLAN",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="A shared (NC-SI) BMC port without its own VLAN puts the BMC on the host's data "
    "network, where the host's tenant can reach it.",
    remediation="Use the dedicated management port, or tag the shared port with a management VLAN "
    "that the host's networks do not carry.",
    references=(NSA_BMC,),
)
def shared_nic_without_vlan(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        if f.shared_nic is None:
            return None
        if f.shared_nic is False:
            return passing("the BMC uses a dedicated management port")
        ports = f.nic_vlan or ()
        untagged = [p.id for p in ports if not p.vlan_enabled]
        if untagged or not ports:
            return failing(f"shared NIC; untagged management interfaces: {untagged or 'unknown'}")
        return passing("shared NIC, tagged with a management VLAN")

    yield from per_bmc(snap, "the BMC port placement", ("bmc.shared_nic", "bmc.nic_vlan"), judge)


@control(
    id="OOB-022",
    title="BMC sends no events or logs off the box",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="A compromised BMC can erase its own log; without events or syslog leaving the "
    "box, tampering and brute-force attempts go unseen.",
    remediation="Subscribe a collector to Redfish events (EventService) or enable remote syslog, "
    "and alert on BMC logins, user and firmware changes.",
    references=(NSA_BMC,),
)
def no_remote_logging(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        info = f.remote_logging
        if info is None:
            return None
        if info.value:
            return passing("events/logs leave the box: " + ", ".join(info.sinks))
        return failing("no Redfish event subscription and no remote syslog")

    yield from per_bmc(snap, "off-box logging", ("bmc.remote_logging",), judge)


@control(
    id="OOB-023",
    title="BMC has no NTP time source",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="A BMC clock that drifts makes its logs useless as evidence and can break "
    "certificate validation.",
    remediation="Configure NTP servers on the BMC (NetworkProtocol NTP, or the vendor date/time "
    "service).",
    references=(NSA_BMC,),
)
def no_ntp(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        info = f.ntp
        if info is None:
            return None
        if info.value:
            return passing("time from " + ", ".join(info.servers))
        if info.unlisted:
            return Verdict(
                Status.NOT_EVALUATED,
                "cannot judge the time source: NTP is enabled but the BMC lists no servers",
            )
        return failing("no NTP server configured")

    yield from per_bmc(snap, "the time source", ("bmc.ntp",), judge)


@control(
    id="OOB-024",
    title="BMC security override or chassis intrusion is active",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="The security override switch disables BMC login checks; an intrusion alert means "
    "someone opened the chassis and may have tampered with firmware or hardware.",
    remediation="Set the override switch off, investigate and clear intrusion alerts, and lock "
    "the server configuration where the vendor offers it.",
    references=(HPE_ILO, NSA_BMC),
)
def physical_override(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        physical = f.physical
        if physical is None:
            return None
        reasons = []
        if (physical.override_switch or "").lower() == "on":
            reasons.append("security override switch is on")
        reasons += [
            f"chassis {i.chassis}: intrusion sensor {i.sensor}"
            for i in physical.intrusion
            if i.sensor not in ("Normal", None)
        ]
        if reasons:
            return failing("; ".join(reasons))
        return passing("override switch off; intrusion sensors normal")

    yield from per_bmc(snap, "the physical security state", ("bmc.physical",), judge)


@control(
    id="OOB-025",
    title="BMC vendor security dashboard reports a risk",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="The vendor's own security dashboard flags a setting as a risk (or someone told "
    "it to ignore one), so the BMC runs below its vendor's hardening baseline.",
    remediation="Fix each parameter the dashboard rates 'Risk' (its RecommendedAction says how) "
    "and do not set Ignore on security parameters.",
    references=(HPE_ILO,),
)
def vendor_dashboard(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        board = f.vendor_dashboard
        if board is None:
            return None
        if board.vendor is None:
            return passing("not applicable: this BMC has no vendor security dashboard")
        risks = [f"{p.name} ({p.state})" for p in board.params if p.status == "Risk"]
        ignored = [p.name for p in board.params if p.ignored]
        if risks or ignored:
            text = f"{board.vendor}: Risk: {', '.join(risks) or 'none'}"
            return failing(text + (f"; ignored: {', '.join(ignored)}" if ignored else ""))
        return passing(f"{board.vendor}: every parameter Ok")

    yield from per_bmc(snap, "the vendor security dashboard", ("bmc.vendor_dashboard",), judge)
