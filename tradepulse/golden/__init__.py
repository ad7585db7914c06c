"""Golden regression files: expected outputs with provenance, compared with tolerances."""

from __future__ import annotations

from tradepulse.golden.indicators import (
    GoldenDrift,
    check_indicator_goldens,
    golden_root,
    update_indicator_goldens,
)

__all__ = ["GoldenDrift", "check_indicator_goldens", "golden_root", "update_indicator_goldens"]
