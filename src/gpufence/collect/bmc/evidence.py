"""Scan results -> evidence documents (``bmc/<name>``), the evidence file, and a snapshot.

One document per BMC: facts in ``observed`` (``bmc.*``), every other fact in ``not_observed``
with its reason, and the scan state, target, timings, errors and probe detail in ``raw``. No
password ever reaches a document: credentials live only in the HTTP client and the IPMI HMAC.

Without an inventory (``--target``), :func:`scan_snapshot` builds the smallest snapshot the
controls can read: a placeholder organization and site, and one ``bmcs`` entry per scanned BMC
on a placeholder network. Only the evidence-driven OOB/FW controls run on it; the topology
controls (tenant or internet reachability) need a real inventory and are left out.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpufence.collect.bmc.facts import Observations, from_anonymous, from_walk
from gpufence.collect.bmc.scanner import BmcScan
from gpufence.collect.bmc.targets import BmcTarget
from gpufence.errors import InputError
from gpufence.model.evidence import CollectorName, EvidenceDocument, EvidenceFile, Unobserved
from gpufence.model.inventory import Bmc, Inventory, Organization, Ownership, Site
from gpufence.model.snapshot import Snapshot

__all__ = ["SCAN_NETWORK", "scan_snapshot", "to_evidence", "write_evidence"]

SCAN_NETWORK = "scanned-bmcs"
"""Placeholder network name of the target-only snapshot (no topology is known)."""


def _tls_facts(obs: Observations, scan: BmcScan) -> None:
    probe = scan.tls
    if scan.target.scheme == "http":
        for fact in ("bmc.tls.tls1_0", "bmc.tls.tls1_1", "bmc.tls.negotiated", "bmc.tls.cert"):
            obs.miss(fact, "Redfish target is plain http://: no TLS at all")
        return
    if probe is None:
        for fact in ("bmc.tls.tls1_0", "bmc.tls.tls1_1", "bmc.tls.negotiated", "bmc.tls.cert"):
            obs.miss(fact, "TLS probe did not finish")
        return
    if probe.error:
        for fact in ("bmc.tls.tls1_0", "bmc.tls.tls1_1", "bmc.tls.negotiated", "bmc.tls.cert"):
            obs.miss(fact, f"TLS handshake failed: {probe.error}")
        return
    obs.set("bmc.tls.negotiated", probe.negotiated)
    for version, fact in (("TLSv1", "bmc.tls.tls1_0"), ("TLSv1.1", "bmc.tls.tls1_1")):
        accepted = probe.accepted.get(version)
        if accepted is None:
            obs.miss(fact, probe.notes.get(version, f"{version} not probed"))
        else:
            obs.set(fact, accepted)
    if scan.cert_trusted is not None:
        obs.set("bmc.tls.cert_trusted", scan.cert_trusted)
    elif scan.target.scheme == "https":
        obs.miss("bmc.tls.cert_trusted", "not verified (--insecure)")
    if probe.cert is not None:
        cert = dataclasses.asdict(probe.cert)
        problems = []
        if probe.cert.vendor_default:
            problems.append(probe.cert.vendor_default)
        if probe.cert.self_signed:
            problems.append("self-signed")
        if probe.cert.expired:
            problems.append(f"expired {probe.cert.not_after}")
        if probe.cert.not_yet_valid:
            problems.append(f"not valid before {probe.cert.not_before}")
        if probe.cert.weak_key:
            problems.append(f"{probe.cert.key_type} key of {probe.cert.key_bits} bits")
        if probe.cert.sha1_signature:
            problems.append(f"signed with {probe.cert.signature_hash}")
        if probe.cert.x509_version != 3:
            problems.append(f"X.509 v{probe.cert.x509_version}")
        cert["problems"] = problems
        obs.set("bmc.tls.cert", cert)
    else:
        obs.miss("bmc.tls.cert", probe.notes.get("certificate", "no certificate presented"))


def _ipmi_facts(obs: Observations, scan: BmcScan) -> None:
    probe = scan.ipmi
    if probe is None:
        reason = "IPMI probe not run (--no-ipmi)" if scan.target.redfish_url else "no IPMI target"
        obs.miss("bmc.ipmi.caps", reason)
    elif probe.caps is not None:
        caps = dataclasses.asdict(probe.caps)
        caps["cleartext_auth"] = probe.caps.cleartext_auth
        caps["asf_pong"] = probe.asf_pong
        obs.set("bmc.ipmi.caps", caps)
        obs.set("bmc.ipmi_over_lan", True)  # it answered: on, whatever the settings say
    else:
        obs.miss("bmc.ipmi.caps", f"IPMI probe: {probe.error}")
        obs.miss("bmc.ipmi_over_lan", f"IPMI probe: {probe.error}; no IPMI setting readable")
    intrusive = scan.ipmi_intrusive
    if intrusive is not None:
        obs.set("bmc.ipmi.cipher0_users", list(intrusive.cipher0_users))
    else:
        obs.miss("bmc.ipmi.cipher0_users", "cipher-suite-0 login is only tried with --intrusive")


def _credential_facts(obs: Observations, scan: BmcScan, intrusive: bool) -> None:
    from gpufence.collect.bmc.credentials import VENDOR_DEFAULTS

    cred = scan.credential
    if cred is not None and any(
        cred.username == user and cred.password.get_secret_value() == pw
        for _v, user, pw in VENDOR_DEFAULTS
    ):
        obs.set("bmc.default_credentials", True)  # the audit account itself is a factory default
    worked = list(scan.intrusive.get("redfish_defaults", {}).get("worked_users", []))
    if scan.ipmi_intrusive is not None:
        worked += list(scan.ipmi_intrusive.default_password_users)
    if worked:
        obs.set("bmc.default_credentials", True)
    redfish = scan.intrusive.get("redfish_defaults")
    if redfish and redfish["tried"] == redfish["of"]:
        obs.set_default("bmc.default_credentials", False)
    elif redfish:
        obs.miss(
            "bmc.default_credentials",
            f"tried {redfish['tried']} of {redfish['of']} vendor defaults ({redfish['policy']})",
        )
    if not intrusive:
        obs.miss("bmc.default_credentials", "default credentials are only tried with --intrusive")
    write = scan.intrusive.get("anonymous_write")
    if write and "status" in write:
        obs.set("bmc.redfish.anonymous_write", 200 <= write["status"] < 300)
    elif not intrusive:
        obs.miss(
            "bmc.redfish.anonymous_write", "unauthenticated writes are only tried with --intrusive"
        )


def _raw(scan: BmcScan, state: str, reason: str | None, intrusive: bool) -> dict[str, Any]:
    target = scan.target
    errors = [
        {"role": role, "path": path, "error": why}
        for role, items in scan.walk.failed.items()
        for path, why in items
    ]
    raw: dict[str, Any] = {
        "state": state,
        "reason": reason,
        "target": {
            "redfish": target.redfish_url,
            "ipmi": f"{target.host}:{target.ipmi_port}" if target.ipmi_port else None,
            "inventory_name": target.inventory_name,
        },
        "credential": (
            {"username": scan.credential.username, "from": scan.credential.origin}
            if scan.credential
            else None
        ),
        "intrusive": intrusive,
        "duration_s": scan.duration,
        "requests": scan.requests,
        "resources_read": len(scan.walk.fetched) + (1 if scan.root is not None else 0),
        "anonymous": scan.anonymous,
        "errors": errors,
        "walk_stopped": scan.walk.stopped,
        "fetched": scan.walk.fetched,
    }
    if scan.tls is not None:
        raw["tls"] = {
            "negotiated": scan.tls.negotiated,
            "cipher": scan.tls.cipher,
            "accepted": scan.tls.accepted,
            "notes": scan.tls.notes,
            "error": scan.tls.error,
        }
    if scan.ipmi is not None:
        raw["ipmi"] = {
            "answered": scan.ipmi.answered,
            "asf_pong": scan.ipmi.asf_pong,
            "error": scan.ipmi.error,
        }
    if scan.intrusive:
        raw["intrusive_results"] = scan.intrusive
    if scan.ipmi_intrusive is not None:
        raw["ipmi_intrusive"] = dataclasses.asdict(scan.ipmi_intrusive)
    # Plain JSON types only (tuples from dataclasses become lists).
    plain: dict[str, Any] = json.loads(json.dumps(raw))
    return plain


def to_evidence(
    scan: BmcScan, *, intrusive: bool = False, collected_at: datetime.datetime | None = None
) -> EvidenceDocument:
    """One BMC scan -> its evidence document."""
    state, reason = scan.state()
    obs = Observations()
    if scan.root is not None and scan.target.scheme:
        readable = [p for p, got in scan.anonymous.items() if got == "200"]
        from_anonymous(obs, scan.root, readable, scan.target.scheme, len(scan.anonymous))
        if scan.walk.fetched:
            from_walk(obs, scan.walk)
    _tls_facts(obs, scan)
    _ipmi_facts(obs, scan)
    _credential_facts(obs, scan, intrusive)
    if scan.root is None:
        obs.finish(f"Redfish not read: {scan.root_error or reason or 'no Redfish target'}")
    elif not scan.walk.fetched:
        obs.finish(scan.walk_skipped or reason or "authenticated walk did not run")
    obs.finish(f"not read ({reason})" if reason else "not reported by this BMC")
    return EvidenceDocument.new(
        subject=f"bmc/{scan.target.name}",
        collector=CollectorName.BMC_SCAN,
        observed=obs.observed,
        not_observed=[Unobserved(fact=f, reason=r) for f, r in sorted(obs.missing.items())],
        raw=_raw(scan, state, reason, intrusive),
        collected_at=collected_at,
    )


def write_evidence(documents: Sequence[EvidenceDocument], path: Path) -> None:
    """Write ``{"evidence": [...]}`` atomically (a reader never sees half a file)."""
    data = EvidenceFile(evidence=tuple(documents)).model_dump(mode="json", by_alias=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write evidence: {exc.strerror or exc}") from None


def scan_snapshot(
    targets: Sequence[BmcTarget], documents: Sequence[EvidenceDocument], origin: str
) -> Snapshot:
    """A minimal snapshot for the scanned BMCs when there is no inventory."""
    inventory = Inventory(
        version=1,
        organization=Organization(name="gpufence scan", country="ZZ"),
        sites=(Site(name="scan", country="ZZ", ownership=Ownership.OWNED),),
        bmcs=tuple(
            Bmc(name=t.name, address=t.redfish_url or t.host, network=SCAN_NETWORK) for t in targets
        ),
    )
    return Snapshot(
        inventory=inventory,
        source_file=origin,
        gpu_models={},
        evidence=tuple(documents),
        evidence_origins=dict.fromkeys(range(len(documents)), origin),
    )
