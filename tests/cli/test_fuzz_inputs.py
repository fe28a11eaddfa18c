"""Fuzzing every file parser through the CLI (issue 11): mutated real inputs and random bytes.

Invariant: exit 0 or 1, or exit 2 with a message naming the file; never exit 3, never a
traceback. Runtime is bounded: few examples per parser, small inputs, no deadline flakiness.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.cli import main
from tests.conftest import REPO
from tests.inventories import base_inventory

SHARED = REPO.parent / "shared" / "data"
FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few chunks replaced, deleted or duplicated, or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        span = draw(st.integers(0, 16))
        action = draw(st.sampled_from(["replace", "delete", "duplicate", "insert"]))
        if action == "replace":
            data[at : at + span] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + span]
        elif action == "duplicate":
            data[at:at] = data[at : at + span]
        else:
            data[at:at] = draw(
                st.sampled_from(
                    [b"&a ", b"*a", b"\x00", b"\xff", b"{", b"]", b": ", b"\n- ", b"9" * 60, b"'"]
                )
            )
    return bytes(data)


def _check(args: Callable[[Path], list[str]], content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        err = io.StringIO()
        out = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(args(path))
        text = err.getvalue()
        assert code in (0, 1, 2), (code, text[-800:])
        assert "Traceback" not in text and "internal error" not in text, text[-800:]
        if code == 2:
            assert path.name in text or "Usage" in text, text[-800:]


def _seed(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"{path} is missing (../shared/data)")
    return path.read_bytes()[:6000]


INVENTORY = yaml.safe_dump(base_inventory(), sort_keys=False).encode()


@FUZZ
@given(content=mutated(INVENTORY))
def test_fuzz_inventory(content: bytes) -> None:
    _check(lambda p: ["audit", str(p), "--fail-on", "never"], content, "inv.yaml")


EVIDENCE = json.dumps(
    {
        "schema": "gpufence.evidence/v1",
        "subject": "node/n1",
        "collector": "nvml",
        "collected_at": "2026-11-20T00:00:00Z",
        "observed": {"gpu_state.ecc": True, "gpu_state.cc_mode": "off"},
        "not_observed": [{"fact": "gpu_state.mig", "reason": "x"}],
    }
).encode()


@FUZZ
@given(content=mutated(EVIDENCE))
def test_fuzz_evidence(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inv.yaml"
        inventory.write_bytes(INVENTORY)
        _check(
            lambda p: ["audit", str(inventory), "-e", str(p), "--max-evidence-age", "3650d"],
            content,
            "ev.json",
        )


@pytest.mark.parametrize(
    "seed",
    [
        "fabric/examples/ibsim-tenants.partitions.conf",
        "fabric/examples/both-and-ALL_SWITCHES.partitions.conf",
    ],
)
def test_fuzz_partitions_conf(seed: str) -> None:
    data = _seed(SHARED / seed)

    @FUZZ
    @given(content=mutated(data))
    def run(content: bytes) -> None:
        _check(lambda p: ["fabric", "lint", str(p)], content, "partitions.conf")

    run()


def test_fuzz_k8s_manifests() -> None:
    data = _seed(SHARED / "k8s-gpu" / "cloud-native-docs_input_time-slicing-config-all.yaml")

    @FUZZ
    @given(content=mutated(data))
    def run(content: bytes) -> None:
        _check(lambda p: ["k8s", "scan", str(p), "--fail-on", "never"], content, "m.yaml")

    run()


@pytest.mark.parametrize(
    "seed", ["h200-141gb-driver-580/nvidia-smi-q-x.xml", "h200-141gb-driver-580/nvidia-smi-q.txt"]
)
def test_fuzz_nvidia_smi(seed: str) -> None:
    data = _seed(SHARED / "nvidia-smi" / seed)

    @FUZZ
    @given(content=mutated(data))
    def run(content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.json"
            _check(
                lambda p: ["collect", "gpu", "--from", str(p), "--node", "n1", "--out", str(out)],
                content,
                Path(seed).name,
            )

    run()
