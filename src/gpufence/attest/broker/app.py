"""HTTP surface of the key broker (FastAPI), and running it under uvicorn."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from gpufence import __version__
from gpufence.attest.broker.service import BrokerService, Refusal

__all__ = ["create_app", "serve"]


class AttestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nonce: str = Field(description="The nonce /challenge returned (base64url).")
    public_key: str = Field(description="The requester's ephemeral EC P-384 public key (PEM).")
    evidence: list[dict[str, JsonValue]] = Field(
        description="NVIDIA serialized evidence: [{arch, nonce, evidence, certificate}, ...]."
    )


def create_app(service: BrokerService) -> FastAPI:
    """The broker's HTTP API (FastAPI) over ``service``."""
    app = FastAPI(title="gpufence key broker", version=__version__, docs_url=None, redoc_url=None)

    @app.exception_handler(Refusal)
    async def _refused(_: Request, exc: Refusal) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status, content={"error": exc.code, "detail": exc.detail}
        )

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "policy_sha256": service.loaded.policy.digest()}

    @app.post("/challenge")
    def challenge() -> dict[str, Any]:
        return service.challenge()

    @app.post("/attest")
    def attest(body: AttestRequest) -> dict[str, Any]:
        return service.attest(body.nonce, body.public_key, body.evidence)

    @app.get("/resource/{resource_id}")
    def resource(
        resource_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        return service.release(authorization, resource_id)

    return app


def serve(
    service: BrokerService, host: str, port: int, *, tls_cert: str | None, tls_key: str | None
) -> None:
    """Run until interrupted (uvicorn, one process; SQLite serializes the state)."""
    import uvicorn

    uvicorn.run(
        create_app(service),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )
