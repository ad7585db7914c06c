"""Ollivier-Ricci curvature of the price-level graph, solved exactly.

Definition
----------
At bar t take the ``window`` closes ``p[t - window + 1] .. p[t]`` (only bars <= t).

* **Levels.** ``level_i = floor(log(p_i / p_t) / log1p(delta))``: each close goes on a
  geometric grid of relative step ``delta`` anchored at the current close (always on
  level 0), so the graph depends only on relative moves inside the window.
* **Graph.** Nodes are the distinct levels visited. Each pair of consecutive closes
  whose levels differ adds one transition to the undirected edge between the two
  levels (a jump of several levels links non-adjacent levels directly); the weight
  ``w_xy`` of an edge is its number of transitions, both directions counted. The
  graph is connected: the closes walk through it.
* **Measures.** The lazy random walk with idleness ``alpha``:
  ``m_x = alpha * 1_x + (1 - alpha) * Σ_y (w_xy / W_x) * 1_y`` with ``W_x = Σ_z w_xz``.
* **Ground distance.** ``d`` is the shortest-path hop distance of the graph (BFS;
  weights do not shorten paths).
* **Curvature.** On every edge ``κ(x, y) = 1 - W1(m_x, m_y) / d(x, y)`` (``d = 1`` on an
  edge), W1 being the exact 1-Wasserstein (earth mover's) distance. The value at bar
  t is the unweighted mean of κ over the window's distinct edges: a busy edge counts
  as much as an edge crossed once (weights act through the measures only).
* **NaN.** Bars ``t < window - 1`` are NaN (warm-up), and so is every bar whose window
  stays within a single level (no edge: curvature undefined). A series shorter than
  ``window`` gives all NaN.

Exactness
---------
W1 is the optimum of a linear transport problem, solved exactly by POT's network
simplex (``ot.emd2``), whose result status is checked: a solve that does not reach
optimality raises :class:`OptimalTransportError` (after POT's own warning). No proxy,
no approximation. The solver is skipped only where the optimum has a proven closed
form. For an edge (x, y) let ``U = N(x) - {y}``, ``V = N(y) - {x}``, ``p = m_x(y)``,
``q = m_y(x)``. If ``d(u, y) = 2``, ``d(x, v) = 2`` and ``d(u, v) = 3`` for all u in U,
v in V (equivalently: the edge lies on no cycle of length 3, 4 or 5; every edge of a
tree qualifies), then every mass and every cross distance of the transport problem
equals that of the same problem on the "double star" tree made of the edge x-y with
U hanging off x and V off y. On a tree ``W1 = Σ_e |m_x(T_e) - m_y(T_e)|`` (T_e: the
nodes on one side of edge e; Kantorovich-Rubinstein duality on a tree metric): the
edges (x, u) carry ``m_x(u)``, the edges (y, v) carry ``m_y(v)`` and the edge (x, y)
carries ``|1 - p - q|``, so

    W1 = (1 - alpha)(W_x - w_xy)/W_x + (1 - alpha)(W_y - w_xy)/W_y + |1 - p - q|.

With ``alpha = 0`` on an unweighted tree this is Jost and Liu's
``κ = -2 (1 - 1/d_x - 1/d_y)_+``. A price-level graph is a path (a tree) unless some
bar jumps more than one level, so most windows never reach the solver;
``solver="emd"`` sends every edge to the solver instead (the tests check that both
agree). Windows that do need it are cached by their canonical weighted edge list
(identical graphs give identical values) and solves by their exact local problem
(masses and cost matrix), in bounded LRU caches that live for one call; a cached
value is what a fresh computation returns, bit for bit.

Levels are found from ``log(close)`` computed once per bar; any close whose estimate
lies within a (wide) rounding bound of a level boundary is recomputed by the formula
above, so the levels are exactly the defined ones.

Stride
------
With ``stride = s`` the curvature is computed only at the bars t with
``(t - (window - 1)) % s == 0`` and carried forward to the following bars until the
next computed one. The grid is anchored at the start of the series, so the output
stays causal and prefix-stable (the output for a prefix of the series is the prefix
of the output).

Scale invariance
----------------
Levels use the ratio ``p_i / p_t``, so multiplying every close by a power of two
(without overflow or underflow) leaves the output unchanged bit for bit. Any other
factor c > 0 keeps the ratios equal only up to one rounding: a close within about
1e-16 (relative) of a level boundary may then land on the other side of it, which
changes that window's graph.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import numba
import numpy as np
import ot
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError, TradePulseError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DELTA",
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW",
    "OptimalTransportError",
    "PriceLevelGraph",
    "ollivier_ricci",
    "price_level_graph",
    "ricci_curvature",
]

DEFAULT_WINDOW = 200
"""Closes per window (bars)."""
DEFAULT_DELTA = 0.005
"""Relative price step between levels (0.005 = 0.5 %)."""
DEFAULT_ALPHA = 0.5
"""Idleness of the lazy random walk (probability mass kept at the node)."""
DEFAULT_STRIDE = 1
"""Compute every bar."""

Solver = Literal["auto", "emd"]

_F = TypeVar("_F", bound=Callable[..., Any])

# Levels must stay exact in float64 and int64: |level| < 2**53.
_LEVEL_LIMIT = 9007199254740992.0
# Error bound, relative to the magnitudes involved, for levels estimated from precomputed
# logs (see _fill_levels_fast). The estimate and the defined quotient differ by the
# errors of the logs (<= 4 ulp each, numpy's SIMD log included), one rounding each for
# the ratio, the difference and the quotients: about 10 units of 2**-53 (1.1e-16) at
# most. 1e-12 is about 900 times that.
_LEVEL_TOLERANCE = 1e-12
_INT_SENTINEL = 1 << 62
# Beyond this |log(p_i / p_t)| the ratio itself may overflow or underflow float64; such
# closes take the defined computation, which reports them.
_RATIO_LOG_LIMIT = 700.0
# Rank lookup uses a direct table when the level span is at most this many times the
# window (always for paths without huge jumps); otherwise it sorts.
_SPAN_FACTOR = 4
# Windows per parallel work item of the scan.
_SCAN_CHUNK = 512
# Status codes of the scan (0: bar not computed).
_DONE = 1
_NEEDS_SOLVER = 2
# Bounded caches (entries): window results and local transport problems.
_WINDOW_CACHE_SIZE = 4096
_PROBLEM_CACHE_SIZE = 65536
# POT's default iteration cap for the network simplex.
_EMD_MAX_ITERATIONS = 100_000
_EMD_OPTIMAL = 1


class OptimalTransportError(TradePulseError, RuntimeError):
    """The network simplex did not reach an optimal transport plan."""


def _kernel(func: _F) -> _F:
    """Compile ``func`` with numba (cached on disk, strict IEEE arithmetic), keeping its type."""
    return cast(_F, numba.njit(cache=True, fastmath=False)(func))


def _parallel_kernel(func: _F) -> _F:
    """Like :func:`_kernel`, with ``prange`` loops run on all cores."""
    return cast(_F, numba.njit(cache=True, fastmath=False, parallel=True)(func))


# --------------------------------------------------------------------------- kernels


@_kernel
def _first_bad_price(x: NDArray[np.float64]) -> int:
    """Return the index of the first close that is not a finite number > 0, or -1."""
    for i in range(x.shape[0]):
        v = x[i]
        if not (v > 0.0 and v < np.inf):
            return i
    return -1


@_kernel
def _level(price: float, current: float, log_step: float) -> float:
    """Return ``floor(log(price / current) / log_step)`` exactly as defined (a float)."""
    ratio = price / current
    if not (ratio > 0.0 and ratio < np.inf):  # the ratio under- or overflowed float64
        return np.inf
    level: float = np.floor(math.log(ratio) / log_step)
    return level


@_kernel
def _fill_levels(
    close: NDArray[np.float64], start: int, stop: int, log_step: float, out: NDArray[np.int64]
) -> bool:
    """Write the levels of ``close[start:stop]`` into ``out``; False if one overflows."""
    current = close[stop - 1]
    for i in range(start, stop):
        level = _level(close[i], current, log_step)
        if not abs(level) < _LEVEL_LIMIT:
            return False
        out[i - start] = np.int64(level)
    return True


@_kernel
def _fill_levels_fast(
    close: NDArray[np.float64],
    logs: NDArray[np.float64],
    start: int,
    stop: int,
    inverse_step: float,
    log_step: float,
    out: NDArray[np.int64],
) -> tuple[bool, int, int]:
    """Do what :func:`_fill_levels` does, from ``logs = log(close)``; also return min/max.

    ``(logs[i] - logs[t]) * inverse_step`` differs from the defined quotient only by
    rounding errors of a few ulps of the logs, the difference and the quotient;
    ``_LEVEL_TOLERANCE`` bounds them with a wide margin. When no integer lies within
    that bound of the estimate the floors agree; otherwise (a close at a level
    boundary) the level is recomputed as defined.
    """
    current = close[stop - 1]
    current_log = logs[stop - 1]
    low = _INT_SENTINEL
    high = -_INT_SENTINEL
    doubtful = 0
    for i in range(start, stop):  # branch-free so that it vectorises
        difference = logs[i] - current_log
        quotient = difference * inverse_step
        tolerance = _LEVEL_TOLERANCE * (
            (1.0 + abs(logs[i]) + abs(current_log) + abs(difference)) * inverse_step
            + abs(quotient)
            + 1.0
        )
        # Clamped so that the integer conversions below are always defined.
        tolerance = min(tolerance, _LEVEL_LIMIT)
        quotient = min(max(quotient, -_LEVEL_LIMIT), _LEVEL_LIMIT)
        # A close equal to the current one is on level 0 exactly (log(1) = 0).
        same = close[i] == current
        level = 0 if same else math.floor(quotient - tolerance)
        doubtful += (not same) & (
            (level != math.floor(quotient + tolerance))
            | (abs(quotient) + tolerance >= _LEVEL_LIMIT)
            | (abs(difference) > _RATIO_LOG_LIMIT)
        )
        low = min(low, level)
        high = max(high, level)
        out[i - start] = level
    if doubtful:
        if not _fill_levels(close, start, stop, log_step, out):
            return False, 0, 0
        low = _INT_SENTINEL
        high = -_INT_SENTINEL
        for i in range(stop - start):
            low = min(low, out[i])
            high = max(high, out[i])
    return True, low, high


@_kernel
def _fill_ranks(
    levels: NDArray[np.int64],
    count: int,
    table: NDArray[np.int64],
    ranks: NDArray[np.int64],
    distinct: NDArray[np.int64],
) -> int:
    """Map ``levels[:count]`` to the ranks of their distinct values; return how many."""
    low = levels[0]
    high = levels[0]
    for i in range(1, count):
        low = min(low, levels[i])
        high = max(high, levels[i])
    span = high - low + 1
    if span <= table.shape[0]:
        table[:span] = 0
        for i in range(count):
            table[levels[i] - low] = 1
        nodes = 0
        for k in range(span):
            if table[k] != 0:
                table[k] = nodes
                distinct[nodes] = low + k
                nodes += 1
        for i in range(count):
            ranks[i] = table[levels[i] - low]
        return nodes
    ordered = np.sort(levels[:count])
    nodes = 0
    for i in range(count):
        if nodes == 0 or ordered[i] != distinct[nodes - 1]:
            distinct[nodes] = ordered[i]
            nodes += 1
    for i in range(count):
        ranks[i] = np.searchsorted(distinct[:nodes], levels[i])
    return nodes


@_kernel
def _canonical_edges(
    ranks: NDArray[np.int64], count: int, nodes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Return the distinct edges (u < v, sorted) of the rank walk and their weights."""
    codes = np.empty(max(count - 1, 0), dtype=np.int64)
    transitions = 0
    for i in range(1, count):
        a = ranks[i - 1]
        b = ranks[i]
        if a != b:
            codes[transitions] = min(a, b) * nodes + max(a, b)
            transitions += 1
    codes = np.sort(codes[:transitions])
    edges = 0
    for i in range(transitions):
        if i == 0 or codes[i] != codes[i - 1]:
            edges += 1
    first = np.empty(edges, dtype=np.int64)
    second = np.empty(edges, dtype=np.int64)
    weights = np.zeros(edges, dtype=np.int64)
    e = -1
    for i in range(transitions):
        if i == 0 or codes[i] != codes[i - 1]:
            e += 1
            first[e] = codes[i] // nodes
            second[e] = codes[i] % nodes
        weights[e] += 1
    return first, second, weights


