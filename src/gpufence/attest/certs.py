"""Certificate chains to the pinned NVIDIA roots, validity at a chosen time, and the leaf's FWID.

Each link is checked with ``cryptography`` (``verify_directly_issued_by``: issuer name and
signature), plus the RFC 5280 basics (CA flag, keyCertSign, path length, no unknown critical
extension) and validity at the requested time. ``cryptography.x509.verification`` is not used:
its web-PKI profile rejects real NVIDIA RIM signer certificates (validity dates encoded as
GeneralizedTime before 2050). On top we require what NVIDIA's layout promises: the leaf is not
a CA, a root sent along is byte-identical to the pinned one, and device chains are 5 deep.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from gpufence.attest import _der

__all__ = [
    "DEVICE_CHAIN_LENGTH",
    "ChainResult",
    "ChainStatus",
    "device_root",
    "fingerprint",
    "leaf_fwid",
    "load_pem_chain",
    "off_path",
    "rim_root",
    "verify_chain",
]

MAX_DEPTH = 8
DEVICE_CHAIN_LENGTH = 5
"""Leaf (FMC) -> BROM -> Provisioner ICA -> <chip> Identity -> NVIDIA Device Identity CA."""

TCG_DICE_TCB_INFO = x509.ObjectIdentifier("2.23.133.5.4.1")
TCG_DICE_TCB_INFO_ALIAS = x509.ObjectIdentifier("2.23.133.5.4.1.1")
_FWIDS_TAG = 6  # DiceTcbInfo: fwids [6] IMPLICIT FWIDLIST

ChainStatus = Literal["valid", "expired", "invalid"]


@cache
def _root(name: str) -> x509.Certificate:
    pem = resources.files("gpufence.attest").joinpath("roots").joinpath(name).read_bytes()
    return x509.load_pem_x509_certificate(pem)


def device_root() -> x509.Certificate:
    """The pinned NVIDIA Device Identity CA (GPU and NVSwitch identity)."""
    return _root("nvidia_device_identity_ca.pem")


def rim_root() -> x509.Certificate:
    """The pinned NVIDIA CoRIM signing Root CA (reference integrity manifests)."""
    return _root("nvidia_corim_signing_root_ca.pem")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _fully_readable(cert: x509.Certificate, position: int) -> None:
    """Touch every field verification reads, so a malformed certificate is refused at load.

    ``cryptography`` parses some parts lazily (extensions, the public key, the signature
    algorithm); left to verification, a bad one surfaced as an internal error (issue 12).
    """
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number
        _ = cert.signature_hash_algorithm
        cert.public_key()
        for extension in cert.extensions:
            _ = extension.value
    except (
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ) as exc:
        raise ValueError(f"certificate {position + 1} is malformed: {exc}") from None


def load_pem_chain(data: bytes) -> list[x509.Certificate]:
    """All PEM certificates in ``data`` (leaf first); ValueError (saying which) when none or one
    is bad; other PEM blocks (a CSR, a private key) are refused, not skipped. Parsed chains are
    cached by their bytes (certificates are immutable; a broker sees the same chains again)."""
    return list(_parse_pem_chain(data))


@lru_cache(maxsize=1024)
def _parse_pem_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        found = sorted(set(re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)))
        if found:
            kinds = ", ".join(k.decode() for k in found)
            raise ValueError(f"no PEM certificate found (found {kinds} instead)")
        raise ValueError("no PEM certificate found")
    others = sorted(set(re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)) - {b"CERTIFICATE"})
    if others:
        kinds = ", ".join(k.decode() for k in others)
        raise ValueError(f"the chain also holds {kinds} blocks; give only certificates")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"a certificate does not parse: {exc}") from exc
    for position, cert in enumerate(certs):
        _fully_readable(cert, position)
    return tuple(certs)


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The outcome of validating a certificate chain to a pinned root, with the chain and detail."""

    status: ChainStatus
    detail: str
    chain: tuple[x509.Certificate, ...]
    """The verified path, leaf first, ending at the pinned root (empty when invalid)."""
    expiration: datetime | None
    """The earliest notAfter on the path (NVIDIA's ``x-nvidia-cert-expiration-date``)."""

    @property
    def ok(self) -> bool:
        """Whether the chain validated."""
        return self.status == "valid"


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _build_path(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], root: x509.Certificate
) -> list[x509.Certificate]:
    """Leaf -> ... -> root by issuer name and signature; ValueError naming the broken link."""
    path = [leaf]
    current = leaf
    for _ in range(MAX_DEPTH):
        if current.issuer == root.subject and _signed_by(current, root):
            path.append(root)
            return path
        issuer = next(
            (
                c
                for c in pool
                if c not in path and c.subject == current.issuer and _signed_by(current, c)
            ),
            None,
        )
        if issuer is None:
            raise ValueError(
                f"no certificate in the chain signed {current.subject.rfc4514_string()} "
                f"(issuer {current.issuer.rfc4514_string()})"
            )
        path.append(issuer)
        current = issuer
    raise ValueError(f"chain is deeper than {MAX_DEPTH} certificates")


