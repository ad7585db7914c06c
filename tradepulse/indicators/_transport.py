"""Exact Ollivier-Ricci curvature of the edges of a graph: transport shortcuts and solver.

The measures m_x (lazy random walk with idleness ``alpha``), the hop distance d and
``κ(x, y) = 1 - W1(m_x, m_y)`` on an edge are defined in
:mod:`tradepulse.indicators.ricci`, which builds the graphs and holds the public API.

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

With ``force_solver`` (``solver="emd"``) every shortcut is skipped and the whole
problem of every edge (m_x and m_y on their full supports, in node order) goes to the
network simplex.

Solver
------
``ot.emd2`` costs about 50 µs a call in Python overhead around a few µs of compiled
solve. The module therefore calls the compiled entry point it wraps,
``ot.lp.emd_wrap.emd_c(a, b, M, max_iter, num_threads)`` (POT 0.9.7), directly. That
name is private to POT, so before the first solve a small problem with a known
optimum checks it; if it is missing or behaves differently, the module uses
``ot.emd2`` (same solver, same results, slower). POT is imported only then: it
brings scikit-learn and pandas (about a second and 100 MB), which processes that
never compute a curvature, such as sweep workers, do not pay.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tradepulse.errors import OptimalTransportError
from tradepulse.indicators._common import numba_kernel

__all__ = ["OptimalTransportError"]

# Local problems go to the dual enumeration (instead of the network simplex) while
# _DUAL_RANGE ** rows * rows * columns <= _DUAL_BUDGET. Hop costs on a local problem
# lie in {1, 2, 3}, so potentials take _DUAL_RANGE = 3 values.
_DUAL_RANGE = 3
_DUAL_BUDGET = 8000
_DUAL_MAX_ROWS = 8
# Bounded cache of solved local transport problems (entries).
_PROBLEM_CACHE_SIZE = 65536
# POT's default iteration cap for the network simplex.
_EMD_MAX_ITERATIONS = 100_000
_EMD_OPTIMAL = 1

_kernel = numba_kernel()


# --------------------------------------------------------------------------- kernels


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
def _node_totals(
    nodes: int,
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    weights: NDArray[np.int64] | NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return ``W_x``, the total weight of the edges at each node x."""
    totals = np.zeros(nodes, dtype=np.float64)
    for e in range(first.shape[0]):
        totals[first[e]] += weights[e]
        totals[second[e]] += weights[e]
    return totals


@_kernel
def _forest_mean_curvature(
    nodes: int,
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    weights: NDArray[np.int64],
    alpha: float,
) -> float:
    """Return the mean closed-form κ over the edges of a tree."""
    totals = _node_totals(nodes, first, second, weights)
    acc = 0.0
    for e in range(first.shape[0]):
        acc += _tree_edge_curvature(alpha, float(weights[e]), totals[first[e]], totals[second[e]])
    mean: float = acc / first.shape[0]
    return mean


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
    rows = (sources, source_nodes, source_masses, row_order)
    columns = (targets, target_nodes, target_masses, column_order)
    if transpose:  # W1 is symmetric: the targets become the rows
        rows, columns = columns, rows
    return _write_problem(*rows, *columns, distances, out)


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
    totals = _node_totals(nodes, first, second, weights)
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
                small = (sources, source_nodes, source_masses)
                large = (targets, target_nodes, target_masses)
                if sources > targets:  # W1 is symmetric: enumerate the smaller side
                    small, large = large, small
                cost = _dual_transport_cost(*small, *large, distances, work)
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
    import ot  # POT (with scikit-learn, pandas) costs ~1 s and ~100 MB

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


_loaded_simplex: _Simplex | None = None


def _lazy_simplex(
    source: NDArray[np.float64],
    target: NDArray[np.float64],
    cost: NDArray[np.float64],
    max_iterations: int,
) -> tuple[float, int]:
    """Load the solver on the first problem (`_load_simplex`), then solve with it.

    POT imports scikit-learn and pandas (about a second and 100 MB per process):
    processes that never compute a curvature, such as sweep workers, never pay.
    """
    global _loaded_simplex
    if _loaded_simplex is None:
        _loaded_simplex = _load_simplex()
    return _loaded_simplex(source, target, cost, max_iterations)


_network_simplex: _Simplex = _lazy_simplex

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


def _transport_costs(
    starts: NDArray[np.int64], packed: NDArray[np.float64], cache: _LruCache
) -> NDArray[np.float64]:
    """Return W1 of each packed problem (see :func:`_edge_analysis`).

    Problem k is ``packed[starts[k]:starts[k + 1]]``. Values are looked up in ``cache``
    by the problem's bytes first, so equal problems are solved once.
    """
    bounds: list[int] = starts.tolist()
    values = np.empty(len(bounds) - 1, dtype=np.float64)
    for k in range(len(bounds) - 1):
        problem = packed[bounds[k] : bounds[k + 1]]
        key = problem.tobytes()
        value = cache.get(key)
        if value is None:
            value = _solve_packed(problem)
            cache.put(key, value)
        values[k] = value
    return values
