"""`gpufence plan`: isolation plan + generated artifacts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import InventoryArg, OutputOpt, TextJson, format_option
from gpufence.cli._output import emit
from gpufence.cli._progress import heartbeat
from gpufence.errors import InternalError
from gpufence.load.inventory import load_snapshot
from gpufence.plan import Strategy, place, verify_plan
from gpufence.plan.emit import render_artifacts, write_artifacts
from gpufence.plan.planned import PLAN_DECIDES

__all__ = ["app", "plan_command"]

app = sub_app("Decide each tenant's isolation, place all demand, write mig-parted/k8s configs.")


@app.command("plan")
def plan_command(
    inventory: InventoryArg,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Directory for the generated artifacts."),
    ],
    fmt: Annotated[TextJson, format_option("Summary format.")] = TextJson.text,
    output: OutputOpt = None,
    recommended: Annotated[
        bool,
        typer.Option(
            "--recommended",
            help="Place every tenant by its recommended mechanism, not the weakest acceptable.",
        ),
    ] = False,
    strategy: Annotated[
        Strategy, typer.Option(help="MIG packing: packed (default) or first-fit (baseline).")
    ] = Strategy.PACKED,
) -> None:
    """Decide each tenant's isolation, place all demand, write mig-parted/k8s configs.

    Exit 0 when every demand is placed, 1 when some is not (reported with the reason),
    2 for bad input (including a demand no pool could ever serve).
    """
    with heartbeat("plan"):
        snapshot = load_snapshot(inventory)
        plan = place(snapshot, recommended=recommended, strategy=strategy)
        everything = verify_plan(snapshot, plan, advisory=True)
    failures = [f for f in everything if f.evidence.get("advisory") is not True]
    ours = [f for f in failures if f.control in PLAN_DECIDES]
    if ours:
        # A plan must pass the audit it implies; anything else is a planner bug.
        listed = "; ".join(f"{f.control} {f.resource}: {f.message}" for f in ours[:5])
        raise InternalError(f"the planned cluster fails its own audit: {listed}")
    for finding in failures:
        sys.stderr.write(
            f"warning: the planned cluster still fails {finding.control} on {finding.resource} "
            f"(not decided by the plan): {finding.message}\n"
        )
    for finding in everything:
        if finding.evidence.get("advisory") is True:
            sys.stderr.write(
                f"note: advisory rule {finding.evidence.get('policy_rule')} not followed on "
                f"{finding.resource} ({finding.control}, low): {finding.message}; "
                "--recommended follows it where the silicon allows\n"
            )
    with heartbeat("plan: writing artifacts"):
        artifacts = render_artifacts(snapshot, plan, out)
        write_artifacts(out, artifacts)
    if fmt is TextJson.json:
        emit(json.dumps(artifacts.summary, indent=2) + "\n", output)
    else:
        emit(artifacts.summary_text, output)
    sys.stderr.write(
        f"wrote {len(artifacts.files)} files to {out}"
        + (f"; {len(plan.unplaced)} demand(s) not fully placed\n" if plan.unplaced else "\n")
    )
    raise typer.Exit(1 if plan.unplaced else 0)
