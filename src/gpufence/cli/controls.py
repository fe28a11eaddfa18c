"""`gpufence controls`: list the controls and their metadata."""

from __future__ import annotations

import io
import json
from enum import StrEnum
from typing import Annotated

from rich.console import Console
from rich.table import Table

from gpufence.cli._app import sub_app
from gpufence.cli._options import OutputOpt, format_option
from gpufence.cli._output import emit
from gpufence.controls import ALL_CONTROLS
from gpufence.controls.reference import controls_markdown

__all__ = ["app", "controls_command"]

app = sub_app("List every control with its plane, severity and title.")


class ControlsFormat(StrEnum):
    """Formats of the control list."""

    text = "text"
    json = "json"
    markdown = "markdown"


@app.command("controls")
def controls_command(
    fmt: Annotated[ControlsFormat, format_option()] = ControlsFormat.text,
    output: OutputOpt = None,
) -> None:
    """List every control with its plane, severity and title."""
    if fmt is ControlsFormat.markdown:
        emit(controls_markdown(ALL_CONTROLS), output)
    elif fmt is ControlsFormat.json:
        rows = [c.meta.info().model_dump(mode="json") for c in ALL_CONTROLS]
        emit(json.dumps(rows, indent=2) + "\n", output)
    else:
        table = Table("ID", "Plane", "Severity", "Title")
        for c in ALL_CONTROLS:
            table.add_row(c.id, c.meta.plane.label, c.meta.severity.value, c.meta.title)
        if output is None:
            Console(width=max(120, Console().width)).print(table)
            return
        buffer = io.StringIO()
        Console(file=buffer, width=120).print(table)
        emit(buffer.getvalue(), output)
