"""Benchmark: evidence verifications per second, and broker key releases under 64 clients.

1. Verification (one core): the real NVSwitch sample with its RIM, `verify_device` = parse +
   5-certificate chain + ECDSA P-384 signature + FWID + measurement comparison (RIM pre-checked,
   as the broker caches it); and the same with the RIM's XML-DSig and chain checked every time.
   Same-run baseline: the floor (one `cryptography` ECDSA verify of the same signed bytes).
2. Same-run baseline against NVIDIA's nv-local-gpu-verifier 2.7.3: its `AttestationReport(report,
   HopperSettings())` parse + `verify_signature(leaf, 96, sha384)`, run offline in a Python that
   has it (`--nvtrust-python`, default /tmp/nvvenv/bin/python; it pins old dependencies, so it lives
   in its own venv), against gpufence's parse + signature step and `verify_device` on the same
   sample. It is tried on the NVSwitch sample first; its parser rejects that one (2.7.3 does not
   know the NVSwitch opaque fields), so the bench says why and compares on NVIDIA's Hopper sample.
3. Broker: `gpufence broker serve` on 127.0.0.1 (1 and 2 worker processes) against the broker
   of the commit the work started from (``--baseline-ref``, extracted with ``git archive`` and
   run in the same run with the same evidence and client). Evidence is pre-generated (challenge
   fetched, report signed by a test device CA before timing); a lean asyncio HTTP/1.1 client
   offers fixed rates (open loop, latency from the scheduled arrival: p50/p99) and then measures
   the saturation rate with closed-loop connections.

    .venv/bin/python bench/attest.py [--seconds 3] [--rates 50 100 200 300] [--only-broker]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpufence.attest.device_reports import DeviceEvidence, load_report_pair  # noqa: E402
from gpufence.attest.rim import check_rim  # noqa: E402
from gpufence.attest.spdm import parse_report  # noqa: E402
from gpufence.attest.verify import (  # noqa: E402
    VerifyOptions,
    _signature_step,  # the exact step verify_device runs, timed alone for a like-for-like baseline
    verify_device,
)

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
NVTRUST_DATA = REPO.parent / "shared" / "data" / "attestation" / "nvtrust-local-gpu-verifier-2.7.3"
DEFAULT_NVTRUST_PYTHON = Path("/tmp/nvvenv/bin/python")
OFFLINE_WAIVERS = ("revocation", "rim.*.revocation", "fwid")  # NVSwitch reports carry no FWID
NO_RIM_WAIVERS = ("revocation", "rim.*", "measurements", "fwid")


def rate(seconds: float, fn: object) -> float:
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()  # type: ignore[operator]
        calls += 1
    return calls / (time.perf_counter() - start)


# NVIDIA's own verifier, run in its venv: its real parse (AttestationReport) and signature check
# (AttestationReport.verify_signature, python-ecdsa), timed like ours. verify_signature returns
# False on *any* exception, so a run counts only if the sample gives True and a copy with one
# signature byte flipped gives False. Candidates in order; the first nvtrust can verify is used.
NVTRUST_SCRIPT = """
import json, sys, time, traceback
from cryptography import x509
from verifier.attestation import AttestationReport
from verifier.config import HopperSettings

seconds, candidates = json.loads(sys.argv[1])
settings = HopperSettings()


def why(exc):
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        frame = traceback.extract_tb(cause.__traceback__)[-1]
        text += f" (from {type(cause).__name__} {cause} in {frame.name}: {frame.line})"
    return " ".join(text.split())


def once(report, leaf):
    parsed = AttestationReport(report, settings)
    return parsed.verify_signature(leaf, settings.signature_length, settings.HashFunction)


