"""Reading evidence: hex reports + PEM chains, or NVIDIA's serialized evidence JSON.

NVIDIA's serialized form (NVAT ``common-test-data/serialized_test_evidence``) is a JSON list with
one object per device: ``{"arch": "HOPPER"|"BLACKWELL"|"LS10", "nonce": hex, "evidence":
base64(SPDM request+response), "certificate": base64(PEM chain)}``. Unreadable input is an
:class:`~gpufence.errors.InputError` (exit 2); readable bytes that do not parse as SPDM are a
failed ``evidence.parse`` step, not an input error.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from gpufence.attest.certs import load_pem_chain
from gpufence.attest.spdm import DeviceKind
from gpufence.errors import InputError, SourceLocation

__all__ = [
    "ARCH_KINDS",
    "DeviceEvidence",
    "evidence_from_json",
    "load_evidence_file",
    "load_report_pair",
    "read_hex_report",
]

ARCH_KINDS: dict[str, DeviceKind] = {"HOPPER": "gpu", "BLACKWELL": "gpu", "LS10": "nvswitch"}


@dataclass(frozen=True, slots=True)
class DeviceEvidence:
    """One device's evidence as it arrived (nothing verified yet)."""

    report: bytes
    certificates: tuple[x509.Certificate, ...]
    arch: str | None = None
    """Declared architecture (HOPPER, BLACKWELL, LS10); None when only a report was given."""
    nonce: bytes | None = None
    """The nonce the evidence file says it was made for (informational; never trusted)."""
    source: str = "evidence"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_hex_report(text: bytes, source: str) -> bytes:
    """The hex text form of the samples (whitespace ignored, optional 0x)."""
    compact = b"".join(text.split())
    if compact[:2].lower() == b"0x":
        compact = compact[2:]
    try:
        return binascii.unhexlify(compact)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{source}: not a hex attestation report",
            location=SourceLocation(source, 1, 1),
            hint="--report takes the hex text the driver returns; use --evidence for NVIDIA's JSON",
        ) from None


def _pem_chain(data: bytes, source: str) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(load_pem_chain(data))
    except ValueError as exc:
        raise InputError(f"{source}: not a PEM certificate chain: {exc}") from exc


def load_report_pair(report: Path, certs: Path) -> DeviceEvidence:
    """``--report FILE --certs FILE``."""
    return DeviceEvidence(
        report=read_hex_report(_read(report), str(report)),
        certificates=_pem_chain(_read(certs), str(certs)),
        source=str(report),
    )


def _field(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: missing or non-string {key!r}")
    return value


def evidence_from_json(data: Any, source: str) -> list[DeviceEvidence]:
    """NVIDIA's serialized evidence (a list, or one object) -> devices in order."""
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) for i in items):
        raise InputError(f"{source}: expected a JSON list of evidence objects")
    devices = []
    for position, item in enumerate(items):
        where = f"{source}: evidence[{position}]"
        arch = _field(item, "arch", where).upper()
        if arch not in ARCH_KINDS:
            raise InputError(f"{where}: unknown arch {arch!r} (known: {', '.join(ARCH_KINDS)})")
        try:
            report = base64.b64decode(_field(item, "evidence", where), validate=True)
            pem = base64.b64decode(_field(item, "certificate", where), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{where}: 'evidence'/'certificate' is not base64") from None
        nonce_text = item.get("nonce")
        try:
            nonce = bytes.fromhex(nonce_text) if isinstance(nonce_text, str) else None
        except ValueError:
            raise InputError(f"{where}: 'nonce' is not hex") from None
        devices.append(
            DeviceEvidence(report, _pem_chain(pem, where), arch, nonce, f"{source}[{position}]")
        )
    return devices


def load_evidence_file(path: Path) -> list[DeviceEvidence]:
    """``--evidence FILE``: NVIDIA's serialized evidence JSON."""
    raw = _read(path)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        col = getattr(exc, "colno", None)
        raise InputError(f"not JSON: {exc}", location=SourceLocation(path, line, col)) from exc
    return evidence_from_json(data, str(path))
