"""A lean HTTP/1.1 client on asyncio streams: one keep-alive connection to one BMC.

Why not httpx: a fleet scan is CPU-bound in the HTTP stack, not the network. At 0 ms mock
latency httpx/httpcore/anyio took ~42 % of the scanner's CPU and gpufence's own code 6 %
(issue 14); the same requests through this client cost a fraction (``bench/scan_bmc.py`` records
the same-run figures). A BMC scan needs little of HTTP: GET (and one PATCH) of small JSON
documents, Basic auth, one request at a time on one connection, no redirects, no proxies, no
cookies. What it must get right is bounded: every read has a timeout, the body has a cap
(declared ``Content-Length``, chunked or read-to-close, and after decompression), headers have a
cap, and every failure is a :class:`TransportError` with a reason a report can show.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["BodyTooLarge", "Handshake", "HttpClient", "Response", "TransportError"]

_MAX_HEAD = 64 * 1024
"""Status line and headers together (also the longest chunk-size line)."""
_MAX_HEADERS = 100
_CHUNK = 64 * 1024


class TransportError(Exception):
    """The request got no complete answer. ``kind`` says why, ``str()`` says it for a report.

    Kinds: ``connect_timeout``, ``read_timeout``, ``tls_untrusted``, ``tls``, ``connect``,
    ``dropped`` (closed before a complete answer), ``reset``, ``protocol`` (not HTTP/1.x).
    """

    def __init__(self, kind: str, detail: str, *, before_answer: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind
        self.before_answer = before_answer
        """Nothing of an answer arrived (a reused idle connection the server had closed)."""


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than the cap; the connection was closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handshake = tuple[str | None, str | None, bytes | None]
"""A TLS handshake's negotiated version, cipher name and the peer's certificate (DER)."""


@dataclass(frozen=True)
class Response:
    """One HTTP response: status, lower-cased headers and the (capped) body."""

    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP Basic authentication."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class HttpClient:
    """Requests to one origin (``scheme://host:port``) over one reused connection."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self._ssl = ssl_context if self.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = (self.scheme == "https" and self.port == 443) or self.port == 80
        self._host_header = host if default else f"{host}:{self.port}"
        self._headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": "gpufence",
            **(headers or {}),
        }
        self._fixed = _fields({"Host": self._host_header, **self._headers})
        """The header lines every request sends, ready to send."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._must_close = False
        """The current answer ends the connection (HTTP/1.0, read-to-close body)."""
        self.on_first_connect: Callable[[Handshake | TransportError], None] | None = None
        """Told once how the first connection went: its TLS handshake or why it failed (the
        TLS probe reuses this handshake instead of making one of its own)."""

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            # A peer that never acknowledges the close must not hold the scan.
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except (OSError, TimeoutError, ssl.SSLError):
                pass

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                    ssl_handshake_timeout=self.connect_timeout if self._ssl is not None else None,
                    limit=_MAX_HEAD,
                )
        except TimeoutError:
            failed = TransportError("connect_timeout", "connect timeout (TCP or TLS handshake)")
        except ssl.SSLCertVerificationError as exc:
            detail = exc.verify_message or str(exc)
            failed = TransportError("tls_untrusted", f"TLS certificate not trusted ({detail})")
        except ssl.SSLError as exc:
            failed = TransportError("tls", f"TLS handshake failed ({exc.reason or exc})")
        except OSError as exc:
            failed = TransportError("connect", f"cannot connect ({exc.strerror or exc})")
        else:
            self._reader, self._writer = reader, writer
            self._tell_first_connect(writer)
            return reader, writer
        self._tell_first_connect(failed)
        raise failed

    def _tell_first_connect(self, outcome: asyncio.StreamWriter | TransportError) -> None:
        listener, self.on_first_connect = self.on_first_connect, None
        if listener is None:
            return
        if isinstance(outcome, TransportError):
            listener(outcome)
            return
        tls = outcome.get_extra_info("ssl_object")
        if tls is None:
            listener((None, None, None))
            return
        cipher = tls.cipher()
        listener((tls.version(), cipher[0] if cipher else None, tls.getpeercert(binary_form=True)))

    async def request(
        self,
        method: str,
        path: str,
        *,
        authorization: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        max_body: int = 4 * 1024 * 1024,
    ) -> Response:
        """Send one request and read the whole answer (at most ``max_body`` bytes of body).

        A connection the server closed while idle is reopened once for a GET.
        """
        reused = self._writer is not None
        try:
            return await self._exchange(method, path, authorization, body, headers, max_body)
        except TransportError as exc:
            self._drop()
            if reused and method == "GET" and exc.before_answer:
                return await self.request(
                    method,
                    path,
                    authorization=authorization,
                    body=body,
                    headers=headers,
                    max_body=max_body,
                )
            raise
        except BaseException:
            self._drop()  # cancelled or cap reached mid-answer: the stream is unusable
            raise

    def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def _exchange(
        self,
        method: str,
        path: str,
        authorization: str | None,
        body: bytes | None,
        extra: dict[str, str] | None,
        max_body: int,
    ) -> Response:
        if self._writer is None or self._reader is None:
            reader, writer = await self._connect()
        else:
            reader, writer = self._reader, self._writer
        fixed = (
            self._fixed
            if extra is None
            else _fields({"Host": self._host_header, **self._headers, **extra})
        )
        head = f"{method} {path} HTTP/1.1\r\n{fixed}"
        if authorization is not None:
            head += f"Authorization: {authorization}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("latin-1")
        # One deadline per request, pushed on by every chunk of body that arrives: a timer per
        # socket read cost more CPU than the HTTP parsing itself.
        try:
            async with asyncio.timeout(self.read_timeout) as deadline:
                try:
                    writer.write(request + body if body else request)
                    await writer.drain()
                except OSError as exc:
                    raise _dropped(exc, before_answer=True) from None
                status, headers = await self._head(reader, method)
                data = await self._body(reader, method, status, headers, max_body, deadline)
        except TimeoutError:
            raise TransportError("read_timeout", "read timeout (no answer)") from None
        if self._must_close or headers.get("connection", "").lower() == "close":
            await self.aclose()
        return Response(status, headers, data)

    async def _read(self, coro: object) -> bytes:
        try:
            return await coro  # type: ignore[misc,no-any-return]
        except asyncio.LimitOverrunError:
            raise TransportError("protocol", "header line too long") from None
        except asyncio.IncompleteReadError as exc:
            raise _dropped(exc, before_answer=False) from None
        except ssl.SSLError as exc:
            raise TransportError("reset", f"connection reset (TLS: {exc.reason or exc})") from None
        except OSError as exc:
            raise _dropped(exc, before_answer=False) from None

    async def _head(self, reader: asyncio.StreamReader, method: str) -> tuple[int, dict[str, str]]:
        while True:
            # The whole head in one read (one await instead of one per header line).
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                raise _dropped(exc, before_answer=not exc.partial) from None
            except asyncio.LimitOverrunError:
                raise TransportError(
                    "protocol", f"response head longer than {_MAX_HEAD} bytes"
                ) from None
            except ssl.SSLError as exc:
                raise TransportError(
                    "reset", f"connection reset (TLS: {exc.reason or exc})", before_answer=True
                ) from None
            except OSError as exc:
                raise _dropped(exc, before_answer=True) from None
            lines = raw.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise TransportError("protocol", f"not an HTTP/1.x answer: {raw[:40]!r}")
            status = int(parts[1])
            self._must_close = parts[0] == "HTTP/1.0"
            fields = lines[1:-2]  # the head ends with an empty line: two trailing ''
            if len(fields) > _MAX_HEADERS:
                raise TransportError("protocol", f"more than {_MAX_HEADERS} headers")
            headers: dict[str, str] = {}
            for field in fields:
                name, sep, value = field.partition(":")
                if not sep:
                    raise TransportError("protocol", "malformed header line")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real answer follows
            if self._must_close and headers.get("connection", "").lower() == "keep-alive":
                self._must_close = False
            return status, headers

    async def _body(
        self,
        reader: asyncio.StreamReader,
        method: str,
        status: int,
        headers: dict[str, str],
        max_body: int,
        deadline: asyncio.Timeout,
    ) -> bytes:
        if method == "HEAD" or status in (204, 304):
            return b""
        encoding = headers.get("content-encoding", "identity").lower()
        decoder = (
            zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
            if encoding in ("gzip", "deflate")
            else None
        )
        out = bytearray()
        loop = asyncio.get_running_loop()

        def take(chunk: bytes) -> None:
            # Progress earns time: a slow but moving body is not cut at the first timeout
            # (pushed on only when half of it is gone, to keep timer churn low).
            now, when = loop.time(), deadline.when()
            if when is not None and when - now < self.read_timeout / 2:
                deadline.reschedule(now + self.read_timeout)
            if decoder is not None:
                # Decompress at most one byte past the cap: a compression bomb stays bounded.
                chunk = decoder.decompress(chunk, max_body + 1 - len(out))
            out.extend(chunk)
            if len(out) > max_body:
                raise BodyTooLarge(status, f"body exceeds {max_body} bytes")

        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await self._read(reader.readuntil(b"\r\n"))
                size_text = size_line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise TransportError("protocol", "malformed chunk size") from None
                if size == 0:
                    while (await self._read(reader.readuntil(b"\r\n"))) != b"\r\n":
                        pass  # trailers
                    break
                while size:
                    chunk = await self._read(reader.read(min(size, _CHUNK)))
                    if not chunk:
                        raise TransportError("dropped", "connection dropped by the BMC mid-body")
                    size -= len(chunk)
                    take(chunk)
                await self._read(reader.readexactly(2))
        elif (declared := headers.get("content-length")) is not None:
            if not declared.isdigit():
                raise TransportError("protocol", f"malformed Content-Length {declared[:20]!r}")
            left = int(declared)
            if left > max_body and decoder is None:
                raise BodyTooLarge(status, f"body of {left} bytes exceeds the cap")
            while left:
                chunk = await self._read(reader.read(min(left, _CHUNK)))
                if not chunk:
                    raise TransportError("dropped", "connection dropped by the BMC mid-body")
                left -= len(chunk)
                take(chunk)
        else:
            self._must_close = True  # the body ends when the connection does
            while chunk := await self._read(reader.read(_CHUNK)):
                take(chunk)
        if decoder is not None:
            take(decoder.flush())
        return bytes(out)


def _fields(headers: dict[str, str]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


def _dropped(exc: BaseException, *, before_answer: bool) -> TransportError:
    if isinstance(exc, ConnectionResetError):
        error = TransportError("reset", f"connection reset ({exc.strerror or 'by peer'})")
    elif isinstance(exc, asyncio.IncompleteReadError) or not isinstance(exc, OSError):
        error = TransportError(
            "dropped", "connection dropped by the BMC (closed without a complete answer)"
        )
    else:
        error = TransportError("reset", f"connection reset ({exc.strerror or exc})")
    error.before_answer = before_answer
    return error
