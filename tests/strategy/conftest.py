"""Fixtures of the strategy tests: the example plugin installed into the running venv."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

EXAMPLE_PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "tradepulse-example-plugin"
EXAMPLE_DISTRIBUTION = "tradepulse-example-plugin"


def _builds_wheels_offline() -> bool:
    """Return whether this venv's setuptools can build the plugin without downloading anything.

    setuptools >= 70.1 has bdist_wheel built in (the example requires it); the dev
    environment installs one. Elsewhere pip builds in isolation, fetching it from PyPI.
    """
    try:
        major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


def _pip(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Pip-install examples/tradepulse-example-plugin for the session; yield its strategy name."""
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the repo.
    source = tmp_path_factory.mktemp("plugin") / EXAMPLE_PLUGIN.name
    shutil.copytree(
        EXAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    offline = ["--no-build-isolation", "--no-index"] if _builds_wheels_offline() else []
    installed = _pip("install", "--no-deps", "-q", *offline, str(source))
    assert installed.returncode == 0, installed.stderr
    importlib.invalidate_caches()
    try:
        yield "momentum"
    finally:
        removed = _pip("uninstall", "-y", "-q", EXAMPLE_DISTRIBUTION)
        for module in [m for m in sys.modules if m.startswith("tradepulse_example_plugin")]:
            del sys.modules[module]
        importlib.invalidate_caches()
        assert removed.returncode == 0, removed.stderr
