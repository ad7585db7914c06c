"""Reports: charts and self-contained HTML pages written under ``reports/``."""

from __future__ import annotations

from tradepulse.reports.backtest_report import (
    BacktestReport,
    format_metric,
    metric_rows,
    write_backtest_report,
)
from tradepulse.reports.indicator_report import IndicatorReport, write_indicator_report
from tradepulse.reports.regression_report import RegressionReport, write_regression_report

__all__ = [
    "BacktestReport",
    "IndicatorReport",
    "RegressionReport",
    "format_metric",
    "metric_rows",
    "write_backtest_report",
    "write_indicator_report",
    "write_regression_report",
]
