"""`gpufence policy show`: the tier rules shared by plan and audit, with their sources."""

from __future__ import annotations

import json
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import app
from gpufence.cli._output import emit
from gpufence.policy import Policy, load_policy

policy_app = typer.Typer(
    help="The isolation policy: tier rules shared by `plan` and `audit`.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")


class PolicyFormat(StrEnum):
    text = "text"
    json = "json"


def policy_text(policy: Policy) -> str:
    """The rule set for people: each rule with its text, rationale, controls and sources."""
    out = [f"gpufence isolation policy {policy.version} (effective {policy.effective})", ""]
    for item in policy.rules:
        kind = " [advisory: low-severity finding]" if item.advisory else ""
        out.append(f"{item.id}{kind}")
        out += textwrap.wrap(item.text, 96, initial_indent="  ", subsequent_indent="  ")
        out += textwrap.wrap(
            f"why: {item.rationale}", 96, initial_indent="  ", subsequent_indent="    "
        )
        out.append(f"  judged by: {', '.join(item.controls)}")
        out += [f"  source: {url}" for url in item.sources]
        out.append("")
    return "\n".join(out)


@policy_app.command("show")
def show_command(
    fmt: Annotated[
        PolicyFormat, typer.Option("--format", "-f", help="text (default) or json.")
    ] = PolicyFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print every tier rule: id, text, rationale, the controls that judge it, sources."""
    policy = load_policy()
    if fmt is PolicyFormat.json:
        emit(json.dumps(policy.model_dump(mode="json"), indent=2) + "\n", output)
    else:
        emit(policy_text(policy), output)
