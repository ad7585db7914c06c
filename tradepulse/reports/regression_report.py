"""The golden regression check as a Markdown page and a self-contained HTML page with charts.

``write_regression_report(run, "reports/regressions")`` writes, under that
folder, always under the same names (no timestamps, so a report is overwritten
by the next one and can be diffed):

- ``index.md``: the verdict, where and how long the check ran (elapsed, task
  CPU and wall seconds, peak worker memory), the tolerances, every drift, and
  one row per case with pass/fail, the values compared, the largest absolute
  and relative differences and the first drifting bar (or trade, or metric);
- ``index.html``: the same page with the charts embedded (base64 PNG), so it
  needs no other file;
- ``overview.png``: the largest relative difference of every case against its
  tolerance (log scale);
- ``drift-<suite>-<case>[-<engine>].png`` per drifted case with a numeric
  drift: the golden and current values of its first drifted column with the
  drifting bars highlighted, and their difference against the tolerance band
  (for metrics: each metric's relative difference).

Drift charts left by an earlier report (``drift-*.png``) are deleted first, so
the folder holds exactly one report.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import matplotlib
import numpy as np
from numpy.typing import NDArray

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from tradepulse.golden.regression import (
    TOLERANCES,
    CaseCheck,
    Drift,
    DriftChart,
    RegressionRun,
)

__all__ = [
    "DEFAULT_REGRESSION_DIR",
    "RegressionReport",
    "chart_name",
    "write_regression_report",
]

#: Where ``tradepulse golden check`` writes its report (relative to the working directory).
DEFAULT_REGRESSION_DIR: Final = Path("reports") / "regressions"
_DPI: Final = 80
# Relative differences below this are drawn at this floor (a log axis has no zero).
_FLOOR: Final = 1e-18
# At most this many drifting points are marked on a chart (the rest are in the table).
_MARKED: Final = 5000
# Rows either side of the first drift in a series chart's zoom panel.
_ZOOM: Final = 40
_PASS: Final = "#1e8449"
_FAIL: Final = "#c0392b"
_SAME: Final = "#7f8c8d"


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """Where a regression report was written: Markdown, HTML and the PNG charts."""

    markdown_path: Path
    html_path: Path
    png_paths: tuple[Path, ...]


def chart_name(check: CaseCheck) -> str:
    """Return the file name of ``check``'s drift chart, e.g. ``drift-backtests-x-vector.png``."""
    parts = [check.suite, check.case, *([check.engine] if check.engine else [])]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))
    return f"drift-{stem}.png"


# ------------------------------------------------------------------------------ charts


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    # No "Software" entry: the bytes depend only on the chart.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _plot_overview(checks: Sequence[CaseCheck]) -> bytes:
    height = max(2.5, 0.22 * len(checks) + 1.2)
    figure, axis = plt.subplots(figsize=(10, height))
    positions = np.arange(len(checks))
    relative = np.array([max(check.max_rel_diff, _FLOOR) for check in checks])
    colours = [
        _FAIL if not check.passed else (_SAME if check.max_rel_diff == 0.0 else _PASS)
        for check in checks
    ]
    axis.barh(positions, relative, left=_FLOOR, color=colours, height=0.7)
    axis.set_xscale("log")
    for position, check in zip(positions, checks, strict=True):
        if check.max_rel_diff == 0.0:
            axis.text(3 * _FLOOR, float(position), "bit-identical", fontsize=6, va="center")
    axis.set_xlim(_FLOOR, max(1.0, float(relative.max()) * 10.0) if checks else 1.0)
    axis.set_yticks(positions)
    axis.set_yticklabels([f"{check.suite}: {check.label}" for check in checks], fontsize=7)
    axis.invert_yaxis()
    for tolerance in sorted({TOLERANCES[check.suite][0] for check in checks}):
        axis.axvline(tolerance, color="black", linestyle="--", linewidth=0.8)
        axis.text(tolerance, -0.8, f" rtol {tolerance:g}", fontsize=7, va="bottom")
    axis.set_xlabel(
        f"largest relative difference, current vs golden (bit-identical drawn at {_FLOOR:g})"
    )
    axis.grid(alpha=0.3, axis="x")
    axis.set_title("Golden regression check: largest relative difference per case")
    return _png(figure)


def _marked(chart: DriftChart) -> NDArray[np.int64]:
    return chart.drifting[:_MARKED]


