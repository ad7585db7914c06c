"""``run_sweep`` / ``tradepulse.sweep``: rows equal single backtests, streaming, resumption."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

import tradepulse
from tradepulse.backtest import load_friction_config, run_backtest
from tradepulse.backtest.runner import resolve_frictions
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.executor import Executor, LocalExecutor, TaskOutcome, TaskStats
from tradepulse.strategy import Bar, Params, Strategy, StrategyContext, StrategyError, param
from tradepulse.strategy.builtins.sma_cross import SmaCross
from tradepulse.sweep import (
    MANIFEST_NAME,
    MAX_BATCH_SIZE,
    METADATA_KEY,
    METRIC_COLUMNS,
    MIN_BATCH_SIZE,
    SweepData,
    choose_batch_size,
    rank,
    resolve_grid,
    run_sweep,
)

GRID = {"fast": [5, 10, 20, 50], "slow": [20, 30, 100, 200], "direction": ["long", "long_short"]}
REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_row_matches(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Every metric of ``row`` equals the single backtest's, to 1e-9 (NaN matches NaN)."""
    for name in METRIC_COLUMNS:
        got, want = row[name], metrics[name]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), name
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (name, row)


def test_rows_equal_single_backtests(executor: Executor, sp500: pl.DataFrame) -> None:
    config = load_friction_config(REPO_ROOT / "backtest" / "configs" / "equities.yaml")

    result = run_sweep(sp500, "sma_cross", GRID, config=config, cash=25_000.0, executor=executor)
    rows = result.results()

    # 32 grid points; fast >= slow for (20, 20), (50, 20), (50, 30), twice each.
    assert (result.combos, result.skipped) == (26, 6)
    assert rows.height == 26
    assert rows["combo_id"].to_list() == sorted(rows["combo_id"].to_list())
    assert rows.columns == ["combo_id", "fast", "slow", "direction", *METRIC_COLUMNS]
    assert rows.schema["trades"] == pl.Int64
    for row in rows.iter_rows(named=True):
        params = {"fast": row["fast"], "slow": row["slow"], "direction": row["direction"]}
        single = run_backtest(sp500, "sma_cross", params, config=config, cash=25_000.0)
        assert_row_matches(row, single.metrics.to_dict())
    assert result.evaluated == 26
    assert result.resumed == 0
    assert result.cost.tasks == result.batches
    assert result.cost.cpu_s > 0.0
    assert result.elapsed_s > 0.0
    assert result.peak_rss_mb > 50.0


def test_minute_bar_rows_equal_single_backtests(minute_bars: pl.DataFrame) -> None:
    grid = {"fast": [3, 8], "slow": [13, 21, 34]}

    rows = tradepulse.sweep(minute_bars, "sma_cross", grid, commission=0.001, cash=5_000.0)

    assert rows.height == 6
    for row in rows.iter_rows(named=True):
        single = run_backtest(
            minute_bars,
            "sma_cross",
            {"fast": row["fast"], "slow": row["slow"]},
            commission=0.001,
            cash=5_000.0,
        )
        assert_row_matches(row, single.metrics.to_dict())
        assert single.metrics.trades > 50  # the minute data really trades


def test_random_rows_are_a_subset_of_the_full_grid(sp500: pl.DataFrame) -> None:
    grid = {"fast": list(range(5, 40, 5)), "slow": list(range(10, 80, 10))}
    full = run_sweep(sp500, "sma_cross", grid).results()

    drawn = run_sweep(sp500, "sma_cross", grid, random=12, seed=4)
    rows = drawn.results()

    assert drawn.combos + drawn.skipped == 12
    assert rows.height == drawn.combos
    expected = full.filter(pl.col("combo_id").is_in(rows["combo_id"].implode()))
    assert rows.equals(expected)
    assert run_sweep(sp500, "sma_cross", grid, random=12, seed=4).results().equals(rows)


