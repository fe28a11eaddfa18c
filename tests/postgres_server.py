"""A real PostgreSQL server for the tests, started from Debian's `postgresql` binaries.

`postgres_url()` is a context manager yielding a ``postgresql+psycopg://`` URL of a fresh server:
``initdb`` in a temporary directory, listening on 127.0.0.1 on a free port, stopped (and its
directory removed) on exit. As root (CI) the server runs as the ``postgres`` system user, since
``initdb`` refuses to run as root. Without the binaries the test skips locally and fails under
``CI=true``, naming the Debian package.

Use the session-scoped fixture ``postgres_server_url`` (tests/conftest.py) rather than starting
one server per test: one server takes about 1-2 s to start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["pg_bin_dir", "postgres_url"]


def pg_bin_dir() -> Path:
    """Directory of initdb/pg_ctl; skip locally (fail under CI=true) when PostgreSQL is absent."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    message = "PostgreSQL server binaries not found: install the Debian package postgresql"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def postgres_url(database: str = "gpufence") -> Iterator[str]:
    """Start a throwaway server; yield a SQLAlchemy URL (psycopg 3 driver) to ``database``."""
    bin_dir = pg_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="gpufence-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "gpufence"]
    run = {"check": True, "capture_output": True, "env": env, "timeout": 120}
    subprocess.run(
        _as_server_user([*initdb, "-E", "UTF8"]),
        **run,  # type: ignore[arg-type]
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
            ]
        ),
        **run,  # type: ignore[arg-type]
    )
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "gpufence",
                    database,
                ]
            ),
            **run,  # type: ignore[arg-type]
        )
        yield f"postgresql+psycopg://gpufence@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)
