"""Every control against a passing and a failing inventory (and NOT_EVALUATED where facts lack).

Each case starts from the fully declared base inventory and changes only what the case is about,
so a case fails if the control looks at the wrong thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufence.controls import ALL_CONTROLS
from gpufence.model.findings import Severity, Status
from tests.inventories import base_inventory, run_control

DELETE = object()

TWO_TENANTS = [{"tenant": "alpha"}, {"tenant": "beta"}]
CONFIDENTIAL = {"tenants.0.data_sensitivity": "confidential"}
RENTED = {"sites.0.ownership": "rented"}


def mutate(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply {"a.0.b": value} changes; DELETE removes the key."""
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return data


# (control, changes, expected status of the node/resource findings, expected resource)
CASES: list[tuple[str, str, dict[str, Any], Status, str]] = [
    ("GPU-001", "dedicated", {}, Status.PASS, "node/n1"),
    (
        "GPU-001",
        "time-slicing across tenants",
        {
            "node_pools.0.sharing": "time-slicing",
            "node_pools.0.workloads": TWO_TENANTS,
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-001",
        "mps across tenants",
        {
            "node_pools.0.sharing": "mps",
            "node_pools.0.workloads": TWO_TENANTS,
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-001",
        "time-slicing, one tenant",
        {"node_pools.0.sharing": "time-slicing"},
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-001",
        "node pinned to one tenant",
        {
            "node_pools.0.sharing": "mps",
            "node_pools.0.workloads": TWO_TENANTS,
            "node_pools.0.nodes.0.tenants": ["beta"],
        },
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-002",
        "consumer, one tenant",
        {"node_pools.0.gpu_model": "RTX 4090"},
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-002",
        "consumer, two tenants",
        {
            "node_pools.0.gpu_model": "RTX 4090",
            "node_pools.0.workloads": TWO_TENANTS,
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-003",
        "MIG on H100",
        {"node_pools.0.sharing": "mig", "node_pools.0.gpu_state.mig": True},
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-003",
        "MIG on L40S",
        {"node_pools.0.sharing": "mig", "node_pools.0.gpu_model": "L40S"},
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-003",
        "MIG mode on an A40",
        {
            "node_pools.0.gpu_model": "A40",
            "node_pools.0.gpu_state.mig": True,
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-004",
        "vGPU on L40S",
        {"node_pools.0.sharing": "vgpu", "node_pools.0.gpu_model": "L40S"},
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-004",
        "vGPU on RTX 4090",
        {
            "node_pools.0.sharing": "vgpu",
            "node_pools.0.gpu_model": "RTX 4090",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-005",
        "MIG pool, MIG on",
        {"node_pools.0.sharing": "mig", "node_pools.0.gpu_state.mig": True},
        Status.PASS,
        "node/n1",
    ),
    ("GPU-005", "MIG pool, MIG off", {"node_pools.0.sharing": "mig"}, Status.FAIL, "node/n1"),
    (
        "GPU-005",
        "MIG pool, MIG unknown",
        {
            "node_pools.0.sharing": "mig",
            "node_pools.0.gpu_state.mig": DELETE,
        },
        Status.NOT_EVALUATED,
        "node/n1",
    ),
    ("GPU-006", "confidential, ECC on", CONFIDENTIAL, Status.PASS, "node/n1"),
    (
        "GPU-006",
        "confidential, ECC off",
        {**CONFIDENTIAL, "node_pools.0.gpu_state.ecc": False},
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-006",
        "ECC off on the node only",
        {
            **CONFIDENTIAL,
            "node_pools.0.nodes.0.gpu_state": {"ecc": False},
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-006",
        "confidential, ECC unknown",
        {**CONFIDENTIAL, "node_pools.0.gpu_state.ecc": DELETE},
        Status.NOT_EVALUATED,
        "node/n1",
    ),
    (
        "GPU-006",
        "confidential on a part without ECC",
        {
            **CONFIDENTIAL,
            "node_pools.0.gpu_model": "RTX 5090",
            "node_pools.0.gpu_state": {},
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "GPU-007",
        "regulated alone",
        {"tenants.0.data_sensitivity": "regulated"},
        Status.PASS,
        "node/n1",
    ),
    (
        "GPU-007",
        "regulated with another tenant",
        {
            "tenants.0.data_sensitivity": "regulated",
            "node_pools.0.workloads": TWO_TENANTS,
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-001",
        "confidential on rented, CC on",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.gpu_state.cc_mode": "on",
        },
        Status.PASS,
        "node/n1",
    ),
    (
        "CC-001",
        "confidential on rented, CC off",
        {**CONFIDENTIAL, **RENTED},
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-001",
        "confidential shared, CC devtools",
        {
            **CONFIDENTIAL,
            "node_pools.0.workloads": TWO_TENANTS,
            "node_pools.0.gpu_state.cc_mode": "devtools",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-001",
        "confidential on rented, CC unknown",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.gpu_state.cc_mode": DELETE,
        },
        Status.NOT_EVALUATED,
        "node/n1",
    ),
    (
        "CC-001",
        "confidential on rented L40S",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.gpu_model": "L40S",
        },
        Status.FAIL,
        "node/n1",
    ),
    ("CC-002", "CC on H100", {"node_pools.0.gpu_state.cc_mode": "on"}, Status.PASS, "node/n1"),
    (
        "CC-002",
        "CC on L40S",
        {
            "node_pools.0.gpu_model": "L40S",
            "node_pools.0.gpu_state.cc_mode": "on",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-002",
        "PPCIe on a B200",
        {
            "node_pools.0.gpu_model": "B200",
            "node_pools.0.gpu_state.cc_mode": "on",
            "node_pools.0.gpu_state.cc_multi_gpu": "protected-pcie",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-002",
        "NVLE on an H100",
        {
            "node_pools.0.gpu_state.cc_mode": "on",
            "node_pools.0.gpu_state.cc_multi_gpu": "nvle",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-003",
        "8-GPU confidential job with PPCIe",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.workloads.0": {"tenant": "alpha", "gpus_per_job": 8},
            "node_pools.0.gpu_state.cc_mode": "on",
            "node_pools.0.gpu_state.cc_multi_gpu": "protected-pcie",
        },
        Status.PASS,
        "node/n1",
    ),
    (
        "CC-003",
        "8-GPU confidential job without PPCIe",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.workloads.0": {"tenant": "alpha", "gpus_per_job": 8},
            "node_pools.0.gpu_state.cc_mode": "on",
            "node_pools.0.gpu_state.cc_multi_gpu": "none",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-003",
        "B200 multi-GPU job needs NVLE",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.gpu_model": "B200",
            "node_pools.0.workloads.0": {"tenant": "alpha", "gpus_per_job": 4},
            "node_pools.0.gpu_state.cc_mode": "on",
            "node_pools.0.gpu_state.cc_multi_gpu": "nvle",
        },
        Status.PASS,
        "node/n1",
    ),
    (
        "CC-003",
        "multi-GPU job on H100 PCIe",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.gpu_model": "H100 PCIe",
            "node_pools.0.workloads.0": {"tenant": "alpha", "gpus_per_job": 2},
            "node_pools.0.gpu_state.cc_mode": "on",
        },
        Status.FAIL,
        "node/n1",
    ),
    (
        "CC-003",
        "multi-GPU CC mode unknown",
        {
            **CONFIDENTIAL,
            **RENTED,
            "node_pools.0.workloads.0": {"tenant": "alpha", "gpus_per_job": 8},
            "node_pools.0.gpu_state.cc_mode": "on",
        },
        Status.NOT_EVALUATED,
        "node/n1",
    ),
    ("CC-004", "CC off", {}, Status.PASS, "node/n1"),
    (
        "CC-004",
        "CC devtools",
        {"node_pools.0.gpu_state.cc_mode": "devtools"},
        Status.FAIL,
        "node/n1",
    ),
    ("OOB-001", "isolated OOB", {}, Status.PASS, "bmc/n1-bmc"),
    (
        "OOB-001",
        "OOB routed to compute",
        {"networks.1.routed_to": ["compute"]},
        Status.FAIL,
        "bmc/n1-bmc",
    ),
    (
        "OOB-001",
        "BMC on the tenant's data network",
        {"bmcs.0.network": "compute"},
        Status.FAIL,
        "bmc/n1-bmc",
    ),
    (
        "OOB-001",
        "shared NIC on a bare-metal tenant host",
        {
            "node_pools.0.tenant_root": True,
            "bmcs.0.shared_nic": True,
        },
        Status.FAIL,
        "bmc/n1-bmc",
    ),
    (
        "OOB-001",
        "no BMCs declared",
        {"bmcs": [], "node_pools.0.nodes.0.bmc": DELETE},
        Status.NOT_EVALUATED,
        "cluster",
    ),
    ("OOB-002", "no default credentials", {}, Status.PASS, "bmc/n1-bmc"),
    (
        "OOB-002",
        "default credentials",
        {"bmcs.0.default_credentials": True},
        Status.FAIL,
        "bmc/n1-bmc",
    ),
    (
        "OOB-002",
        "unknown",
        {"bmcs.0.default_credentials": DELETE},
        Status.NOT_EVALUATED,
        "bmc/n1-bmc",
    ),
    ("OOB-003", "IPMI off", {}, Status.PASS, "bmc/n1-bmc"),
    ("OOB-003", "IPMI on", {"bmcs.0.ipmi_over_lan": True}, Status.FAIL, "bmc/n1-bmc"),
    ("OOB-003", "unknown", {"bmcs.0.ipmi_over_lan": DELETE}, Status.NOT_EVALUATED, "bmc/n1-bmc"),
    ("OOB-004", "no internet route", {"networks.0.internet": True}, Status.PASS, "bmc/n1-bmc"),
    (
        "OOB-004",
        "internet routed to OOB",
        {
            "networks.0.internet": True,
            "networks.1.routed_to": ["compute"],
        },
        Status.FAIL,
        "bmc/n1-bmc",
    ),
    ("FW-001", "Secure Boot on", {}, Status.PASS, "node/n1"),
    ("FW-001", "Secure Boot off", {"node_pools.0.host.secure_boot": False}, Status.FAIL, "node/n1"),
    ("FW-001", "unknown", {"node_pools.0.host": DELETE}, Status.NOT_EVALUATED, "node/n1"),
    ("FAB-001", "planes apart", {}, Status.PASS, "network/compute"),
    (
        "FAB-001",
        "compute and management on one network",
        {
            "networks.0.purposes": ["compute", "management"],
        },
        Status.FAIL,
        "network/compute",
    ),
    (
        "FAB-001",
        "storage routed to OOB",
        {
            "networks.0.purposes": ["storage"],
            "networks.1.routed_to": ["compute"],
        },
        Status.FAIL,
        "network/compute",
    ),
    (
        "FAB-002",
        "two tenants, PKeys",
        {"node_pools.0.workloads": TWO_TENANTS},
        Status.PASS,
        "network/compute",
    ),
    (
        "FAB-002",
        "two tenants, no isolation",
        {
            "node_pools.0.workloads": TWO_TENANTS,
            "networks.0.tenant_isolation": "none",
        },
        Status.FAIL,
        "network/compute",
    ),
    (
        "FAB-002",
        "two tenants, isolation undeclared",
        {
            "node_pools.0.workloads": TWO_TENANTS,
            "networks.0.tenant_isolation": DELETE,
        },
        Status.NOT_EVALUATED,
        "network/compute",
    ),
    ("DAT-001", "encrypted", {}, Status.PASS, "storage/weights"),
    (
        "DAT-001",
        "unencrypted",
        {"storage.0.encrypted_at_rest": False},
        Status.FAIL,
        "storage/weights",
    ),
    (
        "DAT-001",
        "undeclared",
        {"storage.0.encrypted_at_rest": DELETE},
        Status.NOT_EVALUATED,
        "storage/weights",
    ),
    ("DAT-002", "vault", {}, Status.PASS, "storage/weights"),
    ("DAT-002", "key in a file", {"secrets.kms.0.kind": "file"}, Status.FAIL, "storage/weights"),
    ("DAT-002", "no KMS named", {"storage.0.kms": DELETE}, Status.FAIL, "storage/weights"),
    ("DAT-003", "attestation-gated broker", CONFIDENTIAL, Status.PASS, "secrets/key-release"),
    (
        "DAT-003",
        "released without attestation",
        {
            **CONFIDENTIAL,
            "secrets.key_release": {"mechanism": "kms-direct", "requires_attestation": False},
        },
        Status.FAIL,
        "secrets/key-release",
    ),
    (
        "DAT-003",
        "key baked into the image",
        {
            **CONFIDENTIAL,
            "secrets.key_release": {"mechanism": "baked-in", "requires_attestation": True},
        },
        Status.FAIL,
        "secrets/key-release",
    ),
    (
        "DAT-003",
        "undeclared",
        {**CONFIDENTIAL, "secrets.key_release": DELETE},
        Status.NOT_EVALUATED,
        "secrets/key-release",
    ),
    ("CMP-001", "B300 at home", {"node_pools.0.gpu_model": "B300"}, Status.PASS, "pool/pool1"),
    (
        "CMP-001",
        "B300 in China",
        {"node_pools.0.gpu_model": "B300", "sites.0.country": "CN"},
        Status.FAIL,
        "pool/pool1",
    ),
    (
        "CMP-001",
        "GB300 in D:4",
        {"node_pools.0.gpu_model": "GB300", "sites.0.country": "AE"},
        Status.FAIL,
        "pool/pool1",
    ),
]


@pytest.mark.parametrize(
    ("control_id", "changes", "expected", "resource"),
    [pytest.param(c, ch, e, r, id=f"{c}-{name}") for c, name, ch, e, r in CASES],
)
def test_control_case(
    tmp_path: Path, control_id: str, changes: dict[str, Any], expected: Status, resource: str
) -> None:
    findings = run_control(tmp_path, mutate(base_inventory(), changes), control_id)
    by_resource = {f.resource: f for f in findings}
    assert resource in by_resource, [f"{f.resource}: {f.status} {f.message}" for f in findings]
    finding = by_resource[resource]
    assert finding.status is expected, finding.message
    assert finding.control == control_id
    if expected is Status.NOT_EVALUATED:
        assert "missing" in finding.evidence or "unknown" in finding.message


# The controls judged from the inventory alone; the others (evidence-driven: BMC scans, fabric,
# attestation, Kubernetes, GPU collectors) have their pass/fail cases in their own test packages.
INVENTORY_CONTROLS = {
    *(f"GPU-00{i}" for i in range(1, 9)),
    *(f"CC-00{i}" for i in range(1, 5)),
    *(f"OOB-00{i}" for i in range(1, 5)),
    "FW-001",
    "FAB-001",
    "FAB-002",
    *(f"DAT-00{i}" for i in range(1, 4)),
    "CMP-001",
}


def test_every_control_has_a_pass_and_a_fail_case() -> None:
    covered: dict[str, set[Status]] = {}
    for control_id, _, _, expected, _ in CASES:
        covered.setdefault(control_id, set()).add(expected)
    # GPU-008 compares evidence with the inventory: its cases are the test_drift_* tests below.
    covered["GPU-008"] = {Status.PASS, Status.FAIL}
    assert INVENTORY_CONTROLS <= {c.id for c in ALL_CONTROLS}
    for control_id in INVENTORY_CONTROLS:
        assert {Status.PASS, Status.FAIL} <= covered.get(control_id, set()), control_id


def test_not_applicable_is_a_cluster_pass(tmp_path: Path) -> None:
    findings = run_control(tmp_path, base_inventory(), "GPU-002")
    assert [(f.resource, f.status) for f in findings] == [("cluster", Status.PASS)]
    assert findings[0].message.startswith("not applicable")


def test_flat_network_severity_depends_on_planes(tmp_path: Path) -> None:
    mixed = mutate(base_inventory(), {"networks.0.purposes": ["compute", "storage"]})
    (finding,) = [
        f for f in run_control(tmp_path, mixed, "FAB-001") if f.resource == "network/compute"
    ]
    assert finding.severity is Severity.MEDIUM
    mgmt = mutate(base_inventory(), {"networks.0.purposes": ["compute", "management"]})
    (finding,) = [
        f for f in run_control(tmp_path, mgmt, "FAB-001") if f.resource == "network/compute"
    ]
    assert finding.severity is Severity.HIGH


def test_oob_path_is_reported(tmp_path: Path) -> None:
    data = mutate(base_inventory(), {"networks.1.routed_to": ["compute"]})
    (finding,) = run_control(tmp_path, data, "OOB-001")
    assert finding.evidence["paths"][0]["path"] == ["compute", "oob"]
    assert "alpha" in finding.message


def test_findings_point_at_inventory_lines(tmp_path: Path) -> None:
    data = mutate(base_inventory(), {"node_pools.0.host.secure_boot": False})
    (finding,) = run_control(tmp_path, data, "FW-001")
    assert finding.location is not None
    lines = (tmp_path / "inv.yaml").read_text().splitlines()
    assert "secure_boot: false" in lines[finding.location.line - 1]


def _evidence(
    subject: str, observed: dict[str, Any], not_observed: list[dict[str, str]] | None = None
) -> Any:
    from gpufence.model.evidence import EvidenceDocument

    return EvidenceDocument.model_validate(
        {
            "schema": "gpufence.evidence/v1",
            "subject": subject,
            "collector": "nvml",
            "collected_at": "2026-11-20T09:00:00Z",
            "observed": observed,
            "not_observed": not_observed or [],
        }
    )


def _run_with_evidence(
    tmp_path: Path, data: dict[str, Any], control_id: str, docs: list[Any]
) -> list[Any]:
    from gpufence.audit import audit_snapshot
    from gpufence.controls import controls_by_id
    from gpufence.load.inventory import load_snapshot
    from tests.inventories import write_inventory

    snapshot = load_snapshot(write_inventory(tmp_path, data), [(d, "ev.json") for d in docs])
    return list(audit_snapshot(snapshot, [controls_by_id()[control_id]]).findings)


def test_drift_fails_when_observed_differs(tmp_path: Path) -> None:
    docs = [_evidence("node/n1", {"gpu_state.ecc": False, "gpu_state.mig": False})]
    (finding,) = _run_with_evidence(tmp_path, base_inventory(), "GPU-008", docs)
    assert finding.status is Status.FAIL
    assert "ecc: declared true, observed false" in finding.message
    assert finding.evidence["ecc"]["source"] == "observed"


def test_drift_passes_when_observed_matches(tmp_path: Path) -> None:
    docs = [_evidence("node/n1", {"gpu_state.ecc": True, "gpu_state.cc_mode": "off"})]
    (finding,) = _run_with_evidence(tmp_path, base_inventory(), "GPU-008", docs)
    assert finding.status is Status.PASS


def test_drift_not_evaluated_without_evidence(tmp_path: Path) -> None:
    (finding,) = _run_with_evidence(tmp_path, base_inventory(), "GPU-008", [])
    assert finding.status is Status.NOT_EVALUATED
    assert "n1" in finding.message


def test_observed_fact_beats_declared(tmp_path: Path) -> None:
    data = mutate(
        base_inventory(), {**CONFIDENTIAL, **RENTED, "node_pools.0.gpu_state.cc_mode": "on"}
    )
    docs = [_evidence("node/n1", {"gpu_state.cc_mode": "off"})]
    (finding,) = _run_with_evidence(tmp_path, data, "CC-001", docs)
    assert finding.status is Status.FAIL
    assert finding.evidence["cc_mode"]["source"] == "observed"


def test_newest_observation_wins(tmp_path: Path) -> None:
    data = mutate(base_inventory(), {**CONFIDENTIAL, "node_pools.0.gpu_state.ecc": DELETE})
    old = _evidence("node/n1", {"gpu_state.ecc": False})
    new = old.model_copy(
        update={
            "observed": {"gpu_state.ecc": True},
            "collected_at": old.collected_at.replace(day=21),
        }
    )
    (finding,) = _run_with_evidence(tmp_path, data, "GPU-006", [new, old])
    assert finding.status is Status.PASS


def test_unobserved_reason_reaches_not_evaluated(tmp_path: Path) -> None:
    data = mutate(base_inventory(), {**CONFIDENTIAL, "node_pools.0.gpu_state.ecc": DELETE})
    docs = [
        _evidence("node/n1", {}, [{"fact": "gpu_state.ecc", "reason": "NVML_ERROR_NO_PERMISSION"}])
    ]
    (finding,) = _run_with_evidence(tmp_path, data, "GPU-006", docs)
    assert finding.status is Status.NOT_EVALUATED
    assert "NVML_ERROR_NO_PERMISSION" in finding.message


def test_unparseable_observation_is_unknown_not_pass(tmp_path: Path) -> None:
    data = mutate(base_inventory(), {**CONFIDENTIAL, "node_pools.0.gpu_state.ecc": DELETE})
    docs = [_evidence("node/n1", {"gpu_state.ecc": "sometimes"})]
    (finding,) = _run_with_evidence(tmp_path, data, "GPU-006", docs)
    assert finding.status is Status.NOT_EVALUATED
    assert "unparseable" in finding.message


def test_bmc_evidence_applies_to_bmc_facts(tmp_path: Path) -> None:
    docs = [_evidence("bmc/n1-bmc", {"bmc.ipmi_over_lan": True})]
    (finding,) = _run_with_evidence(tmp_path, base_inventory(), "OOB-003", docs)
    assert finding.status is Status.FAIL


def test_crashing_control_is_error_and_others_still_run(tmp_path: Path) -> None:
    from gpufence.controls import controls_by_id
    from gpufence.controls.engine import Control, run_controls
    from gpufence.load.inventory import load_snapshot
    from tests.inventories import write_inventory

    good = controls_by_id()["FW-001"]

    def boom(_snapshot: Any) -> list[Any]:
        raise ValueError("kaboom")

    broken = Control(meta=controls_by_id()["GPU-001"].meta, check=boom)
    snapshot = load_snapshot(write_inventory(tmp_path, base_inventory()))
    findings = run_controls(snapshot, [broken, good])
    assert findings[0].status is Status.ERROR and "kaboom" in findings[0].message
    assert findings[1].control == "FW-001" and findings[1].status is Status.PASS


def test_unvalidated_blackwell_cc_is_explained_not_denied(tmp_path: Path) -> None:
    data = mutate(
        base_inventory(),
        {"node_pools.0.gpu_model": "GB200", "node_pools.0.gpu_state.cc_mode": "on"},
    )
    (finding,) = run_control(tmp_path, data, "CC-002")
    assert finding.status is Status.FAIL
    assert "not on NVIDIA's validated" in finding.message
    data = mutate(
        base_inventory(), {"node_pools.0.gpu_model": "L40S", "node_pools.0.gpu_state.cc_mode": "on"}
    )
    (finding,) = run_control(tmp_path, data, "CC-002")
    assert "has no confidential computing" in finding.message
