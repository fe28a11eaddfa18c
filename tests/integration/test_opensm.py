"""gpufence against a real subnet manager: OpenSM 3.3.23 on a simulated fabric (ibsim).

For each partitions.conf (the shared examples and every parser trap), OpenSM programs the PKey
tables; gpufence reads them back (`observe_live`: ibnetdiscover + sminfo + smpquery) and they
must equal what gpufence predicted from the file alone. Then the subnet administrator's own
PathRecord answer for every host pair must equal gpufence's reachability verdict, the fail-open
trap is shown end to end, the emitter's output isolates tenants, and drift is detected.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.fabric.ibsim import Subnet, ibsim_subnet

from gpufence.collect.fabric import observe_live, read_pkey_tables
from gpufence.fabric.check import fabric_report
from gpufence.fabric.emit import emit_partitions
from gpufence.fabric.lint import lint_bytes
from gpufence.fabric.membership import SubnetPorts, format_table, program, shared_pkey
from gpufence.fabric.observed import (
    ObservedFabric,
    observed_fabric,
    parse_ibnetdiscover,
    parse_pathrecords,
)
from gpufence.fabric.partitions import parse_partitions
from gpufence.fabric.records import observed_of
from gpufence.load.inventory import load_snapshot
from gpufence.load.referenced import with_referenced

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ibsim")]

SM_PORT = 0x200000
HCA = {"Hca1": 0x100001, "Hca2": 0x100004, "Hca3": 0x100007, "Hca4": 0x10000A}


@pytest.fixture
def subnet(shared_dir: Path, tmp_path: Path) -> Iterator[Subnet]:
    with ibsim_subnet(shared_dir / "data/fabric/fixtures/ibsim_net.2sw2path4hca", tmp_path) as s:
        yield s


def _long_line() -> bytes:
    # OpenSM reads 4,094 bytes at a time: put the cut inside Hca2's GUID (0x100004).
    head = b"T=0x0a01, defmember=full : "
    pad = b"NONE, " * ((4094 - len(head) - 4) // 6)
    line = head + pad
    line += b" " * (4094 - len(line) - 4) + b"0x100004, 0x100007 ;\n"
    return b"Default=0x7fff : ALL=limited, SELF=full ;\n" + line


SYNTHETIC: dict[str, bytes] = {
    "crlf": b"Default=0x7fff : ALL=limited, SELF=full ;\r\nA=0x0a01 : 0x100001=full ;\r\n",
    "stray-semicolon": b"Default=0x7fff : ALL=limited, SELF=full ;;\nA=0x0a01 : 0x100001=full;\n",
    "mgid-eats-line": b"D=0x7fff: ALL=limited, SELF=full;\n"
    b"P=0x10: 0x100001=full, mgid=ff12:401b::1, 0x100004=full;\n",
    "mgid-then-statement": b"Default=0x7fff: ALL=limited, SELF=full;\n"
    b"P=0x10: mgid=ff12:401b::1; Q=0x20: 0x100004=full;\nR=0x30 : 0x100007=full;\n",
    "long-line-split": _long_line(),
    "generated-pkey-collision": b"A : 0x100001=full ;\nB=0x0001 : 0x100004=full ;\n",
    "number-formats": b"P=0x10 : 1048583=full, -0x100004=full, 0X10000a=full, 0100001 ;\n",
    "prefix-keywords": b"Default=0x7fff : AL=limited, S=full ;\nP=0x10 : ALL_S=full, ALL_C ;\n",
    "override-membership": b"P=0x10 : 0x100001=full ;\nP=0x10 : 0x100001=limited, 0x100004=b ;\n",
    "name-reuse": b"Foo=0x0020 : 0x100001=full ;\nFoo : 0x100004=full ;\nBar : NONE ;\n",
    "empty-file": b"",
    "only-comments": b"# nothing here\n   \n",
    "header-flags": b"P=0x10, ipob, indx0, mtu=zz, defmember=f : 0x100001, 0x100004=lim ;\n"
    b"=0x30 : 0x100007=full ;\n",
    "hostname-member": b"Compute=0x0001,sl=1: node[001-100] ;\n",
    "pkey-overflow": b"P=0x18001 : 0x100001=full ;\nQ=0x8000 : 0x100004=full ;\n",
    "colon-guid": b"P=0x10 : 00:00:00:00:00:10:00:01=full ;\n",
    "multi-line": b"Default=0x7fff, ipoib :\n  ALL=limited,\n  SELF=full\n;\nT=0x0b01 :\n"
    b" 0x100001=full,  # first\n 0x100007=full\n ;\n",
}


def _cases(shared: Path) -> list[tuple[str, bytes, tuple[str, ...]]]:
    examples = sorted((shared / "data/fabric/examples").glob("*.partitions.conf"))
    cases = [(p.name, p.read_bytes(), ()) for p in examples]
    cases += [(name, data, ()) for name, data in SYNTHETIC.items()]
    both = (shared / "data/fabric/examples/both-and-ALL_SWITCHES.partitions.conf").read_bytes()
    cases.append(("both-with-W", both, ("-W",)))
    cases.append(("override-with-W", SYNTHETIC["override-membership"], ("-W",)))
    return cases


def _observe(subnet: Subnet) -> ObservedFabric:
    fabric = observed_of(observe_live("ib", env=subnet.env))
    assert fabric is not None
    return fabric


def test_predicted_pkey_tables_equal_what_opensm_programs(shared_dir: Path, tmp_path: Path) -> None:
    """Every example and trap: OpenSM's programmed tables == gpufence's prediction, port by port.

    A fresh ibsim per case (fresh tables); OpenSM runs once (`-o`) and exits, so the SM port is
    ibsim's first port (Switch1 port 0) rather than what sminfo would report.
    """
    net = shared_dir / "data/fabric/fixtures/ibsim_net.2sw2path4hca"
    mismatches = []
    cases = _cases(shared_dir)
    for i, (name, data, extra) in enumerate(cases):
        workdir = tmp_path / f"case{i}"
        conf = tmp_path / f"case{i}.conf"
        conf.write_bytes(data)
        with ibsim_subnet(net, workdir) as subnet:
            log = subnet.opensm_once(conf, extra)
            topology = parse_ibnetdiscover(subnet.tool("ibnetdiscover"))  # LIDs now assigned
            dump, unread = read_pkey_tables(topology, env=subnet.env)
        assert not unread, (name, unread)
        ports = SubnetPorts(topology.subnet(None).ports, SM_PORT)
        assert len(ports.ports) == 6
        observed = observed_fabric(topology, dump)
        config = parse_partitions(data, name)
        assert ("in error; retrying with default config" in log) == config.fails_open, name
        predicted = program(config, ports, allow_both_pkeys="-W" in extra).tables
        for port in observed.ports:
            table = port.table()
            assert table is not None, (name, port)
            want = sorted(format_table(predicted[int(port.guid, 16)]))
            if sorted(format_table(table)) != want:
                mismatches.append((name, port.node_name, want, sorted(format_table(table))))
    assert not mismatches
    assert len(cases) >= 25


def _inventory(tmp_path: Path, conf: str, tenants: dict[str, list[str]]) -> Path:
    (tmp_path / "partitions.conf").write_text(conf)
    pools = [
        {
            "name": f"pool-{tenant}",
            "site": "lab",
            "gpu_model": "H100-SXM5-80GB",
            "gpus_per_node": 8,
            "sharing": "dedicated",
            "workloads": [{"tenant": tenant}],
            "networks": ["ib"],
            "nodes": [
                {"name": hca.lower(), "ib_port_guids": [f"0x{HCA[hca]:016x}"]} for hca in hcas
            ],
        }
        for tenant, hcas in tenants.items()
    ]
    data = {
        "version": 1,
        "organization": {"name": "Lab", "country": "DE"},
        "sites": [{"name": "lab", "country": "DE", "ownership": "owned"}],
        "tenants": [
            {"name": t, "trust": "untrusted", "data_sensitivity": "internal"} for t in tenants
        ],
        "node_pools": pools,
        "networks": [
            {
                "name": "ib",
                "kind": "infiniband",
                "purposes": ["compute"],
                "tenant_isolation": "pkey",
                "partitions_conf": "partitions.conf",
            }
        ],
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _sa_paths(subnet: Subnet, observed: ObservedFabric) -> dict[tuple[int, int], str | None]:
    """The SA's PathRecord answer for every ordered pair of CA ports."""
    lids = {int(p.guid, 16): p.lid for p in observed.ports if p.node_type == "CA"}
    answers = {}
    for (a, la), (b, lb) in itertools.permutations(lids.items(), 2):
        text = f"# saquery -p --src-to-dst {la}:{lb}\n"
        text += subnet.tool("saquery", "-p", "--src-to-dst", f"{la}:{lb}", check=False)
        (answer,) = parse_pathrecords(text)
        answers[a, b] = answer.pkey
    return answers


