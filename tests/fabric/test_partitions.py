"""The partitions.conf parser and OpenSM's partition manager, against what OpenSM 3.3.23 did.

Expected tables come from the real OpenSM runs recorded in ../shared/data/fabric (the examples'
header comments and the smpquery fixture); the quirks are those measured on OpenSM + ibsim
(the integration test replays every one of them against a live OpenSM).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.fabric.membership import (
    FULL,
    LIMITED,
    PortType,
    SubnetPorts,
    format_table,
    program,
    shared_pkey,
    table_from_values,
)
from gpufence.fabric.observed import observed_fabric, parse_ibnetdiscover, parse_pkey_dump
from gpufence.fabric.partitions import MemberKind, Membership, _strtoul, parse_partitions

HCA = {"Hca1": 0x100001, "Hca2": 0x100004, "Hca3": 0x100007, "Hca4": 0x10000A}
SW1, SW2 = 0x200000, 0x200001
IBSIM = SubnetPorts(
    {**dict.fromkeys(HCA.values(), PortType.CA), SW1: PortType.SWITCH, SW2: PortType.SWITCH}, SW1
)


def tables(data: bytes | str, *, both: bool = False) -> dict[int, list[str]]:
    programmed = program(parse_partitions(data), IBSIM, allow_both_pkeys=both)
    return {guid: sorted(format_table(t)) for guid, t in programmed.tables.items()}


def test_prediction_equals_the_recorded_smpquery_tables(examples: Path, fixtures: Path) -> None:
    """ibsim-tenants.partitions.conf on net.2sw2path4hca: every end port as OpenSM programmed it."""
    topology = parse_ibnetdiscover((fixtures / "ibsim_ibnetdiscover.txt").read_text())
    dump = parse_pkey_dump((fixtures / "ibsim_smpquery_pkeys.txt").read_text())
    observed = observed_fabric(topology, dump, sm=(1, SW1, "SMINFO_MASTER"))
    predicted = program(
        parse_partitions((examples / "ibsim-tenants.partitions.conf").read_bytes()),
        observed.subnet(),
    ).tables
    assert len(observed.ports) == 6
    for port in observed.ports:
        table = port.table()
        assert table is not None
        assert sorted(format_table(predicted[int(port.guid, 16)])) == sorted(format_table(table))


def _recorded(text: str) -> dict[int, list[str]]:
    """'Hca1 0x100001: 0x7fff 0x8101 ...' lines of an example's header comment."""
    out = {}
    for guid, entries in re.findall(r"Hca\d (0x[0-9a-f]+): ((?:0x[0-9a-f]{4} ?)+)", text):
        out[int(guid, 16)] = sorted(entries.split())
    return out


def test_parser_quirks_match_the_recorded_tables(examples: Path) -> None:
    text = (examples / "parser-quirks.partitions.conf").read_text()
    recorded = _recorded(text)
    assert len(recorded) == 4
    predicted = tables(text)
    for guid, entries in recorded.items():
        assert predicted[guid] == entries, hex(guid)


def test_octal_guid_and_pkey(examples: Path) -> None:
    config = parse_partitions(
        (examples / "negative-guid-without-0x-octal.partitions.conf").read_bytes()
    )
    (t_op,) = [op for op in config.ops if op.pkey == 0x0F01]
    assert t_op.guid == 0o100004 == 0x8004  # not the port 0x100004 that was meant
    assert {st.name: st.pkey for st in config.statements}["Oct"] == 0x0040
    assert tables(
        config_bytes := (examples / "negative-guid-without-0x-octal.partitions.conf").read_bytes()
    )[HCA["Hca2"]] == ["0x7fff", "0x8040"]
    assert program(parse_partitions(config_bytes), IBSIM).deleted == (0x0F01,)  # no member left


