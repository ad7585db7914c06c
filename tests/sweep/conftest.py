"""Fixtures of the sweep tests: both executors, real daily bars, synthetic minute bars."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tradepulse.data import load_bars, synthesize_bars
from tradepulse.executor import Executor, LocalExecutor


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> Executor:
    """Return a LocalExecutor, then a RayExecutor on the session's Ray cluster."""
    if request.param == "local":
        return LocalExecutor()
    request.getfixturevalue("ray_session")
    from tradepulse.cluster import RayExecutor

    return RayExecutor()


@pytest.fixture(scope="session")
def sp500_path(sample_dir: Path) -> Path:
    return sample_dir / "sp500_daily.csv"


@pytest.fixture(scope="session")
def sp500(sp500_path: Path) -> pl.DataFrame:
    return load_bars(sp500_path)


@pytest.fixture(scope="session")
def minute_bars() -> pl.DataFrame:
    return synthesize_bars(bars=20_000, seed=3)
