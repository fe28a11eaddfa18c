"""NVIDIA's v3 claim names for a verification result, and the JSON shape of ``attest verify``.

Claim names follow NRAS/NVAT claims v3 (``hopperClaimsv3_decoded.json`` and NVAT ``claims.h``) so
relying-party policies written for NVIDIA's verifiers apply unchanged. Where gpufence did not
check something offline it says so in the claim rather than claiming success: OCSP status
``"not-checked"``, ``measres`` ``"not-evaluated"`` when a RIM was missing. ``secboot`` and
``dbgstat`` are derived like NVIDIA does (only when the measurements match), never read from
hardware.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from gpufence.attest.certs import ChainResult
from gpufence.attest.ocsp import RevocationResult
from gpufence.attest.verify import DeviceResult, SetResult

__all__ = ["CLAIMS_VERSION", "device_claims", "result_json"]

CLAIMS_VERSION = "3.0"
_OCSP_STATUS = {
    "good": "good",
    "revoked": "revoked",
    "unknown": "unknown",
    "not_checked": "not-checked",
}


def _chain_claim(chain: ChainResult | None, revocation: RevocationResult) -> dict[str, JsonValue]:
    return {
        "x-nvidia-cert-status": chain.status if chain else "invalid",
        "x-nvidia-cert-ocsp-status": _OCSP_STATUS[revocation.status],
        "x-nvidia-cert-expiration-date": (
            chain.expiration.strftime("%Y-%m-%dT%H:%M:%SZ") if chain and chain.expiration else None
        ),
        "x-nvidia-cert-revocation-reason": revocation.reason,
        "x-nvidia-cert-ocsp-nonce-matches": revocation.nonce_matches,
        "x-nvidia-cert-ocsp-response-valid": revocation.response_valid,
    }


def _passed(result: DeviceResult, name: str) -> bool:
    step = result.step(name)
    return step is not None and step.status == "pass"


def device_claims(result: DeviceResult) -> dict[str, JsonValue]:
    """The per-device claim set (``x-nvidia-gpu-*`` or ``x-nvidia-switch-*``)."""
    p = "x-nvidia-gpu" if result.kind == "gpu" else "x-nvidia-switch"
    claims: dict[str, JsonValue] = {
        "x-nvidia-device-type": result.kind,
        f"{p}-claims-version": CLAIMS_VERSION,
        f"{p}-arch-check": _passed(result, "arch"),
        f"{p}-attestation-report-parsed": _passed(result, "evidence.parse"),
        f"{p}-attestation-report-nonce-match": _passed(result, "nonce"),
        f"{p}-attestation-report-signature-verified": _passed(result, "signature"),
        f"{p}-attestation-report-cert-chain": _chain_claim(result.chain, result.revocation),
        f"{p}-attestation-report-cert-chain-fwid-match": result.fwid_match is True,
        "x-nvidia-attestation-warning": "; ".join(result.warnings) or None,
    }
    if result.report is not None:
        claims["eat_nonce"] = result.report.request.nonce.hex()
    if result.chain is not None and result.chain.chain:
        claims["ueid"] = str(result.chain.chain[0].serial_number)
        from cryptography.x509.oid import NameOID

        brom = result.chain.chain[1].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        claims["hwmodel"] = str(brom[0].value) if brom else None
    facts = result.facts
    if facts is not None:
        if result.kind == "gpu":
            claims[f"{p}-driver-version"] = facts.driver_version
            claims[f"{p}-vbios-version"] = facts.vbios_version
        else:
            claims[f"{p}-bios-version"] = facts.vbios_version
        if facts.pdi is not None:
            claims[f"{p}-pdi"] = facts.pdi.hex()
        if facts.peer_pdis:
            key = "x-nvidia-gpu-switch-pdis" if result.kind == "gpu" else "x-nvidia-switch-gpu-pdis"
            claims[key] = [pdi.hex() for pdi in facts.peer_pdis]
        if facts.feature_flag is not None:
            claims[f"{p}-feature-flag"] = facts.feature_flag
    rim_names = {"driver": "driver-rim", "vbios": "vbios-rim", "switch_bios": "bios-rim"}
    oemid = None
    for kind, outcome in result.rims.items():
        rp = f"{p}-{rim_names[kind]}"
        check = outcome.check
        manifest = check.manifest if check else None
        claims[f"{rp}-fetched"] = check is not None
        # Structure only: gpufence parses the SWID tag strictly but ships no XSD.
        claims[f"{rp}-schema-validated"] = manifest is not None
        claims[f"{rp}-signature-verified"] = bool(check and check.signature_ok)
        claims[f"{rp}-measurements-available"] = manifest is not None
        claims[f"{rp}-version-match"] = outcome.version_match is True
        claims[f"{rp}-cert-chain"] = _chain_claim(
            check.chain if check else None, outcome.revocation
        )
        if manifest is not None and oemid is None and result.kind == "gpu":
            oemid = manifest.manufacturer_id
    claims["oemid"] = oemid
    comparison = result.comparison
    measurements = result.step("measurements")
    if measurements is not None and measurements.status == "pass":
        claims["measres"] = "success"
        claims["secboot"] = True
        claims["dbgstat"] = "disabled"
    else:
        failed = measurements is not None and measurements.status == "fail"
        claims["measres"] = "fail" if failed else "not-evaluated"
    if comparison is not None:
        claims["x-nvidia-mismatch-measurement-records"] = [
            m for m in comparison.mismatches if "index" in m
        ]
        if result.kind == "gpu":
            claims["x-nvidia-gpu-vbios-index-no-conflict"] = not comparison.conflicts
    return claims


def result_json(result: SetResult, waivers: Sequence[str] = ()) -> dict[str, JsonValue]:
    """The ``attest verify --format json`` document; verdicts judged with ``waivers``."""
    return {
        "verdict": result.judge(waivers),
        "waivers": list(waivers),
        "waived_steps": list(result.waived(waivers)),
        "set_steps": [s.as_json() for s in result.steps],
        "devices": [
            {
                "name": device.name,
                "kind": device.kind,
                "verdict": device.judge(waivers),
                "steps": [s.as_json() for s in device.steps],
                "claims": device_claims(device),
            }
            for device in result.devices
        ],
    }
