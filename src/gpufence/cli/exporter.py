"""`gpufence exporter`: serve Prometheus metrics from a findings store (and a broker's log)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._output import DEFAULT_STORE
from gpufence.errors import InputError


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9108")
    return host.strip("[]") or "127.0.0.1", int(port)


app = sub_app(
    "Serve Prometheus metrics: findings by control/plane/severity/status, run times, evidence "
    "age, broker decisions."
)


@app.command("exporter")
def exporter_command(
    store: Annotated[
        str,
        typer.Option(
            "--store",
            envvar="GPUFENCE_STORE",
            metavar="STORE",
            help="Findings store: 'default', a file path, sqlite:///PATH or postgresql://...",
        ),
    ] = DEFAULT_STORE,
    listen: Annotated[
        str,
        typer.Option(
            metavar="HOST:PORT", help="HOST:PORT to serve /metrics on (loopback by default)."
        ),
    ] = "127.0.0.1:9108",
    broker_audit_log: Annotated[
        str | None,
        typer.Option(
            metavar="DATABASE",
            help="The key broker's database (SQLite file or postgresql:// URL) holding its "
            "decision log: attestation and release metrics.",
        ),
    ] = None,
    broker_config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="The broker's config: its audit log and the chain key (from the KEK), so that "
            "gpufence_broker_audit_log_intact is reported.",
        ),
    ] = None,
) -> None:
    """Serve Prometheus metrics: findings by control/plane/severity/status, run times, evidence
    age, broker decisions. Runs until interrupted."""
    host, port = _listen(listen)
    from gpufence.store.metrics import serve

    key = None
    target: Path | str | None = broker_audit_log
    if broker_audit_log is not None and "://" not in broker_audit_log:
        target = Path(broker_audit_log)
    if broker_config is not None:
        from gpufence.cli.broker import _log_and_key

        target, key, _signer = _log_and_key(broker_config, broker_audit_log)
    server, _thread, opened = serve(store, host, port, target, key)
    sys.stderr.write(f"serving metrics of {opened.url} on http://{host}:{port}/metrics\n")
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        opened.close()
