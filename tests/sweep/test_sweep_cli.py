"""``tradepulse sweep``: JSON and table output, one-line errors, resumption after ``kill -9``."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.cli.sweep import ALLOCATOR_ENV, RANK_METRICS, tune_worker_allocator
from tradepulse.data import load_bars, synthesize_bars
from tradepulse.sweep import MANIFEST_NAME, METRIC_COLUMNS, run_sweep

runner = CliRunner()
GRID = ["--grid", "fast=5:20:5", "--grid", "slow=10:40:10"]


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not valid JSON: {constant}")

    payload: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return payload


def _sweep(*arguments: str) -> Any:
    return runner.invoke(app, ["sweep", *arguments])


def test_rank_metrics_are_the_result_metrics() -> None:
    assert RANK_METRICS == METRIC_COLUMNS


def test_json_summary_and_rows_equal_single_backtest_commands(
    sp500_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"

    result = _sweep(
        str(sp500_path), "--strategy", "sma_cross", *GRID, "--commission", "0.001",
        "--local", "--out", str(out), "--json", "--top", "3", "--team", "research",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    # fast in 5..20 and slow in 10..40 (4 x 4): fast < slow holds for 4 + 3 + 3 + 2 = 12.
    assert (payload["combos"], payload["skipped"]) == (12, 4)
    assert payload["evaluated"] == 12
    assert payload["grid"] == {"fast": [5, 10, 15, 20], "slow": [10, 20, 30, 40]}
    assert payload["elapsed_s"] > 0.0
    assert payload["combos_per_s"] == pytest.approx(12 / payload["elapsed_s"], rel=1e-3)
    assert payload["peak_rss_mb"] > 100.0
    assert payload["startup_s"] >= 0.0
    assert payload["cost"]["team"] == "research"
    assert payload["cost"]["strategy"] == "sma_cross"
    assert payload["cost"]["tasks"] == payload["batches"]
    assert payload["frictions"]["commission_rate"] == 0.001
    assert payload["executor"] == "LocalExecutor()"
    top = payload["top"]
    assert len(top) == 3
    sharpe = [row["sharpe"] for row in top]
    assert sharpe == sorted(sharpe, reverse=True)
    rows = pl.read_parquet(out / "part-*.parquet").sort("combo_id")
    assert rows.height == 12
    assert max(rows["sharpe"].to_list()) == sharpe[0]
    # Each row equals `tradepulse backtest` of its combination (its own JSON).
    for row in (top[0], rows.row(0, named=True), rows.row(11, named=True)):
        single = runner.invoke(
            app,
            [
                "backtest", str(sp500_path), "--strategy", "sma_cross", "--commission", "0.001",
                "--param", f"fast={row['fast']}", "--param", f"slow={row['slow']}", "--json",
            ],
        )  # fmt: skip
        assert single.exit_code == 0, single.output
        expected = _strict_json(single.stdout)
        for name in METRIC_COLUMNS:
            want, got = expected[name], row[name]
            if want is None:
                assert got is None or math.isnan(got)
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name


def test_ray_executor_gives_the_local_rows(
    ray_session: object, sp500_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ALLOCATOR_ENV:
        monkeypatch.delenv(key, raising=False)  # restored after the test
    arguments = [str(sp500_path), "--strategy", "sma_cross", *GRID, "--json"]

    on_ray = _sweep(*arguments, "--out", str(tmp_path / "ray"), "--team", "quant")
    local = _sweep(*arguments, "--out", str(tmp_path / "local"), "--local")

    assert on_ray.exit_code == 0, on_ray.output
    payload = _strict_json(on_ray.stdout)
    assert payload["executor"].startswith("RayExecutor(")
    assert payload["cost"]["team"] == "quant"
    assert payload["top"] == _strict_json(local.stdout)["top"]
    ray_rows = pl.read_parquet(tmp_path / "ray" / "part-*.parquet").sort("combo_id")
    local_rows = pl.read_parquet(tmp_path / "local" / "part-*.parquet").sort("combo_id")
    assert ray_rows.equals(local_rows)
    # The allocator settings reach the processes a local cluster would start.
    assert {key: os.environ[key] for key in ALLOCATOR_ENV} == ALLOCATOR_ENV


def test_allocator_settings_never_override_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "123")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)

    tune_worker_allocator()

    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "123"
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(64 * 1024 * 1024)


def test_table_names_the_best_combinations(sp500_path: Path, tmp_path: Path) -> None:
    result = _sweep(
        str(sp500_path), "--strategy", "sma_cross", *GRID, "--local",
        "--out", str(tmp_path / "sweep"), "--top", "2", "--by", "max_drawdown",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "sma_cross sweep on sp500_daily.csv: top 2" in result.stdout
    assert "ranked by max_drawdown" in result.stdout
    assert "12 combinations (4 skipped by constraints, 0 already on disk)" in result.stdout
    assert "combos/s" in result.stdout


def test_resume_reports_what_was_on_disk(sp500_path: Path, tmp_path: Path) -> None:
    arguments = [str(sp500_path), "--strategy", "sma_cross", *GRID, "--local"]
    arguments += ["--out", str(tmp_path / "sweep"), "--json"]
    assert _sweep(*arguments).exit_code == 0

    again = _sweep(*arguments)
    resumed = _sweep(*arguments, "--resume")

    assert again.exit_code == 1
    assert "is not empty" in again.output
    assert "--resume" in again.output
    assert resumed.exit_code == 0, resumed.output
    payload = _strict_json(resumed.stdout)
    assert (payload["resumed"], payload["evaluated"]) == (12, 0)


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--grid", "fst=5:20:5"], 1, "grid names unknown parameter 'fst'"),
        (["--grid", "fast=5:20"], 2, "--grid must look like name=start:stop:step"),
        (["--grid", "fast=20:5:5"], 2, "start must be <= stop"),
        (["--values", "fast=5,,6"], 2, "empty value"),
        (["--grid", "fast=5:20:5", "--values", "fast=3"], 2, "given twice"),
        (["--grid", "fast=0:5:1"], 1, "parameter 'fast' must be >= 1"),
        (["--param", "fast"], 1, "must look like name=value"),
        (["--by", "combo_id"], 2, "--by must be one of"),
        (["--top", "0"], 2, "--top must be >= 1"),
        (["--random", "0"], 2, "--random must be >= 1"),
        (["--seed", "-1"], 2, "--seed must be >= 0"),
        (["--batch-size", "0"], 2, "--batch-size must be >= 1"),
        (["--sizing", "lots"], 2, "--sizing must be one of"),
        (["--address", "127.0.0.1:1"], 2, "--local runs without Ray"),
        (["--team", " "], 2, "--team must not be empty"),
        (["--config", "missing.yaml"], 1, "cannot read friction config"),
    ],
)
def test_bad_options_fail_in_one_line(
    sp500_path: Path, tmp_path: Path, arguments: list[str], code: int, message: str
) -> None:
    result = _sweep(
        str(sp500_path), "--strategy", "sma_cross", "--local", "--out", str(tmp_path / "o"),
        *arguments,
    )  # fmt: skip

    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2  # one message (wrapped at most once)


def test_unknown_strategy_and_missing_data(sp500_path: Path, tmp_path: Path) -> None:
    unknown = _sweep(str(sp500_path), "--strategy", "nope", "--local", "--out", str(tmp_path))
    missing = _sweep("missing.csv", "--strategy", "sma_cross", "--local", "--out", str(tmp_path))

    assert unknown.exit_code == 1
    assert "unknown strategy 'nope'" in unknown.output
    assert missing.exit_code == 1
    assert "missing.csv: no such file" in missing.output


def test_kill_9_then_resume_gives_the_uninterrupted_rows(tmp_path: Path) -> None:
    data = tmp_path / "bars.parquet"
    synthesize_bars(bars=1_000_000, seed=5).write_parquet(data)
    out = tmp_path / "sweep"
    grid = {"fast": [5, 10, 15, 20, 25], "slow": [30, 40, 50, 60, 70, 80, 90, 100]}
    options = ["--grid", "fast=5:25:5", "--grid", "slow=30:100:10", "--commission", "0.001"]
    options += ["--local", "--batch-size", "2", "--out", str(out)]
    command = [sys.executable, "-m", "tradepulse", "sweep", str(data), "--strategy", "sma_cross"]
    # 40 combinations in 20 batches of 2 (each ~20 ms on a million bars).
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("part-*.parquet"))) < 3:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    written = len(list(out.glob("part-*.parquet")))
    assert 3 <= written < 20
    assert json.loads((out / MANIFEST_NAME).read_text())["status"] == "running"

    resumed = _sweep(str(data), "--strategy", "sma_cross", *options, "--resume", "--json")

    assert resumed.exit_code == 0, resumed.output
    payload = _strict_json(resumed.stdout)
    assert payload["combos"] == 40
    assert payload["resumed"] == 2 * written
    assert payload["evaluated"] == 40 - 2 * written
    rows = pl.read_parquet(out / "part-*.parquet").sort("combo_id")
    reference = run_sweep(load_bars(data), "sma_cross", grid, commission=0.001).results()
    assert rows.equals(reference)
    assert json.loads((out / MANIFEST_NAME).read_text())["status"] == "complete"