def _profile_problem(path: Sequence[x509.Certificate]) -> str | None:
    """RFC 5280 basics the signature walk does not cover: CA flags, key usage, path length."""
    for position, cert in enumerate(path):
        name = cert.subject.rfc4514_string()
        for ext in cert.extensions:
            if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
                return f"{name} has an unknown critical extension {ext.oid.dotted_string}"
        if position == 0:
            continue
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return f"{name} signs certificates but has no basicConstraints"
        if not constraints.ca:
            return f"{name} signs certificates but is not a CA"
        below = position - 1  # intermediate CAs between this one and the leaf
        if constraints.path_length is not None and below > constraints.path_length:
            return f"{name} allows {constraints.path_length} CAs below it, the chain has {below}"
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if not usage.key_cert_sign:
            return f"{name} key usage does not allow certificate signing"
    return None


def _window_problem(path: Sequence[x509.Certificate], at: datetime) -> str | None:
    for cert in path:
        # Names are rendered only for a problem: this runs on every attest a broker answers.
        if at < cert.not_valid_before_utc:
            name = cert.subject.rfc4514_string()
            return f"{name} is not valid before {cert.not_valid_before_utc.isoformat()}"
        if at > cert.not_valid_after_utc:
            return f"{cert.subject.rfc4514_string()} expired {cert.not_valid_after_utc.isoformat()}"
    return None


_PathOutcome = tuple[tuple[x509.Certificate, ...], str | None]
_PATH_CACHE: OrderedDict[tuple[object, ...], _PathOutcome] = OrderedDict()
_PATH_CACHE_SIZE = 4096
_PATH_CACHE_LOCK = threading.Lock()


def verify_chain(
    certs: Sequence[x509.Certificate],
    root: x509.Certificate,
    at: datetime,
    *,
    expected_length: int | None = None,
) -> ChainResult:
    """Verify ``certs`` (leaf first; may include the root) up to the pinned ``root`` at ``at``.

    The time-independent part (path, signatures, profile) is cached, keyed by the exact
    certificate bytes, the root's fingerprint and the expected length: a broker sees the same
    device chains over and over. Validity at ``at`` is checked on every call; revocation is
    not part of this check (see ``ocsp``), so nothing time- or revocation-dependent is cached.
    """
    if not certs:
        return ChainResult("invalid", "no certificates", (), None)
    key = (
        tuple(c.public_bytes(Encoding.DER) for c in certs),
        fingerprint(root),
        expected_length,
    )
    with _PATH_CACHE_LOCK:
        cached = _PATH_CACHE.get(key)
        if cached is not None:
            _PATH_CACHE.move_to_end(key)
    if cached is None:
        cached = _path_outcome(certs, root, expected_length)
        with _PATH_CACHE_LOCK:
            _PATH_CACHE[key] = cached
            if len(_PATH_CACHE) > _PATH_CACHE_SIZE:
                _PATH_CACHE.popitem(last=False)
    path, problem = cached
    if problem is not None:
        return ChainResult("invalid", problem, (), None)
    expiration = min(c.not_valid_after_utc for c in path)
    problem = _window_problem(path, at)
    if problem is not None:
        status: ChainStatus = "expired" if at > expiration else "invalid"
        return ChainResult(status, f"{problem} (checked at {at.isoformat()})", path, expiration)
    return ChainResult(
        "valid",
        f"{len(path)} certificates to {_name(root)}, valid at {at.isoformat()}",
        path,
        expiration,
    )


