"""Market-friction configs: every shipped YAML loads, every mistake names file and key.

Expected engine results come from calling ``run_vectorised`` with the cost models
built by hand from the documented keys (see ``tradepulse/backtest/config.py``),
and expected fill prices from the execution-price formula in
``docs/backtesting.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradepulse.backtest import FrictionConfig, load_friction_config, run_vectorised
from tradepulse.backtest.config import COMMISSION_KEYS, FRICTION_KEYS
from tradepulse.costs import (
    BPS,
    CommissionTerms,
    FixedCommission,
    FixedSlippage,
    NotionalCommission,
    PerUnitCommission,
    SpreadSlippage,
    SquareRootImpact,
)
from tradepulse.data import load_bars
from tradepulse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "backtest" / "configs"
CONFIG_FILES = sorted(CONFIG_DIR.glob("*.yaml")) + sorted(CONFIG_DIR.glob("*.yml"))
SP500 = ROOT / "golden" / "data" / "sp500_daily.csv"

VALID = """\
name: test
description: a test market
commission:
  rate: 0.0005
  per_unit: 0.005
  per_fill: 1.0
spread_bps: 2.0
slippage_bps: 1.0
impact_bps: 50.0
latency_bars: 1
sizing: whole
periods_per_year: 252
"""


def write(tmp_path: Path, text: str, name: str = "market.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(key: str, line: str) -> str:
    """Return `VALID` with the line starting with ``key`` replaced by ``line``."""
    lines = [line if raw.startswith(key) else raw for raw in VALID.splitlines()]
    return "\n".join(lines) + "\n"


def test_at_least_the_three_markets_ship() -> None:
    names = {path.stem for path in CONFIG_FILES}

    assert {"equities", "crypto", "fx"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: path.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_friction_config(path)

    assert config.name == path.stem
    assert config.description
    assert config.commission_models() or config.slippage_models()


def test_crypto_config_is_annualised_for_a_24_7_minute_market() -> None:
    config = load_friction_config(CONFIG_DIR / "crypto.yaml")

    assert config.periods_per_year == 365 * 24 * 60
    assert config.commission.rate == pytest.approx(0.001)


def test_a_full_file_loads_into_the_model(tmp_path: Path) -> None:
    config = load_friction_config(write(tmp_path, VALID))

    assert config == FrictionConfig(
        name="test",
        description="a test market",
        commission=CommissionTerms(rate=0.0005, per_unit=0.005, per_fill=1.0),
        spread_bps=2.0,
        slippage_bps=1.0,
        impact_bps=50.0,
        latency_bars=1,
        sizing="whole",
        periods_per_year=252.0,
    )


def test_omitted_keys_mean_no_friction(tmp_path: Path) -> None:
    config = load_friction_config(write(tmp_path, "name: bare\n"))

    arguments = config.engine_arguments()

    assert arguments == {
        "commission": [],
        "slippage": [],
        "sizing": "fractional",
        "latency_bars": 0,
        "periods_per_year": None,
    }


def test_engine_arguments_hold_one_model_per_nonzero_term(tmp_path: Path) -> None:
    config = load_friction_config(write(tmp_path, VALID))

    arguments = config.engine_arguments()

    assert arguments["commission"] == [
        NotionalCommission(rate=0.0005),
        PerUnitCommission(per_unit=0.005),
        FixedCommission(per_fill=1.0),
    ]
    assert arguments["slippage"] == [
        SpreadSlippage(spread_bps=2.0),
        FixedSlippage(slippage_bps=1.0),
        SquareRootImpact(impact_bps=50.0),
    ]
    assert (arguments["sizing"], arguments["latency_bars"]) == ("whole", 1)
    assert arguments["periods_per_year"] == 252.0


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (VALID + "spred_bps: 1.0\n", ["unknown key 'spred_bps'", "known: name, description"]),
        (
            VALID.replace("  per_fill: 1.0", "  per_fil: 1.0"),
            ["unknown key 'commission.per_fil'", "known: rate, per_unit, per_fill"],
        ),
        ("description: no name\n", ["missing key 'name'"]),
        (replace_line("name", "name: ''"), ["key 'name'", "''"]),
        (replace_line("description", "description: [a, b]"), ["key 'description'"]),
        (replace_line("spread_bps", "spread_bps: -1.0"), ["key 'spread_bps'", "-1.0"]),
        (replace_line("spread_bps", "spread_bps: wide"), ["key 'spread_bps'", "'wide'"]),
        (replace_line("slippage_bps", "slippage_bps: .nan"), ["key 'slippage_bps'", "nan"]),
        (replace_line("impact_bps", "impact_bps: true"), ["key 'impact_bps'", "True"]),
        (replace_line("impact_bps", "impact_bps: 10000"), ["key 'impact_bps'", "10000"]),
        (
            replace_line("impact_bps", "impact_bps: 9999"),
            ["'spread_bps' / 2 + 'slippage_bps' + 'impact_bps'", "10000"],
        ),
        (replace_line("latency_bars", "latency_bars: 1.5"), ["key 'latency_bars'", "1.5"]),
        (replace_line("latency_bars", "latency_bars: -1"), ["key 'latency_bars'", "-1"]),
        (replace_line("sizing", "sizing: lots"), ["key 'sizing'", "'lots'"]),
        (
            replace_line("periods_per_year", "periods_per_year: 0"),
            ["key 'periods_per_year'", "> 0", "got 0"],
        ),
        ("name: x\ncommission: 0.001\n", ["key 'commission'", "0.001"]),
        (
            VALID.replace("  rate: 0.0005", "  rate: 5e-4"),
            ["key 'commission.rate'", "'5e-4'", "5.0e-4"],
        ),
        (VALID.replace("  rate: 0.0005", "  rate: 1.0"), ["key 'commission.rate'", "< 1"]),
        (VALID.replace("  per_unit: 0.005", "  per_unit: -0.005"), ["commission.per_unit"]),
        (VALID.replace("  per_fill: 1.0", "  per_fill: ten"), ["commission.per_fill"]),
        ("- name: a list\n", ["must be a mapping", "list"]),
        ("", ["must be a mapping", "NoneType"]),
    ],
)
def test_a_bad_key_or_value_names_the_file_and_the_key(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_friction_config(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: broken\nspread_bps: [1.0\nsizing: whole\n")

    with pytest.raises(ConfigError, match=r"invalid YAML") as caught:
        load_friction_config(path)

    assert str(caught.value).startswith(f"{path}: line ")


def test_a_duplicated_key_names_the_file_the_key_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: twice\nspread_bps: 1.0\nspread_bps: 2.0\n")

    with pytest.raises(ConfigError) as caught:
        load_friction_config(path)

    assert f"{path}: line 3," in str(caught.value)
    assert "duplicate key 'spread_bps'" in str(caught.value)


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read"):
        load_friction_config(path)


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: !!python/object/apply:os.getcwd []\n")

    with pytest.raises(ConfigError, match="invalid YAML"):
        load_friction_config(path)


def test_the_model_is_checked_when_constructed_directly() -> None:
    with pytest.raises(ConfigError, match=r"key 'sizing'.*'lots'"):
        FrictionConfig(name="direct", sizing="lots")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"key 'commission' must be CommissionTerms"):
        FrictionConfig(name="direct", commission=0.001)  # type: ignore[arg-type]


def test_the_known_keys_are_the_model_fields() -> None:
    fields = set(FrictionConfig.__dataclass_fields__)

    assert set(FRICTION_KEYS) == fields
    assert set(COMMISSION_KEYS) == set(CommissionTerms.__dataclass_fields__)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: path.name)
def test_a_shipped_config_runs_through_the_vectorised_engine(path: Path) -> None:
    bars = load_bars(SP500)
    targets = np.zeros(bars.height)
    targets[20:300] = 1.0
    targets[300:600] = -0.5
    config = load_friction_config(path)
    terms = config.commission
    by_hand = run_vectorised(
        bars,
        targets,
        commission=[
            NotionalCommission(rate=terms.rate),
            PerUnitCommission(per_unit=terms.per_unit),
            FixedCommission(per_fill=terms.per_fill),
        ],
        slippage=[
            SpreadSlippage(spread_bps=config.spread_bps),
            FixedSlippage(slippage_bps=config.slippage_bps),
            SquareRootImpact(impact_bps=config.impact_bps),
        ],
        sizing=config.sizing,
        latency_bars=config.latency_bars,
        periods_per_year=config.periods_per_year,
    )

    result = run_vectorised(bars, targets, **config.engine_arguments())

    np.testing.assert_array_equal(result.equity, by_hand.equity)
    assert result.metrics.to_dict() == pytest.approx(by_hand.metrics.to_dict(), nan_ok=True)
    first = result.fills.row(0, named=True)
    fill_open = float(bars.get_column("open")[int(first["bar"])])
    adverse = (config.spread_bps / 2.0 + config.slippage_bps) * BPS
    assert first["side"] == "buy"
    assert first["bar"] == 21 + config.latency_bars
    assert first["price"] >= fill_open * (1.0 + adverse)


def test_a_control_character_is_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "name: bell\x07\n")

    with pytest.raises(ConfigError, match="invalid YAML") as caught:
        load_friction_config(path)

    assert str(caught.value).startswith(f"{path}: ")
