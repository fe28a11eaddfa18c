"""Command-line interface. Thin: parse arguments, call the library, render, set the exit code.

Command modules are imported when their command runs (see :mod:`gpufence.cli._app`), so that
``gpufence --help`` and ``gpufence --version`` start fast.

Errors are caught once, in :func:`main`: a :class:`~gpufence.errors.GpufenceError` prints its
diagnostics and exits with its code (2 for bad input); anything else is a bug (exit 3, traceback
only with ``--debug``).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from gpufence import __version__
from gpufence.cli._app import app
from gpufence.errors import GpufenceError, redact_secrets

__all__ = ["app", "main"]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"gpufence {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Plan, audit and attest tenant isolation on multi-tenant GPU clusters."""


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # Standalone mode: typer prints usage errors itself and exits 2; we only map our errors.
        app(args=args, prog_name="gpufence")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except GpufenceError as exc:
        sys.stderr.write(f"gpufence: error: {redact_secrets(exc.diagnostics())}\n")
        if debug:
            traceback.print_exc()
        return exc.exit_code
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            return _internal_error(exc, debug)
        sys.stderr.write(
            f"gpufence: error: this command needs {exc.name!r}, which this installation lacks; "
            f"install the extra: pip install 'gpufence[{extra}]'\n"
        )
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit 3
        return _internal_error(exc, debug)
    return 0


# Optional dependencies by the extra that installs them (pyproject.toml).
_EXTRA_OF = {
    "pynvml": "collector",
    "signxml": "attest",
    "lxml": "attest",
    "uvicorn": "broker",
    "kubernetes": "k8s",
    "regopy": "rego",
    "sqlalchemy": "store",
    "alembic": "store",
    "psycopg": "store",
    "prometheus_client": "exporter",
}


def _internal_error(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc)
    else:
        sys.stderr.write(
            f"gpufence: internal error ({type(exc).__name__}); this is a bug. "
            "Re-run with --debug for a traceback.\n"
        )
    return 3