def test_fixed_params_and_name_clashes_are_columns(sp500: pl.DataFrame) -> None:
    rows = tradepulse.sweep(sp500, SmaCross, {"slow": [30, 60]}, params={"fast": "7"})

    assert rows["fast"].to_list() == [7, 7]
    assert rows["direction"].to_list() == ["long", "long"]


def _part_descriptions(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(pl.read_parquet_metadata(path)[METADATA_KEY])
        for path in sorted(folder.glob("part-*.parquet"))
    ]


def test_rows_stream_into_parts_with_their_cost(
    executor: Executor, sp500: pl.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"

    result = run_sweep(
        sp500, "sma_cross", GRID, commission=0.001, executor=executor, out=out, team="quant"
    )

    in_memory = run_sweep(sp500, "sma_cross", GRID, commission=0.001).results()
    assert result.results().equals(in_memory)
    descriptions = _part_descriptions(out)
    assert len(descriptions) == result.batches == math.ceil(26 / result.batch_size)
    assert sorted(item["batch"] for item in descriptions) == list(range(result.batches))
    assert sum(item["rows"] for item in descriptions) == 26
    for item in descriptions:
        assert item["strategy"] == "sma_cross"
        assert item["team"] == "quant"
        assert item["cpu_s"] >= 0.0
        assert item["wall_s"] > 0.0
        assert item["peak_rss_mb"] > 50.0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete"
    assert manifest["definition"]["strategy"] == "sma_cross"
    assert manifest["definition"]["grid"] == GRID
    assert manifest["definition"]["frictions"]["commission"]["rate"] == 0.001
    totals = manifest["totals"]
    assert totals == result.cost.to_dict()
    assert totals["team"] == "quant"
    assert totals["tasks"] == len(descriptions)
    assert totals["cpu_s"] == pytest.approx(sum(item["cpu_s"] for item in descriptions))
    assert totals["wall_s"] == pytest.approx(sum(item["wall_s"] for item in descriptions))
    assert totals["max_peak_rss_mb"] == max(item["peak_rss_mb"] for item in descriptions)
    assert manifest["summary"]["combos"] == 26


class InterruptError(Exception):
    """Stands in for Ctrl-C (a KeyboardInterrupt would also stop pytest)."""


def _interrupt_after(rows: int) -> Any:
    def progress(done: int, total: int) -> None:
        if done >= rows:
            raise InterruptError

    return progress


def test_resume_finishes_with_exactly_the_uninterrupted_rows(
    executor: Executor, sp500: pl.DataFrame, tmp_path: Path
) -> None:
    grid = {"fast": list(range(5, 50, 5)), "slow": list(range(20, 120, 10))}
    combos = sum(1 for fast in grid["fast"] for slow in grid["slow"] if fast < slow)
    batches = math.ceil(combos / 4)
    reference = run_sweep(sp500, "sma_cross", grid, batch_size=4).results()
    out = tmp_path / "sweep"
    with pytest.raises(InterruptError):
        run_sweep(
            sp500,
            "sma_cross",
            grid,
            batch_size=4,
            executor=executor,
            out=out,
            progress=_interrupt_after(12),
        )
    parts = sorted(out.glob("part-*.parquet"))
    assert 3 <= len(parts) < batches  # some batches written, not all
    kept = sum(pl.read_parquet(path).height for path in parts[1:])
    # What an interruption can leave behind: a half-written temporary and a torn part.
    (out / f".part-{batches - 1:06d}.parquet.123.tmp").write_bytes(b"partial")
    parts[0].write_bytes(parts[0].read_bytes()[:100])

    resumed = run_sweep(
        sp500, "sma_cross", grid, executor=executor, out=out, resume=True, team="quant"
    )

    assert resumed.batch_size == 4  # the stored plan, whatever the executor
    assert resumed.combos == combos == reference.height
    assert resumed.resumed == kept
    assert resumed.evaluated == combos - kept
    assert resumed.results().equals(reference)
    assert not list(out.glob(".*.tmp"))
    assert len(list(out.glob("part-*.parquet"))) == batches
    again = run_sweep(sp500, "sma_cross", grid, out=out, resume=True)
    assert again.evaluated == 0
    assert again.results().equals(reference)


def test_resume_refuses_another_sweep(sp500: pl.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    grid = {"fast": [5, 10], "slow": [20, 30]}
    run_sweep(sp500, "sma_cross", grid, out=out, batch_size=2)

    with pytest.raises(
        ConfigError, match=r"is not empty \(3 entries\); resume the sweep in it \(--resume"
    ):
        run_sweep(sp500, "sma_cross", grid, out=out)
    with pytest.raises(ConfigError, match=r"different sweep \(differs in: frictions\)"):
        run_sweep(sp500, "sma_cross", grid, out=out, resume=True, commission=0.001)
    with pytest.raises(ConfigError, match=r"differs in: grid\)"):
        run_sweep(sp500, "sma_cross", {"fast": [5], "slow": [20]}, out=out, resume=True)
    with pytest.raises(ConfigError, match=r"differs in: bars, data_sha256"):
        run_sweep(sp500.head(4000), "sma_cross", grid, out=out, resume=True)
    with pytest.raises(ConfigError, match="batch plan differs"):
        run_sweep(sp500, "sma_cross", grid, out=out, resume=True, batch_size=3)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds no manifest\.json"):
        run_sweep(sp500, "sma_cross", grid, out=stranger, resume=True)
    with pytest.raises(ConfigError, match="not a folder"):
        run_sweep(sp500, "sma_cross", grid, out=stranger / "notes.txt")
    (stranger / MANIFEST_NAME).write_text("{}")
    with pytest.raises(ConfigError, match="not a TradePulse sweep manifest"):
        run_sweep(sp500, "sma_cross", grid, out=stranger, resume=True)
    # An empty (or absent) folder starts a new sweep, with or without resume.
    fresh = run_sweep(sp500, "sma_cross", grid, out=tmp_path / "new", resume=True)
    assert fresh.evaluated == 4  # every pair has fast < slow


@dataclass(frozen=True, slots=True)
class LevelParams(Params):
    level: float = param(0.5, low=-1.0, high=1.0)


class Misbehaving(Strategy[LevelParams]):
    """A plugin whose signals_many repeats or drops a parameter set."""

    name = "misbehaving"
    api_version = "1.0"
    params_type = LevelParams
    mode = "repeat"

    def handle_tick(self, ctx: StrategyContext[LevelParams], bar: Bar) -> None:
        """Unused here."""

    def signals(self, bars: pl.DataFrame, params: LevelParams) -> NDArray[np.float64]:
        return np.full(bars.height, params.level)

    def signals_many(
        self, bars: pl.DataFrame, params_list: Sequence[LevelParams]
    ) -> Iterator[tuple[int, NDArray[np.float64]]]:
        if self.mode == "repeat":
            yield 0, self.signals(bars, params_list[0])
            yield 0, self.signals(bars, params_list[0])
        elif self.mode == "drop":
            yield 0, self.signals(bars, params_list[0])
        elif self.mode == "outside":
            yield len(params_list), self.signals(bars, params_list[0])
        else:
            yield 0, np.full(bars.height, np.nan)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("repeat", "yielded position 0 twice"),
        ("drop", "yielded no targets for position 1"),
        ("outside", r"yielded position \d; expected 0\.\.\d"),
        ("nan", "non-finite target"),
    ],
)
def test_misbehaving_strategies_are_named(sp500: pl.DataFrame, mode: str, message: str) -> None:
    strategy = Misbehaving()
    strategy.mode = mode

    with pytest.raises(StrategyError, match=message):
        run_sweep(sp500, strategy, {"level": [0.5, 1.0]}, batch_size=2)


