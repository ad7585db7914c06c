"""Tests for the Ollivier-Ricci curvature indicator (tradepulse.indicators.ricci).

Expected curvatures come from closed forms of the literature (complete graphs, cycles,
Jost-Liu on trees), each checked here against an independent transport solve with
``scipy.optimize.linprog`` on distances from ``scipy.sparse.csgraph``.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from tradepulse.errors import IndicatorError
from tradepulse.indicators import _transport, ricci
from tradepulse.indicators._transport import (
    _canonical_problem,
    _checked_simplex,
    _dual_transport_cost,
    _emd2_simplex,
    _load_simplex,
    _LruCache,
    _transport_cost,
)
from tradepulse.indicators.ricci import (
    DEFAULT_DELTA,
    OptimalTransportError,
    _CurvatureSolver,
    _fill_levels,
    _fill_levels_fast,
    ollivier_ricci,
    price_level_graph,
    ricci_curvature,
)

# ----------------------------------------------------------------------- references


def linprog_w1(
    source: NDArray[np.float64], target: NDArray[np.float64], cost: NDArray[np.float64]
) -> float:
    """W1 between two histograms by a generic LP solver (HiGHS), independent of POT."""
    rows, cols = cost.shape
    equalities = np.zeros((rows + cols, rows * cols))
    for i in range(rows):
        equalities[i, i * cols : (i + 1) * cols] = 1.0
    for j in range(cols):
        equalities[rows + j, j::cols] = 1.0
    result = linprog(
        cost.ravel(),
        A_eq=equalities,
        b_eq=np.concatenate([source, target]),
        bounds=(0, None),
        method="highs",
    )
    assert result.status == 0, result.message
    return float(result.fun)


def reference_curvatures(
    edges: list[tuple[int, int]], weights: list[float], alpha: float, nodes: int
) -> NDArray[np.float64]:
    """κ per edge from the definition: dense measures, scipy hop distances, LP transport."""
    adjacency = np.zeros((nodes, nodes))
    for (u, v), w in zip(edges, weights, strict=True):
        adjacency[u, v] = adjacency[v, u] = w
    distances = shortest_path(csr_matrix(adjacency > 0), unweighted=True, directed=False)
    measures = np.zeros((nodes, nodes))
    for x in range(nodes):
        total = adjacency[x].sum()
        if total > 0:
            measures[x] = (1.0 - alpha) * adjacency[x] / total
        measures[x, x] += alpha
    out = []
    for u, v in edges:
        su = np.flatnonzero(measures[u] > 0)
        sv = np.flatnonzero(measures[v] > 0)
        w1 = linprog_w1(measures[u, su], measures[v, sv], distances[np.ix_(su, sv)])
        out.append(1.0 - w1 / distances[u, v])
    return np.array(out)


def mean_curvature_by_graph(
    window_closes: NDArray[np.float64], delta: float, alpha: float
) -> float:
    """κ̄ of one window through the public graph pieces (NaN when there is no edge)."""
    graph = price_level_graph(window_closes, delta=delta)
    if graph.edges.shape[0] == 0:
        return math.nan
    kappa = ollivier_ricci(
        graph.edges, graph.weights, alpha=alpha, nodes=graph.levels.shape[0], solver="emd"
    )
    return float(np.mean(kappa))


def geometric_walk(bars: int, volatility: float, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))


def jumpy_walk(bars: int, seed: int) -> NDArray[np.float64]:
    """Heavy-tailed returns: many multi-level jumps, so graphs with short cycles."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.standard_t(3, bars) * 0.002))


