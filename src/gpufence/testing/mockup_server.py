"""A small Redfish mockup server: serves static mockup trees over HTTPS with Basic auth.

Used by the integration tests and by ``bench/scan_bmc.py`` as a stand-in BMC (DMTF's
Redfish-Mockup-Server is not on PyPI, and ``sushy-static`` has no auth and answers every write
with 204). One process can listen on many ports; port *i* serves tree ``i % len(trees)``.

Behaviour (as in the BMC note, section 2c): ``/redfish/v1/A/B`` maps to ``<tree>/A/B/index.json``
(query and trailing ``/`` ignored); ``/redfish``, ``/redfish/v1``, ``/redfish/v1/odata`` and
``/redfish/v1/$metadata`` need no credentials, everything else needs Basic auth (401 with
``WWW-Authenticate`` otherwise); writes answer 401 without credentials and 405 with them.
Faults for robustness tests (``--fault``): ``tarpit`` (accept, never handshake), ``hang`` (read the
request, never answer), ``reset`` (drop the connection), ``error500``, ``malformed`` (broken JSON),
``huge`` (an endless body); ``--fault-path`` limits the fault to paths with that prefix.

    python -m gpufence.testing.mockup_server --tree DIR [--tree DIR ...] [--count N]
        [--cert F --key F [--weak-tls]] [--user NAME] [--factory-account USER:PASSWORD]
        [--latency-ms MS] [--fault KIND]
        --ready-file F            # password from $MOCKUP_BMC_PASSWORD; ports written to F as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import json
import logging
import os
import resource
import socket
import ssl
import struct
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FAULTS", "LoopbackPki", "MockupTree", "ServerConfig", "main", "make_test_pki", "serve"]

FAULTS = ("tarpit", "hang", "reset", "error500", "malformed", "huge")
_OPEN_PATHS = frozenset({"/redfish", "/redfish/v1", "/redfish/v1/odata", "/redfish/v1/$metadata"})
_MAX_HEAD = 64 * 1024


class MockupTree:
    """Every ``index.json`` of a mockup folder, loaded once (bytes ready to send)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.documents: dict[str, bytes] = {}
        for path in sorted(root.rglob("index.json")):
            rel = path.parent.relative_to(root).as_posix()
            key = "/redfish/v1" if rel == "." else f"/redfish/v1/{rel}"
            # HPE captures carry a UTF-8 BOM; re-encode so clients see plain JSON.
            text = path.read_text(encoding="utf-8-sig")
            self.documents[key] = text.encode()
        self.documents["/redfish"] = b'{"v1": "/redfish/v1/"}'

        # A capture's root may be anything JSON (even `null`: a broken BMC is worth serving);
        # only a mapping can advertise $expand.
        root_text = self.documents.get("/redfish/v1", b"null")
        try:
            service_root = json.loads(root_text)
        except ValueError:
            service_root = None
        features = (
            service_root.get("ProtocolFeaturesSupported")
            if isinstance(service_root, dict)
            else None
        )
        expand = features.get("ExpandQuery") if isinstance(features, dict) else None
        # Serve $expand=. like the BMC the tree was captured from, if its root advertises it.
        self.expands = isinstance(expand, dict) and bool(
            expand.get("NoLinks") or expand.get("ExpandAll")
        )
        self._expanded: dict[str, bytes | None] = {}

    def get(self, path: str, query: str = "") -> bytes | None:
        """The mockup's response body for ``path`` (and query), None when it has none."""
        if self.expands and "$expand=" in query.replace("%24", "$"):
            return self._expand(path)
        return self.documents.get(path)

    def _expand(self, path: str) -> bytes | None:
        """A collection with its Members inlined (one level, as ``$expand=.($levels=1)``)."""
        if path not in self._expanded:
            raw = self.documents.get(path)
            try:
                doc = json.loads(raw) if raw is not None else None
            except ValueError:
                doc = None  # served as captured: the client must cope with malformed JSON
            if isinstance(doc, dict) and isinstance(doc.get("Members"), list):
                members = []
                for member in doc["Members"]:
                    target = member.get("@odata.id", "") if isinstance(member, dict) else ""
                    body = self.documents.get(str(target).rstrip("/"))
                    try:
                        members.append(json.loads(body) if body is not None else member)
                    except ValueError:
                        members.append(member)
                doc["Members"] = members
                raw = json.dumps(doc).encode()
            self._expanded[path] = raw
        return self._expanded[path]


