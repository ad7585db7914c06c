"""Reports: charts and self-contained HTML pages written under ``reports/``."""

from __future__ import annotations

from tradepulse.reports.indicator_report import IndicatorReport, write_indicator_report

__all__ = ["IndicatorReport", "write_indicator_report"]
