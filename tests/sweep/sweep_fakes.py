"""A strategy that kills its own worker process once (named uniquely: tests/ is no package)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.strategy import param
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams


@dataclass(frozen=True, slots=True)
class KillOnceParams(SmaCrossParams):
    marker: str = param("", description="File created just before the process kills itself.")


class KillOnce(SmaCross):
    """sma_cross, except that the first batch of several combinations kills its process."""

    name = "kill_once"
    api_version = "1.0"
    params_type = KillOnceParams

    def signals_many(
        self, bars: pl.DataFrame, params_list: Sequence[SmaCrossParams]
    ) -> Iterator[tuple[int, NDArray[np.float64]]]:
        marker = Path(getattr(params_list[0], "marker", ""))
        if len(params_list) > 1 and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        yield from super().signals_many(bars, params_list)
