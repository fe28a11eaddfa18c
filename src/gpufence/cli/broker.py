"""`gpufence broker`: The attestation-gated key broker: serve, audit log, secrets."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import JsonFlag, OutputOpt, TextJson, format_option, resolve_json
from gpufence.cli._output import emit
from gpufence.errors import InputError

app = sub_app("The attestation-gated key broker: serve, audit log, secrets.")
audit_log_app = sub_app("The broker's hash-chained decision log.")
app.add_typer(audit_log_app, name="audit-log")
secret_app = sub_app("Secrets the broker releases (sealed at rest).")
app.add_typer(secret_app, name="secret")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", metavar="FILE", help="Broker configuration YAML.")
]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_command(
    config: ConfigOption,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Override listen.host.")] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="Override listen.port.")] = None,
) -> None:
    """Serve /challenge, /attest and /resource/{id} until interrupted."""
    from gpufence.attest.broker.app import serve
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.service import BrokerService

    loaded = load_broker_config(config)
    listen = loaded.config.listen
    bind_host = host or listen.host
    if not _loopback(bind_host) and not (listen.tls_cert and listen.tls_key):
        raise InputError(
            f"refusing to serve on {bind_host} without TLS",
            hint="set broker.listen.tls_cert and tls_key, or serve on 127.0.0.1 behind TLS",
        )
    service = BrokerService.from_config(loaded)
    rims = service._rims(time.time())
    for check in rims:
        if not (check.signature_ok and check.chain.ok):
            sys.stderr.write(
                f"warning: RIM {check.source} is not usable: "
                f"{check.signature_detail}; {check.chain.detail}\n"
            )
    sys.stderr.write(
        f"gpufence broker: policy {loaded.policy.id} v{loaded.policy.version} "
        f"({loaded.policy.digest()[:16]}), {len(rims)} RIMs, audience {loaded.config.audience}\n"
    )
    try:
        serve(
            service,
            bind_host,
            port if port is not None else listen.port,
            tls_cert=str(loaded.path(listen.tls_cert)) if listen.tls_cert else None,
            tls_key=str(loaded.path(listen.tls_key)) if listen.tls_key else None,
        )
    finally:
        service.close()


@audit_log_app.command("verify")
def audit_log_verify(
    path: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="audit.db (default: the config's audit_log)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", metavar="FILE", help="Broker configuration YAML."),
    ] = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the hash chain; exit 0 intact, 1 tampered, 2 unreadable."""
    from gpufence.attest.broker.audit_log import verify_audit_log
    from gpufence.attest.broker.config import load_broker_config

    if path is None:
        if config is None:
            raise InputError("give the audit log path or --config")
        loaded = load_broker_config(config)
        path = loaded.path(loaded.config.audit_log)
    try:
        result = verify_audit_log(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such audit log") from None
    except Exception as exc:  # noqa: BLE001 - sqlite3.DatabaseError and friends: not an audit log
        raise InputError(f"{path}: not a gpufence audit log: {exc}") from None
    if resolve_json(as_json, fmt) is TextJson.json:
        emit(
            json.dumps(
                {
                    "ok": result.ok,
                    "entries": result.entries,
                    "head": result.head,
                    "first_bad_seq": result.first_bad_seq,
                    "detail": result.detail,
                }
            )
            + "\n",
            output,
        )
    else:
        state = "OK" if result.ok else "TAMPERED"
        emit(f"{state}: {result.detail}\nhead: {result.head}\n", output)
    raise typer.Exit(0 if result.ok else 1)


@secret_app.command("put")
def secret_put(
    config: ConfigOption,
    secret_id: Annotated[
        str, typer.Argument(metavar="SECRET_ID", help="Resource id, e.g. model-weights-key.")
    ],
    from_file: Annotated[
        Path,
        typer.Option("--from-file", metavar="FILE", help="File holding the secret bytes."),
    ],
) -> None:
    """Seal a secret under the KEK into the broker database (never printed)."""
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.service import BrokerService

    try:
        data = from_file.read_bytes()
    except OSError as exc:
        raise InputError(f"{from_file}: cannot read: {exc.strerror}") from None
    service = BrokerService.from_config(load_broker_config(config))
    try:
        service.store.put_secret(secret_id, data, time.time())
        service.audit.append("secret.put", "stored", ts=time.time(), detail={"resource": secret_id})
    finally:
        service.close()
    sys.stderr.write(f"sealed {len(data)} bytes as {secret_id!r} (KEK {service.store.kek.name})\n")
