"""Tune specs load strictly: every shipped spec validates; each kind of mistake names its key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradepulse.backtest.config import FrictionConfig, load_friction_config
from tradepulse.cluster.tune import (
    AshaSettings,
    ParameterSpace,
    WalkForwardSettings,
    load_tune_spec,
    with_overrides,
)
from tradepulse.costs.commission import CommissionTerms
from tradepulse.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_SPECS = sorted((REPO_ROOT / "tune").glob("*.yaml"))

VALID = """\
name: demo
data: golden/data/sp500_daily.csv
strategy: sma_cross
space:
  fast: {kind: randint, low: 5, high: 60}
  slow: {kind: quantized, low: 20, high: 250, step: 10}
params:
  direction: long_short
objective: {metric: sharpe, mode: max}
search: {algorithm: random, num_samples: 8, seed: 3}
walk_forward: {train_bars: 252, test_bars: 126}
"""


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_tune_folder_ships_specs() -> None:
    names = {path.stem for path in SHIPPED_SPECS}

    assert {"sma_cross_random", "sma_cross_bayes_asha"} <= names


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda path: path.name)
def test_every_shipped_spec_loads_and_names_real_files(path: Path) -> None:
    spec = load_tune_spec(path, base_dir=REPO_ROOT)

    assert spec.name == path.stem
    assert spec.data.is_file(), f"{path.name}: data {spec.data} is missing"
    assert spec.source == path
    assert spec.space, "a spec searches at least one parameter"


def test_a_valid_spec_loads_with_its_values_and_defaults(tmp_path: Path) -> None:
    spec = load_tune_spec(_write(tmp_path, VALID), base_dir=tmp_path)

    assert spec.name == "demo"
    assert spec.data == tmp_path / "golden/data/sp500_daily.csv"
    assert spec.strategy == "sma_cross"
    assert spec.space == {
        "fast": ParameterSpace(name="fast", kind="randint", low=5, high=60),
        "slow": ParameterSpace(name="slow", kind="quantized", low=20, high=250, step=10),
    }
    assert spec.params == {"direction": "long_short"}
    assert (spec.objective, spec.mode) == ("sharpe", "max")
    assert (spec.algorithm, spec.num_samples, spec.seed) == ("random", 8, 3)
    assert spec.max_concurrent is None
    assert spec.cpus_per_trial == 1.0
    assert spec.scheduler is None
    assert spec.frictions is None
    assert spec.cash == 10_000.0
    assert spec.walk_forward == WalkForwardSettings(
        train_bars=252, test_bars=126, anchored=False, score="stitched"
    )


def test_space_is_kept_in_the_strategys_declaration_order(tmp_path: Path) -> None:
    searched = (
        "  fast: {kind: randint, low: 5, high: 60}\n"
        "  slow: {kind: quantized, low: 20, high: 250, step: 10}\n"
    )
    assert searched in VALID
    text = VALID.replace(
        searched,
        "  slow: {kind: randint, low: 20, high: 40}\n  fast: {kind: choice, values: [5, 10]}\n",
    )

    spec = load_tune_spec(_write(tmp_path, text))

    assert list(spec.space) == ["fast", "slow"]
    assert spec.space["fast"].values == (5, 10)


def test_choice_values_are_typed_by_the_parameter(tmp_path: Path) -> None:
    text = VALID.replace("params:\n  direction: long_short\n", "").replace(
        "  fast: {kind: randint, low: 5, high: 60}\n",
        "  fast: {kind: randint, low: 5, high: 60}\n"
        "  direction: {kind: choice, values: [long, long_short]}\n",
    )

    spec = load_tune_spec(_write(tmp_path, text))

    assert spec.space["direction"] == ParameterSpace(
        name="direction", kind="choice", values=("long", "long_short")
    )


def test_max_drawdown_is_minimised_unless_told_otherwise(tmp_path: Path) -> None:
    text = VALID.replace("{metric: sharpe, mode: max}", "{metric: max_drawdown}")

    spec = load_tune_spec(_write(tmp_path, text))

    assert spec.mode == "min"


def test_asha_settings_and_float_spaces_load(tmp_path: Path) -> None:
    text = """\
    data: bars.csv
    strategy: rsi_reversion
    space:
      lower: {kind: uniform, low: 10.0, high: 40}
      upper: {kind: loguniform, low: 55, high: 90.0}
      period: {kind: quantized, low: 4, high: 40, step: 2}
    objective: {metric: total_return}
    search: {algorithm: bayesian, num_samples: 5, max_concurrent: 1, cpus_per_trial: 0.5}
    scheduler: {kind: asha, grace_period: 2, reduction_factor: 3}
    walk_forward: {train_bars: 100, test_bars: 50, anchored: true, score: mean}
    """

    spec = load_tune_spec(_write(tmp_path, text))

    assert spec.scheduler == AshaSettings(grace_period=2, reduction_factor=3.0)
    assert spec.space["lower"] == ParameterSpace(name="lower", kind="uniform", low=10, high=40)
    assert spec.space["upper"].kind == "loguniform"
    assert spec.space["period"].step == 2
    assert (spec.algorithm, spec.max_concurrent, spec.cpus_per_trial) == ("bayesian", 1, 0.5)
    assert spec.walk_forward == WalkForwardSettings(100, 50, anchored=True, score="mean")
    assert spec.name == "spec"  # the file's stem


def test_frictions_load_from_a_file_or_inline(tmp_path: Path) -> None:
    config = REPO_ROOT / "backtest" / "configs" / "equities.yaml"
    from_file = load_tune_spec(
        _write(tmp_path, VALID + f"frictions: {config}\n", "file.yaml"), base_dir=tmp_path
    )
    inline = load_tune_spec(
        _write(
            tmp_path,
            VALID + "frictions: {commission: {rate: 0.001}, spread_bps: 2.0, sizing: whole}\n",
            "inline.yaml",
        )
    )

    assert from_file.frictions == load_friction_config(config)
    assert inline.frictions == FrictionConfig(
        name="inline", commission=CommissionTerms(rate=0.001), spread_bps=2.0, sizing="whole"
    )


def test_a_relative_friction_path_resolves_against_base_dir(tmp_path: Path) -> None:
    spec = load_tune_spec(
        _write(tmp_path, VALID + "frictions: backtest/configs/fx.yaml\n"), base_dir=REPO_ROOT
    )

    assert spec.frictions == load_friction_config(REPO_ROOT / "backtest/configs/fx.yaml")


def _replace(old: str, new: str) -> str:
    assert old in VALID, old  # the mutation must apply, or the test proves nothing
    return VALID.replace(old, new)


BROKEN = {
    "unknown top-level key": (VALID + "sapce: {}\n", "unknown key 'sapce'"),
    "missing key": (_replace("strategy: sma_cross\n", ""), "missing key 'strategy'"),
    "unknown strategy": (_replace("strategy: sma_cross", "strategy: nope"), "key 'strategy'"),
    "unknown space key": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 5, hgh: 60}"),
        "unknown key 'space.fast.hgh'",
    ),
    "missing space bound": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 5}"),
        "missing key 'space.fast.high'",
    ),
    "unknown space kind": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: normal, low: 5, high: 60}"),
        "key 'space.fast.kind'",
    ),
    "kind unfit for the type": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: uniform, low: 5, high: 60}"),
        "key 'space.fast.kind': uniform does not suit int parameter 'fast'",
    ),
    "bound above the declared range": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 5, high: 600}"),
        "key 'space.fast.high' is 600, above the highest value 500",
    ),
    "bound below the declared range": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 0, high: 60}"),
        "key 'space.fast.low' is 0, below the lowest value 1",
    ),
    "float bound for an integer": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 5.5, high: 60}"),
        "key 'space.fast.low' must be an integer",
    ),
    "empty range": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: randint, low: 60, high: 60}"),
        "low (60) must be < high (60)",
    ),
    "bound off the step": (
        _replace("low: 20, high: 250, step: 10", "low: 25, high: 250, step: 10"),
        "key 'space.slow.low' (25) must be a multiple of step (10)",
    ),
    "zero step": (
        _replace("low: 20, high: 250, step: 10", "low: 20, high: 250, step: 0"),
        "key 'space.slow.step' must be > 0",
    ),
    "unknown parameter": (
        _replace("  fast: {", "  quick: {kind: randint, low: 1, high: 2}\n  fast: {"),
        "key 'space.quick': strategy 'sma_cross' has no parameter 'quick'",
    ),
    "bad choice": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: choice, values: [5, fast]}"),
        "key 'space.fast.values'",
    ),
    "repeated choice": (
        _replace("{kind: randint, low: 5, high: 60}", "{kind: choice, values: [5, 5]}"),
        "key 'space.fast.values' repeats 5",
    ),
    "fixed and searched": (
        _replace("  direction: long_short", "  fast: 10"),
        "key 'params.fast': parameter 'fast' is also in 'space'",
    ),
    "bad fixed value": (
        _replace("  direction: long_short", "  direction: sideways"),
        "key 'params.direction'",
    ),
    "unknown objective": (
        _replace("metric: sharpe", "metric: alpha"),
        "key 'objective.metric' must be one of",
    ),
    "unknown mode": (_replace("mode: max", "mode: best"), "key 'objective.mode'"),
    "unknown algorithm": (
        _replace("algorithm: random", "algorithm: grid"),
        "key 'search.algorithm' must be one of random, bayesian; got 'grid'",
    ),
    "no samples": (
        _replace("num_samples: 8", "num_samples: 0"),
        "key 'search.num_samples' must be an integer >= 1; got 0",
    ),
    "negative seed": (_replace("seed: 3", "seed: -1"), "key 'search.seed'"),
    "unknown search key": (_replace("seed: 3", "seeds: 3"), "unknown key 'search.seeds'"),
    "unknown scheduler": (
        VALID + "scheduler: {kind: hyperband}\n",
        "key 'scheduler.kind' must be one of asha",
    ),
    "reduction factor of one": (
        VALID + "scheduler: {kind: asha, reduction_factor: 1}\n",
        "key 'scheduler.reduction_factor' must be > 1",
    ),
    "missing window": (
        _replace("{train_bars: 252, test_bars: 126}", "{train_bars: 252}"),
        "missing key 'walk_forward.test_bars'",
    ),
    "short window": (
        _replace("test_bars: 126", "test_bars: 1"),
        "key 'walk_forward.test_bars' must be an integer >= 2",
    ),
    "unknown score": (
        _replace("test_bars: 126}", "test_bars: 126, score: median}"),
        "key 'walk_forward.score' must be one of stitched, mean",
    ),
    "anchored not a bool": (
        _replace("test_bars: 126}", "test_bars: 126, anchored: yes please}"),
        "key 'walk_forward.anchored' must be true or false",
    ),
    "unknown friction key": (
        VALID + "frictions: {spred_bps: 1.0}\n",
        "unknown key 'frictions.spred_bps'",
    ),
    "bad friction value": (
        VALID + "frictions: {commission: {rate: 2.0}}\n",
        "key 'frictions.commission'",
    ),
    "missing friction file": (VALID + "frictions: nowhere.yaml\n", "key 'frictions'"),
    "non-positive cash": (VALID + "cash: 0\n", "key 'cash' must be > 0"),
    "duplicate key": (VALID + "strategy: sma_cross\n", "duplicate key 'strategy'"),
    "invalid YAML": (VALID + "search: [\n", "invalid YAML"),
    "name that is a path": (
        _replace("name: demo", "name: ../demo"),
        "key 'name' must be letters, digits",
    ),
    "not a mapping": ("- a\n- b\n", "must be a mapping of keys"),
}


@pytest.mark.parametrize(("text", "message"), BROKEN.values(), ids=list(BROKEN))
def test_a_broken_spec_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_tune_spec(path, base_dir=tmp_path)

    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_an_unreadable_spec_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read Tune spec"):
        load_tune_spec(tmp_path / "missing.yaml")


def test_overrides_replace_values_and_are_checked(tmp_path: Path) -> None:
    spec = load_tune_spec(_write(tmp_path, VALID))

    changed = with_overrides(
        spec, data=tmp_path / "other.csv", num_samples=3, seed=9, max_concurrent=1
    )

    assert (changed.data, changed.num_samples, changed.seed, changed.max_concurrent) == (
        tmp_path / "other.csv",
        3,
        9,
        1,
    )
    assert with_overrides(spec) == spec
    with pytest.raises(ConfigError, match="num_samples must be >= 1"):
        with_overrides(spec, num_samples=0)
