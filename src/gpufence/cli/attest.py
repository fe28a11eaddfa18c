"""`gpufence attest`: Verify NVIDIA GPU/NVSwitch attestation evidence (issue 6)."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

attest_app = typer.Typer(
    help="Verify NVIDIA GPU/NVSwitch attestation evidence (issue 6).", no_args_is_help=True
)
app.add_typer(attest_app, name="attest")
