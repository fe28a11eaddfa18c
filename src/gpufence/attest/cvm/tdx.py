"""Verify an Intel TDX v4 quote offline: PCK chain, QE report, quote signature, TD attributes.

Steps (stable names, documented in docs/attestation.md): ``evidence.parse``, ``qe_vendor``,
``cert_chain`` (PCK leaf -> PCK Platform/Processor CA -> pinned Intel SGX Root CA),
``qe_report.signature`` (ECDSA P-256 by the PCK leaf over the 384-byte QE report),
``qe_report.binding`` (QE report data = SHA-256(attestation key || QE auth data) || 32 zero
bytes), ``signature`` (ECDSA P-256/SHA-256 over header + TD report body with the attestation
key), ``td.debug`` (TDATTRIBUTES TUD bits clear), ``td.seam_attributes`` (zero), ``mrtd``,
``rtmr0..3`` (allow-lists), ``report_data``, then the collateral steps of
:mod:`gpufence.attest.cvm.tdx_collateral` (``not_evaluated`` when no collateral is given).

Not checked: PCK / root CRLs (the CRL files are not read), quote versions other than 4, TD 1.5
report bodies, the QE's own TCB beyond the QE identity's levels.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import JsonValue

from gpufence.attest.certs import verify_chain
from gpufence.attest.cvm._certs import malformed_certificate, off_path
from gpufence.attest.cvm.result import CvmParseError, CvmResult
from gpufence.attest.cvm.roots import intel_sgx_root
from gpufence.attest.cvm.snp import report_data_step, value_step
from gpufence.attest.cvm.tdx_collateral import TdxCollateral, collateral_steps
from gpufence.attest.cvm.tdx_quote import INTEL_QE_VENDOR_ID, TdxQuote, parse_tdx_quote
from gpufence.attest.verify import Step

__all__ = ["TdxOptions", "verify_tdx"]


@dataclass(frozen=True)
class TdxOptions:
    """What the quote must satisfy; every ``None`` leaves its step ``not_evaluated``."""

    at: datetime
    """Certificates (and collateral) must be valid at this time."""
    expected_report_data: bytes | None = None
    mrtds: frozenset[bytes] | None = None
    rtmrs: Mapping[int, frozenset[bytes]] = field(default_factory=dict)
    """RTMR index (0..3) -> allowed values; an index not given is ``not_evaluated``."""
    collateral: TdxCollateral | None = None
    accepted_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    allow_debug: bool = False
    waivers: frozenset[str] = frozenset()
    root_override: x509.Certificate | None = None
    """Test PKIs only; production uses the pinned Intel SGX Root CA."""


def _p256(raw_xy: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw_xy)


def _verify_raw(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----")


def _pck_chain(quote: TdxQuote) -> list[x509.Certificate]:
    # One trailing NUL (a C string) is what the QE writes; anything but PEM blocks and
    # whitespace is refused, so no unsigned byte of the certification data can carry data.
    pem = quote.pck_chain_pem.removesuffix(b"\0")
    if _PEM_BLOCK.sub(b"", pem).strip():
        raise CvmParseError("PCK certification data has bytes outside its PEM blocks")
    try:
        certs = list(x509.load_pem_x509_certificates(pem))
    except ValueError as exc:
        raise CvmParseError(f"PCK certification data is not a PEM chain: {exc}") from exc
    if len(certs) != len(_PEM_BLOCK.findall(pem)):
        raise CvmParseError("PCK certification data has a PEM block that is not a certificate")
    problem = malformed_certificate(certs)
    if problem is not None:
        raise CvmParseError(f"PCK chain: {problem}")
    return certs


def _attribute_steps(quote: TdxQuote, allow_debug: bool) -> list[Step]:
    body = quote.body
    attrs = body.td_attributes.hex()
    if body.tud_bits and not allow_debug:
        debug = Step("td.debug", "fail", f"TDATTRIBUTES {attrs}: TUD bits set (debug)")
    else:
        debug = Step("td.debug", "pass", f"TDATTRIBUTES {attrs}: debug {body.debug}")
    seam = (
        Step("td.seam_attributes", "fail", f"SEAMATTRIBUTES {body.seam_attributes.hex()} != 0")
        if any(body.seam_attributes)
        else Step("td.seam_attributes", "pass", "SEAMATTRIBUTES are zero (production module)")
    )
    return [debug, seam]


def _facts(quote: TdxQuote) -> dict[str, JsonValue]:
    body = quote.body
    return {
        "version": quote.version,
        "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "mrseam": body.mrseam.hex(),
        "td_attributes": body.td_attributes.hex(),
        "xfam": body.xfam.hex(),
        "mrtd": body.mrtd.hex(),
        "mrconfigid": body.mrconfigid.hex(),
        "mrowner": body.mrowner.hex(),
        "rtmrs": [r.hex() for r in body.rtmrs],
        "qe_isv_svn": quote.qe_report.isv_svn,
    }


def verify_tdx(quote_bytes: bytes, options: TdxOptions) -> CvmResult:
    """Run every step over one quote (the PCK chain travels inside it)."""
    try:
        quote = parse_tdx_quote(quote_bytes)
        pck = _pck_chain(quote)
    except CvmParseError as exc:
        return CvmResult("tdx", (Step("evidence.parse", "fail", str(exc)),), None)
    steps = [
        Step("evidence.parse", "pass", f"v4 quote, {len(quote.raw)} bytes, {len(pck)} PCK certs")
    ]
    steps.append(
        Step("qe_vendor", "pass", "Intel QE")
        if quote.qe_vendor_id == INTEL_QE_VENDOR_ID
        else Step("qe_vendor", "fail", f"QE vendor {quote.qe_vendor_id.hex()} is not Intel's")
    )
    chain = verify_chain(pck, options.root_override or intel_sgx_root(), options.at)
    stray = off_path(pck, chain.chain) if chain.ok else None
    steps.append(
        Step("cert_chain", "fail", stray)
        if stray
        else Step("cert_chain", "pass" if chain.ok else "fail", chain.detail)
    )
    leaf_key = pck[0].public_key() if pck else None
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or leaf_key.curve.name != "secp256r1":
        steps.append(Step("qe_report.signature", "fail", "PCK leaf key is not ECDSA P-256"))
    elif _verify_raw(leaf_key, quote.qe_report_signature, quote.qe_report.raw):
        steps.append(Step("qe_report.signature", "pass", "QE report is signed by the PCK leaf"))
    else:
        steps.append(Step("qe_report.signature", "fail", "QE report signature does not verify"))
    expected_qe_data = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest()
    if quote.qe_report.report_data == expected_qe_data + bytes(32):
        steps.append(
            Step("qe_report.binding", "pass", "QE report data = SHA-256(attestation key || auth)")
        )
    else:
        steps.append(
            Step("qe_report.binding", "fail", "QE report data does not bind the attestation key")
        )
    try:
        att_key = _p256(quote.attestation_key)
    except ValueError:
        steps.append(Step("signature", "fail", "attestation key is not a P-256 point"))
    else:
        steps.append(
            Step("signature", "pass", "ECDSA P-256/SHA-256 over header + TD report verifies")
            if _verify_raw(att_key, quote.signature, quote.signed_bytes)
            else Step("signature", "fail", "quote signature does not verify")
        )
    steps += _attribute_steps(quote, options.allow_debug)
    steps.append(value_step("mrtd", quote.body.mrtd, options.mrtds, "MRTD"))
    for index, value in enumerate(quote.body.rtmrs):
        steps.append(value_step(f"rtmr{index}", value, options.rtmrs.get(index), f"RTMR{index}"))
    steps.append(report_data_step(quote.body.report_data, options.expected_report_data))
    steps += collateral_steps(
        quote,
        chain.chain[0] if chain.ok else None,
        options.collateral,
        options.at,
        options.accepted_tcb_statuses,
        options.root_override or intel_sgx_root(),
    )
    return CvmResult("tdx", tuple(steps), quote.body.report_data, _facts(quote), options.waivers)
