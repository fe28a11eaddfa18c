"""Benchmark: the HTTP stack of the BMC scanner, chosen by measurement (issue 14).

Every stack does the same work against the same loopback fleet (the project's Redfish mockup
server, HTTPS with a test CA and Basic auth): for each BMC one new verified TLS connection, then
``--paths`` GETs of Redfish resources on it (keep-alive), each body read whole and parsed as JSON.
Stacks: gpufence's lean stdlib client (``gpufence.collect.bmc.http``), aiohttp, and httpx
(HTTP/1.1, the scanner's stack before issue 14). Each stack runs in its own process so that its
CPU seconds are its own; the mock fleet runs in ``--servers`` other processes and its CPU is
reported beside (on a 2-core machine the fleet competes with the client: compare CPU per BMC,
which does not depend on that, as well as wall rates).

    .venv/bin/python bench/http_stacks.py [--bmcs 300] [--concurrency 64] [--servers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_bmc import SHARED, USER, cpu_seconds, machine, start_fleet

from gpufence.collect.bmc.http import HttpClient, basic_auth

STACKS = ("gpufence-lean", "aiohttp", "httpx")


async def discover_paths(port: int, ca: str, password: str, limit: int) -> list[str]:
    """Breadth-first walk of the first BMC's tree: the first ``limit`` resources that answer."""
    context = ssl.create_default_context(cafile=ca)
    auth = basic_auth(USER, password)
    found: list[str] = []
    queue = ["/redfish/v1"]
    seen = set(queue)
    async with HttpClient(
        f"https://127.0.0.1:{port}", ssl_context=context, connect_timeout=10, read_timeout=30
    ) as client:
        while queue and len(found) < limit:
            path = queue.pop(0)
            response = await client.request("GET", path, authorization=auth)
            if response.status != 200:
                continue
            found.append(path)
            stack: list[Any] = [json.loads(response.body)]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    link = node.get("@odata.id")
                    if (
                        isinstance(link, str)
                        and link.startswith("/redfish/v1")
                        and link not in seen
                    ):
                        seen.add(link)
                        queue.append(link.rstrip("/"))
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
    return found


async def _each_bmc(spec: dict[str, Any], fetch: Callable[[int], Awaitable[None]]) -> int:
    """``fetch(port)`` for every BMC, ``--concurrency`` at a time; the GETs made."""
    limit = asyncio.Semaphore(spec["concurrency"])

    async def one(port: int) -> int:
        async with limit:
            await fetch(port)
        return len(spec["paths"])

    return sum(await asyncio.gather(*(one(p) for p in spec["ports"])))


async def run_lean(spec: dict[str, Any]) -> int:
    context = ssl.create_default_context(cafile=spec["ca"])
    auth = basic_auth(USER, spec["password"])

    async def fetch(port: int) -> None:
        origin = f"https://127.0.0.1:{port}"
        async with HttpClient(
            origin, ssl_context=context, connect_timeout=10, read_timeout=30
        ) as client:
            for path in spec["paths"]:
                response = await client.request("GET", path, authorization=auth)
                json.loads(response.body)

    return await _each_bmc(spec, fetch)


async def run_aiohttp(spec: dict[str, Any]) -> int:
    import aiohttp

    context = ssl.create_default_context(cafile=spec["ca"])
    auth = aiohttp.BasicAuth(USER, spec["password"])
    timeout = aiohttp.ClientTimeout(total=60, connect=10)

    async def fetch(port: int) -> None:
        connector = aiohttp.TCPConnector(ssl=context, limit=1)
        session = aiohttp.ClientSession(connector=connector, auth=auth, timeout=timeout)
        async with session:
            for path in spec["paths"]:
                async with session.get(f"https://127.0.0.1:{port}{path}") as response:
                    json.loads(await response.read())

    return await _each_bmc(spec, fetch)


async def run_httpx(spec: dict[str, Any]) -> int:
    import httpx

    context = ssl.create_default_context(cafile=spec["ca"])
    auth = (USER, spec["password"])

    async def fetch(port: int) -> None:
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{port}", verify=context, auth=auth, timeout=60
        ) as client:
            for path in spec["paths"]:
                response = await client.get(path)
                json.loads(response.content)

    return await _each_bmc(spec, fetch)


RUNNERS = {"gpufence-lean": run_lean, "aiohttp": run_aiohttp, "httpx": run_httpx}


def child(spec: dict[str, Any]) -> dict[str, float]:
    started = time.perf_counter()
    cpu0 = time.process_time()
    requests = asyncio.run(RUNNERS[spec["stack"]](spec))
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu0,
        "requests": requests,
    }


def _version(stack: str) -> str:
    if stack == "gpufence-lean":
        return "stdlib asyncio"
    module = __import__(stack)
    return f"{stack} {getattr(module, '__version__', '?')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bmcs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paths", type=int, default=20, help="GETs per BMC (one connection).")
    parser.add_argument("--servers", type=int, default=1, help="Mockup server processes.")
    parser.add_argument("--trees", default="dmtf")
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--runs", type=int, default=3, help="Runs per stack (spread reported).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found (the captures live beside the checkout)")
    args.latency_ms = 0.0
    password = secrets.token_urlsafe(16)
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp_name:
        procs, ports, ca = start_fleet(args, Path(tmp_name), password)
        try:
            paths = asyncio.run(discover_paths(ports[0], str(ca), password, args.paths))
            print(
                f"fleet: {len(ports)} BMCs ({args.trees}) in {len(procs)} mockup process(es); "
                f"{len(paths)} GETs per BMC on one TLS connection; concurrency {args.concurrency}"
            )
            spec = {"ports": ports, "ca": str(ca), "password": password, "paths": paths}
            spec["concurrency"] = args.concurrency
            results: dict[str, list[dict[str, float]]] = {s: [] for s in args.stacks}
            for _ in range(args.runs):
                for stack in args.stacks:  # interleaved: load changes hit every stack alike
                    server0 = sum(cpu_seconds(p.pid) for p in procs)
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps({**spec, "stack": stack})],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        sys.exit(f"{stack} failed:\n{done.stderr[-3000:]}")
                    result = json.loads(done.stdout.splitlines()[-1])
                    result["server_cpu"] = sum(cpu_seconds(p.pid) for p in procs) - server0
                    results[stack].append(result)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    lean = results.get("gpufence-lean")
    lean_cpu = min(r["cpu"] for r in lean) if lean else None
    for stack, runs in results.items():
        rates = sorted(len(ports) / r["wall"] for r in runs)
        cpu_ms = sorted(1000 * r["cpu"] / len(ports) for r in runs)
        server_ms = sorted(1000 * r["server_cpu"] / len(ports) for r in runs)
        ratio = (
            f", {min(r['cpu'] for r in runs) / lean_cpu:.2f}x the lean client's CPU"
            if lean_cpu
            else ""
        )
        print(
            f"{_version(stack)}: {rates[len(rates) // 2]:.0f} BMCs/s (runs {rates[0]:.0f}-"
            f"{rates[-1]:.0f}); client CPU {cpu_ms[len(cpu_ms) // 2]:.2f} ms per BMC (runs "
            f"{cpu_ms[0]:.2f}-{cpu_ms[-1]:.2f}){ratio}; mock servers "
            f"{server_ms[len(server_ms) // 2]:.2f} ms per BMC"
        )


if __name__ == "__main__":
    main()
