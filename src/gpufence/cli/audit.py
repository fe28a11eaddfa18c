"""`gpufence audit`: evaluate every control over the inventory (and evidence)."""

from __future__ import annotations

import datetime as dt
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
from gpufence.load.evidence import EvidenceRules, parse_max_ages
from gpufence.model.context import DEFAULT_EXPORT_RULES_MAX_AGE_DAYS
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
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Judge dated rules (export controls) as in force on this day (YYYY-MM-DD).",
        ),
    ] = None,
    kev: Annotated[
        Path | None,
        typer.Option(
            help="CISA KEV catalog JSON file (offline) adding known-exploited flags to the "
            "vulnerability catalog's entries."
        ),
    ] = None,
    export_rules_max_age: Annotated[
        int,
        typer.Option(
            min=0,
            help="Days after its review date the export rule set is trusted; older: NOT_EVALUATED.",
        ),
    ] = DEFAULT_EXPORT_RULES_MAX_AGE_DAYS,
    skip_bad_evidence: Annotated[
        bool,
        typer.Option(
            help="Report a malformed or rejected evidence file as an ERROR finding on its "
            "subject instead of stopping with exit 2."
        ),
    ] = False,
    max_evidence_age: Annotated[
        list[str] | None,
        typer.Option(
            help="Evidence older than this is not current: its facts are unknown "
            "(default 7d; units s m h d w). KIND=AGE sets one kind of subject, e.g. bmc=30d "
            "(repeatable)."
        ),
    ] = None,
    require_evidence: Annotated[
        bool,
        typer.Option(
            help="Exit 1 when the verdict is INCOMPLETE (controls at or above --fail-on "
            "could not be evaluated), for CI gates."
        ),
    ] = False,
    store: StoreOption = None,
    baseline: BaselineOption = None,
    severity: SeverityOption = None,
    status: StatusOption = None,
    quiet: QuietOption = False,
    hide_muted: HideMutedOption = False,
) -> None:
    """Evaluate every control over the inventory and evidence; print findings."""
    started = Started.now()
    default_age, by_kind = parse_max_ages(max_evidence_age or [])
    rules = EvidenceRules(max_age=default_age, max_age_by_kind=by_kind, skip_bad=skip_bad_evidence)
    run = run_audit(
        inventory,
        evidence or [],
        mutelist=mutelist,
        as_of=as_of.date() if as_of is not None else None,
        kev=kev,
        export_rules_max_age_days=export_rules_max_age,
        rules=rules,
    )
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
        require_evidence=require_evidence,
    )
    raise typer.Exit(report_findings(run.result, fmt, output, fail_on.severity(), triage=triage))
