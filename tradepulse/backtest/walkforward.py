"""Walk-forward optimisation: re-optimise on each train window, trade the next window blind.

``walk_forward(bars, "sma_cross", train_bars=756, test_bars=252, grid=...)`` cuts
the bars into folds (`walk_forward_windows`): each fold has a train window and
the test window right after it. On every train window each parameter
combination of the grid is backtested and the best one by ``objective`` is
chosen; that choice then trades the fold's test window, out of sample. The test
windows tile ``bars[train_bars:]`` without gaps or overlap, and their targets
are stitched into one series that runs as **one** backtest, so a position
carries across fold boundaries exactly as it would have live (no free exit at
a fold's end; a new fold's different target trades at the next open).

Evaluation is per candidate: the strategy's ``signals()`` are computed once on
all bars and sliced per window, which is exact for causal signals (the target
of bar t depends on bars <= t only, as the strategy API requires) and saves
recomputing them per fold. ``check_causality`` verifies this for every
candidate on the first train window (the signals of that prefix alone must
equal the first bars of the full signals, bit for bit), so a strategy that
peeks ahead fails loudly instead of flattering the result.

Candidates are evaluated through ``map_fn`` (default: the built-in ``map``), a
callable with ``map``'s signature; a distributed executor (Ray, issue #4) can
pass its own. The function it receives is a picklable object holding the bars,
the strategy, the windows and the frictions; it returns one objective value per
fold. Conventions in full: ``docs/walkforward.md``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse import metrics as metric_functions
from tradepulse.backtest.config import FrictionConfig
from tradepulse.backtest.runner import Frictions, resolve_frictions, resolve_strategy
from tradepulse.backtest.vector import DEFAULT_CASH, BacktestResult
from tradepulse.costs.commission import CommissionModel
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import SlippageModel
from tradepulse.errors import ConfigError
from tradepulse.strategy.api import Strategy, StrategyError, validate_signals
from tradepulse.strategy.params import Param, ParameterError, Params, param_specs

__all__ = [
    "FOLD_COLUMNS",
    "MAX_DEFAULT_COMBINATIONS",
    "OBJECTIVES",
    "MapFunction",
    "WalkForwardResult",
    "WalkForwardWindow",
    "walk_forward",
    "walk_forward_windows",
]

#: Metrics a walk-forward may maximise (`tradepulse.metrics.Metrics` fields that
#: differ between candidates). Higher is better, except ``max_drawdown`` (a
#: positive fraction), where smaller is better.
OBJECTIVES: Final[tuple[str, ...]] = (
    "final_equity",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "turnover",
    "exposure",
)
#: Largest default grid (every parameter's sweep values) a walk-forward accepts;
#: a larger one must be given explicitly as ``grid``.
MAX_DEFAULT_COMBINATIONS: Final = 5_000
#: Columns of `WalkForwardResult.folds` around the chosen parameters' columns.
FOLD_COLUMNS: Final[tuple[str, ...]] = (
    "fold",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "train_objective",
    "oos_return",
    "oos_sharpe",
    "oos_max_drawdown",
    "oos_trades",
)
_MINIMISED: Final = frozenset({"max_drawdown"})
_TS_DTYPE: Final = pl.Datetime("ns", "UTC")
_PARAM_DTYPES: Final[dict[str, pl.DataType]] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
}

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class MapFunction(Protocol):
    """An executor: ``map_fn(function, items)`` returns ``function(item)`` per item, in order.

    The built-in ``map`` is one; a distributed executor may run the calls
    anywhere (``function`` is picklable) as long as results come back in order.
    """

    def __call__(
        self, function: Callable[[ItemT], ResultT], items: Iterable[ItemT], /
    ) -> Iterable[ResultT]:
        """Return ``function(item)`` for every item of ``items``, in order."""
        ...


@dataclass(frozen=True, slots=True)
class WalkForwardWindow:
    """The bars of one fold, as half-open bar indices ``[start, end)``.

    ``fold`` numbers the folds from 0. The train window is
    ``[train_start, train_end)``; the test window ``[test_start, test_end)``
    starts where it ends (``test_start == train_end``).
    """

    fold: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def _check_window_length(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer number of bars; got {value!r}")
    if value < 2:
        raise ConfigError(f"{name} must be >= 2 bars; got {value!r}")
    return int(value)


def walk_forward_windows(
    bar_count: int, *, train_bars: int, test_bars: int, anchored: bool = False
) -> tuple[WalkForwardWindow, ...]:
    """Return the folds of a walk-forward over ``bar_count`` bars.

    Fold k (from 0) tests bars ``[train_bars + k * test_bars, ... + test_bars)``;
    the last test window is cut at the end of the data and kept if it holds at
    least one bar. Rolling (default): fold k trains on the ``train_bars`` bars
    right before its test window, so the train window slides by ``test_bars``.
    Anchored: every train window starts at bar 0 and grows by ``test_bars``.

    Raises:
        ConfigError: ``train_bars`` or ``test_bars`` is not an integer >= 2, or
            ``bar_count`` is smaller than ``train_bars + test_bars`` (one full fold).
    """
    train = _check_window_length("train_bars", train_bars)
    test = _check_window_length("test_bars", test_bars)
    if isinstance(bar_count, bool) or not isinstance(bar_count, int | np.integer):
        raise ConfigError(f"bar_count must be an integer; got {bar_count!r}")
    needed = train + test
    if bar_count < needed:
        raise ConfigError(
            f"walk-forward needs at least train_bars + test_bars = {train} + {test} = "
            f"{needed} bars for one fold; got {bar_count} bars"
        )
    windows = []
    for fold, test_start in enumerate(range(train, int(bar_count), test)):
        windows.append(
            WalkForwardWindow(
                fold=fold,
                train_start=0 if anchored else test_start - train,
                train_end=test_start,
                test_start=test_start,
                test_end=min(test_start + test, int(bar_count)),
            )
        )
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class WalkForwardResult:
    """What a walk-forward produced.

    ``windows`` holds each fold's bar indices, ``params`` the parameters chosen
    on each fold's train window (``None`` when no candidate had a finite
    objective there: the fold then stays flat) and ``train_objectives`` their
    in-sample objective value (NaN for ``None``). ``folds`` is the same as a
    polars frame, one row per fold (columns `FOLD_COLUMNS` with one column per
    parameter after ``test_end``; timestamps are the first and last bar of each
    window, inclusive) plus each test window's out-of-sample figures:
    ``oos_return`` (fractional change of the stitched equity over the window),
    ``oos_sharpe`` (annualised like the whole run), ``oos_max_drawdown`` (from
    the equity the window started with) and ``oos_trades`` (trades opened in
    the window). ``oos`` is the one backtest of the stitched targets
    (``targets``, one per bar of ``bars[windows[0].test_start:]``): its equity
    and metrics are the out-of-sample result. ``candidates`` are the parameter
    combinations tried (constraint violations removed; ``skipped`` counts
    those), ``grid`` the values swept per parameter, and ``scores[i, k]`` the
    objective of candidate i on fold k's train window.
    """

    strategy: str
    objective: str
    anchored: bool
    windows: tuple[WalkForwardWindow, ...]
    params: tuple[Params | None, ...]
    train_objectives: tuple[float, ...]
    folds: pl.DataFrame
    oos: BacktestResult
    targets: NDArray[np.float64]
    grid: dict[str, tuple[Any, ...]]
    candidates: tuple[Params, ...]
    scores: NDArray[np.float64]
    skipped: int

    @property
    def combinations(self) -> int:
        """Return the number of parameter combinations tried on every fold."""
        return len(self.candidates)

    @property
    def evaluations(self) -> int:
        """Return the number of train backtests run (folds x combinations)."""
        return len(self.windows) * len(self.candidates)


# ------------------------------------------------------------------------------ grid


def _check_values(spec: Param, values: object) -> tuple[Any, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ConfigError(
            f"grid[{spec.name!r}] must be a sequence of values (e.g. [5, 10]); got {values!r}"
        )
    if len(values) == 0:
        raise ConfigError(f"grid[{spec.name!r}] has no values")
    typed: list[Any] = []
    for value in values:
        try:
            parsed = spec.parse(value)
        except ParameterError as exc:
            raise ConfigError(f"grid[{spec.name!r}]: {exc}") from None
        if parsed not in typed:  # duplicates would only tie with themselves
            typed.append(parsed)
    return tuple(typed)


def _resolve_grid(
    strategy: Strategy,
    grid: Mapping[str, object] | None,
    fixed: Mapping[str, object],
) -> dict[str, tuple[Any, ...]]:
    """Return the swept values per parameter, in the strategy's declaration order."""
    specs = param_specs(strategy.params_type)
    known = ", ".join(specs) or "none"
    if grid is None:
        swept: dict[str, tuple[Any, ...]] = {}
        for name, spec in specs.items():
            if name in fixed:
                continue
            try:
                swept[name] = spec.sweep_values()
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc}; pass grid= with its values or fix it with params="
                ) from None
        count = math.prod(len(values) for values in swept.values())
        if count > MAX_DEFAULT_COMBINATIONS:
            sizes = " x ".join(f"{name}: {len(values)}" for name, values in swept.items())
            raise ConfigError(
                f"the default grid of strategy {strategy.name!r} has {count:,} combinations "
                f"({sizes}), more than {MAX_DEFAULT_COMBINATIONS:,}; pass grid= with the "
                "values to try (CLI: --grid name=start:stop:step or --values name=a,b,c)"
            )
        return swept
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid must be a mapping of parameter name to values; got {grid!r}")
    for name in grid:
        if name not in specs:
            raise ConfigError(f"grid names unknown parameter {name!r} (known parameters: {known})")
        if name in fixed:
            raise ConfigError(f"parameter {name!r} is both in the grid and fixed in params")
    return {name: _check_values(spec, grid[name]) for name, spec in specs.items() if name in grid}