skipped = []
for key, report_path, chain_path in candidates:
    report = bytes.fromhex(open(report_path).read().strip())
    leaf = x509.load_pem_x509_certificates(open(chain_path, "rb").read())[0]
    try:
        ok = once(report, leaf)
    except Exception as exc:
        skipped.append([key, "its parser rejects it: " + why(exc)])
        continue
    if ok is not True:
        skipped.append([key, f"verify_signature returned {ok!r} on the genuine sample"])
        continue
    tampered = report[:-1] + bytes([report[-1] ^ 1])
    if once(tampered, leaf) is not False:
        skipped.append([key, "verify_signature did not reject a flipped signature byte"])
        continue
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once(report, leaf)
        calls += 1
    rate = calls / (time.perf_counter() - start)
    print("NVTRUST_RESULT " + json.dumps({"sample": key, "rate": rate, "skipped": skipped}))
    break
else:
    print("NVTRUST_RESULT " + json.dumps({"sample": None, "rate": None, "skipped": skipped}))
"""


@dataclass(frozen=True)
class Sample:
    label: str
    report: Path
    chain: Path


NVTRUST_SAMPLES = {
    "switch": Sample(
        "NVSwitch LS10 sample", DATA / "switchAttestationReport.txt", DATA / "switchCertChain.txt"
    ),
    "hopper": Sample(
        "Hopper GH100 sample (nv-local-gpu-verifier's own samples/hopperAttestationReport.txt)",
        NVTRUST_DATA / "samples" / "hopperAttestationReport.txt",
        NVTRUST_DATA / "samples" / "hopperCertChain.txt",
    ),
}


@dataclass(frozen=True)
class NvtrustRun:
    sample: str | None
    """Key in NVTRUST_SAMPLES that nvtrust verified and was timed on; None: none worked."""
    rate: float | None
    skipped: list[tuple[str, str]]
    """(sample key, why nvtrust could not verify it offline)."""


def nvtrust_baseline(python: str, seconds: float) -> NvtrustRun | str:
    """Run nvtrust's parse + signature path in `python`; a one-line reason when it cannot run."""
    candidates = [[key, str(s.report), str(s.chain)] for key, s in NVTRUST_SAMPLES.items()]
    if os.sep in python:  # it runs in a scratch directory, so a relative path must be resolved
        python = str(Path(python).absolute())
    limit = 120 + 2 * seconds
    with tempfile.TemporaryDirectory() as cwd:  # verifier.config writes ./verifier.log on import
        try:
            out = subprocess.run(
                [python, "-c", NVTRUST_SCRIPT, json.dumps([seconds, candidates])],
                capture_output=True,
                text=True,
                timeout=limit,
                cwd=cwd,
            )
        except OSError as exc:
            return f"cannot start {python}: {exc.strerror or exc}"
        except subprocess.TimeoutExpired:
            return f"{python} did not finish within {limit:.0f} s"
    lines = [line for line in out.stdout.splitlines() if line.startswith("NVTRUST_RESULT ")]
    if out.returncode != 0 or not lines:
        errors = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        last = errors[-1] if errors else f"exit status {out.returncode}, no output"
        return f"{python} failed: {last}"
    data = json.loads(lines[-1].removeprefix("NVTRUST_RESULT "))
    skipped = [(str(key), str(reason)) for key, reason in data["skipped"]]
    return NvtrustRun(data["sample"], data["rate"], skipped)


def _signature_ok(evidence: DeviceEvidence) -> bool:
    """gpufence's parse + signature step alone: the same scope as nvtrust's baseline."""
    return _signature_step(parse_report(evidence.report), evidence.certificates).status == "pass"


def _ms(per_second: float) -> str:
    return f"{per_second:8.0f} /s  ({1000 / per_second:.3f} ms)"


