"""Firmware controls: Secure Boot, known-exploited BMC firmware, drift, TPM, integrity, updates.

Facts come from the inventory (``host.secure_boot``), from node evidence, and from BMC scans
(``bmc.*`` facts of ``bmc/<name>`` evidence, typed by
:class:`gpufence.model.observed_bmc.ObservedBmc` and read through
:func:`gpufence.controls._bmc.read_bmc`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from gpufence.catalog.vulnerabilities import Hit, judge_bmc, vulnerability_catalog
from gpufence.controls._bmc import Verdict, per_bmc, read_bmc, unscanned_fleet
from gpufence.controls._common import expect_flag, fact_evidence, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.observed_bmc import ObservedBmc, System
from gpufence.model.snapshot import NodeView, Pointer, Snapshot

_SP800_193 = "https://csrc.nist.gov/pubs/sp/800/193/final"
_NSA_BMC = "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF"
_KEV = "https://www.cisa.gov/known-exploited-vulnerabilities-catalog"
_SPDM = "https://www.dmtf.org/standards/spdm"


# -- FW-001 Secure Boot --------------------------------------------------------------------------


def _systems(snap: Snapshot, bmc_resource: str) -> tuple[tuple[System, ...], str]:
    typed, got = read_bmc(snap, bmc_resource, ("bmc.systems",))
    return typed.systems or (), got["bmc.systems"].origin


def _short(name: str | None) -> str:
    return (name or "").split(".")[0].lower()


def _system_of(node: NodeView, systems: tuple[System, ...], served: int) -> System | None:
    """The BMC system that is this node: by host name, or the only system of a one-node BMC."""
    named = [s for s in systems if _short(s.host_name) == node.node.name.lower()]
    if len(named) == 1:
        return named[0]
    if len(systems) == 1 and served == 1:
        return systems[0]
    return None


def _secure_boot_outcome(
    resource: str, system: System, origin: str, pointer: Pointer | None, declared: object = None
) -> Outcome:
    sb = system.secure_boot
    where = f"BMC system {system.id}"
    if sb is None or sb.enabled is None:
        return Outcome(
            Status.NOT_EVALUATED,
            resource,
            f"Secure Boot state is unknown: {where} has no readable SecureBoot resource",
            {"missing": "secure_boot", "system": system.id},
            pointer,
        )
    on = sb.enabled is True
    detail = f"SecureBootCurrentBoot={sb.current_boot}, mode={sb.mode}"
    evidence: dict[str, object] = {
        "secure_boot": {"value": on, "source": "observed", "origin": f"{where}: {origin}"},
        "detail": sb.model_dump(mode="json", exclude_unset=True),
    }
    if declared is not None:
        evidence["declared"] = declared
    return Outcome(
        Status.PASS if on else Status.FAIL,
        resource,
        f"Secure Boot is {'on' if on else 'off'} ({where}: {detail})",
        evidence,
        pointer,
    )


@control(
    id="FW-001",
    title="Secure Boot off on a GPU node",
    plane=Plane.FW,
    severity=Severity.HIGH,
    failure_mode="Without UEFI Secure Boot a tenant with root (or an attacker) can persist a "
    "bootkit or unsigned kernel module below the GPU driver that survives re-imaging.",
    remediation="Enable UEFI Secure Boot in deployed/user mode on every GPU node (Redfish "
    "Systems/{id}/SecureBoot SecureBootEnable=true) and sign the NVIDIA kernel modules.",
    references=(_SP800_193, _NSA_BMC),
)
def secure_boot_off(snap: Snapshot) -> Iterator[Outcome]:
    by_bmc = {view.bmc.name: view for view in snap.bmcs}
    systems = {view.resource: _systems(snap, view.resource) for view in snap.bmcs}
    claimed: set[tuple[str, object]] = set()
    judged = False
    for view in snap.nodes:
        judged = True
        fact = view.host["secure_boot"]
        bmc = by_bmc.get(view.node.bmc or "")
        system = None
        if bmc is not None:
            found, origin = systems[bmc.resource]
            system = _system_of(view, found, len(bmc.nodes))
            if system is not None:
                claimed.add((bmc.resource, system.id))
        sb = system.secure_boot if system is not None else None
        usable = sb is not None and sb.enabled is not None
        if fact.source == "observed" or system is None or not usable:
            # In-band observation (node evidence) first; else the declaration, or unknown.
            outcome = expect_flag(
                view.resource,
                "Secure Boot state",
                "secure_boot",
                fact,
                want=True,
                says=("Secure Boot is on", "Secure Boot is off"),
            )
            if outcome.status is Status.NOT_EVALUATED and bmc is not None:
                found, origin = systems[bmc.resource]
                why = f"{bmc.resource} lists no system for this node" if found else origin
                outcome = replace(outcome, message=f"{outcome.message}; BMC: {why}")
            yield outcome
            continue
        declared = fact_evidence(secure_boot=fact)["secure_boot"] if fact.known else None
        yield _secure_boot_outcome(view.resource, system, origin, fact.pointer, declared)
    for bmc_view in snap.bmcs:
        found, origin = systems[bmc_view.resource]
        scanned = snap.evidence_for(bmc_view.resource) or snap.stale_for(bmc_view.resource)
        if not found and not bmc_view.nodes and scanned:
            # A scanned BMC whose systems could not be read (Systems 404, 403), or whose scan is
            # stale, is not "nothing to judge": the host behind it has a Secure Boot state
            # nobody saw (now), whatever the other BMCs showed.
            judged = True
            yield Outcome(
                Status.NOT_EVALUATED,
                bmc_view.resource,
                f"Secure Boot state is unknown: the BMC's systems were not read ({origin})",
                {"missing": "bmc.systems"},
                bmc_view.pointer,
            )
        for system in found:
            if (bmc_view.resource, system.id) in claimed:
                continue
            judged = True
            resource = f"{bmc_view.resource}/system/{system.id}"
            yield _secure_boot_outcome(resource, system, origin, bmc_view.pointer)
    if not judged and snap.bmcs:
        # BMCs manage hosts whose Secure Boot nobody saw: unknown, not "not applicable".
        yield unscanned_fleet(snap, "the Secure Boot state")
    elif not judged:
        yield not_applicable("no nodes and no BMCs in the inventory")


# -- FW-002 known-exploited BMC firmware ---------------------------------------------------------


def _hit_text(hit: Hit, version: str) -> str:
    kev = f", in CISA KEV ({hit.kev_origin})" if hit.kev else ""
    return f"{', '.join(hit.cves)} ({hit.title}{kev}): {version} is below {hit.fixed}"


@control(
    id="FW-002",
    title="BMC firmware has a known exploited vulnerability",
    plane=Plane.FW,
    severity=Severity.CRITICAL,
    failure_mode="Attackers use published BMC exploits (CISA KEV) within days; a vulnerable BMC "
    "gives them the server below any OS or tenant isolation.",
    remediation="Update the BMC firmware to the fixed release named in the finding (the OEM's "
    "build of it) and keep BMCs unreachable from tenant networks and the internet.",
    references=(_KEV, _NSA_BMC, "https://nvd.nist.gov/vuln/detail/CVE-2024-54085"),
)
def known_exploited_firmware(snap: Snapshot) -> Iterator[Outcome]:
    catalog = vulnerability_catalog()
    kev = snap.context.known_exploited

    def judge(f: ObservedBmc) -> Verdict | None:
        version = f.firmware_version
        if version is None:
            return None
        vendor, model = f.vendor or "", f.model or ""
        found = judge_bmc(catalog, vendor, model, version, kev)
        who = " ".join(x for x in (vendor, model) if x) or "unknown vendor"
        if found.status == "vulnerable":
            worst = Severity.CRITICAL if any(h.kev for h in found.hits) else Severity.HIGH
            return Verdict(Status.FAIL, "; ".join(_hit_text(h, version) for h in found.hits), worst)
        if found.status == "unknown":
            return Verdict(Status.NOT_EVALUATED, f"{who} firmware {version}: {found.reason}")
        return Verdict(
            Status.PASS,
            f"{who} firmware {version} matches none of the {len(catalog.bmc)} BMC vulnerability "
            f"entries of the catalog (reviewed {catalog.reviewed})",
        )

    yield from per_bmc(
        snap, "the BMC firmware version", ("bmc.firmware_version", "bmc.vendor", "bmc.model"), judge
    )


# -- FW-003 firmware drift -----------------------------------------------------------------------

_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+")


def _version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in _TOKEN.findall(version)
    )


def _firmware_of(snap: Snapshot, resource: str) -> tuple[str, dict[str, str]] | None:
    """(system model, component -> oldest version) of one scanned BMC."""
    typed, _ = read_bmc(snap, resource, ("bmc.firmware_inventory",))
    if typed.firmware_inventory is None:
        return None
    systems, _ = _systems(snap, resource)
    model = str(systems[0].model) if systems else "?"
    oldest: dict[str, str] = {}
    for item in typed.firmware_inventory:
        name, version = item.name, item.version
        if not name or not version:
            continue
        if name not in oldest or _version_key(version) < _version_key(oldest[name]):
            oldest[name] = version
    return model, oldest


@control(
    id="FW-003",
    title="Firmware older than on other servers of the same model",
    plane=Plane.FW,
    severity=Severity.MEDIUM,
    failure_mode="A server whose BMC, BIOS, GPU or NIC firmware lags its identical peers missed "
    "the fixes they got; a tenant placed on it inherits the old vulnerabilities.",
    remediation="Bring every server of a model to the same (newest validated) firmware baseline "
    "and track it per model.",
    references=(_SP800_193, _NSA_BMC),
    peer_facts=("bmc.firmware_inventory", "bmc.systems"),
)
def firmware_drift(snap: Snapshot) -> Iterator[Outcome]:
    per_bmc_fw = {v.resource: _firmware_of(snap, v.resource) for v in snap.bmcs}
    newest: dict[tuple[str, str], str] = {}
    peers: dict[str, int] = {}
    for found in per_bmc_fw.values():
        if found is None:
            continue
        model, components = found
        peers[model] = peers.get(model, 0) + 1
        for name, version in components.items():
            key = (model, name)
            if key not in newest or _version_key(version) > _version_key(newest[key]):
                newest[key] = version
    if (missing := _no_bmc_views(snap)) is not None:
        yield missing
        return
    if not any(snap.evidence_for(v.resource) for v in snap.bmcs):
        yield unscanned_fleet(snap, "firmware drift")
        return
    for view in snap.bmcs:
        found = per_bmc_fw[view.resource]
        if found is None:
            _, got = read_bmc(snap, view.resource, ("bmc.firmware_inventory",))
            why = got["bmc.firmware_inventory"].origin
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"firmware inventory is unknown: {why}",
                {"missing": "firmware"},
                view.pointer,
            )
            continue
        model, components = found
        if peers.get(model, 0) < 2:
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"no other scanned server of model {model} to compare firmware with",
                {"missing": "peers", "model": model},
                view.pointer,
            )
            continue
        behind = {
            name: {"version": version, "newest": newest[(model, name)]}
            for name, version in sorted(components.items())
            if _version_key(version) < _version_key(newest[(model, name)])
        }
        evidence = {"model": model, "peers": peers[model], "behind": behind}
        if behind:
            listing = ", ".join(f"{n} {b['version']} < {b['newest']}" for n, b in behind.items())
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"behind {model} peers: {listing}",
                evidence,
                view.pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                f"all {len(components)} components at the newest version seen on "
                f"{peers[model]} {model} servers",
                evidence,
                view.pointer,
            )


def _no_bmc_views(snap: Snapshot) -> Outcome | None:
    if snap.bmcs:
        return None
    return not_applicable("no BMCs in the inventory")


# -- FW-004 .. FW-006 ----------------------------------------------------------------------------


@control(
    id="FW-004",
    title="Server has no enabled TPM 2.0",
    plane=Plane.FW,
    severity=Severity.MEDIUM,
    failure_mode="Without an enabled TPM 2.0 the host cannot measure its boot chain, so neither "
    "the operator nor a tenant can attest that the firmware and kernel are the expected ones.",
    remediation="Fit and enable a TPM 2.0 (disable TPM 1.2 mode) and use measured boot.",
    references=(
        _SP800_193,
        "https://trustedcomputinggroup.org/resource/tpm-library-specification/",
    ),
)
def tpm_missing(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        systems = f.systems or ()
        if not systems:
            return None
        bad = []
        for s in systems:
            if s.tpm is None:
                return None
            good = [t for t in s.tpm if t.type == "TPM2_0" and t.state == "Enabled"]
            if not good:
                seen = ", ".join(f"{t.type} {t.state}" for t in s.tpm) or "none"
                bad.append(f"system {s.id}: TPM {seen}")
        if bad:
            return Verdict(Status.FAIL, "; ".join(bad))
        return Verdict(Status.PASS, "TPM 2.0 enabled on every system")

    yield from per_bmc(snap, "the TPM", ("bmc.systems",), judge)


@control(
    id="FW-005",
    title="Component firmware integrity checking is off or failing",
    plane=Plane.FW,
    severity=Severity.MEDIUM,
    failure_mode="Without SPDM/component integrity checks a tampered NIC, GPU or storage firmware "
    "goes unnoticed; a failed verification means one already was.",
    remediation="Enable component integrity (SPDM) verification (iLO GlobalComponentIntegrity "
    "Enabled) and investigate every failed verification.",
    references=(_SPDM, _SP800_193),
)
def component_integrity(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        info = f.component_integrity
        if info is None:
            return None
        parts = info.components
        failed = [str(c.id) for c in parts if c.verification == "Failed"]
        spdm = [c for c in parts if c.type == "SPDM"]
        reasons = [f"verification failed: {', '.join(failed)}"] if failed else []
        if (info.global_policy or "").lower() == "disabled":
            reasons.append("global component integrity policy is Disabled")
        if spdm and not any(c.enabled for c in spdm):
            reasons.append(f"SPDM integrity disabled on all {len(spdm)} components")
        if reasons:
            return Verdict(Status.FAIL, "; ".join(reasons))
        on = [str(c.id) for c in parts if c.enabled]
        if not on:
            return None
        return Verdict(Status.PASS, f"integrity checking enabled for {', '.join(on)}")

    yield from per_bmc(snap, "component integrity", ("bmc.component_integrity",), judge)


@control(
    id="FW-006",
    title="BMC firmware updates do not verify the update server",
    plane=Plane.FW,
    severity=Severity.MEDIUM,
    failure_mode="An update service that does not verify the remote server's certificate can be "
    "fed firmware by anyone who can redirect its download.",
    remediation="Set UpdateService VerifyRemoteServerCertificate=true and load the update "
    "server's CA into RemoteServerCertificates.",
    references=(_SP800_193, "https://www.dmtf.org/dsp/DSP0266"),
)
def update_verification(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        verify = f.verify_update_server
        if verify is True:
            return Verdict(Status.PASS, "update downloads verify the server certificate")
        if verify is False:
            return Verdict(Status.FAIL, "VerifyRemoteServerCertificate is false")
        return None

    yield from per_bmc(
        snap, "update server verification", ("bmc.update.verify_remote_cert",), judge
    )
