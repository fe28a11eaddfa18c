"""Benchmark: `gpufence audit` on synthetic fleets, against the same-run cost of reading the YAML.

Baseline: PyYAML's C-accelerated `yaml.load(CSafeLoader)` of the same file (or the pure-Python
SafeLoader when libyaml is absent) — the least any YAML-reading tool must pay. The figure is the
ratio of each gpufence stage to that baseline, measured in the same run on the same machine.

    .venv/bin/python bench/bench_audit.py [--nodes 1000 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import fleet

from gpufence.audit import audit_snapshot
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _evidence(nodes: int) -> list[tuple[EvidenceDocument, str]]:
    names = [n["name"] for p in fleet(nodes)["node_pools"] for n in p["nodes"]]
    return [
        (
            EvidenceDocument.model_validate(
                {
                    "schema": "gpufence.evidence/v1",
                    "subject": f"node/{name}",
                    "collector": "nvml",
                    "collected_at": "2026-11-20T00:00:00Z",
                    "observed": {"gpu_state.ecc": True, "gpu_state.cc_mode": "on"},
                }
            ),
            f"{name}.json",
        )
        for name in names
    ]


def _measure(
    nodes: int, path: Path, loader: type[yaml.SafeLoader], repeat: int, with_evidence: bool
) -> str:
    text = path.read_text()
    base = best_of(repeat, lambda: yaml.load(text, Loader=loader))
    evidence = _evidence(nodes) if with_evidence else []
    snap_t = best_of(repeat, lambda: load_snapshot(path, evidence))
    snapshot = load_snapshot(path, evidence)
    count = 0

    def fresh_audit() -> None:
        nonlocal count
        for view in ("nodes", "bmcs", "_evidence_by_subject"):  # cached views: rebuild each run
            snapshot.__dict__.pop(view, None)
        count = len(audit_snapshot(snapshot).findings)

    audit_t = best_of(repeat, fresh_audit)
    return (
        f"{nodes:>6} {len(text) / 1e6:>8.2f} {base:>10.3f} {snap_t:>10.3f} "
        f"{snap_t / base:>6.1f} {audit_t:>8.3f} {audit_t / base:>6.1f} {count:>9}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--with-evidence", action="store_true", help="also attach one GPU evidence doc per node"
    )
    args = parser.parse_args()

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    print(f"baseline: yaml.load with {loader.__name__}; best of {args.repeat}")
    print(
        f"{'nodes':>6} {'yaml MB':>8} {'baseline s':>10} {'snapshot s':>10} {'ratio':>6} "
        f"{'audit s':>8} {'ratio':>6} {'findings':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in args.nodes:
            path = Path(tmp) / f"fleet-{nodes}.yaml"
            path.write_text(yaml.safe_dump(fleet(nodes), sort_keys=False))
            print(_measure(nodes, path, loader, args.repeat, args.with_evidence))


if __name__ == "__main__":
    main()
