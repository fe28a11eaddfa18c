"""Benchmark: `gpufence scan bmc` over a loopback fleet, against today's scanner in the same run.

The fleet is the project's mockup server on N ports of 127.0.0.1 (HTTPS, Basic auth, a test CA),
cycling the real captures in ../shared/redfish-mockups (DMTF public-rackmount1, HPE iLO 6 DL380a,
iLO 5 DL360), spread over ``--servers`` processes so that the fleet is not the bottleneck. "Full
scan" = TLS probe + IPMI probe (UDP 623, closed on loopback) + anonymous checks + the
authenticated walk + evidence written to a file (JSON Lines, as each BMC finishes, on this
branch).

Baseline, in the same run against the same fleet: the scanner as of ``--baseline-ref`` (git
archive of its ``src/``, run with the same options and worker counts). Each scan runs in its own
process, so peak memory is its own. Optionally (``--sample N``) DMTF's sequential `redfish`
client reads the same URIs for N BMCs (``pip install -e '.[bench]'``).

    .venv/bin/python bench/scan_bmc.py [--bmcs 1000] [--servers 2] [--workers 1 2] [--latency-ms 0]

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
from gpufence.collect.bmc.scanner import ScanOptions
from gpufence.collect.bmc.targets import parse_targets
from gpufence.testing.mockup_server import make_test_pki

SHARED = Path(__file__).resolve().parents[2] / "shared" / "redfish-mockups"
TREES = {
    "dmtf": SHARED / "dmtf-public-rackmount1",
    "dl380a": SHARED / "hpe-ilo-redfish-emulator" / "DL380a",
    "dl360": SHARED / "hpe-ilo-redfish-emulator" / "DL360",
}
USER = "bench"


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
) -> tuple[list[subprocess.Popen[bytes]], list[int], Path]:
    """``--servers`` mockup processes sharing the ``--bmcs`` ports (one asyncio loop each)."""
    pki = make_test_pki(tmp / "pki")
    per_server = -(-args.bmcs // args.servers)
    procs, readies = [], []
    for index in range(args.servers):
        count = min(per_server, args.bmcs - index * per_server)
        if count <= 0:
            break
        ready = tmp / f"ready-{index}.json"
        cmd = [
            sys.executable,
            "-m",
            "gpufence.testing.mockup_server",
            "--count",
            str(count),
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
        procs.append(
            subprocess.Popen(
                cmd,
                env={**os.environ, "MOCKUP_BMC_PASSWORD": password},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        readies.append(ready)
    deadline = time.monotonic() + 300
    ports: list[int] = []
    for proc, ready in zip(procs, readies, strict=True):
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("mockup server did not start")
            time.sleep(0.1)
        ports += json.loads(ready.read_text())["ports"]
    return procs, ports, pki.ca


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_scan(spec: dict[str, Any]) -> dict[str, Any]:
    """One scan in this process (run with PYTHONPATH at the scanner under test)."""
    import gpufence.collect.bmc.parallel as parallel

    password = os.environ["BENCH_BMC_PASSWORD"]
    targets = parse_targets(
        [f"bmc-{i:05d}=https://127.0.0.1:{p}" for i, p in enumerate(spec["ports"])]
    )
    store = CredentialStore(Credential(USER, SecretStr(password), "bench"), {})
    opts = ScanOptions(
        concurrency=spec["concurrency"],
        ca_bundle=Path(spec["ca"]),
        read_timeout=30,
        bmc_timeout=120,
    )
    states: dict[str, int] = {}
    requests = 0
    stats: dict[str, int] = {}
    out = Path(spec["out"])
    started = time.perf_counter()
    cpu0 = time.process_time()
    if hasattr(parallel, "scan_streaming"):  # this branch: evidence streamed as BMCs finish
        from gpufence.collect.bmc.evidence import EvidenceWriter

        out = out.with_suffix(".jsonl")
        with EvidenceWriter(out) as writer:  # type: ignore[attr-defined,unused-ignore]

            def emit(_index: int, document: dict[str, Any]) -> None:
                nonlocal requests
                writer.add(document)
                state = str(document["raw"]["state"])
                states[state] = states.get(state, 0) + 1
                requests += int(document["raw"]["requests"])

            parallel.scan_streaming(
                targets, store, opts, emit, workers=spec["workers"], stats=stats
            )
    else:  # the scanner before issue 14: every document in memory, written at the end
        documents, _ = parallel.scan_to_evidence(
            targets, store, opts, workers=spec["workers"], stats=stats
        )
        write_evidence(documents, out)
        for document in documents:
            state = str(document.raw["state"])
            states[state] = states.get(state, 0) + 1
            requests += int(document.raw["requests"])  # type: ignore[call-overload,arg-type]
    wall = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu0 + kids.ru_utime + kids.ru_stime,
        "main_cpu": time.process_time() - cpu0,
        "states": states,
        "requests": requests,
        "workers": stats.get("workers", 1),
        # Workers are forked: count what each added beyond the pages it shared at fork.
        "peak_mb": (own.ru_maxrss + stats.get("worker_growth_kb", 0)) / 1024,
        "main_mb": own.ru_maxrss / 1024,
        "evidence_mb": out.stat().st_size / 1e6,
    }


def run_scan(
    label: str, src: Path | None, workers: int, args: argparse.Namespace, base: dict[str, Any]
) -> dict[str, Any]:
    spec = {**base, "workers": workers, "out": str(Path(base["tmp"]) / f"evidence-{label}.json")}
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{label}: scan failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def baseline_source(ref: str, tmp: Path) -> Path:
    """The package as of ``ref`` (git archive of src/), to run today's scanner in this run."""
    repo = Path(__file__).resolve().parents[1]
    target = tmp / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def run_baseline(sample: list[dict[str, Any]], ca: Path, password: str) -> tuple[float, int]:
    # Imported late: the sync client turns off urllib3's TLS warnings process-wide.
    import redfish

    requests = 0
    started = time.perf_counter()
    for raw in sample:
        target: Any = raw["target"]
        client = redfish.redfish_client(
            base_url=target["redfish"],
            username=USER,
            password=password,
            cafile=str(ca),
            timeout=30,
            max_retry=1,
        )
        client.login(auth="basic")
        for path in ["/redfish/v1/", *list(raw["anonymous"] or {}), *list(raw["fetched"] or [])]:
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
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--trees", default="dmtf,dl380a,dl360")
    parser.add_argument("--servers", type=int, default=2, help="Mockup server processes.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--baseline-ref",
        default="8d17b17",
        help="Git ref of today's scanner, run in the same session as the baseline "
        "(default: main before issue 14); '' to skip.",
    )
    parser.add_argument("--baseline-workers", type=int, nargs="*", default=[1])
    parser.add_argument("--sample", type=int, default=0, help="BMCs for the DMTF redfish client.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_scan(json.loads(args.child))))
        return
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found (the captures live beside the checkout)")
    password = secrets.token_urlsafe(16)
    os.environ["BENCH_BMC_PASSWORD"] = password
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"fleet: {args.bmcs} BMCs on 127.0.0.1 ({args.trees}) served by {args.servers} mockup "
        f"process(es), mock latency {args.latency_ms:g} ms, concurrency {args.concurrency}"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        procs, ports, ca = start_fleet(args, tmp, password)
        base = {"ports": ports, "ca": str(ca), "concurrency": args.concurrency, "tmp": tmp_name}
        runs: list[tuple[str, Path | None, int]] = []
        if args.baseline_ref:
            old = baseline_source(args.baseline_ref, tmp)
            runs += [(f"today ({args.baseline_ref})", old, w) for w in args.baseline_workers]
        runs += [("this branch", None, w) for w in args.workers]
        results = []
        try:
            for label, src, workers in runs:
                server0 = sum(cpu_seconds(p.pid) for p in procs)
                result = run_scan(f"{len(results)}", src, workers, args, base)
                result["server_cpu"] = sum(cpu_seconds(p.pid) for p in procs) - server0
                results.append((label, workers, result))
                rate = args.bmcs / result["wall"]
                print(
                    f"{label}, {workers} worker(s): {rate:.1f} BMCs/s ({result['wall']:.1f} s), "
                    f"{result['requests'] / result['wall']:.0f} requests/s, states "
                    f"{result['states']}; scanner CPU {result['cpu']:.1f} s "
                    f"({1000 * result['cpu'] / args.bmcs:.1f} ms per BMC; main process "
                    f"{1000 * result['main_cpu'] / args.bmcs:.1f} ms), mock servers "
                    f"{result['server_cpu']:.1f} s; peak memory {result['peak_mb']:.0f} MB "
                    f"(main process {result['main_mb']:.0f} MB); evidence "
                    f"{result['evidence_mb']:.1f} MB",
                    flush=True,
                )
            sample: list[dict[str, Any]] = []
            if args.sample:
                last = Path(tmp_name) / f"evidence-{len(results) - 1}.jsonl"
                lines = last.read_text().splitlines()
                step = max(1, len(lines) // args.sample)
                sample = [json.loads(line)["raw"] for line in lines[::step][: args.sample]]
                base_wall, base_requests = run_baseline(sample, ca, password)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    by_workers = {(label.startswith("today"), w): r for label, w, r in results}
    for (is_today, workers), result in sorted(by_workers.items()):
        today = by_workers.get((True, workers))
        if not is_today and today is not None:
            print(
                f"ratio, {workers} worker(s): {today['wall'] / result['wall']:.1f}x today's "
                f"BMCs/s, {today['cpu'] / result['cpu']:.1f}x less scanner CPU per BMC"
            )
    one, two = by_workers.get((False, 1)), by_workers.get((False, 2))
    if one and two:
        print(
            f"scaling: 2 workers give {one['wall'] / two['wall']:.2f}x one worker's rate "
            f"(target >= 1.6x on 2 free cores)"
        )
    if args.sample and sample:
        print(
            f"DMTF redfish {_redfish_version()} (sequential): {len(sample)} BMCs in "
            f"{base_wall:.2f} s = {len(sample) / base_wall:.2f} BMCs/s ({base_requests} requests)"
        )


def _redfish_version() -> str:
    from importlib.metadata import version

    return version("redfish")


if __name__ == "__main__":
    main()
