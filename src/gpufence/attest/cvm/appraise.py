"""One decision over a CVM's evidence for a relying party (the key broker): allow, or a reason.

The broker hands over the request's ``cvm`` JSON object, what the policy requires and the report
data this request must carry (:func:`gpufence.attest.cvm.binding.expected_report_data`). Default
deny: missing, unreadable, wrong-kind, failing or incomplete evidence each give a reason code;
only a ``pass`` verdict, with the binding step passed, allows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from pydantic import JsonValue

from gpufence.attest.cvm.evidence import CvmEvidenceError, cvm_evidence_from_json
from gpufence.attest.cvm.result import CvmKind, CvmResult, cvm_waived
from gpufence.attest.cvm.snp import SnpOptions, verify_snp
from gpufence.attest.cvm.snp_report import TcbVersion
from gpufence.attest.cvm.tdx import TdxOptions, verify_tdx
from gpufence.attest.cvm.tdx_collateral import TdxCollateral

__all__ = ["CvmDecision", "CvmPolicy", "appraise_cvm"]


@dataclass(frozen=True)
class CvmPolicy:
    """What a CVM must show (plain values; the broker maps its policy model onto this)."""

    kinds: tuple[CvmKind, ...] = ("sev-snp", "tdx")
    snp_measurements: frozenset[bytes] | None = None
    snp_min_tcb: TcbVersion | None = None
    tdx_mrtds: frozenset[bytes] | None = None
    tdx_rtmrs: Mapping[int, frozenset[bytes]] = field(default_factory=dict)
    allow_debug: bool = False
    allow_migration_agent: bool = False
    waivers: Collection[str] = ()
    """fnmatch patterns of CVM step names (without the ``cvm.`` prefix) whose
    ``not_evaluated`` is accepted, e.g. ``tcb.minimum`` or ``collateral.*``."""


@dataclass(frozen=True)
class CvmDecision:
    """``code`` None: allowed. Otherwise a reason code and a detail for the refusal."""

    code: str | None
    detail: str
    result: CvmResult | None = None

    @property
    def allowed(self) -> bool:
        """True only when every CVM step passed (or was waived) and the binding matched."""
        return self.code is None


def appraise_cvm(
    evidence: Mapping[str, JsonValue] | None,
    policy: CvmPolicy,
    expected_report_data: bytes,
    at: datetime,
    *,
    ark_override: Mapping[str, x509.Certificate] | None = None,
    tdx_root_override: x509.Certificate | None = None,
    tdx_collateral: TdxCollateral | None = None,
) -> CvmDecision:
    """Decode, verify and judge the CVM evidence of one request."""
    if evidence is None:
        return CvmDecision("CVM_EVIDENCE_MISSING", "the policy requires CVM evidence; none sent")
    try:
        decoded = cvm_evidence_from_json(evidence)
    except CvmEvidenceError as exc:
        return CvmDecision("CVM_EVIDENCE_UNREADABLE", str(exc))
    if decoded.kind not in policy.kinds:
        return CvmDecision(
            "CVM_KIND_NOT_ALLOWED", f"{decoded.kind} is not one of {', '.join(policy.kinds)}"
        )
    if decoded.kind == "sev-snp":
        result = verify_snp(
            decoded.report,
            decoded.certificates,
            SnpOptions(
                at,
                expected_report_data=expected_report_data,
                measurements=policy.snp_measurements,
                min_tcb=policy.snp_min_tcb,
                allow_debug=policy.allow_debug,
                allow_migration_agent=policy.allow_migration_agent,
                ark_override=dict(ark_override or {}),
            ),
        )
    else:
        result = verify_tdx(
            decoded.report,
            TdxOptions(
                at,
                expected_report_data=expected_report_data,
                mrtds=policy.tdx_mrtds,
                rtmrs=policy.tdx_rtmrs,
                collateral=tdx_collateral,
                allow_debug=policy.allow_debug,
                root_override=tdx_root_override,
            ),
        )
    waived = frozenset(
        s.name
        for s in result.steps
        if s.status == "not_evaluated" and cvm_waived(s.name, policy.waivers)
    )
    result = dataclasses.replace(result, waived=waived)
    parse = result.step("evidence.parse")
    if parse is not None and parse.status == "fail":
        return CvmDecision("CVM_EVIDENCE_UNREADABLE", parse.detail, result)
    failed = [s for s in result.steps if s.status == "fail"]
    if any(s.name == "report_data" for s in failed):
        return CvmDecision(
            "CVM_BINDING_MISMATCH",
            "the CVM report data does not bind this nonce, requester key and GPU evidence",
            result,
        )
    if failed:
        names = ", ".join(f"cvm.{s.name}" for s in failed)
        return CvmDecision("CVM_EVIDENCE_REJECTED", f"CVM steps failed: {names}", result)
    if result.verdict != "pass":
        names = ", ".join(f"cvm.{n}" for n in result.unevaluated)
        return CvmDecision(
            "CVM_INCOMPLETE", f"CVM steps not evaluated and not waived: {names}", result
        )
    return CvmDecision(None, f"{decoded.kind} report verifies and binds this request", result)
