"""Benchmark: the whole `gpufence scan bmc` command (scan, findings, JSON report) over a loopback
fleet: peak memory and CPU, against a baseline ref of the command in the same run.

`bench/scan_bmc.py` measures the scanner; this measures what a user runs: the scan writes each
BMC's evidence as it finishes, then the OOB/FW controls judge every BMC and the report is
written. The fleet is the same mockup fleet (``--servers`` processes of the project's mockup
server cycling the real captures). Each command runs in its own process under
``/usr/bin/time``; runs of this checkout and of the baseline alternate (``--runs`` pairs).

    .venv/bin/python bench/scan_command.py [--bmcs 10000] [--runs 2] [--baseline-ref a726474]
        [--inventory]   # scan bmc --inventory: one node per BMC, as the Kubernetes Job runs it
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import yaml
from scan_bmc import SHARED, USER, baseline_source, machine, start_fleet


def run_command(
    label: str, src: Path | None, tmp: Path, ca: Path, password: str, args: argparse.Namespace
) -> dict[str, float]:
    env = {**os.environ, "BENCH_BMC_PASSWORD": password}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    evidence, report = tmp / f"evidence-{label}.jsonl", tmp / f"findings-{label}.json"
    what = ["--inventory", str(tmp / "inventory.yaml")] if args.inventory else []
    what = what or ["--targets-file", str(tmp / "targets")]
    command = [
        *("/usr/bin/time", "-f", "%M %U %S %e"),
        *(sys.executable, "-m", "gpufence", "scan", "bmc", *what),
        *("--credentials", str(tmp / "credentials")),
        *("--ca-bundle", str(ca), "--no-ipmi", "--no-progress", "--workers", str(args.workers)),
        *("--out", str(evidence), "--format", "json", "--output", str(report)),
        *("--fail-on", "never"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{label}: command failed:\n{done.stderr[-3000:]}")
    peak_kb, user, system, wall = done.stderr.strip().splitlines()[-1].split()
    result = {
        "peak_mb": int(peak_kb) * 1024 / 1e6,
        "cpu": float(user) + float(system),
        "wall": float(wall),
        "report_mb": report.stat().st_size / 1e6,
    }
    evidence.unlink()
    report.unlink()
    return result


def inventory(ports: list[int]) -> dict[str, object]:
    """An inventory of one GPU node per mock BMC, on a dedicated out-of-band network."""
    names = [f"bmc-{i:05d}" for i in range(len(ports))]
    return {
        "version": 1,
        "organization": {"name": "Bench", "country": "DE"},
        "sites": [{"name": "fra1", "country": "DE", "ownership": "owned"}],
        "tenants": [{"name": "alpha", "trust": "partner", "data_sensitivity": "internal"}],
        "node_pools": [
            {
                "name": "pool1",
                "site": "fra1",
                "gpu_model": "H100-SXM5-80GB",
                "gpus_per_node": 8,
                "sharing": "dedicated",
                "workloads": [{"tenant": "alpha"}],
                "networks": ["compute"],
                "nodes": [{"name": f"node-{i:05d}", "bmc": n} for i, n in enumerate(names)],
            }
        ],
        "bmcs": [
            {"name": n, "address": f"https://127.0.0.1:{p}", "network": "oob"}
            for n, p in zip(names, ports, strict=True)
        ],
        "networks": [
            {"name": "compute", "kind": "ethernet", "purposes": ["compute"]},
            {"name": "oob", "kind": "ethernet", "purposes": ["oob"]},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bmcs", type=int, default=10000)
    parser.add_argument("--servers", type=int, default=2, help="Mockup server processes.")
    parser.add_argument("--runs", type=int, default=2, help="Pairs of runs (this, baseline).")
    parser.add_argument("--workers", type=int, default=1, help="scan bmc --workers.")
    parser.add_argument("--inventory", action="store_true", help="scan bmc --inventory FILE.")
    parser.add_argument("--trees", default="dmtf,dl380a,dl360")
    parser.add_argument(
        "--baseline-ref",
        default="a726474",
        help="Git ref of the command to compare with (default: main before batched findings).",
    )
    args = parser.parse_args()
    args.latency_ms = 0.0
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found (the captures live beside the checkout)")
    password = secrets.token_urlsafe(16)
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"fleet: {args.bmcs} BMCs on 127.0.0.1 ({args.trees}) served by {args.servers} mockup "
        f"process(es), mock latency 0 ms; command: scan bmc "
        f"{'--inventory F' if args.inventory else '--targets-file F'} --workers {args.workers} "
        "--format json --output F"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        procs, ports, ca = start_fleet(args, tmp, password)
        try:
            (tmp / "targets").write_text("".join(f"https://127.0.0.1:{p}\n" for p in ports))
            (tmp / "inventory.yaml").write_text(yaml.safe_dump(inventory(ports), sort_keys=False))
            (tmp / "credentials").write_text(
                f"default: {{username: {USER}, password_env: BENCH_BMC_PASSWORD}}\n"
            )
            old = baseline_source(args.baseline_ref, tmp)
            runs: dict[str, list[dict[str, float]]] = {"this checkout": [], args.baseline_ref: []}
            for n in range(args.runs):
                for label, src in (("this checkout", None), (args.baseline_ref, old)):
                    result = run_command(f"{n}-{len(runs[label])}", src, tmp, ca, password, args)
                    runs[label].append(result)
                    print(
                        f"{label}: peak {result['peak_mb']:.0f} MB, CPU {result['cpu']:.1f} s, "
                        f"wall {result['wall']:.1f} s, report {result['report_mb']:.0f} MB",
                        flush=True,
                    )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    now, before = runs["this checkout"], runs[args.baseline_ref]
    peak_now, peak_before = median(r["peak_mb"] for r in now), median(r["peak_mb"] for r in before)
    cpu_now, cpu_before = median(r["cpu"] for r in now), median(r["cpu"] for r in before)
    print(
        f"median of {args.runs}: peak {peak_now:.0f} MB vs {peak_before:.0f} MB "
        f"({peak_now / peak_before:.2f}x; target < 500 MB at 10,000 BMCs), CPU {cpu_now:.1f} s vs "
        f"{cpu_before:.1f} s ({cpu_now / cpu_before:.2f}x)"
    )


if __name__ == "__main__":
    main()
