"""MIG geometry on one GPU: does a set of profiles fit, and where does each instance start?

A GPU model's placement grid comes from the catalog (``GpuModel.mig_profiles``: size on the grid
and the allowed start indices of each profile, as ``nvidia-smi mig -lgipp`` prints them). The
rules, in the order a geometry is judged (notes gpu-silicon-mig-k8s.md §2.2-§2.4):

1. at most ``max_count`` instances of each profile (MIG User Guide tables; mig-parted ``all-*``);
2. at most one instance with media extensions (``+me``/``+me.all``) per GPU (MIG User Guide);
3. the compute slices of all instances fit the GPU (7 on the 8-slot family, 4 on A30/RTX PRO);
4. their sizes fit the grid (8 memory slices, 4 on A30, 12 units on RTX PRO 6000);
5. every instance sits at one of its profile's legal starts without overlapping another.

Everything here is pure and cached per model; the planner's packer builds on :class:`MigGrid`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gpufence._frozen import Frozen
from gpufence.catalog import GpuModel, MigProfile, normalize_mig_profile_name
from gpufence.errors import InputError

__all__ = [
    "GeometryCheck",
    "MigGrid",
    "Placement",
    "check_geometry",
    "grid_for",
    "parse_profile_list",
    "resolve_profiles",
]

_MEDIA_ATTRIBUTES = ("+me", "+me.all")
# "3g.40gb", "1g.10gb*7", "1g.5gb.me*2", "1g.24gb+me.all"
_ITEM = re.compile(r"^(?P<name>[^*\s]+)\s*(?:\*\s*(?P<count>[0-9]+))?$")


class Placement(Frozen):
    """One GPU instance on the grid: ``nvidia-smi mig -lgipp`` ``{start}:size`` of a profile."""

    profile: str
    start: int
    size: int


class GeometryCheck(Frozen):
    """Verdict of :func:`check_geometry` (the `gpufence mig check` JSON, plus the model key)."""

    model: str
    valid: bool
    placements: tuple[Placement, ...] = ()
    reason: str

    def public_dict(self) -> dict[str, object]:
        """The `mig check --json` document: ``valid``, ``placements``, ``reason``."""
        return {
            "valid": self.valid,
            "placements": [p.model_dump() for p in self.placements],
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class _Shape:
    """A profile as the solver sees it: bit masks of its legal placements on the grid."""

    name: str
    compute: int
    size: int
    max_count: int
    starts: tuple[int, ...]
    masks: tuple[int, ...]
    media: bool


@dataclass(eq=False)
class MigGrid:
    """The placement grid of one GPU model with cached fit/placement answers.

    Count vectors (``counts``) are tuples aligned with :attr:`shapes` (the catalog order).
    """

    model: GpuModel
    shapes: tuple[_Shape, ...] = field(init=False)
    units: int = field(init=False)
    compute: int = field(init=False)
    _placed: dict[tuple[int, ...], tuple[tuple[int, int], ...] | None] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not self.model.mig_capable or self.model.mig_grid_units is None:
            raise ValueError(f"{self.model.key} has no MIG")
        self.units = self.model.mig_grid_units
        self.compute = self.model.mig_max_instances
        self.shapes = tuple(_shape(p) for p in self.model.mig_profiles)

    # -- lookups ------------------------------------------------------------------------------

    def index(self, profile: str) -> int | None:
        """Position of ``profile`` (any spelling :func:`normalize_mig_profile_name` accepts)."""
        wanted = normalize_mig_profile_name(profile)
        for i, shape in enumerate(self.shapes):
            if shape.name == wanted:
                return i
        return None

    def counts_of(self, names: Iterable[str]) -> tuple[int, ...]:
        """Count vector of profile names (each must be one of this model's)."""
        counts = [0] * len(self.shapes)
        for name in names:
            i = self.index(name)
            if i is None:
                raise KeyError(name)
            counts[i] += 1
        return tuple(counts)

    def names(self, counts: Sequence[int]) -> tuple[str, ...]:
        """Sorted profile names of a count vector (the inventory's ``mig_geometry`` form)."""
        return tuple(
            sorted(s.name for s, n in zip(self.shapes, counts, strict=True) for _ in range(n))
        )

    def full_gpu_index(self) -> int:
        """The profile that takes the whole GPU (7g.80gb, 4g.24gb, 4g.96gb)."""
        best = max(
            range(len(self.shapes)),
            key=lambda i: (self.shapes[i].compute, -len(self.shapes[i].name)),
        )
        return best

    # -- judging ------------------------------------------------------------------------------

    def violation(self, counts: Sequence[int]) -> str | None:
        """Why ``counts`` cannot be one GPU's geometry (rules 1-4), or None if 1-4 hold."""
        units_word = "memory slices" if self.units <= 8 else "placement units"
        for shape, n in zip(self.shapes, counts, strict=True):
            if n > shape.max_count:
                return f"{n} x {shape.name}: at most {shape.max_count} per GPU on {self.model.key}"
        media = [
            s.name for s, n in zip(self.shapes, counts, strict=True) for _ in range(n) if s.media
        ]
        if len(media) > 1:
            return f"{' + '.join(media)}: at most one instance with media extensions (+me) per GPU"
        compute = sum(s.compute * n for s, n in zip(self.shapes, counts, strict=True))
        if compute > self.compute:
            return f"needs {compute} compute slices; {self.model.key} has {self.compute}"
        size = sum(s.size * n for s, n in zip(self.shapes, counts, strict=True))
        if size > self.units:
            return f"needs {size} {units_word}; {self.model.key} has {self.units}"
        return None

    def place(self, counts: Sequence[int]) -> tuple[tuple[int, int], ...] | None:
        """Legal, overlap-free ``(shape index, start)`` for every instance, or None (cached)."""
        key = tuple(counts)
        if key not in self._placed:
            self._placed[key] = None if self.violation(key) else self._search(key)
        return self._placed[key]

    def _search(self, counts: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
        # Most constrained first (fewest legal starts, then largest); high starts first so small
        # instances leave the low slices free for 4g/7g-sized ones (HAMi's heuristic, notes §5.3).
        order = sorted(
            (i for i, n in enumerate(counts) for _ in range(n)),
            key=lambda i: (len(self.shapes[i].starts), -self.shapes[i].size, i),
        )
        chosen: list[tuple[int, int]] = []

        def dfs(pos: int, used: int, bound: int) -> bool:
            if pos == len(order):
                return True
            i = order[pos]
            shape = self.shapes[i]
            # Identical instances take strictly decreasing start positions: no permutations.
            limit = bound if pos > 0 and order[pos - 1] == i else len(shape.starts)
            for j in range(limit - 1, -1, -1):
                mask = shape.masks[j]
                if used & mask:
                    continue
                chosen.append((i, shape.starts[j]))
                if dfs(pos + 1, used | mask, j):
                    return True
                chosen.pop()
            return False

        return tuple(chosen) if dfs(0, 0, 0) else None

    def placements(self, counts: Sequence[int]) -> tuple[Placement, ...] | None:
        """Legal placements of ``counts`` instances of each shape, by start; None if none."""
        placed = self.place(counts)
        if placed is None:
            return None
        return tuple(
            Placement(profile=self.shapes[i].name, start=start, size=self.shapes[i].size)
            for i, start in sorted(placed, key=lambda item: (item[1], item[0]))
        )

    # -- enumeration --------------------------------------------------------------------------

    @functools.cached_property
    def geometries(self) -> tuple[tuple[int, ...], ...]:
        """Every realizable non-empty count vector, enumerated from the placements themselves."""
        found: set[tuple[int, ...]] = set()
        counts = [0] * len(self.shapes)

        def profile(i: int, used: int, media: int, compute: int) -> None:
            if i == len(self.shapes):
                if any(counts):
                    found.add(tuple(counts))
                return
            shape = self.shapes[i]

            def add(first: int, used: int, media: int, compute: int) -> None:
                profile(i + 1, used, media, compute)
                for j in range(first, len(shape.starts)):
                    mask = shape.masks[j]
                    if used & mask or counts[i] >= shape.max_count:
                        continue
                    if compute + shape.compute > self.compute or (shape.media and media):
                        continue
                    counts[i] += 1
                    add(j + 1, used | mask, media + shape.media, compute + shape.compute)
                    counts[i] -= 1

            add(0, used, media, compute)

        profile(0, 0, 0, 0)
        return tuple(sorted(found))

    @functools.cached_property
    def maximal_geometries(self) -> tuple[tuple[int, ...], ...]:
        """Geometries to which no further instance can be added (the packer's patterns)."""
        valid = set(self.geometries)
        maximal = []
        for counts in self.geometries:
            grown = ((*counts[:i], counts[i] + 1, *counts[i + 1 :]) for i in range(len(counts)))
            if not any(g in valid for g in grown):
                maximal.append(counts)
        return tuple(maximal)


def _shape(profile: MigProfile) -> _Shape:
    mask = (1 << profile.memory_units) - 1
    return _Shape(
        name=profile.name,
        compute=profile.compute_slices,
        size=profile.memory_units,
        max_count=profile.max_count,
        starts=profile.starts,
        masks=tuple(mask << s for s in profile.starts),
        media=profile.attribute in _MEDIA_ATTRIBUTES,
    )


@functools.cache
def _grid_by_key(key: str, model: GpuModel) -> MigGrid:
    return MigGrid(model)


def grid_for(model: GpuModel) -> MigGrid:
    """The (cached) placement grid of a MIG-capable model."""
    return _grid_by_key(model.key, model)


# --- the `mig check` entry points ------------------------------------------------------------


def parse_profile_list(text: str) -> list[str]:
    """``"3g.40gb,2g.20gb,1g.10gb*2"`` -> ``["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]``.

    A profile is repeated as often as it is wanted or given with a count (``1g.10gb*7``).
    Raises InputError for an empty list, an empty item or a bad count.
    """
    names: list[str] = []
    items = [item.strip() for item in text.split(",")]
    if not text.strip():
        raise InputError("no MIG profiles given", hint="e.g. 3g.40gb,2g.20gb,1g.10gb*2")
    for item in items:
        match = _ITEM.match(item)
        if not match:
            raise InputError(
                f"bad MIG profile item {item!r}",
                hint="write PROFILE or PROFILE*COUNT, comma-separated (3g.40gb,1g.10gb*2)",
            )
        count = int(match["count"]) if match["count"] is not None else 1
        if count < 1:
            raise InputError(f"{item!r}: the count must be at least 1")
        if count > 64:
            raise InputError(f"{item!r}: {count} instances cannot fit any GPU (max 7)")
        names.extend([match["name"]] * count)
    return names


def resolve_profiles(model: GpuModel, names: Sequence[str]) -> list[MigProfile]:
    """The model's profiles for ``names``; InputError naming the unknown ones and the valid set."""
    if not model.mig_capable:
        raise InputError(
            f"{model.key} has no MIG",
            hint="MIG-capable models: A100/A800, A30, H100/H800/H200/H20/GH200, B200/B300, "
            "GB200/GB300, RTX PRO 6000 Blackwell (see `gpufence catalog`)",
        )
    resolved: list[MigProfile] = []
    unknown: list[str] = []
    for name in names:
        profile = model.mig_profile(name)
        if profile is None:
            unknown.append(name)
        else:
            resolved.append(profile)
    if unknown:
        known = ", ".join(p.name for p in model.mig_profiles)
        raise InputError(
            f"{model.key} has no MIG profile {', '.join(dict.fromkeys(unknown))}",
            hint=f"its profiles: {known}",
        )
    return resolved


def check_geometry(model: GpuModel, profiles: Sequence[MigProfile]) -> GeometryCheck:
    """Judge one GPU's geometry: valid with placements, or invalid with the first rule broken."""
    grid = grid_for(model)
    counts = grid.counts_of(p.name for p in profiles)
    if not any(counts):
        return GeometryCheck(
            model=model.key, valid=True, reason="no instances: MIG enabled with an empty GPU"
        )
    broken = grid.violation(counts)
    if broken is not None:
        return GeometryCheck(model=model.key, valid=False, reason=broken)
    placements = grid.placements(counts)
    if placements is None:
        allowed = "; ".join(
            f"{s.name} at {','.join(map(str, s.starts))}"
            for s, n in zip(grid.shapes, counts, strict=True)
            if n
        )
        return GeometryCheck(
            model=model.key,
            valid=False,
            reason=f"no overlap-free placement exists (legal starts: {allowed})",
        )
    compute = sum(s.compute * n for s, n in zip(grid.shapes, counts, strict=True))
    size = sum(s.size * n for s, n in zip(grid.shapes, counts, strict=True))
    return GeometryCheck(
        model=model.key,
        valid=True,
        placements=placements,
        reason=f"fits: {compute} of {grid.compute} compute slices, {size} of {grid.units} "
        f"{'memory slices' if grid.units <= 8 else 'placement units'}",
    )
