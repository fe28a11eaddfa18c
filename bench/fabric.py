"""Benchmark: the tenant reachability verdict for 100,000 hosts and 2,000 tenants (IB + Ethernet).

The fleet: every host has one InfiniBand port and one bare-metal (tenant-controlled) Ethernet
port. InfiniBand: the partitions.conf that `fabric/emit.py` writes (one PKey per tenant, all
tenant ports limited members of a storage partition with 16 full-member targets), plus one planted
leak (a host of t8 added as a limited member of t7's PKey). Ethernet: 40 hosts per leaf switch,
each tenant a VLAN on its leaves mapped to its own VXLAN VNI and VRF, a management VLAN on every
leaf (VNI 10, VRF mgmt) holding the switches' management ports; planted: a route leak between the
VRFs of t10 and t11, and one host port of t42 that also admits the management VLAN.

Timed ("verdict"): parse the 5.6 MB partitions.conf as OpenSM does, program every port's PKey
table, the IB tenant verdict, the Ethernet union-find and the tenant->tenant and
tenant->management verdicts. Baseline: a naive all-pairs check on a 2,000-host sample (the
planted hosts included): per host pair, OpenSM's pair rule on the two PKey tables, and
reachability by a breadth-first search from each source host over the switch graph; it is
quadratic, so its time is also extrapolated to the whole fleet. Both must agree on the sample.

    .venv/bin/python bench/fabric.py [--hosts 100000] [--tenants 2000] [--sample 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import resource
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gpufence.fabric.emit import TENANT_PKEY_BASE, emit_partitions
from gpufence.fabric.ib import IbVerdict, tenant_reach
from gpufence.fabric.membership import PKeyTable, PortType, SubnetPorts, program, shared_pkey
from gpufence.fabric.partitions import parse_partitions
from gpufence.fabric.segments import SegmentGraph, segment_key

T = TypeVar("T")
GUID_BASE = 0x0002C90300000000
HOSTS_PER_LEAF = 40
MGMT_VLAN = 10


@dataclass
class Fleet:
    hosts: int
    tenants: int
    conf: bytes
    subnet: SubnetPorts
    owners: dict[int, tuple[str, ...]]
    host_tenant: list[str]
    joins: list[tuple[tuple[str, str, int] | tuple[str, object], tuple[object, ...], str]]
    ports: list[tuple[str, str, list[int], int]]  # tenant, host, allowed VLANs, leaf
    leaves: int
    planted: dict[str, tuple[str, str]]
    planted_hosts: list[int]


def tenant_of(i: int, hosts: int, tenants: int) -> int:
    return i * tenants // hosts


def build(hosts: int, tenants: int) -> Fleet:
    names = [f"t{t}" for t in range(tenants)]
    host_tenant = [names[tenant_of(i, hosts, tenants)] for i in range(hosts)]
    plan: dict[str, list[int]] = {name: [] for name in names}
    for i, name in enumerate(host_tenant):
        plan[name].append(GUID_BASE + i)
    storage = [GUID_BASE + hosts + k for k in range(16)]
    pkeys = {name: TENANT_PKEY_BASE + t for t, name in enumerate(names)}
    text = emit_partitions(plan, storage, pkeys=pkeys)
    victim, intruder = "t7", "t8"
    intruder_host = plan[intruder][0] - GUID_BASE
    text += f"{victim} : 0x{plan[intruder][0]:016x}=limited ;\n"  # planted: t8 host into t7
    ports = {GUID_BASE + i: PortType.CA for i in range(hosts)}
    ports.update(dict.fromkeys(storage, PortType.CA))
    sm = GUID_BASE + hosts + 100
    ports[sm] = PortType.SWITCH
    owners = {GUID_BASE + i: (host_tenant[i],) for i in range(hosts)}

    leaves = (hosts + HOSTS_PER_LEAF - 1) // HOSTS_PER_LEAF
    joins: list[tuple[tuple[str, str, int] | tuple[str, object], tuple[object, ...], str]] = []
    on_leaf: dict[int, set[int]] = {}
    for i in range(hosts):
        on_leaf.setdefault(i // HOSTS_PER_LEAF, set()).add(tenant_of(i, hosts, tenants))
    for leaf in range(leaves):
        switch = f"leaf{leaf}"
        mgmt = segment_key(switch, MGMT_VLAN)
        joins.append((mgmt, ("vni", MGMT_VLAN), f"{switch} maps VLAN {MGMT_VLAN} to VNI 10"))
        joins.append((mgmt, ("vrf", "mgmt"), f"{switch} VLAN {MGMT_VLAN} SVI in VRF mgmt"))
        for t in sorted(on_leaf.get(leaf, ())):
            seg = segment_key(switch, 100 + t)
            joins.append((seg, ("vni", 10000 + t), f"{switch} maps VLAN {100 + t} to VNI"))
            joins.append((seg, ("vrf", f"t{t}"), f"{switch} VLAN {100 + t} SVI in VRF t{t}"))
    joins.append((("vrf", "t10"), ("vrf", "t11"), "route leak between VRF t10 and VRF t11"))
    host_ports: list[tuple[str, str, list[int], int]] = []
    rogue = next(i for i in range(hosts) if host_tenant[i] == "t42")
    for i in range(hosts):
        t = tenant_of(i, hosts, tenants)
        vlans = [100 + t] + ([MGMT_VLAN] if i == rogue else [])
        host_ports.append((host_tenant[i], f"h{i}", vlans, i // HOSTS_PER_LEAF))
    leaky_hosts = [
        next(i for i in range(hosts) if host_tenant[i] == name) for name in ("t7", "t10", "t11")
    ]
    return Fleet(
        hosts=hosts,
        tenants=tenants,
        conf=text.encode(),
        subnet=SubnetPorts(ports, sm),
        owners=owners,
        host_tenant=host_tenant,
        joins=joins,
        ports=host_ports,
        leaves=leaves,
        planted={
            "infiniband": (victim, intruder),
            "ethernet": ("t10", "t11"),
            "oob": ("t42", "mgmt"),
        },
        planted_hosts=[intruder_host, rogue, *leaky_hosts],
    )


@dataclass
class Verdict:
    ib: IbVerdict
    ethernet: set[tuple[str, str]]
    oob: set[tuple[str, str]]
    tables: dict[int, PKeyTable]
    times: dict[str, float]


def verdict(fleet: Fleet) -> Verdict:
    times = {}
    start = time.perf_counter()
    config = parse_partitions(fleet.conf, "bench.partitions.conf")
    times["parse partitions.conf"] = time.perf_counter() - start
    mark = time.perf_counter()
    programmed = program(config, fleet.subnet)
    times["program PKey tables"] = time.perf_counter() - mark
    mark = time.perf_counter()
    ib = tenant_reach(programmed.tables, fleet.owners, programmed.names)
    times["IB tenant verdict"] = time.perf_counter() - mark
    mark = time.perf_counter()
    graph = SegmentGraph()
    for a, b, reason in fleet.joins:
        graph.join(a, b, reason)
    for leaf in range(fleet.leaves):
        graph.attach("infra:mgmt", f"leaf{leaf}-mgmt", segment_key(f"leaf{leaf}", MGMT_VLAN), "")
    for tenant, host, vlans, leaf in fleet.ports:
        for vlan in vlans:  # bare metal: every VLAN the port admits
            graph.attach(tenant, host, segment_key(f"leaf{leaf}", vlan), "")
    ethernet: set[tuple[str, str]] = set()
    oob: set[tuple[str, str]] = set()
    for members, _ in graph.shared():
        tenants = sorted(o for o in members if not o.startswith("infra:"))
        ethernet.update(itertools.combinations(tenants, 2))
        oob.update(
            (t, o.removeprefix("infra:"))
            for t in tenants
            for o in members
            if o.startswith("infra:")
        )
    times["Ethernet/OOB verdict"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    return Verdict(ib, ethernet, oob, dict(programmed.tables), times)


def naive(
    fleet: Fleet, tables: dict[int, PKeyTable], sample: list[int]
) -> tuple[set[tuple[str, str]], ...]:
    """All pairs of sample hosts: OpenSM's pair rule on their tables; BFS over the switch graph."""
    adjacency: dict[object, list[object]] = {}
    for a, b, _ in fleet.joins:
        adjacency.setdefault(a, []).append(b)
        adjacency.setdefault(b, []).append(a)
    segments = {
        i: [segment_key(f"leaf{leaf}", v) for v in vlans]
        for i, (_, _, vlans, leaf) in enumerate(fleet.ports)
        if i in set(sample)
    }
    mgmt = {segment_key(f"leaf{leaf}", MGMT_VLAN) for leaf in range(fleet.leaves)}
    ib: set[tuple[str, str]] = set()
    eth: set[tuple[str, str]] = set()
    oob: set[tuple[str, str]] = set()
    for a in sample:
        seen = set(segments[a])
        queue = deque(seen)
        while queue:
            for nxt in adjacency.get(queue.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        ta = fleet.host_tenant[a]
        if seen & mgmt:
            oob.add((ta, "mgmt"))
        for b in sample:
            tb = fleet.host_tenant[b]
            if b <= a or ta == tb:
                continue
            pair = (min(ta, tb), max(ta, tb))
            if shared_pkey(tables[GUID_BASE + a], tables[GUID_BASE + b]) is not None:
                ib.add(pair)
            if any(s in seen for s in segments[b]):
                eth.add(pair)
    return ib, eth, oob


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    fleet = build(args.hosts, args.tenants)
    members = fleet.conf.count(b"=full") + fleet.conf.count(b"=limited")
    print(
        f"fleet: {fleet.hosts:,} hosts, {fleet.tenants:,} tenants, {fleet.leaves:,} leaf switches, "
        f"{len(fleet.joins):,} segment joins; partitions.conf {len(fleet.conf) / 1e6:.1f} MB, "
        f"{members:,} members"
    )
    runs = [verdict(fleet) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r.times["total"])
    for stage, seconds in best.times.items():
        print(f"  {stage:<24} {seconds:7.3f} s")
    target = "met" if best.times["total"] < 2.0 else "MISSED"
    print(f"verdict, best of {args.repeat}: {best.times['total']:.3f} s (target < 2 s: {target})")
    tracemalloc.start()
    verdict(fleet)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: {peak / 2**20:.0f} MiB traced by the verdict (separate run); "
        f"process max RSS {rss:.0f} MiB (fleet model included)"
    )
    ib_pairs = set(best.ib.leaks)
    print(f"found: IB {sorted(ib_pairs)}, Ethernet {sorted(best.ethernet)}, OOB {sorted(best.oob)}")
    assert ib_pairs == {fleet.planted["infiniband"]}
    assert best.ethernet == {fleet.planted["ethernet"]}
    assert best.oob == {fleet.planted["oob"]}

    rng = random.Random(1)
    sample = sorted(set(rng.sample(range(fleet.hosts), args.sample - 5)) | set(fleet.planted_hosts))
    pairs = len(sample) * (len(sample) - 1) // 2
    seconds, (ib, eth, oob) = best_of(1, lambda: naive(fleet, best.tables, sample))
    in_sample = {fleet.host_tenant[i] for i in sample}
    agree = (
        ib == {p for p in ib_pairs if set(p) <= in_sample}
        and eth == {p for p in best.ethernet if set(p) <= in_sample}
        and oob == {p for p in best.oob if p[0] in in_sample}
    )
    scale = (fleet.hosts / len(sample)) ** 2
    print(
        f"baseline: naive all-pairs on a {len(sample):,}-host sample ({pairs:,} pairs, same "
        f"run): {seconds:.2f} s; extrapolated to {fleet.hosts:,} hosts (x{scale:,.0f}): "
        f"{seconds * scale:,.0f} s"
    )
    total = best.times["total"]
    print(
        f"ratio: naive extrapolated / gpufence verdict = {seconds * scale / total:,.0f}x; "
        f"naive on the sample alone / gpufence on all {fleet.hosts:,} hosts = "
        f"{seconds / total:.1f}x; sample verdicts agree: {agree}"
    )
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
