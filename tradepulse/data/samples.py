"""The real market data shipped in ``golden/data/`` and how it was exported.

The files were exported once from the ``arch`` package (NCSA licence), which
bundles daily S&P 500 and NASDAQ Composite bars for 1999-2018. TradePulse does
not need ``arch`` at run time: the CSV files and their ``metadata.json`` are
committed, and :func:`sample_data_dir` finds them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tradepulse.errors import DataError

__all__ = ["SAMPLE_FILES", "sample_data_dir", "sample_paths"]

#: Shipped sample files, by symbol.
SAMPLE_FILES: dict[str, str] = {"SPX": "sp500_daily.csv", "NASDAQ": "nasdaq_daily.csv"}

_ARCH_DATASETS: dict[str, str] = {"SPX": "sp500", "NASDAQ": "nasdaq"}


def sample_data_dir() -> Path:
    """Return the ``golden/data`` folder holding the shipped sample data.

    Looks in the current directory first, then beside the installed package
    (an editable install from a clone). Raises :class:`DataError` when neither
    has it.
    """
    candidates = [
        Path.cwd() / "golden" / "data",
        Path(__file__).resolve().parents[2] / "golden" / "data",
    ]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in SAMPLE_FILES.values()):
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"shipped sample data not found (looked in {looked}); run from a TradePulse clone"
    )


def sample_paths() -> list[Path]:
    """Return the paths of the shipped sample files, in :data:`SAMPLE_FILES` order."""
    directory = sample_data_dir()
    return [directory / name for name in SAMPLE_FILES.values()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_arch_samples(out_dir: Path) -> None:  # pragma: no cover - maintainer tool, needs `arch`
    """Export the sample CSVs and ``metadata.json`` from the ``arch`` package."""
    import importlib.metadata

    import numpy as np
    import polars as pl
    from arch.data import nasdaq, sp500

    loaders = {"sp500": sp500.load, "nasdaq": nasdaq.load}
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, object] = {}
    for symbol, filename in SAMPLE_FILES.items():
        dataset = _ARCH_DATASETS[symbol]
        raw = loaders[dataset]()
        frame = pl.DataFrame(
            {
                "ts": [d.strftime("%Y-%m-%d") for d in raw.index],
                "open": raw["Open"].to_numpy(dtype=np.float64),
                "high": raw["High"].to_numpy(dtype=np.float64),
                "low": raw["Low"].to_numpy(dtype=np.float64),
                "close": raw["Close"].to_numpy(dtype=np.float64),
                "volume": raw["Volume"].to_numpy(dtype=np.float64),
            }
        )
        path = out_dir / filename
        frame.write_csv(path, float_precision=6)
        files[filename] = {
            "symbol": symbol,
            "source": f"arch.data.{dataset}.load() (columns Open, High, Low, Close, Volume)",
            "sha256": _sha256(path),
            "rows": frame.height,
            "first_date": frame["ts"][0],
            "last_date": frame["ts"][-1],
        }
    metadata = {
        "description": "Real daily OHLCV bars of two US equity indices, 1999-2018.",
        "source_package": "arch",
        "source_package_version": importlib.metadata.version("arch"),
        "source_package_licence": "NCSA (University of Illinois/NCSA Open Source License)",
        "upstream": "index levels as published by Yahoo! Finance, bundled in arch.data",
        "exported_with": "make golden-data (python -m tradepulse.data.samples)",
        "timestamps": "trading dates (YYYY-MM-DD), read as 00:00 UTC",
        "float_precision": "6 decimals, as bundled (the source has 6 significant decimals)",
        "files": files,
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover
    export_arch_samples(Path("golden/data"))
