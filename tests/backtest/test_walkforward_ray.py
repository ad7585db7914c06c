"""Walk-forward folds evaluated on the Ray executor give the local results exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradepulse.backtest import walk_forward
from tradepulse.data import load_bars
from tradepulse.executor import as_map_function


@pytest.mark.usefixtures("ray_session")
def test_walk_forward_on_ray_equals_the_local_run(sample_dir: Path) -> None:
    from tradepulse.cluster import RayExecutor

    bars = load_bars(sample_dir / "sp500_daily.csv")
    settings = {
        "train_bars": 756,
        "test_bars": 504,
        "grid": {"fast": [5, 10, 20], "slow": [30, 60]},
        "commission": 0.001,
    }
    local = walk_forward(bars, "sma_cross", **settings)  # type: ignore[arg-type]
    remote = walk_forward(
        bars,
        "sma_cross",
        map_fn=as_map_function(RayExecutor()),
        **settings,  # type: ignore[arg-type]
    )

    assert remote.folds.equals(local.folds)
    np.testing.assert_array_equal(remote.oos.equity, local.oos.equity)
    assert local.oos.metrics.trades > 0
