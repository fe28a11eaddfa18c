"""`gpufence mig`: MIG geometry checks (issue 3)."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

mig_app = typer.Typer(help="MIG geometry checks (issue 3).", no_args_is_help=True)
app.add_typer(mig_app, name="mig")
