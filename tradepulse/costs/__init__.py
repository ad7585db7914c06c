"""Cost and fill models: commissions, spread, slippage, market impact and sizing.

Pure core (numpy and numba only). Every model is a frozen dataclass checked when it
is constructed; the engines reduce a set of models to `CommissionTerms` and
`SlippageTerms` and own the loop. See ``docs/backtesting.md`` for the conventions.
"""

from __future__ import annotations

from tradepulse.costs.commission import (
    DEFAULT_COMMISSION_PER_FILL,
    DEFAULT_COMMISSION_PER_UNIT,
    DEFAULT_COMMISSION_RATE,
    MAX_COMMISSION_RATE,
    CommissionModel,
    CommissionTerms,
    FixedCommission,
    NotionalCommission,
    PerUnitCommission,
    combine_commissions,
)
from tradepulse.costs.sizing import SIZINGS, Sizing, TargetFills, check_sizing, plan_target_fills
from tradepulse.costs.slippage import (
    BPS,
    DEFAULT_IMPACT_BPS,
    DEFAULT_SLIPPAGE_BPS,
    DEFAULT_SPREAD_BPS,
    MAX_ADVERSE_FRACTION,
    FixedSlippage,
    SlippageModel,
    SlippageTerms,
    SpreadSlippage,
    SquareRootImpact,
    combine_slippage,
)

__all__ = [
    "BPS",
    "DEFAULT_COMMISSION_PER_FILL",
    "DEFAULT_COMMISSION_PER_UNIT",
    "DEFAULT_COMMISSION_RATE",
    "DEFAULT_IMPACT_BPS",
    "DEFAULT_SLIPPAGE_BPS",
    "DEFAULT_SPREAD_BPS",
    "MAX_ADVERSE_FRACTION",
    "MAX_COMMISSION_RATE",
    "SIZINGS",
    "CommissionModel",
    "CommissionTerms",
    "FixedCommission",
    "FixedSlippage",
    "NotionalCommission",
    "PerUnitCommission",
    "Sizing",
    "SlippageModel",
    "SlippageTerms",
    "SpreadSlippage",
    "SquareRootImpact",
    "TargetFills",
    "check_sizing",
    "combine_commissions",
    "combine_slippage",
    "plan_target_fills",
]
