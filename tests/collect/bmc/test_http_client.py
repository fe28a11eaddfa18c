"""The lean HTTP/1.1 client's response head: parsed whole, bounded, and honest about drops.

Each case is a raw TCP server on 127.0.0.1 that sends exactly the bytes under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gpufence.collect.bmc.http import HttpClient, Response, TransportError

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _ask(serve: Serve, requests: int = 1) -> list[Response | TransportError]:
    async def run() -> list[Response | TransportError]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        out: list[Response | TransportError] = []
        try:
            async with HttpClient(
                f"http://127.0.0.1:{port}", ssl_context=None, connect_timeout=2, read_timeout=2
            ) as client:
                for _ in range(requests):
                    try:
                        out.append(await client.request("GET", "/redfish/v1/"))
                    except TransportError as exc:
                        out.append(exc)
        finally:
            server.close()
        return out

    return asyncio.run(run())


def _answering(*answers: bytes) -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    return serve


def test_headers_and_interim_answers() -> None:
    [got] = _ask(
        _answering(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Odd:  spaced : value \r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )
    )
    assert isinstance(got, Response)
    assert got.status == 200 and got.body == b"{}"
    assert got.headers == {
        "content-type": "application/json",
        "x-odd": "spaced : value",
        "content-length": "2",
    }


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "protocol", "head longer"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n",
            "protocol",
            "more than 100 headers",
        ),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "protocol", "malformed header"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "protocol", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "dropped", "closed without a complete answer"),
    ],
    ids=["head-too-long", "too-many-headers", "no-colon", "not-http", "dropped-mid-head"],
)
def test_bad_heads(answer: bytes, kind: str, words: str) -> None:
    [got] = _ask(_answering(answer))
    assert isinstance(got, TransportError), got
    assert got.kind == kind and words in str(got), (got.kind, str(got))
    assert not got.before_answer  # part of an answer came: a GET is not silently repeated


def test_idle_connection_closed_by_the_server_is_reopened_once() -> None:
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        served += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # keep-alive not honoured: the next request finds the socket closed

    got = _ask(serve, requests=2)
    assert [r.status for r in got if isinstance(r, Response)] == [200, 200], got
    assert served == 2
