"""``geometry_phase``: be long while the market geometry says a move is emerging.

It trades TradePulse's composite transition score
``0.4 R - 0.3 dH - 0.3 curvature`` (Kuramoto order R, entropy change dH in nats,
mean Ricci curvature; all over a ``window``-bar rolling window, see
:mod:`tradepulse.indicators.phase`). A high score means synchrony, falling
disorder and a negatively curved market graph: the signature of an emerging
move. Rules, decided on each bar's close (filled by the host at the next bar's
open):

- enter long when the score crosses strictly above ``entry``:
  ``score[t-1] < entry`` and ``score[t] > entry``, unless the phase at t is
  ``post_emergent`` (synchrony dissolving);
- exit when the score crosses strictly below ``exit``, or on any bar whose
  phase is ``post_emergent``.

``exit < entry`` gives a hysteresis band, so noise around one level does not
churn. Long only: the score says *that* a move is emerging, not its direction,
and equity indices drift up. The score needs ``window`` bars (NaN before, target
0). On the shipped S&P 500 daily bars the phase is only ``proto`` or ``neutral``
(R stays below ~0.3), so the score crossings drive the trades there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.indicators.entropy import entropy_change
from tradepulse.indicators.kuramoto import kuramoto_order
from tradepulse.indicators.phase import Phase, composite_score, detect_phase
from tradepulse.indicators.ricci import ricci_curvature
from tradepulse.strategy.api import Bar, Strategy, StrategyContext
from tradepulse.strategy.builtins._common import (
    cross_above,
    cross_below,
    follow_events,
    next_target,
    price_column,
)
from tradepulse.strategy.params import ParameterError, Params, param

__all__ = ["GeometryPhase", "GeometryPhaseParams"]

_POST_EMERGENT = float(Phase.POST_EMERGENT)


@dataclass(frozen=True, slots=True)
class GeometryPhaseParams(Params):
    """Parameters of :class:`GeometryPhase` (window in bars, levels in score units)."""

    window: int = param(
        200, low=20, high=1000, step=10, description="Rolling window of R, dH, curvature (bars)."
    )
    entry: float = param(
        0.05, low=-1.0, high=1.0, step=0.01, description="Enter long on a score cross above."
    )
    exit: float = param(
        -0.05, low=-1.0, high=1.0, step=0.01, description="Exit on a score cross below."
    )

    def check(self) -> None:
        """Require ``exit < entry``.

        Raises:
            ParameterError: ``exit >= entry``.
        """
        if self.exit >= self.entry:
            raise ParameterError("exit", self.exit, f"must be < entry ({self.entry})")


class GeometryPhase(Strategy[GeometryPhaseParams]):
    """Long while the composite geometry score signals an emerging move (hysteresis band)."""

    name = "geometry_phase"
    api_version = "1.0"
    params_type = GeometryPhaseParams

    def __init__(self) -> None:
        self._target = 0.0
        self._entry = 0.05
        self._exit = -0.05

    def indicators(
        self, bars: pl.DataFrame, params: GeometryPhaseParams
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``score`` (composite score) and ``phase`` (:class:`Phase` codes as floats).

        Both are NaN / ``Phase.UNKNOWN`` (-1) until ``window`` bars are available.
        """
        close = price_column(bars)
        order = kuramoto_order(close, params.window)
        change = entropy_change(close, params.window)
        curvature = ricci_curvature(close, params.window)
        score = composite_score(order, change, curvature)
        phase = detect_phase(order, change, curvature).astype(np.float64)
        return {"score": score, "phase": phase}

    def initialize(self, ctx: StrategyContext[GeometryPhaseParams]) -> None:
        """Start flat."""
        self._target = 0.0
        self._entry = ctx.params.entry
        self._exit = ctx.params.exit

    def handle_tick(self, ctx: StrategyContext[GeometryPhaseParams], bar: Bar) -> None:
        """Order a new target when the score leaves the hysteresis band or the phase dissolves."""
        score, score_before = ctx.indicator("score"), ctx.indicator("score", 1)
        dissolving = ctx.indicator("phase") == _POST_EMERGENT
        target = next_target(
            self._target,
            long_entry=score_before < self._entry and score > self._entry and not dissolving,
            long_exit=(score_before > self._exit and score < self._exit) or dissolving,
            short_entry=False,
            short_exit=False,
        )
        if target != self._target:
            self._target = target
            ctx.order_target_percent(percent=target)

    def signals(self, bars: pl.DataFrame, params: GeometryPhaseParams) -> NDArray[np.float64]:
        """Return the target of every bar (see the module docstring for the rules)."""
        lines = self.indicators(bars, params)
        score = lines["score"]
        dissolving = lines["phase"] == _POST_EMERGENT
        return follow_events(
            long_entry=cross_above(score, params.entry) & ~dissolving,
            long_exit=cross_below(score, params.exit) | dissolving,
        )
