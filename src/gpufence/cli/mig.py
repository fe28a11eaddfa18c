"""`gpufence mig`: MIG geometry: is a set of profiles valid on a GPU, and where."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpufence.catalog import load_catalog
from gpufence.cli._app import sub_app
from gpufence.cli._options import JsonFlag, OutputOpt, TextJson, format_option, resolve_json
from gpufence.cli._output import emit
from gpufence.plan.mig import check_geometry, parse_profile_list, resolve_profiles

__all__ = ["app", "check_command"]

app = sub_app("MIG geometry: is a set of profiles valid on a GPU, and where.")


@app.callback()
def _group() -> None:
    """MIG geometry: is a set of profiles valid on a GPU, and where."""


@app.command("check")
def check_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="GPU model: a catalog name, alias or PCI device ID (0x2330)."
        ),
    ],
    profiles: Annotated[
        str,
        typer.Argument(
            metavar="PROFILES",
            help="Comma-separated MIG profiles for one GPU, repeated or with a count: "
            "3g.40gb,2g.20gb,1g.10gb*2.",
        ),
    ],
    fmt: Annotated[
        TextJson, format_option('Report format (json: {"valid", "placements", "reason"}).')
    ] = TextJson.text,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Is this MIG geometry valid on one GPU of MODEL? Exit 0 valid, 1 invalid, 2 bad input."""
    fmt = resolve_json(as_json, fmt)
    gpu = load_catalog().lookup(model)
    result = check_geometry(gpu, resolve_profiles(gpu, parse_profile_list(profiles)))
    if fmt is TextJson.json:
        emit(json.dumps(result.public_dict(), indent=2) + "\n", output)
    else:
        verdict = "valid" if result.valid else "INVALID"
        lines = [f"{gpu.key}: {verdict}: {result.reason}"]
        lines += [f"  {p.profile:<16} start {p.start}  size {p.size}" for p in result.placements]
        emit("\n".join(lines) + "\n", output)
    raise typer.Exit(0 if result.valid else 1)