@dataclass(frozen=True)
class LoopbackPki:
    """A test CA and a server certificate for 127.0.0.1 (paths on disk)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerConfig:
    """How a mockup server behaves: mockup, credentials, TLS and faults to inject."""

    trees: tuple[MockupTree, ...]
    count: int = 1
    certfile: Path | None = None
    keyfile: Path | None = None
    weak_tls: bool = False
    username: str | None = None
    password: str | None = None
    latency_s: float = 0.0
    fault: str | None = None
    fault_path: str = ""
    host: str = "127.0.0.1"
    factory_accounts: tuple[tuple[str, str], ...] = ()
    """Further accounts with public factory-default passwords (e.g. ADMIN/ADMIN)."""


def _normalize(target: str) -> str:
    path = target.split("?", 1)[0].split("#", 1)[0]
    path = path.rstrip("/") or "/"
    return path


def _head(status: int, reason: str, length: int, extra: Sequence[str] = ()) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        "OData-Version: 4.0",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(status: int, reason: str, body: bytes, extra: Sequence[str] = ()) -> bytes:
    return _head(status, reason, len(body), extra) + body


class _Handler:
    def __init__(self, config: ServerConfig, tree: MockupTree) -> None:
        self.config = config
        self.tree = tree
        self.accepted: list[bytes] = []
        accounts = list(config.factory_accounts)
        if config.username is not None and config.password is not None:
            accounts.insert(0, (config.username, config.password))
        for user, password in accounts:
            self.accepted.append(b"Basic " + base64.b64encode(f"{user}:{password}".encode()))

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        if not self.accepted:
            return True
        given = headers.get(b"authorization", b"")
        return any(hmac.compare_digest(given, value) for value in self.accepted)

    def _faulty(self, path: str) -> str | None:
        fault = self.config.fault
        if fault and path.startswith(self.config.fault_path or "/"):
            return fault
        return None

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ssl.SSLError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            try:
                method, target, _version = lines[0].decode("latin-1").split(" ", 2)
            except ValueError:
                writer.write(_response(400, "Bad Request", b"{}", ["Connection: close"]))
                await writer.drain()
                return
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                if b":" in line:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0") or 0)
            if length:
                await reader.readexactly(length)
            path = _normalize(target)
            query = target.partition("?")[2]
            fault = self._faulty(path)
            if fault == "hang":
                await asyncio.Event().wait()
            if fault == "reset":
                _reset(writer)
                return
            if self.config.latency_s:
                await asyncio.sleep(self.config.latency_s)
            if fault == "huge" and method == "GET":
                await self._huge(reader, writer)
                return
            writer.write(self._answer(method, path, headers, fault, query))
            await writer.drain()
            if headers.get(b"connection", b"").lower() == b"close":
                return

    def _answer(
        self,
        method: str,
        path: str,
        headers: dict[bytes, bytes],
        fault: str | None,
        query: str = "",
    ) -> bytes:
        if fault == "error500":
            body = b'{"error": {"code": "Base.1.0.InternalError", "message": "injected fault"}}'
            return _response(500, "Internal Server Error", body)
        open_path = path in _OPEN_PATHS
        if not open_path and not self._authorized(headers):
            body = b'{"error": {"code": "Base.1.0.GeneralError"}}'
            return _response(401, "Unauthorized", body, ['WWW-Authenticate: Basic realm="mock"'])
        if method not in ("GET", "HEAD"):
            body = b'{"error": {"code": "Base.1.0.OperationNotAllowed"}}'
            return _response(405, "Method Not Allowed", body, ["Allow: GET, HEAD"])
        document = self.tree.get(path, query)
        if document is None:
            return _response(404, "Not Found", b"{}")
        if fault == "malformed":
            document = document[: max(1, len(document) // 2)]
        if method == "HEAD":
            return _head(200, "OK", len(document))
        return _response(200, "OK", document)

    async def _huge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An endless chunked JSON body (no Content-Length to reject it up front)."""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b'{"padding": "' + b"x" * 65_000
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        # 256 MiB: far beyond any sane Redfish body. A peer that hung up is not always visible
        # through TLS, so the size bound (and yielding to other clients) is what ends this.
        for _ in range((256 << 20) // len(piece)):
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), the way a crashing BMC web server drops a client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport = writer.transport
    transport.abort()


