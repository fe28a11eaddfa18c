"""The findings store's cost: `gpufence audit` of the example with and without `--store` (same
run, interleaved), and recording a synthetic 20,000-finding run into SQLite.

    python bench/store_record.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gpufence.cli import main
from gpufence.model.findings import Plane, Severity, Status, fingerprint_of
from gpufence.model.history import FindingState
from gpufence.store import NewRun, open_store

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "neocloud"


def _audit(*extra: str) -> float:
    args = ["audit", str(EXAMPLE / "inventory.yaml"), "-e", str(EXAMPLE / "evidence"), "-q"]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main([*args, *extra])
    return time.perf_counter() - start


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "s.db")
        _audit()
        _audit("--store", store)  # warm-up: imports, schema creation
        plain, stored = [], []
        for _ in range(repeat):
            plain.append(_audit())
            stored.append(_audit("--store", store))
        p, s = statistics.median(plain), statistics.median(stored)
        print(
            f"audit example, median of {repeat}: {p:.3f} s plain, {s:.3f} s --store sqlite "
            f"(ratio {s / p:.2f})"
        )
        states = tuple(
            FindingState(
                fingerprint=fingerprint_of("OOB-001", f"bmc/b{i}"),
                control="OOB-001",
                plane=Plane.OOB,
                severity=Severity.HIGH,
                status=Status.FAIL if i % 3 else Status.PASS,
                resource=f"bmc/b{i}",
                message="BMC reachable from a tenant network",
            )
            for i in range(20_000)
        )
        run = NewRun(
            started_at=datetime.now(UTC),
            duration_s=1.0,
            command="audit",
            target="synthetic",
            tool_version="bench",
            policy_digest="0" * 16,
            verdict="fail",
            fail_on="low",
            findings=states,
        )
        with open_store(str(Path(tmp) / "big.db")) as opened:
            start = time.perf_counter()
            run_id = opened.record(run)
            rec = time.perf_counter() - start
            start = time.perf_counter()
            back = opened.findings(run_id)
            read = time.perf_counter() - start
        assert len(back) == len(states)
        print(f"20,000 findings: record {rec:.3f} s, read back {read:.3f} s (SQLite)")


if __name__ == "__main__":
    main_bench()