@pytest.mark.parametrize(
    ("name", "line", "kind"),
    [
        ("negative-bad-guid-fail-open.partitions.conf", 8, "bad-port-guid"),
        ("opensm-3.3.23-manpage-examples.partitions.conf", 17, "bad-port-guid"),
    ],
)
def test_fail_open_files(examples: Path, name: str, line: int, kind: str) -> None:
    config = parse_partitions((examples / name).read_bytes())
    assert config.fails_open
    assert (config.errors[0].line, config.errors[0].kind) == (line, kind)
    # OpenSM then applies Default=0x7fff:ALL=full: every port 0xffff.
    assert set(map(tuple, tables((examples / name).read_bytes()).values())) == {("0xffff",)}


def test_doc_examples_parse(examples: Path) -> None:
    config = parse_partitions(
        (examples / "opensm-3.3.23-doc-examples.partitions.conf").read_bytes()
    )
    assert not config.fails_open
    share = [op for op in config.ops if op.pkey == 0x80]
    memberships = {f"0x{op.guid:x}": op.membership.value for op in share}
    assert memberships["0x123451"] == "full"  # defmember=full
    assert memberships["0x123453"] == "limited"  # default limited
    assert memberships["0x123458"] == "full"
    assert memberships["0x12345c"] == "limited"
    assert [m.mgid for s in config.statements for m in s.mgids][:2] == [
        "ff12:401b::0707",
        "ff12:601b::16",
    ]


def test_no_self_full_leaves_the_sm_limited(examples: Path) -> None:
    predicted = tables((examples / "negative-no-SELF-full.partitions.conf").read_bytes())
    assert predicted[SW1] == ["0x7fff"]  # the SM port itself: nobody is full in 0x7fff
    assert all(entries == ["0x7fff"] for entries in predicted.values())


def test_both_needs_allow_both_pkeys(examples: Path) -> None:
    data = (examples / "both-and-ALL_SWITCHES.partitions.conf").read_bytes()
    assert tables(data)[HCA["Hca1"]] == ["0x0300", "0x7fff", "0x8200"]
    assert tables(data, both=True)[HCA["Hca1"]] == ["0x0200", "0x0300", "0x7fff", "0x8200"]
    assert tables(data)[SW2] == ["0x7fff", "0x8300"]  # ALL_SWITCHES=full reaches port 0


def test_statement_replaces_membership_even_with_both_pkeys() -> None:
    data = b"P=0x10 : 0x100001=full ;\nP=0x10 : 0x100001=limited ;\n"
    assert tables(data)[HCA["Hca1"]] == ["0x0010", "0x7fff"]
    assert tables(data, both=True)[HCA["Hca1"]] == ["0x0010", "0x7fff"]
    data = b"P=0x10 : 0x100001=limited ;\nP=0x10 : 0x100001=both ;\n"
    assert tables(data, both=True)[HCA["Hca1"]] == ["0x0010", "0x7fff", "0x8010"]


@pytest.mark.parametrize(
    ("data", "kind", "line"),
    [
        (b"Default=0x7fff : ALL=limited, SELF=full ;\r\n", "no-partition-definition", 1),
        (b"Default=0x7fff : ALL=limited, SELF=full ;;\n", "no-partition-definition", 1),
        (b"P=0x10 : 00:02:c9:03:00:0e:0b:72=full ;\n", "bad-port-guid", 1),
        (b"P=0x10 : 0002c903000e0b72=full ;\n", "bad-port-guid", 1),  # hex digits, no 0x
        (b"P=0x10 : \xc2\xa00x100004 ;\n", "bad-port-guid", 1),  # a no-break space
        (b"Compute=0x0001,sl=1: node[001-100] ;\n", "bad-port-guid", 1),
        (b"P=0x10 : 0 ;\n", "bad-port-guid", 1),
        (b"P=0xZZ : ALL ;\n", "bad-partition-definition", 1),
        (b"# a comment\n\nP=0x10 ALL ;\n", "no-partition-definition", 3),
        (b"", "no-statement", 1),
        (b"# only a comment\n", "no-statement", 1),
    ],
)
def test_every_fail_open_trap(data: bytes, kind: str, line: int) -> None:
    config = parse_partitions(data)
    assert config.fails_open
    assert (config.errors[0].kind, config.errors[0].line) == (kind, line)


