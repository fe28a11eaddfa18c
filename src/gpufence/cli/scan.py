"""`gpufence scan`: Live scans (issue 4): scan bmc."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

scan_app = typer.Typer(help="Live scans (issue 4): scan bmc.", no_args_is_help=True)
app.add_typer(scan_app, name="scan")
