"""The text renderer: grouping, counts, ordering, PASS hiding, verdict wording, no escapes."""

from __future__ import annotations

import re

import pytest
from report_fixtures import NASTY_MESSAGE, make_finding

from gpufence.model.findings import AuditResult, Severity, Status, summarize
from gpufence.report.text import render_text

ANSI = re.compile(r"\x1b\[")


def _text(result: AuditResult, fail_on: Severity | None = Severity.LOW, **kw: bool) -> str:
    return render_text(result, summarize(result.findings, fail_on), **kw)


def _entry_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("  [")]


def test_groups_by_plane_in_enum_order_with_counts(result: AuditResult) -> None:
    out = _text(result)
    headings = [line for line in out.splitlines() if " — " in line and not line.startswith(" ")]
    assert headings == [
        "GPU isolation — 3 FAIL · 2 PASS · 1 NOT_EVALUATED",
        "Out-of-band (BMC) — 1 ERROR · 1 MUTED",
        "Kubernetes — 2 FAIL · 1 PASS",
    ]
    # CC has a control but no findings: no empty section.
    assert "Confidential computing" not in out


def test_entries_sorted_by_status_then_severity_then_control(result: AuditResult) -> None:
    entries = _entry_lines(_text(result))
    gpu = [e.split("  ")[1] for e in entries[:4]]  # "[SEV] CONTROL-ID" of each GPU entry
    assert gpu == ["[CRITICAL] GPU-001", "[HIGH] GPU-002", "[MEDIUM] GPU-003", "[HIGH] GPU-002"]
    assert entries[3].endswith("(NOT_EVALUATED)")
    # ERROR sorts before MUTED within a plane.
    assert "bmc-1" in entries[4] and "(ERROR)" in entries[4]
    assert "bmc-2" in entries[5] and "(MUTED: ticket SEC-42 & <waiver>)" in entries[5]


def test_entry_format_location_and_fix(result: AuditResult, base: object) -> None:
    lines = _text(result).splitlines()
    i = lines.index(f"  [CRITICAL] GPU-001  node-a/gpu0 — {NASTY_MESSAGE}")
    assert lines[i + 1].strip() == f"at {base}/examples/cluster.yaml:42:7"
    assert lines[i + 2].strip() == "fix: Remediate GPU-001"
    # A FAIL without location: fix directly under the entry.
    j = next(n for n, line in enumerate(lines) if "GPU-003  node-b/gpu0" in line)
    assert lines[j + 1].strip() == "fix: Remediate GPU-003"
    # Not a FAIL: no fix line; location still shown.
    k = next(n for n, line in enumerate(lines) if "OOB-001  bmc-2" in line)
    assert lines[k + 1].strip() == "at examples/relative.yaml:3"
    assert not any(line.strip().startswith("fix: Remediate OOB-001") for line in lines)


def test_pass_hidden_by_default_and_shown_on_request(result: AuditResult) -> None:
    hidden = _text(result)
    shown = _text(result, show_pass=True)
    assert "(PASS)" not in hidden
    assert "ns/tenant-c" not in hidden
    assert len(_entry_lines(shown)) == len(_entry_lines(hidden)) + 3
    pass_lines = [e for e in _entry_lines(shown) if e.endswith("(PASS)")]
    assert len(pass_lines) == 3
    # PASS entries are last within their plane.
    gpu = [e for e in _entry_lines(shown) if "GPU-" in e]
    assert [e.endswith("(PASS)") for e in gpu] == [False] * 4 + [True] * 2


def test_verdict_fail(result: AuditResult) -> None:
    last = _text(result).rstrip().splitlines()[-1]
    assert last == (
        "FAIL: 4 failed findings at or above 'low' (1 critical, 1 high, 1 medium, 1 low); "
        "1 failed below 'low'; 1 error; 1 not evaluated; 1 muted"
    )


def test_verdict_fail_at_high_threshold(result: AuditResult) -> None:
    last = _text(result, Severity.HIGH).rstrip().splitlines()[-1]
    assert last.startswith("FAIL: 2 failed findings at or above 'high' (1 critical, 1 high); ")
    assert "3 failed below 'high'" in last


def test_verdict_incomplete_lists_the_unevaluated_controls(result: AuditResult) -> None:
    passing = result.model_copy(
        update={"findings": tuple(f for f in result.findings if f.status is not Status.FAIL)}
    )
    last = _text(passing).rstrip().splitlines()[-1]
    assert last == (
        "INCOMPLETE: nothing at or above 'low' failed, but 2 controls at or above 'low' could "
        "not be evaluated (GPU-002, OOB-001); 1 error; 1 not evaluated; 1 muted"
    )


def test_verdict_pass_only_when_nothing_gating_is_unseen(result: AuditResult) -> None:
    seen = result.model_copy(
        update={
            "findings": (
                *(f for f in result.findings if f.status in (Status.PASS, Status.MUTED)),
                make_finding("K8S-002", Status.NOT_EVALUATED, "ns/x"),  # info: below 'low'
            )
        }
    )
    last = _text(seen).rstrip().splitlines()[-1]
    assert last == "PASS: nothing at or above 'low' failed; 1 not evaluated; 1 muted"


def test_not_applicable_is_one_line_per_reason_and_counted() -> None:
    findings = tuple(
        make_finding(control, Status.NOT_APPLICABLE, "cluster")
        for control in ("K8S-001", "K8S-002")
    )
    findings = tuple(
        f.model_copy(update={"message": "Kubernetes is out of scope: bare-metal rentals"})
        for f in findings
    )
    out = _text(AuditResult(findings=findings, controls=(), tool_version="1"))
    lines = [line for line in out.splitlines() if "not applicable" in line]
    assert lines[0].strip().startswith("2 not applicable (K8S-001, K8S-002)")
    assert "bare-metal rentals" in lines[0] and "(NOT_APPLICABLE)" in lines[0]
    assert out.rstrip().splitlines()[-1].endswith("2 not applicable (out of scope)")