def test_one_statement_without_semicolon_is_enough() -> None:
    config = parse_partitions(b"P=0x10 : 0x100001=full")
    assert not config.fails_open and not config.statements[-1].terminated
    assert tables(b"P=0x10 : 0x100001=full")[HCA["Hca1"]] == ["0x7fff", "0x8010"]


def test_long_line_is_split_and_drops_a_member() -> None:
    head = b"T=0x0a01, defmember=full : "
    line = head + b"NONE, " * ((4094 - len(head) - 4) // 6)
    line += b" " * (4094 - len(line) - 4) + b"0x100004, 0x100007 ;\n"
    config = parse_partitions(line)
    assert config.physical_lines == ((1, len(line) - 1),)
    guids = {op.guid for op in config.ops}
    assert 0x100007 in guids and 0x100004 not in guids  # cut in two wrong-but-valid numbers
    assert len(guids) == 3
    assert not config.fails_open  # silently


def test_mgid_consumes_the_rest_of_its_line() -> None:
    data = b"P=0x10: 0x100001=full, mgid=ff12:401b::1, 0x100004=full;\n"
    config = parse_partitions(data)
    assert [op.guid for op in config.ops] == [0x100001]
    assert config.events[0].kind == "unknown-mgroup-flag"
    assert config.events[0].token == "0x100004"


def test_mgid_without_flags_swallows_the_next_statement() -> None:
    data = b"P=0x10: mgid=ff12:401b::1; Q=0x20: 0x100004=full;\nR=0x30 : 0x100007=full;\n"
    assert [(op.pkey, op.guid) for op in parse_partitions(data).ops] == [(0x30, 0x100007)]


def test_prefix_matching_everywhere() -> None:
    config = parse_partitions(
        b"Default=0x7fff : AL=limited, S=full ;\n"
        b"P=0x10, i, defmember=f : ALL_S, ALL_C=lim, 0x100001=, 0x100004=fullx, N ;\n"
    )
    kinds = [(op.kind, op.membership) for op in config.ops]
    assert kinds == [
        (MemberKind.ALL, Membership.LIMITED),
        (MemberKind.SELF, Membership.FULL),
        (MemberKind.ALL_SWITCHES, Membership.FULL),  # defmember=f = full
        (MemberKind.ALL_CAS, Membership.LIMITED),
        (MemberKind.GUID, Membership.FULL),  # empty flag = full
        (MemberKind.GUID, Membership.LIMITED),  # unknown flag = limited
    ]
    assert config.statements[1].ipoib  # 'i' = ipoib


def test_pkey_masking_generation_and_merging() -> None:
    config = parse_partitions(
        b"A : 0x100001=full ;\nB=0x0001 : 0x100004=full ;\nC=0x18002 : 0x100007=full ;\n"
        b"D=0x8000 : 0x10000a=full ;\nA : 0x10000a ;\n10 : NONE ;\n"
    )
    by_line = {st.line: st for st in config.statements}
    assert (by_line[1].pkey, by_line[1].how) == (0x0001, "generated")
    assert (by_line[2].pkey, by_line[2].created) == (0x0001, False)  # merged into A
    assert by_line[3].pkey == 0x0002  # 0x18002: 16-bit cast, then the membership bit masked
    assert (by_line[4].pkey, by_line[4].how) == (0x0003, "generated")  # 0x8000 masks to 0
    assert (by_line[5].pkey, by_line[5].how) == (0x0001, "by-name")
    assert by_line[6].pkey == 10  # a name starting with a digit is the PKey (decimal)
    assert config.names[0x0001] == "A"


@pytest.mark.parametrize(
    ("text", "value", "used"),
    [
        (b"0x1F", 0x1F, 4),
        (b"0X1f", 0x1F, 4),
        (b"017", 0o17, 3),
        (b"019", 1, 2),  # octal stops at 9
        (b"42", 42, 2),
        (b"-1", 2**64 - 1, 2),
        (b"+0x10", 16, 5),
        (b"0x", 0, 1),  # '0' parsed, end at 'x'
        (b"x1", 0, 0),
        (b"\t 7", 7, 3),
        (b"0x10000000000000000", 2**64 - 1, 19),  # ERANGE clamps
    ],
)
def test_strtoul(text: bytes, value: int, used: int) -> None:
    assert _strtoul(text) == (value, used)


def test_shared_pkey_rule() -> None:
    full_a, lim_a, full_b = {0x0A01: FULL}, {0x0A01: LIMITED}, {0x0B01: FULL}
    assert shared_pkey(full_a, lim_a) == 0x0A01
    assert shared_pkey(lim_a, lim_a) is None  # two limited members never talk
    assert shared_pkey(full_a, full_b) is None
    assert shared_pkey(table_from_values([0x7FFF, 0x8A01]), table_from_values([0x8A01])) == 0x0A01
    assert table_from_values([0x0000, 0x8000, 0xFFFF, 0x7FFF]) == {0x7FFF: FULL | LIMITED}


def test_no_file_and_missing_guids() -> None:
    fallback = program(None, IBSIM)
    assert fallback.fell_back and all(t == {0x7FFF: FULL} for t in fallback.tables.values())
    ghost = program(parse_partitions(b"G=0x0104 : 0xdeadbeef=full ;\n"), IBSIM)
    assert ghost.deleted == (0x0104,) and ghost.missing_guids[0].guid == 0xDEADBEEF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises(data: bytes) -> None:
    config = parse_partitions(data)
    program(config, IBSIM)  # and every result can be applied
    assert config.fails_open == bool(config.errors)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Default=0x7fff",
                b"P=0x10",
                b"Q",
                b":",
                b",",
                b";",
                b"=",
                b"ALL",
                b"0x100001",
                b"full",
                b"limited",
                b"both",
                b"mgid=ff12::1",
                b"#",
                b"\n",
                b" ",
                b"ipoib",
                b"SELF",
            ]
        ),
        max_size=40,
    )
)
def test_parser_survives_grammar_soup(parts: list[bytes]) -> None:
    config = parse_partitions(b"".join(parts))
    for op in config.ops:
        assert 0 < op.pkey <= 0x7FFF
        assert op.kind is not MemberKind.GUID or (op.guid is not None and op.guid > 0)


