"""Verification of one device's evidence, and of a set, as named steps.

Each step is ``pass``, ``fail`` or ``not_evaluated`` with a detail. Strict by default: a device
or set with a failed step is ``fail``; one with a ``not_evaluated`` step (no RIM given,
revocation not checked, no expected nonce, unsigned padding) is ``incomplete``, never ``pass``,
unless the step is waived by name (:func:`check_waivers`: a policy's ``accept_not_evaluated``,
or ``attest verify --waive``). ``nonce`` and ``measurements`` can only be waived by their exact
name, never by a wildcard.

Steps (stable names, documented in docs/attestation.md): ``evidence.parse``,
``evidence.padding`` (only when zero bytes follow the signature), ``arch``,
``nonce``, ``cert_chain``, ``signature``, ``fwid``, ``revocation``, then per RIM
``rim.<driver|vbios|switch_bios>.{signature,chain,version,revocation}``, then ``measurements``;
for a set: ``set.nonce``, ``set.unique``, ``set.count``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import JsonValue

from gpufence.attest.certs import (
    DEVICE_CHAIN_LENGTH,
    ChainResult,
    device_root,
    leaf_fwid,
    verify_chain,
)
from gpufence.attest.device_reports import ARCH_KINDS, DeviceEvidence
from gpufence.attest.ocsp import NOT_CHECKED, OcspChecker, RevocationResult
from gpufence.attest.opaque import DeviceFacts, device_facts
from gpufence.attest.rim import Comparison, ManifestKind, RimCheck, compare_measurements
from gpufence.attest.spdm import AttestationReport, DeviceKind, SpdmParseError, parse_report

__all__ = [
    "STEP_NAMES",
    "DeviceResult",
    "SetResult",
    "Step",
    "StepStatus",
    "Verdict",
    "VerifyOptions",
    "check_waivers",
    "is_waived",
    "verify_device",
    "verify_set",
]

StepStatus = Literal["pass", "fail", "not_evaluated"]
Verdict = Literal["pass", "fail", "incomplete"]
_RIM_STEPS = tuple(
    f"rim.{kind}{suffix}"
    for kind in ("driver", "vbios", "switch_bios")
    for suffix in ("", ".signature", ".chain", ".version", ".revocation")
)
STEP_NAMES: tuple[str, ...] = (
    "evidence.parse",
    "evidence.padding",
    "arch",
    "nonce",
    "cert_chain",
    "signature",
    "fwid",
    "revocation",
    *_RIM_STEPS,
    "measurements",
    "set.nonce",
    "set.unique",
    "set.count",
)
"""Every step name; a waiver must name at least one of them."""
EXACT_ONLY = ("nonce", "measurements")
"""Steps a waiver must name exactly: a wildcard never waives freshness or measurements."""


def check_waivers(
    patterns: Iterable[str],
    names: Sequence[str] = STEP_NAMES,
    exact_only: Sequence[str] = EXACT_ONLY,
    label: str = "waiver",
) -> None:
    """ValueError unless each pattern names real steps among ``names`` (fnmatch), and
    wildcards stay off the ``exact_only`` steps (freshness, measurements, bindings)."""
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(f"{label} {pattern!r} names no step (steps: {', '.join(names)})")
        blanket = [n for n in hits if n in exact_only and pattern != n]
        if blanket:
            raise ValueError(
                f"{label} {pattern!r} would waive {', '.join(blanket)}: name it exactly to waive it"
            )


def is_waived(step: str, waivers: Iterable[str], exact_only: Sequence[str] = EXACT_ONLY) -> bool:
    """Whether ``step`` (a name) is waived by one of ``waivers`` (fnmatch patterns; the
    ``exact_only`` steps only by their exact name)."""
    return any(
        fnmatch.fnmatchcase(step, p) and (step not in exact_only or p == step) for p in waivers
    )


def _verdict(steps: Sequence[Step], waivers: Sequence[str]) -> Verdict:
    if any(s.status == "fail" for s in steps):
        return "fail"
    if any(s.status == "not_evaluated" and not is_waived(s.name, waivers) for s in steps):
        return "incomplete"
    return "pass"


RIM_KINDS: dict[DeviceKind, tuple[ManifestKind, ...]] = {
    "gpu": ("driver", "vbios"),
    "nvswitch": ("switch_bios",),
}


@dataclass(frozen=True, slots=True)
class Step:
    """One verification step's outcome: name, pass/fail/not_evaluated, detail."""

    name: str
    status: StepStatus
    detail: str

    def as_json(self) -> dict[str, JsonValue]:
        """The step as JSON."""
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: the time for certificate validity, the expected nonce, revocation checking."""

    at: datetime
    """Certificates must be valid at this time."""
    expected_nonce: bytes | None = None
    revocation: OcspChecker | None = None
    """None: offline, revocation is ``not_evaluated`` ("revocation not checked")."""
    expected_counts: Mapping[DeviceKind, int] | None = None
    """For a set: how many GPUs / NVSwitches must be present (None: not checked)."""
    device_root: x509.Certificate | None = None
    """Trust anchor for device identity; None: the pinned NVIDIA Device Identity CA."""


@dataclass(frozen=True)
class RimOutcome:
    check: RimCheck | None
    revocation: RevocationResult
    version_match: bool | None


@dataclass(frozen=True)
class DeviceResult:
    """One device's verification: its steps, chain, facts and claims."""

    name: str
    kind: DeviceKind
    steps: tuple[Step, ...]
    report: AttestationReport | None
    facts: DeviceFacts | None
    chain: ChainResult | None
    revocation: RevocationResult
    rims: Mapping[ManifestKind, RimOutcome] = field(default_factory=dict)
    comparison: Comparison | None = None
    arch: str | None = None
    fwid_match: bool | None = None
    warnings: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """Strict: no waiver applies (see :meth:`judge`)."""
        return self.judge(())

    def judge(self, waivers: Sequence[str]) -> Verdict:
        """fail on any failed step, incomplete on any not_evaluated step not waived, else pass."""
        return _verdict(self.steps, waivers)

    def step(self, name: str) -> Step | None:
        """The step called ``name``, None when it did not run."""
        return next((s for s in self.steps if s.name == name), None)

    @property
    def ueid(self) -> str | None:
        """The device's unique ID (its certificate serial), when the chain was read."""
        return str(self.chain.chain[0].serial_number) if self.chain and self.chain.chain else None


