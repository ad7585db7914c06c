"""Shared fixtures: the shipped real data, hypothesis profiles and the session's Ray cluster."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tradepulse.cluster import ClusterInfo

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


@pytest.fixture(scope="session")
def ray_session() -> Iterator[ClusterInfo]:
    """Start one local Ray cluster (2 CPUs, no dashboard) for the whole session.

    Lazy: only sessions with a test that requests it pay the ~5 s start-up.
    Workers import task functions by module name, so they get the test folders
    pytest put on ``sys.path`` (through ``PYTHONPATH``, inherited from the raylet).
    """
    import ray  # here, not at the top: the core suite never imports Ray

    from tradepulse.cluster import cluster_info, shutdown

    # A CLI test may have started Ray through connect() without the settings
    # below (and no PYTHONPATH for test modules): stop it, start the session's.
    shutdown()
    if ray.is_initialized():
        ray.shutdown()
    venv = Path(sys.prefix).resolve()
    test_paths = [
        entry
        for entry in sys.path
        if entry
        and Path(entry).resolve().is_relative_to(REPO_ROOT)
        and not Path(entry).resolve().is_relative_to(venv)
    ]
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*test_paths, *([saved] if saved else [])])
    try:
        ray.init(
            address="local",  # never join a cluster another process left running
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        yield cluster_info()
    finally:
        ray.shutdown()
