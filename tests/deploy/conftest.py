"""Fixtures for the scale-out asset tests: the KubeRay CRDs and the parsed assets."""

from __future__ import annotations

import pytest
from deploy_support import CRD_DIR, CrdSchema, load_crd_schemas


@pytest.fixture(scope="session")
def crd_schemas() -> dict[tuple[str, str], CrdSchema]:
    """Return the KubeRay CRD schemas from ../shared/kuberay-crds (fail if missing)."""
    try:
        return load_crd_schemas(CRD_DIR)
    except FileNotFoundError as error:
        pytest.fail(str(error), pytrace=False)
