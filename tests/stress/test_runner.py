"""run_stress: every cell equals a direct backtest of the stressed bars; the gate's verdict."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pytest
from stress_helpers import HoldParams, HoldStrategy, flat_bars

from tradepulse.backtest import FrictionConfig, run_backtest, run_event
from tradepulse.costs import CommissionTerms, SpreadSlippage, SquareRootImpact
from tradepulse.data import synthesize_bars
from tradepulse.errors import ConfigError
from tradepulse.executor import LocalExecutor, TaskOutcome
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams
from tradepulse.stress import (
    BASELINE,
    ROW_COLUMNS,
    EngineSettings,
    FlashCrash,
    FrictionOverrides,
    GapOpen,
    LiquidityDrought,
    RegimeFlip,
    Scenario,
    StressReport,
    Thresholds,
    TradingHalt,
    VolatilitySpike,
    run_scenario,
    run_stress,
    stress_seeds,
)

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741  (item)
R = TypeVar("R")

PARAMS = {"fast": 5, "slow": 20}
LOOSE = Thresholds(max_drawdown=1.0, loss_limit=-1.0)
EQUITIES = FrictionConfig(name="test", commission=CommissionTerms(rate=0.001), spread_bps=2.0)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthesize_bars(bars=600, seed=21, freq="1d")


def _scenarios() -> list[Scenario]:
    return [
        Scenario(
            name="crash",
            transform=FlashCrash(drop=0.25, bars=2, recovery=0.5, recovery_bars=5),
            thresholds=LOOSE,
        ),
        Scenario(name="gap", transform=GapOpen(gap=-0.08, at=300), thresholds=LOOSE),
        Scenario(name="halt", transform=TradingHalt(bars=5, reopen_gap=0.03), thresholds=LOOSE),
        Scenario(
            name="spike",
            transform=VolatilitySpike(factor=3.0, bars=30),
            thresholds=LOOSE,
            frictions=FrictionOverrides(slippage_bps=3.0),
        ),
        Scenario(
            name="flip",
            transform=RegimeFlip(),
            thresholds=LOOSE,
            engine=EngineSettings(kind="event"),
        ),
        Scenario(
            name="drought",
            transform=LiquidityDrought(factor=0.001, bars=40),
            thresholds=LOOSE,
            frictions=FrictionOverrides(impact_bps=50.0),
        ),
    ]


def test_every_run_equals_a_direct_backtest_of_the_stressed_bars(bars: pl.DataFrame) -> None:
    scenarios = _scenarios()

    report = run_stress(
        bars, "sma_cross", PARAMS, scenarios=scenarios, seeds=[0, 3], config=EQUITIES
    )

    by_name = {scenario.name: scenario for scenario in scenarios}
    assert [(row.scenario, row.seed) for row in report.rows] == [
        ("crash", 0),
        ("crash", 3),
        ("gap", None),  # a fixed position runs once
        ("halt", 0),
        ("halt", 3),
        ("spike", 0),
        ("spike", 3),
        ("flip", 0),
        ("flip", 3),
        ("drought", 0),
        ("drought", 3),
    ]
    for row in report.rows:
        scenario = by_name[row.scenario]
        stressed = scenario.transform.apply(bars, seed=row.seed or 0)
        if row.scenario == "drought":
            # The default participation cap of a drought needs the event engine.
            expected = run_event(
                stressed,
                SmaCross(),
                SmaCrossParams(**PARAMS),
                commission=0.001,
                slippage=[SpreadSlippage(spread_bps=2.0), SquareRootImpact(impact_bps=50.0)],
                max_participation=0.1,
            ).metrics
        else:
            config = EQUITIES
            if row.scenario == "spike":
                config = replace(EQUITIES, slippage_bps=3.0)
            engine = "event" if row.scenario == "flip" else "vector"
            expected = run_backtest(
                stressed, "sma_cross", PARAMS, engine=engine, config=config
            ).metrics
        assert row.engine == ("event" if row.scenario in ("flip", "drought") else "vector")
        assert row.total_return == expected.total_return, row
        assert row.max_drawdown == expected.max_drawdown, row
        assert row.sharpe == expected.sharpe or (np.isnan(row.sharpe) and np.isnan(expected.sharpe))
        assert row.trades == expected.trades, row
        assert row.final_equity == expected.final_equity, row
        assert row.start == scenario.transform.start(bars.height, seed=row.seed or 0)
        assert row.start_ts == bars["ts"][row.start]
        assert row.passed is True
        assert row.reason == ""
    baseline = run_backtest(bars, "sma_cross", PARAMS, config=EQUITIES).metrics
    assert report.baseline.scenario == BASELINE
    assert report.baseline.final_equity == baseline.final_equity
    assert report.baseline.passed is None
    assert report.passed
    assert report.failing == ()


def test_the_stress_changes_the_results(bars: pl.DataFrame) -> None:
    report = run_stress(bars, "sma_cross", PARAMS, scenarios=_scenarios(), seeds=2)

    changed = [row for row in report.rows if row.final_equity != report.baseline.final_equity]
    assert {row.scenario for row in changed} >= {"crash", "gap", "spike", "flip"}


def test_a_drought_queues_orders_until_volume_returns() -> None:
    # 100 units wanted at 100; volume 0 on bars 0-2, then 10 a bar with a 10% cap:
    # one unit fills per bar from bar 3 on (hand count), none before.
    drought = Scenario(
        name="dry",
        transform=LiquidityDrought(factor=0.0, bars=3, at=0),
        thresholds=LOOSE,
    )
    bars = flat_bars(10)

    result = run_scenario(bars, HoldStrategy(), HoldParams(), scenario=drought)

    fills = result.fills
    assert fills["bar"].to_list() == [3, 4, 5, 6, 7, 8, 9]
    assert fills["quantity"].to_list() == [1.0] * 7
    undisturbed = run_event(bars, HoldStrategy(), HoldParams(), max_participation=0.1)
    assert undisturbed.fills["bar"].to_list() == list(range(1, 10))


def test_the_gate_fails_and_names_the_scenario(bars: pl.DataFrame) -> None:
    strict = Scenario(
        name="strict",
        transform=GapOpen(gap=-0.3),
        thresholds=Thresholds(max_drawdown=0.01, loss_limit=-0.0001),
    )
    loose = Scenario(name="loose", transform=GapOpen(gap=0.01, at=100), thresholds=LOOSE)

    report = run_stress(bars, "sma_cross", PARAMS, scenarios=[loose, strict], seeds=3)

    assert not report.passed
    assert report.failing == ("strict",)
    assert [row.seed for row in report.failures] == [0, 1, 2]
    for row in report.failures:
        assert row.max_drawdown > 0.01
        assert f"max_drawdown {row.max_drawdown:.2%} > 1.00%" in row.reason
        assert (row.total_return < -0.0001) == ("total_return" in row.reason)


def test_an_event_only_strategy_runs_on_the_event_engine() -> None:
    crash = Scenario(name="crash", transform=FlashCrash(drop=0.5, at=4), thresholds=LOOSE)
    bars = flat_bars(8)

    report = run_stress(bars, HoldStrategy, scenarios=[crash])

    # All in at 100 on bar 1's open; the close ends at half: -50%.
    assert report.rows[0].engine == "event"
    assert report.rows[0].total_return == pytest.approx(-0.5)
    assert report.baseline.total_return == pytest.approx(0.0)
    pinned = replace(crash, engine=EngineSettings(kind="vector"))
    with pytest.raises(ConfigError, match="needs the vectorised engine"):
        run_stress(bars, HoldStrategy, scenarios=[pinned])


class RecordingExecutor:
    """A hand-written fake: runs tasks in reverse order and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, Sequence[object]]] = []

    @property
    def parallelism(self) -> int:
        return 2

    def imap_unordered(
        self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S
    ) -> Iterator[TaskOutcome[R]]:
        self.calls.append((shared, list(items)))
        outcomes = list(LocalExecutor().imap_unordered(fn, items, shared=shared))
        yield from reversed(outcomes)

    def map(self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S) -> list[R]:
        return [fn(shared, item) for item in items]


