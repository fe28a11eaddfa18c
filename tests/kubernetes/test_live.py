"""`gpufence k8s scan --live` through the official kubernetes client against a local API stub.

The stub (127.0.0.1, stopped by the fixture) serves Namespaces and refuses most other lists with
403, like an RBAC-limited service account: everything that depends on a refused list must come
out NOT_EVALUATED, never PASS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from gpufence.cli import main

TOKEN = "s3cr3t-token-value"

NAMESPACES = {
    "kind": "NamespaceList",
    "apiVersion": "v1",
    "metadata": {},
    "items": [
        {
            "metadata": {
                "name": "team-a",
                "labels": {
                    "gpufence.io/tenant": "a",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            }
        },
        {"metadata": {"name": "team-b", "labels": {"gpufence.io/tenant": "b"}}},
    ],
}


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.seen.append((path, self.headers.get("Authorization", "")))
        if path == "/api/v1/namespaces":
            self._send(200, NAMESPACES)
        elif path.startswith("/apis/") and path.split("/")[2] not in (
            "apps",
            "batch",
            "networking.k8s.io",
        ):
            self._send(404, {"kind": "Status", "code": 404, "message": "the server could not find"})
        else:
            resource = path.rsplit("/", 1)[-1]
            self._send(
                403,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "Forbidden",
                    "code": 403,
                    "message": f'{resource} is forbidden: User "system:serviceaccount:ci:scanner" '
                    f'cannot list resource "{resource}" at the cluster scope',
                },
            )

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": server}}],
        "users": [{"name": "scanner", "user": {"token": TOKEN}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "scanner"}}],
        "current-context": "stub",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_forbidden_lists_are_not_evaluated(
    tmp_path: Path, api_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = _kubeconfig(tmp_path, api_server)
    code = main(
        [
            "k8s",
            "scan",
            "--live",
            "--kubeconfig",
            str(kubeconfig),
            "--format",
            "json",
            "--fail-on",
            "never",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert TOKEN not in captured.out and TOKEN not in captured.err
    assert ("/api/v1/namespaces", f"Bearer {TOKEN}") in _Handler.seen
    assert "warning: could not read NetworkPolicy: 403 Forbidden" in captured.err
    findings = json.loads(captured.out)["findings"]
    by_control: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_control.setdefault(f["control"], []).append(f)

    # Only what could be read is judged: Pod Security labels (Namespace) and DRA, whose API
    # group the server does not serve (404: no ResourceClaims can exist).
    passed = {f["control"] for f in findings if f["status"] == "PASS"}
    assert passed <= {"K8S-007", "K8S-010"}
    assert {f["status"] for f in by_control["K8S-007"]} == {"PASS", "FAIL"}

    for control in (
        "K8S-001",
        "K8S-002",
        "K8S-003",
        "K8S-004",
        "K8S-005",
        "K8S-006",
        "K8S-008",
        "K8S-011",
        "K8S-012",
        "K8S-013",
    ):
        statuses = {f["status"] for f in by_control[control]}
        assert statuses == {"NOT_EVALUATED"}, (control, by_control[control])
    netpol = {f["resource"]: f for f in by_control["K8S-006"]}
    assert "403 Forbidden" in netpol["k8s/cluster/Namespace/team-a"]["message"]
    # The CRDs of Sigstore/Kyverno are not installed (404): no signature admission at all.
    assert {f["status"] for f in by_control["K8S-009"]} == {"FAIL"}
    assert "ClusterImagePolicy.policy.sigstore.dev: not installed" in captured.err


def test_unreachable_server_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = _kubeconfig(tmp_path, "http://127.0.0.1:9")  # discard port: nothing listens
    assert main(["k8s", "scan", "--live", "--kubeconfig", str(kubeconfig)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Kubernetes API server" in err and TOKEN not in err


def test_bad_kubeconfig_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    assert main(["k8s", "scan", "--live", "--kubeconfig", str(path)]) == 2
    assert "cannot load the kubeconfig" in capsys.readouterr().err
