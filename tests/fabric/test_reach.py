"""Reachability models: Ethernet/L3 segments (VLAN, VNI, VRF, routes), IB tenant verdict, observed
state parsers and drift."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from gpufence.fabric.drift import drift
from gpufence.fabric.ib import tenant_reach
from gpufence.fabric.membership import FULL, LIMITED, shared_pkey
from gpufence.fabric.observed import (
    observed_fabric,
    parse_guid2lid,
    parse_ibnetdiscover,
    parse_pathrecords,
    parse_pkey_dump,
    parse_pktr,
    parse_sminfo,
)
from gpufence.fabric.partitions import parse_partitions
from gpufence.fabric.reach import components, explain_route, plane_graph, route_path
from gpufence.fabric.segments import SegmentGraph, segment_key
from gpufence.model.inventory import Inventory, Network
from tests.inventories import base_inventory


def net(name: str, **kw: object) -> Network:
    return Network.model_validate({"name": name, "kind": "ethernet", "purposes": ["compute"], **kw})


def test_vni_and_vrf_join_networks() -> None:
    nets = [
        net("a", vni=5001),
        net("b", vni=5001),
        net("c", vrf="blue"),
        net("d", vrf="blue", routed_to=["e"]),
        net("e"),
        net("f", vrf="red"),
    ]
    assert components(nets) == [("a", "b"), ("c", "d", "e"), ("f",)]
    hops = explain_route(nets, "c", "e")
    assert hops is not None
    assert [(h.a, h.b) for h in hops] == [("c", "VRF blue"), ("VRF blue", "d"), ("d", "e")]
    assert route_path(nets, "c", "e") == ["c", "d", "e"]  # VNI/VRF hops elided for callers
    assert route_path(nets, "a", "f") is None
    assert route_path(nets, "a", "a") == ["a"]


def test_segment_graph_trunks_vni_and_witness_path() -> None:
    graph = SegmentGraph()
    graph.join(segment_key("leaf1", 10), segment_key("spine", 10), "trunk leaf1-spine allows 10")
    graph.join(segment_key("leaf2", 20), ("vni", 9000), "leaf2 maps VLAN 20 to VNI 9000")
    graph.join(segment_key("spine", 10), ("vni", 9000), "spine maps VLAN 10 to VNI 9000")
    graph.attach("alpha", "h1", segment_key("leaf1", 10), "h1 on leaf1 VLAN 10")
    graph.attach("beta", "h2", segment_key("leaf2", 20), "h2 on leaf2 VLAN 20")
    graph.attach("gamma", "h3", segment_key("leaf3", 30), "h3 alone")
    ((members, _),) = list(graph.shared())
    assert set(members) == {"alpha", "beta"}
    path = graph.path(members["alpha"].key, members["beta"].key)
    assert path is not None
    assert [h.reason for h in path] == [
        "trunk leaf1-spine allows 10",
        "spine maps VLAN 10 to VNI 9000",
        "leaf2 maps VLAN 20 to VNI 9000",
    ]


def test_segment_graph_matches_bfs_on_random_graphs() -> None:
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(2, 25)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, n))]
        graph = SegmentGraph()
        for a, b in edges:
            graph.join(a, b, f"{a}-{b}")
        for i in range(n):
            graph.node(i)
        adjacency: dict[int, set[int]] = {i: set() for i in range(n)}
        for a, b in edges:
            adjacency[a].add(b)
            adjacency[b].add(a)
        for a, b in itertools.combinations(range(n), 2):
            seen, stack = {a}, [a]
            while stack:
                for nxt in adjacency[stack.pop()] - seen:
                    seen.add(nxt)
                    stack.append(nxt)
            assert graph.same_segment(a, b) == (b in seen)
            assert (graph.path(a, b) is not None) == (b in seen)


def _inventory(changes: dict[str, object]) -> Inventory:
    data = base_inventory()
    data["node_pools"].append(
        {
            **data["node_pools"][0],
            "name": "pool2",
            "workloads": [{"tenant": "beta"}],
            "nodes": [{"name": "n2"}],
        }
    )
    data.update(changes)
    return Inventory.model_validate(data)


def _tenant_pairs(graph: SegmentGraph) -> set[tuple[str, str]]:
    pairs = set()
    for members, _ in graph.shared():
        tenants = sorted(o for o in members if not o.startswith("infra:"))
        pairs.update(itertools.combinations(tenants, 2))
    return pairs


def test_plane_graph_splits_isolated_networks_and_follows_joins() -> None:
    base = base_inventory()["networks"]
    flat = [{**base[0], "kind": "ethernet", "tenant_isolation": "none"}, base[1]]
    assert _tenant_pairs(plane_graph(_inventory({"networks": flat}), undeclared_flat=False)) == {
        ("alpha", "beta")
    }
    vlans = [{**base[0], "kind": "ethernet", "tenant_isolation": "vlan"}, base[1]]
    inv = _inventory({"networks": vlans})
    assert _tenant_pairs(plane_graph(inv, undeclared_flat=False)) == set()
    routed = [{**vlans[0], "routed_to": ["oob"]}, base[1]]  # both tenant segments routed to oob
    graph = plane_graph(_inventory({"networks": routed}), undeclared_flat=False)
    assert _tenant_pairs(graph) == {("alpha", "beta")}
    undeclared = [{**base[0], "kind": "ethernet", "tenant_isolation": None}, base[1]]
    inv = _inventory({"networks": undeclared})
    assert _tenant_pairs(plane_graph(inv, undeclared_flat=False)) == set()
    assert _tenant_pairs(plane_graph(inv, undeclared_flat=True)) == {("alpha", "beta")}
    ib = [{**base[0], "tenant_isolation": "none"}, base[1]]  # IB: judged on the IB plane
    assert _tenant_pairs(plane_graph(_inventory({"networks": ib}), undeclared_flat=True)) == set()


def test_ib_tenant_reach_matches_pairwise_rule() -> None:
    rng = random.Random(3)
    for _ in range(40):
        ports = list(range(1, rng.randint(2, 14)))
        owners = {p: (rng.choice(["a", "b", "c", "d"]),) for p in ports if rng.random() < 0.9}
        tables = {
            p: {k: rng.choice([FULL, LIMITED]) for k in rng.sample(range(1, 6), rng.randint(0, 3))}
            for p in ports
        }
        verdict = tenant_reach(tables, owners, {})
        expected = set()
        for a, b in itertools.permutations(owners, 2):
            ta, tb = owners[a][0], owners[b][0]
            if ta != tb and shared_pkey(tables[a], tables[b]) is not None:
                expected.add(tuple(sorted((ta, tb))))
        assert set(verdict.leaks) == expected
        for leak in verdict.leaks.values():  # each witness really proves it
            table_a, table_b = tables[leak.a_port.guid], tables[leak.b_port.guid]
            assert leak.pkey in table_a and leak.pkey in table_b
            assert leak.a_port.guid != leak.b_port.guid


def test_a_port_shared_by_two_tenants_is_not_a_leak_by_itself() -> None:
    verdict = tenant_reach({1: {5: FULL}}, {1: ("a", "b")}, {})
    assert not verdict.leaks
    verdict = tenant_reach({1: {5: FULL}, 2: {5: LIMITED}}, {1: ("a", "b"), 2: ("b",)}, {})
    assert set(verdict.leaks) == {("a", "b")}


# -- observed state --------------------------------------------------------------------------


def test_ibnetdiscover_formats_agree(fixtures: Path) -> None:
    topo = parse_ibnetdiscover((fixtures / "ibsim_ibnetdiscover.txt").read_text())
    ports = parse_ibnetdiscover((fixtures / "ibsim_ibnetdiscover_ports.txt").read_text())
    assert {(p.guid, p.lid, p.port) for p in topo.ports} == {
        (p.guid, p.lid, p.port) for p in ports.ports
    }
    names = {p.node_name: p.guid for p in topo.ports}
    assert names == {
        "Hca1": 0x100001,
        "Hca2": 0x100004,
        "Hca3": 0x100007,
        "Hca4": 0x10000A,
        "Switch1": 0x200000,
        "Switch2": 0x200001,
    }
    assert parse_guid2lid((fixtures / "ibsim_opensm_guid2lid").read_text()) == {
        p.guid: p.lid for p in topo.ports
    }


def test_sa_answers_follow_the_rule_on_the_recorded_tables(fixtures: Path) -> None:
    topo = parse_ibnetdiscover((fixtures / "ibsim_ibnetdiscover.txt").read_text())
    fabric = observed_fabric(
        topo, parse_pkey_dump((fixtures / "ibsim_smpquery_pkeys.txt").read_text())
    )
    by_lid = {p.lid: p.table() for p in fabric.ports}
    answers = parse_pathrecords((fixtures / "ibsim_saquery_pathrecords.txt").read_text())
    assert [(a.slid, a.dlid, a.pkey) for a in answers] == [
        (2, 4, "0x8a01"),
        (2, 5, None),
        (2, 6, "0x0c01"),
        (4, 6, None),
        (2, 1, "0x7fff"),
    ]
    for answer in answers:
        a, b = by_lid[answer.slid], by_lid[answer.dlid]
        assert a is not None and b is not None
        rule = shared_pkey(a, b)
        assert (answer.pkey is None) == (rule is None)
        if answer.pkey is not None:
            assert int(answer.pkey, 16) & 0x7FFF == rule


def test_pktr_and_sminfo(fixtures: Path) -> None:
    pktr = parse_pktr((fixtures / "ibsim_saquery_pktr.txt").read_text())
    assert [v for v in pktr[(2, 1)] if v] == [0x7FFF, 0x8A01, 0x0C01]
    assert parse_sminfo((fixtures / "ibsim_sminfo.txt").read_text()) == (
        1,
        0x200000,
        "SMINFO_MASTER",
    )


def test_drift_on_recorded_state(examples: Path, fixtures: Path) -> None:
    topo = parse_ibnetdiscover((fixtures / "ibsim_ibnetdiscover.txt").read_text())
    dump = parse_pkey_dump((fixtures / "ibsim_smpquery_pkeys.txt").read_text())
    sm = parse_sminfo((fixtures / "ibsim_sminfo.txt").read_text())
    intent = (examples / "ibsim-tenants.partitions.conf").read_bytes()
    found, compared, note = drift(parse_partitions(intent), observed_fabric(topo, dump, sm=sm))
    assert (found, compared, note) == ([], 6, None)
    moved = intent.replace(b"0x100001, 0x100004 ;", b"0x100001 ;\nX=0x0b01 : 0x100004=full ;")
    found, _, _ = drift(parse_partitions(moved), observed_fabric(topo, dump, sm=sm))
    assert [(d.node, d.unexpected, d.missing) for d in found] == [
        ("Hca2", ("0x8a01",), ("0x8b01",))
    ]
    # Without sminfo the SM's port is inferred when it is the only difference.
    found, _, note = drift(parse_partitions(intent), observed_fabric(topo, dump))
    assert found == [] and note is not None and "Switch1" in note


@pytest.mark.parametrize(
    "text",
    ["", "garbage\n", "CA 6 1 xyz\n"],
)
def test_ibnetdiscover_rejects_garbage(text: str) -> None:
    from gpufence.errors import InputError

    with pytest.raises(InputError):
        parse_ibnetdiscover(text)


def test_route_between_two_per_tenant_networks_keeps_tenants_apart() -> None:
    base = base_inventory()["networks"]
    front = {
        "name": "front",
        "kind": "ethernet",
        "purposes": ["tenant"],
        "tenant_isolation": "vxlan",
    }
    storage = {**base[0], "kind": "ethernet", "tenant_isolation": "vrf", "routed_to": ["front"]}
    changes = {"networks": [storage, front, base[1]]}
    inv = _inventory(changes)
    data = inv.model_dump()
    for pool in data["node_pools"]:
        pool["networks"] = ["compute", "front"]
    inv = Inventory.model_validate(data)
    graph = plane_graph(inv, undeclared_flat=True)
    assert _tenant_pairs(graph) == set()
    assert graph.same_segment(("network", "compute", "alpha"), ("network", "front", "alpha"))
    shared = {**front, "tenant_isolation": "none"}  # a flat front network merges them again
    data["networks"] = [storage, shared, base[1]]
    assert _tenant_pairs(plane_graph(Inventory.model_validate(data), undeclared_flat=True)) == {
        ("alpha", "beta")
    }
