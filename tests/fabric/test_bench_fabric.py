"""The fabric benchmark's fleet must keep finding exactly its planted leaks (so it cannot rot)."""

from __future__ import annotations

import sys

from tests.conftest import REPO


def test_bench_fleet_finds_the_planted_leaks() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import fabric as bench  # bench/fabric.py
    finally:
        sys.path.remove(str(REPO / "bench"))
    fleet = bench.build(2_000, 60)  # t42 must exist
    result = bench.verdict(fleet)
    assert set(result.ib.leaks) == {fleet.planted["infiniband"]}
    assert result.ethernet == {fleet.planted["ethernet"]}
    assert result.oob == {fleet.planted["oob"]}
    sample = sorted(set(range(0, 2_000, 7)) | set(fleet.planted_hosts))
    ib, eth, oob = bench.naive(fleet, result.tables, sample)
    assert ib == {fleet.planted["infiniband"]} and eth == {fleet.planted["ethernet"]}
    assert oob == {fleet.planted["oob"]}
