"""Strict by default (issue 12): skipped steps are INCOMPLETE, never PASS; waivers by name;
zero-byte tails are not accepted silently; malformed certificate files exit 2 naming the file."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from gpufence.attest.policy import policy_from_mapping
from gpufence.cli import main
from gpufence.errors import InputError

NONCE = "5bb22e377702d4e1e8215a903ba094826b9ac7f731dee1fe8102958bf2840aca"  # the Hopper sample's
AT = ("--at", "2026-11-25T00:00:00Z")
LAX = ("--waive", "revocation", "--waive", "rim.*", "--waive", "measurements", "--waive", "fwid")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["attest", "verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _hopper(unit: Path) -> tuple[str, str]:
    return str(unit / "hopperAttestationReport.txt"), str(unit / "hopperCertChain.txt")


def test_no_nonce_no_rims_is_incomplete_not_pass(
    unit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, certs = _hopper(unit)
    code, out, _ = _run(capsys, "--report", report, "--certs", certs, *AT)
    assert code == 1 and out.startswith("verdict: INCOMPLETE") and "PASS  (" not in out
    assert "N/E  nonce" in out and "N/E  measurements" in out and "--waive STEP" in out
    # Waiving the unchecked steps except the nonce is still incomplete ...
    code, out, _ = _run(capsys, "--report", report, "--certs", certs, *AT, *LAX)
    assert code == 1 and out.startswith("verdict: INCOMPLETE")
    # ... the nonce given, or waived by its exact name, completes it; waivers are shown.
    code, out, _ = _run(capsys, "--report", report, "--certs", certs, *AT, *LAX, "--nonce", NONCE)
    assert code == 0 and out.startswith("verdict: PASS") and "(waived)" in out
    code, out, _ = _run(
        capsys, "--report", report, "--certs", certs, *AT, *LAX, "--waive", "nonce", "-f", "json"
    )
    doc = json.loads(out)
    assert code == 0 and "GPU-0:nonce" in doc["waived_steps"] and "nonce" in doc["waivers"]


@pytest.mark.parametrize("waiver", ["*", "n*", "measure*", "no-such-step", "rim.gpu.*"])
def test_waivers_must_name_steps(
    unit: Path, capsys: pytest.CaptureFixture[str], waiver: str
) -> None:
    report, certs = _hopper(unit)
    code, _, err = _run(capsys, "--report", report, "--certs", certs, *AT, "--waive", waiver)
    assert code == 2 and "--waive" in err and "Traceback" not in err
    with pytest.raises(InputError):
        policy_from_mapping({"id": "p", "version": 1, "accept_not_evaluated": [waiver]})


def test_policy_waivers_apply_and_are_reported(
    unit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, certs = _hopper(unit)
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "id: offline\nversion: 1\nallow_devtools: true\n"
        "accept_not_evaluated: [revocation, 'rim.*', measurements, fwid]\n"
    )
    code, out, _ = _run(
        capsys, "--report", report, "--certs", certs, *AT, "--nonce", NONCE, "--policy", str(policy)
    )
    assert code == 0 and out.startswith("verdict: PASS") and "(waived)" in out


def test_zero_byte_tail_is_not_accepted_silently(
    unit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, certs = _hopper(unit)
    padded = tmp_path / "padded.txt"
    padded.write_text(Path(report).read_text().strip() + "0000")
    args = ("--certs", certs, *AT, *LAX, "--nonce", NONCE, "-f", "json")
    code, out, _ = _run(capsys, "--report", str(padded), *args)
    doc = json.loads(out)
    steps = {s["name"]: s for s in doc["devices"][0]["steps"]}
    assert code == 1 and doc["verdict"] == "incomplete"
    assert steps["evidence.padding"]["status"] == "not_evaluated"
    assert "2 zero bytes" in steps["evidence.padding"]["detail"]
    code, out, _ = _run(capsys, "--report", str(padded), *args, "--waive", "evidence.padding")
    assert code == 0 and json.loads(out)["verdict"] == "pass"
    # Unpadded, the step does not appear at all.
    code, out, _ = _run(capsys, "--report", report, *args)
    assert code == 0 and "evidence.padding" not in out


def _ders(pem: bytes) -> list[bytes]:
    blocks = re.findall(
        rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", pem, re.S
    )
    return [base64.b64decode(b"".join(b.split())) for b in blocks]


def _pem(ders: list[bytes]) -> bytes:
    return b"".join(
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(d) + b"-----END CERTIFICATE-----\n"
        for d in ders
    )


def test_many_malformed_chains_exit_2_or_fail_never_crash(
    unit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, certs = _hopper(unit)
    ders = _ders(Path(certs).read_bytes())
    rng = random.Random(12)
    path = tmp_path / "chain.pem"
    seen: dict[int, int] = {}
    for _ in range(400):
        mutated = list(ders)
        # The sent root (last) is replaced by the pinned one, as NVIDIA's verifier does; mutate
        # the four certificates that are actually used.
        which = rng.randrange(len(ders) - 1)
        der = bytearray(mutated[which])
        pos = rng.randrange(len(der))
        op = rng.randrange(3)
        if op == 0:
            der[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            del der[pos:]
        else:
            der[pos:pos] = bytes([rng.randrange(256)])
        mutated[which] = bytes(der)
        path.write_bytes(_pem(mutated))
        code, out, err = _run(capsys, "--report", report, "--certs", str(path), *AT, *LAX)
        seen[code] = seen.get(code, 0) + 1
        assert code in (1, 2), (code, err)
        assert "internal error" not in err and "Traceback" not in err
        if code == 2:
            assert str(path) in err and "certificate" in err
        else:
            assert "FAIL" in out
    assert seen.get(2, 0) > 100 and seen.get(1, 0) > 10


def _other_key_cert(key: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a GPU")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(7)
        .not_valid_before(__import__("datetime").datetime(2024, 1, 1))
        .not_valid_after(__import__("datetime").datetime(2030, 1, 1))
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")]))
        .sign(key, hashes.SHA384())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _private_key() -> bytes:
    return ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n", "certificate"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "does not parse"),
        (_csr(), "CERTIFICATE REQUEST"),
        (_private_key(), "PRIVATE KEY"),
        (b"-----BEGIN CERTIFICATE-----\n" * 2, "certificate"),
    ],
    ids=["empty", "bad-base64", "truncated-der", "csr", "private-key", "no-end-marker"],
)
def test_non_certificate_files_exit_2_naming_the_file(
    unit: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    words: str,
) -> None:
    report, certs = _hopper(unit)
    path = tmp_path / "certs.pem"
    path.write_bytes(content)
    code, _, err = _run(capsys, "--report", report, "--certs", str(path), *AT)
    assert code == 2 and str(path) in err and words in err and "Traceback" not in err
    # A real chain with a CSR or key appended is refused too (not silently skipped).
    if content.startswith(b"-----BEGIN") and b"CERTIFICATE-----\n" not in content[:40]:
        path.write_bytes(Path(certs).read_bytes() + content)
        code, _, err = _run(capsys, "--report", report, "--certs", str(path), *AT)
        assert code == 2 and words in err


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ed25519.Ed25519PrivateKey.generate()],
    ids=["rsa", "ed25519"],
)
def test_leaf_with_another_key_type_fails_cleanly(
    unit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], key: object
) -> None:
    report, certs = _hopper(unit)
    path = tmp_path / "certs.pem"
    path.write_bytes(_other_key_cert(key) + Path(certs).read_bytes())
    code, out, err = _run(capsys, "--report", report, "--certs", str(path), *AT, *LAX)
    assert code == 1 and "FAIL" in out and "internal error" not in err
