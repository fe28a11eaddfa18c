"""TDX collateral from files (no network): TCB info, QE identity, their signing chain.

A collateral directory holds Intel PCS responses saved as files: ``tcb_info.json`` (body of
``/tdx/certification/v4/tcb``), ``qe_identity.json`` (``/tdx/certification/v4/qe/identity``) and
``tcb_signing_chain.pem`` (the ``TCB-Info-Issuer-Chain`` header: Intel SGX TCB Signing -> Intel
SGX Root CA). Intel signs the exact bytes of the ``tcbInfo`` / ``enclaveIdentity`` JSON value
(ECDSA P-256/SHA-256, signature hex r||s); we verify those bytes as they are in the file.

Steps: ``collateral.signing_chain``, ``collateral.tcb_info`` (signature, id TDX, FMSPC and
PCE-ID of the PCK leaf, freshness), ``collateral.qe_identity`` (signature, id TD_QE, MRSIGNER,
ISVPRODID, masked MISCSELECT/ATTRIBUTES, freshness, ISVSVN level status) and
``collateral.tcb_level`` (the matching TCB level by the PCK's SGX TCB components and PCESVN and
the quote's TEE_TCB_SVN, the TDX module's MRSIGNER, and an accepted status). Collateral whose
``nextUpdate`` has passed is stale: ``not_evaluated``, never ``pass``. Without collateral every
step is ``not_evaluated``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gpufence.attest import _der
from gpufence.attest.certs import verify_chain
from gpufence.attest.cvm._certs import malformed_certificate, off_path
from gpufence.attest.cvm.tdx_quote import TdxQuote
from gpufence.attest.verify import Step, StepStatus
from gpufence.errors import InputError

__all__ = ["SignedJson", "TdxCollateral", "collateral_steps", "load_collateral", "pck_tcb"]

COLLATERAL_FILES = ("tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem")
SGX_EXTENSION = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
_SGX = "1.2.840.113741.1.13.1"


@dataclass(frozen=True)
class SignedJson:
    """One signed PCS document: the signed bytes, their parsed value, the signature."""

    signed: bytes
    value: dict[str, Any]
    signature: bytes
    source: str


@dataclass(frozen=True)
class TdxCollateral:
    """TCB info + QE identity + the chain that signed them."""

    tcb_info: SignedJson
    qe_identity: SignedJson
    signing_chain: tuple[x509.Certificate, ...]


def _signed_json(path: Path, key: str) -> SignedJson:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 JSON") from None
    prefix = f'{{"{key}":'
    if not text.startswith(prefix):
        raise InputError(f"{path}: expected a PCS response starting with {prefix!r}")
    decoder = json.JSONDecoder()
    try:
        value, end = decoder.raw_decode(text, len(prefix))
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    signature = whole.get("signature") if isinstance(whole, dict) else None
    if not isinstance(value, dict) or not isinstance(signature, str):
        raise InputError(f"{path}: expected {{{key!r}: object, 'signature': hex}}")
    try:
        sig = bytes.fromhex(signature)
    except ValueError:
        raise InputError(f"{path}: 'signature' is not hex") from None
    if len(sig) != 64:
        raise InputError(f"{path}: 'signature' is {len(sig)} bytes, expected 64 (r||s)")
    return SignedJson(text[len(prefix) : end].encode("utf-8"), value, sig, str(path))


def load_collateral(directory: Path) -> TdxCollateral:
    """Read the three collateral files from ``directory`` (InputError when one is missing/bad)."""
    missing = [n for n in COLLATERAL_FILES if not (directory / n).is_file()]
    if missing:
        raise InputError(
            f"{directory}: collateral directory lacks {', '.join(missing)}",
            hint=f"expected files: {', '.join(COLLATERAL_FILES)}",
        )
    chain_path = directory / "tcb_signing_chain.pem"
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise InputError(f"{chain_path}: not a PEM certificate chain: {exc}") from exc
    problem = malformed_certificate(chain)
    if problem is not None:
        raise InputError(f"{chain_path}: {problem}")
    return TdxCollateral(
        _signed_json(directory / "tcb_info.json", "tcbInfo"),
        _signed_json(directory / "qe_identity.json", "enclaveIdentity"),
        chain,
    )


def _oid(value: bytes) -> str:
    if not value:
        raise ValueError("empty OID")
    first = value[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    acc = 0
    for byte in value[1:]:
        acc = (acc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(acc)
            acc = 0
    return ".".join(map(str, parts))


def _pairs(tlv: _der.Tlv) -> dict[str, _der.Tlv]:
    out = {}
    for item in _der.children(tlv):
        kids = _der.children(item)
        if len(kids) != 2 or kids[0].number != 6:
            raise ValueError("SGX extension item is not SEQUENCE { OID, value }")
        out[_oid(kids[0].value)] = kids[1]
    return out


@dataclass(frozen=True, slots=True)
class PckTcb:
    """What the PCK leaf's SGX extension says about the platform."""

    fmspc: bytes
    pce_id: bytes
    sgx_svns: tuple[int, ...]
    pce_svn: int


