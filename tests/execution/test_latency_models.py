"""The fixed latency model's schedule and its parameter checks."""

from __future__ import annotations

import pytest

from tradepulse.errors import ConfigError
from tradepulse.execution import FixedLatency, LatencyModel, OrderTiming


def test_default_latency_is_the_next_bar_without_delay() -> None:
    timing = FixedLatency().schedule(submit_bar=4, submit_ts_ns=1_000)

    assert timing == OrderTiming(acknowledge_ts_ns=1_000, eligible_bar=5, eligible_ts_ns=1_000)


def test_fixed_latency_adds_bars_and_nanoseconds() -> None:
    model = FixedLatency(bars=2, acknowledge_ns=30, match_ns=70)

    timing = model.schedule(submit_bar=-1, submit_ts_ns=1_000)

    assert timing == OrderTiming(acknowledge_ts_ns=1_030, eligible_bar=2, eligible_ts_ns=1_100)
    assert isinstance(model, LatencyModel)
    assert repr(model) == "FixedLatency(bars=2, acknowledge_ns=30, match_ns=70)"


@pytest.mark.parametrize(
    "kwargs",
    [{"bars": -1}, {"acknowledge_ns": -5}, {"match_ns": 1.5}, {"bars": True}],
)
def test_fixed_latency_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    name = next(iter(kwargs))

    with pytest.raises(ConfigError, match=f"FixedLatency.{name}"):
        FixedLatency(**kwargs)  # type: ignore[arg-type]
