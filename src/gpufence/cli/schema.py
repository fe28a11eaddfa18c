"""`gpufence schema`: JSON Schemas of gpufence's file formats."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import OutputOpt
from gpufence.cli._output import emit
from gpufence.model.schemas import schema_for

__all__ = ["app", "schema_command"]

app = sub_app("Print the JSON Schema of the inventory, findings or evidence format.")


class SchemaName(StrEnum):
    """The file formats that have a schema."""

    inventory = "inventory"
    findings = "findings"
    evidence = "evidence"


@app.command("schema")
def schema_command(
    name: Annotated[SchemaName, typer.Argument(help="Which format.")] = SchemaName.inventory,
    output: OutputOpt = None,
) -> None:
    """Print the JSON Schema of the inventory, findings or evidence format."""
    emit(json.dumps(schema_for(name.value), indent=2) + "\n", output)
