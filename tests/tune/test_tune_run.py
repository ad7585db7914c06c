"""Real Tune runs on the session's Ray cluster: rows, early stopping, exact objectives.

Each trial's fold scores and final objective are recomputed here without Tune
(the strategy's signals on each fold's history, one backtest per test window,
and ``walk_forward`` for the stitched out-of-sample run) and must agree to 1e-9.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.backtest import walk_forward, walk_forward_windows
from tradepulse.backtest.config import FrictionConfig
from tradepulse.backtest.vector import run_vectorised
from tradepulse.cli import app
from tradepulse.cluster.tune import (
    STATUSES,
    TRIAL_COLUMNS,
    TRIALS_FILE,
    TuneResult,
    load_tune_spec,
    run_tune,
)
from tradepulse.costs.commission import CommissionTerms
from tradepulse.data import load_bars
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

pytestmark = pytest.mark.usefixtures("ray_session")

BARS = 1512  # six years of the shipped daily bars
TRAIN, TEST = 252, 126  # ten folds
FRICTIONS = FrictionConfig(
    name="test", commission=CommissionTerms(rate=0.001), spread_bps=2.0, sizing="fractional"
)
CASH = 20_000.0

SPEC = """\
name: {name}
data: {data}
strategy: sma_cross
space:
  fast: {{kind: randint, low: 5, high: 60}}
  slow: {{kind: quantized, low: 20, high: 120, step: 10}}
