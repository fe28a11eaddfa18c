"""A fleet audited a batch of BMCs at a time has the findings of one whole audit.

Random fleets as `gpufence scan bmc` audits them (BMCs with random scan facts and facts
reported unobserved, some with two documents) and random batchings: the batched audit must give
exactly the whole audit's findings. This is also what holds every OOB/FW control to its
``peer_facts`` declaration: a control that compares resources without declaring it makes some
batching disagree (FW-003 without its declaration does; see the last test).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.collect.bmc.evidence import scan_snapshot
from gpufence.collect.bmc.targets import BmcTarget
from gpufence.controls import ALL_CONTROLS, Control, audit_snapshot, controls_by_id
from gpufence.controls.batches import audit_in_batches
from gpufence.controls.oob.topology import TOPOLOGY_CONTROLS
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument, Unobserved
from gpufence.model.findings import AuditResult, Plane
from tests.collect.bmc.test_controls_bmc import CASES
from tests.inventories import base_inventory, write_inventory

# The controls `scan bmc` runs without an inventory (cli/scan.py).
SCAN_CONTROLS = [
    c
    for c in ALL_CONTROLS
    if c.meta.plane in (Plane.OOB, Plane.FW) and c.id not in TOPOLOGY_CONTROLS
]
ORIGIN = "scan.jsonl"

FACTS: list[dict[str, Any]] = [facts for _, facts, _, _ in CASES]
SYSTEMS: list[list[dict[str, Any]]] = [
    [{"id": "1", "model": "DL380a Gen11", "secure_boot": {"enabled": True, "mode": "UserMode"}}],
    [{"id": "1", "model": "DL380a Gen11", "secure_boot": {"enabled": False}}],
    [
        {"id": "a", "model": "XE9680", "host_name": "n0"},
        {"id": "b", "model": "XE9680", "secure_boot": {"enabled": True}},
    ],
    [],
]
FIRMWARE: list[list[dict[str, str]]] = [
    [{"name": "iLO 6", "version": "1.62"}, {"name": "H100 NVL", "version": "96.00.AF.00.02"}],
    [{"name": "iLO 6", "version": "1.66"}, {"name": "H100 NVL", "version": "96.00.AF.00.02"}],
    [{"name": "iDRAC", "version": "7.10.30.00"}],
]
TIMES = ["2026-11-20T09:00:00Z", "2026-11-21T09:00:00Z"]


@st.composite
def bmc_documents(draw: st.DrawFn, name: str) -> list[EvidenceDocument]:
    documents = []
    for when in draw(st.sampled_from([[TIMES[0]], [TIMES[1]], TIMES, [TIMES[0], TIMES[0]]])):
        observed: dict[str, Any] = {}
        for facts in draw(st.lists(st.sampled_from(FACTS), max_size=6)):
            observed.update({f"bmc.{k.replace('__', '.')}": v for k, v in facts.items()})
        if draw(st.booleans()):
            observed["bmc.systems"] = draw(st.sampled_from(SYSTEMS))
        if draw(st.booleans()):
            observed["bmc.firmware_inventory"] = draw(st.sampled_from(FIRMWARE))
        unseen = draw(st.lists(st.sampled_from(["bmc.systems", "bmc.accounts", "bmc.ntp"])))
        documents.append(
            EvidenceDocument.model_validate(
                {
                    "schema": "gpufence.evidence/v1",
                    "subject": f"bmc/{name}",
                    "collector": "gpufence-bmc-scan",
                    "collected_at": when,
                    "observed": {k: v for k, v in observed.items() if k not in unseen},
                    "not_observed": [
                        Unobserved(fact=f, reason="403 Forbidden").model_dump() for f in set(unseen)
                    ],
                }
            )
        )
    return documents


@st.composite
def fleets(draw: st.DrawFn) -> list[tuple[str, list[EvidenceDocument]]]:
    """BMC names, each with its documents."""
    count = draw(st.integers(min_value=1, max_value=8))
    return [(f"b{i}", draw(bmc_documents(f"b{i}"))) for i in range(count)]


def _targets(names: Iterable[str]) -> list[BmcTarget]:
    return [BmcTarget(n, f"127.0.0.{i + 1}", None) for i, n in enumerate(names)]


def _batched(
    draw: Callable[[st.SearchStrategy[bool]], bool], fleet: list[tuple[str, list[EvidenceDocument]]]
) -> list[list[tuple[str, list[EvidenceDocument]]]]:
    """The fleet in contiguous batches of random sizes."""
    batches: list[list[tuple[str, list[EvidenceDocument]]]] = [[]]
    for bmc in fleet:
        if batches[-1] and draw(st.booleans()):
            batches.append([])
        batches[-1].append(bmc)
    return batches


def _dumps(result: AuditResult) -> list[str]:
    return sorted(json.dumps(f.model_dump(mode="json"), sort_keys=True) for f in result.findings)


def _same(
    fleet: list[tuple[str, list[EvidenceDocument]]],
    batches: list[list[tuple[str, list[EvidenceDocument]]]],
    controls: list[Control],
) -> None:
    targets = _targets(name for name, _ in fleet)
    everything = [d for _, docs in fleet for d in docs]
    whole = audit_snapshot(scan_snapshot(targets, everything, ORIGIN), controls)
    batched = audit_in_batches(
        lambda: (
            scan_snapshot(
                _targets(n for n, _ in batch), [d for _, docs in batch for d in docs], ORIGIN
            )
            for batch in batches
        ),
        lambda documents: scan_snapshot(targets, [d for d, _ in documents], ORIGIN),
        controls,
    )
    assert _dumps(batched) == _dumps(whole)
    order = [c.id for c in controls]
    assert [f.control for f in batched.findings] == sorted(
        (f.control for f in batched.findings), key=order.index
    )
    assert batched.controls == whole.controls


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fleet=fleets(), data=st.data())
def test_batched_scan_audit_equals_the_whole(
    fleet: list[tuple[str, list[EvidenceDocument]]], data: st.DataObject
) -> None:
    _same(fleet, _batched(data.draw, fleet), SCAN_CONTROLS)


def test_a_bmc_without_evidence_is_refused() -> None:
    batch = scan_snapshot(_targets(["b0"]), [], ORIGIN)
    with pytest.raises(ValueError, match="bmc/b0 has no evidence"):
        audit_in_batches(lambda: [batch], lambda _: batch, SCAN_CONTROLS)


def test_a_bmc_in_two_batches_is_refused() -> None:
    document = EvidenceDocument.new(subject="bmc/b0", collector="gpufence-bmc-scan")
    batch = scan_snapshot(_targets(["b0"]), [document], ORIGIN)
    with pytest.raises(ValueError, match="bmc/b0 is in two batches"):
        audit_in_batches(lambda: [batch, batch], lambda _: batch, SCAN_CONTROLS)


def test_an_undeclared_peer_comparison_is_caught() -> None:
    # FW-003 without its peer_facts declaration: judged per batch, a server is compared only
    # with the peers in its own batch, and the batched findings differ from the whole audit.
    drift = controls_by_id()["FW-003"]
    undeclared = dataclasses.replace(drift, peer_facts=())
    system = [{"id": "1", "model": "DL380a Gen11"}]
    fleet = [
        (
            f"b{i}",
            [
                EvidenceDocument.new(
                    subject=f"bmc/b{i}",
                    collector="gpufence-bmc-scan",
                    observed={"bmc.systems": system, "bmc.firmware_inventory": FIRMWARE[i // 2]},
                )
            ],
        )
        for i in range(4)
    ]
    batches = [fleet[:2], fleet[2:]]
    _same(fleet, batches, [drift])
    with pytest.raises(AssertionError):
        _same(fleet, batches, [undeclared])


# -- with an inventory: batches are the inventory seen through a few BMCs (Snapshot.scoped) ------


@st.composite
def inventories(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, list[EvidenceDocument]]]]:
    """An inventory (BMCs on the OOB or a tenant network, with or without a shared NIC; nodes
    with and without a BMC, in a pool where tenants may have root) and each BMC's documents."""
    fleet = draw(fleets())
    data = base_inventory()
    data["bmcs"] = [
        {
            "name": name,
            "address": f"10.0.0.{i + 1}",
            "network": draw(st.sampled_from(["oob", "oob", "compute"])),
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "shared_nic": st.booleans(),
                        "default_credentials": st.booleans(),
                        "ipmi_over_lan": st.booleans(),
                    },
                )
            ),
        }
        for i, (name, _) in enumerate(fleet)
    ]
    managed = draw(st.lists(st.sampled_from([n for n, _ in fleet]), unique=True))
    extra = draw(st.integers(0, 2))
    nodes = [{"name": f"n{i}", "bmc": b} for i, b in enumerate(managed)]
    nodes += [{"name": f"loose{i}"} for i in range(extra)]
    data["node_pools"][0]["nodes"] = nodes or [{"name": "n0"}]
    data["node_pools"][0]["tenant_root"] = draw(st.booleans())
    if draw(st.booleans()):
        data["node_pools"][0]["host"] = {}  # Secure Boot not declared: the BMC's word counts
    return data, fleet


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=inventories(), data=st.data())
def test_batched_inventory_audit_equals_the_whole(
    case: tuple[dict[str, Any], list[tuple[str, list[EvidenceDocument]]]], data: st.DataObject
) -> None:
    inventory, fleet = case
    with tempfile.TemporaryDirectory() as tmp:
        base = load_snapshot(write_inventory(Path(tmp), inventory))
    controls = [c for c in ALL_CONTROLS if c.meta.plane in (Plane.OOB, Plane.FW)]
    everything = [(d, ORIGIN) for _, docs in fleet for d in docs]
    whole = audit_snapshot(base.with_evidence(everything), controls)
    batches = _batched(data.draw, fleet)
    batched = audit_in_batches(
        lambda: (
            base.scoped((n for n, _ in batch), unmanaged=i == 0).with_evidence(
                [(d, ORIGIN) for _, docs in batch for d in docs]
            )
            for i, batch in enumerate(batches)
        ),
        base.with_evidence,
        controls,
    )
    assert _dumps(batched) == _dumps(whole)
