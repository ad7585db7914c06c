"""Shared fixtures: the shipped real data and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Return the root of the clone."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """Return golden/data, the shipped real daily bars."""
    return REPO_ROOT / "golden" / "data"
