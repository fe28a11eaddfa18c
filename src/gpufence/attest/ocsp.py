"""OCSP revocation of device and RIM chains, with a nonce; or an explicit "not checked".

Verification never reaches the network unless a caller passes an :class:`OcspChecker` with a
``fetch`` function. Offline, every revocation result is :data:`NOT_CHECKED`, which a policy must
accept on purpose. Checks follow nvtrust ``ocsp_certificate_chain_validation``: each certificate
is asked about with its issuer (SHA-384 CertID) and a 32-byte nonce; the answer must be
SUCCESSFUL, signed by the issuer or by a responder the issuer delegated (OCSPSigning EKU), echo
the nonce, be current at the verification time, and say GOOD. ``certificateHold`` counts as
revoked unless explicitly allowed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

__all__ = [
    "NOT_CHECKED",
    "Fetch",
    "OcspChecker",
    "RevocationResult",
    "RevocationStatus",
    "httpx_fetch",
]

RevocationStatus = Literal["good", "revoked", "unknown", "not_checked"]
Fetch = Callable[[str, bytes], bytes]
"""(responder URL, DER OCSP request) -> DER OCSP response."""

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RevocationResult:
    """One certificate's OCSP answer: good, revoked or unknown, with the detail."""

    status: RevocationStatus
    detail: str
    nonce_matches: bool | None = None
    response_valid: bool | None = None
    reason: str | None = None
    """The revocation reason when revoked (e.g. keyCompromise)."""


NOT_CHECKED = RevocationResult(
    "not_checked", "revocation not checked: offline (no OCSP responder was asked)"
)


def httpx_fetch(timeout: float = 10.0) -> Fetch:
    """POST ``application/ocsp-request`` over HTTP(S) with TLS verification on."""
    import httpx  # local: only the online path needs it

    def fetch(url: str, body: bytes) -> bytes:
        reply = httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/ocsp-request"},
            timeout=timeout,
        )
        reply.raise_for_status()
        return reply.content

    return fetch


def _ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for item in aia:
        if item.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            item.access_location, x509.UniformResourceIdentifier
        ):
            return item.access_location.value
    return None


def _verify_signature(key: object, response: ocsp.OCSPResponse) -> bool:
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _responder_key(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime) -> object:
    """The issuer's key, or a delegated responder's that the issuer signed for OCSP signing."""
    for cert in response.certificates:
        if cert.subject == issuer.subject and cert.public_key() == issuer.public_key():
            return issuer.public_key()
        try:
            cert.verify_directly_issued_by(issuer)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku and (
            cert.not_valid_before_utc <= at <= cert.not_valid_after_utc
        ):
            return cert.public_key()
    return issuer.public_key()


class OcspChecker:
    """Asks OCSP responders about each certificate of a verified path."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        url: str | None = None,
        use_nonce: bool = True,
        allow_hold: bool = False,
    ) -> None:
        self.fetch = fetch
        self.url = url
        self.use_nonce = use_nonce
        self.allow_hold = allow_hold

    def check_one(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult:
        """Ask the responder about ``cert`` (issued by ``issuer``) as of ``at``, with a nonce."""
        name = cert.subject.rfc4514_string()
        url = self.url or _ocsp_url(cert) or _ocsp_url(issuer)
        if url is None:
            return RevocationResult("unknown", f"{name}: no OCSP responder URL")
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA384())
        nonce = secrets.token_bytes(32)
        if self.use_nonce:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        try:
            raw = self.fetch(url, builder.build().public_bytes(Encoding.DER))
            response = ocsp.load_der_ocsp_response(raw)
        except Exception as exc:  # noqa: BLE001 - any transport or parse failure is "unknown"
            return RevocationResult("unknown", f"{name}: OCSP request failed: {exc}")
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return RevocationResult(
                "unknown", f"{name}: OCSP status {response.response_status.name}", None, False
            )
        valid = _verify_signature(_responder_key(response, issuer, at), response)
        nonce_ok: bool | None = None
        if self.use_nonce:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                echoed = None
            nonce_ok = echoed == nonce
        if response.serial_number != cert.serial_number:
            valid = False
        this_update = response.this_update_utc
        next_update = response.next_update_utc
        if this_update > at + CLOCK_SKEW or (
            next_update is not None and next_update < at - CLOCK_SKEW
        ):
            valid = False
        if not valid:
            return RevocationResult(
                "unknown", f"{name}: OCSP response is not valid", nonce_ok, False
            )
        if nonce_ok is False:
            return RevocationResult("unknown", f"{name}: OCSP nonce does not match", False, True)
        status = response.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            return RevocationResult("good", f"{name}: good", nonce_ok, True)
        if status == ocsp.OCSPCertStatus.REVOKED:
            reason = response.revocation_reason
            if reason == x509.ReasonFlags.certificate_hold and self.allow_hold:
                return RevocationResult("good", f"{name}: on hold (allowed)", nonce_ok, True)
            why = reason.value if reason is not None else "unspecified"
            return RevocationResult("revoked", f"{name}: revoked ({why})", nonce_ok, True, why)
        return RevocationResult("unknown", f"{name}: responder does not know it", nonce_ok, True)

    def check_path(
        self, path: Sequence[x509.Certificate], at: datetime, *, include_leaf: bool
    ) -> RevocationResult:
        """Every certificate below the root (the device leaf only when ``include_leaf``)."""
        results = [
            self.check_one(path[i], path[i + 1], at)
            for i in range(0 if include_leaf else 1, len(path) - 1)
        ]
        if not results:
            return RevocationResult("good", "no certificate to check below the root", True, True)
        for wanted in ("revoked", "unknown"):
            for result in results:
                if result.status == wanted:
                    return result
        return RevocationResult(
            "good",
            "; ".join(r.detail for r in results),
            all(r.nonce_matches is not False for r in results),
            True,
        )
