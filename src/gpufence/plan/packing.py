"""Packing MIG instances onto GPUs of one model: a lower bound, a pattern packer, first fit.

Instances that may share GPUs (one co-tenancy group on one GPU model) are a demand vector ``d``
over the model's profiles. A *pattern* is a realizable geometry (:attr:`MigGrid.geometries`).

- :func:`lower_bound`: the LP relaxation of "cover d with the fewest patterns" (Gilmore-Gomory),
  solved exactly enough in its dual form over the maximal patterns; its ceiling is a valid lower
  bound on GPUs and is never weaker than total compute slices / 7 or memory slices / 8.
- :func:`pack`: exact search for small demands; otherwise greedy pattern packing valued by the
  LP's dual prices (each step takes the pattern worth most, as many times as the demand allows),
  with a slice-count valuation as a second opinion, the better result's least full GPUs then
  re-packed exactly.
- :func:`first_fit`: the baseline: instances in arrival order, each into the first open GPU where
  it has a legal start (lowest start first), else a new GPU.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpufence.plan.mig import MigGrid

__all__ = ["GpuFill", "first_fit", "lower_bound", "pack", "slice_bound"]

Counts = tuple[int, ...]
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class GpuFill:
    """One packed GPU: its count vector and ``(shape index, start, item)`` per instance.

    ``item`` is the index of the demand item (in the caller's list) for first fit, or -1 when
    the packer works on aggregated counts (the caller assigns instances to owners afterwards).
    """

    counts: Counts
    placed: tuple[tuple[int, int, int], ...]


def slice_bound(grid: MigGrid, demand: Sequence[int]) -> int:
    """max(compute slices / GPU compute, grid units / GPU units), rounded up (issue's bound)."""
    compute = sum(s.compute * n for s, n in zip(grid.shapes, demand, strict=True))
    units = sum(s.size * n for s, n in zip(grid.shapes, demand, strict=True))
    return max(math.ceil(compute / grid.compute), math.ceil(units / grid.units))


def _dual_prices(grid: MigGrid, demand: Sequence[int]) -> tuple[float, list[float]]:
    """Solve max d.y s.t. p.y <= 1 for every maximal pattern p, y >= 0 (simplex, Bland's rule).

    The optimum equals the LP bound (strong duality); y prices each profile in GPUs.
    """
    types = [i for i, n in enumerate(demand) if n > 0]
    prices = [0.0] * len(demand)
    if not types:
        return 0.0, prices
    rows = sorted({tuple(p[i] for i in types) for p in grid.maximal_geometries})
    rows = [r for r in rows if any(r)]
    n_var = len(types)
    n_row = len(rows)
    # Tableau: [A | I | b]; objective row z - d.y = 0 (maximisation, so negative costs enter).
    width = n_var + n_row + 1
    table = [
        [float(v) for v in row] + [1.0 if k == r else 0.0 for k in range(n_row)] + [1.0]
        for r, row in enumerate(rows)
    ]
    objective = [-float(demand[i]) for i in types] + [0.0] * n_row + [0.0]
    basis = [n_var + r for r in range(n_row)]
    for _ in range(1000):
        entering = next((j for j in range(width - 1) if objective[j] < -_EPS), None)
        if entering is None:
            break
        best: tuple[float, int, int] | None = None
        for r in range(n_row):
            a = table[r][entering]
            if a > _EPS:
                ratio = table[r][-1] / a
                candidate = (ratio, basis[r], r)
                if best is None or candidate < best:
                    best = candidate
        if best is None:  # unbounded: impossible here (every profile fits some pattern)
            raise ArithmeticError("LP bound is unbounded")
        pivot_row = best[2]
        pivot = table[pivot_row][entering]
        table[pivot_row] = [v / pivot for v in table[pivot_row]]
        for r in range(n_row):
            if r != pivot_row and abs(table[r][entering]) > _EPS:
                factor = table[r][entering]
                table[r] = [v - factor * w for v, w in zip(table[r], table[pivot_row], strict=True)]
        factor = objective[entering]
        objective = [v - factor * w for v, w in zip(objective, table[pivot_row], strict=True)]
        basis[pivot_row] = entering
    for r, var in enumerate(basis):
        if var < n_var:
            prices[types[var]] = table[r][-1]
    return objective[-1], prices


def lower_bound(grid: MigGrid, demand: Sequence[int]) -> int:
    """GPUs any packing of ``demand`` needs at least (ceil of the LP bound; >= slice bound)."""
    if not any(demand):
        return 0
    value, _ = _dual_prices(grid, demand)
    return max(math.ceil(value - 1e-6), slice_bound(grid, demand))


def _greedy(
    grid: MigGrid, demand: Sequence[int], worth: Callable[[Counts], tuple[float, ...]]
) -> list[Counts]:
    remaining = list(demand)
    patterns = grid.maximal_geometries
    gpus: list[Counts] = []
    while any(remaining):
        best: Counts | None = None
        best_worth: tuple[float, ...] | None = None
        for pattern in patterns:
            # Any sub-multiset of a realizable geometry is realizable (drop instances).
            taken = tuple(min(p, r) for p, r in zip(pattern, remaining, strict=True))
            if not any(taken):
                continue
            w = worth(taken)
            if best_worth is None or w > best_worth:
                best, best_worth = taken, w
        assert best is not None  # every profile alone is a geometry, so something fits
        times = min(r // t for r, t in zip(remaining, best, strict=True) if t)
        gpus.extend([best] * times)
        remaining = [r - t * times for r, t in zip(remaining, best, strict=True)]
    return gpus


_EXACT_STATES = 4096


def _exact(grid: MigGrid, demand: Sequence[int]) -> list[Counts] | None:
    """Optimal packing by search over geometries, or None when the demand is too large.

    Every packing has a GPU holding an instance of the first profile still wanted, so only
    geometries containing it are tried at each step (memoised over remaining demand).
    """
    states = 1
    for n in demand:
        states *= n + 1
    if states > _EXACT_STATES:
        return None
    geometries = grid.geometries
    zero: Counts = tuple(0 for _ in demand)
    # best[rest] = (GPUs for rest, the first geometry to use). Filled by an explicit-stack
    # depth-first search over the remaining demand (only reachable states, as a memoised
    # recursion would, but without recursion: its depth would grow with the demand).
    best: dict[Counts, tuple[int, Counts | None]] = {zero: (0, None)}
    moves: dict[Counts, list[tuple[Counts, Counts]]] = {}
    stack: list[Counts] = [tuple(demand)]
    while stack:
        rest = stack[-1]
        if rest in best:
            stack.pop()
            continue
        if rest not in moves:
            first = next(i for i, n in enumerate(rest) if n)
            moves[rest] = [
                (g, tuple(b - a for a, b in zip(g, rest, strict=True)))
                for g in geometries
                if g[first] and all(a <= b for a, b in zip(g, rest, strict=True))
            ]
            pending = [after for _, after in moves[rest] if after not in best]
            if pending:
                stack.extend(pending)
                continue
        choice: tuple[int, Counts | None] = (1 << 30, None)
        for g, after in moves.pop(rest):
            count = 1 + best[after][0]
            if count < choice[0]:
                choice = (count, g)
        best[rest] = choice
        stack.pop()

    out: list[Counts] = []
    rest = tuple(demand)
    while any(rest):
        step = best[rest][1]
        assert step is not None
        out.append(step)
        rest = tuple(b - a for a, b in zip(step, rest, strict=True))
    return out


def _polish(grid: MigGrid, gpus: list[Counts]) -> list[Counts]:
    """Re-pack the least full GPUs exactly (the greedy's waste gathers in its last picks)."""
    order = sorted(
        gpus, key=lambda c: sum(s.compute * n for s, n in zip(grid.shapes, c, strict=True))
    )
    for take in range(min(len(order), 8), 1, -1):
        tail = order[:take]
        demand = [sum(col) for col in zip(*tail, strict=True)]
        exact = _exact(grid, demand)
        if exact is not None:
            return order[take:] + exact if len(exact) < take else gpus
    return gpus


def pack(grid: MigGrid, demand: Sequence[int]) -> list[GpuFill]:
    """Pack ``demand`` (count per profile) onto few GPUs: exact for small demands, else the
    better of two greedy valuations with its least full GPUs re-packed exactly (see module)."""
    if not any(demand):
        return []
    exact = _exact(grid, demand)
    if exact is not None:
        return _fills(grid, exact)
    _, prices = _dual_prices(grid, demand)

    def slices(c: Counts) -> tuple[float, ...]:
        compute = sum(s.compute * n for s, n in zip(grid.shapes, c, strict=True))
        units = sum(s.size * n for s, n in zip(grid.shapes, c, strict=True))
        return (compute, units)

    def dual(c: Counts) -> tuple[float, ...]:
        value = sum(p * n for p, n in zip(prices, c, strict=True))
        return (round(value, 9), *slices(c))

    candidates = [_greedy(grid, demand, dual), _greedy(grid, demand, slices)]
    return _fills(grid, _polish(grid, min(candidates, key=len)))


def _fills(grid: MigGrid, gpus: Sequence[Counts]) -> list[GpuFill]:
    fills = []
    for counts in gpus:
        placed = grid.place(counts)
        assert placed is not None  # geometries are realizable by construction
        fills.append(GpuFill(counts, tuple((i, start, -1) for i, start in placed)))
    return fills


@dataclass(slots=True)
class _Open:
    counts: list[int]
    used: int
    media: int
    compute: int
    placed: list[tuple[int, int, int]]


def _legal_start(grid: MigGrid, gpu: _Open, i: int) -> int | None:
    shape = grid.shapes[i]
    if gpu.counts[i] >= shape.max_count or (shape.media and gpu.media):
        return None
    if gpu.compute + shape.compute > grid.compute:
        return None
    for start, mask in zip(shape.starts, shape.masks, strict=True):
        if not gpu.used & mask:
            return start
    return None


def first_fit(grid: MigGrid, items: Sequence[int]) -> list[GpuFill]:
    """Baseline: each item (a shape index) into the first open GPU with a legal start.

    One min-heap of GPU numbers per profile; a GPU that cannot take a profile never can again
    (GPUs only fill up), so it is popped for good: exact first fit in O(log n) per instance.
    """
    gpus: list[_Open] = []
    heaps: list[list[int]] = [[] for _ in grid.shapes]
    for item, i in enumerate(items):
        heap = heaps[i]
        start: int | None = None
        while heap:
            start = _legal_start(grid, gpus[heap[0]], i)
            if start is not None:
                break
            heapq.heappop(heap)
        if start is None:
            gpus.append(_Open([0] * len(grid.shapes), 0, 0, 0, []))
            for other in heaps:
                heapq.heappush(other, len(gpus) - 1)
            start = grid.shapes[i].starts[0]
        gpu = gpus[heap[0]]
        shape = grid.shapes[i]
        gpu.counts[i] += 1
        gpu.used |= shape.masks[shape.starts.index(start)]
        gpu.media += shape.media
        gpu.compute += shape.compute
        gpu.placed.append((i, start, item))
    return [GpuFill(tuple(g.counts), tuple(g.placed)) for g in gpus]
