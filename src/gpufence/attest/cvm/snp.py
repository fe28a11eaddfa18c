"""Verify an AMD SEV-SNP attestation report offline: signature, VCEK chain, TCB, policy, values.

Steps (stable names, documented in docs/attestation.md): ``evidence.parse``, ``product``,
``cert_chain`` (VCEK -> ASK -> ARK pinned per product, RSA-PSS links), ``vcek.binding`` (the
VCEK's hwID and TCB SPL extensions equal the report's CHIP_ID and REPORTED_TCB),
``signature`` (ECDSA P-384/SHA-384 over 0x000..0x2A0 with the VCEK), ``tcb`` (reported <=
current and committed <= current, per component), ``tcb.minimum``, ``policy.debug``,
``policy.migration_agent``, ``policy.smt``, ``measurement`` (allow-list) and ``report_data``.
Steps without an input (no allow-list, no expected report data, no minimum TCB) are
``not_evaluated``, which keeps the verdict ``incomplete`` unless waived by name.

Not checked here: VCEK/ASK revocation (AMD's CRL at KDS is not read), VLEK-signed reports
(``SIGNING_KEY`` 1), Turin's different TCB layout, ID blocks and author keys beyond display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import JsonValue

from gpufence.attest import _der
from gpufence.attest.certs import verify_chain
from gpufence.attest.cvm._certs import malformed_certificate, off_path
from gpufence.attest.cvm.result import CvmParseError, CvmResult
from gpufence.attest.cvm.roots import amd_ark
from gpufence.attest.cvm.snp_report import SnpReport, TcbVersion, parse_snp_report
from gpufence.attest.verify import Step

__all__ = ["SNP_PRODUCTS", "SnpOptions", "verify_snp"]

SNP_PRODUCTS = ("Milan", "Genoa")
_AMD = "1.3.6.1.4.1.3704.1."
OID_PRODUCT_NAME = x509.ObjectIdentifier(_AMD + "2")
OID_HWID = x509.ObjectIdentifier(_AMD + "4")
OID_SPL = {
    "bootloader": x509.ObjectIdentifier(_AMD + "3.1"),
    "tee": x509.ObjectIdentifier(_AMD + "3.2"),
    "snp": x509.ObjectIdentifier(_AMD + "3.3"),
    "microcode": x509.ObjectIdentifier(_AMD + "3.8"),
}
# CPUID family 0x19: Milan models 0x00-0x0F; Genoa 0x10-0x1F, Genoa-X/Bergamo 0xA0-0xAF.
_CPU_MODELS = {"Milan": (range(0x00, 0x10),), "Genoa": (range(0x10, 0x20), range(0xA0, 0xB0))}


@dataclass(frozen=True)
class SnpOptions:
    """What the report must satisfy; every ``None`` leaves its step ``not_evaluated``."""

    at: datetime
    """Certificates must be valid at this time."""
    expected_report_data: bytes | None = None
    measurements: frozenset[bytes] | None = None
    """Allowed launch MEASUREMENTs (48 bytes each)."""
    min_tcb: TcbVersion | None = None
    """Minimum reported TCB, compared per component."""
    product: str | None = None
    """Milan or Genoa; None: from the VCEK's productName."""
    allow_debug: bool = False
    allow_migration_agent: bool = False
    allow_smt: bool = True
    waivers: frozenset[str] = frozenset()
    ark_override: Mapping[str, x509.Certificate] = field(default_factory=dict)
    """Product -> root, for test PKIs only; production uses the pinned AMD roots."""


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _der_value(raw: bytes, number: int, what: str) -> bytes:
    tlv = _der.read_single(raw)
    if tlv.number != number or tlv.tag_class != _der.UNIVERSAL:
        raise ValueError(f"{what} is not the expected DER type")
    return tlv.value


def _hwid(raw: bytes) -> bytes:
    """AMD KDS writes hwID as the raw 64 bytes; an OCTET STRING wrapping them is accepted too."""
    return raw if len(raw) == 64 else _der_value(raw, 4, "hwID")


def vcek_product(cert: x509.Certificate) -> str | None:
    """``Milan`` / ``Genoa`` from the VCEK productName extension (``Milan-B0`` -> ``Milan``)."""
    raw = _extension(cert, OID_PRODUCT_NAME)
    if raw is None:
        return None
    try:
        name = _der_value(raw, 22, "productName").decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return name.split("-")[0] or None


