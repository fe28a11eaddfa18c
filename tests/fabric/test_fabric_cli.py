"""`gpufence fabric` on the one CLI grammar: emit from the inventory or a plan, --fail-on and
--mutelist on lint and check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gpufence.cli import main
from gpufence.fabric.partitions import read_partitions
from gpufence.load.inventory import load_snapshot

EXAMPLE = Path(__file__).parents[2] / "examples" / "neocloud" / "inventory.yaml"


def _members(conf: Path) -> dict[str, set[str]]:
    """Partition name -> GUIDs that are full members, as OpenSM's parser reads the file."""
    config = read_partitions(conf)
    text = conf.read_text()
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if "=" in line and ":" in line and not line.startswith(("#", "Default")):
            current = line.split("=", 1)[0]
            out[current] = set()
        elif line.startswith("    ") and out:
            for item in line.replace(";", ",").split(","):
                guid, _, membership = item.strip().partition("=")
                if membership == "full":
                    out[current].add(guid)
    assert config is not None
    return out


def test_emit_from_inventory_isolates_each_tenants_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "partitions.conf"
    assert main(["fabric", "emit", "-i", str(EXAMPLE), "--out", str(conf)]) == 0
    err = capsys.readouterr().err
    inventory = load_snapshot(EXAMPLE).inventory
    members = _members(conf)
    for pool in inventory.node_pools:
        for node in pool.nodes:
            owners = {t for t, guids in members.items() if set(node.ib_port_guids) & guids}
            tenants = node.tenants or tuple({w.tenant for w in pool.workloads})
            if not node.ib_port_guids:
                continue
            if len(set(tenants)) == 1:
                assert owners == set(tenants), node.name
            else:  # a shared node joins no tenant partition, and says so
                assert owners <= {"storage"}, node.name
                assert f"note: {node.name} " in err
    assert main(["fabric", "lint", str(conf)]) == 0


def test_emit_from_plan_uses_the_plans_tenants(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert main(["plan", str(EXAMPLE), "--out", str(out)]) in (0, 1)
    plan = json.loads((out / "plan.json").read_text())
    conf = tmp_path / "p.conf"
    argv = ["fabric", "emit", "-i", str(EXAMPLE), "--plan", str(out / "plan.json")]
    assert main([*argv, "--out", str(conf)]) == 0
    members = _members(conf)
    guids = {
        n.name: set(n.ib_port_guids)
        for p in load_snapshot(EXAMPLE).inventory.node_pools
        for n in p.nodes
    }
    planned = {n["name"]: n["tenants"] for p in plan["pools"] for n in p["nodes"]}
    checked = 0
    for node, tenants in planned.items():
        if len(tenants) == 1 and guids.get(node):
            assert guids[node] <= members[tenants[0]]
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--plan", "x.json"], "--plan needs --inventory"),
        ([], "give --inventory"),
    ],
)
def test_emit_input_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fabric", "emit", *argv]) == 2
    assert message in capsys.readouterr().err


def test_emit_old_output_option_still_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "p.conf"
    assert main(["fabric", "emit", "-i", str(EXAMPLE), "-o", str(conf)]) == 0
    assert conf.read_text().startswith("# partitions.conf written by gpufence")
    assert "use --out" in capsys.readouterr().err


def _mutelist(tmp_path: Path, control: str, resource: str) -> Path:
    path = tmp_path / "mutes.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "mutes": [
                    {
                        "control": control,
                        "resource": resource,
                        "reason": "accepted while the fabric is rebuilt",
                        "expires": "2999-12-31",
                    }
                ],
            }
        )
    )
    return path


def test_lint_fail_on_scale_and_mutelist(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = shared_dir / "data" / "fabric" / "examples" / "ibsim-tenants.partitions.conf"
    # Warnings only: medium (default, = old 'warning') fails, high (= old 'error') does not.
    assert main(["fabric", "lint", str(conf)]) == 1
    assert main(["fabric", "lint", str(conf), "--fail-on", "high"]) == 0
    assert main(["fabric", "lint", str(conf), "--fail-on", "never"]) == 0
    capsys.readouterr()
    assert main(["fabric", "lint", str(conf), "-f", "json"]) == 1
    codes = {d["code"] for d in json.loads(capsys.readouterr().out)["diagnostics"]}
    mutes = tmp_path / "all.yaml"
    mutes.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "mutes": [
                    {"control": c, "reason": "accepted for the lab fabric", "expires": "2999-01-01"}
                    for c in sorted(codes)
                ],
            }
        )
    )
    assert main(["fabric", "lint", str(conf), "--mutelist", str(mutes), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all("muted" in d for d in doc["diagnostics"])
    # A mute for one line only leaves the others failing.
    one = _mutelist(tmp_path, sorted(codes)[0], f"{conf}:0")
    assert main(["fabric", "lint", str(conf), "--mutelist", str(one)]) == 1
    assert "matched no finding" in capsys.readouterr().err
