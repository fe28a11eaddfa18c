"""Reading CPU TEE evidence files: a report/quote (binary or hex text) and certificates.

Unreadable files, certificates that are neither PEM nor DER, and hex that does not decode are
:class:`~gpufence.errors.InputError` (exit 2). Bytes that read fine but are not a report are for
the verifier to refuse (its ``evidence.parse`` step).
"""

from __future__ import annotations

import binascii
import string
import warnings
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from gpufence.attest.cvm._certs import malformed_certificate
from gpufence.errors import InputError, SourceLocation

__all__ = ["MAX_EVIDENCE_BYTES", "load_certificates", "read_evidence"]

MAX_EVIDENCE_BYTES = 1 << 20
_HEX = set(string.hexdigits.encode() + string.whitespace.encode())


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_EVIDENCE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InputError(f"{path}: larger than {MAX_EVIDENCE_BYTES} bytes; not a report")
    return data


def read_evidence(path: Path) -> bytes:
    """The report/quote bytes; a file of only hex digits and whitespace is decoded as hex."""
    data = _read(path)
    if data and set(data) <= _HEX:
        compact = b"".join(data.split())
        try:
            return binascii.unhexlify(compact)
        except (binascii.Error, ValueError):
            raise InputError(
                f"{path}: hex text of odd length", location=SourceLocation(path, 1, 1)
            ) from None
    return data


def load_certificates(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Every certificate in the files, in order (PEM bundles or single DER certificates)."""
    certs: list[x509.Certificate] = []
    for path in paths:
        data = _read(path)
        try:
            with warnings.catch_warnings():
                # AMD KDS issues VCEKs with serial number 0 (cryptography warns about it).
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                if b"-----BEGIN CERTIFICATE-----" in data:
                    certs += x509.load_pem_x509_certificates(data)
                else:
                    certs.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise InputError(
                f"{path}: not a PEM or DER certificate: {exc}",
                hint="--certs takes the VCEK (DER or PEM) and the ASK/ARK bundle (PEM)",
            ) from exc
    problem = malformed_certificate(certs)
    if problem is not None:
        raise InputError(f"{', '.join(map(str, paths))}: {problem}")
    return certs