@dataclass(frozen=True)
class SetResult:
    """The verification of a set of devices (one CVM's GPUs and switches) with set-wide steps."""

    devices: tuple[DeviceResult, ...]
    steps: tuple[Step, ...]

    @property
    def verdict(self) -> Verdict:
        """Strict: no waiver applies (see :meth:`judge`)."""
        return self.judge(())

    def judge(self, waivers: Sequence[str]) -> Verdict:
        """The set's verdict: fail if any device or set step fails (or no device), incomplete
        if any step not waived was not evaluated, else pass."""
        if not self.devices:
            return "fail"
        verdicts = {_verdict(self.steps, waivers)} | {d.judge(waivers) for d in self.devices}
        if "fail" in verdicts:
            return "fail"
        return "incomplete" if "incomplete" in verdicts else "pass"

    def waived(self, waivers: Sequence[str]) -> list[str]:
        """``device:step`` of every not_evaluated step the waivers accept."""
        return [
            f"{who}:{s.name}"
            for who, s in self.all_steps()
            if s.status == "not_evaluated" and is_waived(s.name, waivers)
        ]

    def all_steps(self) -> list[tuple[str, Step]]:
        """Every step with whom it belongs to ('set' or the device name)."""
        found = [("set", s) for s in self.steps]
        found += [(d.name, s) for d in self.devices for s in d.steps]
        return found


def _cn(subject: object) -> str:
    from cryptography.x509.oid import NameOID

    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)  # type: ignore[attr-defined]
    return str(names[0].value) if names else ""


def detect_arch(evidence: DeviceEvidence) -> str | None:
    """HOPPER / BLACKWELL / LS10 from the device certificates' common names."""
    names = " ".join(_cn(c.subject) for c in evidence.certificates[:2])
    if "LS_10" in names or "LS10" in names:
        return "LS10"
    if "GH100" in names:
        return "HOPPER"
    if "GB1" in names or "GB2" in names:
        return "BLACKWELL"
    return None


