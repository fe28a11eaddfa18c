"""Kubernetes-safe names for tenants, pools and MIG configurations."""

from __future__ import annotations

import hashlib
import re

__all__ = ["LABEL_VALUE", "dns_label", "label_value"]

# Kubernetes label values: <= 63 characters, alphanumerics, '-', '_', '.', alphanumeric at ends.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _digest(text: str, size: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a shortened form with a stable hash."""
    if len(text) <= 63 and LABEL_VALUE.fullmatch(text):
        return text
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:56].rstrip("-_.")
    return f"{base}-{_digest(text)}" if base else _digest(text, 12)


def dns_label(text: str) -> str:
    """A DNS-1123 label for ``text`` (namespace names): lower case, '-', <= 63 characters.

    Names that are already valid stay as they are; others get a hash suffix so that two
    tenants never collapse onto one namespace ("Team_A" vs "team-a").
    """
    if len(text) <= 63 and _DNS_LABEL.fullmatch(text):
        return text
    base = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:56].rstrip("-")
    return f"{base}-{_digest(text)}" if base else f"t-{_digest(text, 12)}"
