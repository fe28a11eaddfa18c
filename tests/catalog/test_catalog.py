"""Silicon catalog tests: data integrity, name resolution, agreement with upstream data."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from gpufence.catalog import (
    Architecture,
    Catalog,
    CcLevel,
    Confidence,
    GpuModel,
    MigProfile,
    load_catalog,
    lookup,
    normalize_mig_profile_name,
    normalize_name,
    parse_catalog,
    parse_pci_device_id,
)
from gpufence.catalog.render import catalog_table
from gpufence.errors import InternalError, UnknownGpuModelError

SHARED = Path(__file__).resolve().parents[3] / "shared"
MIG_DATA = SHARED / "data" / "mig"

MIG_CAPABLE = {
    "A100-SXM4-40GB",
    "A100-PCIE-40GB",
    "A100-SXM4-80GB",
    "A100-PCIE-80GB",
    "A30",
    "A800-SXM4-80GB",
    "A800-PCIE-80GB",
    "A800-40GB-ACTIVE",
    "PG506-96GB",
    "H100-SXM5-80GB",
    "H100-PCIE-80GB",
    "H100-NVL-94GB",
    "H200-SXM-141GB",
    "H200-NVL-141GB",
    "H20-96GB",
    "H800-SXM5-80GB",
    "H800-PCIE-80GB",
    "H800-NVL-94GB",
    "H100-96GB",
    "GH200-96GB",
    "GH200-144GB",
    "B200",
    "B300",
    "GB200",
    "GB300",
    "RTX-PRO-6000-BSE",
    "RTX-PRO-6000-WS",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _shared_file(path: Path) -> Path:
    """A file of ../shared, or skip (fail under CI=true, as the rest of the suite does)."""
    if not path.is_file():
        message = f"{path} not present (upstream reference data lives in ../shared beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _data_text(name: str) -> str:
    return resources.files("gpufence.catalog").joinpath("data", name).read_text(encoding="utf-8")


# --- name resolution -----------------------------------------------------------------------------

# Every model the catalog must know, by the names people and tools use for it.
NAMES = [
    ("A100 40GB", "A100-SXM4-40GB"),
    ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB"),
    ("NVIDIA-A100-SXM4-40GB", "A100-SXM4-40GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-PCIE-40GB"),
    ("A100 80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100 80GB PCIe", "A100-PCIE-80GB"),
    ("A30", "A30"),
    ("A800 SXM4", "A800-SXM4-80GB"),
    ("NVIDIA A800-SXM4-80GB", "A800-SXM4-80GB"),
    ("NVIDIA A800 80GB PCIe", "A800-PCIE-80GB"),
    ("NVIDIA A800 80GB PCIe LC", "A800-PCIE-80GB"),
    ("NVIDIA A800 40GB Active", "A800-40GB-ACTIVE"),
    ("NVIDIA PG506-232", "PG506-96GB"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"),
    ("H100-SXM5-80GB", "H100-SXM5-80GB"),
    ("NVIDIA H100 PCIe", "H100-PCIE-80GB"),
    ("NVIDIA H100 NVL", "H100-NVL-94GB"),
    ("H100 NVL", "H100-NVL-94GB"),
    ("NVIDIA H200", "H200-SXM-141GB"),
    ("h200", "H200-SXM-141GB"),
    ("NVIDIA H200 NVL", "H200-NVL-141GB"),
    ("H20", "H20-96GB"),
    ("NVIDIA H800", "H800-SXM5-80GB"),
    ("h800", "H800-SXM5-80GB"),
    ("NVIDIA H800 PCIe", "H800-PCIE-80GB"),
    ("NVIDIA H800 NVL", "H800-NVL-94GB"),
    ("H100 96GB", "H100-96GB"),
    ("GH200 96GB", "GH200-96GB"),
    ("NVIDIA GH200 120GB", "GH200-96GB"),
    ("NVIDIA GH200 480GB", "GH200-96GB"),
    ("NVIDIA GH200 144G HBM3e", "GH200-144GB"),
    ("b200", "B200"),
    ("b300", "B300"),
    ("NVIDIA B300 SXM6 AC", "B300"),
    ("gb200", "GB200"),
    ("gb300", "GB300"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000-BSE"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTX-PRO-6000-WS"),
    ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "RTX-PRO-6000-WS"),
    ("A40", "A40"),
    ("A10", "A10"),
    ("NVIDIA A10G", "A10"),
    ("l40s", "L40S"),
    ("NVIDIA L4", "L4"),
    ("RTX 6000 Ada", "RTX-6000-ADA"),
    ("5090", "RTX-5090"),
    ("NVIDIA GeForce RTX 5090", "RTX-5090"),
    ("4090", "RTX-4090"),
    ("rtx 4090", "RTX-4090"),
    ("NVIDIA GeForce RTX 4090", "RTX-4090"),
]


@pytest.mark.parametrize(("name", "key"), NAMES)
def test_lookup_by_name(catalog: Catalog, name: str, key: str) -> None:
    assert catalog.lookup(name).key == key


def test_every_row_is_named_in_the_lookup_table(catalog: Catalog) -> None:
    assert {key for _, key in NAMES} == set(catalog.keys())


@pytest.mark.parametrize(
    "name",
    ["NVIDIA H100 80GB HBM3", "nvidia h100 80gb hbm3", "H100_80GB_HBM3", "  H100--80gb  hbm3 "],
)
def test_lookup_normalises_case_prefix_and_separators(name: str) -> None:
    assert lookup(name).key == "H100-SXM5-80GB"


@pytest.mark.parametrize(
    "text", ["0x2330", "2330", "0x233010DE", "233010DE", "0x233010de", "10de:2330", "[10de:2330]"]
)
def test_lookup_by_pci_device_id(catalog: Catalog, text: str) -> None:
    assert catalog.lookup(text).key == "H100-SXM5-80GB"


def test_lookup_by_pci_device_id_of_secondary_ids(catalog: Catalog) -> None:
    assert catalog.lookup("0x20F1").key == "A100-PCIE-40GB"
    assert catalog.lookup("0x2237").key == "A10"  # A10G
    assert catalog.lookup("0x2BB4").key == "RTX-PRO-6000-WS"  # Max-Q
    assert catalog.lookup("0x2685").key == "RTX-4090"  # 4090 D


def test_pci_id_of_another_vendor_is_not_matched(catalog: Catalog) -> None:
    # 0x23301002 would be device 0x2330 of vendor 0x1002 (AMD), not an H100.
    with pytest.raises(UnknownGpuModelError):
        catalog.lookup("0x23301002")
    assert catalog.by_pci_device_id(0x23301002) is None
    assert catalog.by_pci_device_id(0x233010DE) is catalog.get("H100-SXM5-80GB")
    assert catalog.by_pci_device_id(0x2330) is catalog.get("H100-SXM5-80GB")


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("NVIDIA-H100-80GB-HBM3", "H100-SXM5-80GB"),
        ("NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "H100-SXM5-80GB"),
        ("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", "A100-SXM4-40GB"),
        ("NVIDIA-L40S-SHARED", "L40S"),
        ("NVIDIA-A100-SXM4-80GB-MIG-1g.10gb+me-SHARED", "A100-SXM4-80GB"),
    ],
)
def test_lookup_accepts_gpu_feature_discovery_product_labels(label: str, key: str) -> None:
    assert lookup(label).key == key


def test_get_and_keys(catalog: Catalog) -> None:
    assert catalog.get("H100-SXM5-80GB") is catalog.lookup("H100-SXM5-80GB")
    assert catalog.get("h100-sxm5-80gb") is catalog.lookup("H100-SXM5-80GB")
    assert catalog.get("h100") is None  # get() takes canonical keys only
    assert len(catalog.keys()) == len(catalog) == len(set(catalog.keys()))
    assert list(catalog) == list(catalog.models)


@pytest.mark.parametrize("name", ["H100 SMX5", "H100 SXM4"])
def test_unknown_name_suggests_h100_rows(catalog: Catalog, name: str) -> None:
    with pytest.raises(UnknownGpuModelError) as info:
        catalog.lookup(name)
    err = info.value
    assert err.name == name
    assert 1 <= len(err.closest) <= 5
    # The best suggestion is a name of an H100 row, and every suggestion resolves.
    assert catalog.lookup(err.closest[0]).key.startswith("H100-")
    assert len({catalog.lookup(c).key for c in err.closest}) == len(err.closest)
    assert err.exit_code == 2
    assert name in err.diagnostics() and err.closest[0] in err.diagnostics()


def test_unknown_name_of_a_known_product_line_still_gets_suggestions(catalog: Catalog) -> None:
    # "H999" is not similar enough to anything for difflib; fall back to the H product line.
    with pytest.raises(UnknownGpuModelError) as info:
        catalog.lookup("H999")
    keys = [catalog.lookup(c).key for c in info.value.closest]
    assert len(keys) == 5 and all(k.startswith("H") for k in keys)


def test_unknown_name_far_from_everything_has_no_suggestions(catalog: Catalog) -> None:
    with pytest.raises(UnknownGpuModelError) as info:
        catalog.lookup("Instinct MI300X")
    assert info.value.closest == ()


# 0x2328 (H20B) and 0x232C (H20 HBM3e) are in pci.ids but mig-parted does not name them.
@pytest.mark.parametrize("name", ["", "   ", "nvidia", "0x9999", "0x2328", "0x232C", "GH300"])
def test_unknown_names_raise(catalog: Catalog, name: str) -> None:
    with pytest.raises(UnknownGpuModelError):
        catalog.lookup(name)


def test_parse_pci_device_id_forms() -> None:
    assert parse_pci_device_id("0x20B0") == 0x20B0
    assert parse_pci_device_id("20b010de") == 0x20B0
    assert parse_pci_device_id("10DE:20B0") == 0x20B0
    assert parse_pci_device_id("0x20B0:0x145F10DE") is None  # subsystem forms are not device IDs
    assert parse_pci_device_id("H100") is None
    assert parse_pci_device_id("0x123") is None


def test_normalize_name() -> None:
    assert normalize_name("NVIDIA GeForce RTX 4090") == "geforce-rtx-4090"
    assert normalize_name("NVIDIA-A100-SXM4-40GB") == normalize_name("A100 SXM4 40GB")
    assert normalize_name("nvidiaX") == "nvidiax"  # only a whole leading word is dropped


# --- data integrity ------------------------------------------------------------------------------


def test_data_files_ship_with_the_package() -> None:
    names = {p.name for p in resources.files("gpufence.catalog").joinpath("data").iterdir()}
    assert {"gpus.yaml", "mig_families.yaml"} <= names


def test_load_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_aliases_are_unique_across_the_catalog(catalog: Catalog) -> None:
    owner: dict[str, str] = {}
    raw_seen: set[str] = set()
    for model in catalog.models:
        for alias in model.aliases:
            assert alias.casefold() not in raw_seen, f"alias {alias!r} listed twice"
            raw_seen.add(alias.casefold())
        for name in (model.key, model.name, *model.aliases):
            norm = normalize_name(name)
            assert owner.setdefault(norm, model.key) == model.key, (
                f"{name!r} names both {owner[norm]} and {model.key}"
            )


def test_pci_ids_are_unique_and_well_formed(catalog: Catalog) -> None:
    ids = [pci for model in catalog.models for pci in model.pci_device_ids]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"0x[0-9A-F]{4}", pci) for pci in ids)


def test_keys_are_canonical(catalog: Catalog) -> None:
    for model in catalog.models:
        assert re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", model.key)
        assert model.name.startswith("NVIDIA ")


def test_consumer_parts_offer_no_mig_vgpu_or_cc(catalog: Catalog) -> None:
    consumer = {m.key for m in catalog.models if m.consumer}
    assert consumer == {"RTX-5090", "RTX-4090"}
    for key in consumer:
        model = catalog.lookup(key)
        assert not model.mig_capable and not model.vgpu and model.cc is CcLevel.NONE


def test_mig_capable_set_is_exact(catalog: Catalog) -> None:
    assert {m.key for m in catalog.models if m.mig_capable} == MIG_CAPABLE
    for model in catalog.models:
        if not model.mig_capable:
            assert model.mig_profiles == () and model.mig_grid_units is None


def test_mig_max_and_grid_per_family(catalog: Catalog) -> None:
    for model in catalog.models:
        if not model.mig_capable:
            continue
        expected = {"A30": (4, 4), "RTX-PRO-6000-BSE": (4, 12), "RTX-PRO-6000-WS": (4, 12)}
        assert (model.mig_max_instances, model.mig_grid_units) == expected.get(model.key, (7, 8))


def test_cc_is_none_before_hopper_and_on_geforce(catalog: Catalog) -> None:
    for model in catalog.models:
        if model.architecture in (Architecture.AMPERE, Architecture.ADA) or model.consumer:
            assert model.cc is CcLevel.NONE, model.key


def test_cc_classes(catalog: Catalog) -> None:
    expected = {
        "H100-SXM5-80GB": CcLevel.PROTECTED_PCIE,
        "H200-SXM-141GB": CcLevel.PROTECTED_PCIE,
        "H100-PCIE-80GB": CcLevel.SINGLE_GPU,
        "H100-NVL-94GB": CcLevel.SINGLE_GPU,
        "H200-NVL-141GB": CcLevel.SINGLE_GPU,
        "RTX-PRO-6000-BSE": CcLevel.SINGLE_GPU,
        "B200": CcLevel.MULTI_GPU_TEE_IO,
        "B300": CcLevel.MULTI_GPU_TEE_IO,
        # Unverified on NVIDIA's lists: fail closed.
        "H20-96GB": CcLevel.NONE,
        "GB200": CcLevel.NONE,
        "GB300": CcLevel.NONE,
        "RTX-PRO-6000-WS": CcLevel.NONE,
        "H800-SXM5-80GB": CcLevel.NONE,
        "H800-PCIE-80GB": CcLevel.NONE,
        "H800-NVL-94GB": CcLevel.NONE,
        "H100-96GB": CcLevel.NONE,
        "GH200-96GB": CcLevel.NONE,
        "GH200-144GB": CcLevel.NONE,
    }
    assert {k: catalog.lookup(k).cc for k in expected} == expected
    # The fail-closed choices must say why.
    fail_closed = ("H20-96GB", "GB200", "GB300", "H800-SXM5-80GB", "H800-PCIE-80GB")
    for key in (*fail_closed, "H800-NVL-94GB", "H100-96GB", "GH200-96GB", "GH200-144GB"):
        assert any("fails closed" in note for note in catalog.lookup(key).notes), key


def test_cc_level_helpers() -> None:
    assert not CcLevel.NONE.supports_cc
    assert CcLevel.SINGLE_GPU.supports_cc and not CcLevel.SINGLE_GPU.supports_multi_gpu_cc
    assert CcLevel.PROTECTED_PCIE.supports_multi_gpu_cc
    assert CcLevel.MULTI_GPU_TEE_IO.supports_multi_gpu_cc
    assert CcLevel("multi-gpu-tee-io") is CcLevel.MULTI_GPU_TEE_IO


def test_export_controlled(catalog: Catalog) -> None:
    assert {m.key for m in catalog.models if m.export_controlled} == {"B300", "GB300"}
    # Parts commonly licence-controlled carry a note so "false" does not read as "free to ship".
    for key in ("A100-SXM4-80GB", "H100-SXM5-80GB", "H200-SXM-141GB", "B200", "H20-96GB", "4090"):
        note = catalog.lookup(key).export_note
        assert note and ("3A090" in note or "licence" in note), key


def test_ecc(catalog: Catalog) -> None:
    assert (
        catalog.lookup("H100-SXM5-80GB").ecc
        and catalog.lookup("H100-SXM5-80GB").ecc_default_on is True
    )
    assert catalog.lookup("RTX 6000 Ada").ecc_default_on is False
    assert not catalog.lookup("5090").ecc
    for model in catalog.models:
        if not model.ecc:
            assert model.ecc_default_on is None


def test_every_row_cites_its_sources(catalog: Catalog) -> None:
    for model in catalog.models:
        assert "NOTES §1" in model.source, model.key
        if model.mig_capable:
            assert "§2" in model.source, model.key


def test_memory_matches_full_gpu_profile(catalog: Catalog) -> None:
    assert catalog.lookup("H100-SXM5-80GB").memory_gb == 80
    assert catalog.lookup("H100 NVL").memory_gb == 94
    assert catalog.lookup("h200").memory_gb == 141
    assert catalog.lookup("gb200").memory_gb == 186
    for model in catalog.models:
        if model.mig_capable:
            assert max(p.memory_gb for p in model.mig_profiles) == model.memory_gb


# --- MIG profiles ---------------------------------------------------------------------------------


def test_h200_profiles(catalog: Catalog) -> None:
    h200 = catalog.lookup("h200")
    names = [p.name for p in h200.mig_profiles]
    assert names == [
        "1g.18gb",
        "1g.18gb+me",
        "1g.35gb",
        "2g.35gb",
        "3g.71gb",
        "4g.71gb",
        "7g.141gb",
    ]
    assert {p.confidence for p in h200.mig_profiles} == {Confidence.INFERRED}
    three = h200.mig_profile("3g.71gb")
    assert three is not None
    assert (three.compute_slices, three.memory_units, three.max_count) == (3, 4, 2)
    assert three.starts == (0, 4) and three.smi_id == 9


def test_same_profile_name_differs_per_model(catalog: Catalog) -> None:
    # "1g.35gb" is the 1g.2M profile on H200 (4 per GPU) but the 1g profile on GB300 (7 per GPU).
    h200 = catalog.lookup("h200").mig_profile("1g.35gb")
    gb300 = catalog.lookup("gb300").mig_profile("1g.35gb")
    assert h200 is not None and gb300 is not None
    assert (h200.max_count, h200.memory_units) == (4, 2)
    assert (gb300.max_count, gb300.memory_units) == (7, 1)


def test_placement_rules_of_the_eight_slot_grid(catalog: Catalog) -> None:
    h100 = catalog.lookup("H100-SXM5-80GB")
    assert h100.mig_family == "eight_slot"
    # Memory slice 7 is reachable only by 1g.2M@6, 3g@4 and 7g@0.
    reach_last = {p.name for p in h100.mig_profiles if p.starts[-1] + p.memory_units == 8}
    assert reach_last == {"1g.20gb", "3g.40gb", "7g.80gb"}
    observed = catalog.lookup("A100 40GB").mig_profiles[0].confidence
    assert observed is Confidence.OBSERVED


def test_rtx_pro_grid(catalog: Catalog) -> None:
    rtx = catalog.lookup("RTX PRO 6000 BSE")
    assert rtx.key == "RTX-PRO-6000-BSE"
    one = rtx.mig_profile("1g.24gb")
    two = rtx.mig_profile("2g.48gb")
    assert one is not None and two is not None
    assert (one.starts, one.memory_units, one.smi_id) == ((0, 3, 6, 9), 3, 14)
    assert (two.starts, two.memory_units) == ((0, 6), 6)


def test_mig_profile_name_forms(catalog: Catalog) -> None:
    a100 = catalog.lookup("A100 40GB")
    plus = a100.mig_profile("1g.5gb+me")
    assert plus is not None
    assert a100.mig_profile("1g.5gb.me") is plus  # mig-parted config-name form
    assert a100.mig_profile("MIG 1g.5gb+me") is plus  # nvidia-smi -L form
    assert a100.mig_profile("1g.10gb+me") is None
    assert normalize_mig_profile_name("1g.24gb.me.all") == "1g.24gb+me.all"
    assert normalize_mig_profile_name("2g.48gb-me") == "2g.48gb-me"
    assert catalog.lookup("l40s").mig_profile("1g.5gb") is None


# --- public JSON row, rendering, immutability ----------------------------------------------------


def test_public_dict(catalog: Catalog) -> None:
    row = catalog.lookup("H100-SXM5-80GB").public_dict()
    required = {
        "name",
        "key",
        "mig_max_instances",
        "vgpu",
        "cc",
        "ecc",
        "consumer",
        "export_controlled",
        "pci_device_ids",
    }
    assert required <= row.keys()
    assert {"aliases", "mig_profiles", "source", "mig_capable"} <= row.keys()
    assert row["cc"] == "protected-pcie" and isinstance(row["cc"], str)
    assert row["pci_device_ids"] == ["0x2330"]
    assert row["mig_profiles"][0]["name"] == "1g.10gb"
    # Round-trips through JSON unchanged, for every row.
    for model in catalog.models:
        data = model.public_dict()
        assert json.loads(json.dumps(data)) == data


def test_catalog_table(catalog: Catalog) -> None:
    table = catalog_table(catalog)
    headers = [str(c.header) for c in table.columns]
    assert headers == [
        "model",
        "arch",
        "MIG",
        "vGPU",
        "CC",
        "ECC",
        "consumer",
        "export-controlled",
        "PCI IDs",
    ]
    assert table.row_count == len(catalog)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "H100-SXM5-80GB" in text and "protected-pcie" in text and "0x2BB1, 0x2BB4" in text
    one = catalog_table(catalog, [catalog.lookup("l40s")])
    assert one.row_count == 1
    mig_cells = list(one.columns[2].cells)
    assert mig_cells == ["—"]


def test_models_and_catalog_are_immutable(catalog: Catalog) -> None:
    model = catalog.lookup("H100-SXM5-80GB")
    with pytest.raises(ValidationError):
        model.vgpu = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.models = ()  # type: ignore[misc]


# --- strict validation of the data ---------------------------------------------------------------


def _gpus_doc() -> dict[str, Any]:
    doc = yaml.safe_load(_data_text("gpus.yaml"))
    assert isinstance(doc, dict)
    return doc


def _parse(doc: dict[str, Any], families: str | None = None) -> Catalog:
    return parse_catalog(yaml.safe_dump(doc), families or _data_text("mig_families.yaml"))


def _row(doc: dict[str, Any], key: str) -> dict[str, Any]:
    rows = [r for r in doc["gpus"] if r["key"] == key]
    assert len(rows) == 1
    row = rows[0]
    assert isinstance(row, dict)
    return row


def test_shipped_data_parses() -> None:
    assert _parse(_gpus_doc()).keys() == load_catalog().keys()


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("H100-SXM5-80GB", {"pci_device_ids": ["0x233"]}, "PCI device ID"),
        ("H100-SXM5-80GB", {"pci_device_ids": ["0x20b0"]}, "PCI device ID"),
        ("H100-SXM5-80GB", {"mig_max_instances": 4}, "compute slices"),
        ("H100-SXM5-80GB", {"mig_family": "nine_slot"}, "unknown mig_family"),
        ("H100-SXM5-80GB", {"mig_profile_names": ["1g.10gb"]}, "same order"),
        ("H100-SXM5-80GB", {"memory_gb": 81}, "full-GPU profile"),
        ("A40", {"mig_max_instances": 7}, "mig_max_instances is 0|needs mig_profiles"),
        ("RTX-4090", {"vgpu": True}, "consumer"),
        ("A40", {"cc": "single-gpu"}, "Hopper"),
        ("A40", {"cc": "maybe"}, "Input should be 'none'"),
        ("RTX-5090", {"ecc_default_on": True}, "ecc_default_on"),
        ("L4", {"unexpected": 1}, "Extra inputs are not permitted"),
        ("L4", {"aliases": ["L4", "l4"]}, "duplicate aliases"),
    ],
)
def test_malformed_row_raises_internal_error_naming_the_row(
    key: str, change: dict[str, Any], message: str
) -> None:
    doc = _gpus_doc()
    _row(doc, key).update(change)
    with pytest.raises(InternalError, match=message) as info:
        _parse(doc)
    assert key in str(info.value)


def test_wrong_profile_name_for_the_family_is_rejected() -> None:
    doc = _gpus_doc()
    names = _row(doc, "H100-SXM5-80GB")["mig_profile_names"]
    names[1] = "1g.10gb+gfx"  # position 1 is the +me profile
    with pytest.raises(InternalError, match=r"does not fit kind '1g\.M\+me'"):
        _parse(doc)


def test_alias_claimed_by_two_rows_is_rejected() -> None:
    doc = _gpus_doc()
    _row(doc, "L4")["aliases"].append("nvidia_h100_80gb_hbm3")
    with pytest.raises(InternalError, match="matches both"):
        _parse(doc)


def test_alias_that_is_another_rows_pci_id_is_rejected() -> None:
    doc = _gpus_doc()
    _row(doc, "L4")["aliases"].append("2330")
    with pytest.raises(InternalError, match="PCI ID of H100-SXM5-80GB"):
        _parse(doc)


def test_pci_id_claimed_by_two_rows_is_rejected() -> None:
    doc = _gpus_doc()
    _row(doc, "L4")["pci_device_ids"].append("0x2330")
    with pytest.raises(InternalError, match="0x2330"):
        _parse(doc)


def test_yaml_syntax_error_is_internal_error() -> None:
    with pytest.raises(InternalError, match="not valid YAML"):
        parse_catalog("gpus: [", _data_text("mig_families.yaml"))
    with pytest.raises(InternalError, match="wrong shape"):
        parse_catalog("gpus: 3", _data_text("mig_families.yaml"))


def test_bad_family_grid_is_rejected() -> None:
    families = yaml.safe_load(_data_text("mig_families.yaml"))
    # A 3g instance starting at slice 6 would overrun the 8-slice grid.
    families["families"]["eight_slot"]["profiles"][4]["starts"] = [0, 6]
    with pytest.raises(InternalError, match="overruns"):
        _parse(_gpus_doc(), yaml.safe_dump(families))


def test_mig_profile_model_validation() -> None:
    good: dict[str, Any] = {
        "name": "2g.20gb",
        "compute_slices": 2,
        "memory_units": 2,
        "max_count": 3,
        "starts": [0, 2, 4],
        "smi_id": 14,
        "nvml_profile": "GPU_INSTANCE_PROFILE_2_SLICE",
        "confidence": "observed",
    }
    assert MigProfile.model_validate(good).memory_gb == 20
    for bad in (
        {"compute_slices": 3},  # name says 2g
        {"name": "2g.20GB"},
        {"starts": [2, 0, 4]},
        {"max_count": 4},  # more instances than placements
        {"confidence": "likely"},
    ):
        with pytest.raises(ValidationError):
            MigProfile.model_validate({**good, **bad})


def test_gpu_model_rejects_profiles_without_mig(catalog: Catalog) -> None:
    data = catalog.lookup("H100-SXM5-80GB").model_dump()
    data["mig_max_instances"] = 0
    with pytest.raises(ValidationError, match="mig_max_instances is 0"):
        GpuModel.model_validate(data)


# --- agreement with upstream data (../shared) ----------------------------------------------------


def _device_filters(entry: dict[str, Any]) -> list[int]:
    raw = entry.get("device-filter")
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else list(raw)
    ids = [parse_pci_device_id(str(item)) for item in items]
    assert all(i is not None for i in ids), f"unparsable device-filter {raw!r}"
    return [i for i in ids if i is not None]


@pytest.fixture(scope="module")
def mig_parted_configs() -> dict[str, list[dict[str, Any]]]:
    path = _shared_file(MIG_DATA / "mig-parted_config-default.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    configs = doc["mig-configs"]
    assert isinstance(configs, dict) and configs
    return configs


def test_mig_parted_device_filters_agree_with_catalog(
    catalog: Catalog, mig_parted_configs: dict[str, list[dict[str, Any]]]
) -> None:
    """For every device-filter the catalog knows: each profile is the row's, and N <= max_count."""
    checked = 0
    for config_name, entries in mig_parted_configs.items():
        for entry in entries:
            for device in _device_filters(entry):
                model = catalog.by_pci_device_id(device)
                assert model is not None, f"{config_name}: device-filter 0x{device:04X} unknown"
                for profile_name, count in (entry.get("mig-devices") or {}).items():
                    profile = model.mig_profile(profile_name)
                    where = f"{config_name} 0x{device:04X} -> {model.key}"
                    assert profile is not None, f"{where}: no profile {profile_name}"
                    assert count <= profile.max_count, f"{where}: {profile_name}: {count}"
                    checked += 1
    assert checked >= 70  # every filtered entry, each device ID of it, each profile