def bouncing_walk(bars: int, levels: int, seed: int, step: float = 0.01) -> NDArray[np.float64]:
    """Closes on i.i.d. random levels: dense weighted graphs with large local problems."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-levels, levels + 1, bars) + rng.uniform(0.2, 0.8, bars)
    return 100.0 * (1.0 + step) ** offsets


def dense_weighted_graph(nodes: int, seed: int) -> tuple[list[tuple[int, int]], list[float]]:
    """About 60 % of all pairs, weights 1..9: supports of several nodes on both sides."""
    rng = np.random.default_rng(seed)
    edges = [pair for pair in complete_graph(nodes) if rng.random() < 0.6]
    return edges, rng.integers(1, 10, len(edges)).astype(float).tolist()


def counting(
    monkeypatch: pytest.MonkeyPatch, simplex: Callable[..., tuple[float, int]]
) -> list[int]:
    """Route every network simplex solve through ``simplex`` and count the calls."""
    calls = [0]

    def counted(*args: Any) -> tuple[float, int]:
        calls[0] += 1
        return simplex(*args)

    monkeypatch.setattr(_transport, "_network_simplex", counted)
    return calls


def complete_graph(n: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n), 2))


def cycle_graph(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


@st.composite
def random_trees(draw: st.DrawFn, max_nodes: int = 9) -> list[tuple[int, int]]:
    nodes = draw(st.integers(2, max_nodes))
    return [(draw(st.integers(0, child - 1)), child) for child in range(1, nodes)]


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[float]]:
    nodes = draw(st.integers(2, 7))
    pairs = complete_graph(nodes)
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    weights = draw(
        st.lists(st.integers(1, 6).map(float), min_size=len(chosen), max_size=len(chosen))
    )
    return chosen, weights


Solver = Literal["auto", "emd"]

alphas = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9])

# ----------------------------------------------------------------------- known graphs


@pytest.mark.parametrize("solver", ["auto", "emd"])
@pytest.mark.parametrize("n", [3, 4, 5, 7])
@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 0.8])
def test_complete_graph_has_known_curvature(n: int, alpha: float, solver: Solver) -> None:
    # Arrange
    expected = 1.0 - abs(alpha - (1.0 - alpha) / (n - 1))

    # Act
    kappa = ollivier_ricci(complete_graph(n), alpha=alpha, solver=solver)

    # Assert
    np.testing.assert_allclose(kappa, expected, rtol=0, atol=1e-12)
    if alpha == 0.0:
        np.testing.assert_allclose(kappa, (n - 2) / (n - 1), rtol=0, atol=1e-12)


def test_complete_graph_closed_form_agrees_with_linprog() -> None:
    # Arrange
    n, alpha = 5, 0.3
    edges = complete_graph(n)

    # Act
    reference = reference_curvatures(edges, [1.0] * len(edges), alpha, n)

    # Assert
    np.testing.assert_allclose(reference, 1.0 - abs(alpha - (1.0 - alpha) / (n - 1)), atol=1e-9)


@pytest.mark.parametrize("solver", ["auto", "emd"])
@pytest.mark.parametrize("n", [6, 7, 8, 11])
def test_long_cycle_is_flat_without_laziness(n: int, solver: Solver) -> None:
    # Arrange
    edges = cycle_graph(n)

    # Act
    kappa = ollivier_ricci(edges, alpha=0.0, solver=solver)

    # Assert
    np.testing.assert_allclose(kappa, 0.0, atol=1e-12)
    np.testing.assert_allclose(reference_curvatures(edges, [1.0] * n, 0.0, n), 0.0, atol=1e-9)


@settings(deadline=None, max_examples=25)
@given(edges=random_trees())
def test_unweighted_tree_matches_jost_liu(edges: list[tuple[int, int]]) -> None:
    # Arrange
    nodes = len(edges) + 1
    degree = np.bincount(np.array(edges).ravel(), minlength=nodes)
    jost_liu = np.array(
        [-2.0 * max(0.0, 1.0 - 1.0 / degree[u] - 1.0 / degree[v]) for u, v in edges]
    )

    # Act
    closed = ollivier_ricci(edges, alpha=0.0)
    solved = ollivier_ricci(edges, alpha=0.0, solver="emd")
    reference = reference_curvatures(edges, [1.0] * len(edges), 0.0, nodes)

    # Assert
    np.testing.assert_allclose(reference, jost_liu, atol=1e-9)
    np.testing.assert_allclose(closed, jost_liu, atol=1e-12)
    np.testing.assert_allclose(solved, jost_liu, atol=1e-12)


@settings(deadline=None, max_examples=25)
@given(
    edges=random_trees(),
    alpha=alphas,
    data=st.data(),
)
def test_weighted_tree_closed_form_matches_solvers(
    edges: list[tuple[int, int]], alpha: float, data: st.DataObject
) -> None:
    # Arrange
    weights = data.draw(
        st.lists(st.integers(1, 9).map(float), min_size=len(edges), max_size=len(edges))
    )

    # Act
    closed = ollivier_ricci(edges, weights, alpha=alpha)
    solved = ollivier_ricci(edges, weights, alpha=alpha, solver="emd")
    reference = reference_curvatures(edges, weights, alpha, len(edges) + 1)

    # Assert
    np.testing.assert_allclose(closed, reference, atol=1e-9)
    np.testing.assert_allclose(closed, solved, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(graph=random_graphs(), alpha=alphas)
def test_weighted_graph_matches_linprog(
    graph: tuple[list[tuple[int, int]], list[float]], alpha: float
) -> None:
    # Arrange: arbitrary (possibly disconnected) graphs mix closed-form and solved edges.
    edges, weights = graph
    nodes = 1 + max(max(e) for e in edges)

    # Act
    auto = ollivier_ricci(edges, weights, alpha=alpha)
    solved = ollivier_ricci(edges, weights, alpha=alpha, solver="emd")

    # Assert
    np.testing.assert_allclose(auto, reference_curvatures(edges, weights, alpha, nodes), atol=1e-9)
    np.testing.assert_allclose(auto, solved, atol=1e-12)


def test_edge_on_a_triangle_is_solved_not_closed_form() -> None:
    # Arrange: a triangle with a pendant; the tree formula (degrees 2, 2 → 0) is wrong
    # on the triangle's edge 0-1, whose true curvature is 1/2 at alpha = 0.
    edges = [(0, 1), (1, 2), (2, 0), (2, 3)]

    # Act
    kappa = ollivier_ricci(edges, alpha=0.0)

    # Assert
    np.testing.assert_allclose(kappa, reference_curvatures(edges, [1.0] * 4, 0.0, 4), atol=1e-9)
    assert kappa[0] == pytest.approx(0.5, abs=1e-12)


def test_ollivier_ricci_keeps_edge_order_and_orientation() -> None:
    # Arrange
    edges = [(2, 1), (0, 1), (3, 2)]

    # Act
    kappa = ollivier_ricci(edges, alpha=0.0)
    flipped = ollivier_ricci([(1, 2), (1, 0), (2, 3)], alpha=0.0)

    # Assert: path 0-1-2-3: end edges have degree (1, 2) → 0, middle edge (2, 2) → 0.
    np.testing.assert_array_equal(kappa, flipped)
    np.testing.assert_allclose(
        kappa, reference_curvatures([(1, 2), (0, 1), (2, 3)], [1.0] * 3, 0.0, 4)
    )


def test_ollivier_ricci_of_no_edge_is_empty() -> None:
    assert ollivier_ricci(np.empty((0, 2), dtype=np.int64)).shape == (0,)


# ----------------------------------------------------------------------- price-level graph

STEP = 0.01


def closes_on_levels(levels: list[int], last: float = 100.0) -> NDArray[np.float64]:
    """Closes in the middle of the given levels (relative to the last close, on level 0)."""
    assert levels[-1] == 0
    values = [last * (1.0 + STEP) ** (k + 0.5) for k in levels[:-1]]
    return np.array([*values, last])


def test_price_level_graph_of_a_walk() -> None:
    # Arrange: 0 1 2 1 0 -1 0 -> path -1 - 0 - 1 - 2
    closes = closes_on_levels([0, 1, 2, 1, 0, -1, 0])

    # Act
    graph = price_level_graph(closes, delta=STEP)

    # Assert
    np.testing.assert_array_equal(graph.levels, [-1, 0, 1, 2])
    np.testing.assert_array_equal(graph.edges, [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(graph.weights, [2, 2, 2])
    np.testing.assert_array_equal(
        graph.distances, [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]]
    )


def test_price_level_graph_links_jumps_directly() -> None:
    # Arrange: 0 2 1 2 3 3 0 -> edges 0-2, 1-2 (x2), 2-3, 0-3; level 1 is 2 hops from 0
    closes = closes_on_levels([0, 2, 1, 2, 3, 3, 0])

    # Act
    graph = price_level_graph(closes, delta=STEP)

    # Assert
    np.testing.assert_array_equal(graph.levels, [0, 1, 2, 3])
    np.testing.assert_array_equal(graph.edges, [[0, 2], [0, 3], [1, 2], [2, 3]])
    np.testing.assert_array_equal(graph.weights, [1, 1, 2, 1])
    assert graph.distances[0, 1] == 2
    assert graph.distances[1, 3] == 2


def test_price_level_graph_of_a_flat_window_has_no_edge() -> None:
    # Act
    graph = price_level_graph([100.0, 100.2, 100.1, 100.0], delta=0.005)

    # Assert
    np.testing.assert_array_equal(graph.levels, [0])
    assert graph.edges.shape == (0, 2)
    assert graph.weights.shape == (0,)


@settings(deadline=None, max_examples=30)
@given(
    closes=st.lists(st.floats(0.5, 2.0), min_size=1, max_size=40),
    delta=st.sampled_from([0.001, 0.005, 0.02, 0.1]),
)
def test_price_level_graph_follows_the_definition(closes: list[float], delta: float) -> None:
    # Arrange: levels, edges and hop distances from the definition, in plain Python/scipy
    last = closes[-1]
    step = math.log1p(delta)
    visited = [math.floor(math.log(p / last) / step) for p in closes]
    levels = sorted(set(visited))
    rank = {level: i for i, level in enumerate(levels)}
    counts: dict[tuple[int, int], int] = {}
    for a, b in itertools.pairwise(visited):
        if a != b:
            key = (min(rank[a], rank[b]), max(rank[a], rank[b]))
            counts[key] = counts.get(key, 0) + 1
    expected_edges = sorted(counts)

    # Act
    graph = price_level_graph(closes, delta=delta)

    # Assert
    np.testing.assert_array_equal(graph.levels, levels)
    np.testing.assert_array_equal(
        graph.edges.reshape(-1, 2), np.array(expected_edges).reshape(-1, 2)
    )
    np.testing.assert_array_equal(graph.weights, [counts[e] for e in expected_edges])
    if expected_edges:
        adjacency = np.zeros((len(levels), len(levels)))
        for u, v in expected_edges:
            adjacency[u, v] = adjacency[v, u] = 1
        hops = shortest_path(csr_matrix(adjacency), unweighted=True, directed=False)
        np.testing.assert_array_equal(graph.distances, hops.astype(np.int64))


@settings(deadline=None, max_examples=30)
@given(
    levels=st.lists(st.integers(-6, 6), min_size=2, max_size=30),
    nudges=st.lists(st.integers(-3, 3), min_size=30, max_size=30),
    delta=st.sampled_from([1e-4, 0.001, 0.005, 0.03]),
)
def test_fast_levels_equal_defined_levels_at_boundaries(
    levels: list[int], nudges: list[int], delta: float
) -> None:
    # Arrange: closes within a few ulps of level boundaries, where shortcuts would slip
    last = 123.456
    closes = np.array(
        [
            last * math.exp(k * math.log1p(delta)) * (1.0 + n * 2.0**-52)
            for k, n in zip(levels, nudges, strict=False)
        ]
        + [last]
    )
    count = closes.shape[0]
    exact = np.empty(count, dtype=np.int64)
    fast = np.empty(count, dtype=np.int64)
    step = math.log1p(delta)

    # Act
    assert _fill_levels(closes, 0, count, step, exact)
    ok, low, high = _fill_levels_fast(closes, np.log(closes), 0, count, 1.0 / step, step, fast)

    # Assert
    assert ok
    expected = [math.floor(math.log(p / last) / step) for p in closes]
    np.testing.assert_array_equal(exact, expected)
    np.testing.assert_array_equal(fast, expected)
    assert (low, high) == (min(expected), max(expected))


# ----------------------------------------------------------------------- ricci_curvature


def test_ricci_curvature_is_the_mean_edge_curvature_of_each_window() -> None:
    # Arrange: heavy tails give windows with jumps (cycles → solver) and plain paths
    closes = jumpy_walk(260, seed=3)
    window, delta, alpha = 40, 0.004, 0.3
    expected = np.full(closes.shape[0], np.nan)
    for t in range(window - 1, closes.shape[0]):
        expected[t] = mean_curvature_by_graph(closes[t - window + 1 : t + 1], delta, alpha)

    # Act
    auto = ricci_curvature(closes, window, delta=delta, alpha=alpha)
    solved = ricci_curvature(closes, window, delta=delta, alpha=alpha, solver="emd")

    # Assert
    np.testing.assert_allclose(auto, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(solved, expected, rtol=0, atol=1e-12)


def test_ricci_curvature_on_a_path_window_uses_the_tree_formula() -> None:
    # Arrange: 0 1 2 1 0 -> path with weights (2, 2), degrees 2, 4, 2; alpha = 0.5
    closes = closes_on_levels([0, 1, 2, 1, 0])
    alpha = 0.5
    expected = []
    for w_xy, total_x, total_y in [(2, 2, 4), (2, 4, 2)]:
        p = (1 - alpha) * w_xy / total_x
        q = (1 - alpha) * w_xy / total_y
        w1 = (1 - alpha) * (total_x - w_xy) / total_x + (1 - alpha) * (total_y - w_xy) / total_y
        expected.append(1 - (w1 + abs(1 - p - q)))
    reference = reference_curvatures([(0, 1), (1, 2)], [2.0, 2.0], alpha, 3)

    # Act
    value = ricci_curvature(closes, 5, delta=STEP, alpha=alpha)

    # Assert
    np.testing.assert_allclose(reference, expected, atol=1e-9)
    assert value[-1] == pytest.approx(float(np.mean(expected)), abs=1e-15)


def test_warm_up_and_flat_windows_are_nan() -> None:
    # Arrange: flat for 30 bars (one level), then a trend
    closes = np.concatenate([np.full(30, 100.0), 100.0 * 1.01 ** np.arange(1, 21)])
    window = 10

    # Act
    values = ricci_curvature(closes, window, delta=0.005)

    # Assert
    assert np.isnan(values[: window - 1]).all()
    assert np.isnan(values[window - 1 : 30]).all()
    assert np.isfinite(values[30:]).all()


def test_series_shorter_than_window_is_all_nan() -> None:
    values = ricci_curvature(geometric_walk(50, 0.01, seed=1), 51)
    assert values.shape == (50,)
    assert np.isnan(values).all()


def test_values_are_at_most_one() -> None:
    values = ricci_curvature(jumpy_walk(600, seed=11), 60, delta=0.003)
    finite = values[np.isfinite(values)]
    assert finite.size > 0
    assert (finite <= 1.0).all()


@settings(deadline=None, max_examples=15)
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, 299),
    stride=st.sampled_from([1, 3, 7]),
)
def test_later_prices_never_change_earlier_values(seed: int, cut: int, stride: int) -> None:
    # Arrange
    closes = jumpy_walk(300, seed)
    altered = closes.copy()
    altered[cut + 1 :] *= np.random.default_rng(seed + 1).uniform(0.5, 2.0, 299 - cut)

    # Act
    original = ricci_curvature(closes, 40, delta=0.004, stride=stride)
    changed = ricci_curvature(altered, 40, delta=0.004, stride=stride)

    # Assert
    np.testing.assert_array_equal(original[: cut + 1], changed[: cut + 1])


@settings(deadline=None, max_examples=15)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 300),
    stride=st.sampled_from([1, 2, 5, 50]),
)
def test_prefix_gives_prefix_of_values(seed: int, length: int, stride: int) -> None:
    # Arrange
    closes = jumpy_walk(300, seed)

    # Act
    full = ricci_curvature(closes, 30, delta=0.004, stride=stride)
    prefix = ricci_curvature(closes[:length], 30, delta=0.004, stride=stride)

    # Assert
    np.testing.assert_array_equal(prefix, full[:length])


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), exponent=st.integers(-30, 30))
def test_power_of_two_scaling_changes_nothing(seed: int, exponent: int) -> None:
    # Arrange
    closes = jumpy_walk(250, seed)

    # Act
    base = ricci_curvature(closes, 30, delta=0.004)
    scaled = ricci_curvature(closes * 2.0**exponent, 30, delta=0.004)

    # Assert
    np.testing.assert_array_equal(base, scaled)


def test_other_scaling_away_from_level_boundaries_changes_nothing() -> None:
    # Arrange: generic closes (none within ~1e-12 of a boundary, checked) times 3.7
    closes = geometric_walk(400, 0.003, seed=5)
    window, delta = 50, 0.005
    step = math.log1p(delta)
    for t in range(window - 1, closes.shape[0]):
        quotients = np.log(closes[t - window + 1 : t + 1] / closes[t]) / step
        offsets = np.abs(quotients - np.round(quotients))
        assert (offsets[:-1] > 1e-9).all()

    # Act
    base = ricci_curvature(closes, window, delta=delta)
    scaled = ricci_curvature(closes * 3.7, window, delta=delta)

    # Assert
    np.testing.assert_array_equal(base, scaled)


@pytest.mark.parametrize("stride", [2, 5, 13])
def test_stride_computes_on_an_anchored_grid_and_carries_forward(stride: int) -> None:
    # Arrange
    closes = jumpy_walk(400, seed=8)
    window = 40
    every_bar = ricci_curvature(closes, window, delta=0.004)
    expected = np.full(closes.shape[0], np.nan)
    for t in range(window - 1, closes.shape[0]):
        anchor = t - (t - (window - 1)) % stride
        expected[t] = every_bar[anchor]

    # Act
    strided = ricci_curvature(closes, window, delta=0.004, stride=stride)

    # Assert
    np.testing.assert_array_equal(strided, expected)


def test_repeated_windows_reuse_cached_results_bit_for_bit() -> None:
    # Arrange: a periodic series repeats its windows; values must equal fresh ones
    period = jumpy_walk(37, seed=21)
    closes = np.tile(period, 8)
    window = 30

    # Act
    values = ricci_curvature(closes, window, delta=0.004)

    # Assert
    for t in range(window - 1 + 37, closes.shape[0]):
        assert values[t] == values[t - 37] or (np.isnan(values[t]) and np.isnan(values[t - 37]))
    fresh = ricci_curvature(closes[-window:], window, delta=0.004)
    np.testing.assert_array_equal(fresh[-1], values[-1])


def test_default_parameters_are_documented_values() -> None:
    closes = geometric_walk(400, 0.002, seed=2)
    np.testing.assert_array_equal(
        ricci_curvature(closes),
        ricci_curvature(closes, 200, delta=DEFAULT_DELTA, alpha=0.5, stride=1),
    )


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window": 1}, "window"),
        ({"window": 2.5}, "window"),
        ({"window": True}, "window"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": math.nan}, "delta"),
        ({"delta": "0.1"}, "delta"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"stride": 0}, "stride"),
        ({"stride": 1.5}, "stride"),
        ({"solver": "sinkhorn"}, "solver"),
    ],
)
def test_invalid_parameters_raise_naming_them(kwargs: dict[str, object], name: str) -> None:
    closes = geometric_walk(20, 0.01, seed=0)
    with pytest.raises(IndicatorError, match=name):
        ricci_curvature(closes, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "closes",
    [
        [[100.0, 101.0], [102.0, 103.0]],
        [100.0, math.nan, 101.0],
        [100.0, math.inf, 101.0],
        [100.0, 0.0, 101.0],
        [100.0, -5.0, 101.0],
        ["a", "b"],
        [[100.0, 101.0], [102.0]],
    ],
)
def test_invalid_closes_raise(closes: object) -> None:
    with pytest.raises(IndicatorError, match="close"):
        ricci_curvature(closes, 2)  # type: ignore[arg-type]


def test_delta_too_small_for_the_prices_raises() -> None:
    with pytest.raises(IndicatorError, match="delta"):
        ricci_curvature([1.0, 2.0, 3.0], 2, delta=1e-300)
    with pytest.raises(IndicatorError, match="delta"):
        price_level_graph([1.0, 2.0], delta=1e-300)
    with pytest.raises(IndicatorError, match="delta"):  # the ratio overflows float64
        ricci_curvature([1e-300, 1e300, 1.0], 2)


def test_price_level_graph_rejects_an_empty_window() -> None:
    with pytest.raises(IndicatorError, match="close_window"):
        price_level_graph([], delta=0.01)


@pytest.mark.parametrize(
    ("edges", "weights", "match"),
    [
        ([(0, 1, 2)], None, "shape"),
        ([(0.0, 1.0)], None, "integer"),
        ([(0, 0)], None, "self-loop"),
        ([(0, 1), (1, 0)], None, "repeat"),
        ([(-1, 1)], None, "node indices"),
        ([(0, 1)], [0.0], "weights"),
        ([(0, 1)], [math.nan], "weights"),
        ([(0, 1)], [1.0, 2.0], "weights"),
        ([(0, 1)], ["heavy"], "weights"),
    ],
)
def test_ollivier_ricci_rejects_malformed_graphs(
    edges: list[tuple[float, ...]], weights: list[float] | None, match: str
) -> None:
    with pytest.raises(IndicatorError, match=match):
        ollivier_ricci(edges, weights)


def test_ollivier_ricci_rejects_nodes_below_the_largest_index() -> None:
    with pytest.raises(IndicatorError, match="node indices"):
        ollivier_ricci([(0, 3)], nodes=3)


def test_ollivier_ricci_validates_alpha() -> None:
    with pytest.raises(IndicatorError, match="alpha"):
        ollivier_ricci([(0, 1)], alpha=1.0)


def test_lru_cache_keeps_the_most_recent_entries() -> None:
    # Arrange
    cache = _LruCache(2)
    cache.put(b"a", 1.0)
    cache.put(b"b", 2.0)

    # Act
    assert cache.get(b"a") == 1.0  # "a" becomes the most recent
    cache.put(b"c", 3.0)  # evicts "b"

    # Assert
    assert cache.get(b"b") is None
    assert (cache.get(b"a"), cache.get(b"c")) == (1.0, 3.0)


# ----------------------------------------------------------------------- exact shortcuts


@st.composite
def transport_problems(
    draw: st.DrawFn, max_rows: int = 4, max_columns: int = 6, max_cost: int = 4
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Balanced histograms (integer masses / their total) and an integer cost matrix."""
    rows = draw(st.integers(1, max_rows))
    columns = draw(st.integers(1, max_columns))
    a = np.array(draw(st.lists(st.integers(1, 20), min_size=rows, max_size=rows)), float)
    b = np.array(draw(st.lists(st.integers(1, 20), min_size=columns, max_size=columns)), float)
    flat = draw(
        st.lists(st.integers(0, max_cost), min_size=rows * columns, max_size=rows * columns)
    )
    return a / a.sum(), b / b.sum(), np.array(flat, dtype=np.int64).reshape(rows, columns)


