"""`gpufence catalog`: the silicon capability table, or one GPU."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from gpufence.catalog import load_catalog
from gpufence.catalog.render import catalog_table
from gpufence.cli._app import app


@app.command("catalog")
def catalog_command(
    model: Annotated[
        str | None,
        typer.Argument(help="A model name, alias or PCI device ID (e.g. 'h100', 0x2330)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the GPU capability table, or one model's row."""
    catalog = load_catalog()
    if model is not None:
        row = catalog.lookup(model)
        if as_json:
            sys.stdout.write(json.dumps(row.public_dict(), indent=2) + "\n")
            return
        rows = [row]
    else:
        if as_json:
            sys.stdout.write(json.dumps([m.public_dict() for m in catalog.models], indent=2) + "\n")
            return
        rows = list(catalog.models)
    console = Console(soft_wrap=False, width=max(140, Console().width))
    console.print(catalog_table(catalog, rows))