def test_mig_parted_unfiltered_counts_fit_every_row_with_that_profile(
    catalog: Catalog, mig_parted_configs: dict[str, list[dict[str, Any]]]
) -> None:
    """An entry without device-filter applies to every GPU: where the catalog has the profile
    name, the requested count must fit."""
    for config_name, entries in mig_parted_configs.items():
        for entry in entries:
            if "device-filter" in entry:
                continue
            for profile_name, count in (entry.get("mig-devices") or {}).items():
                for model in catalog.models:
                    profile = model.mig_profile(profile_name)
                    if profile is not None:
                        assert count <= profile.max_count, f"{config_name} on {model.key}"


def test_every_catalog_profile_name_is_used_by_mig_parted(
    catalog: Catalog, mig_parted_configs: dict[str, list[dict[str, Any]]]
) -> None:
    used = {
        normalize_mig_profile_name(name)
        for entries in mig_parted_configs.values()
        for entry in entries
        for name in (entry.get("mig-devices") or {})
    }
    for model in catalog.models:
        missing = {p.name for p in model.mig_profiles} - used
        assert not missing, f"{model.key}: {sorted(missing)} not in mig-parted config-default"


def test_every_mig_pci_id_appears_in_a_mig_parted_device_filter(
    catalog: Catalog, mig_parted_configs: dict[str, list[dict[str, Any]]]
) -> None:
    filtered = {
        device
        for entries in mig_parted_configs.values()
        for entry in entries
        for device in _device_filters(entry)
    }
    # mig-parted filters only the RTX PRO 6000 Server Edition ID.
    not_filtered = {0x2BB1, 0x2BB4}
    for model in catalog.models:
        if model.mig_capable:
            missing = set(model.pci_device_id_ints) - filtered - not_filtered
            assert not missing, f"{model.key}: {sorted(hex(m) for m in missing)}"