def _signature_step(report: AttestationReport, chain: Sequence[object]) -> Step:
    if not chain:
        return Step("signature", "fail", "no device certificate to verify with")
    key = chain[0].public_key()  # type: ignore[attr-defined]
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        return Step("signature", "fail", "device key is not ECDSA P-384")
    sig = report.response.signature
    half = len(sig) // 2
    der = encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
    try:
        key.verify(der, report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return Step("signature", "fail", "ECDSA P-384/SHA-384 signature does not verify")
    return Step(
        "signature",
        "pass",
        f"ECDSA P-384/SHA-384 over {len(report.signed_bytes)} bytes verifies with the device leaf",
    )


def _revocation_step(name: str, result: RevocationResult) -> Step:
    if result.status == "good":
        return Step(name, "pass", result.detail)
    if result.status == "not_checked":
        return Step(name, "not_evaluated", result.detail)
    return Step(name, "fail", result.detail)


def _rim_steps(
    kind: ManifestKind, outcome: RimOutcome | None, want_version: str | None
) -> list[Step]:
    prefix = f"rim.{kind}"
    if outcome is None or outcome.check is None:
        return [Step(prefix, "not_evaluated", f"no {kind.replace('_', ' ')} RIM was given")]
    check = outcome.check
    steps = [
        Step(
            f"{prefix}.signature", "pass" if check.signature_ok else "fail", check.signature_detail
        ),
        Step(f"{prefix}.chain", "pass" if check.chain.ok else "fail", check.chain.detail),
    ]
    if outcome.version_match is None:
        steps.append(Step(f"{prefix}.version", "not_evaluated", "the report states no version"))
    else:
        steps.append(
            Step(
                f"{prefix}.version",
                "pass" if outcome.version_match else "fail",
                f"RIM is for {check.version}, the report says {want_version}",
            )
        )
    steps.append(_revocation_step(f"{prefix}.revocation", outcome.revocation))
    return steps


def _pick_rims(rims: Sequence[RimCheck], facts: DeviceFacts) -> dict[ManifestKind, RimCheck]:
    wanted = {"driver": facts.driver_version, "vbios": facts.vbios_version}
    picked: dict[ManifestKind, RimCheck] = {}
    for kind in RIM_KINDS[facts.kind]:
        version = facts.vbios_version if kind == "switch_bios" else wanted.get(kind)
        candidates = [r for r in rims if r.kind == kind]
        exact = [r for r in candidates if version and r.version.upper() == version.upper()]
        if exact or candidates:
            picked[kind] = (exact or candidates)[0]
    return picked


def _fwid_step(report: AttestationReport, evidence: DeviceEvidence, facts: DeviceFacts) -> Step:
    if not evidence.certificates:
        return Step("fwid", "fail", "no device certificate")
    try:
        cert_fwid = leaf_fwid(evidence.certificates[0])
    except ValueError as exc:
        return Step("fwid", "fail", f"leaf FWID extension is malformed: {exc}")
    if facts.fwid is None:
        return Step(
            "fwid", "not_evaluated", "the report carries no FWID (older firmware, NVSwitch)"
        )
    if cert_fwid is None:
        return Step("fwid", "fail", "the report has an FWID but the leaf has no TCG DICE extension")
    if cert_fwid != facts.fwid:
        return Step(
            "fwid", "fail", f"leaf FWID {cert_fwid.hex()} != report FWID {facts.fwid.hex()}"
        )
    return Step("fwid", "pass", f"leaf FWID matches the report ({facts.fwid.hex()[:16]}...)")


def verify_device(
    evidence: DeviceEvidence,
    options: VerifyOptions,
    rims: Sequence[RimCheck] = (),
    *,
    name: str = "GPU-0",
) -> DeviceResult:
    """Run every step over one device's evidence."""
    detected = detect_arch(evidence)
    arch = evidence.arch or detected
    kind: DeviceKind = ARCH_KINDS.get(arch or "", "gpu")
    steps: list[Step] = []
    try:
        report = parse_report(evidence.report)
    except SpdmParseError as exc:
        steps.append(Step("evidence.parse", "fail", str(exc)))
        return DeviceResult(name, kind, tuple(steps), None, None, None, NOT_CHECKED, arch=arch)
    warnings: list[str] = []
    response = report.response
    parsed = (
        f"{len(response.blocks)} measurement blocks, {len(response.opaque.fields)} opaque fields"
    )
    steps.append(Step("evidence.parse", "pass", parsed))
    if report.trailing:
        # Nonzero tails fail to parse; zero tails are not covered by the signature either, so
        # they are not accepted silently (issue 12): incomplete unless waived by name.
        steps.append(
            Step(
                "evidence.padding",
                "not_evaluated",
                f"{len(report.trailing)} zero bytes after the signature are not covered by it "
                "(waive 'evidence.padding' to accept padded evidence)",
            )
        )
    facts = device_facts(report, kind)
    if detected is None:
        steps.append(Step("arch", "fail", "device certificates name no known NVIDIA chip"))
    elif evidence.arch and evidence.arch != detected:
        steps.append(Step("arch", "fail", f"declared {evidence.arch}, certificates say {detected}"))
    else:
        steps.append(Step("arch", "pass", detected))

    nonce = report.request.nonce
    if options.expected_nonce is None:
        steps.append(
            Step("nonce", "not_evaluated", f"no expected nonce given (report has {nonce.hex()})")
        )
    elif nonce == options.expected_nonce:
        steps.append(Step("nonce", "pass", "request nonce equals the expected nonce"))
    else:
        steps.append(Step("nonce", "fail", f"request nonce {nonce.hex()} is not the expected one"))

    chain = verify_chain(
        evidence.certificates,
        options.device_root or device_root(),
        options.at,
        expected_length=DEVICE_CHAIN_LENGTH,
    )
    steps.append(Step("cert_chain", "pass" if chain.ok else "fail", chain.detail))
    # The signature is checked with the sent leaf even when the chain is bad: both are reported.
    steps.append(_signature_step(report, evidence.certificates))
    fwid = _fwid_step(report, evidence, facts)
    steps.append(fwid)

    revocation = NOT_CHECKED
    if options.revocation is not None and chain.chain:
        revocation = options.revocation.check_path(chain.chain, options.at, include_leaf=False)
    steps.append(_revocation_step("revocation", revocation))

    picked = _pick_rims(rims, facts)
    outcomes: dict[ManifestKind, RimOutcome] = {}
    for rim_kind in RIM_KINDS[kind]:
        check = picked.get(rim_kind)
        want = facts.driver_version if rim_kind == "driver" else facts.vbios_version
        if check is None:
            outcomes[rim_kind] = RimOutcome(None, NOT_CHECKED, None)
            steps += _rim_steps(rim_kind, None, want)
            continue
        rim_revocation = NOT_CHECKED
        if options.revocation is not None and check.chain.chain:
            rim_revocation = options.revocation.check_path(
                check.chain.chain, options.at, include_leaf=True
            )
        match = None if want is None else check.version.upper() == want.upper()
        outcomes[rim_kind] = RimOutcome(check, rim_revocation, match)
        steps += _rim_steps(rim_kind, outcomes[rim_kind], want)

    manifests = [o.check.manifest for o in outcomes.values() if o.check and o.check.manifest]
    comparison = None
    if manifests:
        comparison = compare_measurements(
            report.response.blocks, manifests, nvdec0_enabled=facts.nvdec0_enabled
        )
    complete = len(manifests) == len(RIM_KINDS[kind])
    if comparison is None:
        steps.append(Step("measurements", "not_evaluated", "no verified RIM to compare with"))
    elif not comparison.ok:
        where = [str(m.get("index", "?")) for m in comparison.mismatches]
        detail = f"{len(comparison.mismatches)} mismatches (indexes {', '.join(where)})"
        if comparison.conflicts:
            detail += f"; indexes active in two RIMs: {list(comparison.conflicts)}"
        steps.append(Step("measurements", "fail", detail))
    elif not complete:
        steps.append(
            Step(
                "measurements",
                "not_evaluated",
                f"{comparison.compared} measurements match, but not every RIM was given",
            )
        )
    else:
        steps.append(
            Step("measurements", "pass", f"all {comparison.compared} golden measurements match")
        )
    return DeviceResult(
        name,
        kind,
        tuple(steps),
        report,
        facts,
        chain,
        revocation,
        outcomes,
        comparison,
        arch,
        None if fwid.status == "not_evaluated" else fwid.status == "pass",
        tuple(warnings),
    )


def verify_set(
    devices: Sequence[DeviceEvidence],
    options: VerifyOptions,
    rims: Sequence[RimCheck] = (),
) -> SetResult:
    """Verify every device, then the set: one nonce, no duplicates, the required counts."""
    results: list[DeviceResult] = []
    counters: dict[DeviceKind, int] = {"gpu": 0, "nvswitch": 0}
    for evidence in devices:
        kind = ARCH_KINDS.get(evidence.arch or detect_arch(evidence) or "", "gpu")
        label = "GPU" if kind == "gpu" else "SWITCH"
        results.append(verify_device(evidence, options, rims, name=f"{label}-{counters[kind]}"))
        counters[kind] += 1
    steps: list[Step] = []
    if len(results) > 1:
        nonces = {r.report.request.nonce for r in results if r.report}
        steps.append(
            Step("set.nonce", "pass", "every device answered the same nonce")
            if len(nonces) <= 1
            else Step("set.nonce", "fail", f"{len(nonces)} different nonces in one set")
        )
        seen: dict[str, str] = {}
        duplicates = []
        for result, evidence in zip(results, devices, strict=True):
            # The signed bytes, not the raw report: padding must not make a copy look new.
            signed = result.report.signed_bytes.hex() if result.report else evidence.report.hex()
            for key in (signed, f"ueid:{result.ueid}" if result.ueid else None):
                if key is None:
                    continue
                if key in seen:
                    duplicates.append(f"{result.name} repeats {seen[key]}")
                    break
                seen[key] = result.name
        steps.append(
            Step("set.unique", "fail", "; ".join(duplicates))
            if duplicates
            else Step("set.unique", "pass", "no report or device identity appears twice")
        )
    if options.expected_counts is not None:
        present = {k: sum(1 for r in results if r.kind == k) for k in ("gpu", "nvswitch")}
        wrong = {
            k: (present.get(k, 0), n)
            for k, n in options.expected_counts.items()
            if present.get(k, 0) != n
        }
        detail = ", ".join(f"{present[k]} {k}" for k in ("gpu", "nvswitch"))
        steps.append(
            Step("set.count", "fail", f"{detail}; expected {dict(options.expected_counts)}")
            if wrong
            else Step("set.count", "pass", detail)
        )
    return SetResult(tuple(results), tuple(steps))