def test_verdict_pass_with_failures_below_threshold(result: AuditResult) -> None:
    only_info = result.model_copy(
        update={"findings": (make_finding("K8S-002", Status.FAIL, "ns/x"),)}
    )
    last = _text(only_info).rstrip().splitlines()[-1]
    assert last == "PASS: nothing at or above 'low' failed; 1 failed below 'low'"


def test_verdict_never_is_report_only(result: AuditResult) -> None:
    last = _text(result, None).rstrip().splitlines()[-1]
    assert last.startswith("PASS (report only: fail-on 'never'): 5 failed findings ")
    assert "(1 critical, 1 high, 1 medium, 1 low, 1 info)" in last


def test_singular_wording() -> None:
    one = AuditResult(
        findings=(make_finding("CC-001", Status.FAIL, "vm-1"),), controls=(), tool_version="1"
    )
    out = _text(one)
    assert "FAIL: 1 failed finding at or above 'low' (1 critical)" in out
    assert "1 finding" in out.splitlines()[0]


def test_no_findings() -> None:
    empty = AuditResult(findings=(), controls=(), tool_version="1")
    out = _text(empty)
    assert "No findings." in out
    assert out.rstrip().endswith("PASS: nothing at or above 'low' failed")


def test_plain_when_color_false_even_if_env_forces(
    result: AuditResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert not ANSI.search(_text(result))
    assert ANSI.search(_text(result, color=True))


def test_markup_and_control_characters_are_inert(result: AuditResult) -> None:
    evil = make_finding(
        "GPU-003", Status.FAIL, "node\x1b[31m-x", message="[bold]hi[/bold] :smile:\nsecond"
    )
    out = _text(AuditResult(findings=(evil,), controls=(), tool_version="1"))
    assert "\x1b" not in out
    assert "node\\x1b[31m-x — [bold]hi[/bold] :smile:\\nsecond" in out


def test_many_not_evaluated_of_one_control_collapse() -> None:
    from gpufence.model.findings import AuditResult, Finding, Plane, Severity, Status, summarize
    from gpufence.report.text import render_text

    findings = tuple(
        Finding(
            control="OOB-009",
            title="A title for tests",
            plane=Plane.OOB,
            severity=Severity.HIGH,
            status=Status.NOT_EVALUATED,
            resource=f"bmc/b{i}",
            message=f"no scan evidence for bmc/b{i}",
            remediation="scan it",
        )
        for i in range(5)
    )
    result = AuditResult(findings=findings, controls=(), inputs=("inv.yaml",), tool_version="t")
    text = render_text(result, summarize(findings, Severity.LOW))
    entries = [line for line in text.splitlines() if "OOB-009" in line and line.startswith("  [")]
    assert len(entries) == 1
    assert text.rstrip().splitlines()[-1].startswith("INCOMPLETE")
    assert "5 resources (bmc/b0, bmc/b1, bmc/b2, +2 more)" in entries[0]
    assert "5 NOT_EVALUATED" in text


def test_options_filter_listing_not_counts(result: AuditResult) -> None:
    from gpufence.report.text import TextOptions

    summary = summarize(result.findings, Severity.LOW)
    full = render_text(result, summary)
    muted = render_text(result, summary, options=TextOptions(hide_muted=True))
    assert "(MUTED" in full and "(MUTED" not in muted
    # Headings and verdict still count the muted finding.
    assert "1 ERROR · 1 MUTED" in muted
    assert muted.rstrip().splitlines()[-1] == full.rstrip().splitlines()[-1]
    assert "listing " in muted and "listing " not in full
    crit = render_text(
        result, summary, options=TextOptions(severities=frozenset({Severity.CRITICAL}))
    )
    assert {line.split("  ")[1].split()[0] for line in _entry_lines(crit)} == {"[CRITICAL]"}


def test_quiet_lists_only_failures_and_verdict(result: AuditResult) -> None:
    from gpufence.report.text import TextOptions

    summary = summarize(result.findings, Severity.LOW)
    out = render_text(result, summary, options=TextOptions(quiet=True))
    entries = _entry_lines(out)
    assert entries and all("(NOT_EVALUATED)" not in e and "(MUTED" not in e for e in entries)
    assert "Per control" not in out and "9.9.9" not in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL:")


def test_per_control_table_counts_every_status(result: AuditResult) -> None:
    out = _text(result)
    table = out[out.index("Per control") : out.rindex("\n\n")]
    header = table.splitlines()[1].split()
    # Columns: only statuses that occur among controls that did not all pass, in enum order.
    present = [s.value for s in Status if s.value in header]
    assert header[:2] == ["Control", "Severity"] and header[2:-1] == present
    row = next(line for line in table.splitlines() if line.startswith("GPU-001"))
    assert row.split()[:3] == ["GPU-001", "critical", "1"]


def test_every_status_member_renders(result: AuditResult) -> None:
    # Renderers iterate the enum: any status (today's or one added later) renders.
    from report_fixtures import make_finding

    findings = tuple(make_finding("GPU-002", s, f"node/{s.value}") for s in Status)
    res = result.model_copy(update={"findings": findings})
    out = render_text(res, summarize(findings, Severity.LOW), show_pass=True)
    for status in Status:
        assert f"node/{status.value}" in out
