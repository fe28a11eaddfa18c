"""`gpufence broker`: The attestation-gated key broker: serve, audit log, secrets."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import JsonFlag, OutputOpt, TextJson, format_option, resolve_json
from gpufence.cli._output import emit
from gpufence.errors import InputError, redact_secrets

app = sub_app("The attestation-gated key broker: serve, audit log, secrets.")
audit_log_app = sub_app("The broker's keyed, hash-chained decision log.")
app.add_typer(audit_log_app, name="audit-log")
secret_app = sub_app("Secrets the broker releases (sealed at rest).")
app.add_typer(secret_app, name="secret")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", metavar="FILE", help="Broker configuration YAML.")
]
LogPath = Annotated[
    str | None,
    typer.Argument(
        metavar="DATABASE",
        help="SQLite file or postgresql:// URL holding the log (default: the config's "
        "database); an older separate audit.db is accepted too.",
    ),
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
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Override broker.workers.", min=1)
    ] = None,
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
    processes = workers if workers is not None else loaded.config.workers
    es384 = loaded.config.token_alg == "es384"  # noqa: S105 - an algorithm name, not a secret
    if processes > 1 and es384 and loaded.config.signing_key is None:
        raise InputError(
            f"{processes} workers with es384 tokens need broker.signing_key: tokens issued by "
            "one process are verified by another"
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
        f"gpufence broker: {len(loaded.policies)} policies "
        f"({', '.join(f'{p.id} v{p.version}' for p in loaded.policies.values())}), "
        f"{len(loaded.config.resources)} declared resources, config {loaded.digest()[:16]}, "
        f"{len(rims)} RIMs, audience {loaded.config.audience}\n"
    )
    try:
        serve(
            service,
            bind_host,
            port if port is not None else listen.port,
            tls_cert=str(loaded.path(listen.tls_cert)) if listen.tls_cert else None,
            tls_key=str(loaded.path(listen.tls_key)) if listen.tls_key else None,
            workers=processes,
        )
    finally:
        service.close()


def _log_and_key(config: Path, path: str | Path | None) -> tuple[Path | str, bytes, Any]:
    """The database holding the audit log (argument or config: an SQLite path or a PostgreSQL
    URL), its chain key and the broker's token signer."""
    from gpufence.attest.broker._url import is_database_url
    from gpufence.attest.broker.audit_log import audit_key
    from gpufence.attest.broker.config import load_broker_config
    from gpufence.attest.broker.crypto import TokenSigner, load_kek

    loaded = load_broker_config(config)
    kek_config = loaded.config.kek
    kek = load_kek(
        kek_config.source,
        path=loaded.path(kek_config.path) if kek_config.path else None,
        env=kek_config.env,
        options=kek_config.options,
    )
    if loaded.config.signing_key is None:
        signer = None
    else:
        signer = TokenSigner.load(loaded.path(loaded.config.signing_key))
    if path is None:
        target = loaded.database()
    elif isinstance(path, str) and is_database_url(path):
        target = path
    else:
        target = Path(path)
    return target, audit_key(kek), signer


def _verify(target: Path | str, key: bytes, anchor: tuple[int, str] | None) -> Any:
    """verify_audit_log with its errors as input errors (the target's password redacted)."""
    import sqlite3

    from gpufence.attest.broker.audit_log import AuditLogError, verify_audit_log

    shown = redact_secrets(str(target))
    try:
        return verify_audit_log(target, key, head=anchor)
    except FileNotFoundError:
        raise InputError(f"{shown}: no such audit log") from None
    except (AuditLogError, sqlite3.DatabaseError) as exc:
        raise InputError(f"{shown}: not a gpufence audit log for this broker: {exc}") from None


def _need_signer(signer: Any, config: Path) -> Any:
    if signer is None:
        raise InputError(
            f"{config}: broker.signing_key is not set, so no head can be signed or checked",
            hint="a head is signed with the broker's persistent ES384 key; set signing_key",
        )
    return signer


@audit_log_app.command("verify")
def audit_log_verify(
    config: ConfigOption,
    path: LogPath = None,
    head: Annotated[
        Path | None,
        typer.Option(
            "--head",
            metavar="FILE",
            help="A head exported by `audit-log head`: detects truncation.",
        ),
    ] = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the keyed chain (and a head); exit 0 intact, 1 tampered, 2 bad input."""
    from gpufence.attest.broker.audit_log import AuditLogError, read_head

    target, key, signer = _log_and_key(config, path)
    anchor = None
    if head is not None:
        try:
            data = head.read_bytes()
        except OSError as exc:
            raise InputError(f"{head}: cannot read: {exc.strerror}") from None
        try:
            anchor = read_head(data, _need_signer(signer, config))
        except AuditLogError as exc:
            raise InputError(f"{head}: {exc}") from None
    result = _verify(target, key, anchor)
    if resolve_json(as_json, fmt) is TextJson.json:
        document = {
            "ok": result.ok,
            "entries": result.entries,
            "head": result.head,
            "anchored_entries": result.anchored,
            "first_bad_seq": result.first_bad_seq,
            "detail": result.detail,
        }
        emit(json.dumps(document) + "\n", output)
    else:
        state = "OK" if result.ok else "TAMPERED"
        text = f"{state}: {result.detail}\nhead: {result.head}\n"
        if anchor is None and result.ok:
            text += (
                "note: without --head, removal of the newest (or all) entries is not detectable\n"
            )
        emit(text, output)
    raise typer.Exit(0 if result.ok else 1)


@audit_log_app.command("head")
def audit_log_head(
    config: ConfigOption,
    path: LogPath = None,
    output: OutputOpt = None,
) -> None:
    """Export the signed head (entry count + hash) of an intact log, to anchor elsewhere."""
    from gpufence.attest.broker.audit_log import sign_head

    target, key, signer = _log_and_key(config, path)
    signer = _need_signer(signer, config)
    result = _verify(target, key, None)
    if not result.ok:
        sys.stderr.write(f"TAMPERED: {result.detail}; no head is signed for a broken chain\n")
        raise typer.Exit(1)
    text = json.dumps(sign_head(signer, result.entries, result.head, time.time()), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror}") from None
        sys.stderr.write(f"wrote the head of {result.entries} entries to {output}\n")


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
    loaded = load_broker_config(config)
    if loaded.rule(secret_id) is None:
        raise InputError(
            f"{secret_id!r} is not declared under broker.resources in {config}",
            hint="declare it with its owner tenant and policy first; undeclared secrets are "
            "never released",
        )
    from gpufence.attest.broker.database import AuditEntry

    service = BrokerService.from_config(loaded)
    try:
        now = time.time()
        entry = AuditEntry("secret.put", "stored", now, detail={"resource": secret_id})
        service.db.put_secret(secret_id, data, entry)
    finally:
        service.close()
    sys.stderr.write(f"sealed {len(data)} bytes as {secret_id!r} (KEK {service.db.kek.name})\n")
