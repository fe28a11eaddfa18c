"""`gpufence collect`: Node-local collectors (issue 7): collect gpu."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

collect_app = typer.Typer(
    help="Node-local collectors (issue 7): collect gpu.", no_args_is_help=True
)
app.add_typer(collect_app, name="collect")