def _order(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first: the certificate that issued none of the others."""
    subjects = {c.issuer for c in certs if c.issuer != c.subject}
    leaves = [c for c in certs if c.subject not in subjects]
    leaf = leaves[0] if leaves else certs[0]
    return [leaf, *[c for c in certs if c is not leaf]]


def _product_step(report: SnpReport, vcek: x509.Certificate | None, declared: str | None) -> Step:
    from_cert = vcek_product(vcek) if vcek is not None else None
    product = declared or from_cert
    if product not in SNP_PRODUCTS:
        return Step("product", "fail", f"product {product!r} is not one of {SNP_PRODUCTS}")
    if declared and from_cert and declared != from_cert:
        return Step("product", "fail", f"declared {declared}, the VCEK says {from_cert}")
    if report.cpuid is not None:
        family, model, _ = report.cpuid
        if family != 0x19 or not any(model in r for r in _CPU_MODELS[product]):
            return Step(
                "product",
                "fail",
                f"report CPUID family 0x{family:x} model 0x{model:x} is not a {product}",
            )
    return Step("product", "pass", product)


def _binding_step(report: SnpReport, vcek: x509.Certificate) -> Step:
    problems = []
    try:
        for name, oid in OID_SPL.items():
            raw = _extension(vcek, oid)
            if raw is None:
                problems.append(f"VCEK has no {name} SPL")
                continue
            cert_spl = int.from_bytes(_der_value(raw, 2, f"{name} SPL"), "big", signed=True)
            if cert_spl != getattr(report.reported_tcb, name):
                problems.append(
                    f"{name} SPL {cert_spl} != REPORTED_TCB {getattr(report.reported_tcb, name)}"
                )
        hwid = _extension(vcek, OID_HWID)
        if report.mask_chip_key or not any(report.chip_id):
            problems.append("CHIP_ID is masked, the VCEK cannot be tied to this chip")
        elif hwid is None:
            problems.append("VCEK has no hwID")
        elif _hwid(hwid) != report.chip_id:
            problems.append("VCEK hwID != report CHIP_ID")
    except ValueError as exc:
        return Step("vcek.binding", "fail", f"VCEK extension unreadable: {exc}")
    if problems:
        return Step("vcek.binding", "fail", "; ".join(problems))
    return Step("vcek.binding", "pass", f"VCEK is for this CHIP_ID at TCB {report.reported_tcb}")


def _signature_step(report: SnpReport, vcek: x509.Certificate) -> Step:
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        return Step("signature", "fail", "VCEK key is not ECDSA P-384")
    der = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        key.verify(der, report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return Step("signature", "fail", "ECDSA P-384/SHA-384 signature does not verify")
    return Step("signature", "pass", "ECDSA P-384/SHA-384 over 0x000..0x2A0 verifies with the VCEK")


def _tcb_steps(report: SnpReport, minimum: TcbVersion | None) -> list[Step]:
    names = ("bootloader", "tee", "snp", "microcode")
    reported = report.reported_tcb.as_tuple()
    committed = report.committed_tcb.as_tuple()
    current = report.current_tcb.as_tuple()
    # As google/go-sev-guest validate.validateTcb: committed <= current and reported (= the
    # VCEK's TCB, checked in vcek.binding) <= current. Reported may sit below committed (a
    # fleet-wide reported TCB), so that order is not required.
    above = [
        n
        for n, r, c, cur in zip(names, reported, committed, current, strict=True)
        if not (r <= cur and c <= cur)
    ]
    detail = (
        f"reported {report.reported_tcb}; committed {report.committed_tcb}; "
        f"current {report.current_tcb}"
    )
    reserved = [
        f"{n} TCB"
        for n, t in (
            ("reported", report.reported_tcb),
            ("committed", report.committed_tcb),
            ("current", report.current_tcb),
            ("launch", report.launch_tcb),
        )
        if any(t.reserved_bytes)
    ]
    steps = []
    if above or reserved:
        why = f"reported or committed above current for {above}" if above else ""
        why += f" reserved bytes set in {reserved}" if reserved else ""
        steps.append(Step("tcb", "fail", f"{why.strip()}: {detail}"))
    else:
        steps.append(Step("tcb", "pass", detail))
    if minimum is None:
        steps.append(Step("tcb.minimum", "not_evaluated", "no minimum TCB given"))
    else:
        low = [
            f"{n} {r} < {m}"
            for n, r, m in zip(names, reported, minimum.as_tuple(), strict=True)
            if r < m
        ]
        steps.append(
            Step("tcb.minimum", "fail", "reported TCB below the minimum: " + ", ".join(low))
            if low
            else Step("tcb.minimum", "pass", f"reported TCB >= {minimum}")
        )
    return steps


def _policy_steps(report: SnpReport, options: SnpOptions) -> list[Step]:
    policy = report.policy
    steps = []
    if policy.debug and not options.allow_debug:
        steps.append(Step("policy.debug", "fail", "guest policy allows debugging (bit 19)"))
    else:
        steps.append(
            Step(
                "policy.debug",
                "pass",
                "debugging allowed by configuration" if policy.debug else "debugging disabled",
            )
        )
    if policy.migrate_ma and not options.allow_migration_agent:
        steps.append(
            Step("policy.migration_agent", "fail", "guest policy allows a migration agent")
        )
    else:
        steps.append(
            Step("policy.migration_agent", "pass", f"migration agent allowed: {policy.migrate_ma}")
        )
    if report.smt_enabled and not options.allow_smt:
        steps.append(Step("policy.smt", "fail", "the host runs with SMT enabled"))
    else:
        steps.append(
            Step(
                "policy.smt",
                "pass",
                f"host SMT enabled: {report.smt_enabled}; policy allows SMT: {policy.smt_allowed}",
            )
        )
    return steps


def value_step(name: str, actual: bytes, allowed: frozenset[bytes] | None, what: str) -> Step:
    """Allow-list membership of one measured value (``not_evaluated`` without a list)."""
    if allowed is None:
        return Step(name, "not_evaluated", f"no {what} allow-list given ({actual.hex()})")
    if actual in allowed:
        return Step(name, "pass", f"{what} {actual.hex()[:24]}... is allowed")
    return Step(name, "fail", f"{what} {actual.hex()} is not in the allow-list")


def report_data_step(actual: bytes, expected: bytes | None) -> Step:
    """The signed report data equals the expected binding (``not_evaluated`` without one)."""
    if expected is None:
        return Step("report_data", "not_evaluated", f"no expected report data ({actual.hex()})")
    if actual == expected:
        return Step("report_data", "pass", "report data equals the expected binding")
    return Step("report_data", "fail", f"report data {actual.hex()} is not the expected value")


def _facts(report: SnpReport) -> dict[str, JsonValue]:
    return {
        "version": report.version,
        "guest_svn": report.guest_svn,
        "policy": f"0x{report.policy.raw:x}",
        "vmpl": report.vmpl,
        "measurement": report.measurement.hex(),
        "host_data": report.host_data.hex(),
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "chip_id": report.chip_id.hex(),
        "reported_tcb": str(report.reported_tcb),
        "platform_info": f"0x{report.platform_info:x}",
        "signing_key": {0: "vcek", 1: "vlek"}.get(report.signing_key, str(report.signing_key)),
    }


def verify_snp(
    report_bytes: bytes, certs: Sequence[x509.Certificate], options: SnpOptions
) -> CvmResult:
    """Run every step over one report and its VCEK (+ ASK; an ARK sent along must be pinned)."""
    try:
        report = parse_snp_report(report_bytes)
    except CvmParseError as exc:
        return CvmResult("sev-snp", (Step("evidence.parse", "fail", str(exc)),), None)
    steps = [Step("evidence.parse", "pass", f"version {report.version}, {len(report.raw)} bytes")]
    problem = malformed_certificate(certs)
    if problem is not None:
        steps.append(Step("cert_chain", "fail", problem))
        return CvmResult("sev-snp", tuple(steps), report.report_data, _facts(report))
    ordered = _order(certs) if certs else []
    vcek = ordered[0] if ordered else None
    product_step = _product_step(report, vcek, options.product)
    steps.append(product_step)
    if report.signing_key != 0:
        steps.append(Step("cert_chain", "fail", "only VCEK-signed reports are supported"))
    elif vcek is None:
        steps.append(Step("cert_chain", "fail", "no VCEK certificate given"))
    elif product_step.status != "pass":
        steps.append(Step("cert_chain", "fail", "no pinned ARK for an unknown product"))
    else:
        product = product_step.detail
        root = options.ark_override.get(product) or amd_ark(product)
        chain = verify_chain(ordered, root, options.at, expected_length=3)
        stray = off_path(ordered, chain.chain) if chain.ok else None
        steps.append(
            Step("cert_chain", "fail", stray)
            if stray
            else Step("cert_chain", "pass" if chain.ok else "fail", chain.detail)
        )
    if vcek is not None:
        steps.append(_binding_step(report, vcek))
        steps.append(_signature_step(report, vcek))
    else:
        steps.append(Step("vcek.binding", "fail", "no VCEK certificate given"))
        steps.append(Step("signature", "fail", "no VCEK certificate given"))
    steps += _tcb_steps(report, options.min_tcb)
    steps += _policy_steps(report, options)
    steps.append(value_step("measurement", report.measurement, options.measurements, "MEASUREMENT"))
    steps.append(report_data_step(report.report_data, options.expected_report_data))
    return CvmResult("sev-snp", tuple(steps), report.report_data, _facts(report), options.waivers)