class EventOnly(Strategy[LevelParams]):
    name = "event_only"
    api_version = "1.0"
    params_type = LevelParams

    def handle_tick(self, ctx: StrategyContext[LevelParams], bar: Bar) -> None:
        """Unused here."""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bars": "bars.csv"}, "bars must be a polars DataFrame"),
        ({"bars": pl.DataFrame({"ts": []})}, "at least one bar"),
        ({"bars": pl.DataFrame({"ts": [1, 2], "close": [1.0, 2.0]})}, "'ts' must be a datetime"),
        ({"bars": pl.DataFrame({"close": [1.0, 2.0]})}, "must have a 'ts' column"),
        ({"strategy": EventOnly()}, "no vectorised signals"),
        ({"grid": {"fast": [50], "slow": [20]}}, r"no combination .* \(1 tried\)"),
        ({"team": " "}, "team must be a non-empty string"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"executor": "ray"}, "executor must implement"),
        ({"commission": 2.0}, "commission"),
    ],
)
def test_bad_arguments_fail_before_any_task(
    sp500: pl.DataFrame, arguments: dict[str, Any], message: str
) -> None:
    call: dict[str, Any] = {"bars": sp500, "strategy": "sma_cross", "grid": {"fast": [5]}}
    call.update(arguments)

    with pytest.raises(ConfigError, match=message):
        run_sweep(call.pop("bars"), call.pop("strategy"), call.pop("grid"), **call)


