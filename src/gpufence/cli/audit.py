"""`gpufence audit`: evaluate every control over the inventory (and evidence)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
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
    warn_mutes,
)
from gpufence.cli._progress import heartbeat
from gpufence.load.evidence import EvidenceRules, parse_max_ages
from gpufence.model.context import DEFAULT_EXPORT_RULES_MAX_AGE_DAYS
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
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            metavar="DATE",
            help="Judge dated rules (export controls) as in force on this day (YYYY-MM-DD).",
        ),
    ] = None,
    kev: Annotated[
        Path | None,
        typer.Option(
            "--kev",
            metavar="FILE",
            dir_okay=False,
            help="CISA KEV catalog JSON file (offline) adding known-exploited flags to the "
            "vulnerability catalog's entries.",
        ),
    ] = None,
    export_rules_max_age: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="DAYS",
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
            metavar="[KIND=]AGE",
            help="Evidence older than this is not current: its facts are unknown "
            "(default 7d; units s m h d w). KIND=AGE sets one kind of subject, e.g. bmc=30d "
            "(repeatable).",
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
    with heartbeat("audit"):
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
    warn_mutes(run.expired_mutes, run.unused_mutes)
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
