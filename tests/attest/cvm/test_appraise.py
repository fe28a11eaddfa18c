"""The broker-facing decision over CVM evidence: default deny, one reason code per refusal."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gpufence.attest.cvm.appraise import CvmPolicy, appraise_cvm
from gpufence.attest.cvm.binding import expected_report_data, gpu_evidence_digest
from gpufence.attest.cvm.result import check_cvm_waivers
from tests.attest.cvm.conftest import TDX, TDX_AT
from tests.attest.cvmfactory import AT, AmdTestPki, IntelTestPki, SnpFields

NONCE, SPKI = b"\x05" * 32, b"spki-of-the-requester"
GPU = [b"the gpu evidence"]
BINDING = expected_report_data(NONCE, SPKI, gpu_evidence_digest(GPU))
MEASUREMENT = bytes(range(48))


def _snp(pki: AmdTestPki, fields: SnpFields) -> dict[str, object]:
    return {
        "kind": "sev-snp",
        "report": base64.b64encode(pki.report(fields)).decode(),
        "certificates": [
            base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in (pki.vcek, pki.ask)
        ],
    }


def _policy(**kw: object) -> CvmPolicy:
    base: dict[str, object] = {
        "snp_measurements": frozenset({MEASUREMENT}),
        "waivers": frozenset({"tcb.minimum"}),
    }
    base.update(kw)
    return CvmPolicy(**base)  # type: ignore[arg-type]


def _decide(pki: AmdTestPki, obj: object, policy: CvmPolicy, binding: bytes = BINDING) -> str:
    decision = appraise_cvm(obj, policy, binding, AT, ark_override={"Milan": pki.ark})  # type: ignore[arg-type]
    return decision.code or "ALLOWED"


def test_bound_report_is_allowed(amd_pki: AmdTestPki) -> None:
    obj = _snp(amd_pki, SnpFields(report_data=BINDING))
    assert _decide(amd_pki, obj, _policy()) == "ALLOWED"


def test_refusals_have_reason_codes(amd_pki: AmdTestPki) -> None:
    bound = _snp(amd_pki, SnpFields(report_data=BINDING))
    assert _decide(amd_pki, None, _policy()) == "CVM_EVIDENCE_MISSING"
    assert _decide(amd_pki, {"kind": "x"}, _policy()) == "CVM_EVIDENCE_UNREADABLE"
    assert _decide(amd_pki, bound, _policy(kinds=("tdx",))) == "CVM_KIND_NOT_ALLOWED"
    other_gpu = expected_report_data(NONCE, SPKI, gpu_evidence_digest([b"other"]))
    assert _decide(amd_pki, bound, _policy(), other_gpu) == "CVM_BINDING_MISMATCH"
    debug = _snp(amd_pki, SnpFields(report_data=BINDING, policy=0x30000 | 1 << 19))
    assert _decide(amd_pki, debug, _policy()) == "CVM_EVIDENCE_REJECTED"
    assert _decide(amd_pki, bound, _policy(waivers=frozenset())) == "CVM_INCOMPLETE"
    assert _decide(amd_pki, bound, _policy(snp_measurements=None)) == "CVM_INCOMPLETE"
    truncated = dict(bound, report=base64.b64encode(amd_pki.report()[:100]).decode())
    assert _decide(amd_pki, truncated, _policy()) == "CVM_EVIDENCE_UNREADABLE"


def test_pinned_roots_by_default(amd_pki: AmdTestPki) -> None:
    obj = _snp(amd_pki, SnpFields(report_data=BINDING))
    decision = appraise_cvm(obj, _policy(), BINDING, AT)  # type: ignore[arg-type]
    assert decision.code == "CVM_EVIDENCE_REJECTED" and "cvm.cert_chain" in decision.detail


def test_real_tdx_quote_binding_nothing_of_ours_is_refused() -> None:
    quote = (TDX / "go-tdx-guest-SPR-E4-quote.dat").read_bytes()
    obj = {"kind": "tdx", "quote": base64.b64encode(quote).decode()}
    decision = appraise_cvm(obj, CvmPolicy(), BINDING, TDX_AT)  # type: ignore[arg-type]
    # Its report data binds nothing of ours: refused on the binding before anything else.
    assert decision.code == "CVM_BINDING_MISMATCH"


def test_tdx_binding_through_a_test_pck_chain() -> None:
    pki = IntelTestPki()
    mrtd = bytes(range(48))
    rtmrs = ("rtmr0", "rtmr1", "rtmr2", "rtmr3")
    policy = CvmPolicy(tdx_mrtds=frozenset({mrtd}), waivers=("collateral.*", *rtmrs))

    def decide(quote: bytes, **kw: object) -> str | None:
        obj = {"kind": "tdx", "quote": base64.b64encode(quote).decode()}
        return appraise_cvm(obj, policy, BINDING, AT, tdx_root_override=pki.root, **kw).code  # type: ignore[arg-type]

    assert decide(pki.quote(report_data=BINDING, mrtd=mrtd)) is None
    assert decide(pki.quote(report_data=bytes(64), mrtd=mrtd)) == "CVM_BINDING_MISMATCH"
    debug = pki.quote(report_data=BINDING, mrtd=mrtd, td_attributes=b"\x01" + bytes(7))
    assert decide(debug) == "CVM_EVIDENCE_REJECTED"
    # Against the pinned Intel root, the test chain is refused.
    obj = {"kind": "tdx", "quote": base64.b64encode(pki.quote(BINDING, mrtd)).decode()}
    assert appraise_cvm(obj, policy, BINDING, AT).code == "CVM_EVIDENCE_REJECTED"  # type: ignore[arg-type]


def test_wildcards_never_waive_measurements_or_the_binding() -> None:
    pki = IntelTestPki()
    quote = pki.quote(report_data=BINDING, mrtd=bytes(range(48)))
    obj = {"kind": "tdx", "quote": base64.b64encode(quote).decode()}
    policy = CvmPolicy(waivers=("*",))
    decision = appraise_cvm(obj, policy, BINDING, AT, tdx_root_override=pki.root)  # type: ignore[arg-type]
    assert decision.code == "CVM_INCOMPLETE"
    assert "cvm.mrtd" in decision.detail and "cvm.rtmr0" in decision.detail
    assert "collateral" not in decision.detail  # '*' did waive those
    with pytest.raises(ValueError, match="name it exactly"):
        check_cvm_waivers(["rtmr*"])
    with pytest.raises(ValueError, match="names no step"):
        check_cvm_waivers(["nonce"])
    check_cvm_waivers(["collateral.*", "measurement", "tcb.minimum"])
