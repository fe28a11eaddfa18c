"""TLS probing of a BMC's HTTPS port: versions accepted, and the certificate it presents.

Three handshakes, run concurrently and never carrying credentials: one with this machine's
default client settings (negotiated version, cipher, peer certificate; no verification, because
the point is to *describe* the certificate), and one each pinned to TLS 1.0 and TLS 1.1 with
OpenSSL security level 0 (the only way OpenSSL 3 still offers them). When the local OpenSSL
cannot offer a version even when asked, the result for it is ``None`` with the reason: unknown,
never "refused".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import re
import ssl
import tempfile
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from gpufence.collect.bmc.http import Handshake, TransportError

__all__ = [
    "LEGACY_VERSIONS",
    "CertInfo",
    "TlsProbe",
    "analyze_certificate",
    "local_tls_support",
    "probe_tls",
    "vendor_default_certificate",
]

LEGACY_VERSIONS = ("TLSv1", "TLSv1.1")

# Issuer/subject patterns of factory certificates. HPE's is verified in the iLO 5/6 captures
# (../shared/redfish-mockups); the others follow vendor documentation and are best effort.
_VENDOR_DEFAULTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Default Issuer \(Do not trust\)", re.I), "HPE iLO factory certificate"),
    (
        re.compile(
            r"O=Dell Inc\..*OU=Remote Access Group|OU=Remote Access Group.*O=Dell Inc\.", re.I
        ),
        "Dell iDRAC factory certificate",
    ),
    (
        re.compile(r"CN=IPMI\b.*Super Micro|Super Micro.*CN=IPMI\b", re.I),
        "Supermicro BMC factory certificate",
    ),
    (re.compile(r"O=American Megatrends", re.I), "AMI MegaRAC factory certificate"),
    (re.compile(r"CN=testhost\b", re.I), "OpenBMC bmcweb generated certificate"),
)


def vendor_default_certificate(issuer: str, subject: str = "") -> str | None:
    """Which vendor's factory certificate this issuer/subject looks like, if any."""
    for pattern, label in _VENDOR_DEFAULTS:
        if pattern.search(issuer) or (subject and pattern.search(subject)):
            return label
    return None


@dataclass(frozen=True)
class CertInfo:
    """The BMC's TLS certificate: subject, issuer, validity, key and signature algorithm."""

    subject: str
    issuer: str
    not_before: str
    not_after: str
    self_signed: bool
    expired: bool
    not_yet_valid: bool
    vendor_default: str | None
    key_type: str
    key_bits: int | None
    signature_hash: str | None
    x509_version: int

    @property
    def weak_key(self) -> bool:
        """Whether the key is weak (RSA/DSA under 2048 bits, EC under 224)."""
        if self.key_bits is None:
            return False
        return self.key_bits < (2048 if self.key_type in ("RSA", "DSA") else 224)

    @property
    def sha1_signature(self) -> bool:
        """Whether the certificate is signed with SHA-1."""
        return (self.signature_hash or "").lower() in ("sha1", "md5")


def analyze_certificate(der: bytes, now: datetime.datetime | None = None) -> CertInfo:
    """Describe a DER certificate (pure)."""
    cert = x509.load_der_x509_certificate(der)
    moment = now or datetime.datetime.now(datetime.UTC)
    subject = cert.subject.rfc4514_string()
    issuer = cert.issuer.rfc4514_string()
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except (ValueError, TypeError, InvalidSignature):
            self_signed = False
    key = cert.public_key()
    key_type, bits = "other", None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = "EC", key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    try:
        algorithm = cert.signature_hash_algorithm
        signature_hash = algorithm.name if algorithm else None
    except Exception:  # noqa: BLE001 - unsupported algorithms: unknown, not an error
        signature_hash = None
    return CertInfo(
        subject=subject,
        issuer=issuer,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        self_signed=self_signed,
        expired=moment > cert.not_valid_after_utc,
        not_yet_valid=moment < cert.not_valid_before_utc,
        vendor_default=vendor_default_certificate(issuer, subject),
        key_type=key_type,
        key_bits=bits,
        signature_hash=signature_hash,
        x509_version=cert.version.value + 1,
    )


def _pinned_version(name: str) -> ssl.TLSVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}[name]


