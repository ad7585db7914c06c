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
W1 is the optimum of a linear transport problem and is computed exactly: by POT's
network simplex (the solver behind ``ot.emd2``; see "Solver" below), whose result
status is checked (a solve that does not reach optimality raises
:class:`OptimalTransportError`), or by one of the following exact shortcuts. No proxy,
no approximation.

*Tree edges.* For an edge (x, y) let ``U = N(x) - {y}``, ``V = N(y) - {x}``,
``p = m_x(y)``, ``q = m_y(x)``. If ``d(u, y) = 2``, ``d(x, v) = 2`` and ``d(u, v) = 3``
for all u in U, v in V (equivalently: the edge lies on no cycle of length 3, 4 or 5;
every edge of a tree qualifies), then every mass and every cross distance of the
transport problem equals that of the same problem on the "double star" tree made of
the edge x-y with U hanging off x and V off y. On a tree
``W1 = Σ_e |m_x(T_e) - m_y(T_e)|`` (T_e: the nodes on one side of edge e;
Kantorovich-Rubinstein duality on a tree metric): the edges (x, u) carry ``m_x(u)``,
the edges (y, v) carry ``m_y(v)`` and the edge (x, y) carries ``|1 - p - q|``, so

    W1 = (1 - alpha)(W_x - w_xy)/W_x + (1 - alpha)(W_y - w_xy)/W_y + |1 - p - q|.

With ``alpha = 0`` on an unweighted tree this is Jost and Liu's
``κ = -2 (1 - 1/d_x - 1/d_y)_+``. A price-level graph is a path (a tree) unless some
bar jumps more than one level, so most intraday windows never go further.

*Other edges: the difference of the measures.* Since d is a metric, W1(m, n) depends
only on m - n (Kantorovich-Rubinstein), so the problem solved moves the positive part
a of ``m_x - m_y`` (on the sources: nodes where m_x > m_y) onto its negative part b
(the targets), with costs ``C_ij = d(s_i, t_j)``. Sources lie in ``N(x) + {x}``,
targets in ``N(y) + {y}`` and the two are disjoint, so every ``C_ij`` is 1, 2 or 3.

*Small problems: integer duals.* The transport LP has the dual
``max Σ a_i u_i + Σ b_j v_j`` subject to ``u_i + v_j <= C_ij``. Its constraint matrix
is totally unimodular and C is integral, so some optimal dual is integral; replacing
it by its c-transforms (``u_i = min_j (C_ij - v_j)``, ``v_j = min_i (C_ij - u_i)``)
keeps it optimal and integral and makes ``u_i - u_k <= w`` for all i, k, where
``w = max_j (max_i C_ij - min_i C_ij) <= 2``; a common shift of u and -v changes
nothing (equal totals). Every ``u`` with ``v = min_i (C_ij - u_i)`` is dual feasible,
a lower bound on W1 (weak duality). Hence, exactly,

    W1 = max over u in {0, ..., w}^rows of  Σ_i a_i u_i + Σ_j b_j min_i (C_ij - u_i),

with rows the smaller side (W1 is symmetric). This enumeration replaces the solver
while ``3**rows * rows * columns <= 8000`` (a side of at most 4 or 5 nodes); an empty
side (equal measures) gives W1 = 0.

*Larger problems* go to the network simplex, in a canonical form (rows and columns
sorted by mass and cost profile, the smaller side first): a relabelling of nodes, which
does not change W1. The solved value of each distinct canonical problem is kept in a
bounded LRU cache that lives for one call, so equal problems are solved once; a value
is a function of the canonical problem alone, so a cached value is what a fresh solve
returns, bit for bit, and the output does not depend on the cache. As ``ot.emd2``
does, the target masses are rescaled to the source total before solving.

``solver="emd"`` skips every shortcut and sends the whole problem of every edge (m_x
and m_y on their full supports, in node order) to the network simplex; the tests
check that both agree to 1e-12 (they differ by rounding only).

