"""Benchmark: `gpufence k8s scan` on 20,000 pods, 2,000 namespaces, 5,000 policies (manifests).

Prints the machine, the scan's wall time and peak RSS, and a same-run baseline: parsing the same
files with PyYAML's libyaml loader alone (no locations, no controls), with the ratio.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import yaml

PODS, NAMESPACES, POLICIES = 20_000, 2_000, 5_000


def generate(directory: Path) -> None:
    per_file = 500
    docs: list[dict] = []
    for n in range(NAMESPACES):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": f"t{n}",
                    "labels": {
                        "gpufence.io/tenant": f"t{n}",
                        "pod-security.kubernetes.io/enforce": "baseline",
                    },
                },
            }
        )
    for p in range(PODS):
        ns = f"t{p % NAMESPACES}"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"p{p}",
                    "namespace": ns,
                    "annotations": {"k8s.v1.cni.cncf.io/networks": "rdma"},
                },
                "spec": {
                    "nodeSelector": {"pool": f"pool{p % 50}"},
                    "containers": [
                        {
                            "name": "main",
                            "image": "nvcr.io/nvidia/pytorch:25.01-py3",
                            "resources": {"limits": {"nvidia.com/gpu": 1}},
                            "env": [{"name": "HF_HOME", "value": "/cache"}],
                            "securityContext": {"privileged": p % 997 == 0},
                        }
                    ],
                    "volumes": [
                        {
                            "name": "d",
                            "hostPath": {"path": "/dev/nvidia0" if p % 1999 == 0 else "/data"},
                        }
                    ],
                },
            }
        )
    for q in range(POLICIES):
        ns = f"t{q % NAMESPACES}"
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"np{q}", "namespace": ns},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            }
        )
    for g in range(50):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"gpu{g}",
                    "labels": {
                        "pool": f"pool{g}",
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/gpu.sharing-strategy": "time-slicing",
                    },
                },
            }
        )
    for i in range(0, len(docs), per_file):
        (directory / f"m{i // per_file:04d}.yaml").write_text(
            yaml.safe_dump_all(docs[i : i + per_file])
        )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scan(directory: str, queue) -> None:  # runs in a fresh process: its own peak RSS
    from gpufence.collect.kubernetes import load_manifests
    from gpufence.controls.k8s import scan_cluster

    start = time.perf_counter()
    result = scan_cluster(load_manifests([Path(directory)]))
    queue.put((time.perf_counter() - start, _peak_mib(), len(result.findings)))


def _baseline(directory: str, queue) -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    start = time.perf_counter()
    count = 0
    for path in sorted(Path(directory).glob("*.yaml")):
        count += sum(1 for _ in yaml.load_all(path.read_text(), Loader=loader))
    queue.put((time.perf_counter() - start, _peak_mib(), count))


def _run(target, directory: str) -> tuple[float, float, int]:
    ctx = get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(directory, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> int:
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {platform.platform()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        print(
            f"input: {PODS} pods, {NAMESPACES} namespaces, {POLICIES} NetworkPolicies, "
            f"50 nodes; {size:.1f} MiB of YAML"
        )
        base_s, base_mib, docs = _run(_baseline, tmp)
        scan_s, scan_mib, findings = _run(_scan, tmp)
    print(
        f"baseline (libyaml parse only, {docs} docs): {base_s:.2f} s, peak RSS {base_mib:.0f} MiB"
    )
    print(f"gpufence k8s scan ({findings} findings):   {scan_s:.2f} s, peak RSS {scan_mib:.0f} MiB")
    print(f"ratio scan/baseline: time {scan_s / base_s:.2f}x, memory {scan_mib / base_mib:.2f}x")
    met = scan_s < 10 and scan_mib < 1024
    print(f"target: < 10 s and < 1024 MiB -> {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