def pck_tcb(cert: x509.Certificate) -> PckTcb:
    """FMSPC, PCE-ID, the 16 SGX TCB component SVNs and PCESVN (ValueError when malformed)."""
    try:
        ext = cert.extensions.get_extension_for_oid(SGX_EXTENSION).value
    except x509.ExtensionNotFound:
        raise ValueError("PCK leaf has no SGX extension") from None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    top = _pairs(_der.read_single(raw))
    tcb = _pairs(top[f"{_SGX}.2"])
    svns = tuple(int.from_bytes(tcb[f"{_SGX}.2.{i}"].value, "big") for i in range(1, 17))
    return PckTcb(
        fmspc=top[f"{_SGX}.4"].value,
        pce_id=top[f"{_SGX}.3"].value,
        sgx_svns=svns,
        pce_svn=int.from_bytes(tcb[f"{_SGX}.2.17"].value, "big"),
    )


def _signature_ok(doc: SignedJson, signer: x509.Certificate) -> bool:
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    der = encode_dss_signature(
        int.from_bytes(doc.signature[:32], "big"), int.from_bytes(doc.signature[32:], "big")
    )
    try:
        key.verify(der, doc.signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("date is not a string")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _freshness(doc: SignedJson, at: datetime) -> str | None:
    issued, next_update = _time(doc.value["issueDate"]), _time(doc.value["nextUpdate"])
    if at < issued:
        return f"issued {issued.isoformat()}, after the check time"
    if at > next_update:
        return f"stale: nextUpdate {next_update.isoformat()} has passed"
    return None


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value))


def _qe_identity_step(quote: TdxQuote, doc: SignedJson, at: datetime) -> Step:
    ident, qe = doc.value, quote.qe_report
    name = "collateral.qe_identity"
    if ident.get("id") != "TD_QE":
        return Step(name, "fail", f"identity id {ident.get('id')!r} is not TD_QE")
    problems = []
    if _hex(ident["mrsigner"]) != qe.mr_signer:
        problems.append("MRSIGNER differs")
    if int(ident["isvprodid"]) != qe.isv_prod_id:
        problems.append(f"ISVPRODID {qe.isv_prod_id} != {ident['isvprodid']}")
    mask = int(ident["miscselectMask"], 16)
    if qe.misc_select & mask != int(ident["miscselect"], 16) & mask:
        problems.append("masked MISCSELECT differs")
    amask = _hex(ident["attributesMask"])
    want = _hex(ident["attributes"])
    if bytes(a & m for a, m in zip(qe.attributes, amask, strict=True)) != bytes(
        w & m for w, m in zip(want, amask, strict=True)
    ):
        problems.append("masked ATTRIBUTES differ")
    if problems:
        return Step(
            name, "fail", "QE report does not match the QE identity: " + "; ".join(problems)
        )
    levels = [lv for lv in ident["tcbLevels"] if int(lv["tcb"]["isvsvn"]) <= qe.isv_svn]
    status = str(levels[0]["tcbStatus"]) if levels else "unsupported"
    if status != "UpToDate":
        return Step(name, "fail", f"QE ISVSVN {qe.isv_svn}: status {status}")
    stale = _freshness(doc, at)
    if stale:
        return Step(name, "not_evaluated", f"QE identity matches (UpToDate) but is {stale}")
    return Step(name, "pass", f"QE identity matches; ISVSVN {qe.isv_svn} is UpToDate")


