"""NVIDIA reference integrity manifests (SWID RIMs): signature, chain, and measurement comparison.

A RIM is an ISO/IEC 19770-2 SoftwareIdentity tag with an enveloped XML-DSig (ecdsa-sha384,
c14n 1.1) whose KeyInfo carries the signer chain up to the NVIDIA CoRIM signing Root CA. Each
``<Resource type="Measurement" index=N active=.. alternatives=k size=48 Hash0..Hash{k-1}>`` is a
golden value for SPDM measurement block N+1.

Measurements are read only from the XML that ``signxml`` returns as signed (never from the tree
as parsed before verification; nvtrust defect 4 in the notes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from pydantic import JsonValue
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from gpufence.attest.certs import ChainResult, rim_root, verify_chain
from gpufence.attest.spdm import MeasurementBlock

__all__ = [
    "Comparison",
    "ManifestKind",
    "Reference",
    "ReferenceManifest",
    "RimCheck",
    "RimError",
    "check_rim",
    "compare_measurements",
]

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
TCG_RIM_NS = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
NVDEC_INDEX = 35
"""Golden index that is not measured while NVDEC0 is disabled (nvtrust's intent; defect 3)."""

ManifestKind = Literal["driver", "vbios", "switch_bios"]
_VBIOS_VERSION = re.compile(r"^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)


class RimError(ValueError):
    """The file is not a readable NVIDIA SWID RIM."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference measurement of a RIM: index, whether active, size and accepted values."""

    index: int
    """RIM index (SPDM block index - 1)."""
    active: bool
    size: int
    alternatives: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ReferenceManifest:
    """The reference measurements of a RIM (SWID tag) by measurement index."""

    kind: ManifestKind
    tag_id: str
    product: str
    colloquial_version: str
    manufacturer_id: str | None
    references: Mapping[int, Reference]

    @property
    def active(self) -> dict[int, Reference]:
        """The references that are active (compared against the device)."""
        return {i: r for i, r in self.references.items() if r.active}


@dataclass(frozen=True, slots=True)
class RimCheck:
    """A RIM checked: kind, version, signature and chain verdicts, and its measurements."""

    source: str
    kind: ManifestKind
    version: str
    """colloquialVersion, as the manifest states it (before signature verification)."""
    signature_ok: bool
    signature_detail: str
    chain: ChainResult
    manifest: ReferenceManifest | None
    """Read from the signed XML; None when the signature did not verify."""


def _kind(meta: etree._Element, root: etree._Element) -> ManifestKind:
    if (meta.get("edition") or "").upper() == "SWITCH":
        return "switch_bios"
    if _VBIOS_VERSION.match(meta.get("colloquialVersion") or ""):
        return "vbios"
    return "driver"


def _manifest(root: etree._Element) -> ReferenceManifest:
    if etree.QName(root).localname != "SoftwareIdentity":
        raise RimError(f"root element is <{etree.QName(root).localname}>, not <SoftwareIdentity>")
    meta = root.find(f"{{{SWID_NS}}}Meta")
    payload = root.find(f"{{{SWID_NS}}}Payload")
    if meta is None or payload is None:
        raise RimError("SoftwareIdentity has no Meta or Payload")
    references: dict[int, Reference] = {}
    for resource in payload.iter(f"{{{SWID_NS}}}Resource"):
        if resource.get("type") != "Measurement":
            continue
        try:
            index = int(resource.get("index", ""))
            count = int(resource.get("alternatives", ""))
            size = int(resource.get("size", ""))
            hashes = tuple(
                bytes.fromhex(resource.get(f"{{{SHA384_NS}}}Hash{i}") or "") for i in range(count)
            )
        except ValueError as exc:
            raise RimError(f"Resource at line {resource.sourceline}: {exc}") from exc
        if index in references:
            raise RimError(f"Resource index {index} appears twice")
        if any(len(h) != size for h in hashes):
            raise RimError(f"Resource index {index}: a hash is not {size} bytes")
        active = (resource.get("active") or "").lower() == "true"
        references[index] = Reference(index, active, size, hashes)
    return ReferenceManifest(
        kind=_kind(meta, root),
        tag_id=root.get("tagId") or "",
        product=meta.get("product") or root.get("name") or "",
        colloquial_version=meta.get("colloquialVersion") or "",
        manufacturer_id=meta.get(f"{{{TCG_RIM_NS}}}FirmwareManufacturerId"),
        references=references,
    )


def _signer_chain(root: etree._Element) -> list[x509.Certificate]:
    nodes = root.findall(
        f".//{{{DSIG_NS}}}KeyInfo/{{{DSIG_NS}}}X509Data/{{{DSIG_NS}}}X509Certificate"
    )
    certs = []
    for node in nodes:
        text = "".join((node.text or "").split())
        pem = f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n".encode()
        try:
            certs.append(x509.load_pem_x509_certificate(pem))
        except ValueError as exc:
            raise RimError(f"KeyInfo certificate is unreadable: {exc}") from exc
    return certs


def check_rim(
    xml: bytes, at: datetime, *, source: str = "rim", root_ca: x509.Certificate | None = None
) -> RimCheck:
    """Verify one RIM's XML-DSig and signer chain; read its measurements from the signed XML."""
    try:
        tree = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RimError(f"{source}: not well-formed XML: {exc}") from exc
    unsigned = _manifest(tree)
    certs = _signer_chain(tree)
    chain = verify_chain(certs, root_ca or rim_root(), at)
    manifest = None
    if not certs:
        ok, detail = False, "the signature carries no X.509 signer certificate"
    else:
        signer = certs[0]
        # Validity is the chain step's business; check the signature at a time the signer was valid.
        config = SignatureConfiguration(verification_time=signer.not_valid_before_utc)
        try:
            result = XMLVerifier().verify(xml, x509_cert=signer, expect_config=config)
        except (SignXMLException, ValueError) as exc:
            ok, detail = False, f"XML-DSig does not verify: {exc}"
        else:
            signed_root = result.signed_xml if not isinstance(result, list) else None
            if signed_root is None or etree.QName(signed_root).localname != "SoftwareIdentity":
                ok, detail = False, "the signature does not cover the whole SoftwareIdentity"
            else:
                manifest = _manifest(signed_root)
                ok = True
                detail = f"XML-DSig verifies with {signer.subject.rfc4514_string()}"
    return RimCheck(
        source=source,
        kind=unsigned.kind,
        version=unsigned.colloquial_version,
        signature_ok=ok,
        signature_detail=detail,
        chain=chain,
        manifest=manifest,
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Device measurements compared with the RIMs: mismatches, conflicts and skipped indices."""

    compared: int
    mismatches: tuple[dict[str, JsonValue], ...]
    conflicts: tuple[int, ...]
    """Indexes active in more than one manifest (driver and VBIOS must not overlap)."""
    skipped: tuple[int, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether nothing mismatched and no RIMs conflicted."""
        return not self.mismatches and not self.conflicts


def compare_measurements(
    blocks: Sequence[MeasurementBlock],
    manifests: Iterable[ReferenceManifest],
    *,
    nvdec0_enabled: bool | None = None,
) -> Comparison:
    """Compare runtime blocks with the union of the manifests' active golden values."""
    runtime = {b.index: b.value for b in blocks}
    golden: dict[int, tuple[str, Reference]] = {}
    conflicts: list[int] = []
    for manifest in manifests:
        for index, ref in manifest.active.items():
            if index in golden:
                conflicts.append(index)
            golden[index] = (f"{manifest.kind}_rim", ref)
    mismatches: list[dict[str, JsonValue]] = []
    skipped = []
    compared = 0
    if len(golden) > len(runtime):
        mismatches.append(
            {"reason": f"{len(golden)} golden measurements but only {len(runtime)} runtime blocks"}
        )
    for index, (source, ref) in sorted(golden.items()):
        if index == NVDEC_INDEX and nvdec0_enabled is False and source != "switch_bios_rim":
            skipped.append(index)
            continue
        value = runtime.get(index + 1)
        compared += 1
        if value is not None and len(value) == ref.size and value in ref.alternatives:
            continue
        mismatches.append(
            {
                "index": index,
                "measurementSource": source,
                "goldenValue": [h.hex() for h in ref.alternatives],
                "goldenSize": ref.size,
                "runtimeValue": value.hex() if value is not None else None,
                "runtimeSize": len(value) if value is not None else 0,
            }
        )
    return Comparison(compared, tuple(mismatches), tuple(sorted(set(conflicts))), tuple(skipped))