_item = st.builds(
    lambda guid, flag, upper: (b"0X" if upper else b"0x") + f"{guid:x}".encode() + flag,
    st.integers(min_value=0, max_value=2**68),
    st.sampled_from([b"", b"=full", b"=limited", b"=f", b" = full", b"=both"]),
    st.booleans(),
)
_sep = st.sampled_from([b", ", b",", b" ,\t", b"\t, "])
_end = st.sampled_from([b"", b",", b" ;", b";", b", ;", b"; X=0x2 : 0x5 ;", b" # c", b"\r"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"", b"  ", b"\t"]),
            st.lists(_item, min_size=1, max_size=6),
            _sep,
            _end,
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([b"P=0x10 :\n", b"P=0x10, defmember=full :\n", b"Q : 0x9,\n"]),
)
def test_fast_path_equals_the_c_walk(
    lines: list[tuple[bytes, list[bytes], bytes, bytes]], header: bytes
) -> None:
    body = b"".join(indent + sep.join(items) + end + b"\n" for indent, items, sep, end in lines)
    data = header + body
    fast, slow = parse_partitions(data), parse_partitions(data, fast=False)
    assert fast.ops == slow.ops
    assert fast.statements == slow.statements
    assert fast.errors == slow.errors
    assert fast.events == slow.events