def test_several_symbols_are_refused(sp500: pl.DataFrame) -> None:
    two = pl.concat(
        [sp500.head(50).with_columns(symbol=pl.lit(name)) for name in ("A", "B")],
    )

    with pytest.raises(ConfigError, match="one symbol"):
        run_sweep(two, "sma_cross", {"fast": [5]})


class WrongRows:
    """An executor whose tasks send back rows for other combinations."""

    parallelism = 1

    def imap_unordered(self, fn: Any, items: Sequence[Any], *, shared: Any) -> Iterator[Any]:
        stats = TaskStats(cpu_s=0.0, wall_s=0.0, peak_rss_mb=0.0, pid=0, node="fake")
        for index, item in enumerate(items):
            rows = fn(shared, item)
            yield TaskOutcome(index, rows.head(1) if item.batch >= 0 else rows, stats)

    def map(self, fn: Any, items: Sequence[Any], *, shared: Any) -> list[Any]:
        return [fn(shared, item) for item in items]


def test_malformed_task_results_are_refused(sp500: pl.DataFrame) -> None:
    with pytest.raises(TradePulseError, match="returned rows for other combinations"):
        run_sweep(sp500, "sma_cross", {"fast": [5, 10], "slow": [20]}, executor=WrongRows())


def test_rank_puts_nan_last_and_minimises_drawdown() -> None:
    rows = pl.DataFrame(
        {
            "combo_id": [0, 1, 2, 3],
            "sharpe": [0.5, math.nan, 1.5, 0.5],
            "max_drawdown": [0.2, 0.1, 0.3, math.nan],
        }
    )

    assert rank(rows, by="sharpe")["combo_id"].to_list() == [2, 0, 3, 1]
    assert rank(rows, by="max_drawdown", top=2)["combo_id"].to_list() == [1, 0]
    with pytest.raises(ConfigError, match="rank by must be one of"):
        rank(rows, by="combo_id")
    with pytest.raises(ConfigError, match="top must be an integer >= 1"):
        rank(rows, top=0)


