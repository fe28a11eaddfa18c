"""The pinned CPU TEE roots: AMD ARK per product, Intel SGX Root CA (sources in roots/README.md)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from cryptography import x509

__all__ = ["amd_ark", "intel_sgx_root"]

_ARK_FILES = {"Milan": "amd_ark_milan.pem", "Genoa": "amd_ark_genoa.pem"}


@cache
def _load(name: str) -> x509.Certificate:
    pem = resources.files("gpufence.attest").joinpath("roots").joinpath(name).read_bytes()
    return x509.load_pem_x509_certificate(pem)


def amd_ark(product: str) -> x509.Certificate:
    """AMD Root Key of ``product`` (Milan or Genoa); KeyError for any other product."""
    return _load(_ARK_FILES[product])


def intel_sgx_root() -> x509.Certificate:
    """Intel SGX Root CA (anchors PCK chains and the TCB signing chain of collateral)."""
    return _load("intel_sgx_root_ca.pem")
