"""MIG geometry: NVIDIA's mig-parted configs judged valid, hand-made invalid cases, placements."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.catalog import Catalog, GpuModel, load_catalog, parse_pci_device_id
from gpufence.errors import InputError
from gpufence.plan.mig import (
    check_geometry,
    grid_for,
    parse_profile_list,
    resolve_profiles,
)
from tests.conftest import SHARED

MIG_DATA = SHARED / "data" / "mig"
# mig-parted configs that name no device and whose profiles no known part exposes: vGPU type names
# (GB200-3-95C, GB200-7-189C) suggest a 189 GB GB200 variant with no PCI ID (notes §2.2, GUESS).
NO_KNOWN_DEVICE = {"all-3g.95gb", "all-4g.95gb", "all-7g.189gb"}


def _shared(path: Path) -> Path:
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} missing")
        pytest.skip(f"{path} not present (reference data lives in ../shared)")
    return path


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _check(model: GpuModel, text: str) -> tuple[bool, str]:
    result = check_geometry(model, resolve_profiles(model, parse_profile_list(text)))
    return result.valid, result.reason


def _configs(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    assert doc["version"] == "v1"
    configs = doc["mig-configs"]
    assert isinstance(configs, dict)
    return configs


def _judge_mig_parted(catalog: Catalog, configs: dict[str, list[dict[str, Any]]]) -> int:
    """Judge every enabled entry on every device it names; return how many checks ran."""
    checked = 0
    for name, entries in configs.items():
        for entry in entries:
            if not entry["mig-enabled"]:
                continue
            wanted = [p for p, n in (entry.get("mig-devices") or {}).items() for _ in range(n)]
            raw = entry.get("device-filter")
            if raw is not None:
                filters = [raw] if isinstance(raw, str) else raw
                ids = [parse_pci_device_id(str(f)) for f in filters]
                models = [catalog.by_pci_device_id(i) for i in ids if i is not None]
                assert all(m is not None for m in models), f"{name}: unknown device {filters}"
            else:
                # No filter: the entry applies to every GPU exposing all of its profiles.
                models = [
                    m
                    for m in catalog.models
                    if m.mig_capable and all(m.mig_profile(p) for p in wanted)
                ]
                if not models:
                    assert name in NO_KNOWN_DEVICE, f"{name}: no catalog model exposes {wanted}"
                    continue
            for model in models:
                assert model is not None
                result = check_geometry(model, resolve_profiles(model, wanted))
                assert result.valid, f"{name} on {model.key}: {result.reason}"
                checked += 1
    return checked


def test_every_mig_parted_default_config_is_valid_for_the_devices_it_names(
    catalog: Catalog,
) -> None:
    path = _shared(MIG_DATA / "mig-parted_config-default.yaml")
    configs = _configs(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert len(configs) == 81
    assert _judge_mig_parted(catalog, configs) > 150


def test_gpu_operator_configmap_is_valid_too(catalog: Catalog) -> None:
    path = _shared(MIG_DATA / "gpu-operator_default-mig-parted-config_configmap.yaml")
    configmap = yaml.safe_load(path.read_text(encoding="utf-8"))
    configs = _configs(yaml.safe_load(configmap["data"]["config.yaml"]))
    assert _judge_mig_parted(catalog, configs) > 150


@pytest.mark.parametrize(
    "name", ["mig-parted_examples_config.yaml", "mig-parted_examples_dgx-station-80gb-config.yaml"]
)
def test_mig_parted_examples_are_valid(catalog: Catalog, name: str) -> None:
    configs = _configs(yaml.safe_load(_shared(MIG_DATA / name).read_text(encoding="utf-8")))
    assert _judge_mig_parted(catalog, configs) >= 6


def test_nos_geometries(catalog: Catalog) -> None:
    """nos ships per-model geometry tables; the A30/A100-40GB ones are valid, its typos are not."""
    doc = yaml.safe_load(_shared(MIG_DATA / "nos_known_mig_geometries.yaml").read_text("utf-8"))
    typos = 0
    for block in doc:
        model = catalog.lookup(block["models"][0])
        for geometry in block["allowedGeometries"]:
            names = [p for p, n in geometry.items() for _ in range(n)]
            if not all(model.mig_profile(p) for p in names):
                typos += 1  # 3g.20gb / 7g.79gb in nos's 80GB block
                with pytest.raises(InputError):
                    resolve_profiles(model, names)
                continue
            assert check_geometry(model, resolve_profiles(model, names)).valid, geometry
    assert typos >= 1


@pytest.mark.parametrize(
    ("model", "profiles", "reason"),
    [
        ("H100-SXM5-80GB", "4g.40gb,4g.40gb", "at most 1 per GPU"),
        ("H100-SXM5-80GB", "3g.40gb*3", "at most 2 per GPU"),
        ("H100-SXM5-80GB", "1g.10gb+me,1g.10gb+me", "at most 1 per GPU"),
        ("A100 40GB", "1g.5gb.me*2", "at most 1 per GPU"),
        ("H100-SXM5-80GB", "3g.40gb,3g.40gb,1g.10gb", "needs 9 memory slices"),
        ("H100-SXM5-80GB", "4g.40gb,2g.20gb,2g.20gb", "needs 8 compute slices"),
        ("H100-SXM5-80GB", "7g.80gb,1g.10gb", "needs 8 compute slices"),
        ("A30", "2g.12gb,2g.12gb,1g.6gb", "needs 5 compute slices"),
        ("A30", "1g.6gb+me,2g.12gb+me", "media extensions"),
        ("RTX PRO 6000 BSE", "4g.96gb,1g.24gb", "needs 5 compute slices"),
        ("RTX PRO 6000 BSE", "1g.24gb+me.all,1g.24gb+me", "media extensions"),
        ("h200", "1g.35gb*5", "at most 4 per GPU"),
        ("gb300", "1g.35gb*8", "at most 7 per GPU"),
    ],
)
def test_impossible_geometries_are_rejected(
    catalog: Catalog, model: str, profiles: str, reason: str
) -> None:
    valid, why = _check(catalog.lookup(model), profiles)
    assert not valid
    assert reason in why


@pytest.mark.parametrize(
    ("model", "profiles", "expected"),
    [
        # 3g must take slices 4-7 so the 2g and both 1g fit below it (MIG User Guide example).
        (
            "H100-SXM5-80GB",
            "3g.40gb,2g.20gb,1g.10gb,1g.10gb",
            {"3g.40gb": [4], "2g.20gb": [2], "1g.10gb": [0, 1]},
        ),
        ("H100-SXM5-80GB", "4g.40gb,3g.40gb", {"4g.40gb": [0], "3g.40gb": [4]}),
        ("H100-SXM5-80GB", "1g.20gb,1g.10gb*6", {"1g.20gb": [6], "1g.10gb": [0, 1, 2, 3, 4, 5]}),
        ("A30", "2g.12gb,1g.6gb*2", {"2g.12gb": [2], "1g.6gb": [0, 1]}),
        ("RTX PRO 6000 BSE", "2g.48gb,1g.24gb*2", {"2g.48gb": [6], "1g.24gb": [0, 3]}),
    ],
)
def test_placements(
    catalog: Catalog, model: str, profiles: str, expected: dict[str, list[int]]
) -> None:
    gpu = catalog.lookup(model)
    result = check_geometry(gpu, resolve_profiles(gpu, parse_profile_list(profiles)))
    assert result.valid, result.reason
    got: dict[str, list[int]] = {}
    for p in result.placements:
        got.setdefault(p.profile, []).append(p.start)
    assert got == expected


def test_enumeration_matches_the_notes_brute_force(catalog: Catalog) -> None:
    """Notes §2.2: 77 count-combinations without +me, 17 of them using all 7 compute slices."""
    grid = grid_for(catalog.lookup("H100-SXM5-80GB"))
    me = grid.index("1g.10gb+me")
    plain = [g for g in grid.geometries if g[me] == 0]
    assert len(plain) == 77
    full = [
        g for g in plain if sum(s.compute * n for s, n in zip(grid.shapes, g, strict=True)) == 7
    ]
    assert len(full) == 17
    assert len(grid.geometries) == 127


@pytest.mark.parametrize("model", ["H100-SXM5-80GB", "A30", "RTX PRO 6000 BSE"])
def test_enumeration_agrees_with_the_checker_on_every_count_vector(
    catalog: Catalog, model: str
) -> None:
    """Two independent answers: the placement enumerator and check_geometry's rules + search."""
    gpu = catalog.lookup(model)
    grid = grid_for(gpu)
    enumerated = set(grid.geometries)
    ranges = [range(min(s.max_count, grid.compute // s.compute) + 2) for s in grid.shapes]
    for counts in itertools.product(*ranges):
        if not any(counts) or sum(counts) > 8:
            continue
        profiles = [p for p, n in zip(gpu.mig_profiles, counts, strict=True) for _ in range(n)]
        assert check_geometry(gpu, profiles).valid == (counts in enumerated), counts


def test_maximal_geometries_cannot_grow(catalog: Catalog) -> None:
    grid = grid_for(catalog.lookup("H100-SXM5-80GB"))
    valid = set(grid.geometries)
    for counts in grid.maximal_geometries:
        for i in range(len(counts)):
            assert (*counts[:i], counts[i] + 1, *counts[i + 1 :]) not in valid


MIG_MODELS = [m.key for m in load_catalog().models if m.mig_capable]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MIG_MODELS), st.lists(st.integers(0, 10), min_size=1, max_size=7))
def test_valid_placements_are_legal_and_disjoint(key: str, picks: list[int]) -> None:
    model = load_catalog().lookup(key)
    profiles = [model.mig_profiles[i % len(model.mig_profiles)] for i in picks]
    result = check_geometry(model, profiles)
    if not result.valid:
        assert result.reason and not result.placements
        return
    assert sorted(p.profile for p in result.placements) == sorted(p.name for p in profiles)
    used: set[int] = set()
    for placement in result.placements:
        profile = model.mig_profile(placement.profile)
        assert profile is not None
        assert placement.start in profile.starts
        assert placement.size == profile.memory_units
        cells = set(range(placement.start, placement.start + placement.size))
        assert not cells & used
        used |= cells
    assert max(used) < (model.mig_grid_units or 0)


def test_parse_profile_list() -> None:
    assert parse_profile_list("3g.40gb,2g.20gb,1g.10gb,1g.10gb") == [
        "3g.40gb",
        "2g.20gb",
        "1g.10gb",
        "1g.10gb",
    ]
    assert parse_profile_list("1g.10gb*7") == ["1g.10gb"] * 7
    assert parse_profile_list(" 3g.40gb , 1g.10gb * 2 ") == ["3g.40gb", "1g.10gb", "1g.10gb"]
    for bad in ("", "  ", "3g.40gb,,1g.10gb", "1g.10gb*0", "1g.10gb*x", "1g.10gb*100"):
        with pytest.raises(InputError):
            parse_profile_list(bad)


def test_resolve_profiles_names_what_the_model_has(catalog: Catalog) -> None:
    h100 = catalog.lookup("H100-SXM5-80GB")
    with pytest.raises(InputError) as info:
        resolve_profiles(h100, ["1g.5gb", "3g.40gb"])
    assert "1g.5gb" in info.value.message and "3g.40gb" in (info.value.hint or "")
    with pytest.raises(InputError, match="has no MIG"):
        resolve_profiles(catalog.lookup("l40s"), ["1g.5gb"])
    # mig-parted's config-name spelling of +me resolves.
    assert resolve_profiles(h100, ["1g.10gb.me"])[0].name == "1g.10gb+me"


def test_empty_geometry_is_valid(catalog: Catalog) -> None:
    result = check_geometry(catalog.lookup("H100-SXM5-80GB"), [])
    assert result.valid and result.placements == ()
    assert set(result.public_dict()) == {"valid", "placements", "reason"}