def _server_context(config: ServerConfig) -> ssl.SSLContext | None:
    if config.certfile is None or config.keyfile is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if config.weak_tls:
        # What an old BMC web server offers: TLS 1.0/1.1 with legacy suites (OpenSSL 3 needs
        # security level 0 for them).
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(config.certfile, config.keyfile)
    return ctx


async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def serve(config: ServerConfig, ready: asyncio.Future[list[int]] | None = None) -> None:
    """Listen on ``config.count`` free ports of ``config.host`` until cancelled."""
    loop = asyncio.get_running_loop()
    # Failed handshakes (the scanner probes TLS 1.0/1.1 on purpose) are not server errors.
    loop.set_exception_handler(lambda _loop, _context: None)
    # asyncio warns on every write after a client hung up (the 'huge' fault does that on purpose).
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    ctx = _server_context(config)
    servers: list[asyncio.Server] = []
    ports: list[int] = []
    for index in range(config.count):
        tree = config.trees[index % len(config.trees)]
        if config.fault == "tarpit":
            server = await asyncio.start_server(_tarpit, config.host, 0, backlog=64)
        else:
            handler = _Handler(config, tree)
            server = await asyncio.start_server(
                handler, config.host, 0, ssl=ctx, backlog=256, limit=_MAX_HEAD
            )
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    if ready is not None:
        ready.set_result(ports)
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()


def make_test_pki(
    directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> LoopbackPki:
    """A throwaway CA and a server certificate it signs, for loopback servers in tests/bench.

    EC P-256 keys: handshakes are cheap, which matters when one process serves 1,000 BMCs.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpufence test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = LoopbackPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve Redfish mockups on loopback (``python -m gpufence.testing.mockup_server``)."""
    parser = argparse.ArgumentParser(prog="python -m gpufence.testing.mockup_server")
    parser.add_argument("--tree", type=Path, action="append", required=True)
    parser.add_argument("--count", type=int, default=1, help="Ports to listen on.")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--weak-tls", action="store_true", help="Also accept TLS 1.0/1.1.")
    parser.add_argument("--user", help="Basic-auth user (password from $MOCKUP_BMC_PASSWORD).")
    parser.add_argument(
        "--factory-account",
        action="append",
        default=[],
        metavar="USER:PASSWORD",
        help="Also accept this factory-default account (public defaults only).",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault", choices=FAULTS)
    parser.add_argument("--fault-path", default="")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    password = os.environ.get("MOCKUP_BMC_PASSWORD")
    if args.user and not password:
        parser.error("--user needs the password in $MOCKUP_BMC_PASSWORD")
    config = ServerConfig(
        trees=tuple(MockupTree(t) for t in args.tree),
        count=args.count,
        certfile=args.cert,
        keyfile=args.key,
        weak_tls=args.weak_tls,
        username=args.user,
        password=password if args.user else None,
        latency_s=args.latency_ms / 1000,
        fault=args.fault,
        fault_path=args.fault_path,
        factory_accounts=tuple(
            (user, password)
            for user, _, password in (a.partition(":") for a in args.factory_account)
        ),
    )
    _raise_fd_limit(args.count * 4 + 256)

    async def run() -> None:
        ready: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(config, ready))
        ports = await ready
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "ports": ports}), encoding="utf-8")
        tmp.replace(args.ready_file)  # atomic: the waiting test never reads half a file
        await task

    with contextlib.suppress(KeyboardInterrupt):
        try:  # the fleet's CPU per BMC is part of every scan benchmark: keep it small
            import uvloop
        except ImportError:
            asyncio.run(run())
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