Solver
------
``ot.emd2`` costs about 50 µs a call in Python overhead around a few µs of compiled
solve. The module therefore calls the compiled entry point it wraps,
``ot.lp.emd_wrap.emd_c(a, b, M, max_iter, num_threads)`` (POT 0.9.7), directly. That
name is private to POT, so at import a small problem with a known optimum checks it;
if it is missing or behaves differently, the module uses ``ot.emd2`` (same solver,
same results, slower).

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
# Local problems go to the dual enumeration (instead of the network simplex) while
# _DUAL_RANGE ** rows * rows * columns <= _DUAL_BUDGET. Hop costs on a local problem
# lie in {1, 2, 3}, so potentials take _DUAL_RANGE = 3 values.
_DUAL_RANGE = 3
_DUAL_BUDGET = 8000
_DUAL_MAX_ROWS = 8
# Windows whose local problems are built per kernel call (bounds the memory they take).
_SOLVER_BATCH = 512
# Bounded cache of solved local transport problems (entries).
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
def _signed_difference(
    count_x: int,
    nodes_x: NDArray[np.int64],
    masses_x: NDArray[np.float64],
    count_y: int,
    nodes_y: NDArray[np.int64],
    masses_y: NDArray[np.float64],
    source_nodes: NDArray[np.int64],
    source_masses: NDArray[np.float64],
    target_nodes: NDArray[np.int64],
    target_masses: NDArray[np.float64],
) -> tuple[int, int]:
    """Split ``m_x - m_y`` (supports in node order) into its positive and negative parts.

    Write the nodes and masses of the positive part (sources) and of the negative part
    (targets, as positive masses), each in node order; nodes where both masses are equal
    drop out. Return (sources, targets).
    """
    i = 0
    j = 0
    sources = 0
    targets = 0
    while i < count_x or j < count_y:
        if j == count_y or (i < count_x and nodes_x[i] < nodes_y[j]):
            node = nodes_x[i]
            difference = masses_x[i]
            i += 1
        elif i == count_x or nodes_y[j] < nodes_x[i]:
            node = nodes_y[j]
            difference = -masses_y[j]
            j += 1
        else:
            node = nodes_x[i]
            difference = masses_x[i] - masses_y[j]
            i += 1
            j += 1
        if difference > 0.0:
            source_nodes[sources] = node
            source_masses[sources] = difference
            sources += 1
        elif difference < 0.0:
            target_nodes[targets] = node
            target_masses[targets] = -difference
            targets += 1
    return sources, targets


@_kernel
def _dual_transport_cost(
    rows: int,
    row_nodes: NDArray[np.int64],
    row_masses: NDArray[np.float64],
    columns: int,
    column_nodes: NDArray[np.int64],
    column_masses: NDArray[np.float64],
    distances: NDArray[np.int64],
    work: NDArray[np.int64],
) -> float:
    """Return W1 from rows to columns by enumerating integer dual potentials (see module doc).

    ``work`` holds at least ``rows * (columns + 1)`` integers.
    """
    cost = work[: rows * columns]
    potentials = work[rows * columns : rows * columns + rows]
    width = 0
    for j in range(columns):
        low = distances[row_nodes[0], column_nodes[j]]
        high = low
        for i in range(rows):
            distance = distances[row_nodes[i], column_nodes[j]]
            cost[i * columns + j] = distance
            low = min(low, distance)
            high = max(high, distance)
        width = max(width, high - low)
    potentials[:] = 0
    best = -np.inf
    while True:
        value = 0.0
        for i in range(rows):
            value += row_masses[i] * potentials[i]
        for j in range(columns):
            reduced = cost[j] - potentials[0]
            for i in range(1, rows):
                reduced = min(reduced, cost[i * columns + j] - potentials[i])
            value += column_masses[j] * reduced
        best = max(best, value)
        i = 0  # next potentials in {0..width}^rows, odometer order
        while i < rows and potentials[i] == width:
            potentials[i] = 0
            i += 1
        if i == rows:
            return best
        potentials[i] += 1


@_kernel
def _order_by_signature(
    count: int,
    masses: NDArray[np.float64],
    ones: NDArray[np.int64],
    totals: NDArray[np.int64],
    order: NDArray[np.int64],
) -> None:
    """Fill ``order[:count]`` with indices sorted by (mass, unit costs, cost sum), stably.

    The keys do not depend on the order of the other side, so two problems that differ
    by a relabelling of their nodes usually get the same ordering.
    """
    for i in range(count):
        order[i] = i
    for i in range(1, count):  # insertion sort: supports are small
        j = i
        while j > 0:
            a = order[j]
            b = order[j - 1]
            if masses[a] < masses[b] or (
                masses[a] == masses[b]
                and (ones[a] < ones[b] or (ones[a] == ones[b] and totals[a] < totals[b]))
            ):
                order[j] = b
                order[j - 1] = a
                j -= 1
            else:
                break