@lru_cache(maxsize=64)
def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def off_path(sent: Sequence[x509.Certificate], path: Sequence[x509.Certificate]) -> str | None:
    """The first sent certificate that is not on the verified path (None when all are).

    Extra certificates change nothing that is trusted, but evidence should carry nothing
    unverified: a chain with a stray certificate, or a sent root whose signature does not verify
    (the path then ends at the pinned root instead), is refused.
    """
    on_path = {c.public_bytes(Encoding.DER) for c in path}
    for position, cert in enumerate(sent):
        if cert.public_bytes(Encoding.DER) not in on_path:
            return (
                f"certificate {position} ({cert.subject.rfc4514_string()}) is not on the path "
                "to the pinned root (it does not verify, or nothing on the path needs it)"
            )
    return None


def _path_outcome(
    certs: Sequence[x509.Certificate], root: x509.Certificate, expected_length: int | None
) -> _PathOutcome:
    """(path, None) when ``certs`` build a well-formed path to ``root``, else ((), problem)."""
    leaf, rest = certs[0], list(certs[1:])
    if _is_ca(leaf) or _is_self_signed(leaf):
        return (), "the first certificate is a CA, not a device leaf"
    if rest and _is_self_signed(rest[-1]):
        sent_root = rest.pop()
        if fingerprint(sent_root) != fingerprint(root):
            return (), (
                f"chain ends at {sent_root.subject.rfc4514_string()}, not the pinned "
                f"{root.subject.rfc4514_string()} (fingerprint differs)"
            )
    # The path (names, signatures, CA flags) is checked independently of time, so that "expired"
    # and "forged" stay apart; validity at ``at`` is checked after.
    try:
        path = tuple(_build_path(leaf, rest, root))
    except ValueError as exc:
        return (), f"no valid path to the pinned root: {exc}"
    problem = _profile_problem(path) or off_path(certs, path)
    if problem is not None:
        return (), problem
    if expected_length is not None and len(path) != expected_length:
        return (), f"path has {len(path)} certificates, expected {expected_length}"
    return path, None


def _fwid_from_sequence(fwid: _der.Tlv) -> bytes:
    """FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }."""
    items = _der.children(fwid)
    if len(items) < 2 or items[0].number != 6 or items[1].number != 4:
        raise ValueError("FWID is not SEQUENCE { OID, OCTET STRING }")
    return items[1].value


def _fwid_from_extension(value: bytes) -> bytes:
    top = _der.read_single(value)
    items = _der.children(top)
    # Blackwell: DiceTcbInfo, all fields IMPLICIT context-tagged; fwids [6] is a list of FWIDs.
    if items and all(i.tag_class == _der.CONTEXT for i in items):
        for item in items:
            if item.number == _FWIDS_TAG:
                fwids = [_der.read_single(t.encoded) for t in _der.children(item)]
                if not fwids:
                    raise ValueError("DiceTcbInfo has an empty fwids list")
                return _fwid_from_sequence(fwids[0])
        raise ValueError("DiceTcbInfo has no fwids")
    # NVAT also accepts a { OID, CompositeDeviceID } wrapper.
    if len(items) == 2 and items[0].number == 6 and items[1].number == 16:
        items = _der.children(items[1])
    # Hopper: CompositeDeviceID ::= SEQUENCE { version INTEGER, SubjectPublicKeyInfo, FWID }.
    if len(items) >= 3 and items[0].number == 2 and items[2].number == 16:
        return _fwid_from_sequence(items[2])
    raise ValueError("TCG DICE extension is neither CompositeDeviceID nor DiceTcbInfo")


def leaf_fwid(cert: x509.Certificate) -> bytes | None:
    """The firmware ID bound into the leaf (None when the certificate carries no DICE extension).

    Raises ValueError when the extension is present but malformed.
    """
    for oid in (TCG_DICE_TCB_INFO, TCG_DICE_TCB_INFO_ALIAS):
        try:
            ext = cert.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            continue
        value = ext.value
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
        return _fwid_from_extension(raw)
    return None
