"""Benchmark: evidence verifications per second, and broker key releases under 64 clients.

1. Verification (one core): the real NVSwitch sample with its RIM, `verify_device` = parse +
   5-certificate chain + ECDSA P-384 signature + FWID + measurement comparison (RIM pre-checked,
   as the broker caches it); and the same with the RIM's XML-DSig and chain checked every time.
   Same-run baselines: the floor (one `cryptography` ECDSA verify of the same signed bytes), and
   nv-local-gpu-verifier's parse + signature path on the same sample when a Python with
   `nv-local-gpu-verifier` installed is given (`--nvtrust-python`; it pins old dependencies, so it
   lives in its own venv; it runs offline for this path).
2. Broker: `gpufence broker serve` on 127.0.0.1, 64 concurrent clients each doing challenge ->
   attest (1 GPU, evidence signed by a test device CA) -> resource; releases/s and p50/p99.

    .venv/bin/python bench/attest.py [--seconds 3] [--releases 512] [--nvtrust-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpufence.attest.evidence import load_report_pair  # noqa: E402
from gpufence.attest.rim import check_rim  # noqa: E402
from gpufence.attest.spdm import parse_report  # noqa: E402
from gpufence.attest.verify import VerifyOptions, verify_device  # noqa: E402

DATA = (
    REPO.parent
    / "shared"
    / "data"
    / "attestation"
    / "nvidia-attestation-sdk"
    / "unit-tests-testdata"
)
AT = datetime(2026, 11, 25, tzinfo=UTC)
NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
RIM = DATA / "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"


def rate(seconds: float, fn: object) -> float:
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()  # type: ignore[operator]
        calls += 1
    return calls / (time.perf_counter() - start)


def nvtrust_baseline(python: str, seconds: float) -> float | None:
    script = textwrap.dedent(
        f"""
        import os, tempfile, time
        os.chdir(tempfile.mkdtemp())  # verifier.config rewrites ./verifier.log on import
        from verifier.attestation import AttestationReport
        from verifier.cc_admin_utils import CcAdminUtils
        from verifier.config import HopperSettings
        from cryptography import x509
        report = bytes.fromhex(open({str(DATA / "switchAttestationReport.txt")!r}).read().strip())
        chain = open({str(DATA / "switchCertChain.txt")!r}, 'rb').read()
        leaf = x509.load_pem_x509_certificates(chain)[0]
        settings = HopperSettings()
        def once():
            parsed = AttestationReport(report, settings)
            assert parsed.verify_signature(leaf, settings.signature_length, settings.HashFunction)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < {seconds}:
            once(); n += 1
        print(n / (time.perf_counter() - t))
        """
    )
    try:
        out = subprocess.run(
            [python, "-c", script], capture_output=True, text=True, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  nvtrust baseline failed: {exc}")
        return None
    return float(out.stdout.strip().splitlines()[-1])


def bench_verify(seconds: float, nvtrust_python: str | None) -> None:
    evidence = load_report_pair(DATA / "switchAttestationReport.txt", DATA / "switchCertChain.txt")
    rim_bytes = RIM.read_bytes()
    rim = check_rim(rim_bytes, AT)
    options = VerifyOptions(AT, NONCE)
    assert verify_device(evidence, options, [rim]).verdict == "pass"
    report = parse_report(evidence.report)
    key = evidence.certificates[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    sig = report.response.signature
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))

    def floor() -> None:
        key.verify(der, report.signed_bytes, ec.ECDSA(hashes.SHA384()))

    full = rate(seconds, lambda: verify_device(evidence, options, [rim]))
    with_rim = rate(seconds, lambda: verify_device(evidence, options, [check_rim(rim_bytes, AT)]))
    base = rate(seconds, floor)
    print("verification (one core, NVSwitch LS10 sample + its RIM, 31 measurements):")
    print(f"  gpufence verify_device (RIM cached):        {full:8.0f} /s  ({1000 / full:.2f} ms)")
    print(
        f"  gpufence verify_device + RIM XML-DSig/chain: {with_rim:8.0f} /s  ({1000 / with_rim:.2f} ms)"  # noqa: E501
    )
    print(
        f"  baseline floor: one ECDSA P-384 verify:     {base:8.0f} /s  -> gpufence costs {base / full:.1f}x the floor"  # noqa: E501
    )
    if nvtrust_python:
        nv = nvtrust_baseline(nvtrust_python, seconds)
        if nv:
            print(
                f"  baseline nv-local-gpu-verifier parse+signature: {nv:8.0f} /s  -> ratio gpufence/nvtrust {full / nv:.2f}"  # noqa: E501
            )
    else:
        print(
            "  baseline nv-local-gpu-verifier: not run (give --nvtrust-python of a venv with nv-local-gpu-verifier)"  # noqa: E501
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _releases(base: str, kit: object, total: int, clients: int) -> tuple[list[float], float]:
    from gpufence.attest.broker.client import Requester

    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client: httpx.AsyncClient) -> None:
        requester = Requester()
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            start = time.perf_counter()
            nonce = (await client.post(f"{base}/challenge")).json()["nonce"]
            evidence = kit.evidence(requester.gpu_nonce(nonce))  # type: ignore[attr-defined]
            body = {"nonce": nonce, "public_key": requester.public_pem, "evidence": evidence}
            token = (await client.post(f"{base}/attest", json=body)).json()["token"]
            released = await client.get(
                f"{base}/resource/weights", headers={"Authorization": f"Bearer {token}"}
            )
            assert released.status_code == 200
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return latencies, time.perf_counter() - start


def bench_broker(total: int, clients: int) -> None:
    from tests.attest.brokerkit import SECRET, make_broker_kit

    with tempfile.TemporaryDirectory() as tmp:
        kit = make_broker_kit(Path(tmp), gpus=1)
        (Path(tmp) / "s.bin").write_bytes(SECRET)
        cli = [sys.executable, "-m", "gpufence", "broker"]
        subprocess.run(
            [
                *cli,
                "secret",
                "put",
                "--config",
                str(kit.config),
                "weights",
                "--from-file",
                str(Path(tmp) / "s.bin"),
            ],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        proc = subprocess.Popen(
            [*cli, "serve", "--config", str(kit.config), "--port", str(port)],
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            latencies, elapsed = asyncio.run(_releases(base, kit, total, clients))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"broker ({clients} concurrent clients, 127.0.0.1, 1 GPU evidence each, client on the same machine):"  # noqa: E501
    )
    print(
        f"  key releases: {len(latencies)} in {elapsed:.2f} s = {len(latencies) / elapsed:.1f} /s"
    )
    print(
        f"  latency challenge->attest->release: p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"  # noqa: E501
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--releases", type=int, default=512)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--nvtrust-python", default=None)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}"  # noqa: E501
    )
    bench_verify(args.seconds, args.nvtrust_python)
    bench_broker(args.releases, args.clients)


if __name__ == "__main__":
    main()
