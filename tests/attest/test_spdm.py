"""SPDM parsing by structure, against the C++ SDK's golden parse output."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from gpufence.attest.device_reports import read_hex_report
from gpufence.attest.opaque import device_facts, format_vbios_version, named_opaque
from gpufence.attest.spdm import SpdmParseError, parse_report


def _report(path: Path) -> bytes:
    return read_hex_report(path.read_bytes(), str(path))


def _golden_value(value: object) -> object:
    if isinstance(value, str):
        return value.removeprefix("0x")
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [v.removeprefix("0x") for v in value]
    return value


@pytest.mark.parametrize(
    ("report", "golden", "request_golden", "kind"),
    [
        (
            "hopperAttestationReport.txt",
            "spdm_parsed_output.json",
            "spdm_req_parsed_output.json",
            "gpu",
        ),
        (
            "switchAttestationReport.txt",
            "switch_spdm_parsed_output.json",
            "switch_spdm_req_parsed_output.json",
            "nvswitch",
        ),
    ],
)
def test_parse_matches_nvat_golden_output(
    unit: Path, report: str, golden: str, request_golden: str, kind: str
) -> None:
    parsed = parse_report(_report(unit / report))
    want = json.loads((unit / golden).read_text())
    want_req = json.loads((unit / request_golden).read_text())
    assert parsed.request.nonce.hex() == want_req["Nonce"][2:]
    assert parsed.request.param2 == int(want_req["Param2"], 16)
    assert parsed.response.nonce.hex() == want["Nonce"][2:]
    assert parsed.response.signature.hex() == want["Signature"][2:]
    assert parsed.response.record_length == want["MeasurementRecordLength"]
    assert parsed.response.opaque_length == want["OpaqueLength"]
    blocks = want["MeasurementRecord"]["MeasurementBlocks"]
    assert len(parsed.response.blocks) == want["NumberOfBlocks"] == len(blocks)
    for index, block in blocks.items():
        mine = parsed.response.block(int(index))
        assert mine is not None
        assert mine.value_type == block["DMTFSpecMeasurementValueType"]
        assert mine.value.hex() == block["DMTFSpecMeasurementValue"][2:]
    named = named_opaque(parsed.response.opaque, kind)  # type: ignore[arg-type]
    for key, value in want["OpaqueData"]["OpaqueDataField"].items():
        assert named[key.removeprefix("OPAQUE_FIELD_ID_")] == _golden_value(value), key


def test_every_real_report_parses_and_signed_range_ends_at_signature(att: Path) -> None:
    reports = [p for p in att.rglob("*AttestationReport*.txt") if "claims" not in p.name]
    assert len(reports) >= 8
    for path in reports:
        parsed = parse_report(_report(path))
        assert parsed.length == len(_report(path))
        assert len(parsed.response.signature) == 96
        assert parsed.trailing == b""


def test_zero_padding_after_signature_is_accepted_and_reported(unit: Path) -> None:
    data = _report(unit / "switchAttestationReport.txt")
    padded = parse_report(data + b"\x00")
    assert padded.trailing == b"\x00"
    assert padded.response.signature == parse_report(data).response.signature
    with pytest.raises(SpdmParseError, match="not zero padding"):
        parse_report(data + b"\x01")


def test_truncation_names_the_offset(unit: Path) -> None:
    data = _report(unit / "switchAttestationReport.txt")
    with pytest.raises(SpdmParseError, match="signature") as err:
        parse_report(data[:-1])
    assert err.value.offset is not None
    for cut in (0, 10, 36, 37, 45, 500, 2000):
        with pytest.raises(SpdmParseError):
            parse_report(data[:cut])


def test_wrong_codes_and_versions_are_rejected(unit: Path) -> None:
    data = bytearray(_report(unit / "switchAttestationReport.txt"))
    for offset, value, message in (
        (0, 0x12, "request SPDM version"),
        (1, 0x60, "GET_MEASUREMENTS"),
        (2, 0x00, "signed response"),
        (38, 0x61, "MEASUREMENTS"),
    ):
        mutated = bytearray(data)
        mutated[offset] = value
        with pytest.raises(SpdmParseError, match=message):
            parse_report(bytes(mutated))


def test_unknown_opaque_types_are_kept_and_nvdaod_header_is_read(unit: Path) -> None:
    data = _report(unit / "switchAttestationReport.txt")
    parsed = parse_report(data)
    assert (
        26 in parsed.response.opaque.type_ids()
    )  # not in nvtrust's table; nvtrust raises KeyError
    # Rebuild the same response with an NVDAOD header (newer firmware) and an unknown type 99.
    start = 37 + 8 + parsed.response.record_length + 32
    fields = b"".join(
        struct.pack("<HHH", f.type_id, 0, len(f.value)) + f.value
        for f in parsed.response.opaque.fields
    )
    fields += struct.pack("<HHH", 99, 0x87, 2) + b"\x01\x02"
    opaque = b"NVDAOD" + struct.pack("<HBBH", 0, 1, 0, 0) + fields
    rebuilt = data[:start] + struct.pack("<H", len(opaque)) + opaque + parsed.response.signature
    again = parse_report(rebuilt)
    assert again.response.opaque.header_version == (1, 0)
    assert again.response.opaque.get(99) == b"\x01\x02"
    assert again.response.opaque.fields[-1].value_type == 0x87
    assert again.response.opaque.get(6) == parsed.response.opaque.get(6)


def test_opaque_length_overrun_is_an_error(unit: Path) -> None:
    data = bytearray(_report(unit / "switchAttestationReport.txt"))
    parsed = parse_report(bytes(data))
    start = 37 + 8 + parsed.response.record_length + 32 + 2
    data[start + 2 : start + 4] = struct.pack("<H", 0xFFFF)
    with pytest.raises(SpdmParseError, match="opaque"):
        parse_report(bytes(data))


def test_device_facts_of_real_reports(unit: Path) -> None:
    gpu = device_facts(parse_report(_report(unit / "hopperAttestationReport.txt")), "gpu")
    assert (gpu.driver_version, gpu.vbios_version) == ("580.159.03", "96.00.74.00.20")
    assert (gpu.project, gpu.project_sku, gpu.chip_sku) == ("1010", "0205", "862")
    assert gpu.vbios_rim_id == "NV_GPU_VBIOS_1010_0205_862_9600740020"
    assert gpu.nvdec0_enabled is False and gpu.protected_pcie is False
    switch = device_facts(parse_report(_report(unit / "switchAttestationReport.txt")), "nvswitch")
    assert switch.vbios_version == "96.10.55.00.01"
    assert switch.pdi is not None and len(switch.peer_pdis) == 8
    assert format_vbios_version(bytes.fromhex("009f009601000000")) == "96.00.9F.00.01"
