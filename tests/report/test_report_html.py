"""The HTML renderer: self-contained, escaped, every status and severity, grouping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from report_fixtures import make_finding

from gpufence.model.findings import AuditResult, Severity, Status, summarize
from gpufence.model.history import RunInfo
from gpufence.report.html import render_html

HOSTILE = "<script>alert(1)</script>"


def _html(result: AuditResult, history: tuple[RunInfo, ...] = ()) -> str:
    return render_html(result, summarize(result.findings, Severity.LOW), history)


def test_self_contained_no_external_assets(result: AuditResult) -> None:
    html = _html(result)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert not re.search(r"""\bsrc\s*=""", html)
    assert "url(" not in html and "@import" not in html
    # The only http(s) URLs are reference links a reader may click.
    for url in re.findall(r"https?://[^\s\"'<]+", html):
        assert f'href="{url}"' in html or url.startswith("http://www.w3.org")
    assert "default-src 'none'" in html


def test_hostile_text_is_escaped(result: AuditResult) -> None:
    bad = make_finding(
        "GPU-001", Status.FAIL, f"node/{HOSTILE}", message=HOSTILE, evidence={"x": HOSTILE}
    )
    html = _html(result.model_copy(update={"findings": (bad,)}))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the report's own script only


def test_every_status_and_plane_appears(result: AuditResult) -> None:
    findings = tuple(make_finding("GPU-002", s, f"node/{s.value}") for s in Status)
    html = _html(result.model_copy(update={"findings": findings}))
    for status in Status:
        assert f'data-status="{status.value}"' in html
        assert f'value="{status.value}"' in html  # a filter checkbox per status
    assert html.count('class="control"') == 1  # grouped per control


def test_not_evaluated_grouped_by_missing_evidence(result: AuditResult) -> None:
    findings = tuple(
        make_finding(
            "OOB-001",
            Status.NOT_EVALUATED,
            f"bmc/b{i}",
            evidence={"missing": {"tls": "no scan", "ipmi": "no scan"}},
        )
        for i in range(3)
    )
    html = _html(result.model_copy(update={"findings": findings}))
    assert '<b>ipmi, tls</b> <span class="count">(3 findings)</span>' in html


def test_trend_needs_two_runs(result: AuditResult) -> None:
    def run(i: int, fails: int) -> RunInfo:
        return RunInfo(
            id=i,
            started_at=datetime(2026, 1, i, tzinfo=UTC),
            duration_s=1,
            command="audit",
            target="inv.yaml",
            tool_version="t",
            policy_digest="p",
            verdict="fail",
            fail_on="low",
            counts={Status.FAIL: fails},
        )

    assert "<polyline" not in _html(result, (run(1, 3),))
    html = _html(result, (run(2, 1), run(1, 3)))
    assert html.count("<polyline") == 2 and "#1" in html and "#2" in html
