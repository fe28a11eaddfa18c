"""A fleet of misbehaving BMCs: every one ends in the result with its state and reason, in time.

Faults are served by the mockup server (hang after the request, TCP tarpit, connection reset,
HTTP 500, malformed JSON, an endless body) next to a healthy BMC and a closed port. Ctrl-C on a
scan leaves a valid evidence file with what was learned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bmc_servers import SECRET, USER, free_port, mockup_server

from gpufence.cli import main
from gpufence.testing.mockup_server import LoopbackPki, make_test_pki

pytestmark = [pytest.mark.integration]

FAULTS = ("hang", "reset", "error500", "malformed", "huge")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def creds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BMC_TEST_PASSWORD", SECRET)
    path = tmp_path / "credentials.yaml"
    path.write_text(f"default: {{username: {USER}, password_env: BMC_TEST_PASSWORD}}\n")
    return path


@pytest.fixture
def bad_fleet(shared_dir: Path, pki: LoopbackPki, tmp_path: Path) -> Iterator[list[str]]:
    """--target values: a healthy BMC, faults on Managers, a tarpit, a 500 root, a closed port."""
    with ExitStack() as stack:
        targets = []
        (port,) = stack.enter_context(mockup_server(shared_dir, tmp_path, pki))
        targets.append(f"healthy=https://127.0.0.1:{port}")
        for fault in FAULTS:
            (port,) = stack.enter_context(
                mockup_server(
                    shared_dir, tmp_path, pki, fault=fault, fault_path="/redfish/v1/Managers"
                )
            )
            targets.append(f"{fault}=https://127.0.0.1:{port}")
        (port,) = stack.enter_context(mockup_server(shared_dir, tmp_path, pki, fault="tarpit"))
        targets.append(f"tarpit=https://127.0.0.1:{port}")
        (port,) = stack.enter_context(mockup_server(shared_dir, tmp_path, pki, fault="error500"))
        targets.append(f"root500=https://127.0.0.1:{port}")
        targets.append(f"closed=https://127.0.0.1:{free_port()}")
        yield targets


def _states(evidence: Path) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    docs = json.loads(evidence.read_text())["evidence"]
    return {d["subject"].split("/", 1)[1]: (d["raw"]["state"], d["raw"]["reason"], d) for d in docs}


def test_bad_fleet_completes_with_a_state_per_bmc(
    bad_fleet: list[str], pki: LoopbackPki, creds: Path, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence.json"
    args = [a for t in bad_fleet for a in ("--target", t)]
    started = time.monotonic()
    code = main(
        [
            "scan",
            "bmc",
            *args,
            "--credentials",
            str(creds),
            "--ca-bundle",
            str(pki.ca),
            "--out",
            str(evidence),
            "--no-ipmi",
            "--no-progress",
            "--format",
            "json",
            "--output",
            str(tmp_path / "findings.json"),
            "--connect-timeout",
            "1.5",
            "--read-timeout",
            "1.5",
            "--bmc-timeout",
            "20",
        ]
    )
    elapsed = time.monotonic() - started
    assert code in (0, 1)
    states = _states(evidence)
    assert set(states) == {t.split("=", 1)[0] for t in bad_fleet}
    assert states["healthy"][0] == "scanned"
    expected_reason = {
        "hang": "read timeout",
        "reset": "connection",
        "error500": "500",
        "malformed": "malformed JSON",
        "huge": "exceeds 4194304 bytes",
    }
    for fault, words in expected_reason.items():
        state, reason, doc = states[fault]
        assert state == "partial", (fault, reason)
        assert reason is not None and words in reason and "/redfish/v1/Managers" in reason
        # What came before and after the broken resource was still read.
        assert doc["observed"]["bmc.account.lockout_threshold"] == 5
    assert states["tarpit"][0] == "unreachable" and "timeout" in str(states["tarpit"][1])
    assert states["closed"][0] == "unreachable" and "connect" in str(states["closed"][1])
    assert states["root500"][0] == "partial" and "500" in str(states["root500"][1])
    # The hang and the tarpit cost their timeouts once, not per resource.
    assert elapsed < 15, elapsed
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    unreachable = [f for f in findings if f["resource"] == "bmc/closed"]
    assert unreachable and all(f["status"] == "NOT_EVALUATED" for f in unreachable)


def test_budget_bounds_the_whole_scan(
    shared_dir: Path, pki: LoopbackPki, creds: Path, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence.json"
    with (
        mockup_server(
            shared_dir, tmp_path, pki, fault="hang", fault_path="/redfish/v1/Systems"
        ) as (hang,),
        mockup_server(shared_dir, tmp_path, pki) as (healthy,),
    ):
        started = time.monotonic()
        main(
            [
                "scan",
                "bmc",
                "--target",
                f"slow=https://127.0.0.1:{hang}",
                "--target",
                f"fine=https://127.0.0.1:{healthy}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
                "--out",
                str(evidence),
                "--no-ipmi",
                "--no-progress",
                "--read-timeout",
                "30",
                "--budget",
                "2",
                "--output",
                str(tmp_path / "f.txt"),
            ]
        )
        elapsed = time.monotonic() - started
    states = _states(evidence)
    assert states["fine"][0] == "scanned"
    assert states["slow"][0] == "partial"
    assert "scan budget of 2 s exhausted" in str(states["slow"][1])
    assert elapsed < 10


def _wait_until_scanning(
    ports: list[int], proc: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Block until the scanner holds an established TCP connection to one of ``ports``.

    A fixed sleep before Ctrl-C raced the interpreter's start-up on a loaded machine (the signal
    then arrived before gpufence installed its handler); a live connection proves the scan runs.
    """
    wanted = {f":{port:04X}" for port in ports}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        for row in rows:
            fields = row.split()
            # local, remote, state: 01 is ESTABLISHED; the server side has the port as local.
            if fields[3] == "01" and any(fields[1].endswith(w) for w in wanted):
                time.sleep(1.5)  # let it reach the hanging resource
                return
        time.sleep(0.05)
    raise AssertionError("the scanner never connected to the mock BMCs")


