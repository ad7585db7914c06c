"""Price with the geometry indicators and phases: PNG charts and one HTML page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import polars as pl

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

__all__ = ["IndicatorReport", "write_indicator_report"]

PHASE_COLOURS: Mapping[str, str] = {
    "proto": "#f4d03f",
    "precognitive": "#5dade2",
    "emergent": "#58d68d",
    "post_emergent": "#ec7063",
    "neutral": "#ffffff",
}


@dataclass(frozen=True, slots=True)
class IndicatorReport:
    """Where a report was written."""

    html_path: Path
    png_paths: tuple[Path, ...]


def _plot_symbol(bars: pl.DataFrame, indicators: pl.DataFrame, title: str, window: int) -> bytes:
    ts = bars.get_column("ts").to_numpy()
    close = bars.get_column("close").to_numpy()
    phase = indicators.get_column("phase").to_list()
    panels: list[tuple[str, str]] = [
        (f"kuramoto_r_{window}", "Kuramoto R"),
        (f"delta_entropy_{window}", "ΔH (nats)"),
        (f"hurst_{window}", "Hurst"),
        (f"ricci_{window}", "Ricci κ̄"),
    ]
    fig, axes = plt.subplots(
        len(panels) + 1,
        1,
        figsize=(12, 10),
        sharex=True,
        gridspec_kw={"height_ratios": [3] + [1] * len(panels)},
    )
    price_axis = axes[0]
    price_axis.plot(ts, close, color="black", linewidth=0.8)
    price_axis.set_yscale("log")
    price_axis.set_title(title)
    price_axis.set_ylabel("close (log)")
    start = 0
    for index in range(1, len(phase) + 1):
        if index == len(phase) or phase[index] != phase[start]:
            name = phase[start]
            if name is not None and name != "neutral":
                price_axis.axvspan(
                    ts[start], ts[index - 1], color=PHASE_COLOURS[name], alpha=0.35, linewidth=0
                )
            start = index
    handles = [
        Rectangle((0, 0), 1, 1, color=colour, alpha=0.5)
        for name, colour in PHASE_COLOURS.items()
        if name != "neutral"
    ]
    labels = [name for name in PHASE_COLOURS if name != "neutral"]
    price_axis.legend(handles, labels, loc="upper left", fontsize=8, title="phase")
    for axis, (column, label) in zip(axes[1:], panels, strict=True):
        values = indicators.get_column(column).to_numpy().astype(np.float64)
        axis.plot(ts, values, linewidth=0.7)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>no rows</p>"
    headers = list(rows[0].keys())
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for header in headers:
            value = row[header]
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_indicator_report(
    bars: pl.DataFrame,
    indicators: pl.DataFrame,
    *,
    out_dir: Path,
    window: int,
    summary: Sequence[Mapping[str, Any]],
) -> IndicatorReport:
    """Write one PNG per symbol and ``indicators.html`` embedding them into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if "symbol" in bars.columns:
        groups = [
            (str(part.get_column("symbol")[0]), part, ind)
            for part, ind in zip(
                bars.partition_by("symbol", maintain_order=True),
                indicators.partition_by("symbol", maintain_order=True),
                strict=True,
            )
        ]
    else:
        groups = [("series", bars, indicators)]
    png_paths: list[Path] = []
    images: list[str] = []
    for symbol, part, ind in groups:
        png = _plot_symbol(part, ind, f"{symbol}: price, geometry indicators, phases", window)
        path = out_dir / f"indicators_{symbol}.png"
        path.write_bytes(png)
        png_paths.append(path)
        encoded = base64.b64encode(png).decode("ascii")
        images.append(
            f"<h2>{html.escape(symbol)}</h2>"
            f'<img alt="{html.escape(symbol)} indicators" src="data:image/png;base64,{encoded}">'
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>TradePulse indicators</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}</style>"
        "</head><body><h1>TradePulse indicator analysis</h1>"
        f"<h2>Latest values</h2>{_table(summary)}{''.join(images)}</body></html>"
    )
    html_path = out_dir / "indicators.html"
    html_path.write_text(page, encoding="utf-8")
    return IndicatorReport(html_path=html_path, png_paths=tuple(png_paths))
