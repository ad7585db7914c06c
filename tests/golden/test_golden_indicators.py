"""Golden indicator files: provenance holds and today's code reproduces them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from tradepulse.golden import check_indicator_goldens, update_indicator_goldens
from tradepulse.golden.indicators import GoldenDrift, _compare
from tradepulse.indicators import indicator_columns


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sample_data_matches_its_metadata(sample_dir: Path) -> None:
    metadata = json.loads((sample_dir / "metadata.json").read_text())

    for name, entry in metadata["files"].items():
        path = sample_dir / name
        assert _sha256(path) == entry["sha256"], name
        assert pl.read_csv(path).height == entry["rows"]
    assert metadata["source_package"] == "arch"
    assert metadata["source_package_licence"].startswith("NCSA")


def test_golden_metadata_names_its_inputs(repo_root: Path) -> None:
    golden = repo_root / "golden"
    metadata = json.loads((golden / "indicators" / "metadata.json").read_text())

    assert metadata["columns"] == indicator_columns()
    for name, entry in metadata["files"].items():
        assert _sha256(golden / "indicators" / name) == entry["sha256"], name
        assert _sha256(repo_root / entry["source"]) == entry["source_sha256"], name


def test_current_code_reproduces_the_goldens() -> None:
    drifts = check_indicator_goldens()

    assert drifts == [], "\n".join(str(d) for d in drifts)


def test_update_then_check_round_trips(tmp_path: Path, repo_root: Path) -> None:
    (tmp_path / "data").symlink_to(repo_root / "golden" / "data")

    written = update_indicator_goldens(tmp_path)

    assert {p.name for p in written} >= {"sp500_daily.csv", "nasdaq_daily.csv", "metadata.json"}
    assert check_indicator_goldens(tmp_path) == []


def test_compare_reports_drift_in_value_and_phase() -> None:
    expected = pl.DataFrame({"x": [1.0, 2.0, None], "phase": ["proto", None, "neutral"]})
    actual = pl.DataFrame({"x": [1.0, 2.0 + 1e-6, None], "phase": ["proto", None, "emergent"]})

    drifts = _compare("f.csv", expected, actual)

    assert [d.column for d in drifts] == ["x", "phase"]
    assert drifts[0].first_row == 1
    assert isinstance(drifts[1], GoldenDrift)
    assert "emergent" in str(drifts[1])


def test_compare_reports_missing_column_and_row_count() -> None:
    expected = pl.DataFrame({"x": [1.0], "y": [2.0]})

    assert _compare("f", expected, pl.DataFrame({"x": [1.0]}))[0].column == "y"
    assert _compare("f", expected, pl.DataFrame({"x": [1.0, 2.0]}))[0].column == "<rows>"
