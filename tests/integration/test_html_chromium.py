"""The HTML report of the bundled example in a real browser (headless Chromium over CDP)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.conftest import REPO
from tests.integration.chromium import open_page

from gpufence.cli import main
from gpufence.model.findings import AuditResult, Finding, Plane, Severity, Status, summarize
from gpufence.report.html import render_html

EXAMPLE = REPO / "examples" / "neocloud"

pytestmark = pytest.mark.integration

CRITICAL_BOX = "document.querySelector('input[data-filter=severity][value=critical]')"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    store = tmp / "s.db"
    for _ in range(2):  # two runs: the trend chart has something to draw
        main(
            [
                "audit",
                str(EXAMPLE / "inventory.yaml"),
                "-e",
                str(EXAMPLE / "evidence"),
                "--store",
                str(store),
                "--format",
                "html",
                "-o",
                str(tmp / "report.html"),
            ]
        )
    return tmp / "report.html"


def test_example_report_renders_without_console_errors(
    report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["audit", str(EXAMPLE / "inventory.yaml"), "-e", str(EXAMPLE / "evidence"), "-f", "json"])
    summary = json.loads(capsys.readouterr().out)["summary"]
    with open_page(report) as page:
        text = page.evaluate("document.body.innerText")
        failed = summary["by_status"]["FAIL"]
        assert f"FAIL: {failed} failed findings at or above 'low'" in text
        assert "Per plane" in text and "Failed findings by severity" in text
        assert "Trend over recorded runs" in text and "2 runs of" in text
        assert "Not evaluated, by missing evidence" in text
        assert "firmware_version, model" in text  # FW-002's missing evidence, grouped
        # The filter script ran: PASS findings start hidden, the count says what is shown.
        shown = int(page.evaluate("document.getElementById('shown-count').textContent"))
        hidden = page.evaluate("document.querySelectorAll('[data-finding][hidden]').length")
        passed = summary["by_status"]["PASS"]
        assert shown == summary["total"] - passed and hidden == passed
        # Unticking critical hides every critical finding.
        page.evaluate(
            f"(() => {{ const b = {CRITICAL_BOX};"
            " b.checked = false; b.dispatchEvent(new Event('change')); })()"
        )
        visible_critical = page.evaluate(
            "document.querySelectorAll('[data-finding][data-severity=critical]:not([hidden])').length"
        )
        assert visible_critical == 0
        shot = tmp_path / "report.png"
        page.evaluate(
            f"(() => {{ const b = {CRITICAL_BOX};"
            " b.checked = true; b.dispatchEvent(new Event('change'));"
            " document.querySelector('details.control').open = true; })()"
        )
        page.screenshot(shot)
        assert shot.stat().st_size > 10_000
        assert page.errors == []
    if os.environ.get("GPUFENCE_SCREENSHOT"):
        Path(os.environ["GPUFENCE_SCREENSHOT"]).write_bytes(shot.read_bytes())


HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def test_hostile_node_name_is_inert_in_a_browser(tmp_path: Path) -> None:
    # A BMC or an inventory can put anything in a name: the renderer must keep it text.
    finding = Finding(
        control="GPU-001",
        title="t",
        plane=Plane.GPU,
        severity=Severity.CRITICAL,
        status=Status.FAIL,
        resource=f"node/{HOSTILE}",
        message=f"model {HOSTILE}",
        evidence={"name": HOSTILE, "missing": {HOSTILE: HOSTILE}},
        remediation="r",
        references=("javascript:window.pwned=3",),
    )
    ne = finding.model_copy(update={"status": Status.NOT_EVALUATED, "control": "GPU-002"})
    result = AuditResult(findings=(finding, ne), controls=(), inputs=(HOSTILE,), tool_version="t")
    out = tmp_path / "r.html"
    out.write_text(render_html(result, summarize(result.findings, Severity.LOW)))
    with open_page(out) as page:
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.evaluate("document.querySelectorAll('img, a[href^=javascript]').length") == 0
        assert HOSTILE in page.evaluate("document.body.innerText")
        assert page.errors == []
