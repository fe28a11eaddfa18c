"""`gpufence controls`: list the controls and their metadata."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gpufence.cli._app import app
from gpufence.controls import ALL_CONTROLS
from gpufence.controls.reference import controls_markdown


class ControlsFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command("controls")
def controls_command(
    fmt: Annotated[ControlsFormat, typer.Option("--format", "-f")] = ControlsFormat.text,
) -> None:
    """List every control with its plane, severity and title."""
    if fmt is ControlsFormat.markdown:
        sys.stdout.write(controls_markdown(ALL_CONTROLS))
    elif fmt is ControlsFormat.json:
        rows = [c.meta.info().model_dump(mode="json") for c in ALL_CONTROLS]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        table = Table("ID", "Plane", "Severity", "Title")
        for c in ALL_CONTROLS:
            table.add_row(c.id, c.meta.plane.label, c.meta.severity.value, c.meta.title)
        Console(width=max(120, Console().width)).print(table)