def _check_fixed(strategy: Strategy, params: Mapping[str, object] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping of fixed parameter values; got {params!r}")
    specs = param_specs(strategy.params_type)
    fixed: dict[str, Any] = {}
    for name, value in params.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise ParameterError(name, value, f"is unknown (known parameters: {known})")
        fixed[name] = spec.parse(value)
    return fixed


def _candidates(
    strategy: Strategy, swept: Mapping[str, tuple[Any, ...]], fixed: Mapping[str, Any]
) -> tuple[list[Params], list[ConfigError]]:
    """Return the valid combinations in grid order and the constraint errors of the rest."""
    valid: list[Params] = []
    refused: list[ConfigError] = []
    names = list(swept)
    for values in itertools.product(*swept.values()):
        try:
            valid.append(strategy.params_type(**fixed, **dict(zip(names, values, strict=True))))
        except ConfigError as exc:  # each value passed its spec: a constraint failed
            refused.append(exc)
    return valid, refused


# ------------------------------------------------------------------------------ evaluation


def _signals(strategy: Strategy, bars: pl.DataFrame, params: Params) -> NDArray[np.float64]:
    return validate_signals(
        strategy.signals(bars, params), length=bars.height, strategy=strategy.name
    )


def _check_causal(
    strategy: Strategy,
    bars: pl.DataFrame,
    params: Params,
    full: NDArray[np.float64],
    end: int,
) -> None:
    """Raise unless the signals of ``bars[:end]`` are the first ``end`` full signals."""
    prefix = _signals(strategy, bars.slice(0, end), params)
    if not np.array_equal(prefix, full[:end]):
        bar = int(np.flatnonzero(prefix != full[:end])[0])
        raise StrategyError(
            f"strategy {strategy.name!r}: signals() is not causal with {params!r}: the target "
            f"of bar {bar} is {float(prefix[bar])!r} on the first {end} bars but "
            f"{float(full[bar])!r} once later bars are added; walk-forward needs targets "
            "that depend on past bars only"
        )


@dataclass(frozen=True, slots=True)
class _CandidateEvaluation:
    """``evaluation(params)``: the objective of ``params`` on every fold's train window.

    Picklable, so an executor may ship it to other processes once and call it
    there.
    """

    bars: pl.DataFrame
    strategy: Strategy
    train_windows: tuple[tuple[int, int], ...]
    objective: str
    frictions: Frictions
    causality_end: int | None

    def __call__(self, params: Params) -> tuple[float, ...]:
        targets = _signals(self.strategy, self.bars, params)
        if self.causality_end is not None:
            _check_causal(self.strategy, self.bars, params, targets, self.causality_end)
        values = []
        for start, end in self.train_windows:
            result = self.frictions.run(self.bars.slice(start, end - start), targets[start:end])
            values.append(float(getattr(result.metrics, self.objective)))
        return tuple(values)


def _choose(scores: NDArray[np.float64], objective: str) -> list[int | None]:
    """Return, per fold (column), the first best candidate (row); NaN never wins."""
    ranked = -scores if objective in _MINIMISED else scores
    chosen: list[int | None] = []
    for fold in range(ranked.shape[1]):
        column = ranked[:, fold]
        finite = ~np.isnan(column)
        if not finite.any():
            chosen.append(None)
            continue
        best = np.max(column[finite])
        chosen.append(int(np.flatnonzero(finite & (column == best))[0]))
    return chosen


def _collect(
    map_fn: MapFunction,
    evaluation: _CandidateEvaluation,
    candidates: Sequence[Params],
    progress: Callable[[int, int], None] | None,
) -> NDArray[np.float64]:
    """Evaluate every candidate through ``map_fn``; check what comes back."""
    folds = len(evaluation.train_windows)
    total = folds * len(candidates)
    scores = np.full((len(candidates), folds), np.nan)
    returned = 0
    for row, values in enumerate(map_fn(evaluation, candidates)):
        if row >= len(candidates):
            raise ConfigError(f"map_fn returned more than {len(candidates)} results")
        if not isinstance(values, Sequence) or len(values) != folds:
            raise ConfigError(
                f"map_fn returned {values!r} for candidate {row}; expected {folds} objective "
                "values (one per fold): map_fn must return function(item) for every item in order"
            )
        try:
            scores[row] = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"map_fn returned non-numeric objectives {values!r} for candidate {row}"
            ) from None
        returned += 1
        if progress is not None:
            progress(returned * folds, total)
    if returned != len(candidates):
        raise ConfigError(f"map_fn returned {returned} results for {len(candidates)} candidates")
    return scores


