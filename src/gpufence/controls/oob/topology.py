"""Out-of-band (BMC) controls from the inventory (declared facts, network topology).

The controls judged from a BMC scan (OOB-005+) are in :mod:`~gpufence.controls.oob.transport`,
:mod:`~gpufence.controls.oob.logins` and :mod:`~gpufence.controls.oob.services`.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._bmc import no_bmcs
from gpufence.controls._common import expect_flag
from gpufence.controls.engine import Outcome, control
from gpufence.controls.oob._references import (
    CVE_54085,
    IPMI_RAKP,
    NSA_BMC,
    REDFISH,
)
from gpufence.fabric.reach import route_path, tenant_entries
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import Snapshot


@control(
    id="OOB-001",
    title="BMC reachable from a tenant network",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="A BMC is root-equivalent on its server (power, firmware, console, virtual "
    "media); a tenant who can reach it can attack every tenant that later runs on that host.",
    remediation="Put BMCs on a dedicated out-of-band network with no route from tenant, compute "
    "or storage networks; avoid shared-NIC (NC-SI) BMC ports on bare-metal tenant hosts.",
    references=(NSA_BMC, REDFISH),
)
def bmc_reachable_from_tenants(snap: Snapshot) -> Iterator[Outcome]:
    if (missing := no_bmcs(snap)) is not None:
        yield missing
        return
    entries = tenant_entries(snap.inventory)
    networks = snap.inventory.networks
    paths: dict[tuple[str, str], list[str] | None] = {}  # many BMCs share a few networks

    def path_between(start: str, goal: str) -> list[str] | None:
        if (start, goal) not in paths:
            paths[start, goal] = route_path(networks, start, goal)
        return paths[start, goal]

    # Many BMCs share a few networks: what reaches each network is worked out once.
    reach: dict[str, tuple[list[str], list[dict[str, object]]]] = {}

    def reaching(network: str) -> tuple[list[str], list[dict[str, object]]]:
        if network not in reach:
            reasons: list[str] = []
            witnesses: list[dict[str, object]] = []
            for entry in entries:
                path = path_between(entry.network, network)
                if path is not None:
                    reasons.append(
                        f"tenant {entry.tenant} reaches {network} via {' -> '.join(path)}"
                    )
                    witnesses.append({"tenant": entry.tenant, "entry": entry.reason, "path": path})
            reach[network] = reasons, witnesses
        return reach[network]

    root_nodes = {v.node.name: v for v in snap.nodes if v.pool.tenant_root and v.tenants}
    for view in snap.bmcs:
        bmc = view.bmc
        network_reasons, network_witnesses = reaching(bmc.network)
        reasons = list(network_reasons)
        witnesses = list(network_witnesses)
        shared = view.facts["shared_nic"]
        for node in view.nodes:
            if shared.value is True and node in root_nodes:
                tenants = ", ".join(t.name for t in root_nodes[node].tenants)
                reasons.append(f"shares a NIC with node {node}, where {tenants} have root")
        if reasons:
            yield Outcome(
                Status.FAIL,
                view.resource,
                reasons[0] + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""),
                {"network": bmc.network, "paths": witnesses, "reasons": reasons},
                (*view.pointer, "network"),
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                f"no tenant network routes to {bmc.network}",
                {"network": bmc.network},
                (*view.pointer, "network"),
            )


def _flag_control(
    snap: Snapshot, fact_name: str, what: str, bad: str, good: str
) -> Iterator[Outcome]:
    """Per BMC: the boolean fact must be false (``bad`` when true, ``good`` when false)."""
    if (missing := no_bmcs(snap)) is not None:
        yield missing
        return
    for view in snap.bmcs:
        fact = view.facts[fact_name]
        yield expect_flag(view.resource, what, fact_name, fact, want=False, says=(bad, good))


@control(
    id="OOB-002",
    title="BMC accepts default credentials",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="Factory passwords (root/calvin, ADMIN/ADMIN, ...) are public; anyone who can "
    "reach the BMC owns the server, below the OS and any tenant isolation.",
    remediation="Set a unique strong password per BMC (or per-BMC random passwords in a vault), "
    "disable unused accounts, and integrate BMC login with LDAP/AD and MFA where supported.",
    references=(NSA_BMC, "https://nvd.nist.gov/vuln/detail/CVE-2022-40242"),
)
def default_credentials(snap: Snapshot) -> Iterator[Outcome]:
    yield from _flag_control(
        snap,
        "default_credentials",
        "whether default credentials work",
        "a factory-default account still works",
        "no default credentials",
    )


@control(
    id="OOB-003",
    title="IPMI over LAN enabled on a BMC",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="IPMI 2.0 RAKP discloses a crackable password hash to anyone who asks, and "
    "cipher suite 0 lets some BMCs log in without a password.",
    remediation="Disable IPMI over LAN (use Redfish over TLS); if it must stay, restrict UDP 623 "
    "to the management network and disable cipher suite 0 and anonymous/null users.",
    references=(NSA_BMC, IPMI_RAKP),
)
def ipmi_over_lan(snap: Snapshot) -> Iterator[Outcome]:
    yield from _flag_control(
        snap,
        "ipmi_over_lan",
        "whether IPMI over LAN is on",
        "IPMI over LAN is enabled",
        "IPMI over LAN is disabled",
    )


@control(
    id="OOB-004",
    title="BMC reachable from the internet",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="Internet-facing BMCs are scanned continuously and hit by auth-bypass exploits "
    "within days of disclosure (e.g. CVE-2024-54085 on AMI MegaRAC, in CISA KEV).",
    remediation="Remove every route from the internet to the BMC network; reach BMCs only "
    "through a bastion or VPN on the management network.",
    references=(NSA_BMC, CVE_54085),
)
def bmc_on_internet(snap: Snapshot) -> Iterator[Outcome]:
    if (missing := no_bmcs(snap)) is not None:
        yield missing
        return
    networks = snap.inventory.networks
    internet = [n.name for n in networks if n.internet]
    reach: dict[str, list[str] | None] = {}  # BMC network -> path from the internet
    for view in snap.bmcs:
        goal = view.bmc.network
        if goal not in reach:
            found = (route_path(networks, name, goal) for name in internet)
            reach[goal] = next((p for p in found if p is not None), None)
        path = reach[goal]
        yield Outcome(
            Status.FAIL if path else Status.PASS,
            view.resource,
            f"internet reaches {view.bmc.network} via {' -> '.join(path)}"
            if path
            else f"no internet-facing network routes to {view.bmc.network}",
            {"network": view.bmc.network, "path": path or []},
            (*view.pointer, "network"),
        )


TOPOLOGY_CONTROLS = ("OOB-001", "OOB-004")
"""Controls judged from the inventory's network topology, not from a BMC scan."""
