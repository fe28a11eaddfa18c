"""Benchmark: `gpufence scan bmc` over a loopback fleet, against a sequential DMTF `redfish` scan.

The fleet is the project's mockup server listening on N ports of 127.0.0.1 (HTTPS, Basic auth,
a test CA), cycling the real captures in ../shared/redfish-mockups (DMTF public-rackmount1, HPE
iLO 6 DL380a, iLO 5 DL360). "Full scan" = TLS probe + IPMI probe (UDP 623, closed on loopback) +
anonymous checks + the authenticated walk + evidence documents written to a file.

Baseline, in the same run: the DMTF `redfish` library (sync, requests), one BMC after the other,
Basic login and a GET of exactly the URIs gpufence read for that BMC (so the same work), on an
evenly spread sample of the fleet. The ratio is gpufence's BMCs/s over the baseline's.

    .venv/bin/python bench/scan_bmc.py [--bmcs 1000] [--sample 30] [--latency-ms 0]

``--latency-ms`` makes every mock response wait that long (real BMCs answer in tens to hundreds
of milliseconds; 0 measures pure CPU cost on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gpufence.collect.bmc.credentials import Credential, CredentialStore
from gpufence.collect.bmc.evidence import write_evidence
from gpufence.collect.bmc.parallel import scan_to_evidence
from gpufence.collect.bmc.scanner import ScanOptions
from gpufence.collect.bmc.targets import parse_targets
from gpufence.model.evidence import EvidenceDocument
from gpufence.testing.mockup_server import make_test_pki

SHARED = Path(__file__).resolve().parents[2] / "shared" / "redfish-mockups"
TREES = {
    "dmtf": SHARED / "dmtf-public-rackmount1",
    "dl380a": SHARED / "hpe-ilo-redfish-emulator" / "DL380a",
    "dl360": SHARED / "hpe-ilo-redfish-emulator" / "DL360",
}
USER = "bench"
STATS: dict[str, int] = {}


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs ({model or 'unknown CPU'}), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"{ssl.OPENSSL_VERSION}"
    )


def start_fleet(
    args: argparse.Namespace, tmp: Path, password: str
) -> tuple[subprocess.Popen[bytes], list[int], Path]:
    pki = make_test_pki(tmp / "pki")
    ready = tmp / "ready.json"
    cmd = [
        sys.executable,
        "-m",
        "gpufence.testing.mockup_server",
        "--count",
        str(args.bmcs),
        "--cert",
        str(pki.cert),
        "--key",
        str(pki.key),
        "--user",
        USER,
        "--latency-ms",
        str(args.latency_ms),
        "--ready-file",
        str(ready),
    ]
    for name in args.trees.split(","):
        cmd += ["--tree", str(TREES[name])]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "MOCKUP_BMC_PASSWORD": password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("mockup server did not start")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())["ports"], pki.ca


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_gpufence(
    args: argparse.Namespace, ports: list[int], ca: Path, password: str, out: Path
) -> tuple[float, list[EvidenceDocument]]:
    targets = parse_targets([f"bmc-{i:04d}=https://127.0.0.1:{p}" for i, p in enumerate(ports)])
    store = CredentialStore(Credential(USER, SecretStr(password), "bench"), {})
    opts = ScanOptions(concurrency=args.concurrency, ca_bundle=ca, read_timeout=30, bmc_timeout=120)
    started = time.perf_counter()
    documents, _ = scan_to_evidence(targets, store, opts, workers=args.workers, stats=STATS)
    write_evidence(documents, out)
    return time.perf_counter() - started, documents


def run_baseline(sample: list[EvidenceDocument], ca: Path, password: str) -> tuple[float, int]:
    # Imported late: the sync client turns off urllib3's TLS warnings process-wide.
    import redfish

    requests = 0
    started = time.perf_counter()
    for document in sample:
        target: Any = document.raw["target"]
        anonymous = list(document.raw["anonymous"] or {})  # type: ignore[arg-type]
        fetched = list(document.raw["fetched"] or [])  # type: ignore[arg-type]
        client = redfish.redfish_client(
            base_url=target["redfish"],
            username=USER,
            password=password,
            cafile=str(ca),
            timeout=30,
            max_retry=1,
        )
        client.login(auth="basic")
        for path in ["/redfish/v1/", *anonymous, *fetched]:
            response = client.get(path)
            requests += 1
            if response.status != 200:
                sys.exit(f"baseline GET {path}: {response.status}")
        client.logout()
    return time.perf_counter() - started, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bmcs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--sample", type=int, default=30, help="BMCs scanned by the baseline.")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--trees", default="dmtf,dl380a,dl360")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Scanner processes."
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found (the captures live beside the checkout)")
    password = secrets.token_urlsafe(16)
    print(f"machine: {machine()}")
    print(
        f"fleet: {args.bmcs} BMCs on 127.0.0.1 ({args.trees}), mock latency {args.latency_ms:g} ms "
        f"per response, gpufence concurrency {args.concurrency}"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proc, ports, ca = start_fleet(args, tmp, password)
        try:
            server_cpu0 = cpu_seconds(proc.pid)
            cpu0 = time.process_time()
            wall, scans = run_gpufence(args, ports, ca, password, tmp / "evidence.json")
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the joined scanner workers
            cpu = time.process_time() - cpu0 + kids.ru_utime + kids.ru_stime
            server_cpu = cpu_seconds(proc.pid) - server_cpu0
            # Workers are forked: count what each added beyond the pages it shared at fork.
            peak_mb = (own.ru_maxrss + STATS.get("worker_growth_kb", 0)) / 1024
            main_mb, worker_mb = own.ru_maxrss / 1024, kids.ru_maxrss / 1024
            states: dict[str, int] = {}
            for document in scans:
                state = str(document.raw["state"])
                states[state] = states.get(state, 0) + 1
            requests = sum(int(d.raw["requests"]) for d in scans)  # type: ignore[call-overload,arg-type]
            evidence_mb = (tmp / "evidence.json").stat().st_size / 1e6
            step = max(1, len(scans) // args.sample)
            sample = scans[::step][: args.sample]
            base_wall, base_requests = run_baseline(sample, ca, password)
        finally:
            proc.terminate()
            proc.wait()
    rate = len(scans) / wall
    base_rate = len(sample) / base_wall
    workers = STATS.get("workers", 1)
    print(
        f"gpufence: {len(scans)} BMCs in {wall:.2f} s = {rate:.1f} BMCs/s with {workers} "
        f"process(es); {requests} HTTP requests ({requests / wall:.0f}/s); states {states}; "
        f"peak memory {peak_mb:.0f} MB (main process {main_mb:.0f} MB peak RSS"
        + (f", largest worker {worker_mb:.0f} MB incl. pages shared at fork" if workers > 1 else "")
        + "); "
        f"scanner CPU {cpu:.1f} s, mock-server CPU {server_cpu:.1f} s; "
        f"evidence {evidence_mb:.1f} MB"
    )
    print(
        f"baseline (DMTF redfish {_redfish_version()}, sequential): {len(sample)} BMCs in "
        f"{base_wall:.2f} s = {base_rate:.2f} BMCs/s ({base_requests} requests); "
        f"{args.bmcs} BMCs would take {args.bmcs / base_rate:.0f} s"
    )
    print(f"ratio: {rate / base_rate:.1f}x the sequential baseline")
    print(
        f"targets: 1,000 BMCs < 30 s: {'met' if wall < 30 and len(scans) >= 1000 else 'NOT met'}"
        f" | >= 20x baseline: {'met' if rate / base_rate >= 20 else 'NOT met'}"
        f" | < 500 MB: {'met' if peak_mb < 500 else 'NOT met'}"
    )


def _redfish_version() -> str:
    from importlib.metadata import version

    return version("redfish")


if __name__ == "__main__":
    main()
