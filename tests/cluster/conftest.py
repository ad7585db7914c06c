"""The `executor` fixture: every contract test runs on LocalExecutor and RayExecutor."""

from __future__ import annotations

import pytest

from tradepulse.executor import Executor, LocalExecutor


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> Executor:
    """Return a LocalExecutor, then a RayExecutor on the session's Ray cluster."""
    if request.param == "local":
        return LocalExecutor()
    request.getfixturevalue("ray_session")
    from tradepulse.cluster import RayExecutor

    return RayExecutor(max_in_flight=4)
