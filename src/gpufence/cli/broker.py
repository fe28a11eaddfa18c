"""`gpufence broker`: The attestation-gated key broker (issue 6)."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

broker_app = typer.Typer(help="The attestation-gated key broker (issue 6).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
