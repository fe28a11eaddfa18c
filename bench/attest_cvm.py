"""Benchmark: CPU TEE verifications per second on the real public samples (one core).

- SEV-SNP: ``verify_snp`` on trustee's Milan report = parse + VCEK -> ASK -> ARK chain (RSA-PSS)
  + VCEK binding + ECDSA P-384 signature + TCB/policy/allow-list/report-data steps.
- TDX: ``verify_tdx`` on trustee's v4 quote = parse + PCK chain (3 certificates, ECDSA P-256)
  + QE report signature and binding + quote signature + attributes/allow-lists, without and with
  the collateral files (+ TCB signing chain and two signed-JSON checks).
Same-run baselines (the floor): the raw ``cryptography`` ECDSA verifications every verifier of
these formats must do — for SNP one P-384 verify of the 0x2A0 signed bytes plus the two RSA-PSS
certificate signatures; for TDX the two P-256 verifies (QE report, quote) plus the two PCK chain
certificate signatures.

    .venv/bin/python bench/attest_cvm.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.attest.cvm.conftest import (  # noqa: E402
    COLLATERAL,
    SNP,
    SNP_AT,
    TDX,
    TDX_AT,
)

from gpufence.attest.cvm.inputs import load_certificates  # noqa: E402
from gpufence.attest.cvm.snp import SnpOptions, verify_snp  # noqa: E402
from gpufence.attest.cvm.snp_report import parse_snp_report  # noqa: E402
from gpufence.attest.cvm.tdx import TdxOptions, _pck_chain, verify_tdx  # noqa: E402
from gpufence.attest.cvm.tdx_collateral import load_collateral  # noqa: E402
from gpufence.attest.cvm.tdx_quote import parse_tdx_quote  # noqa: E402


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second over ``seconds`` (after a warm-up call)."""
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
        f"Python {platform.python_version()}"
    )

    report = (SNP / "trustee-milan-report.bin").read_bytes()
    certs = load_certificates([SNP / "trustee-milan-vcek.der", SNP / "ask_ark_milan.pem"])
    parsed = parse_snp_report(report)
    vcek, ask, ark = certs
    snp_der = encode_dss_signature(parsed.signature_r, parsed.signature_s)

    def snp_floor() -> None:
        key = vcek.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(snp_der, parsed.signed_bytes, ec.ECDSA(hashes.SHA384()))
        vcek.verify_directly_issued_by(ask)
        ask.verify_directly_issued_by(ark)

    snp_options = SnpOptions(SNP_AT)
    quote = (TDX / "trustee-tdx-quote-v4.dat").read_bytes()
    q = parse_tdx_quote(quote)
    pck = _pck_chain(q)

    def raw(sig: bytes) -> bytes:
        return encode_dss_signature(
            int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        )

    att = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + q.attestation_key)

    def tdx_floor() -> None:
        leaf = pck[0].public_key()
        assert isinstance(leaf, ec.EllipticCurvePublicKey)
        leaf.verify(raw(q.qe_report_signature), q.qe_report.raw, ec.ECDSA(hashes.SHA256()))
        att.verify(raw(q.signature), q.signed_bytes, ec.ECDSA(hashes.SHA256()))
        pck[0].verify_directly_issued_by(pck[1])
        pck[1].verify_directly_issued_by(pck[2])

    collateral = load_collateral(COLLATERAL)
    rows = [
        ("SEV-SNP floor (P-384 + 2 RSA-PSS)", rate(snp_floor, args.seconds)),
        ("SEV-SNP verify_snp", rate(lambda: verify_snp(report, certs, snp_options), args.seconds)),
        ("TDX floor (2 P-256 + 2 cert sigs)", rate(tdx_floor, args.seconds)),
        (
            "TDX verify_tdx, no collateral",
            rate(lambda: verify_tdx(quote, TdxOptions(TDX_AT)), args.seconds),
        ),
        (
            "TDX verify_tdx, with collateral",
            rate(
                lambda: verify_tdx(quote, TdxOptions(TDX_AT, collateral=collateral)), args.seconds
            ),
        ),
    ]
    floors = {"SEV-SNP": rows[0][1], "TDX": rows[2][1]}
    print(f"{'what':40} {'per s':>9} {'ms each':>9} {'x floor':>8}")
    for name, per_s in rows:
        floor = floors[name.split()[0]]
        print(f"{name:40} {per_s:9.0f} {1000 / per_s:9.3f} {floor / per_s:8.2f}")


if __name__ == "__main__":
    main()
