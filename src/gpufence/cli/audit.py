"""`gpufence audit`: evaluate every control over the inventory (and evidence)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gpufence.audit import audit as run_audit
from gpufence.cli._app import sub_app
from gpufence.cli._options import (
    EvidenceOpt,
    FailOn,
    FailOnOpt,
    InventoryArg,
    MutelistOpt,
    OutputOpt,
    ShowPassOpt,
    format_option,
)
from gpufence.cli._output import report_findings, warn_mutes
from gpufence.cli._progress import heartbeat
from gpufence.report import OutputFormat

__all__ = ["app", "audit_command"]

app = sub_app("Evaluate every control over the inventory and evidence; print findings.")


@app.command("audit")
def audit_command(
    inventory: InventoryArg,
    evidence: EvidenceOpt = None,
    fail_on: FailOnOpt = FailOn.low,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.text,
    output: OutputOpt = None,
    show_pass: ShowPassOpt = False,
    mutelist: MutelistOpt = None,
) -> None:
    """Evaluate every control over the inventory and evidence; print findings."""
    with heartbeat("audit"):
        run = run_audit(inventory, evidence or [], mutelist=mutelist)
    for problem in run.skipped_evidence:
        sys.stderr.write(f"warning: skipped evidence: {problem.diagnostics()}\n")
    warn_mutes(run.expired_mutes, run.unused_mutes)
    raise typer.Exit(
        report_findings(run.result, fmt, output, fail_on.severity(), show_pass=show_pass)
    )
