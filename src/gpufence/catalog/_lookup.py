"""Loading the shipped catalog data and resolving the many names of a GPU to one row."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import Field, ValidationError

from gpufence._frozen import Frozen
from gpufence.catalog._models import Confidence, GpuModel, MigProfile
from gpufence.errors import AmbiguousGpuModelError, InternalError, UnknownGpuModelError

__all__ = [
    "CONTROL_PROPERTIES",
    "Catalog",
    "load_catalog",
    "lookup",
    "normalize_name",
    "parse_catalog",
    "parse_pci_device_id",
]

_NVIDIA_VENDOR = 0x10DE
_MAX_SUGGESTIONS = 5

# "0x2330", "2330", "0x233010DE" / "233010DE" (NVML pciDeviceId and mig-parted device-filter:
# device << 16 | vendor), "10de:2330" (lspci -nn).
_PCI_FORMS = (
    re.compile(r"^(?:0x)?(?P<dev>[0-9a-f]{4})$"),
    re.compile(r"^(?:0x)?(?P<dev>[0-9a-f]{4})10de$"),
    re.compile(r"^\[?10de:(?P<dev>[0-9a-f]{4})\]?$"),
)
# GPU feature discovery decorates nvidia.com/gpu.product: "-SHARED" when time-sliced/MPS without
# rename, "-MIG-<profile>" under the single strategy (notes §3.4).
_GFD_SUFFIX = re.compile(r"(?:-mig-[1-8]g\.[0-9]+gb(?:\+me\.all|\+me|\+gfx|-me)?)?(?:-shared)?$")


CONTROL_PROPERTIES = (
    "architecture",
    "mig_max_instances",
    "mig_grid_units",
    "mig_profiles",
    "vgpu",
    "cc",
    "ecc",
    "ecc_default_on",
    "consumer",
    "export_controlled",
)
"""GpuModel fields that controls and the planner read: variants that differ in one of them
must not hide behind one name (grep of controls/ and plan/ for model attributes)."""


def _product_string(raw: str) -> bool:
    """An nvidia-smi product name or GFD label ("NVIDIA H200", "NVIDIA-H200"): authoritative."""
    return raw.casefold().startswith(("nvidia ", "nvidia-"))


def normalize_name(name: str) -> str:
    """Lookup form of a GPU name: case-folded, runs of spaces/dashes/underscores -> one dash,
    leading ``nvidia`` dropped, so "NVIDIA H100 80GB HBM3", "nvidia-h100-80gb-hbm3" and
    "H100 80GB HBM3" are one name.
    """
    text = re.sub(r"[\s_\-]+", "-", name.strip().casefold()).strip("-")
    if text.startswith("nvidia-"):
        text = text[len("nvidia-") :]
    return text


def parse_pci_device_id(text: str) -> int | None:
    """NVIDIA PCI device ID in ``text`` (any form in _PCI_FORMS), or None if it is not one."""
    compact = text.strip().casefold()
    for pattern in _PCI_FORMS:
        match = pattern.match(compact)
        if match:
            return int(match["dev"], 16)
    return None


@dataclass(frozen=True)
class Catalog:
    """The immutable set of known GPU models, indexed by every name and PCI device ID."""

    models: tuple[GpuModel, ...]
    _by_key: Mapping[str, GpuModel] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, GpuModel] = field(init=False, repr=False, compare=False)
    _by_pci: Mapping[int, GpuModel] = field(init=False, repr=False, compare=False)
    # normalised name -> the text shown when suggesting it (its shortest spelling in the data).
    _spelling: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Build the indexes; raise ValueError when two rows claim the same name or PCI ID."""
        by_key: dict[str, GpuModel] = {}
        by_name: dict[str, GpuModel] = {}
        by_pci: dict[int, GpuModel] = {}
        spelling: dict[str, str] = {}
        for model in self.models:
            if model.key in by_key:
                raise ValueError(f"duplicate key {model.key}")
            by_key[model.key] = model
            for pci in model.pci_device_id_ints:
                if pci in by_pci:
                    raise ValueError(
                        f"PCI device ID 0x{pci:04X} in both {by_pci[pci].key} and {model.key}"
                    )
                by_pci[pci] = model
        for model in self.models:
            # Names may repeat within a row (an nvidia-smi name and its GFD label normalise alike)
            # but never across rows: a name must identify one model.
            for raw in (model.key, model.name, *model.aliases):
                norm = normalize_name(raw)
                other = by_name.get(norm)
                if other is not None and other is not model:
                    raise ValueError(f"name {raw!r} matches both {other.key} and {model.key}")
                # A name that also parses as a PCI ID ("4090", "b200") must not point elsewhere.
                as_pci = parse_pci_device_id(norm)
                if as_pci is not None and by_pci.get(as_pci, model) is not model:
                    raise ValueError(
                        f"name {raw!r} of {model.key} is PCI ID of {by_pci[as_pci].key}"
                    )
                by_name[norm] = model
                # Suggest the shortest spelling ("H20" rather than "NVIDIA H20").
                if len(raw) < len(spelling.get(norm, raw + " ")):
                    spelling[norm] = raw
        ambiguous: dict[str, tuple[tuple[GpuModel, ...], tuple[str, ...]]] = {}
        for norm in list(by_name):
            family = self._family(norm)
            if family is not None:
                ambiguous[norm] = family
        for model in self.models:
            for raw in (model.key, model.name, *model.aliases):
                norm = normalize_name(raw)
                if norm in ambiguous and _product_string(raw):
                    # nvidia-smi prints exactly this for one model ("NVIDIA H200" is the SXM
                    # part; the NVL prints "NVIDIA H200 NVL"): the name is that model's.
                    del ambiguous[norm]
        for norm, (variants, _) in ambiguous.items():
            owner = by_name[norm]
            if normalize_name(owner.key) == norm or normalize_name(owner.name) == norm:
                raise ValueError(f"{owner.key}: its own key/name {norm!r} is ambiguous")
            raise ValueError(
                f"alias {self._spelling_of(owner, norm)!r} of {owner.key} is ambiguous "
                f"({', '.join(v.key for v in variants)} differ); drop it from the data"
            )
        object.__setattr__(self, "_by_key", MappingProxyType(by_key))
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))
        object.__setattr__(self, "_by_pci", MappingProxyType(by_pci))
        object.__setattr__(self, "_spelling", MappingProxyType(spelling))

    def _family(self, norm: str) -> tuple[tuple[GpuModel, ...], tuple[str, ...]] | None:
        """The models whose key extends ``norm`` ("a100" -> A100-SXM4-40GB, ...) when they are
        two or more and differ in a control property, with those properties; else None."""
        variants = tuple(
            m
            for m in self.models
            if normalize_name(m.key) == norm or normalize_name(m.key).startswith(norm + "-")
        )
        if len(variants) < 2:
            return None
        differ = tuple(
            prop
            for prop in CONTROL_PROPERTIES
            if len({repr(getattr(v, prop)) for v in variants}) > 1
        )
        return (variants, differ) if differ else None

    @staticmethod
    def _spelling_of(model: GpuModel, norm: str) -> str:
        return next(
            (r for r in (model.key, model.name, *model.aliases) if normalize_name(r) == norm), norm
        )

    def __iter__(self) -> Iterator[GpuModel]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.models)

    def get(self, key: str) -> GpuModel | None:
        """The row whose canonical key is ``key`` (exact, case-insensitive), else None."""
        return self._by_key.get(key.strip().upper())

    def by_pci_device_id(self, device_id: int) -> GpuModel | None:
        """The row for an NVIDIA PCI device ID (``0x2330``; a packed ``0x233010DE`` also works)."""
        if device_id > 0xFFFF:
            if device_id & 0xFFFF != _NVIDIA_VENDOR:
                return None
            device_id >>= 16
        return self._by_pci.get(device_id)

    def lookup(self, name: str) -> GpuModel:
        """Resolve a key, display name, alias, GFD product label or PCI device ID to its row.

        Raises AmbiguousGpuModelError when ``name`` is a family name ("a100", "h100") whose
        variants differ in a property a control reads (the error lists them), and
        UnknownGpuModelError (with up to five close names) when nothing matches.
        """
        norm = normalize_name(name)
        found = self._by_name.get(norm)
        if found is None:
            family = self._family(_GFD_SUFFIX.sub("", norm) or norm)
            if family is not None:
                variants, differ = family
                raise AmbiguousGpuModelError(name, [v.key for v in variants], differ)
        if found is None:
            pci = parse_pci_device_id(norm)
            if pci is not None:
                found = self._by_pci.get(pci)
        if found is None:
            stripped = _GFD_SUFFIX.sub("", norm)
            if stripped and stripped != norm:
                found = self._by_name.get(stripped)
        if found is None:
            raise UnknownGpuModelError(name, self.closest(name))
        return found

    def closest(self, name: str, n: int = _MAX_SUGGESTIONS) -> list[str]:
        """Up to ``n`` known names close to ``name``, at most one per model, best first.

        difflib similarity first; when nothing is similar enough ("H999"), names of the same
        product line (same leading letters: "h" -> H100, H200, H20) so the user still gets a hint.
        """
        norm = normalize_name(name)
        candidates = list(self._spelling)
        ranked = difflib.get_close_matches(norm, candidates, n=len(candidates), cutoff=0.6)
        if not ranked:
            line = _product_line(norm)
            same_line = [c for c in candidates if line and _product_line(c) == line]
            ranked = sorted(
                same_line, key=lambda c: -difflib.SequenceMatcher(None, norm, c).ratio()
            )
        seen: set[str] = set()
        result: list[str] = []
        for match in ranked:
            model = self._by_name[match]
            if model.key in seen:
                continue
            seen.add(model.key)
            result.append(self._spelling[match])
            if len(result) == n:
                break
        return result