# ------------------------------------------------------------------------------ results


def _fold_statistics(
    oos: BacktestResult, windows: Sequence[WalkForwardWindow]
) -> dict[str, list[Any]]:
    """Return each test window's return, Sharpe, drawdown and trades from the stitched run."""
    equity = oos.equity
    offset = windows[0].test_start
    entries = oos.trades.get_column("entry_bar").to_numpy()
    periods = oos.metrics.periods_per_year
    columns: dict[str, list[Any]] = {
        "oos_return": [],
        "oos_sharpe": [],
        "oos_max_drawdown": [],
        "oos_trades": [],
    }
    for window in windows:
        start, end = window.test_start - offset, window.test_end - offset
        before = oos.initial_cash if start == 0 else float(equity[start - 1])
        piece = equity[start:end]
        if before > 0.0:
            change = float(piece[-1] / before - 1.0)
            sharpe = metric_functions.sharpe(piece, before, periods_per_year=periods)
            drawdown = metric_functions.max_drawdown(piece, before)
        else:  # ruined before the window: nothing left to measure against
            change = sharpe = drawdown = math.nan
        columns["oos_return"].append(change)
        columns["oos_sharpe"].append(sharpe)
        columns["oos_max_drawdown"].append(drawdown)
        columns["oos_trades"].append(int(np.count_nonzero((entries >= start) & (entries < end))))
    return columns


