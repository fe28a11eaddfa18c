"""`gpufence k8s`: Kubernetes GPU-tenancy checks (issue 7)."""

from __future__ import annotations

import typer

from gpufence.cli._app import app

k8s_app = typer.Typer(help="Kubernetes GPU-tenancy checks (issue 7).", no_args_is_help=True)
app.add_typer(k8s_app, name="k8s")