def test_tasks_get_the_bars_once_and_small_items(bars: pl.DataFrame) -> None:
    executor = RecordingExecutor()
    scenarios = _scenarios()[:2]
    seen: list[tuple[int, int]] = []

    report = run_stress(
        bars,
        "sma_cross",
        PARAMS,
        scenarios=scenarios,
        seeds=2,
        executor=executor,
        progress=lambda done, total: seen.append((done, total)),
    )

    ((shared, items),) = executor.calls
    assert shared.bars is bars  # type: ignore[attr-defined]
    assert items == [(None, None), (scenarios[0], 0), (scenarios[0], 1), (scenarios[1], None)]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # Completion order does not change the report.
    assert report.rows == run_stress(bars, "sma_cross", PARAMS, scenarios=scenarios, seeds=2).rows


def test_report_table_and_json(bars: pl.DataFrame) -> None:
    report = run_stress(bars, "sma_cross", PARAMS, scenarios=_scenarios()[:3], seeds=2)

    table = report.table()
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))

    assert table.columns == list(ROW_COLUMNS)
    assert table.height == len(report.rows) == 5
    assert table["scenario"].to_list() == ["crash", "crash", "gap", "halt", "halt"]
    assert payload["passed"] is True
    assert payload["tasks"] == 6
    assert payload["params"] == {"fast": 5, "slow": 20, "direction": "long"}
    assert payload["rows"][2]["seed"] is None
    assert payload["rows"][0]["start_ts"].endswith("Z")
    assert payload["baseline"]["scenario"] == "baseline"
    assert isinstance(report, StressReport)
    assert report.cpu_s > 0.0