TENANTS = {"alpha": ["Hca1", "Hca2"], "beta": ["Hca3", "Hca4"]}


@pytest.mark.parametrize("conf_name", ["ibsim-tenants", "emitted", "emitted-with-leak"])
def test_verdict_equals_subnet_administrator_for_every_host_pair(
    shared_dir: Path, tmp_path: Path, conf_name: str
) -> None:
    if conf_name == "ibsim-tenants":
        conf = (shared_dir / "data/fabric/examples/ibsim-tenants.partitions.conf").read_text()
        tenants = TENANTS
    else:
        tenants = {"alpha": ["Hca1", "Hca2"], "beta": ["Hca3"]}
        conf = emit_partitions(
            {t: [HCA[h] for h in hs] for t, hs in tenants.items()}, [HCA["Hca4"]]
        )
        assert lint_bytes(conf.encode()).diagnostics == ()
        if conf_name == "emitted-with-leak":
            conf += "leak=0x0100 : 0x0000000000100007=limited ;\n"  # beta's port into alpha
    inventory = _inventory(tmp_path, conf, tenants)
    with ibsim_subnet(shared_dir / "data/fabric/fixtures/ibsim_net.2sw2path4hca", tmp_path) as s:
        s.start_opensm(tmp_path / "partitions.conf")
        observed = _observe(s)
        sa = _sa_paths(s, observed)
    config = parse_partitions(conf.encode())
    predicted = program(config, observed.subnet()).tables
    # Port pairs: the SA says a path exists exactly when gpufence's rule says so.
    for (a, b), pkey in sa.items():
        rule = shared_pkey(predicted[a], predicted[b])
        assert (pkey is not None) == (rule is not None), (hex(a), hex(b), pkey, rule)
    # Tenant pairs: gpufence's IB verdict (inventory + partitions.conf) == the SA's answers.
    owner = {HCA[h]: t for t, hs in tenants.items() for h in hs}
    sa_pairs = {
        tuple(sorted((owner[a], owner[b])))
        for (a, b), pkey in sa.items()
        if pkey is not None and a in owner and b in owner and owner[a] != owner[b]
    }
    report = fabric_report(with_referenced(load_snapshot(inventory)))
    (plane,) = [p for p in report.planes if p.plane == "infiniband"]
    verdict = {(f.source, f.target) for f in plane.reach if f.source < f.target}
    assert verdict == sa_pairs
    expected_leak = conf_name != "emitted"  # ibsim-tenants: Hca1 limited <-> Hca4 full storage
    assert bool(verdict) == expected_leak