@_kernel
def _tree_edge_curvature(alpha: float, weight: float, total_x: float, total_y: float) -> float:
    """Return κ(x, y) by the closed form valid when the edge is on no cycle of length <= 5."""
    lazy = 1.0 - alpha
    p = lazy * weight / total_x
    q = lazy * weight / total_y
    w1 = lazy * (total_x - weight) / total_x + lazy * (total_y - weight) / total_y
    w1 += abs(1.0 - p - q)
    return 1.0 - w1


@_kernel
def _forest_mean_curvature(
    nodes: int,
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    weights: NDArray[np.int64],
    alpha: float,
) -> float:
    """Return the mean closed-form κ over the edges of a tree."""
    totals = np.zeros(nodes, dtype=np.float64)
    for e in range(first.shape[0]):
        totals[first[e]] += weights[e]
        totals[second[e]] += weights[e]
    acc = 0.0
    for e in range(first.shape[0]):
        acc += _tree_edge_curvature(alpha, float(weights[e]), totals[first[e]], totals[second[e]])
    mean: float = acc / first.shape[0]
    return mean


@_parallel_kernel
def _scan(
    close: NDArray[np.float64],
    logs: NDArray[np.float64],
    window: int,
    log_step: float,
    alpha: float,
    stride: int,
    force_solver: bool,
    out: NDArray[np.float64],
    status: NDArray[np.int8],
) -> bool:
    """Fill ``out``/``status`` at the computed bars; return False if a level overflowed.

    A window is finished here (status 1) when it is flat (NaN) or its graph is a tree
    (closed form); otherwise it is left for the transport solver (status 2).
    """
    n = close.shape[0]
    if n < window:
        return True
    computed = (n - window) // stride + 1
    inverse_step = 1.0 / log_step
    chunks = (computed + _SCAN_CHUNK - 1) // _SCAN_CHUNK
    overflow = np.zeros(chunks, dtype=np.bool_)
    for chunk in numba.prange(chunks):
        levels = np.empty(window, dtype=np.int64)
        ranks = np.empty(window, dtype=np.int64)
        distinct = np.empty(window, dtype=np.int64)
        table = np.empty(_SPAN_FACTOR * window, dtype=np.int64)
        adjacent = np.empty(window, dtype=np.int64)
        stop_index = min((chunk + 1) * _SCAN_CHUNK, computed)
        for index in range(chunk * _SCAN_CHUNK, stop_index):
            t = window - 1 + index * stride
            ok, low, high = _fill_levels_fast(
                close, logs, t - window + 1, t + 1, inverse_step, log_step, levels
            )
            if not ok:
                overflow[chunk] = True
                break
            span = high - low + 1
            if span == 1:
                out[t] = np.nan
                status[t] = _DONE
                continue
            if force_solver:
                status[t] = _NEEDS_SOLVER
                continue
            if span <= window:
                adjacent[:span] = 0
                jumps = False
                for i in range(1, window):  # branch-free
                    step = levels[i] - levels[i - 1]
                    jumps |= (step > 1) | (step < -1)
                    adjacent[min(levels[i], levels[i - 1]) - low] += step != 0
                if not jumps:
                    # Moving one level at a time, the walk visits every level from `low`
                    # to `high` and crosses every gap: the graph is the path of levels.
                    acc = 0.0
                    for k in range(span - 1):
                        total_x = adjacent[k] + (adjacent[k - 1] if k > 0 else 0)
                        total_y = adjacent[k] + (adjacent[k + 1] if k + 2 < span else 0)
                        acc += _tree_edge_curvature(
                            alpha, float(adjacent[k]), float(total_x), float(total_y)
                        )
                    out[t] = acc / (span - 1)
                    status[t] = _DONE
                    continue
            nodes = _fill_ranks(levels, window, table, ranks, distinct)
            first, second, weights = _canonical_edges(ranks, window, nodes)
            if first.shape[0] == nodes - 1:  # connected with n - 1 edges: a tree
                out[t] = _forest_mean_curvature(nodes, first, second, weights, alpha)
                status[t] = _DONE
            else:
                status[t] = _NEEDS_SOLVER
    return not overflow.any()