def bench_nvtrust(python: str | None, seconds: float) -> None:
    print("same-run baseline: nv-local-gpu-verifier 2.7.3 (NVIDIA), parse + signature, offline:")
    if python is None:
        print(
            "  not run: no Python with nv-local-gpu-verifier (give --nvtrust-python, or create "
            f"{DEFAULT_NVTRUST_PYTHON.parents[1]} with nv-local-gpu-verifier==2.7.3)"
        )
        return
    run = nvtrust_baseline(python, seconds)
    if isinstance(run, str):
        print(f"  not run: {run}")
        return
    reasons = [f"{NVTRUST_SAMPLES[key].label}: {reason}" for key, reason in run.skipped]
    if run.sample is None or run.rate is None:
        print(f"  not run: it verifies none of the samples offline: {'; '.join(reasons)}")
        return
    for reason in reasons:
        print(f"  not usable by nvtrust offline: {reason}")
    sample = NVTRUST_SAMPLES[run.sample]
    evidence = load_report_pair(sample.report, sample.chain)
    options = VerifyOptions(AT, NONCE)
    assert _signature_ok(evidence)
    # Strict verdicts: no RIM and offline here, so those steps are waived by name.
    assert verify_device(evidence, options).judge(NO_RIM_WAIVERS) == "pass"
    ours = rate(seconds, lambda: _signature_ok(evidence))
    device = rate(seconds, lambda: verify_device(evidence, options))
    print(f"  compared on the {sample.label}:")
    print("  nvtrust's verify_signature returned True on it and False with one signature byte")
    print("  flipped (nvtrust as shipped: python-ecdsa, debug log to ./verifier.log)")
    print(f"  nvtrust AttestationReport() + verify_signature(): {_ms(run.rate)}")
    print(
        f"  gpufence parse_report + signature step:           {_ms(ours)}"
        f"  -> ratio gpufence/nvtrust {ours / run.rate:.2f}"
    )
    print(
        f"  gpufence verify_device (+chain, FWID, nonce):     {_ms(device)}"
        f"  -> ratio gpufence/nvtrust {device / run.rate:.2f}"
    )


def bench_verify(seconds: float) -> None:
    evidence = load_report_pair(DATA / "switchAttestationReport.txt", DATA / "switchCertChain.txt")
    rim_bytes = RIM.read_bytes()
    rim = check_rim(rim_bytes, AT)
    options = VerifyOptions(AT, NONCE)
    assert verify_device(evidence, options, [rim]).judge(OFFLINE_WAIVERS) == "pass"
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- broker: a lean HTTP/1.1 client over raw asyncio streams -----------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection; requests are pre-serialized bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _release(conn: Conn, attest_request: bytes) -> None:
    status, body = await conn.call(attest_request)
    if status != 200:
        raise RuntimeError(f"attest {status}: {body[:200]!r}")
    token = json.loads(body)["token"]
    get = f"GET /resource/weights HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\n\r\n"
    status, body = await conn.call(get.encode())
    if status != 200:
        raise RuntimeError(f"release {status}: {body[:200]!r}")


async def _open_loop(port: int, work: list[bytes], rate: float, seconds: float) -> list[float]:
    """Arrivals every 1/rate s; latency from the *scheduled* arrival (no coordinated omission)."""
    count = min(len(work), int(rate * seconds))
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal opened
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if pool.empty() and opened < 256:
            opened += 1
            conn = await Conn.open(port)
        else:
            conn = await pool.get()
        await _release(conn, work[i])
        latencies.append(time.perf_counter() - due)
        pool.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(count)))
    while not pool.empty():
        pool.get_nowait().close()
    del work[:count]
    return latencies


