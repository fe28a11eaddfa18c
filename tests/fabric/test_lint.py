"""The linter (each trap with line, column, consequence and fix), its CLI contract, the emitter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.cli import main
from gpufence.errors import InputError
from gpufence.fabric.emit import emit_partitions, guid_value
from gpufence.fabric.lint import LintSeverity, lint_bytes
from gpufence.fabric.membership import PortType, SubnetPorts, program, shared_pkey
from gpufence.fabric.partitions import parse_partitions


def codes(data: bytes, **kw: bool) -> list[tuple[str, str, int, int]]:
    return [
        (d.code, d.severity.value, d.line, d.column) for d in lint_bytes(data, **kw).diagnostics
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("negative-bad-guid-fail-open.partitions.conf", [("PC001", "error", 8, 17)]),
        ("opensm-3.3.23-manpage-examples.partitions.conf", [("PC001", "error", 17, 19)]),
        (
            "negative-guid-without-0x-octal.partitions.conf",
            [("PC010", "warning", 6, 12), ("PC031", "warning", 7, 1)],
        ),
        ("negative-no-SELF-full.partitions.conf", [("PC041", "warning", 3, 1)]),
        ("both-and-ALL_SWITCHES.partitions.conf", [("PC013", "warning", 4, 17)]),
        ("quantum-esos.partitions.conf", [("PC040", "warning", 2, 1)]),
        ("ibsim-tenants.partitions.conf", [("PC050", "warning", 7, 45)]),
    ],
)
def test_examples(examples: Path, name: str, expected: list[tuple[str, str, int, int]]) -> None:
    found = [c for c in codes((examples / name).read_bytes()) if c[1] != "info"]
    assert found == expected


def test_every_diagnostic_says_what_opensm_does_and_the_fix(examples: Path) -> None:
    for path in examples.glob("*.partitions.conf"):
        for d in lint_bytes(path.read_bytes()).diagnostics:
            assert d.line >= 1 and d.column >= 1
            assert len(d.consequence) > 20 and len(d.fix) > 10, d


def test_doc_examples_final_default_rule_is_all_full(examples: Path) -> None:
    # The doc's own example ends with 'Default=0x7fff,ipoib: ... ALL=full;': every host full.
    report = lint_bytes((examples / "opensm-3.3.23-doc-examples.partitions.conf").read_bytes())
    (d,) = [d for d in report.diagnostics if d.code == "PC040"]
    assert d.severity is LintSeverity.ERROR and "isolate nothing" in d.consequence


@pytest.mark.parametrize(
    ("data", "code", "severity"),
    [
        (b"Default=0x7fff : ALL=limited, SELF=full ;\r\n", "PC002", "error"),
        (b"P=0x10 : 0100004=full ;\n", "PC010", "warning"),
        (b"P=0x10 : 1048580=full ;\n", "PC010", "warning"),  # decimal
        (b"P=0x10 : A=full ;\n", "PC011", "warning"),
        (b"P=0x10 : 0x100001= ;\n", "PC012", "warning"),
        (b"P=0x10 : 0x100001=fulll ;\n", "PC012", "warning"),
        (b"P=0x10 : 0x100001=f ;\n", "PC012", "info"),
        (b"P=0x10 : 0x100001=both ;\n", "PC013", "warning"),
        (b"P=0x10, ipob : 0x100001 ;\n", "PC020", "warning"),
        (b"P=0x10, mtu=zz : 0x100001 ;\n", "PC021", "warning"),
        (b"P=0x10 : 0x1=full, mgid=ff12:401b::1, 0x100004=full ;\n", "PC022", "warning"),
        (b"P=0x10 : mgid=fe80::1, 0x1 ;\n", "PC023", "warning"),
        (b"P : 0x100001 ;\n", "PC030", "info"),
        (b"P=010 : 0x100001 ;\n", "PC031", "warning"),
        (b"P=0x8010 : 0x100001 ;\n", "PC032", "warning"),
        (b"A=0x10 : 0x1=full ;\nB=0x10 : 0x2=full ;\n", "PC033", "error"),
        (b"A : 0x1=full ;\nB=0x0001 : 0x2=full ;\n", "PC033", "error"),
        (b"Default=0x7fff : ALL=full ;\nT=0x10 : 0x1=full ;\n", "PC040", "error"),
        (b"Default=0x7fff : ALL_CAS=full, SELF=full ;\n", "PC040", "warning"),
        (b"Default=0x7fff : ALL ;\n", "PC041", "warning"),
        (b"Default=0x7fff : ALL=limited, SELF=full, 0x1=full ;\n", "PC042", "warning"),
        (b"A=0x10 : 0x1=full ;\nB=0x20 : 0x1=full ;\n", "PC050", "warning"),
        (b"P=0x10 : 0x1=full", "PC060", "info"),
        (b"P=0x10, sl=3 : 0x1 ;\n", "PC061", "info"),
        (b"", "PC001", "error"),
    ],
)
def test_each_trap(data: bytes, code: str, severity: str) -> None:
    found = {(c, s) for c, s, _, _ in codes(data)}
    assert (code, severity) in found, found


def test_allow_both_pkeys_silences_both() -> None:
    assert not [
        c for c in codes(b"P=0x10 : 0x1=both ;\n", allow_both_pkeys=True) if c[0] == "PC013"
    ]


def test_long_line_losses_are_exact() -> None:
    head = b"T=0x0a01, defmember=full : "
    line = head + b"NONE, " * ((4094 - len(head) - 4) // 6)
    line += b" " * (4094 - len(line) - 4) + b"0x100004, 0x100007 ;\n"
    report = lint_bytes(line)
    found = [(d.code, d.message) for d in report.diagnostics]
    assert any(c == "PC003" for c, _ in found)
    assert any(c == "PC004" and "0x100004" in m and "lost" in m for c, m in found)
    assert sum(c == "PC004" and "makes OpenSM read" in m for c, m in found) == 2


def test_clean_file_has_no_diagnostics() -> None:
    data = (
        b"Default=0x7fff, ipoib : ALL=limited, SELF=full ;\n"
        b"alpha=0x0100, ipoib : 0x0000000000100001=full, 0x0000000000100004=full ;\n"
        b"storage=0x0010, ipoib : 0x000000000010000a=full, 0x0000000000100001=limited ;\n"
    )
    report = lint_bytes(data)
    assert report.diagnostics == () and not report.fails_open
    assert [p.pkey for p in report.partitions] == ["0x7fff", "0x0100", "0x0010"]


# -- CLI -------------------------------------------------------------------------------------


def test_cli_json_contract(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "fabric",
            "lint",
            str(examples / "negative-bad-guid-fail-open.partitions.conf"),
            "-f",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["fails_open"] is True
    (d,) = doc["diagnostics"]
    assert set(d) == {
        "line",
        "column",
        "severity",
        "level",
        "code",
        "message",
        "consequence",
        "fix",
    }
    # "level": the lint severity on the one --fail-on scale (error -> high).
    assert (d["line"], d["column"], d["severity"], d["level"]) == (8, 17, "error", "high")
    assert {p["name"] for p in doc["partitions"]} == {"Default", "TenantA", "TenantB"}


@pytest.mark.parametrize(
    ("name", "fail_on", "code"),
    [
        ("ibsim-tenants.partitions.conf", "warning", 1),
        ("ibsim-tenants.partitions.conf", "error", 0),
        ("negative-bad-guid-fail-open.partitions.conf", "error", 1),
        ("opensm-3.3.23-doc-examples.partitions.conf", "error", 1),
    ],
)
def test_cli_fail_on(
    examples: Path, capsys: pytest.CaptureFixture[str], name: str, fail_on: str, code: int
) -> None:
    assert main(["fabric", "lint", str(examples / name), "--fail-on", fail_on]) == code
    out = capsys.readouterr().out
    assert f"{examples / name}:" in out or code == 0


def test_cli_text_names_file_line_column(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = examples / "opensm-3.3.23-manpage-examples.partitions.conf"
    main(["fabric", "lint", str(path)])
    out = capsys.readouterr().out
    assert f"{path}:17:19: error PC001" in out
    assert "FAIL-OPEN" in out.splitlines()[-1]


def test_cli_unreadable_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fabric", "lint", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read partitions.conf" in capsys.readouterr().err
    assert main(["fabric", "lint", str(tmp_path)]) == 2


def test_cli_clean_file_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.conf"
    path.write_text(emit_partitions({"a": ["0x1"], "b": ["0x2"]}, ["0x3"]))
    assert main(["fabric", "lint", str(path)]) == 0


# -- emitter --------------------------------------------------------------------------------


_guids = st.integers(min_value=1, max_value=2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        st.lists(_guids, max_size=12, unique=True),
        max_size=8,
    ),
    st.lists(_guids, max_size=3, unique=True),
)
def test_emitted_files_lint_clean_and_isolate(
    tenants: dict[str, list[int]], storage: list[int]
) -> None:
    owner: dict[int, str] = {}
    plan = {}
    for tenant, guids in tenants.items():
        if tenant in ("storage", "default"):
            continue
        plan[tenant] = [g for g in guids if g not in owner]
        owner.update(dict.fromkeys(plan[tenant], tenant))
    targets = [g for g in storage if g not in owner]
    text = emit_partitions(plan, targets)
    assert lint_bytes(text.encode()).diagnostics == ()
    ports = SubnetPorts(
        {**dict.fromkeys(owner, PortType.CA), **dict.fromkeys(targets, PortType.CA)}
    )
    tables = program(parse_partitions(text), ports).tables
    for a, ta in owner.items():
        for b, tb in owner.items():
            if a != b:
                assert (shared_pkey(tables[a], tables[b]) is not None) == (ta == tb)
        for target in targets:
            assert shared_pkey(tables[a], tables[target]) == 0x0010  # tenants reach storage


def test_emitter_refuses_unsafe_plans() -> None:
    with pytest.raises(InputError, match="a port belongs to one tenant"):
        emit_partitions({"a": ["0x1"], "b": ["0x1"]})
    with pytest.raises(InputError, match="bridge every tenant"):
        emit_partitions({"a": ["0x1"]}, ["0x1"])
    with pytest.raises(InputError, match="cannot be a partition name"):
        emit_partitions({"a b": ["0x1"]})
    with pytest.raises(InputError, match="given to"):
        emit_partitions({"a": ["0x1"], "b": ["0x2"]}, pkeys={"a": 0x20, "b": 0x20})
    with pytest.raises(InputError, match="outside"):
        emit_partitions({"a": ["0x1"]}, pkeys={"a": 0x7FFF})


def test_emitter_pins_pkeys_and_keeps_lines_short() -> None:
    guids = [f"0x{i:016x}" for i in range(1, 400)]
    text = emit_partitions({"big": guids, "small": ["0002:c903:000e:0b72"]}, pkeys={"small": 0x100})
    config = parse_partitions(text)
    pkeys = {st.name: st.pkey for st in config.statements}
    assert pkeys == {"Default": 0x7FFF, "big": 0x101, "small": 0x100}
    assert max(len(line) for line in text.splitlines()) < 120
    assert len([op for op in config.ops if op.pkey == 0x101]) == 399


@pytest.mark.parametrize("bad", ["", "0x", "xyz", "0x" + "f" * 17, 0, -1])
def test_guid_value_rejects(bad: str | int) -> None:
    with pytest.raises(InputError):
        guid_value(bad)