def test_family_grids_agree_with_derived_placement_data(catalog: Catalog) -> None:
    path = _shared_file(MIG_DATA / "derived_mig_profiles_placements.yaml")
    derived = yaml.safe_load(path.read_text(encoding="utf-8"))["families"]

    def shape(p: dict[str, Any]) -> tuple[int, int, int, int, tuple[int, ...]]:
        return (p["smi_id"], p["compute_slices"], p["mem_units"], p["max"], tuple(p["starts"]))

    def ours(p: MigProfile) -> tuple[int, int, int, int, tuple[int, ...]]:
        return (p.smi_id, p.compute_slices, p.memory_units, p.max_count, p.starts)

    # The eight-slot family is described by kind; check every row's profiles in order.
    eight = [shape(p) for p in derived["eight_slot"]["profiles"]]
    for model in catalog.models:
        if model.mig_family == "eight_slot":
            assert [ours(p) for p in model.mig_profiles] == eight, model.key
    for family, key in (("four_slot_a30", "A30"), ("rtx_pro_6000_blackwell", "RTX-PRO-6000-BSE")):
        expected = {p["name"]: shape(p) for p in derived[family]["profiles"]}
        assert {p.name: ours(p) for p in catalog.lookup(key).mig_profiles} == expected

    # Profile names per model (derived names_by_model) match the catalog rows.
    names = derived["eight_slot"]["names_by_model"]
    rows = {
        "A100-40GB": ["A100-SXM4-40GB", "A100-PCIE-40GB", "A800-40GB-ACTIVE"],
        "A100-80GB": ["A100-SXM4-80GB", "A100-PCIE-80GB", "A800-SXM4-80GB", "A800-PCIE-80GB"],
        "H100-80GB": ["H100-SXM5-80GB", "H100-PCIE-80GB", "H800-SXM5-80GB", "H800-PCIE-80GB"],
        "H100-NVL-94GB": ["H100-NVL-94GB", "H800-NVL-94GB"],
        "H100-96GB": ["H20-96GB", "H100-96GB", "GH200-96GB", "PG506-96GB"],
        "H200-141GB": ["H200-SXM-141GB", "H200-NVL-141GB"],
        "GH200-144GB": ["GH200-144GB"],
        "B200": ["B200"],
        "GB200": ["GB200"],
        "B300": ["B300"],
        "GB300": ["GB300"],
    }
    for derived_name, keys in rows.items():
        for key in keys:
            assert [p.name for p in catalog.lookup(key).mig_profiles] == names[derived_name], key


