"""``tradepulse tune`` fails with one line and the right exit status before Ray is needed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.cluster.tune import load_tune_spec, run_tune
from tradepulse.data import load_bars
from tradepulse.errors import ConfigError

SPEC = """\
data: {data}
strategy: sma_cross
space:
  fast: {{kind: randint, low: 5, high: 20}}
objective: {{metric: sharpe}}
search: {{algorithm: random, num_samples: 2}}
scheduler: {scheduler}
walk_forward: {{train_bars: {train}, test_bars: 100}}
"""


def _spec(
    tmp_path: Path, *, data: str = "bars.csv", scheduler: str = "null", train: int = 200
) -> Path:
    path = tmp_path / "spec.yaml"
    text = SPEC.format(data=data, scheduler=scheduler, train=train)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["tune", *args])
    return result.exit_code, result.output


def test_a_missing_spec_is_one_line_and_exit_1(tmp_path: Path) -> None:
    code, output = _invoke("--spec", str(tmp_path / "missing.yaml"))

    assert code == 1
    assert "cannot read Tune spec" in output
    assert "Traceback" not in output


def test_a_broken_spec_names_the_key(tmp_path: Path) -> None:
    path = _spec(tmp_path, scheduler="{kind: median}")

    code, output = _invoke("--spec", str(path))

    assert code == 1
    assert "scheduler.kind" in output
    assert "Traceback" not in output


def test_a_missing_data_file_fails_before_any_cluster_starts(tmp_path: Path) -> None:
    path = _spec(tmp_path, data=str(tmp_path / "nowhere.csv"))

    code, output = _invoke("--spec", str(path))

    assert code == 1
    assert "nowhere.csv: no such file" in output


@pytest.mark.parametrize(
    "option", [["--num-samples", "0"], ["--max-concurrent", "0"], ["--seed", "-1"]]
)
def test_bad_option_values_exit_2(tmp_path: Path, option: list[str]) -> None:
    code, _ = _invoke("--spec", str(_spec(tmp_path)), *option)

    assert code == 2


def test_the_help_lists_the_options() -> None:
    code, output = _invoke("--help")

    assert code == 0
    for option in ("--spec", "--data", "--address", "--out", "--json", "--num-samples"):
        assert option in output


# run_tune checks what it can before connecting: none of these needs Ray running.


def test_a_grace_period_longer_than_the_folds_is_refused(tmp_path: Path, sample_dir: Path) -> None:
    spec = load_tune_spec(_spec(tmp_path, scheduler="{kind: asha, grace_period: 60}"))
    bars = load_bars(sample_dir / "sp500_daily.csv").head(1000)  # (1000 - 200) / 100 = 8 folds

    with pytest.raises(ConfigError, match=r"grace_period \(60\) exceeds the 8 walk-forward folds"):
        run_tune(spec, bars=bars)


def test_data_shorter_than_one_fold_is_refused(tmp_path: Path, sample_dir: Path) -> None:
    spec = load_tune_spec(_spec(tmp_path))
    bars = load_bars(sample_dir / "sp500_daily.csv").head(250)

    with pytest.raises(ConfigError, match="at least train_bars"):
        run_tune(spec, bars=bars)


def test_bars_of_several_symbols_are_refused(tmp_path: Path) -> None:
    spec = load_tune_spec(_spec(tmp_path))
    one = pl.DataFrame(
        {
            "ts": pl.datetime_range(
                pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 10), "1d", time_zone="UTC", eager=True
            ),
            "close": np.linspace(1.0, 2.0, 10),
        }
    )
    bars = pl.concat([one.with_columns(symbol=pl.lit(name)) for name in ("A", "B")])

    with pytest.raises(ConfigError, match="one symbol; set 'symbol' in the spec"):
        run_tune(spec, bars=bars)


def test_a_missing_data_file_is_a_config_error(tmp_path: Path) -> None:
    spec = load_tune_spec(_spec(tmp_path, data=str(tmp_path / "gone.csv")))

    with pytest.raises(ConfigError, match=r"gone\.csv of Tune spec .spec. does not exist"):
        run_tune(spec)