async def _closed_loop(port: int, work: list[bytes], clients: int, seconds: float) -> float:
    """Saturation: ``clients`` connections doing releases back to back; releases per second."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = await Conn.open(port)
        while work and time.perf_counter() < stop:
            await _release(conn, work.pop())
            done += 1
        conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - began)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its child processes (uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] = ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else math.nan


@dataclass
class BrokerUnderTest:
    label: str
    pythonpath: str | None  # None: this checkout
    workers: int
    current: bool


def _run_broker(
    who: BrokerUnderTest, rates: list[float], seconds: float, clients: int
) -> dict[str, object]:
    from tests.attest.brokerkit import SECRET, make_broker_kit

    from gpufence.attest.broker.client import Requester

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if who.pythonpath:
        env["PYTHONPATH"] = who.pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        kit = make_broker_kit(Path(tmp), gpus=1)
        text = kit.config.read_text().replace("nonce_ttl_s: 60", "nonce_ttl_s: 3600")
        text = text.split("  policies:")[0]  # the single-policy form both versions read
        if who.current:
            text += (
                "  resources: {weights: {tenant: bench}}\n"
                f"  workers: {who.workers}\n"
                "  limits: {rate_per_s: 1000000, burst: 1000000}\n"
            )
        kit.config.write_text(text)
        (Path(tmp) / "s.bin").write_bytes(SECRET)
        cli = [sys.executable, "-m", "gpufence", "broker"]
        put = [*cli, "secret", "put", "--config", str(kit.config), "weights", "--from-file"]
        subprocess.run([*put, str(Path(tmp) / "s.bin")], check=True, capture_output=True, env=env)
        port = _free_port()
        proc = subprocess.Popen(
            [*cli, "serve", "--config", str(kit.config), "--port", str(port)],
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for _ in range(300):
                    try:
                        http.get("/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                # Pre-generated evidence: challenges fetched and reports signed before timing.
                requester = Requester()
                needed = int((sum(rates) + 400) * seconds) + 100
                work: list[bytes] = []
                for _ in range(needed):
                    nonce = http.post("/challenge").json()["nonce"]
                    body = {
                        "nonce": nonce,
                        "public_key": requester.public_pem,
                        "evidence": kit.evidence(requester.gpu_nonce(nonce)),
                    }
                    work.append(_post("/attest", json.dumps(body).encode()))
            results: dict[str, object] = {}
            for rate in rates:
                latencies = asyncio.run(_open_loop(port, work, rate, seconds))
                results[f"{rate:g}/s"] = (_pct(latencies, 0.5), _pct(latencies, 0.99))
            cpu_before, done_before = _cpu_seconds(proc.pid), len(work)
            client_before = time.process_time()
            results["saturation"] = asyncio.run(_closed_loop(port, work, clients, seconds))
            releases = done_before - len(work)
            results["cpu_ms"] = (_cpu_seconds(proc.pid) - cpu_before) / max(1, releases) * 1000
            # The lean client shares the cores: its CPU per release bounds saturation too.
            client = (time.process_time() - client_before) / max(1, releases) * 1000
            results["client_cpu_ms"] = client
            return results
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def bench_broker(rates: list[float], seconds: float, clients: int, baseline_ref: str) -> None:
    """The current broker (1 and 2 worker processes) against the broker of ``baseline_ref``,
    run from ``git archive`` of that commit in the same run, with the same client and evidence."""
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", baseline_ref, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        brokers = [
            BrokerUnderTest(f"previous broker ({baseline_ref})", f"{old}/src", 1, False),
            BrokerUnderTest("current broker, 1 worker", None, 1, True),
            BrokerUnderTest("current broker, 2 workers", None, 2, True),
        ]
        print(
            f"broker: 127.0.0.1, 1 GPU evidence per release, pre-generated (challenge fetched and "
            f"report signed before timing); a release = POST /attest + GET /resource on a "
            f"keep-alive connection; lean asyncio client on the same machine; {seconds:g} s per "
            f"offered rate, saturation = {clients} closed-loop connections"
        )
        figures = {}
        for who in brokers:
            figures[who.label] = _run_broker(who, rates, seconds, clients)
            row = figures[who.label]
            cells = "  ".join(
                f"{k}: p50 {v[0]:.1f} ms p99 {v[1]:.1f} ms"  # type: ignore[index]
                for k, v in row.items()
                if k not in ("saturation", "cpu_ms", "client_cpu_ms")
            )
            print(
                f"  {who.label:28s} saturation {row['saturation']:6.1f} releases/s, server CPU "
                f"{row['cpu_ms']:5.2f} ms/release (client {row['client_cpu_ms']:4.2f} ms) | {cells}"
            )
        base = figures[brokers[0].label]
        for who in brokers[1:]:
            row = figures[who.label]
            ratio = float(row["saturation"]) / float(base["saturation"])  # type: ignore[arg-type]
            cpu = float(base["cpu_ms"]) / float(row["cpu_ms"])  # type: ignore[arg-type]
            print(
                f"  {who.label}: {ratio:.2f}x the previous broker's saturation, {cpu:.2f}x less "
                "server CPU per release (same run)"
            )


def _service_releases(synchronous: str, count: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per attest + release through BrokerService (no HTTP), in this process,
    with the database at ``synchronous``; challenges and evidence are made before timing."""
    from tests.attest.brokerkit import SECRET, make_broker_kit

    from gpufence.attest.broker.client import Requester
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.database import AuditEntry
    from gpufence.attest.broker.service import BrokerService

    with tempfile.TemporaryDirectory() as tmp:
        kit = make_broker_kit(Path(tmp), gpus=1)
        text = kit.config.read_text().replace("nonce_ttl_s: 60", "nonce_ttl_s: 3600")
        kit.config.write_text(text + f"  sqlite_synchronous: {synchronous}\n")
        svc = BrokerService.from_config(load_broker_config(kit.config))
        try:
            svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", time.time()))
            requester = Requester()
            work = []
            for _ in range(count):
                nonce = str(svc.challenge()["nonce"])
                work.append((nonce, kit.evidence(requester.gpu_nonce(nonce))))
            cpu, wall = time.process_time(), time.perf_counter()
            for nonce, evidence in work:
                token = svc.attest(nonce, requester.public_pem, evidence)["token"]
                svc.release(f"Bearer {token}", "weights")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            svc.close()
    return cpu / count * 1000, wall / count * 1000


