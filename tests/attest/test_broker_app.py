"""The broker's HTTP surface in process: body and rate limits, reason codes for every malformed
input, and a bounded hypothesis fuzz over the endpoints that must never produce a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.config import load_broker_config
from gpufence.attest.broker.database import AuditEntry
from gpufence.attest.broker.service import BrokerService

from .brokerkit import SECRET, BrokerKit, make_broker_kit

SERIALIZED = "nvidia-attestation-sdk/common-test-data/serialized_test_evidence"


def _client(kit: BrokerKit, limits: str | None = None) -> tuple[TestClient, BrokerService]:
    if limits is not None:
        kit.config.write_text(kit.config.read_text() + f"  limits: {limits}\n")
    service = BrokerService.from_config(load_broker_config(kit.config))
    service.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", 0.0))
    from gpufence.attest.broker.app import create_app

    return TestClient(create_app(service), raise_server_exceptions=False), service


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[TestClient, BrokerKit]]:
    kit = make_broker_kit(tmp_path)
    client, service = _client(kit, "{rate_per_s: 100000, burst: 100000}")
    yield client, kit
    service.close()


def _error(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["error"] == code  # type: ignore[attr-defined]


def test_body_limit_stops_reading(http: tuple[TestClient, BrokerKit]) -> None:
    client, _ = http
    big = b'{"nonce": "' + b"A" * (300 * 1024) + b'"}'
    _error(client.post("/attest", content=big), 413, "BODY_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(400):
            yield b" " * 1024

    _error(client.post("/attest", content=chunks()), 413, "BODY_TOO_LARGE")


def test_eight_gpus_and_four_switches_fit_the_default_limit(
    http: tuple[TestClient, BrokerKit], att: Path
) -> None:
    client, _ = http
    gpus = json.loads((att / SERIALIZED / "multi_gpu_hopper.json").read_text())
    switches = json.loads((att / SERIALIZED / "multi_switch_ls10.json").read_text())
    evidence = (gpus * 2)[:8] + switches[:4]
    assert len(evidence) == 12
    body = {"nonce": "AAAA", "public_key": Requester().public_pem, "evidence": evidence}
    size = len(json.dumps(body))
    assert 100_000 < size < 256 * 1024
    # Read and judged (an unknown nonce), not cut off.
    _error(client.post("/attest", json=body), 403, "NONCE_UNKNOWN")


def test_rate_limit_per_client(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    client, service = _client(kit, "{rate_per_s: 1, burst: 5}")
    try:
        codes = [client.post("/challenge").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        limited = client.post("/challenge")
        assert (
            limited.json()["error"] == "RATE_LIMITED" and int(limited.headers["retry-after"]) >= 1
        )
    finally:
        service.close()


def test_malformed_inputs_have_reason_codes(http: tuple[TestClient, BrokerKit]) -> None:
    client, kit = http
    _error(client.post("/attest", content=b"{not json"), 400, "BAD_REQUEST")
    _error(client.post("/attest", json=[1, 2]), 400, "BAD_REQUEST")
    _error(client.post("/attest", json={"nonce": "x"}), 400, "BAD_REQUEST")
    _error(
        client.post("/attest", content=b"1", headers={"content-length": "x"}), 400, "BAD_REQUEST"
    )
    _error(client.get("/nowhere"), 404, "NOT_FOUND")
    _error(client.get("/attest"), 405, "METHOD_NOT_ALLOWED")
    _error(
        client.get("/resource/weights", headers={"authorization": "Bearer a.b.c"}),
        401,
        "TOKEN_INVALID",
    )
    requester = Requester()
    nonce = client.post("/challenge").json()["nonce"]
    evidence = kit.evidence(requester.gpu_nonce(nonce))
    # A malformed certificate inside the evidence: 400 with the reason, never a 500.
    pem = base64.b64decode(evidence[0]["certificate"])
    start = pem.index(b"\n") + 40
    broken = pem[:start] + (b"A" if pem[start : start + 1] != b"A" else b"B") + pem[start + 1 :]
    evidence[0]["certificate"] = base64.b64encode(broken).decode()
    response = client.post(
        "/attest", json={"nonce": nonce, "public_key": requester.public_pem, "evidence": evidence}
    )
    assert response.status_code in (400, 403), response.text
    assert response.json()["error"] in ("EVIDENCE_UNREADABLE", "EVIDENCE_REJECTED")
    nonce = client.post("/challenge").json()["nonce"]
    evidence = kit.evidence(requester.gpu_nonce(nonce))
    evidence[0]["certificate"] = base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----\n").decode()
    response = client.post(
        "/attest", json={"nonce": nonce, "public_key": requester.public_pem, "evidence": evidence}
    )
    _error(response, 400, "EVIDENCE_UNREADABLE")
    assert "CERTIFICATE REQUEST" in response.json()["detail"]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_b64 = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
_evidence_item = st.fixed_dictionaries(
    {},
    optional={
        "arch": st.sampled_from(["HOPPER", "BLACKWELL", "LS10", "hopper", "", "VOLTA"]) | _json,
        "nonce": st.text(max_size=70) | _json,
        "evidence": _b64 | _json,
        "certificate": _b64
        | st.just(
            base64.b64encode(
                b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
            ).decode()
        )
        | _json,
    },
)
_attest_body = (
    st.fixed_dictionaries(
        {},
        optional={
            "nonce": st.text(max_size=60) | _json,
            "public_key": st.text(max_size=60) | st.just(Requester().public_pem) | _json,
            "evidence": st.lists(_evidence_item, max_size=3) | _json,
            "resources": st.lists(st.text(max_size=10), max_size=3) | _json,
            "tenant": st.text(max_size=10) | _json,
            "cvm": _json,
        },
    )
    | _json
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=_attest_body,
    auth=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
    | st.builds(lambda a, b, c: f"Bearer {a}.{b}.{c}", _b64, _b64, _b64),
    resource=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20
    ),
    fresh=st.booleans(),
)
def test_fuzz_never_500(
    http: tuple[TestClient, BrokerKit], body: object, auth: str, resource: str, fresh: bool
) -> None:
    client, _ = http
    if fresh and isinstance(body, dict):  # a live nonce gets the request past the replay check
        body = {**body, "nonce": client.post("/challenge").json()["nonce"]}
    for response in (
        client.post("/attest", json=body),
        client.get(f"/resource/{resource}", headers={"authorization": auth}),
        client.post("/attest", content=json.dumps(body).encode()[::-1]),
    ):
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert isinstance(response.json().get("error"), str)