params: {{direction: long}}
frictions: {{commission: {{rate: 0.001}}, spread_bps: 2.0, sizing: fractional}}
cash: 20000
objective: {{metric: total_return, mode: max}}
search: {{algorithm: {algorithm}, num_samples: {samples}, max_concurrent: 2, seed: 5}}
scheduler: {scheduler}
walk_forward: {{train_bars: 252, test_bars: 126, anchored: {anchored}, score: {score}}}
"""


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("tune-data") / "sp500_head.csv"
    load_bars(sample_dir / "sp500_daily.csv").head(BARS).write_csv(path)
    return path


@pytest.fixture(scope="module")
def bars(bars_file: Path) -> pl.DataFrame:
    return load_bars(bars_file)


def _spec(directory: Path, data: Path, **values: Any) -> Path:
    settings = {
        "name": "asha",
        "data": data,
        "algorithm": "random",
        "samples": 16,
        "scheduler": "{kind: asha, grace_period: 1, reduction_factor: 4}",
        "anchored": "false",
        "score": "mean",
    }
    settings.update(values)
    path = directory / f"{settings['name']}.yaml"
    path.write_text(textwrap.dedent(SPEC.format(**settings)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory: pytest.TempPathFactory, bars_file: Path) -> TuneResult:
    """A random search, rolling windows, mean score, ASHA keeping only the top quarter."""
    folder = tmp_path_factory.mktemp("tune-asha")
    spec = load_tune_spec(_spec(folder, bars_file))
    return run_tune(spec, out=folder / "out")


def _fold_targets(bars: pl.DataFrame, params: SmaCrossParams, *, anchored: bool) -> list[Any]:
    """Each fold's test-window targets from the signals of the fold's own history."""
    strategy = SmaCross()
    pieces = []
    for window in walk_forward_windows(
        bars.height, train_bars=TRAIN, test_bars=TEST, anchored=anchored
    ):
        history = bars.slice(window.train_start, window.test_end - window.train_start)
        signals = strategy.signals(history, params)
        pieces.append((window, signals[window.test_start - window.train_start :]))
    return pieces


def _run(bars: pl.DataFrame, targets: Any) -> float:
    result = run_vectorised(bars, targets, cash=CASH, **FRICTIONS.engine_arguments())
    return float(result.metrics.total_return)


def _params(row: dict[str, Any]) -> SmaCrossParams:
    return SmaCrossParams(fast=row["fast"], slow=row["slow"], direction=row["direction"])


def test_results_have_one_row_per_trial(asha_run: TuneResult) -> None:
    frame = pl.read_parquet(asha_run.path or "")

    assert frame.equals(asha_run.trials)
    assert frame.height == 16
    assert frame.get_column("trial").to_list() == list(range(16))
    assert frame.get_column("trial_id").n_unique() == 16
    assert set(TRIAL_COLUMNS) | {"fast", "slow", "direction"} == set(frame.columns)
    assert set(frame.get_column("status")) <= set(STATUSES)
    assert frame.get_column("direction").to_list() == ["long"] * 16


def test_sampled_values_stay_in_the_space(asha_run: TuneResult) -> None:
    frame = asha_run.trials

    fast = frame.get_column("fast").to_numpy()
    slow = frame.get_column("slow").to_numpy()

    assert ((fast >= 5) & (fast <= 60)).all()
    assert ((slow >= 20) & (slow <= 120) & (slow % 10 == 0)).all()


def test_statuses_follow_the_folds_run(asha_run: TuneResult) -> None:
    for row in asha_run.trials.iter_rows(named=True):
        status = row["status"]
        assert row["stopped_early"] == (status == "stopped")
        assert row["folds_done"] == len(row["fold_objectives"])
        if status == "invalid":  # sma_cross needs fast < slow
            assert row["fast"] >= row["slow"]
            assert row["folds_done"] == 0
            assert "fast" in row["error"]
        else:
            assert row["fast"] < row["slow"]
        if status == "completed":
            assert row["folds_done"] == asha_run.folds == 10
            assert row["objective"] is not None
        else:
            assert row["objective"] is None
        if status == "stopped":
            assert 1 <= row["folds_done"] < 10


def test_aggressive_asha_stops_trials_early(asha_run: TuneResult) -> None:
    summary = asha_run.summary()

    assert summary["stopped_early"] >= 1
    assert summary["completed"] >= 1
    assert summary["trials"] == 16
    assert (
        summary["completed"] + summary["stopped_early"] + summary["invalid"] + summary["errors"]
        == 16
    )
    assert summary["errors"] == 0


def test_fold_scores_and_the_mean_equal_direct_backtests(
    asha_run: TuneResult, bars: pl.DataFrame
) -> None:
    checked = 0
    for row in asha_run.trials.iter_rows(named=True):
        if row["status"] not in ("completed", "stopped"):
            continue
        pieces = _fold_targets(bars, _params(row), anchored=False)
        expected = [
            _run(bars.slice(window.test_start, window.test_end - window.test_start), targets)
            for window, targets in pieces
        ]
        np.testing.assert_allclose(
            row["fold_objectives"], expected[: row["folds_done"]], rtol=0, atol=1e-9
        )
        if row["status"] == "completed":
            assert row["objective"] == pytest.approx(float(np.mean(expected)), abs=1e-9)
            checked += 1
    assert checked >= 1


def test_best_trial_is_the_best_completed_objective(asha_run: TuneResult) -> None:
    completed = asha_run.trials.filter(pl.col("status") == "completed")
    best = completed.sort(["objective", "trial"], descending=[True, False]).row(0, named=True)

    assert asha_run.best_trial == best["trial"]
    assert asha_run.best_objective == best["objective"]
    assert asha_run.best_params == {"fast": best["fast"], "slow": best["slow"], "direction": "long"}


def test_the_same_seed_draws_the_same_combinations_and_stitched_scores_are_exact(
    asha_run: TuneResult, tmp_path: Path, bars: pl.DataFrame
) -> None:
    # Same seed and space as asha_run, no scheduler, the stitched score, and
    # the bars passed in directly (the spec's data file is never read).
    spec = load_tune_spec(
        _spec(tmp_path, Path("unused.csv"), samples=4, scheduler="null", score="stitched")
    )

    again = run_tune(spec, bars=bars)

    columns = ["fast", "slow"]
    assert again.path is None
    assert again.trials.select(columns).equals(asha_run.trials.head(4).select(columns))
    assert set(again.trials.get_column("status")) <= {"completed", "invalid"}
    completed = again.trials.filter(pl.col("status") == "completed")
    assert completed.height >= 1
    for row in completed.iter_rows(named=True):
        pieces = _fold_targets(bars, _params(row), anchored=False)
        stitched = np.concatenate([targets for _, targets in pieces])
        first = pieces[0][0].test_start
        assert not math.isnan(row["objective"])
        assert row["objective"] == pytest.approx(_run(bars.slice(first), stitched), abs=1e-9)


def test_the_cli_runs_a_bayesian_search_whose_objective_is_a_walk_forward(
    tmp_path: Path, bars_file: Path, bars: pl.DataFrame
) -> None:
    spec_path = _spec(
        tmp_path,
        Path("nowhere.csv"),
        name="bayes",
        algorithm="bayesian",
        samples=6,
        scheduler="null",
        anchored="true",
        score="stitched",
    )
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app,
        ["tune", "--spec", str(spec_path), "--data", str(bars_file), "--out", str(out), "--json"],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["trials"] == 6
    assert summary["algorithm"] == "bayesian"
    assert summary["stopped_early"] == 0
    assert summary["elapsed_s"] > 0
    frame = pl.read_parquet(out / TRIALS_FILE)
    assert frame.height == 6
    assert json.loads((out / "summary.json").read_text()) == summary
    completed = frame.filter(pl.col("status") == "completed")
    assert completed.height >= 1
    for row in completed.iter_rows(named=True):
        # A one-point grid: walk_forward picks these parameters on every fold
        # (total_return is never NaN) and stitches their test windows.
        direct = walk_forward(
            bars,
            "sma_cross",
            train_bars=TRAIN,
            test_bars=TEST,
            anchored=True,
            grid={"fast": [row["fast"]], "slow": [row["slow"]]},
            params={"direction": "long"},
            objective="total_return",
            config=FRICTIONS,
            cash=CASH,
        )
        assert row["objective"] == pytest.approx(direct.oos.metrics.total_return, abs=1e-9)
    best = completed.sort("objective", descending=True).row(0, named=True)
    assert summary["best_objective"] == pytest.approx(best["objective"], abs=0)
    assert summary["best_params"] == {
        "fast": best["fast"],
        "slow": best["slow"],
        "direction": "long",
    }


def test_the_table_lists_the_best_completed_trials_first(asha_run: TuneResult) -> None:
    from rich.console import Console

    from tradepulse.cli.tune import tune_table

    completed = asha_run.trials.filter(pl.col("status") == "completed")
    best = completed.sort("objective", descending=True).row(0, named=True)

    table = tune_table(asha_run, top=1)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()

    assert table.row_count == 1
    assert f"{best['objective']:.4g}" in text
    assert tune_table(asha_run, top=100).row_count == completed.height
