"""Headless Chromium driven over the Chrome DevTools Protocol (a small client on websockets).

`open_page(path)` starts Debian's chromium with a throwaway profile, loads a local file, and
yields a :class:`Page` that evaluates JavaScript, takes screenshots and has collected every
console error, uncaught exception and failed/blocked request (log entry) of the page. Skips
locally without chromium, fails under CI=true (the package is in .ci/run).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.integration.bmc_servers import require_tool
from websockets.sync.client import ClientConnection, connect

__all__ = ["Page", "open_page"]

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]


class Page:
    """One page target, attached with a flat session."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self._ws = ws
        self._session = session
        self._ids = itertools.count(1)
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []

    def _on_event(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')}")

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send a CDP command on the page's session and wait for its answer."""
        msg_id = next(self._ids)
        self._ws.send(
            json.dumps(
                {"id": msg_id, "sessionId": self._session, "method": method, "params": params}
            )
        )
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id and msg.get("sessionId") == self._session:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self._on_event(msg)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for an event of the page's session (events seen so far count)."""
        for msg in self.events:
            if msg.get("method") == event:
                return msg
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in msg:
                self._on_event(msg)
                if msg["method"] == event:
                    return msg

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """A PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


def _devtools_url(profile: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        if port_file.is_file():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port")


@contextlib.contextmanager
def open_page(path: Path) -> Iterator[Page]:
    """Load ``path`` (a local file) in headless Chromium; yield the page once it has loaded."""
    chromium = require_tool("chromium", "chromium")
    profile = Path(tempfile.mkdtemp(prefix="gpufence-chromium-"))
    proc = subprocess.Popen(
        [chromium, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with connect(_devtools_url(profile, proc), max_size=64 * 2**20, open_timeout=30) as ws:
            ws.send(
                json.dumps(
                    {"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}
                )
            )
            target = _answer(ws, 1)["targetId"]
            ws.send(
                json.dumps(
                    {
                        "id": 2,
                        "method": "Target.attachToTarget",
                        "params": {"targetId": target, "flatten": True},
                    }
                )
            )
            page = Page(ws, _answer(ws, 2)["sessionId"])
            for domain in ("Page", "Runtime", "Log"):
                page.call(f"{domain}.enable")
            page.call("Page.navigate", url=path.resolve().as_uri())
            page.wait_for("Page.loadEventFired")
            yield page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _answer(ws: ClientConnection, msg_id: int) -> dict[str, Any]:
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg.get("id") == msg_id:
            if "error" in msg:
                raise RuntimeError(str(msg["error"]))
            result: dict[str, Any] = msg["result"]
            return result