def test_fail_open_end_to_end(shared_dir: Path, tmp_path: Path) -> None:
    """One bad GUID: the linter says fail-open; OpenSM then programs 0xffff on every port."""
    conf = shared_dir / "data/fabric/examples/negative-bad-guid-fail-open.partitions.conf"
    report = lint_bytes(conf.read_bytes(), str(conf))
    assert report.fails_open and report.diagnostics[0].code == "PC001"
    assert report.diagnostics[0].line == 8
    with ibsim_subnet(shared_dir / "data/fabric/fixtures/ibsim_net.2sw2path4hca", tmp_path) as s:
        s.start_opensm(conf)
        observed = _observe(s)
        sa = _sa_paths(s, observed)
    assert {p.pkeys for p in observed.ports} == {("0xffff",)}
    # Every host reaches every host, over the default partition.
    assert sa and all(pkey is not None and int(pkey, 16) & 0x7FFF == 0x7FFF for pkey in sa.values())


def test_drift_between_intent_and_programmed_tables(shared_dir: Path, tmp_path: Path) -> None:
    """OpenSM runs one file; the inventory's partitions.conf moves Hca2 to beta: FAB-007 fails."""
    running = (shared_dir / "data/fabric/examples/ibsim-tenants.partitions.conf").read_text()
    with ibsim_subnet(shared_dir / "data/fabric/fixtures/ibsim_net.2sw2path4hca", tmp_path) as s:
        (tmp_path / "running.conf").write_text(running)
        s.start_opensm(tmp_path / "running.conf")
        evidence = observe_live("ib", env=s.env)
    (tmp_path / "ib.json").write_text(evidence.model_dump_json(by_alias=True))
    cases = {
        "same": (running, 0),
        "moved": (
            running.replace("0x100001, 0x100004 ;", "0x100001 ;\nTB=0x0b01 : 0x100004=full ;"),
            1,
        ),
    }
    for name, (intent, drifted) in cases.items():
        case = tmp_path / name
        case.mkdir()
        inventory = _inventory(case, intent, TENANTS)
        argv = ["audit", str(inventory), "--evidence", str(tmp_path / "ib.json")]
        done = subprocess.run(
            [sys.executable, "-m", "gpufence", *argv, "--format", "json", "--fail-on", "never"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        findings = json.loads(done.stdout)["findings"]
        (fab7,) = [f for f in findings if f["control"] == "FAB-007"]
        assert fab7["status"] == ("FAIL" if drifted else "PASS"), fab7["message"]
        if drifted:
            assert fab7["evidence"]["drift"][0]["node"] == "Hca2"