def _fold_frame(
    bars: pl.DataFrame,
    strategy: Strategy,
    windows: Sequence[WalkForwardWindow],
    chosen: Sequence[Params | None],
    train_objectives: Sequence[float],
    statistics: Mapping[str, list[Any]],
) -> pl.DataFrame:
    ts = bars.get_column("ts").cast(_TS_DTYPE)

    def stamps(indices: list[int]) -> pl.Series:
        return ts.gather(indices)

    columns: list[pl.Series] = [
        pl.Series("fold", [window.fold for window in windows], dtype=pl.Int64),
        stamps([window.train_start for window in windows]).alias("train_start"),
        stamps([window.train_end - 1 for window in windows]).alias("train_end"),
        stamps([window.test_start for window in windows]).alias("test_start"),
        stamps([window.test_end - 1 for window in windows]).alias("test_end"),
    ]
    for name, spec in param_specs(strategy.params_type).items():
        label = f"param_{name}" if name in FOLD_COLUMNS else name
        values = [None if params is None else getattr(params, name) for params in chosen]
        columns.append(pl.Series(label, values, dtype=_PARAM_DTYPES[spec.kind]))
    columns.append(pl.Series("train_objective", list(train_objectives), dtype=pl.Float64))
    columns.extend(
        pl.Series(name, statistics[name], dtype=pl.Float64)
        for name in ("oos_return", "oos_sharpe", "oos_max_drawdown")
    )
    columns.append(pl.Series("oos_trades", statistics["oos_trades"], dtype=pl.Int64))
    return pl.DataFrame(columns)


# ------------------------------------------------------------------------------ entry point


