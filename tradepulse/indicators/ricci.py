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
network simplex (the solver behind ``ot.emd2``), whose result status is checked (a
solve that does not reach optimality raises :class:`OptimalTransportError`), or by an
exact shortcut: a closed form on every edge that lies on no cycle of length 3, 4 or 5
(every edge of a tree: a window that moves one level at a time gives a path), and an
enumeration of integer dual potentials on small local problems. No proxy, no
approximation. ``solver="emd"`` skips every shortcut and sends the whole problem of
every edge (m_x and m_y on their full supports) to the network simplex; the tests check
that both agree to 1e-12 (they differ by rounding only). The shortcuts, why they are
exact, and how the solver is called are set out in
:mod:`tradepulse.indicators._transport`.

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
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators._common import as_float, as_int, as_prices, numba_kernel
from tradepulse.indicators._transport import (
    _PROBLEM_CACHE_SIZE,
    OptimalTransportError,
    _edge_analysis,
    _forest_mean_curvature,
    _hop_distances,
    _LruCache,
    _transport_costs,
    _tree_edge_curvature,
)

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
# Windows whose local problems are built per kernel call (bounds the memory they take).
_SOLVER_BATCH = 512

_kernel = numba_kernel()
_parallel_kernel = numba_kernel(parallel=True)


# --------------------------------------------------------------------------- kernels


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


class _CurvatureSolver:
    """Edge curvatures of graphs, with a cache of solved local transport problems."""

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
        """Return κ of every edge of one graph."""
        curvatures: NDArray[np.float64]
        edges: NDArray[np.int64]
        starts: NDArray[np.int64]
        packed: NDArray[np.float64]
        curvatures, edges, starts, packed = _edge_analysis(
            nodes, first, second, weights, self._alpha, self._force
        )
        curvatures[edges] = 1.0 - _transport_costs(starts, packed, self._problems)  # d(x, y) = 1
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
        curvatures[edges] = 1.0 - _transport_costs(starts, packed, self._problems)
        means: NDArray[np.float64] = _window_means(curvatures, edge_starts)
        return means


# --------------------------------------------------------------------------- validation


def _delta(value: float) -> float:
    delta = as_float(value, name="delta")
    if not 0.0 < delta < 1.0:
        raise IndicatorError(f"delta must satisfy 0 < delta < 1, got {value!r}")
    return delta


def _alpha(value: float) -> float:
    alpha = as_float(value, name="alpha")
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
    close = as_prices(close_window, name="close_window")
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
    if nodes is None:
        size = int(pairs.max()) + 1 if count else 0
    else:
        size = as_int(nodes, name="nodes", minimum=0)
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
    series = as_prices(close)
    length = as_int(window, name="window", minimum=2)
    step = _delta(delta)
    rate = _alpha(alpha)
    every = as_int(stride, name="stride", minimum=1)
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
