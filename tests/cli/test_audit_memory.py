"""Memory of `gpufence audit` on a fleet: reports are streamed, findings are compact.

Peak RSS is read from VmHWM in a subprocess (ru_maxrss carries the forking pytest worker's
high-water mark across exec on Linux). Figures on a 3,000-node fleet (~42,000 findings, 4 MB
JSON report): 121 MB for every format now; 488 MB (JSON) and 259 MB (JUnit) when the reports
were built whole in memory from pydantic-validated findings. Timings live in bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

_PROBE = (
    "import json, re, sys\n"
    "from gpufence.cli import main\n"
    "code = main(['audit', sys.argv[1], '--format', sys.argv[2], '--output', sys.argv[3],\n"
    "             '--fail-on', 'never'])\n"
    "status = open('/proc/self/status').read()\n"
    "rss = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024\n"
    "print(json.dumps({'code': code, 'rss_mb': rss}))\n"
)


@pytest.fixture(scope="module")
def fleet_3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from fleet import fleet
    finally:
        sys.path.remove(str(REPO / "bench"))
    path = tmp_path_factory.mktemp("fleet") / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet(3000), sort_keys=False))
    return path


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_a_3000_node_report_stays_under_200_mb(fleet_3000: Path, fmt: str, tmp_path: Path) -> None:
    report = tmp_path / f"report.{fmt}"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(fleet_3000), fmt, str(report)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr[-500:]
    assert report.stat().st_size > 2_000_000  # the whole report was written
    assert result["rss_mb"] < 200, result