def _plot_series(chart: DriftChart) -> bytes:
    figure, (top, zoom, bottom) = plt.subplots(
        3, 1, figsize=(12, 8), gridspec_kw={"height_ratios": [3, 2, 2]}
    )
    marked = _marked(chart)
    first = int(marked[0]) if marked.size else 0
    for axis in (top, zoom):
        axis.plot(chart.golden, color="#999999", linewidth=2.2, label="golden")
        axis.plot(chart.current, color="#1f4e79", linewidth=0.8, label="current")
        axis.set_ylabel(chart.column)
        axis.grid(alpha=0.3)
        if marked.size:
            axis.scatter(
                marked,
                chart.current[marked],
                color=_FAIL,
                s=14,
                zorder=3,
                label="beyond tolerance",
            )
            axis.axvline(first, color=_FAIL, linestyle="--", linewidth=0.8)
    top.set_title(chart.title)
    top.legend(loc="upper left", fontsize=8)
    # The zoom: the rows around the first drift, where the curves part.
    low = max(0, first - _ZOOM)
    high = min(max(chart.golden.shape[0], chart.current.shape[0]), first + _ZOOM + 1)
    zoom.set_xlim(low - 0.5, high - 0.5)
    window = np.concatenate((chart.golden[low:high], chart.current[low:high]))
    window = window[np.isfinite(window)]
    if window.size:
        pad = max(float(window.max() - window.min()) * 0.1, 1e-12)
        zoom.set_ylim(float(window.min()) - pad, float(window.max()) + pad)
    zoom.set_title(f"first drift at {chart.unit} {first} (zoom: {chart.unit}s {low}-{high - 1})")
    rows = min(chart.golden.shape[0], chart.current.shape[0])
    x = np.arange(rows)
    golden = chart.golden[:rows]
    with np.errstate(invalid="ignore"):
        difference = chart.current[:rows] - golden
    band = chart.atol + chart.rtol * np.abs(golden)
    bottom.fill_between(
        x, -band, band, color="#aed6f1", linewidth=0, label=f"tolerance (rtol {chart.rtol:g})"
    )
    bottom.plot(x, difference, color="#1f4e79", linewidth=0.7, label="current - golden")
    inside = marked[marked < rows]
    if inside.size:
        bottom.scatter(inside, difference[inside], color=_FAIL, s=14, zorder=3)
        bottom.axvline(first, color=_FAIL, linestyle="--", linewidth=0.8)
    bottom.set_xlim(top.get_xlim())
    bottom.set_xlabel(chart.unit)
    bottom.set_ylabel("difference")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    return _png(figure)