def walk_forward(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    *,
    train_bars: int,
    test_bars: int,
    anchored: bool = False,
    grid: Mapping[str, Sequence[object]] | None = None,
    objective: str = "sharpe",
    params: Mapping[str, object] | None = None,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
    map_fn: MapFunction | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_causality: bool = True,
) -> WalkForwardResult:
    """Walk ``strategy`` forward over one instrument's ``bars``; return the out-of-sample run.

    Folds come from `walk_forward_windows` (rolling, or ``anchored`` at bar 0).
    ``grid`` maps parameter names to the values to try (strings such as
    ``"10"`` are parsed); parameters not in it keep their default or their
    value in ``params`` (fixed for every candidate). Without ``grid`` every
    parameter not in ``params`` is swept over its declared range
    (``Param.sweep_values``), up to `MAX_DEFAULT_COMBINATIONS` combinations.
    Candidates run in grid order (parameters in declaration order, the last
    one varying fastest); combinations that violate the strategy's constraints
    (such as ``fast < slow``) are skipped and counted.

    On each fold's train window every candidate is backtested (starting flat
    with ``cash``) and scored by ``objective``, a `OBJECTIVES` name: the
    largest value wins, except ``max_drawdown``, where the smallest does; ties
    go to the first in grid order; NaN never wins, and a fold where every
    candidate scores NaN stays flat out of sample. The winners' targets over
    the test windows are stitched and backtested once from the first test bar.
    Frictions come from the keywords or ``config`` as in
    :func:`~tradepulse.backtest.run_backtest` (a keyword not ``None`` wins).
    ``map_fn`` (default ``map``) evaluates the candidates; ``progress(done,
    total)`` is called as train backtests finish. ``check_causality`` verifies
    each candidate's signals on the first train window (see the module
    docstring).

    Raises:
        ConfigError: a window length is not an integer >= 2, there are fewer
            than ``train_bars + test_bars`` bars, the strategy has no
            ``signals()`` form, ``objective`` is unknown, ``grid`` names an
            unknown parameter or has an empty or invalid value list, the
            default grid is too large, no combination satisfies the
            constraints, ``map_fn`` returned malformed results, or the bars
            or frictions are invalid.
        ParameterError: a value in ``params`` is unknown or invalid.
        StrategyError: the strategy's signals are malformed or not causal.
    """
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        raise ConfigError("bars must hold one symbol; walk each symbol forward separately")
    if "ts" not in bars.columns:
        raise ConfigError(f"bars must have a 'ts' column; got columns {bars.columns}")
    windows = walk_forward_windows(
        bars.height, train_bars=train_bars, test_bars=test_bars, anchored=anchored
    )
    instance = resolve_strategy(strategy)
    if not instance.has_signals:
        raise ConfigError(
            f"strategy {instance.name!r} has no vectorised signals() form, which walk-forward "
            "needs to score many parameter combinations"
        )
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    fixed = _check_fixed(instance, params)
    swept = _resolve_grid(instance, grid, fixed)
    candidates, refused = _candidates(instance, swept, fixed)
    if not candidates:
        raise ConfigError(
            f"no combination of the grid satisfies the constraints of strategy "
            f"{instance.name!r} ({len(refused)} tried; first refused: {refused[0]})"
        )
    frictions = resolve_frictions(
        config,
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    # A flat two-bar run checks the frictions and bar columns here, before any fan-out.
    frictions.run(bars.slice(0, 2), np.zeros(2))
    evaluation = _CandidateEvaluation(
        bars=bars,
        strategy=instance,
        train_windows=tuple((window.train_start, window.train_end) for window in windows),
        objective=objective,
        frictions=frictions,
        causality_end=windows[0].train_end if check_causality else None,
    )
    scores = _collect(map if map_fn is None else map_fn, evaluation, candidates, progress)
    winners = _choose(scores, objective)

    first = windows[0].test_start
    stitched = np.zeros(bars.height - first)
    computed: dict[int, NDArray[np.float64]] = {}
    for window, winner in zip(windows, winners, strict=True):
        if winner is None:
            continue  # no finite objective: stay flat through this test window
        if winner not in computed:
            computed[winner] = _signals(instance, bars, candidates[winner])
        stitched[window.test_start - first : window.test_end - first] = computed[winner][
            window.test_start : window.test_end
        ]
    oos = frictions.run(bars.slice(first), stitched)
    stitched.setflags(write=False)
    scores.setflags(write=False)

    chosen = tuple(None if winner is None else candidates[winner] for winner in winners)
    train_objectives = tuple(
        math.nan if winner is None else float(scores[winner, fold])
        for fold, winner in enumerate(winners)
    )
    folds = _fold_frame(
        bars, instance, windows, chosen, train_objectives, _fold_statistics(oos, windows)
    )
    return WalkForwardResult(
        strategy=instance.name,
        objective=objective,
        anchored=bool(anchored),
        windows=windows,
        params=chosen,
        train_objectives=train_objectives,
        folds=folds,
        oos=oos,
        targets=stitched,
        grid=swept,
        candidates=tuple(candidates),
        scores=scores,
        skipped=len(refused),
    )
