"""`gpufence policy show`: the tier rules shared by plan and audit, with their sources."""

from __future__ import annotations

import json
import textwrap
from typing import Annotated

from gpufence.cli._app import sub_app
from gpufence.cli._options import OutputOpt, TextJson, format_option
from gpufence.cli._output import emit
from gpufence.policy import Policy, load_policy

__all__ = ["app", "policy_text", "show_command"]

app = sub_app("The isolation policy: tier rules shared by `plan` and `audit`.")


@app.callback()
def _group() -> None:
    """The isolation policy: tier rules shared by `plan` and `audit`."""


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


@app.command("show")
def show_command(
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
) -> None:
    """Print every tier rule: id, text, rationale, the controls that judge it, sources."""
    policy = load_policy()
    if fmt is TextJson.json:
        emit(json.dumps(policy.model_dump(mode="json"), indent=2) + "\n", output)
    else:
        emit(policy_text(policy), output)