def _tcb_level_step(
    quote: TdxQuote, info: dict[str, Any], pck: PckTcb, accepted: frozenset[str]
) -> Step:
    name = "collateral.tcb_level"
    module = info.get("tdxModule", {})
    if module and _hex(module["mrsigner"]) != quote.body.mrsignerseam:
        return Step(name, "fail", "MRSIGNERSEAM is not the TDX module signer in the TCB info")
    tee = quote.body.tee_tcb_svn
    for level in info["tcbLevels"]:
        tcb = level["tcb"]
        sgx = [int(c["svn"]) for c in tcb["sgxtcbcomponents"]]
        tdx = [int(c["svn"]) for c in tcb["tdxtcbcomponents"]]
        if any(p < s for p, s in zip(pck.sgx_svns, sgx, strict=True)):
            continue
        if pck.pce_svn < int(tcb["pcesvn"]):
            continue
        if any(t < s for t, s in zip(tee, tdx, strict=True)):
            continue
        status = str(level["tcbStatus"])
        if tee[1] != tdx[1]:
            return Step(name, "fail", f"TEE_TCB_SVN[1] {tee[1]} != level's {tdx[1]}")
        detail = f"TCB level {level.get('tcbDate')} status {status}"
        return Step(name, "pass" if status in accepted else "fail", detail)
    return Step(name, "fail", "no TCB level matches the PCK and TEE_TCB_SVN (unsupported)")


def collateral_steps(
    quote: TdxQuote,
    pck_leaf: x509.Certificate | None,
    collateral: TdxCollateral | None,
    at: datetime,
    accepted: frozenset[str],
    root: x509.Certificate,
) -> Sequence[Step]:
    """The four collateral steps (all ``not_evaluated`` without collateral)."""
    names = ("signing_chain", "tcb_info", "qe_identity", "tcb_level")
    if collateral is None:
        return [
            Step(f"collateral.{n}", "not_evaluated", "no collateral given (offline)") for n in names
        ]
    chain = verify_chain(collateral.signing_chain, root, at)
    # An expired signing chain is stale collateral: its signatures are still checked (a forgery
    # fails), but nothing it vouches for can pass.
    status: StepStatus = {"valid": "pass", "expired": "not_evaluated"}.get(chain.status, "fail")  # type: ignore[assignment]
    stray = off_path(collateral.signing_chain, chain.chain) if chain.chain else None
    if stray is not None:
        chain = dataclasses.replace(chain, status="invalid", chain=())
        status = "fail"
    steps = [Step("collateral.signing_chain", status, stray or chain.detail)]
    signer = chain.chain[0] if chain.chain else None
    info_doc, ident_doc = collateral.tcb_info, collateral.qe_identity
    signed = {
        doc.source: signer is not None and _signature_ok(doc, signer)
        for doc in (info_doc, ident_doc)
    }
    try:
        pck = pck_tcb(pck_leaf) if pck_leaf is not None else None
        info = info_doc.value
        if not signed[info_doc.source]:
            steps.append(Step("collateral.tcb_info", "fail", "TCB info signature does not verify"))
        elif info.get("id") != "TDX" or pck is None:
            steps.append(Step("collateral.tcb_info", "fail", "not TDX TCB info, or no valid PCK"))
        elif _hex(info["fmspc"]) != pck.fmspc or _hex(info["pceId"]) != pck.pce_id:
            steps.append(
                Step(
                    "collateral.tcb_info",
                    "fail",
                    f"TCB info is for FMSPC {info['fmspc']}, the PCK says {pck.fmspc.hex()}",
                )
            )
        else:
            stale = _freshness(info_doc, at)
            steps.append(
                Step("collateral.tcb_info", "not_evaluated", f"TCB info is {stale}")
                if stale
                else Step(
                    "collateral.tcb_info", "pass", f"signed TCB info for FMSPC {info['fmspc']}"
                )
            )
        if not signed[ident_doc.source]:
            steps.append(
                Step("collateral.qe_identity", "fail", "QE identity signature does not verify")
            )
        else:
            steps.append(_qe_identity_step(quote, ident_doc, at))
        if steps[1].status == "fail" or pck is None:
            steps.append(
                Step("collateral.tcb_level", "fail", "no trusted TCB info to compare with")
            )
        else:
            level = _tcb_level_step(quote, info, pck, accepted)
            if level.status == "pass" and steps[1].status != "pass":
                level = Step(level.name, "not_evaluated", f"{level.detail}, from stale TCB info")
            steps.append(level)
        if chain.status == "expired":
            steps[1:] = [
                Step(s.name, "not_evaluated", f"{s.detail} (signing chain expired)")
                if s.status == "pass"
                else s
                for s in steps[1:]
            ]
    except (KeyError, ValueError, TypeError) as exc:
        done = {s.name for s in steps}
        steps += [
            Step(f"collateral.{n}", "fail", f"collateral or PCK extension malformed: {exc!r}")
            for n in names
            if f"collateral.{n}" not in done
        ]
    return steps