@_kernel
def _write_problem(
    rows: int,
    row_nodes: NDArray[np.int64],
    row_masses: NDArray[np.float64],
    row_order: NDArray[np.int64],
    columns: int,
    column_nodes: NDArray[np.int64],
    column_masses: NDArray[np.float64],
    column_order: NDArray[np.int64],
    distances: NDArray[np.int64],
    out: NDArray[np.float64],
) -> int:
    """Write ``[rows, columns, a, b, cost]`` to ``out`` in the given orders; return its length.

    The column masses are rescaled to the total of the row masses, as ``ot.emd2`` does
    before it solves.
    """
    out[0] = rows
    out[1] = columns
    row_total = 0.0
    for i in range(rows):
        mass = row_masses[row_order[i]]
        out[2 + i] = mass
        row_total += mass
    column_total = 0.0
    for j in range(columns):
        column_total += column_masses[column_order[j]]
    for j in range(columns):
        out[2 + rows + j] = column_masses[column_order[j]] * row_total / column_total
    at = 2 + rows + columns
    for i in range(rows):
        for j in range(columns):
            out[at] = distances[row_nodes[row_order[i]], column_nodes[column_order[j]]]
            at += 1
    return at


@_kernel
def _canonical_problem(
    sources: int,
    source_nodes: NDArray[np.int64],
    source_masses: NDArray[np.float64],
    targets: int,
    target_nodes: NDArray[np.int64],
    target_masses: NDArray[np.float64],
    distances: NDArray[np.int64],
    work: NDArray[np.int64],
    out: NDArray[np.float64],
) -> int:
    """Write the transport problem sources → targets in canonical form; return its length.

    Rows and columns are sorted by :func:`_order_by_signature`, and the problem is
    transposed when that puts the smaller side (or, at equal sizes, the lexicographically
    smaller sorted masses) first. The result is the same problem up to a relabelling of
    nodes and the exchange of its two measures, neither of which changes W1. ``work``
    holds at least ``6 * max(sources, targets)`` integers.
    """
    size = max(sources, targets)
    row_ones = work[:size]
    row_totals = work[size : 2 * size]
    column_ones = work[2 * size : 3 * size]
    column_totals = work[3 * size : 4 * size]
    row_order = work[4 * size : 5 * size]
    column_order = work[5 * size : 6 * size]
    row_ones[:] = 0
    row_totals[:] = 0
    column_ones[:] = 0
    column_totals[:] = 0
    for i in range(sources):
        for j in range(targets):
            distance = distances[source_nodes[i], target_nodes[j]]
            row_totals[i] += distance
            column_totals[j] += distance
            if distance == 1:
                row_ones[i] += 1
                column_ones[j] += 1
    _order_by_signature(sources, source_masses, row_ones, row_totals, row_order)
    _order_by_signature(targets, target_masses, column_ones, column_totals, column_order)
    transpose = sources > targets
    if sources == targets:
        for k in range(sources):
            a = source_masses[row_order[k]]
            b = target_masses[column_order[k]]
            if a != b:
                transpose = b < a
                break
    if transpose:  # W1 is symmetric: the targets become the rows
        return _write_problem(
            targets,
            target_nodes,
            target_masses,
            column_order,
            sources,
            source_nodes,
            source_masses,
            row_order,
            distances,
            out,
        )
    return _write_problem(
        sources,
        source_nodes,
        source_masses,
        row_order,
        targets,
        target_nodes,
        target_masses,
        column_order,
        distances,
        out,
    )


