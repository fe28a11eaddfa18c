"""Every single-byte change of a real report/quote (and of its certificates) is refused.

Each sample is verified under options that make the untouched sample ``pass`` (its own
measurement, report data, TCB and RTMRs as the policy), so "refused" is a real ``fail``, not the
``incomplete`` of a missing allow-list. Signed regions are covered exhaustively (one random
non-zero XOR per offset, seeded); certificates and PEM text by a seeded sample per run, and by
a bounded hypothesis search over multi-byte edits.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.attest.cvm.snp import verify_snp
from gpufence.attest.cvm.tdx import verify_tdx
from gpufence.attest.cvm.tdx_collateral import load_collateral
from gpufence.attest.cvm.tdx_quote import parse_tdx_quote
from gpufence.errors import InputError
from tests.attest.cvm.conftest import COLLATERAL, SNP_SAMPLES, TDX_SAMPLES, snp_sample, tdx_sample

SEED = 20261204


def _flip(data: bytes, offset: int, rng: random.Random) -> bytes:
    out = bytearray(data)
    out[offset] ^= rng.randrange(1, 256)
    return bytes(out)


@pytest.mark.parametrize("name", sorted(SNP_SAMPLES))
def test_every_byte_of_a_real_snp_report_is_covered(name: str) -> None:
    sample = snp_sample(name)
    options = sample.strict_options()
    assert verify_snp(sample.report, sample.certs, options).verdict == "pass"
    rng = random.Random(SEED)
    passed = [
        offset
        for offset in range(len(sample.report))
        if verify_snp(_flip(sample.report, offset, rng), sample.certs, options).verdict != "fail"
    ]
    assert passed == []


def _load_der(data: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        return None  # the CLI / broker refuse it as unreadable input


@pytest.mark.parametrize("name", sorted(SNP_SAMPLES))
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_certificate_mutations_are_refused(name: str) -> None:
    sample = snp_sample(name)
    options = sample.strict_options()
    rng = random.Random(SEED)
    for position in (0, 1, 2):  # VCEK, ASK, ARK (a sent ARK must be the pinned one)
        der = sample.certs[position].public_bytes(Encoding.DER)
        for offset in sorted(rng.sample(range(len(der)), 200)):
            mutated = _load_der(_flip(der, offset, rng))
            if mutated is None:
                continue
            certs = list(sample.certs)
            certs[position] = mutated
            assert verify_snp(sample.report, certs, options).verdict == "fail", (position, offset)


def _pck_ders(quote: bytes) -> list[bytes] | None:
    try:
        pem = parse_tdx_quote(quote).pck_chain_pem.removesuffix(b"\0")
        return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem)]
    except ValueError:
        return None


@pytest.mark.parametrize("name", sorted(TDX_SAMPLES))
def test_every_signed_or_structural_byte_of_a_real_tdx_quote_is_covered(name: str) -> None:
    sample = tdx_sample(name)
    options = sample.strict_options()
    assert verify_tdx(sample.quote, options).verdict == "pass"
    quote = parse_tdx_quote(sample.quote)
    pem_start = len(sample.quote) - len(quote.pck_chain_pem)
    rng = random.Random(SEED)
    passed = [
        offset
        for offset in range(pem_start)
        if verify_tdx(_flip(sample.quote, offset, rng), options).verdict != "fail"
    ]
    assert passed == []


@pytest.mark.parametrize("name", sorted(TDX_SAMPLES))
def test_pck_chain_text_mutations_are_refused_or_void(name: str) -> None:
    """A change in the PEM text either fails or decodes to the very same certificates.

    Base64 leaves a few bits unused in a block's last character, so a handful of edits decode
    to identical DER; those change nothing that is verified and are reported as void.
    """
    sample = tdx_sample(name)
    options = sample.strict_options()
    original = _pck_ders(sample.quote)
    pem_start = len(sample.quote) - len(parse_tdx_quote(sample.quote).pck_chain_pem)
    rng = random.Random(SEED)
    offsets = sorted(rng.sample(range(pem_start, len(sample.quote)), 700))
    for offset in offsets:
        mutated = _flip(sample.quote, offset, rng)
        if verify_tdx(mutated, options).verdict != "fail":
            assert _pck_ders(mutated) == original, offset


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    which=st.sampled_from(sorted(SNP_SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 1183), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_multi_byte_snp_edits_are_refused(which: str, edits: list[tuple[int, int]]) -> None:
    sample = snp_sample(which)
    data = bytearray(sample.report)
    for offset, xor in edits:
        data[offset] ^= xor
    if bytes(data) == sample.report:
        return
    assert verify_snp(bytes(data), sample.certs, sample.strict_options()).verdict == "fail"


@pytest.mark.parametrize("name", ["tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem"])
def test_collateral_mutations_are_refused(name: str, tmp_path: Path) -> None:
    """A changed byte in a collateral file is unreadable input or a failed collateral step."""
    sample = tdx_sample("trustee-v4")
    options = sample.strict_options()
    for file in ("tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem"):
        shutil.copy(COLLATERAL / file, tmp_path / file)
    original = (COLLATERAL / name).read_bytes()
    rng = random.Random(SEED)
    for offset in sorted(rng.sample(range(len(original)), min(len(original), 150))):
        (tmp_path / name).write_bytes(_flip(original, offset, rng))
        try:
            collateral = load_collateral(tmp_path)
        except InputError:
            continue
        if name.endswith(".pem") and [
            c.public_bytes(Encoding.DER) for c in collateral.signing_chain
        ] == [c.public_bytes(Encoding.DER) for c in load_collateral(COLLATERAL).signing_chain]:
            continue  # base64 slack: the same certificates (see the PCK PEM test)
        result = verify_tdx(sample.quote, dataclasses.replace(options, collateral=collateral))
        assert result.verdict == "fail", (name, offset)
