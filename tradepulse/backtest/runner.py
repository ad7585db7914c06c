"""One entry point for a backtest: a strategy, its parameters, the bars, an engine.

``run_backtest(bars, "sma_cross", {"fast": 10, "slow": 30})`` resolves the
strategy (a plugin name, a :class:`~tradepulse.strategy.Strategy` class or
instance), validates its parameters, and runs it on the vectorised engine
(``signals()`` form) or the event-driven engine (``handle_tick`` form). Frictions
come from keyword arguments, a :class:`~tradepulse.backtest.FrictionConfig`, or
both (an explicit keyword wins over the config).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.config import FrictionConfig
from tradepulse.backtest.event import run_event
from tradepulse.backtest.vector import (
    DEFAULT_CASH,
    BacktestResult,
    VectorisedRun,
    prepare_vectorised,
)
from tradepulse.costs.commission import CommissionModel
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import SlippageModel
from tradepulse.errors import ConfigError
from tradepulse.strategy.api import Strategy, validate_signals
from tradepulse.strategy.params import Params
from tradepulse.strategy.plugins import load_strategy

__all__ = [
    "ENGINES",
    "Engine",
    "Frictions",
    "resolve_frictions",
    "resolve_params",
    "resolve_strategy",
    "run_backtest",
]

#: Backtest engine names.
Engine = Literal["vector", "event"]
#: The accepted `Engine` values.
ENGINES: Final[tuple[Engine, ...]] = ("vector", "event")


@dataclass(frozen=True, slots=True)
class Frictions:
    """Cash and frictions resolved once for a series of backtests (both engines).

    ``commission`` and ``slippage`` hold what the engines accept (iterables
    become tuples, so the value can be reused and pickled).
    """

    cash: float
    commission: float | CommissionModel | tuple[CommissionModel, ...] | None
    slippage: SlippageModel | tuple[SlippageModel, ...] | None
    sizing: Sizing
    latency_bars: int
    periods_per_year: float | None

    def run(self, bars: pl.DataFrame, targets: NDArray[np.float64]) -> BacktestResult:
        """Return ``run_vectorised(bars, targets, ...)`` with these frictions."""
        return self.prepare(bars).run(targets)

    def prepare(self, bars: pl.DataFrame) -> VectorisedRun:
        """Return ``prepare_vectorised(bars, ...)`` with these frictions (many runs, one check)."""
        return prepare_vectorised(
            bars,
            cash=self.cash,
            commission=self.commission,
            slippage=self.slippage,
            sizing=self.sizing,
            latency_bars=self.latency_bars,
            periods_per_year=self.periods_per_year,
        )


def resolve_frictions(
    config: FrictionConfig | None,
    *,
    cash: float,
    commission: float | CommissionModel | Iterable[CommissionModel] | None,
    slippage: SlippageModel | Iterable[SlippageModel] | None,
    sizing: Sizing | None,
    latency_bars: int | None,
    periods_per_year: float | None,
) -> Frictions:
    """Merge ``config`` and the keywords (a keyword that is not ``None`` wins).

    Without either, a run is frictionless with fractional sizing and no latency.

    Raises:
        ConfigError: ``config`` is not a `FrictionConfig` (or its models are invalid).
    """
    if config is not None and not isinstance(config, FrictionConfig):
        raise ConfigError(f"config must be a FrictionConfig; got {type(config).__name__}")
    chosen_commission = commission
    chosen_slippage = slippage
    chosen_sizing: Sizing = "fractional"
    chosen_latency = 0
    chosen_periods = periods_per_year
    if config is not None:
        arguments = config.engine_arguments()
        if commission is None:
            chosen_commission = arguments["commission"]
        if slippage is None:
            chosen_slippage = arguments["slippage"]
        chosen_sizing = arguments["sizing"]
        chosen_latency = arguments["latency_bars"]
        if periods_per_year is None:
            chosen_periods = arguments["periods_per_year"]
    if sizing is not None:
        chosen_sizing = sizing
    if latency_bars is not None:
        chosen_latency = latency_bars
    # Iterables become tuples: the frictions are reused for every run (and pickled).
    if chosen_commission is not None and not isinstance(
        chosen_commission, int | float | CommissionModel
    ):
        chosen_commission = tuple(chosen_commission)
    if chosen_slippage is not None and not isinstance(chosen_slippage, SlippageModel):
        chosen_slippage = tuple(chosen_slippage)
    return Frictions(
        cash=cash,
        commission=chosen_commission,
        slippage=chosen_slippage,
        sizing=chosen_sizing,
        latency_bars=chosen_latency,
        periods_per_year=chosen_periods,
    )


def resolve_strategy(strategy: str | type[Strategy] | Strategy) -> Strategy:
    """Return a fresh strategy instance for a plugin name, a class or an instance.

    Raises:
        UnknownStrategyError: no plugin has that name (the message lists them).
        ConfigError: ``strategy`` is none of the accepted forms.
    """
    if isinstance(strategy, str):
        return load_strategy(strategy)()
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy()
    if isinstance(strategy, Strategy):
        return strategy
    raise ConfigError(
        f"strategy must be a plugin name, a Strategy subclass or instance; got {strategy!r}"
    )


def resolve_params(strategy: Strategy, params: Params | Mapping[str, object] | None) -> Params:
    """Return ``strategy``'s validated parameters from ``params`` (defaults when ``None``).

    A mapping may hold strings (``{"fast": "10"}``) or typed values.

    Raises:
        ParameterError: a name is unknown, a value is invalid or a constraint fails.
        ConfigError: ``params`` is an instance of another strategy's parameters.
    """
    params_type: type[Params] = strategy.params_type
    if params is None:
        return params_type.from_mapping({})
    if isinstance(params, Params):
        if not isinstance(params, params_type):
            raise ConfigError(
                f"strategy {strategy.name!r} takes {params_type.__name__}; "
                f"got {type(params).__name__}"
            )
        return params
    if isinstance(params, Mapping):
        return params_type.from_mapping(params)
    raise ConfigError(f"params must be a mapping or {params_type.__name__}; got {params!r}")


def run_backtest(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    params: Params | Mapping[str, object] | None = None,
    *,
    engine: Engine | None = None,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` with ``params`` on one instrument's ``bars``.

    ``engine`` is ``"vector"`` (the strategy's ``signals()`` form, compiled
    kernel) or ``"event"`` (``handle_tick`` per bar on the matching engine);
    ``None`` picks ``"vector"`` when the strategy has a vectorised form. Both
    give the same trades and equity for a strategy with both forms.
    ``config`` supplies commission, slippage, sizing, latency and annualisation;
    a keyword given here (not ``None``) overrides it. Without either, the run
    is frictionless with fractional sizing and no latency.

    Raises:
        ConfigError: an argument is invalid, the bars are unusable, or the
            vectorised engine is asked of a strategy without ``signals()``.
        ParameterError: a parameter is invalid.
        StrategyError: the strategy misbehaved (bad signals, unknown indicator).
    """
    instance = resolve_strategy(strategy)
    typed = resolve_params(instance, params)
    if engine is None:
        engine = "vector" if instance.has_signals else "event"
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    frictions = resolve_frictions(
        config,
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if engine == "vector":
        if not instance.has_signals:
            raise ConfigError(
                f"strategy {instance.name!r} has no vectorised signals() form; "
                "use the event engine (engine='event', --engine event)"
            )
        targets = validate_signals(
            instance.signals(bars, typed), length=bars.height, strategy=instance.name
        )
        return frictions.run(bars, targets)
    return run_event(
        bars,
        instance,
        typed,
        cash=frictions.cash,
        commission=frictions.commission,
        slippage=frictions.slippage,
        sizing=frictions.sizing,
        latency_bars=frictions.latency_bars,
        periods_per_year=frictions.periods_per_year,
    )
