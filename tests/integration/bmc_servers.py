"""Real BMC stand-ins for the integration tests, all on 127.0.0.1 and stopped by PID.

- the project's Redfish mockup server (``gpufence.testing.mockup_server``) serving a tree of
  ../shared/redfish-mockups over HTTPS with Basic auth and a CA made in the test;
- ``sushy-emulator --fake`` (PyPI sushy-tools) over HTTPS with a bcrypt htpasswd;
- ``ipmi_sim`` (Debian openipmi) with a LAN config on a free UDP port.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from gpufence.testing.mockup_server import LoopbackPki

TREES = {
    "dmtf": "redfish-mockups/dmtf-public-rackmount1",
    "dl380a": "redfish-mockups/hpe-ilo-redfish-emulator/DL380a",
    "dl360": "redfish-mockups/hpe-ilo-redfish-emulator/DL360",
}

# A recognisable secret: tests grep every output for it.
SECRET = "gpf-" + secrets.token_hex(12)
USER = "auditor"


def require_tool(name: str, package: str) -> str:
    """Path of a system tool; skip locally, fail under CI=true, naming the Debian package."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found: install the Debian package {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def mockup_server(
    shared: Path,
    tmp: Path,
    pki: LoopbackPki | None,
    trees: Sequence[str] = ("dmtf",),
    *,
    count: int = 1,
    user: str | None = USER,
    password: str = SECRET,
    weak_tls: bool = False,
    fault: str | None = None,
    fault_path: str = "",
    factory_accounts: Sequence[str] = (),
    latency_ms: float = 0.0,
) -> Iterator[list[int]]:
    """Start the mockup server in a subprocess; yields its ports."""
    ready = tmp / f"mockup-{secrets.token_hex(4)}.json"
    cmd = [sys.executable, "-m", "gpufence.testing.mockup_server", "--ready-file", str(ready)]
    for tree in trees:
        cmd += ["--tree", str(shared / TREES.get(tree, tree))]
    cmd += ["--count", str(count), "--latency-ms", str(latency_ms)]
    if pki is not None:
        cmd += ["--cert", str(pki.cert), "--key", str(pki.key)]
    if weak_tls:
        cmd.append("--weak-tls")
    if user is not None:
        cmd += ["--user", user]
    if fault:
        cmd += ["--fault", fault, "--fault-path", fault_path]
    for account in factory_accounts:
        cmd += ["--factory-account", account]
    env = {**os.environ, "MOCKUP_BMC_PASSWORD": password}
    log = (tmp / f"{ready.stem}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None:
                pytest.fail(f"mockup server exited {proc.returncode}: {cmd}")
            if time.monotonic() > deadline:
                pytest.fail("mockup server did not start within 30 s")
            time.sleep(0.05)
        yield list(json.loads(ready.read_text())["ports"])
    finally:
        _stop(proc)
        log.close()


@contextmanager
def sushy_emulator(
    tmp: Path, pki: LoopbackPki, user: str = USER, password: str = SECRET
) -> Iterator[str]:
    """``sushy-emulator --fake`` over HTTPS + Basic auth; yields its base URL."""
    binary = Path(sys.executable).parent / "sushy-emulator"
    if not binary.exists():
        message = "sushy-emulator not in the venv: pip install sushy-tools (the 'test' extra)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    import bcrypt

    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
    )
    port = free_port()
    config = tmp / "sushy.conf"
    config.write_text(
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_SSL_CERT = '{pki.cert}'\n"
        f"SUSHY_EMULATOR_SSL_KEY = '{pki.key}'\n"
        f"SUSHY_EMULATOR_AUTH_FILE = '{htpasswd}'\n"
    )
    log = (tmp / "sushy.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "--config", str(config), "--fake", "-i", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sushy-emulator exited {proc.returncode}; see {tmp / 'sushy.log'}")
            try:
                with urllib.request.urlopen(f"{url}/redfish/v1/", context=ctx, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sushy-emulator did not answer within 30 s")
                time.sleep(0.2)
        yield url
    finally:
        _stop(proc)
        log.close()


LAN_CONF = """name "gpubmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback {auths}
    allowed_auths_user {auths}
    allowed_auths_operator {auths}
    allowed_auths_admin {auths}
    guid a123456789abcdefa123456789abcdef
  endlan
{users}
"""

BMC_EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""

# The lab BMC of the note (section 2d): a null user, vendor defaults, every 1.5 auth type.
WEAK_USERS = (
    '  user 1 true  ""      ""       user  10 none md2 md5 straight\n'
    '  user 2 true  "ADMIN" "ADMIN"  admin 10 none md2 md5 straight\n'
    '  user 3 true  "root"  "calvin" admin 10 md5'
)


@contextmanager
def ipmi_sim(
    tmp: Path, *, users: str = WEAK_USERS, auths: str = "none md2 md5 straight"
) -> Iterator[int]:
    """``ipmi_sim`` listening on a free UDP port of 127.0.0.1; yields the port."""
    binary = require_tool("ipmi_sim", "openipmi")
    port = free_port(socket.SOCK_DGRAM)
    work = tmp / f"ipmisim-{port}"
    (work / "state").mkdir(parents=True)
    (work / "lan.conf").write_text(LAN_CONF.format(port=port, auths=auths, users=users))
    (work / "bmc.emu").write_text(BMC_EMU)
    log = (work / "sim.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-c", "lan.conf", "-f", "bmc.emu", "-s", "state", "-n"],
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ipmi(port, proc)
        yield port
    finally:
        _stop(proc)
        log.close()


def _wait_ipmi(port: int, proc: subprocess.Popen[bytes]) -> None:
    from gpufence.collect.bmc.ipmi import build_auth_caps_request

    deadline = time.monotonic() + 15
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"ipmi_sim exited {proc.returncode}")
            try:
                sock.sendto(build_auth_caps_request(), ("127.0.0.1", port))
                sock.recvfrom(512)
                return
            except OSError:
                time.sleep(0.1)
    pytest.fail("ipmi_sim did not answer within 15 s")