@_kernel
def _edge_analysis(
    nodes: int,
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    weights: NDArray[np.float64],
    alpha: float,
    force_solver: bool,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Return κ per edge where it has a closed form (NaN elsewhere) and the problems to solve.

    Returns ``(curvatures, edges, starts, packed)``: problem k belongs to edge
    ``edges[k]`` and is ``packed[starts[k]:starts[k + 1]]`` =
    ``[rows, columns, a (rows), b (columns), cost (rows·columns, row-major)]``, and
    ``κ = 1 - W1(a, b; cost)`` on that edge.

    With ``force_solver`` every edge gets a problem: m_x and m_y on their whole
    supports, in node order (the idle mass is omitted when alpha = 0). Otherwise an edge
    on no cycle of length <= 5 takes the tree closed form, and any other edge the
    transport of the positive part of ``m_x - m_y`` onto its negative part (same W1:
    it depends only on the difference of the measures), solved in closed form when one
    side has at most one node and written in canonical form otherwise (see
    :func:`_canonical_problem`). The target masses are rescaled to the source's total.
    """
    edges = first.shape[0]
    offsets, neighbours, strengths = _neighbour_lists(nodes, first, second, weights)
    distances = _bfs_distances(nodes, offsets, neighbours)
    totals = np.zeros(nodes, dtype=np.float64)
    for e in range(edges):
        totals[first[e]] += weights[e]
        totals[second[e]] += weights[e]
    curvatures = np.full(edges, np.nan)
    bound = 0
    idle = 1 if alpha > 0.0 else 0
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
        kx = offsets[x + 1] - offsets[x] + idle
        ky = offsets[y + 1] - offsets[y] + idle
        bound += 2 + kx + ky + kx * ky  # the reduced problem is no larger
    packed = np.empty(bound, dtype=np.float64)
    problem_edges = np.empty(edges, dtype=np.int64)
    starts = np.zeros(edges + 1, dtype=np.int64)
    support_x = np.empty(nodes, dtype=np.int64)
    support_y = np.empty(nodes, dtype=np.int64)
    masses_x = np.empty(nodes, dtype=np.float64)
    masses_y = np.empty(nodes, dtype=np.float64)
    source_nodes = np.empty(nodes, dtype=np.int64)
    target_nodes = np.empty(nodes, dtype=np.int64)
    source_masses = np.empty(nodes, dtype=np.float64)
    target_masses = np.empty(nodes, dtype=np.float64)
    work = np.empty(max(6 * nodes, _DUAL_BUDGET + nodes), dtype=np.int64)
    order_x = np.arange(nodes)
    problems = 0
    used = 0
    for e in range(edges):
        if not math.isnan(curvatures[e]):
            continue
        x = first[e]
        y = second[e]
        kx = _support(x, alpha, totals[x], offsets, neighbours, strengths, support_x, masses_x)
        ky = _support(y, alpha, totals[y], offsets, neighbours, strengths, support_y, masses_y)
        if force_solver:
            length = _write_problem(
                kx,
                support_x,
                masses_x,
                order_x,
                ky,
                support_y,
                masses_y,
                order_x,
                distances,
                packed[used:],
            )
        else:
            sources, targets = _signed_difference(
                kx,
                support_x,
                masses_x,
                ky,
                support_y,
                masses_y,
                source_nodes,
                source_masses,
                target_nodes,
                target_masses,
            )
            if sources == 0 or targets == 0:  # equal measures (up to rounding)
                curvatures[e] = 1.0
                continue
            rows = min(sources, targets)
            # (rows is tested first: 3**rows would overflow int64 on large supports)
            if rows <= _DUAL_MAX_ROWS and _DUAL_RANGE**rows * sources * targets <= _DUAL_BUDGET:
                if sources <= targets:
                    cost = _dual_transport_cost(
                        sources,
                        source_nodes,
                        source_masses,
                        targets,
                        target_nodes,
                        target_masses,
                        distances,
                        work,
                    )
                else:
                    cost = _dual_transport_cost(
                        targets,
                        target_nodes,
                        target_masses,
                        sources,
                        source_nodes,
                        source_masses,
                        distances,
                        work,
                    )
                curvatures[e] = 1.0 - cost
                continue
            length = _canonical_problem(
                sources,
                source_nodes,
                source_masses,
                targets,
                target_nodes,
                target_masses,
                distances,
                work,
                packed[used:],
            )
        problem_edges[problems] = e
        used += length
        problems += 1
        starts[problems] = used
    return curvatures, problem_edges[:problems], starts[: problems + 1], packed[:used]


@_kernel
def _grown(array: NDArray[Any], needed: int) -> NDArray[Any]:
    """Return ``array``, or a copy at least twice as long if it is shorter than ``needed``."""
    if array.shape[0] >= needed:
        return array
    larger = np.empty(max(needed, 2 * array.shape[0]), dtype=array.dtype)
    larger[: array.shape[0]] = array
    return larger


@_kernel
def _window_problems(
    close: NDArray[np.float64],
    bars: NDArray[np.int64],
    window: int,
    log_step: float,
    alpha: float,
    force_solver: bool,
) -> tuple[
    bool,
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
]:
    """Run :func:`_edge_analysis` on the windows ending at ``bars``, concatenated.

    Returns ``(ok, curvatures, edge_starts, edges, starts, packed)``: window i's edges
    are ``curvatures[edge_starts[i]:edge_starts[i + 1]]``; the problems are as in
    :func:`_edge_analysis`, with ``edges`` indexing ``curvatures``. ``ok`` is False if a
    level overflowed.
    """
    count = bars.shape[0]
    edge_starts = np.zeros(count + 1, dtype=np.int64)
    curvatures = np.empty(256, dtype=np.float64)  # grown by doubling
    problem_edges = np.empty(256, dtype=np.int64)
    starts = np.zeros(256, dtype=np.int64)
    packed = np.empty(4096, dtype=np.float64)
    edges = 0
    problems = 0
    used = 0
    for i in range(count):
        t = bars[i]
        ok, levels, first, second, weights = _window_graph(close, t - window + 1, t + 1, log_step)
        if not ok:
            return False, curvatures[:0], edge_starts, problem_edges[:0], starts[:1], packed[:0]
        kappa, local_edges, local_starts, local_packed = _edge_analysis(
            levels.shape[0], first, second, weights.astype(np.float64), alpha, force_solver
        )
        added = kappa.shape[0]
        curvatures = _grown(curvatures, edges + added)
        curvatures[edges : edges + added] = kappa
        added_problems = local_edges.shape[0]
        problem_edges = _grown(problem_edges, problems + added_problems)
        problem_edges[problems : problems + added_problems] = local_edges + edges
        starts = _grown(starts, problems + added_problems + 1)
        starts[problems + 1 : problems + added_problems + 1] = local_starts[1:] + used
        added_length = local_packed.shape[0]
        packed = _grown(packed, used + added_length)
        packed[used : used + added_length] = local_packed
        edges += added
        problems += added_problems
        used += added_length
        edge_starts[i + 1] = edges
    return (
        True,
        curvatures[:edges],
        edge_starts,
        problem_edges[:problems],
        starts[: problems + 1],
        packed[:used],
    )


@_kernel
def _window_means(
    curvatures: NDArray[np.float64], edge_starts: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Return the mean of each window's edge curvatures (in edge order)."""
    count = edge_starts.shape[0] - 1
    means = np.empty(count, dtype=np.float64)
    for i in range(count):
        acc = 0.0
        for e in range(edge_starts[i], edge_starts[i + 1]):
            acc += curvatures[e]
        means[i] = acc / (edge_starts[i + 1] - edge_starts[i])
    return means


# --------------------------------------------------------------------------- solver

_Simplex = Callable[
    [NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int], tuple[float, int]
]


def _emd2_simplex(
    source: NDArray[np.float64],
    target: NDArray[np.float64],
    cost: NDArray[np.float64],
    max_iterations: int,
) -> tuple[float, int]:
    """Solve with ``ot.emd2`` (public API); return (optimal cost, POT's result code)."""
    # Both measures have the same total (the target is rescaled), so POT's marginal
    # check and dual centring are skipped: they cost more than the solve.
    value, log = ot.emd2(
        source,
        target,
        cost,
        numItermax=max_iterations,
        log=True,
        center_dual=False,
        check_marginals=False,
    )
    return float(value), int(log["result_code"])


def _checked_simplex(candidate: Any) -> _Simplex | None:
    """Wrap POT's compiled ``emd_c`` if it behaves as in POT 0.9.7 on a known problem.

    ``emd_c(a, b, M, max_iter, num_threads)`` returns ``(G, cost, u, v, result_code)``;
    it is the network simplex ``ot.emd2`` calls, without ``emd2``'s Python overhead
    (about 50 µs a call). It is private to POT, so any other behaviour on the check
    problem (an exception, another result) means "not usable": return None.
    """

    def simplex(
        source: NDArray[np.float64],
        target: NDArray[np.float64],
        cost: NDArray[np.float64],
        max_iterations: int,
    ) -> tuple[float, int]:
        result = candidate(source, target, cost, max_iterations, 1)
        return float(result[1]), int(result[4])

    source = np.array([0.75, 0.25])
    target = np.array([0.5, 0.25, 0.25])
    cost = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]])  # optimum 0.25 * 2, exactly
    try:
        result = candidate(source, target, cost, 100, 1)
        plan = np.asarray(result[0])
        usable = (
            len(result) == 5
            and plan.shape == (2, 3)
            and float(result[1]) == 0.5
            and int(result[4]) == _EMD_OPTIMAL
        )
    except Exception:  # any failure means another calling convention
        return None
    return simplex if usable else None