def test_top_and_summary(sp500: pl.DataFrame) -> None:
    result = run_sweep(sp500, "sma_cross", GRID)

    best = result.top(3, by="total_return")
    rows = result.results()

    assert best["total_return"].to_list() == sorted(rows["total_return"].to_list())[::-1][:3]
    summary = result.summary()
    assert summary["combos"] == 26
    assert summary["skipped"] == 6
    assert summary["combos_per_s"] == pytest.approx(26 / result.elapsed_s, rel=1e-3)
    assert summary["out"] is None
    assert summary["executor"] == "LocalExecutor()"
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize(
    ("combos", "parallelism", "expected"),
    [
        (499, 2, 32),  # 16 batches: 8 per worker
        (499, 1, 63),
        (10, 2, MIN_BATCH_SIZE),
        (10**7, 64, MAX_BATCH_SIZE),
        (0, 0, MIN_BATCH_SIZE),
    ],
)
def test_batch_sizes(combos: int, parallelism: int, expected: int) -> None:
    assert choose_batch_size(combos, parallelism) == expected


def test_top_level_function_and_package_are_one(tmp_path: Path) -> None:
    # Fresh interpreter: `tradepulse.sweep` is the light function until the package
    # loads; importing the package must not hide the function (it becomes callable).
    script = textwrap.dedent(
        """
        import sys
        import tradepulse
        assert "tradepulse.sweep" not in sys.modules and "numba" not in sys.modules
        from tradepulse.data import load_bars
        bars = load_bars(sys.argv[1]).head(300)
        first = tradepulse.sweep(bars, "sma_cross", {"fast": [5], "slow": [20, 30]})
        import tradepulse.sweep as package
        assert package.run_sweep is not None
        second = tradepulse.sweep(bars, "sma_cross", {"fast": [5], "slow": [20, 30]})
        assert first.equals(second) and first.height == 2
        print("OK")
        """
    )

    completed = subprocess.run(
        [sys.executable, "-c", script, str(REPO_ROOT / "golden" / "data" / "sp500_daily.csv")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "OK"


def test_local_executor_is_the_default(sp500: pl.DataFrame) -> None:
    result = run_sweep(sp500, "sma_cross", {"fast": [5], "slow": [20]}, executor=LocalExecutor())

    assert result.executor == "LocalExecutor()"
    assert result.batches == 1


def test_a_worker_killed_mid_sweep_changes_no_row(
    ray_session: object, sp500: pl.DataFrame, tmp_path: Path
) -> None:
    import sweep_fakes

    from tradepulse.cluster import RayExecutor

    marker = tmp_path / "killed"
    grid = {"fast": [5, 10, 20], "slow": [30, 60, 90]}

    result = run_sweep(
        sp500,
        sweep_fakes.KillOnce(),
        grid,
        params={"marker": str(marker)},
        commission=0.001,
        executor=RayExecutor(),
        batch_size=3,
    )

    assert marker.exists()  # a worker did die mid-sweep
    rows = result.results().drop("marker")
    reference = run_sweep(sp500, "sma_cross", grid, commission=0.001).results()
    assert rows.equals(reference)


def test_other_time_units_and_zones_give_the_same_rows(sp500: pl.DataFrame) -> None:
    grid = {"fast": [5, 20], "slow": [50]}
    expected = tradepulse.sweep(sp500, "sma_cross", grid, commission=0.001)
    micro = sp500.with_columns(
        pl.col("ts").dt.cast_time_unit("us").dt.convert_time_zone("Asia/Tokyo")
    )

    rows = tradepulse.sweep(micro, "sma_cross", grid, commission=0.001)

    assert rows.equals(expected)
    single = run_backtest(micro, "sma_cross", {"fast": 20, "slow": 50}, commission=0.001)
    assert_row_matches(rows.row(1, named=True), single.metrics.to_dict())
    with pytest.raises(ConfigError, match="'ts' must be a datetime"):
        SweepData.from_bars(
            pl.DataFrame({"ts": [1, 2], "close": [1.0, 2.0]}),
            strategy=SmaCross(),
            grid=resolve_grid(SmaCross(), grid),
            frictions=resolve_frictions(
                None,
                cash=1.0,
                commission=None,
                slippage=None,
                sizing=None,
                latency_bars=None,
                periods_per_year=None,
            ),
        )
