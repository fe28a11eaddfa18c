"""A simulated InfiniBand subnet with a real subnet manager, for tests (started and stopped by PID).

ibsim (Debian ``ibsim-utils``) simulates the fabric described by a net file; OpenSM and the
infiniband-diags tools talk to it through ``LD_PRELOAD=libumad2sim.so`` (set only in the child
processes' environment). ibsim listens on *global abstract unix sockets*; their name comes from
``IBSIM_SOCKNAME`` (read by ibsim and by libumad2sim), which each instance here sets to a name of
its own, so even two test runs on one machine cannot cross-talk. Tests also carry
``@pytest.mark.xdist_group("ibsim")`` so one run never starts two at once. No network is used.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

TOOLS = {
    "ibsim": "ibsim-utils",
    "opensm": "opensm",
    "ibnetdiscover": "infiniband-diags",
    "smpquery": "infiniband-diags",
    "saquery": "infiniband-diags",
    "sminfo": "infiniband-diags",
}


def umad2sim() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/umad2sim/libumad2sim.so"))
    return found[0] if found else None


def require_ibsim() -> str:
    """Path of libumad2sim.so; skip (fail under CI=true) naming the Debian package if missing."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    lib = umad2sim()
    if lib is None:
        missing = sorted({*missing, "ibsim-utils"})
    if missing:
        message = f"needs the Debian package(s) {', '.join(missing)} (apt-get install)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert lib is not None
    return lib


_instances = itertools.count()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Subnet:
    """One running ibsim; OpenSM one-shot or as a daemon; diag tools; all in ``workdir``."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.daemon: subprocess.Popen[bytes] | None = None

    def tool(self, *argv: str, timeout: float = 30, check: bool = True) -> str:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def opensm_once(self, partitions: Path, extra: Sequence[str] = ()) -> str:
        """`opensm -o`: sweep once, program the PKey tables, exit. Returns OpenSM's log."""
        log = self.workdir / "osm-once.log"
        log.unlink(missing_ok=True)
        self.tool("opensm", "-o", "-V", "-f", str(log), "-P", str(partitions), *extra, timeout=60)
        return log.read_text(errors="replace")

    def start_opensm(self, partitions: Path, extra: Sequence[str] = ()) -> None:
        """OpenSM as a daemon (the SA answers PathRecord queries); waits until it is MASTER."""
        log = self.workdir / "osm.log"
        self.daemon = subprocess.Popen(
            ["opensm", "-d2", "-f", str(log), "-P", str(partitions), *extra],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        # -d2 flushes the log per message: "SUBNET UP" comes after LIDs, routes and PKey tables
        # are programmed. No other tool may connect before (OpenSM must be ibsim's first client).
        while not (log.exists() and b"SUBNET UP" in log.read_bytes()):
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise AssertionError("OpenSM did not reach SUBNET UP")
            time.sleep(0.05)
        while "MASTER" not in self.tool("sminfo", check=False):
            if time.monotonic() > deadline:
                raise AssertionError("OpenSM did not become MASTER")
            time.sleep(0.1)

    def stop_opensm(self) -> None:
        if self.daemon is not None:
            _stop(self.daemon)
            self.daemon = None


@contextmanager
def ibsim_subnet(net_file: Path, workdir: Path) -> Iterator[Subnet]:
    """Start ibsim on ``net_file``; yield a :class:`Subnet`; stop everything by PID."""
    lib = require_ibsim()
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    socket_name = f"gpufence-{os.getpid()}-{next(_instances)}"
    env = {
        **os.environ,
        "LD_PRELOAD": lib,
        "OSM_CACHE_DIR": str(cache),
        "OSM_TMP_DIR": str(workdir),
        "IBSIM_SOCKNAME": socket_name,
    }
    log = (workdir / "ibsim.log").open("wb")
    sim = subprocess.Popen(
        ["ibsim", "-s", "-n", str(net_file)],
        env={**os.environ, "IBSIM_SOCKNAME": socket_name},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
    )
    subnet = Subnet(workdir, env)
    try:
        deadline = time.monotonic() + 15
        while b"ready" not in (workdir / "ibsim.log").read_bytes():
            if sim.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "ibsim did not start: " + (workdir / "ibsim.log").read_text(errors="replace")
                )
            time.sleep(0.02)
        yield subnet
    finally:
        subnet.stop_opensm()
        _stop(sim)
        log.close()