def _load_simplex() -> _Simplex:
    """Return POT's compiled network simplex if usable, else the ``ot.emd2`` route."""
    try:
        from ot.lp.emd_wrap import emd_c
    except ImportError:
        return _emd2_simplex
    return _checked_simplex(emd_c) or _emd2_simplex


_network_simplex: _Simplex = _load_simplex()

_RESULT_MEANINGS = {0: "infeasible", 2: "unbounded", 3: "iteration limit reached"}


def _transport_cost(
    source: NDArray[np.float64],
    target: NDArray[np.float64],
    cost: NDArray[np.float64],
    *,
    max_iterations: int = _EMD_MAX_ITERATIONS,
) -> float:
    """Return the exact optimal transport cost; raise OptimalTransportError otherwise."""
    value, code = _network_simplex(source, target, cost, max_iterations)
    if code != _EMD_OPTIMAL:
        meaning = _RESULT_MEANINGS.get(code, "unknown code")
        raise OptimalTransportError(
            f"the network simplex did not reach optimality (result_code = {code}: {meaning})"
        )
    if not math.isfinite(value) or value < 0.0:
        raise OptimalTransportError(f"the network simplex returned an invalid cost {value!r}")
    return value


def _solve_packed(problem: NDArray[np.float64]) -> float:
    """Return W1 of one packed local transport problem (see :func:`_edge_analysis`)."""
    rows = int(problem[0])
    columns = int(problem[1])
    source = problem[2 : 2 + rows]
    target = problem[2 + rows : 2 + rows + columns]
    cost = problem[2 + rows + columns :].reshape(rows, columns)
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
    """Edge curvatures of graphs, with a cache of solved local transport problems."""

    def __init__(self, alpha: float, solver: Solver) -> None:
        self._alpha = alpha
        self._force = solver == "emd"
        self._problems = _LruCache(_PROBLEM_CACHE_SIZE)

    def _transport_costs(
        self, starts: NDArray[np.int64], packed: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return W1 of each packed problem; equal problems (same bytes) are solved once."""
        bounds: list[int] = starts.tolist()
        values = np.empty(len(bounds) - 1, dtype=np.float64)
        cache = self._problems
        for k in range(len(bounds) - 1):
            problem = packed[bounds[k] : bounds[k + 1]]
            key = problem.tobytes()
            value = cache.get(key)
            if value is None:
                value = _solve_packed(problem)
                cache.put(key, value)
            values[k] = value
        return values

    def curvatures(
        self,
        nodes: int,
        first: NDArray[np.int64],
        second: NDArray[np.int64],
        weights: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Return κ of every edge of one graph."""
        curvatures: NDArray[np.float64]
        edges: NDArray[np.int64]
        starts: NDArray[np.int64]
        packed: NDArray[np.float64]
        curvatures, edges, starts, packed = _edge_analysis(
            nodes, first, second, weights, self._alpha, self._force
        )
        curvatures[edges] = 1.0 - self._transport_costs(starts, packed)  # d(x, y) = 1
        return curvatures

    def window_means(
        self, close: NDArray[np.float64], bars: NDArray[np.int64], window: int, log_step: float
    ) -> NDArray[np.float64] | None:
        """Return the mean κ of the windows ending at ``bars``; None if a level overflows."""
        ok: bool
        curvatures: NDArray[np.float64]
        edge_starts: NDArray[np.int64]
        edges: NDArray[np.int64]
        starts: NDArray[np.int64]
        packed: NDArray[np.float64]
        ok, curvatures, edge_starts, edges, starts, packed = _window_problems(
            close, bars, window, log_step, self._alpha, self._force
        )
        if not ok:
            return None
        curvatures[edges] = 1.0 - self._transport_costs(starts, packed)
        means: NDArray[np.float64] = _window_means(curvatures, edge_starts)
        return means


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
    is in the order of ``edges``. ``solver="auto"`` uses the exact shortcuts of the module
    docstring (tree closed form, integer-dual enumeration) and POT's network simplex
    elsewhere; ``"emd"`` solves every edge's whole problem with the network simplex.
    Hop distances are kept as a dense (nodes, nodes) table,
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
    closes all share one level. ``solver="emd"`` skips the exact shortcuts and solves
    every edge with POT's network simplex (same values up to rounding, slower). See the
    module docstring for the full definition.

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
    edge_solver = _CurvatureSolver(rate, method)
    for start in range(0, pending.shape[0], _SOLVER_BATCH):
        bars = pending[start : start + _SOLVER_BATCH]
        means = edge_solver.window_means(series, bars, length, log_step)
        if means is None:  # _scan has checked every level already; kept as a guard
            raise _level_overflow(step)
        out[bars] = means
    _carry_forward(out, length, every)
    return out
