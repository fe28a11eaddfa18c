"""`gpufence audit`: evaluate every control over the inventory (and evidence)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gpufence.audit import audit as run_audit
from gpufence.cli._app import app
from gpufence.cli._output import (
    BaselineOption,
    HideMutedOption,
    QuietOption,
    SeverityOption,
    Started,
    StatusOption,
    StoreOption,
    Triage,
    report_findings,
)
from gpufence.model.findings import Severity
from gpufence.report import OutputFormat


class FailOn(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    never = "never"

    def severity(self) -> Severity | None:
        return None if self is FailOn.never else Severity(self.value)


@app.command("audit")
def audit_command(
    inventory: Annotated[Path, typer.Argument(help="Inventory YAML file.")],
    evidence: Annotated[
        list[Path] | None,
        typer.Option("--evidence", "-e", help="Evidence file or directory (repeatable)."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            help="Exit 1 when a FAIL at or above this severity exists ('never': report only)."
        ),
    ] = FailOn.low,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.text
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
    show_pass: Annotated[bool, typer.Option(help="List PASS findings in text output.")] = False,
    mutelist: Annotated[
        Path | None,
        typer.Option(help="YAML of accepted risks (control, resource, reason, expires)."),
    ] = None,
    store: StoreOption = None,
    baseline: BaselineOption = None,
    severity: SeverityOption = None,
    status: StatusOption = None,
    quiet: QuietOption = False,
    hide_muted: HideMutedOption = False,
) -> None:
    """Evaluate every control over the inventory and evidence; print findings."""
    started = Started.now()
    run = run_audit(inventory, evidence or [], mutelist=mutelist)
    for problem in run.skipped_evidence:
        sys.stderr.write(f"warning: skipped evidence: {problem.diagnostics()}\n")
    for mute in run.expired_mutes:
        sys.stderr.write(
            f"warning: mute {mute.control} {mute.resource} expired on {mute.expires}; "
            "it muted nothing\n"
        )
    for mute in run.unused_mutes:
        sys.stderr.write(f"warning: mute {mute.control} {mute.resource} matched no finding\n")
    triage = Triage(
        show_pass=show_pass,
        severity=severity,
        status=status,
        quiet=quiet,
        hide_muted=hide_muted,
        store=store,
        baseline=baseline,
        command="audit",
        started=started,
        evidence=run.snapshot.evidence,
    )
    raise typer.Exit(report_findings(run.result, fmt, output, fail_on.severity(), triage=triage))