def test_every_mig_parted_device_filter_is_in_the_catalog(
    catalog: Catalog, mig_parted_configs: dict[str, list[dict[str, Any]]]
) -> None:
    """Every device mig-parted's config-default names by PCI ID resolves to a MIG-capable row
    whose profile names include every profile the filtered entries ask for."""
    devices = {
        device
        for entries in mig_parted_configs.values()
        for entry in entries
        for device in _device_filters(entry)
    }
    assert len(devices) >= 27
    for device in devices:
        model = catalog.by_pci_device_id(device)
        assert model is not None, f"0x{device:04X} is not in the catalog"
        assert model.mig_capable, model.key
        # Packed form (mig-parted device-filter) resolves to the same row.
        assert catalog.lookup(f"0x{device:04X}10DE") is model


@pytest.mark.parametrize(
    ("name", "variants", "differ"),
    [
        ("a100", {"A100-SXM4-40GB", "A100-PCIE-40GB", "A100-SXM4-80GB", "A100-PCIE-80GB"}, "mig"),
        ("H100", {"H100-SXM5-80GB", "H100-PCIE-80GB", "H100-NVL-94GB", "H100-96GB"}, "cc"),
        ("A100 SXM4", {"A100-SXM4-40GB", "A100-SXM4-80GB"}, "mig_profiles"),
        ("gh200", {"GH200-96GB", "GH200-144GB"}, "mig_profiles"),
        ("rtx pro 6000", {"RTX-PRO-6000-BSE", "RTX-PRO-6000-WS"}, "cc"),
    ],
)
def test_ambiguous_family_name_lists_variants(name: str, variants: set[str], differ: str) -> None:
    from gpufence.errors import AmbiguousGpuModelError

    with pytest.raises(AmbiguousGpuModelError) as caught:
        load_catalog().lookup(name)
    assert set(caught.value.variants) == variants
    assert any(d.startswith(differ) for d in caught.value.differ)
    assert caught.value.exit_code == 2
    # The variants really differ where the error says: a lookup of each gives distinct values.
    prop = caught.value.differ[0]
    values = {repr(getattr(load_catalog().get(v), prop)) for v in variants}
    assert len(values) > 1


def test_nvidia_smi_product_name_is_not_ambiguous() -> None:
    """nvidia-smi prints "NVIDIA H200" for the SXM part only (the NVL prints "... NVL")."""
    assert load_catalog().lookup("NVIDIA H200").key == "H200-SXM-141GB"
    assert load_catalog().lookup("NVIDIA H200 NVL").key == "H200-NVL-141GB"


def test_catalog_data_with_an_ambiguous_alias_is_rejected() -> None:
    catalog = load_catalog()
    rows = list(catalog.models)
    index = next(i for i, m in enumerate(rows) if m.key == "H100-SXM5-80GB")
    rows[index] = rows[index].model_copy(update={"aliases": (*rows[index].aliases, "H100")})
    with pytest.raises(ValueError, match="ambiguous"):
        type(catalog)(tuple(rows))


def test_cli_ambiguous_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from gpufence.cli import main

    assert main(["catalog", "h100"]) == 2
    err = capsys.readouterr().err
    assert "H100-PCIE-80GB" in err and "H100-SXM5-80GB" in err and "cc" in err
