"""`gpufence mig`: MIG geometry: is a set of profiles valid on a GPU, and where."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from gpufence.catalog import load_catalog
from gpufence.cli._app import app
from gpufence.plan.mig import check_geometry, parse_profile_list, resolve_profiles

mig_app = typer.Typer(
    help="MIG geometry: is a set of profiles valid on a GPU, and where.", no_args_is_help=True
)
app.add_typer(mig_app, name="mig")


@mig_app.command("check")
def check_command(
    model: Annotated[
        str, typer.Argument(help="GPU model: a catalog name, alias or PCI device ID (0x2330).")
    ],
    profiles: Annotated[
        str,
        typer.Argument(
            help="Comma-separated MIG profiles for one GPU, repeated or with a count: "
            "3g.40gb,2g.20gb,1g.10gb*2."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"valid", "placements", "reason"}.')
    ] = False,
) -> None:
    """Is this MIG geometry valid on one GPU of MODEL? Exit 0 valid, 1 invalid, 2 bad input."""
    gpu = load_catalog().lookup(model)
    result = check_geometry(gpu, resolve_profiles(gpu, parse_profile_list(profiles)))
    if as_json:
        sys.stdout.write(json.dumps(result.public_dict(), indent=2) + "\n")
    else:
        verdict = "valid" if result.valid else "INVALID"
        lines = [f"{gpu.key}: {verdict}: {result.reason}"]
        lines += [f"  {p.profile:<16} start {p.start}  size {p.size}" for p in result.placements]
        sys.stdout.write("\n".join(lines) + "\n")
    raise typer.Exit(0 if result.valid else 1)