def _product_line(norm: str) -> str:
    """Leading letters of a normalised name: "h100-pcie" -> "h", "rtx-4090" -> "rtx"."""
    match = re.match(r"[a-z]*", norm)
    return match[0] if match else ""


# --- data file parsing ------------------------------------------------------------------------


class _FamilyProfile(Frozen):
    # "1g.M", "1g.M+me", "2g.2M", ...: the shape a model's profile name must have at this position.
    kind: str = Field(pattern=r"^[1-8]g\.[0-9]*M(\+me\.all|\+me|\+gfx|-me)?$")
    nvml_profile: str
    smi_id: int
    compute_slices: int
    memory_units: int
    max_count: int
    starts: tuple[int, ...]


class _Family(Frozen):
    grid_units: int
    compute_slices: int
    source: str
    notes: tuple[str, ...] = ()
    profiles: tuple[_FamilyProfile, ...]


class _FamiliesFile(Frozen):
    families: dict[str, _Family]


class _GpuRow(Frozen):
    """A row as written in gpus.yaml: MIG geometry by reference to a family."""

    key: str
    name: str
    architecture: str
    form_factor: str
    memory_gb: int
    pci_device_ids: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    mig_max_instances: int
    mig_family: str | None = None
    mig_profile_names: tuple[str, ...] = ()
    mig_confidence: Confidence | None = None
    vgpu: bool
    cc: str
    ecc: bool
    ecc_default_on: bool | None = None
    consumer: bool
    export_controlled: bool
    export_note: str | None = None
    source: str
    notes: tuple[str, ...] = ()