def bench_durability(count: int, rounds: int = 3) -> None:
    """sqlite_synchronous full vs normal, interleaved in the same run (median of ``rounds``)."""
    print(
        f"durability (BrokerService, no HTTP, one process; {count} attest + release per round, "
        f"{rounds} rounds interleaved, median; SQLite WAL in a temporary directory):"
    )
    figures: dict[str, list[tuple[float, float]]] = {"normal": [], "full": []}
    for _ in range(rounds):
        for mode in figures:
            figures[mode].append(_service_releases(mode, count))
    medians = {
        mode: (sorted(r[0] for r in rows)[rounds // 2], sorted(r[1] for r in rows)[rounds // 2])
        for mode, rows in figures.items()
    }
    for mode, (cpu, wall) in medians.items():
        print(f"  synchronous={mode:6s} CPU {cpu:6.2f} ms/release, wall {wall:6.2f} ms/release")
    (cpu_n, wall_n), (cpu_f, wall_f) = medians["normal"], medians["full"]
    print(
        f"  full costs {cpu_f - cpu_n:+.2f} ms CPU ({cpu_f / cpu_n:.2f}x) and "
        f"{wall_f - wall_n:+.2f} ms wall ({wall_f / wall_n:.2f}x) per release over normal"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--broker-seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--baseline-ref", default="8d17b17", help="Commit whose broker is the same-run baseline."
    )
    parser.add_argument("--only-broker", action="store_true")
    parser.add_argument(
        "--durability",
        type=int,
        default=300,
        metavar="N",
        help="Releases per round of the synchronous=full vs normal comparison (0: skip).",
    )
    parser.add_argument(
        "--nvtrust-python",
        default=str(DEFAULT_NVTRUST_PYTHON) if DEFAULT_NVTRUST_PYTHON.exists() else None,
        help="Python of a venv with nv-local-gpu-verifier==2.7.3 (default: %(default)s)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}"  # noqa: E501
    )
    if not args.only_broker:
        bench_verify(args.seconds)
        bench_nvtrust(args.nvtrust_python, args.seconds)
    if args.durability:
        bench_durability(args.durability)
    bench_broker(args.rates, args.broker_seconds, args.clients, args.baseline_ref)


if __name__ == "__main__":
    main()
