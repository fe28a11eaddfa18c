"""The install the container image makes (deploy/Dockerfile), in a fresh virtual environment.

No container builder runs here (nor in CI), so this runs the Dockerfile's install step itself:
`pip install ".[collector]"` into a new venv, then checks that the node collector works from it
and that the broker's web stack and the RIM verifier's XML-DSig stack did not come along.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
A100_XML = "data/nvidia-smi/telegraf__a100-sxm4-v12.xml"


@pytest.mark.integration
def test_collector_extra_installs_without_the_broker_or_xmldsig_stacks(
    tmp_path: Path, shared_dir: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-compile", f"{REPO}[collector]"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"gpufence", "nvidia-ml-py", "pydantic", "httpx", "uvloop"} <= names
    assert not names & {
        "fastapi",
        "uvicorn",
        "signxml",
        "lxml",
        "starlette",
        "kubernetes",
        "psycopg",
    }
    sample = shared_dir / A100_XML
    out = tmp_path / "node.json"
    gpufence = str(env_dir / "bin" / "gpufence")
    done = subprocess.run(
        [gpufence, "collect", "gpu", "--from", str(sample), "--node", "gpu-a01", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["subject"] == "node/gpu-a01"
    # A command that needs a missing extra says which extra, exit 2 (not an internal error).
    attest = subprocess.run(
        [gpufence, "attest", "verify", "--evidence", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert attest.returncode == 2, attest.stderr
    assert "gpufence[attest]" in attest.stderr
    assert sys.executable  # the test's own interpreter is untouched
