"""Benchmark: `gpufence audit` on synthetic fleets, against the same-run cost of reading the YAML.

Baseline: PyYAML's C-accelerated `yaml.load(CSafeLoader)` of the same file (or the pure-Python
SafeLoader when libyaml is absent) — the least any YAML-reading tool must pay. The figure is the
ratio of each gpufence stage to that baseline, measured in the same process on the same file.

Every (size, run) is measured in a fresh Python process, so each starts from the same empty heap
and reports its own peak memory. Times are CPU seconds of that process (the machine is shared:
CPU time is what the work costs; wall time is printed beside it). Stages:

- baseline: ``yaml.load`` of the file;
- snapshot: parse with source locations + validation + reference checks + catalog resolution;
- audit: every control over the snapshot (views built on first use, as in the CLI);
- command: the whole ``gpufence audit FILE --format FMT --output FILE`` in its own process
  (start-up, load, controls, rendering, writing), with its peak RSS (``--formats``: text).

``--before DIR`` (a ``git archive REV src | tar -x -C DIR`` of an earlier commit) measures that
code the same way, in the same run, on the same files (its ``src`` first on ``PYTHONPATH``).

    .venv/bin/python bench/bench_audit.py [--nodes 1000 4000 16000] [--runs 3] [--big 64000]
        [--formats text json] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import fleet

HERE = Path(__file__).resolve().parent


def _evidence_file(nodes: int, path: Path) -> None:
    names = [n["name"] for p in fleet(nodes)["node_pools"] for n in p["nodes"]]
    documents = [
        {
            "schema": "gpufence.evidence/v1",
            "subject": f"node/{name}",
            "collector": "nvml",
            "collected_at": "2026-11-20T00:00:00Z",
            "observed": {"gpu_state.ecc": True, "gpu_state.cc_mode": "on"},
        }
        for name in names
    ]
    path.write_text(json.dumps({"evidence": documents}))


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    cpu, wall = _clock()
    return cpu - start[0], wall - start[1]


def measure_once(path: Path, evidence: Path | None) -> dict[str, Any]:
    """One run in this (fresh) process: baseline, snapshot and audit, CPU and wall seconds."""
    from gpufence.controls import audit_snapshot
    from gpufence.load.evidence import load_evidence
    from gpufence.load.inventory import load_snapshot

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = path.read_text()
    start = _clock()
    yaml.load(text, Loader=loader)
    base = _since(start)
    documents = load_evidence([evidence]).documents if evidence else ()
    start = _clock()
    snapshot = load_snapshot(path, documents)
    snap = _since(start)
    start = _clock()
    findings = len(audit_snapshot(snapshot).findings)
    audit = _since(start)
    return {
        "base": base,
        "snapshot": snap,
        "audit": audit,
        "findings": findings,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _env(src: Path | None) -> dict[str, str] | None:
    """The environment that imports gpufence from ``src`` (None: this checkout's install)."""
    if src is None:
        return None
    return {**os.environ, "PYTHONPATH": str(src)}


def _child(args: list[str], src: Path | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        check=True,
        capture_output=True,
        text=True,
        env=_env(src),
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def measure_command(
    path: Path, evidence: Path | None, out: Path, fmt: str = "text", src: Path | None = None
) -> dict[str, Any]:
    """The whole CLI command in its own process: CPU, wall and peak RSS (os.wait4)."""
    cmd = [sys.executable, "-m", "gpufence", "audit", str(path), "--format", fmt]
    if evidence:
        cmd += ["--evidence", str(evidence)]
    cmd += ["--output", str(out), "--fail-on", "never"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(src))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(
            f"audit command exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
        )
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": wall,
        "peak_mb": usage.ru_maxrss / 1024,
        "report_mb": out.stat().st_size / 1e6,
    }


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def _exponent(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) over log(nodes): 1.0 is linear."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--big", type=int, nargs="*", default=[], help="sizes measured once")
    parser.add_argument(
        "--with-evidence", action="store_true", help="also attach one GPU evidence doc per node"
    )
    parser.add_argument(
        "--formats", nargs="+", default=["text"], help="report formats of the whole command"
    )
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="also measure the src/ in DIR (git archive)"
    )
    parser.add_argument("--one", nargs=2, metavar=("INVENTORY", "EVIDENCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    before = (args.before / "src").resolve() if args.before else None
    if args.one:
        evidence = Path(args.one[1]) if args.one[1] != "-" else None
        print(json.dumps(measure_once(Path(args.one[0]), evidence)))
        return

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"baseline: yaml.load with {loader.__name__} in the same process; CPU seconds, "
        f"median [min-max] of {args.runs} fresh processes (sizes in --big: one run)"
    )
    print(
        f"{'nodes':>6} {'yaml MB':>7} {'baseline s':>18} {'snapshot/base':>18} "
        f"{'audit s':>18} {'audit/base':>18} {'findings':>8} {'peak MB':>7}"
    )
    medians: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in [*args.nodes, *args.big]:
            path = Path(tmp) / f"fleet-{nodes}.yaml"
            path.write_text(yaml.safe_dump(fleet(nodes), sort_keys=False))
            evidence = Path(tmp) / f"evidence-{nodes}.json" if args.with_evidence else None
            if evidence:
                _evidence_file(nodes, evidence)
            runs = 1 if nodes in args.big else args.runs
            for label, src in [("", None), *([("before", before)] if before else [])]:
                rows = [
                    _child(["--one", str(path), str(evidence or "-")], src) for _ in range(runs)
                ]
                base = [r["base"][0] for r in rows]
                audit = [r["audit"][0] for r in rows]
                if src is None:
                    medians.append((nodes, statistics.median(audit)))
                print(
                    f"{nodes:>6} {path.stat().st_size / 1e6:>7.2f} {_spread(base):>18} "
                    f"{_spread([r['snapshot'][0] / r['base'][0] for r in rows]):>18} "
                    f"{_spread(audit):>18} "
                    f"{_spread([r['audit'][0] / r['base'][0] for r in rows]):>18} "
                    f"{rows[0]['findings']:>8} {max(r['peak_mb'] for r in rows):>7.0f} {label}",
                    flush=True,
                )
                for fmt in args.formats:
                    command = measure_command(path, evidence, Path(tmp) / "report", fmt, src)
                    print(
                        f"{nodes:>6} nodes{' (before)' if src else ''}, whole command (its own "
                        f"process) gpufence audit --format {fmt} --output FILE: "
                        f"{command['cpu']:.2f} s CPU ({command['wall']:.2f} s wall), "
                        f"{command['cpu'] / statistics.median(base):.1f}x the parse, peak RSS "
                        f"{command['peak_mb']:.0f} MB, report {command['report_mb']:.1f} MB",
                        flush=True,
                    )
    if len(medians) > 1:
        print(f"audit time ~ nodes^{_exponent(medians):.2f} (least squares over the medians)")
    if before:
        print(f"before: {args.before} (its src first on PYTHONPATH; rows marked 'before')")


if __name__ == "__main__":
    main()
