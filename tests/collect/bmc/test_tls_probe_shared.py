"""The TLS probe reuses the Redfish connection's handshake only when that handshake completed.

The Redfish client offers the same ClientHello as the probe's default handshake, so its outcome
stands in for it; an untrusted certificate (or any other TLS failure) still gets the probe's own
handshake, so the certificate is described anyway. Checked against a real TLS server on
127.0.0.1 (the project's test PKI) and a closed port.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

from gpufence.collect.bmc.http import Handshake, HttpClient, TransportError
from gpufence.collect.bmc.tls import TlsProbe, probe_tls
from gpufence.testing.mockup_server import make_test_pki


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def test_a_completed_shared_handshake_is_used_without_connecting() -> None:
    port = _closed_port()  # any handshake of the probe's own would be refused here

    async def run() -> TlsProbe:
        shared: asyncio.Future[Handshake | TransportError | None] = (
            asyncio.get_running_loop().create_future()
        )
        shared.set_result(("TLSv1.3", "TLS_AES_256_GCM_SHA384", None))
        return await probe_tls("127.0.0.1", port, timeout=1, shared=shared)

    probe = asyncio.run(run())
    assert probe.error is None
    assert (probe.negotiated, probe.cipher) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert all(v in (False, None) for v in probe.accepted.values())  # legacy ones: refused


def test_a_connect_timeout_is_not_waited_for_twice() -> None:
    async def run() -> TlsProbe:
        shared: asyncio.Future[Handshake | TransportError | None] = (
            asyncio.get_running_loop().create_future()
        )
        shared.set_result(TransportError("connect_timeout", "connect timeout"))
        return await probe_tls("127.0.0.1", _closed_port(), timeout=1, shared=shared)

    assert asyncio.run(run()).error == "handshake timed out"


def _serve_tls(pki_dir: Path) -> tuple[ssl.SSLContext, Path]:
    pki = make_test_pki(pki_dir)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.cert, pki.key)
    return server, pki.ca


def test_redfish_handshake_equals_the_probes_own(tmp_path: Path) -> None:
    """Shared (trusted Redfish connection) and own handshakes describe the same session."""
    server_ctx, ca = _serve_tls(tmp_path / "pki")

    async def run() -> tuple[TlsProbe, TlsProbe, TlsProbe]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            own = await probe_tls("127.0.0.1", port, timeout=2)
            outcomes = []
            for trust in (ssl.create_default_context(cafile=str(ca)), ssl.create_default_context()):
                loop = asyncio.get_running_loop()
                shared: asyncio.Future[Handshake | TransportError | None] = loop.create_future()
                client = HttpClient(
                    f"https://127.0.0.1:{port}",
                    ssl_context=trust,
                    connect_timeout=2,
                    read_timeout=2,
                )
                client.on_first_connect = shared.set_result
                probe = asyncio.create_task(probe_tls("127.0.0.1", port, timeout=2, shared=shared))
                try:
                    await client.request("GET", "/redfish/v1/")
                except TransportError:
                    pass  # the server hangs up at once: only the handshake matters here
                await client.aclose()
                outcomes.append(await probe)
            return own, outcomes[0], outcomes[1]
        finally:
            server.close()

    own, trusted, untrusted = asyncio.run(run())
    assert own.error is None and own.cert is not None
    for probe in (trusted, untrusted):  # untrusted: the probe made its own handshake
        assert (probe.negotiated, probe.cipher, probe.accepted) == (
            own.negotiated,
            own.cipher,
            own.accepted,
        )
        assert probe.cert == own.cert
