"""HTTP surface of the key broker (plain ASGI), its limits, and running it under uvicorn.

Every answer other than a success is a JSON ``{"error": CODE, "detail": ...}`` with a 4xx
status: refusals from the service, ``BAD_REQUEST`` for anything that does not validate,
``BODY_TOO_LARGE`` (413) past ``limits.max_body_bytes`` (read no further), ``RATE_LIMITED``
(429, ``Retry-After``) past ``limits.rate_per_s``/``burst`` per client address, and
``NOT_FOUND``/``METHOD_NOT_ALLOWED`` for other routes. A 500 is a bug.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from gpufence.attest.broker.config import Limits
from gpufence.attest.broker.database import DatabaseUnavailable
from gpufence.attest.broker.service import BrokerService, Refusal
from gpufence.errors import InputError

__all__ = ["BrokerApp", "LimitsMiddleware", "create_app", "serve"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_CLIENTS = 65536


class AttestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nonce: str = Field(max_length=256, description="The nonce /challenge returned (base64url).")
    public_key: str = Field(
        max_length=4096, description="The requester's ephemeral EC P-384 public key (PEM)."
    )
    evidence: list[dict[str, JsonValue]] = Field(
        max_length=256,
        description="NVIDIA serialized evidence: [{arch, nonce, evidence, certificate}, ...].",
    )
    resources: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=256,
        description="Resources wanted (default: every one the evidence satisfies).",
    )
    tenant: str | None = Field(
        default=None, max_length=256, description="Only this tenant's resources."
    )
    cvm: dict[str, JsonValue] | None = Field(
        default=None, description="CPU TEE evidence (SEV-SNP / TDX) for composite attestation."
    )


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class LimitsMiddleware:
    """Per-client token bucket, then a bounded body read (buffered, replayed to the app).

    Pure ASGI so that nothing past the limit is read or parsed. The buckets live in this
    process: with N workers a client gets up to N times the rate (documented).
    """

    def __init__(self, app: ASGIApp, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.limits = limits
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _allow(self, client: str) -> float:
        """0 when allowed, else the seconds until a token is back."""
        now = self.clock()
        rate, burst = self.limits.rate_per_s, float(self.limits.burst)
        tokens, last = self._buckets.pop(client, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > _MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self._allow(str(client))
        if wait:
            await _send_json(
                send,
                429,
                {"error": "RATE_LIMITED", "detail": f"over {self.limits.rate_per_s:g} requests/s"},
                [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
            )
            return
        limit = self.limits.max_body_bytes
        too_large = {"error": "BODY_TOO_LARGE", "detail": f"request body over {limit} bytes"}
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _send_json(send, 413, too_large, [(b"connection", b"close")])
                    return
            except ValueError:
                await _send_json(
                    send, 400, {"error": "BAD_REQUEST", "detail": "bad Content-Length"}, []
                )
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_json(send, 413, too_large, [(b"connection", b"close")])
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _validation_detail(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return "invalid request"
    where = ".".join(str(p) for p in errors[0]["loc"])
    return f"{where}: {errors[0]['msg']}" if where else errors[0]["msg"]


class BrokerApp:
    """The broker's four routes as a plain ASGI application.

    No web framework in the request path: a release is two requests, and the routing,
    dependency injection and response encoding of a framework cost more CPU per request than
    the JSON parsing and validation that matter (the body arrives already bounded and buffered
    by :class:`LimitsMiddleware`; ``AttestRequest.model_validate_json`` parses and validates it
    in one pass).
    """

    def __init__(self, service: BrokerService) -> None:
        self.service = service
        self.max_devices = service.loaded.config.limits.max_devices

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, body = await self._route(scope, receive)
        except Refusal as exc:
            status, body = exc.status, {"error": exc.code, "detail": exc.detail}
        except DatabaseUnavailable as exc:
            # Nothing was committed: the client may retry. The reason stays in the server's log.
            sys.stderr.write(f"gpufence broker: {exc}\n")
            status = 503
            body = {
                "error": "DATABASE_UNAVAILABLE",
                "detail": "the broker's database is unavailable",
            }
        await _send_json(send, status, body, [])

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        method, path = scope["method"], scope["path"]
        if path == "/attest":
            _allow(method, "POST")
            return 200, self._attest(await _read_body(receive))
        if path.startswith("/resource/") and "/" not in path[10:] and path[10:]:
            _allow(method, "GET")
            authorization = None
            for name, value in scope.get("headers") or ():
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                    break
            return 200, self.service.release(authorization, path[10:])
        if path == "/challenge":
            _allow(method, "POST")
            return 200, self.service.challenge()
        if path == "/healthz":
            _allow(method, "GET")
            return 200, {"status": "ok", "config_sha256": self.service.loaded.digest()}
        raise Refusal("NOT_FOUND", "Not Found")

    def _attest(self, body: bytes) -> dict[str, Any]:
        try:
            request = AttestRequest.model_validate_json(body)
        except ValidationError as exc:
            raise Refusal("BAD_REQUEST", _validation_detail(exc)) from None
        if len(request.evidence) > self.max_devices:
            raise Refusal(
                "BAD_REQUEST",
                f"{len(request.evidence)} evidence items; at most {self.max_devices}",
            )
        return self.service.attest(
            request.nonce,
            request.public_key,
            request.evidence,
            resources=request.resources,
            tenant=request.tenant,
            cvm=request.cvm,
        )


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise Refusal("METHOD_NOT_ALLOWED", "Method Not Allowed")


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(service: BrokerService) -> ASGIApp:
    """The broker's ASGI application, limits included."""
    return LimitsMiddleware(BrokerApp(service), service.loaded.config.limits)


CONFIG_ENV = "GPUFENCE_BROKER_CONFIG"


def worker_app() -> ASGIApp:
    """uvicorn factory for ``workers > 1``: each process opens the configuration itself."""
    from pathlib import Path

    from gpufence.attest.broker.config import load_broker_config

    service = BrokerService.from_config(load_broker_config(Path(os.environ[CONFIG_ENV])))
    return create_app(service)


def serve(
    service: BrokerService,
    host: str,
    port: int,
    *,
    tls_cert: str | None,
    tls_key: str | None,
    workers: int = 1,
) -> None:
    """Run until interrupted: one process, or ``workers`` processes sharing the database.

    Each worker listens on its own ``SO_REUSEPORT`` socket, so the kernel spreads connections
    over the workers as they arrive. Under uvicorn's own multi-worker mode the workers raced
    for one shared socket, and the first one awake took a whole burst of keep-alive
    connections: two workers served barely more than one (measured in bench/attest.py).
    """
    import uvicorn

    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
    }
    if workers <= 1:
        uvicorn.run(create_app(service), host=host, port=port, **common)
        return
    from pathlib import Path

    os.environ[CONFIG_ENV] = str(Path(service.loaded.source).resolve())
    _supervise(host, _claim_port(host, port), workers, common)


def _family(host: str) -> int:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _claim_port(host: str, port: int) -> int:
    """The port the workers will share: resolved when 0, and refused (OSError) when another
    listener holds it (InputError). Binding without ``SO_REUSEPORT`` fails on a port another
    broker's workers hold, so a second broker never silently shares the first one's
    connections."""
    import socket

    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="another process (a running broker?) holds the port; stop it or pick another",
            ) from exc
        return int(probe.getsockname()[1])


def _worker(host: str, port: int, common: dict[str, Any]) -> None:
    """One worker process: its own listening socket in the port's ``SO_REUSEPORT`` group."""
    import signal
    import socket

    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops workers with SIGTERM
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config(worker_app, factory=True, host=host, port=port, **common)
    uvicorn.Server(config).run(sockets=[sock])


def _supervise(host: str, port: int, workers: int, common: dict[str, Any]) -> None:
    """Start the workers; stop them all on SIGINT/SIGTERM or when one of them ends (a broker
    with fewer workers than configured is reported and stopped, not left half-serving)."""
    import multiprocessing
    import signal
    import threading

    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(host, port, common), name=f"broker-worker-{n}")
        for n in range(workers)
    ]
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        for process in processes:
            process.start()
        while not stop.wait(0.5):
            ended = [p for p in processes if not p.is_alive()]
            if ended:
                sys.stderr.write(
                    f"gpufence broker: worker {ended[0].name} ended (exit code "
                    f"{ended[0].exitcode}); stopping the other workers\n"
                )
                failed = True
                break
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise SystemExit(1)
