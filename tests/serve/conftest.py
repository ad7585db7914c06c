"""Fixtures of the HTTP-layer tests: one app per module over a fake service reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_fakes import FakeService, TestClient, make_client


@pytest.fixture(scope="module")
def _shared_app() -> Iterator[tuple[FakeService, TestClient]]:
    """Build the app once per module (building one takes tens of milliseconds)."""
    service = FakeService()
    with make_client(service) as test_client:
        yield service, test_client


@pytest.fixture
def service(_shared_app: tuple[FakeService, TestClient]) -> FakeService:
    """Return the fake execution service behind ``client``, emptied for this test."""
    shared, _ = _shared_app
    shared.reset()
    return shared


@pytest.fixture
def client(_shared_app: tuple[FakeService, TestClient], service: FakeService) -> TestClient:
    """Return a test client of the app over ``service`` (server exceptions raise)."""
    return _shared_app[1]