def bipartite_distances(cost: NDArray[np.int64]) -> NDArray[np.int64]:
    """A distance table on rows 0..r-1 and columns r..r+c-1 holding ``cost`` between them."""
    rows, columns = cost.shape
    table = np.zeros((rows + columns, rows + columns), dtype=np.int64)
    table[:rows, rows:] = cost
    table[rows:, :rows] = cost.T
    return table


def unpack(problem: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    rows, columns = int(problem[0]), int(problem[1])
    a = problem[2 : 2 + rows]
    b = problem[2 + rows : 2 + rows + columns]
    return a, b, problem[2 + rows + columns :].reshape(rows, columns)


@settings(deadline=None, max_examples=60)
@given(problem=transport_problems())
def test_dual_enumeration_is_the_transport_optimum(
    problem: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
) -> None:
    # Arrange: costs 0..4 (wider than the 1..3 of local problems: the range is general)
    a, b, cost = problem
    rows, columns = cost.shape
    nodes = np.arange(rows + columns, dtype=np.int64)
    work = np.empty(rows * (columns + 1), dtype=np.int64)

    # Act
    by_duals = _dual_transport_cost(
        rows, nodes[:rows], a, columns, nodes[rows:], b, bipartite_distances(cost), work
    )

    # Assert
    assert by_duals == pytest.approx(linprog_w1(a, b, cost.astype(float)), abs=1e-9)
    assert by_duals == pytest.approx(_transport_cost(a, b, cost.astype(float)), abs=1e-12)


@settings(deadline=None, max_examples=40)
@given(problem=transport_problems(max_rows=6, max_columns=6, max_cost=3), data=st.data())
def test_canonical_problem_is_a_relabelling_with_the_same_optimum(
    problem: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
    data: st.DataObject,
) -> None:
    # Arrange: the same problem with its nodes renumbered and its sides swapped
    a, b, cost = problem
    rows, columns = cost.shape
    row_perm = np.array(data.draw(st.permutations(range(rows))))
    column_perm = np.array(data.draw(st.permutations(range(columns))))
    nodes = np.arange(rows + columns, dtype=np.int64)
    distances = bipartite_distances(cost)
    work = np.empty(6 * max(rows, columns), dtype=np.int64)
    size = 2 + rows + columns + rows * columns
    packed = np.empty(size)
    relabelled = np.empty(size)

    # Act
    length = _canonical_problem(
        rows, nodes[:rows], a, columns, nodes[rows:], b, distances, work, packed
    )
    _canonical_problem(
        columns,
        nodes[rows:][column_perm],
        b[column_perm],
        rows,
        nodes[:rows][row_perm],
        a[row_perm],
        distances,
        work,
        relabelled,
    )

    # Assert: same optimum; smaller side first; masses sorted and rescaled to equal totals
    assert length == size
    canonical_a, canonical_b, canonical_cost = unpack(packed)
    assert canonical_a.shape[0] == min(rows, columns)
    assert np.all(np.diff(canonical_a) >= 0)
    assert np.all(np.diff(canonical_b) >= 0)
    np.testing.assert_allclose(canonical_b.sum(), canonical_a.sum(), rtol=1e-15)
    assert _transport_cost(*unpack(packed)) == pytest.approx(
        _transport_cost(a, b, cost.astype(float)), abs=1e-12
    )
    assert set(np.unique(canonical_cost)) <= set(np.unique(cost).astype(float))
    masses_tie = rows == columns and np.array_equal(np.sort(a), np.sort(b))
    if len(set(a.tolist())) == rows and len(set(b.tolist())) == columns and not masses_tie:
        # Distinct masses fix the order: relabelling gives the very same bytes (cache key).
        np.testing.assert_array_equal(relabelled, packed)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_large_local_problems_reach_the_simplex_and_match_linprog(
    alpha: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a dense weighted graph, whose local problems are too large to enumerate
    edges, weights = dense_weighted_graph(12, seed=4)
    calls = counting(monkeypatch, _transport._network_simplex)

    # Act
    auto = ollivier_ricci(edges, weights, alpha=alpha)
    solved_in_auto = calls[0]
    forced = ollivier_ricci(edges, weights, alpha=alpha, solver="emd")

    # Assert
    assert 0 < solved_in_auto < len(edges)  # both the shortcuts and the simplex are used
    assert calls[0] == solved_in_auto + len(edges)
    np.testing.assert_allclose(auto, reference_curvatures(edges, weights, alpha, 12), atol=1e-9)
    np.testing.assert_allclose(auto, forced, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("closes", "window", "delta", "reaches_simplex"),
    [
        (bouncing_walk(140, 6, seed=5), 60, 0.01, True),
        (jumpy_walk(200, seed=9), 50, 0.003, False),
    ],
    ids=["dense", "jumpy"],
)
def test_every_route_gives_the_mean_edge_curvature(
    closes: NDArray[np.float64],
    window: int,
    delta: float,
    reaches_simplex: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: the whole problem of every edge solved by ot.emd2 itself, window by window
    expected = np.full(closes.shape[0], np.nan)
    monkeypatch.setattr(_transport, "_network_simplex", _emd2_simplex)
    for t in range(window - 1, closes.shape[0]):
        expected[t] = mean_curvature_by_graph(closes[t - window + 1 : t + 1], delta, 0.5)
    monkeypatch.undo()
    calls = counting(monkeypatch, _transport._network_simplex)

    # Act
    compiled = ricci_curvature(closes, window, delta=delta)
    monkeypatch.setattr(_transport, "_network_simplex", _emd2_simplex)
    through_emd2 = ricci_curvature(closes, window, delta=delta)

    # Assert
    assert np.isfinite(expected[window - 1 :]).all()
    np.testing.assert_allclose(compiled, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(through_emd2, compiled, rtol=0, atol=1e-12)
    assert (calls[0] > 0) == reaches_simplex  # jumpy windows need the shortcuts only


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_shortcuts_agree_with_full_solves_on_real_daily_data(name: str, sample_dir: Path) -> None:
    # Arrange: daily moves span several levels, so nearly every window has short cycles
    close = pl.read_csv(sample_dir / f"{name}_daily.csv")["close"].to_numpy()[-450:]

    # Act
    auto = ricci_curvature(close, 200)
    solved = ricci_curvature(close, 200, solver="emd")

    # Assert
    assert np.isfinite(auto[199:]).all()
    np.testing.assert_allclose(auto, solved, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------- solver entry point


def test_compiled_entry_point_is_used() -> None:
    # POT 0.9.x exposes ot.lp.emd_wrap.emd_c as checked; if this fails, POT changed its
    # private API and every solve takes the (correct but slower) ot.emd2 route.
    from ot.lp.emd_wrap import emd_c

    assert _checked_simplex(emd_c) is not None
    assert _load_simplex() is not _emd2_simplex


@pytest.mark.parametrize(
    "candidate",
    [
        lambda a, b, m: (None, 0.5, None, None, 1),  # another signature
        lambda a, b, m, n, t: (np.zeros((2, 3)), 0.5, None, None),  # another result tuple
        lambda a, b, m, n, t: (np.zeros((2, 3)), 0.25, None, None, 1),  # a wrong optimum
        lambda a, b, m, n, t: (np.zeros((2, 3)), 0.5, None, None, 3),  # not optimal
        lambda a, b, m, n, t: (np.zeros((3, 2)), 0.5, None, None, 1),  # a transposed plan
    ],
)
def test_entry_points_that_fail_the_check_are_rejected(candidate: Callable[..., Any]) -> None:
    assert _checked_simplex(candidate) is None


def test_missing_entry_point_falls_back_to_emd2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ot.lp.emd_wrap", None)  # the import now fails
    assert _load_simplex() is _emd2_simplex


FAILING = (
    np.array([0.25, 0.25, 0.5]),
    np.array([0.5, 0.25, 0.25]),
    np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]),
)  # one simplex iteration cannot solve this problem; its optimum is 0.5


def test_solver_failure_is_raised_not_hidden() -> None:
    with pytest.raises(OptimalTransportError, match="result_code = 3: iteration limit"):
        _transport_cost(*FAILING, max_iterations=1)
    assert _transport_cost(*FAILING) == pytest.approx(0.5, abs=1e-15)


def test_solver_failure_through_emd2_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    monkeypatch.setattr(_transport, "_network_simplex", _emd2_simplex)

    # Act / Assert (ot.emd2 warns as well; the error is what callers see)
    with (
        pytest.raises(OptimalTransportError, match="result_code = 3: iteration limit"),
        pytest.warns(UserWarning, match="numItermax"),
    ):
        _transport_cost(*FAILING, max_iterations=1)
    assert _transport_cost(*FAILING) == pytest.approx(0.5, abs=1e-15)


def test_invalid_solver_results_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    source = target = np.array([1.0])
    cost = np.array([[1.0]])
    for result, match in [((0.0, 0), "infeasible"), ((math.nan, 1), "invalid cost")]:
        monkeypatch.setattr(_transport, "_network_simplex", lambda *_, r=result: r)
        with pytest.raises(OptimalTransportError, match=match):
            _transport_cost(source, target, cost)


def test_window_batch_reports_a_level_overflow() -> None:
    # _scan reports overflows first; the batch builder checks again as a guard.
    solver = _CurvatureSolver(0.5, "auto")
    closes = np.array([1e-300, 1e300])  # the ratio of the two underflows float64
    assert solver.window_means(closes, np.array([1]), 2, math.log1p(0.005)) is None


# ----------------------------------------------------------------------- compiled kernels

# Every (module, name) binding of a compiled kernel: an interpreted kernel looks up the
# kernels it calls in its own module, so both modules' bindings are replaced.
KERNELS = sorted(
    (module.__name__, name)
    for module in (ricci, _transport)
    for name, value in vars(module).items()
    if hasattr(value, "py_func")
)
KERNEL_NAMES = {name for _, name in KERNELS}


def exercise_every_kernel() -> list[object]:
    """Outputs (and error messages) of calls that take every branch of the kernels."""
    step = 0.004
    boundary = 100.0 * (1.0 + step) ** np.array([0, 1, 2, 1, -1, 0, 3, 0], dtype=float)
    dense_edges, dense_weights = dense_weighted_graph(9, seed=2)
    outputs: list[object] = [
        ricci_curvature(bouncing_walk(48, 5, seed=1), 40, delta=0.01),
        ricci_curvature(bouncing_walk(36, 3, seed=2), 30, delta=0.01, alpha=0.0, stride=4),
        ricci_curvature(jumpy_walk(70, seed=3), 30, delta=step, solver="emd"),
        ricci_curvature(geometric_walk(60, 0.004, seed=4), 25, delta=step, stride=3),
        ricci_curvature(np.concatenate([np.full(12, 50.0), boundary]), 8, delta=step),
        ricci_curvature([100.0, 400.0, 101.0, 100.5], 4, delta=step),  # a 300-level jump
        ricci_curvature(geometric_walk(60, 0.0008, seed=6), 25, delta=step),  # paths
        ricci_curvature(geometric_walk(10, 0.01, seed=5), 20),
        ollivier_ricci(dense_edges, dense_weights, alpha=0.3),
        ollivier_ricci([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)], alpha=0.0),
        ollivier_ricci(complete_graph(4), alpha=0.25),  # m_x = m_y on every edge: κ = 1
        _CurvatureSolver(0.5, "auto").window_means(
            np.array([1e-300, 1e300]), np.array([1]), 2, 0.1
        ),
    ]
    # Equal-sized sides, first tied on their smallest masses: both orientations.
    distances = bipartite_distances(np.array([[1, 2], [3, 1]]))
    nodes = np.arange(4, dtype=np.int64)
    for a, b in [([0.25, 0.75], [0.25, 0.75]), ([0.25, 0.75], [0.25, 0.25])]:
        packed = np.empty(10)
        work = np.empty(12, dtype=np.int64)
        masses = np.array(a), np.array(b)
        _transport._canonical_problem(
            2, nodes[:2], masses[0], 2, nodes[2:], masses[1], distances, work, packed
        )
        outputs.append(packed)
    graph = price_level_graph([100.0, 400.0, 101.0, 100.5, 90.0], delta=step)
    outputs += [graph.levels, graph.edges, graph.weights, graph.distances]
    for call in (
        lambda: ricci_curvature([1.0, 2.0, 3.0], 2, delta=1e-300),
        lambda: ricci_curvature([1e-300, 1e300, 1.0], 2),
        lambda: price_level_graph([1.0, 2.0], delta=1e-300),
        lambda: ricci_curvature([100.0, -1.0], 2),
    ):
        with pytest.raises(IndicatorError) as error:
            call()
        outputs.append(str(error.value))
    return outputs


def test_kernel_list_is_complete() -> None:
    assert {"_scan", "_edge_analysis", "_dual_transport_cost", "_window_problems"} <= KERNEL_NAMES
    assert len(KERNEL_NAMES) >= 20


def test_compiled_kernels_match_their_python_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreted kernels are the specification the compiled ones must reproduce
    # bit for bit (no fast-math, no contraction); they also let coverage see the kernels.
    compiled = exercise_every_kernel()
    for module_name, name in KERNELS:
        module = sys.modules[module_name]
        monkeypatch.setattr(module, name, getattr(module, name).py_func)

    interpreted = exercise_every_kernel()

    assert len(interpreted) == len(compiled)
    for fast, slow in zip(compiled, interpreted, strict=True):
        if isinstance(fast, str):
            assert slow == fast
        else:
            np.testing.assert_array_equal(slow, fast, strict=True)