class _GpusFile(Frozen):
    gpus: tuple[dict[str, Any], ...]


def _kind_pattern(kind: str) -> re.Pattern[str]:
    """Regex (for fullmatch) of names of a kind: ``2g.2M+me`` -> ``2g\\.[0-9]+gb\\+me``."""
    head, _, rest = kind.partition(".")
    attr = re.sub(r"^[0-9]*M", "", rest)
    return re.compile(rf"{re.escape(head)}\.[0-9]+gb{re.escape(attr)}")


def _profiles_for(
    row: _GpuRow, families: Mapping[str, _Family]
) -> tuple[int | None, tuple[MigProfile, ...]]:
    if row.mig_family is None:
        if row.mig_profile_names or row.mig_confidence is not None:
            raise ValueError("mig_profile_names/mig_confidence given without mig_family")
        return None, ()
    family = families.get(row.mig_family)
    if family is None:
        raise ValueError(f"unknown mig_family {row.mig_family!r}; known: {sorted(families)}")
    if row.mig_confidence is None:
        raise ValueError("mig_confidence is required with mig_family")
    # MIG User Guide "max instances" = compute slices of the GPU (7 x 1g on the 8-slot family).
    if row.mig_max_instances != family.compute_slices:
        raise ValueError(
            f"mig_max_instances {row.mig_max_instances} != {family.compute_slices} compute slices "
            f"of family {row.mig_family}"
        )
    if len(row.mig_profile_names) != len(family.profiles):
        raise ValueError(
            f"mig_profile_names has {len(row.mig_profile_names)} names, family {row.mig_family} "
            f"has {len(family.profiles)} profiles (same order)"
        )
    profiles = []
    for name, spec in zip(row.mig_profile_names, family.profiles, strict=True):
        if not _kind_pattern(spec.kind).fullmatch(name):
            raise ValueError(
                f"profile name {name!r} does not fit kind {spec.kind!r} of {row.mig_family}"
            )
        profiles.append(
            MigProfile(
                name=name,
                compute_slices=spec.compute_slices,
                memory_units=spec.memory_units,
                max_count=spec.max_count,
                starts=spec.starts,
                smi_id=spec.smi_id,
                nvml_profile=spec.nvml_profile,
                confidence=row.mig_confidence,
            )
        )
    return family.grid_units, tuple(profiles)


