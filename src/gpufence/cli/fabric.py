"""`gpufence fabric`: Fabric segmentation: partitions.conf linter, reachability (issue 5)."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

fabric_app = typer.Typer(
    help="Fabric segmentation: partitions.conf linter, reachability (issue 5).",
    no_args_is_help=True,
)
app.add_typer(fabric_app, name="fabric")