def test_ctrl_c_leaves_a_usable_partial_result(
    shared_dir: Path, pki: LoopbackPki, creds: Path, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence.json"
    with mockup_server(
        shared_dir, tmp_path, pki, fault="hang", fault_path="/redfish/v1/Managers"
    ) as (port,):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpufence",
                "scan",
                "bmc",
                "--target",
                f"stuck=https://127.0.0.1:{port}",
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
                "--out",
                str(evidence),
                "--no-ipmi",
                "--no-progress",
                "--read-timeout",
                "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ},
        )
        try:
            _wait_until_scanning([port], proc)  # past the root, stuck on Managers
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err
    state, reason, doc = _states(evidence)["stuck"]
    assert state == "partial" and "interrupted (Ctrl-C)" in str(reason)
    assert doc["observed"]["bmc.redfish_version"] == "1.15.0"
    assert b"OOB-" in out  # findings of what was learned are still printed
    assert SECRET.encode() not in out + err + evidence.read_bytes()


def test_ctrl_c_with_worker_processes(
    shared_dir: Path, pki: LoopbackPki, creds: Path, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence.json"
    with (
        mockup_server(shared_dir, tmp_path, pki, count=2) as healthy,
        mockup_server(
            shared_dir, tmp_path, pki, count=2, fault="hang", fault_path="/redfish/v1/Managers"
        ) as stuck,
    ):
        targets = [f"ok{i}=https://127.0.0.1:{p}" for i, p in enumerate(healthy)]
        targets += [f"stuck{i}=https://127.0.0.1:{p}" for i, p in enumerate(stuck)]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpufence",
                "scan",
                "bmc",
                *[a for t in targets for a in ("--target", t)],
                "--credentials",
                str(creds),
                "--ca-bundle",
                str(pki.ca),
                "--out",
                str(evidence),
                "--no-ipmi",
                "--no-progress",
                "--read-timeout",
                "60",
                "--workers",
                "2",
                "--format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_until_scanning([*healthy, *stuck], proc)
            proc.send_signal(signal.SIGINT)  # to the parent only: it forwards to its workers
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err.decode()
    states = _states(evidence)
    assert {n: s[0] for n, s in states.items()} == {
        "ok0": "scanned",
        "ok1": "scanned",
        "stuck0": "partial",
        "stuck1": "partial",
    }
    assert all("interrupted (Ctrl-C)" in str(states[n][1]) for n in ("stuck0", "stuck1"))
    findings = json.loads(out)["findings"]
    assert {f["resource"] for f in findings} >= {"bmc/ok0", "bmc/stuck1"}