def _plot_values(chart: DriftChart) -> bytes:
    figure, axis = plt.subplots(figsize=(10, 4))
    positions = np.arange(len(chart.labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = (chart.current - chart.golden) / np.abs(chart.golden)
    relative = np.where(np.isfinite(relative), relative, 0.0)
    drifting = set(chart.drifting.tolist())
    colours = [_FAIL if index in drifting else _SAME for index in range(len(chart.labels))]
    axis.bar(positions, relative, color=colours)
    axis.set_yscale("symlog", linthresh=chart.rtol / 10.0)
    limit = max(float(np.abs(relative).max(initial=0.0)) * 3.0, chart.rtol * 10.0)
    axis.set_ylim(-limit, limit)
    for sign in (-1.0, 1.0):
        axis.axhline(sign * chart.rtol, color="black", linestyle="--", linewidth=0.8)
    axis.set_xticks(positions)
    axis.set_xticklabels(chart.labels, rotation=45, ha="right", fontsize=8)
    axis.set_ylabel("(current - golden) / |golden|")
    axis.set_title(f"{chart.title} (dashed: ± rtol {chart.rtol:g}; red: beyond tolerance)")
    axis.grid(alpha=0.3, axis="y")
    return _png(figure)


def _plot_drift(chart: DriftChart) -> bytes:
    return _plot_series(chart) if chart.kind == "series" else _plot_values(chart)


# ------------------------------------------------------------------------------ text


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0.0:
        return "0"
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _verdict(run: RegressionRun) -> str:
    total = len(run.checks)
    if run.passed:
        return f"PASSED: all {total} cases match their goldens"
    return f"FAILED: {len(run.failed)} of {total} cases drifted"


def _summary_rows(run: RegressionRun) -> list[tuple[str, str]]:
    return [
        ("suites", ", ".join(run.suites)),
        ("executor", run.executor),
        ("tasks", f"{len(run.checks)} on {run.workers} worker process(es)"),
        ("elapsed", f"{_seconds(run.elapsed_s)} (loading the goldens {_seconds(run.load_s)})"),
        ("task CPU time (sum)", _seconds(run.cpu_s)),
        ("task wall time (sum)", _seconds(run.task_wall_s)),
        ("peak worker memory", f"{run.peak_rss_mb:.0f} MiB"),
    ]


def _tolerance_rows(run: RegressionRun) -> list[tuple[str, str]]:
    return [
        (
            suite,
            f"rtol {TOLERANCES[suite][0]:g}, atol {TOLERANCES[suite][1]:g}; "
            "integers, text and labels exact",
        )
        for suite in run.suites
    ]


_CASE_HEADERS: Final = (
    "suite",
    "case",
    "engine",
    "result",
    "values compared",
    "largest abs diff",
    "largest rel diff",
    "first drift",
    "wall s",
    "CPU s",
)
_DRIFT_HEADERS: Final = (
    "part",
    "column",
    "rows differing",
    "first at",
    "expected",
    "actual",
    "max abs diff",
    "max rel diff",
)


def _case_cells(run: RegressionRun) -> list[tuple[str, ...]]:
    return [
        (
            check.suite,
            check.case,
            check.engine or "—",
            "pass" if check.passed else "DRIFT",
            str(check.values),
            _number(check.max_abs_diff),
            _number(check.max_rel_diff),
            check.first_drift or "—",
            f"{stats.wall_s:.3f}",
            f"{stats.cpu_s:.3f}",
        )
        for check, stats in zip(run.checks, run.stats, strict=True)
    ]


def _drift_cells(drift: Drift) -> tuple[str, ...]:
    return (
        drift.part,
        drift.column,
        str(drift.mismatches) if drift.first_row is not None else "—",
        drift.location or "—",
        drift.expected,
        drift.actual,
        _number(drift.max_abs_diff),
        _number(drift.max_rel_diff),
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines.extend("| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows)
    return lines


def _markdown(run: RegressionRun, charts: dict[int, str]) -> str:
    lines = ["# Golden regression check", "", f"**{_verdict(run)}**", ""]
    lines += _md_table(("", ""), _summary_rows(run))
    lines += ["", "Tolerances:", ""]
    lines += [f"- {suite}: {text}" for suite, text in _tolerance_rows(run)]
    lines += ["", "![largest relative difference per case](overview.png)", ""]
    if not run.passed:
        lines += ["## Drifts", ""]
        for index, check in enumerate(run.checks):
            if check.passed:
                continue
            lines += [f"### {check.suite}: {check.label}", ""]
            lines += _md_table(_DRIFT_HEADERS, [_drift_cells(drift) for drift in check.drifts])
            lines.append("")
            if index in charts:
                lines += [f"![{check.suite}: {check.label}]({charts[index]})", ""]
    lines += ["## Cases", ""]
    lines += _md_table(_CASE_HEADERS, _case_cells(run))
    lines.append("")
    return "\n".join(lines)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(header)}</th>" for header in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            marker = (
                ' class="fail"' if cell == "DRIFT" else (' class="pass"' if cell == "pass" else "")
            )
            cells.append(f"<td{marker}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _html(run: RegressionRun, overview: bytes, pngs: dict[int, bytes]) -> str:
    verdict_class = "pass" if run.passed else "fail"
    summary = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in _summary_rows(run)
    )
    tolerances = "".join(
        f"<li>{html.escape(suite)}: {html.escape(text)}</li>"
        for suite, text in _tolerance_rows(run)
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>TradePulse golden regression check</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "img{max-width:100%}.pass{color:#1e8449;font-weight:bold}"
        ".fail{color:#c0392b;font-weight:bold}</style></head><body>",
        "<h1>Golden regression check</h1>",
        f'<p class="{verdict_class}">{html.escape(_verdict(run))}</p>',
        f"<table><tbody>{summary}</tbody></table>",
        f"<p>Tolerances:</p><ul>{tolerances}</ul>",
        _image(overview, "largest relative difference per case"),
    ]
    if not run.passed:
        parts.append("<h2>Drifts</h2>")
        for index, check in enumerate(run.checks):
            if check.passed:
                continue
            parts.append(f"<h3>{html.escape(f'{check.suite}: {check.label}')}</h3>")
            parts.append(
                _html_table(_DRIFT_HEADERS, [_drift_cells(drift) for drift in check.drifts])
            )
            if index in pngs:
                parts.append(_image(pngs[index], f"{check.suite}: {check.label}"))
    parts.append("<h2>Cases</h2>")
    parts.append(_html_table(_CASE_HEADERS, _case_cells(run)))
    parts.append("</body></html>")
    return "".join(parts)


# ------------------------------------------------------------------------------ writing


def write_regression_report(
    run: RegressionRun, out_dir: str | Path = DEFAULT_REGRESSION_DIR
) -> RegressionReport:
    """Write ``run`` as ``index.md``, ``index.html`` and PNG charts into ``out_dir``.

    See the module docstring for the files. ``out_dir`` is created if needed;
    drift charts of an earlier report in it are deleted.

    Raises:
        OSError: a file cannot be written.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in sorted(folder.glob("drift-*.png")):
        stale.unlink()
    overview = _plot_overview(run.checks)
    overview_path = folder / "overview.png"
    overview_path.write_bytes(overview)
    png_paths = [overview_path]
    pngs: dict[int, bytes] = {}
    names: dict[int, str] = {}
    for index, check in enumerate(run.checks):
        if check.chart is None or check.passed:
            continue
        png = _plot_drift(check.chart)
        name = chart_name(check)
        (folder / name).write_bytes(png)
        png_paths.append(folder / name)
        pngs[index] = png
        names[index] = name
    markdown_path = folder / "index.md"
    markdown_path.write_text(_markdown(run, names), encoding="utf-8")
    html_path = folder / "index.html"
    html_path.write_text(_html(run, overview, pngs), encoding="utf-8")
    return RegressionReport(
        markdown_path=markdown_path, html_path=html_path, png_paths=tuple(png_paths)
    )