def test_runs_are_deterministic(bars: pl.DataFrame) -> None:
    first = run_stress(bars, "sma_cross", PARAMS, scenarios=_scenarios(), seeds=2)
    second = run_stress(bars, "sma_cross", PARAMS, scenarios=_scenarios(), seeds=2)

    assert first.rows == second.rows


@pytest.mark.parametrize(("seeds", "expected"), [(1, (0,)), (3, (0, 1, 2)), ([7, 2], (7, 2))])
def test_seeds(seeds: Any, expected: tuple[int, ...]) -> None:
    assert stress_seeds(seeds) == expected


@pytest.mark.parametrize("seeds", [0, -1, [], [1, 1], [-2], ["a"], "3", True])
def test_bad_seeds(seeds: Any) -> None:
    with pytest.raises(ConfigError, match="seed"):
        stress_seeds(seeds)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scenarios": []}, "non-empty sequence of Scenario"),
        ({"scenarios": ["crash"]}, "must hold Scenario objects"),
        ({"engine": "warp"}, "engine must be one of vector, event"),
        ({"executor": object()}, "executor must implement"),
    ],
)
def test_bad_arguments_fail_before_any_task(
    bars: pl.DataFrame, arguments: dict[str, Any], message: str
) -> None:
    keywords: dict[str, Any] = {"scenarios": _scenarios()[:1], **arguments}

    with pytest.raises(ConfigError, match=message):
        run_stress(bars, "sma_cross", PARAMS, **keywords)


def test_an_event_that_does_not_fit_fails_before_any_task() -> None:
    executor = RecordingExecutor()
    long_crash = Scenario(name="c", transform=FlashCrash(drop=0.2, bars=50), thresholds=LOOSE)

    with pytest.raises(ConfigError, match="flash_crash needs at least 52 bars"):
        run_stress(flat_bars(20), "sma_cross", scenarios=[long_crash], executor=executor)
    assert executor.calls == []


def test_duplicate_names_and_bad_frames_are_refused(bars: pl.DataFrame) -> None:
    crash = _scenarios()[0]

    with pytest.raises(ConfigError, match="two scenarios are named 'crash'"):
        run_stress(bars, "sma_cross", scenarios=[crash, crash])
    with pytest.raises(ConfigError, match="polars DataFrame"):
        run_stress(bars.to_dict(), "sma_cross", scenarios=[crash])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scenario must be a Scenario"):
        run_scenario(bars, "sma_cross", scenario=crash.transform)  # type: ignore[arg-type]