@_kernel
def _carry_forward(out: NDArray[np.float64], window: int, stride: int) -> None:
    """Copy each computed bar's value to the bars up to the next computed one."""
    n = out.shape[0]
    if stride == 1:
        return
    for t in range(window - 1, n):
        if (t - (window - 1)) % stride != 0:
            out[t] = out[t - 1]


@_kernel
def _window_graph(
    close: NDArray[np.float64], start: int, stop: int, log_step: float
) -> tuple[bool, NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Return (ok, distinct levels, edge firsts, edge seconds, weights) of one window."""
    count = stop - start
    levels = np.empty(count, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    if not _fill_levels(close, start, stop, log_step, levels):
        return False, empty, empty, empty, empty
    ranks = np.empty(count, dtype=np.int64)
    distinct = np.empty(count, dtype=np.int64)
    table = np.empty(_SPAN_FACTOR * count, dtype=np.int64)
    nodes = _fill_ranks(levels, count, table, ranks, distinct)
    first, second, weights = _canonical_edges(ranks, count, nodes)
    return True, distinct[:nodes].copy(), first, second, weights


@_kernel
def _neighbour_lists(
    nodes: int, first: NDArray[np.int64], second: NDArray[np.int64], weights: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Return CSR neighbour lists (offsets, neighbours ascending, edge weights)."""
    degree = np.zeros(nodes + 1, dtype=np.int64)
    for e in range(first.shape[0]):
        degree[first[e] + 1] += 1
        degree[second[e] + 1] += 1
    offsets = np.cumsum(degree)
    fill = offsets[:-1].copy()
    neighbours = np.empty(2 * first.shape[0], dtype=np.int64)
    strengths = np.empty(2 * first.shape[0], dtype=np.float64)
    for e in range(first.shape[0]):
        neighbours[fill[first[e]]] = second[e]
        strengths[fill[first[e]]] = weights[e]
        fill[first[e]] += 1
        neighbours[fill[second[e]]] = first[e]
        strengths[fill[second[e]]] = weights[e]
        fill[second[e]] += 1
    for node in range(nodes):  # insertion sort: degrees are small
        for i in range(offsets[node] + 1, offsets[node + 1]):
            j = i
            while j > offsets[node] and neighbours[j - 1] > neighbours[j]:
                neighbours[j - 1], neighbours[j] = neighbours[j], neighbours[j - 1]
                strengths[j - 1], strengths[j] = strengths[j], strengths[j - 1]
                j -= 1
    return offsets, neighbours, strengths


@_kernel
def _bfs_distances(
    nodes: int, offsets: NDArray[np.int64], neighbours: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Return the all-pairs hop distances (BFS from every node; -1 when unreachable)."""
    distances = np.full((nodes, nodes), -1, dtype=np.int64)
    queue = np.empty(nodes, dtype=np.int64)
    for source in range(nodes):
        distances[source, source] = 0
        queue[0] = source
        head = 0
        tail = 1
        while head < tail:
            node = queue[head]
            head += 1
            for k in range(offsets[node], offsets[node + 1]):
                other = neighbours[k]
                if distances[source, other] < 0:
                    distances[source, other] = distances[source, node] + 1
                    queue[tail] = other
                    tail += 1
    return distances


@_kernel
def _hop_distances(
    nodes: int, first: NDArray[np.int64], second: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Return the all-pairs hop distances of the graph (-1 when unreachable)."""
    offsets, neighbours, _ = _neighbour_lists(
        nodes, first, second, np.ones(first.shape[0], dtype=np.float64)
    )
    return _bfs_distances(nodes, offsets, neighbours)


@_kernel
def _support(
    node: int,
    alpha: float,
    total: float,
    offsets: NDArray[np.int64],
    neighbours: NDArray[np.int64],
    strengths: NDArray[np.float64],
    nodes_out: NDArray[np.int64],
    masses_out: NDArray[np.float64],
) -> int:
    """Write the support of m_node in node order and its masses; return its size."""
    count = 0
    idle = alpha > 0.0
    lazy = 1.0 - alpha
    for k in range(offsets[node], offsets[node + 1]):
        if idle and neighbours[k] > node:
            nodes_out[count] = node
            masses_out[count] = alpha
            count += 1
            idle = False
        nodes_out[count] = neighbours[k]
        masses_out[count] = lazy * strengths[k] / total
        count += 1
    if idle:
        nodes_out[count] = node
        masses_out[count] = alpha
        count += 1
    return count


@_kernel
def _edge_analysis(
    nodes: int,
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    weights: NDArray[np.float64],
    alpha: float,
    force_solver: bool,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Return closed-form κ per edge (NaN where the solver is needed) and the packed problems.

    Edge e's transport problem, when it needs the solver, is
    ``packed[offsets[e]:offsets[e + 1]]`` = ``[kx, ky, m_x (kx), m_y (ky), cost (kx·ky)]``:
    the masses of m_x and m_y on their supports (in node order; the idle mass is
    omitted when alpha = 0) and the hop distances between the supports. Edges solved in
    closed form have no problem (``offsets[e] == offsets[e + 1]``).
    """
    edges = first.shape[0]
    offsets, neighbours, strengths = _neighbour_lists(nodes, first, second, weights)
    distances = _bfs_distances(nodes, offsets, neighbours)
    totals = np.zeros(nodes, dtype=np.float64)
    for e in range(edges):
        totals[first[e]] += weights[e]
        totals[second[e]] += weights[e]
    curvatures = np.full(edges, np.nan)
    sizes = np.zeros(edges + 1, dtype=np.int64)
    for e in range(edges):
        x = first[e]
        y = second[e]
        # The closed form holds when every cross distance is the double star's:
        # d(u, y) = 2 and d(u, v) = 3 for u in N(x) - {y}, v in N(y) - {x}. The third
        # condition, d(x, v) = 2, follows: d(x, v) = 1 would put v in N(x) with
        # d(v, y) = 1.
        tree_like = not force_solver
        for k in range(offsets[x], offsets[x + 1]):
            if not tree_like:
                break
            u = neighbours[k]
            if u == y:
                continue
            if distances[u, y] != 2:
                tree_like = False
                break
            for j in range(offsets[y], offsets[y + 1]):
                v = neighbours[j]
                if v != x and distances[u, v] != 3:
                    tree_like = False
                    break
        if tree_like:
            curvatures[e] = _tree_edge_curvature(alpha, weights[e], totals[x], totals[y])
            continue
        idle = 1 if alpha > 0.0 else 0
        kx = offsets[x + 1] - offsets[x] + idle
        ky = offsets[y + 1] - offsets[y] + idle
        sizes[e + 1] = 2 + kx + ky + kx * ky
    starts = np.cumsum(sizes)
    packed = np.empty(starts[edges], dtype=np.float64)
    support_x = np.empty(nodes, dtype=np.int64)
    support_y = np.empty(nodes, dtype=np.int64)
    for e in range(edges):
        if sizes[e + 1] == 0:
            continue
        at = starts[e]
        x = first[e]
        y = second[e]
        kx = _support(
            x, alpha, totals[x], offsets, neighbours, strengths, support_x, packed[at + 2 :]
        )
        ky = _support(
            y, alpha, totals[y], offsets, neighbours, strengths, support_y, packed[at + 2 + kx :]
        )
        packed[at] = kx
        packed[at + 1] = ky
        at += 2 + kx + ky
        for i in range(kx):
            for j in range(ky):
                packed[at + i * ky + j] = distances[support_x[i], support_y[j]]
    return curvatures, starts, packed


# --------------------------------------------------------------------------- solver


def _transport_cost(
    source: NDArray[np.float64],
    target: NDArray[np.float64],
    cost: NDArray[np.float64],
    *,
    max_iterations: int = _EMD_MAX_ITERATIONS,
) -> float:
    """Return the exact optimal transport cost; raise OptimalTransportError otherwise."""
    # Both measures sum to 1 by construction (up to rounding, which emd2 rescales away),
    # so POT's marginal check and dual centring are skipped: they cost more than the solve.
    value, log = ot.emd2(
        source,
        target,
        cost,
        numItermax=max_iterations,
        log=True,
        center_dual=False,
        check_marginals=False,
    )
    code = int(log["result_code"])
    if code != _EMD_OPTIMAL:
        raise OptimalTransportError(
            f"ot.emd2 did not reach optimality (result_code = {code}: {log['warning']})"
        )
    result = float(value)
    if not math.isfinite(result) or result < 0.0:
        raise OptimalTransportError(f"ot.emd2 returned an invalid cost {result!r}")
    return result


def _solve_packed(problem: NDArray[np.float64]) -> float:
    """Return W1 of one packed local transport problem (see :func:`_edge_analysis`)."""
    kx = int(problem[0])
    ky = int(problem[1])
    source = problem[2 : 2 + kx]
    target = problem[2 + kx : 2 + kx + ky]
    cost = problem[2 + kx + ky :].reshape(kx, ky)
    return _transport_cost(source, target, cost)


class _LruCache:
    """A bounded least-recently-used map from bytes to float."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._data: OrderedDict[bytes, float] = OrderedDict()

    def get(self, key: bytes) -> float | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: bytes, value: float) -> None:
        self._data[key] = value
        if len(self._data) > self._capacity:
            self._data.popitem(last=False)


class _CurvatureSolver:
    """Per-edge curvatures of graphs, with a cache of solved local transport problems."""

    def __init__(self, alpha: float, solver: Solver) -> None:
        self._alpha = alpha
        self._force = solver == "emd"
        self._problems = _LruCache(_PROBLEM_CACHE_SIZE)

    def curvatures(
        self,
        nodes: int,
        first: NDArray[np.int64],
        second: NDArray[np.int64],
        weights: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        curvatures: NDArray[np.float64]
        offsets: NDArray[np.int64]
        packed: NDArray[np.float64]
        curvatures, offsets, packed = _edge_analysis(
            nodes, first, second, weights, self._alpha, self._force
        )
        for e in np.flatnonzero(offsets[1:] != offsets[:-1]).tolist():
            problem = packed[offsets[e] : offsets[e + 1]]
            key = problem.tobytes()
            w1 = self._problems.get(key)
            if w1 is None:
                w1 = _solve_packed(problem)
                self._problems.put(key, w1)
            curvatures[e] = 1.0 - w1  # d(x, y) = 1 on an edge
        return curvatures


# --------------------------------------------------------------------------- validation


def _price_series(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as contiguous float64 closes, all finite and > 0."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise IndicatorError(f"{name} must be a 1-D array of real numbers: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise IndicatorError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise IndicatorError(f"{name} must be 1-D, got shape {array.shape}")
    series = np.ascontiguousarray(array, dtype=np.float64)
    bad = int(_first_bad_price(series))
    if bad >= 0:
        raise IndicatorError(f"{name} must be finite and > 0, got {name}[{bad}] = {series[bad]!r}")
    return series


def _integer(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise IndicatorError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise IndicatorError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _real(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise IndicatorError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _delta(value: float) -> float:
    delta = _real(value, "delta")
    if not 0.0 < delta < 1.0:
        raise IndicatorError(f"delta must satisfy 0 < delta < 1, got {value!r}")
    return delta


def _alpha(value: float) -> float:
    alpha = _real(value, "alpha")
    if not 0.0 <= alpha < 1.0:
        raise IndicatorError(f"alpha must satisfy 0 <= alpha < 1, got {value!r}")
    return alpha


def _solver(value: str) -> Solver:
    if value == "auto":
        return "auto"
    if value == "emd":
        return "emd"
    raise IndicatorError(f"solver must be 'auto' or 'emd', got {value!r}")


def _level_overflow(delta: float) -> IndicatorError:
    return IndicatorError(
        f"delta = {delta!r} gives levels beyond 2**53 in magnitude for these closes"
        " (delta too small, or closes whose ratio overflows float64)"
    )


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True, eq=False)
class PriceLevelGraph:
    """The price-level graph of one window.

    ``levels[i]`` is node i's level (ascending; the window's last close is on level 0);
    ``edges`` is an (E, 2) array of node indices ``u < v`` in lexicographic order,
    ``weights[e]`` the number of transitions along edge e (both directions), and
    ``distances`` the (n, n) hop distances.
    """

    levels: NDArray[np.int64]
    edges: NDArray[np.int64]
    weights: NDArray[np.int64]
    distances: NDArray[np.int64]


def price_level_graph(close_window: ArrayLike, *, delta: float = DEFAULT_DELTA) -> PriceLevelGraph:
    """Build the price-level graph of one window of closes (see the module docstring).

    Levels are ``floor(log(p_i / p_last) / log1p(delta))``; ``delta`` is a relative
    price step (0.005 = 0.5 %). Raise :class:`IndicatorError` if ``close_window`` is
    empty, not 1-D or holds a close that is not finite and > 0, or if ``delta`` is
    not in (0, 1) or so small that a level exceeds 2**53.
    """
    close = _price_series(close_window, "close_window")
    step = _delta(delta)
    if close.shape[0] == 0:
        raise IndicatorError("close_window must hold at least one close, got 0")
    ok: bool
    levels: NDArray[np.int64]
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    weights: NDArray[np.int64]
    ok, levels, first, second, weights = _window_graph(close, 0, close.shape[0], math.log1p(step))
    if not ok:
        raise _level_overflow(step)
    distances: NDArray[np.int64] = _hop_distances(levels.shape[0], first, second)
    return PriceLevelGraph(
        levels=levels,
        edges=np.stack([first, second], axis=1).reshape(-1, 2),
        weights=weights,
        distances=distances,
    )


def ollivier_ricci(
    edges: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    nodes: int | None = None,
    solver: Solver = "auto",
) -> NDArray[np.float64]:
    """Return the Ollivier-Ricci curvature κ(x, y) of every edge of an undirected graph.

    ``edges`` is an (E, 2) array of node indices in ``[0, nodes)`` (``nodes`` defaults
    to the largest index + 1); ``weights`` (default 1) are the positive edge weights of
    the lazy random walk with idleness ``alpha``; distances are hop counts. The result
    is in the order of ``edges``. ``solver="auto"`` uses the exact closed form on edges
    that lie on no cycle of length <= 5 and ``ot.emd2`` elsewhere; ``"emd"`` solves
    every edge with ``ot.emd2``. Hop distances are kept as a dense (nodes, nodes) table,
    so this is meant for graphs of up to a few thousand nodes.

    Raise :class:`IndicatorError` on a malformed edge list (wrong shape, non-integer,
    out-of-range node, self-loop, duplicate edge), on weights that are not finite and
    > 0, or if ``alpha`` is not in [0, 1); :class:`OptimalTransportError` if a solve
    fails.
    """
    rate = _alpha(alpha)
    method = _solver(solver)
    pairs = np.asarray(edges)
    if pairs.size == 0:
        pairs = pairs.reshape(0, 2)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise IndicatorError(f"edges must have shape (E, 2), got {pairs.shape}")
    if pairs.dtype.kind not in "iu":
        raise IndicatorError(f"edges must hold integer node indices, got dtype {pairs.dtype}")
    pairs = pairs.astype(np.int64)
    count = pairs.shape[0]
    size = (int(pairs.max()) + 1 if count else 0) if nodes is None else _integer(nodes, "nodes", 0)
    outside = np.flatnonzero(((pairs < 0) | (pairs >= size)).any(axis=1))
    if outside.size:
        bad = int(outside[0])
        raise IndicatorError(
            f"edges must hold node indices in [0, {size}), got edges[{bad}] = {pairs[bad].tolist()}"
        )
    loops = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
    if loops.size:
        raise IndicatorError(f"edges must not hold self-loops, got edges[{loops[0]}]")
    first = np.minimum(pairs[:, 0], pairs[:, 1])
    second = np.maximum(pairs[:, 0], pairs[:, 1])
    codes = first * max(size, 1) + second
    if np.unique(codes).shape[0] != count:
        raise IndicatorError("edges must not repeat an edge (in either orientation)")
    if weights is None:
        weight = np.ones(count, dtype=np.float64)
    else:
        try:
            weight = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise IndicatorError(f"weights must be real numbers: {exc}") from exc
        if weight.shape != (count,):
            raise IndicatorError(f"weights must have shape ({count},), got {weight.shape}")
        invalid = np.flatnonzero(~(np.isfinite(weight) & (weight > 0.0)))
        if invalid.size:
            bad = int(invalid[0])
            raise IndicatorError(
                f"weights must be finite and > 0, got weights[{bad}] = {weight[bad]!r}"
            )
    return _CurvatureSolver(rate, method).curvatures(
        size, np.ascontiguousarray(first), np.ascontiguousarray(second), weight
    )


def _solve_windows(
    series: NDArray[np.float64],
    bars: NDArray[np.intp],
    window: int,
    log_step: float,
    edge_solver: _CurvatureSolver,
    out: NDArray[np.float64],
) -> None:
    """Fill ``out`` at ``bars``, whose graphs have edges on short cycles (solver needed)."""
    windows = _LruCache(_WINDOW_CACHE_SIZE)
    for t in bars.tolist():
        ok, levels, first, second, weights = _window_graph(series, t - window + 1, t + 1, log_step)
        if not ok:  # _scan already checked every level; kept as a guard
            raise AssertionError(f"level overflow at bar {t} after the scan passed")
        nodes = levels.shape[0]
        # The canonical weighted edge list: levels are replaced by their ranks, so two
        # windows whose graphs differ only by a shift of levels share one entry.
        key = np.int64(nodes).tobytes() + first.tobytes() + second.tobytes() + weights.tobytes()
        value = windows.get(key)
        if value is None:
            curvatures = edge_solver.curvatures(nodes, first, second, weights.astype(np.float64))
            value = float(np.mean(curvatures))
            windows.put(key, value)
        out[t] = value


def ricci_curvature(
    close: ArrayLike,
    window: int = DEFAULT_WINDOW,
    *,
    delta: float = DEFAULT_DELTA,
    alpha: float = DEFAULT_ALPHA,
    stride: int = DEFAULT_STRIDE,
    solver: Solver = "auto",
) -> NDArray[np.float64]:
    """Return the mean Ollivier-Ricci curvature of each window's price-level graph.

    ``close`` are closes (any positive unit), ``window`` a number of bars, ``delta`` the
    relative level step (0.005 = 0.5 %), ``alpha`` the walk's idleness and ``stride``
    the number of bars between computed values (carried forward in between, grid
    anchored at bar ``window - 1``). The result (dimensionless, at most 1) has the
    length of ``close``; bars ``t < window - 1`` are NaN, and so are windows whose
    closes all share one level. ``solver="emd"`` skips the exact closed forms and
    solves every edge with ``ot.emd2`` (same values, slower). See the module docstring
    for the full definition.

    Raise :class:`IndicatorError` if ``close`` is not 1-D or holds a value that is not
    finite and > 0, if ``window < 2``, ``delta`` not in (0, 1), ``alpha`` not in
    [0, 1), ``stride < 1``, or ``delta`` so small that a level exceeds 2**53;
    :class:`OptimalTransportError` if a transport solve fails.
    """
    series = _price_series(close, "close")
    length = _integer(window, "window", 2)
    step = _delta(delta)
    rate = _alpha(alpha)
    every = _integer(stride, "stride", 1)
    method = _solver(solver)
    log_step = math.log1p(step)
    out = np.full(series.shape[0], np.nan)
    status = np.zeros(series.shape[0], dtype=np.int8)
    logs = np.log(series)
    if not _scan(series, logs, length, log_step, rate, every, method == "emd", out, status):
        raise _level_overflow(step)
    pending = np.flatnonzero(status == _NEEDS_SOLVER)
    if pending.size:
        _solve_windows(series, pending, length, log_step, _CurvatureSolver(rate, method), out)
    _carry_forward(out, length, every)
    return out