def _describe(raw: Any, index: int) -> str:
    key = raw.get("key") if isinstance(raw, dict) else None
    return f"row {index} ({key})" if key else f"row {index}"


def parse_catalog(
    gpus_text: str, families_text: str, *, origin: str = "gpufence.catalog"
) -> Catalog:
    """Build a Catalog from the two YAML documents.

    Any defect (YAML syntax, shape, a row failing validation, duplicates) raises InternalError
    naming the row: the data ships with the package, so a bad row is a bug, not user input.
    """
    try:
        families_doc = yaml.safe_load(families_text)
        gpus_doc = yaml.safe_load(gpus_text)
    except yaml.YAMLError as exc:
        raise InternalError(f"{origin}: catalog data is not valid YAML: {exc}") from exc
    try:
        families = _FamiliesFile.model_validate(families_doc).families
        rows = _GpusFile.model_validate(gpus_doc).gpus
    except ValidationError as exc:
        raise InternalError(f"{origin}: catalog data has the wrong shape: {exc}") from exc
    models: list[GpuModel] = []
    for index, raw in enumerate(rows):
        try:
            row = _GpuRow.model_validate(raw)
            grid, profiles = _profiles_for(row, families)
            fields = row.model_dump(exclude={"mig_profile_names", "mig_confidence"})
            models.append(
                GpuModel.model_validate(
                    {**fields, "mig_grid_units": grid, "mig_profiles": profiles}
                )
            )
        except (ValidationError, ValueError) as exc:
            raise InternalError(f"{origin}: invalid GPU {_describe(raw, index)}: {exc}") from exc
    try:
        return Catalog(tuple(models))
    except ValueError as exc:
        raise InternalError(f"{origin}: inconsistent catalog: {exc}") from exc


@functools.cache
def load_catalog() -> Catalog:
    """The catalog shipped in ``gpufence/catalog/data`` (parsed and validated once per process)."""
    data = resources.files("gpufence.catalog").joinpath("data")
    return parse_catalog(
        data.joinpath("gpus.yaml").read_text(encoding="utf-8"),
        data.joinpath("mig_families.yaml").read_text(encoding="utf-8"),
        origin="gpufence/catalog/data",
    )


def lookup(name: str) -> GpuModel:
    """``load_catalog().lookup(name)``."""
    return load_catalog().lookup(name)