@functools.cache
def _client_context(version: str | None) -> ssl.SSLContext:
    """One context per probe kind, shared by every handshake (building one costs ~1 ms)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # describing the certificate, not trusting it
    if version is not None:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pinned = _pinned_version(version)
            ctx.minimum_version = pinned
            ctx.maximum_version = pinned
    return ctx


def _self_signed_localhost(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed EC certificate for 'localhost' (the in-memory handshake below)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "probe.pem", directory / "probe.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@functools.cache
def local_tls_support(version: str) -> str | None:
    """None when this machine's OpenSSL can negotiate ``version`` with itself, else why not.

    An in-memory handshake between a client and a server both pinned to ``version``: if the
    local library (or its system policy) refuses, a BMC probe could not tell anything either.
    """
    try:
        client = _client_context(version)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            server.minimum_version = server.maximum_version = _pinned_version(version)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = _self_signed_localhost(Path(tmp))
            server.load_cert_chain(cert, key)
    except (ValueError, ssl.SSLError) as exc:
        return f"this machine's OpenSSL cannot offer {version}: {exc}"
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    try:
        for _ in range(20):
            for side, obj in (("c", c), ("s", s)):
                if done[side]:
                    continue
                with contextlib.suppress(ssl.SSLWantReadError):
                    obj.do_handshake()
                    done[side] = True
            s_in.write(c_out.read())
            c_in.write(s_out.read())
            if all(done.values()):
                return None
    except ssl.SSLError as exc:
        return f"this machine's OpenSSL refuses {version} even when asked ({exc.reason})"
    return f"this machine's OpenSSL could not complete a {version} handshake with itself"


@dataclass(frozen=True)
class TlsProbe:
    """What the TLS probe found: negotiated version and cipher, certificate, legacy versions."""

    negotiated: str | None = None
    cipher: str | None = None
    cert: CertInfo | None = None
    accepted: dict[str, bool | None] = field(default_factory=dict)
    """Legacy version -> accepted (True), refused (False), or untestable here (None)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Why a version is None, or how it was refused."""
    error: str | None = None
    """Why the default handshake failed (then nothing else is known)."""


async def _handshake(host: str, port: int, version: str | None, timeout: float) -> Handshake:
    ctx = _client_context(version)
    reader_writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, ssl_handshake_timeout=timeout),
        timeout,
    )
    writer = reader_writer[1]
    try:
        obj = writer.get_extra_info("ssl_object")
        if obj is None:
            return None, None, None
        cipher = obj.cipher()
        return obj.version(), cipher[0] if cipher else None, obj.getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    if isinstance(exc, ssl.SSLError):
        return f"refused ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | EOFError | asyncio.IncompleteReadError):
        return "refused (connection closed during the handshake)"
    return f"{type(exc).__name__}: {exc}"


async def _default_handshake(
    host: str,
    port: int,
    timeout: float,
    shared: Awaitable[Handshake | TransportError | None] | None,
) -> Handshake:
    """The handshake a default client gets: ``shared`` (the Redfish connection's first one,
    which offers the same ClientHello) when it completed, else one of our own."""
    if shared is not None:
        outcome = await shared
        if isinstance(outcome, tuple):
            return outcome
        if isinstance(outcome, TransportError) and outcome.kind == "connect_timeout":
            raise TimeoutError  # a second attempt would only wait as long again
    return await _handshake(host, port, None, timeout)


async def probe_tls(
    host: str,
    port: int,
    *,
    timeout: float = 5.0,
    shared: Awaitable[Handshake | TransportError | None] | None = None,
) -> TlsProbe:
    """Handshake with the BMC's HTTPS port (no credentials sent).

    ``shared``: the outcome of a handshake with the same ClientHello made anyway (the Redfish
    connection: default versions and ciphers; verifying the certificate or not does not change
    what the client offers), None when it did not happen. It saves a full handshake per BMC
    on both sides; on a TLS error (an untrusted certificate) the probe makes its own.
    """
    versions = [v for v in LEGACY_VERSIONS if local_tls_support(v) is None]
    results = await asyncio.gather(
        _default_handshake(host, port, timeout, shared),
        *(_handshake(host, port, v, timeout) for v in versions),
        return_exceptions=True,
    )
    first = results[0]
    if isinstance(first, BaseException):
        if isinstance(first, asyncio.CancelledError):
            raise first
        return TlsProbe(error=_describe(first))
    negotiated, cipher, der = first
    accepted: dict[str, bool | None] = {}
    notes: dict[str, str] = {}
    for version in LEGACY_VERSIONS:
        reason = local_tls_support(version)
        if reason is not None:
            accepted[version], notes[version] = None, reason
    for version, outcome in zip(versions, results[1:], strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if isinstance(outcome, BaseException):
            accepted[version] = False
            notes[version] = _describe(outcome)
        else:
            accepted[version] = outcome[0] == version
    cert: CertInfo | None = None
    if der:
        try:
            cert = analyze_certificate(der)
        except ValueError as exc:
            notes["certificate"] = f"unparseable certificate: {exc}"
    return TlsProbe(negotiated, cipher, cert, accepted, notes)
