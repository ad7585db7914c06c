"""The domain and execution packages: clean exports, pure-core imports only."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

PACKAGES = ["tradepulse.domain", "tradepulse.execution"]
MODULES = [
    "tradepulse.domain.arithmetic",
    "tradepulse.domain.instrument",
    "tradepulse.domain.orders",
    "tradepulse.domain.portfolio",
    "tradepulse.execution.latency",
    "tradepulse.execution.liquidity",
    "tradepulse.execution.matching",
    "tradepulse.execution.risk",
    "tradepulse.execution.journal",
    "tradepulse.execution.throttle",
    "tradepulse.execution.service",
    "tradepulse.execution.service_config",
    "tradepulse.execution.service_views",
    "tradepulse.execution._service_core",
    "tradepulse.execution._service_state",
    "tradepulse.execution._service_codec",
]


@pytest.mark.parametrize("name", PACKAGES + MODULES)
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)

    exported = list(module.__all__)

    assert len(exported) == len(set(exported))
    assert exported == sorted(exported, key=lambda item: (not item.isupper(), item))
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is in __all__ but missing"


def test_execution_core_imports_without_ray_fastapi_or_prometheus() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys
        FORBIDDEN = ("ray", "fastapi", "prometheus_client")

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in FORBIDDEN:
                    raise ImportError(f"core imported forbidden package {{name}}")
                return None

        sys.meta_path.insert(0, Blocker())
        for module in {MODULES!r}:
            importlib.import_module(module)
        print("LEAKED", sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN))
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "LEAKED []" in result.stdout
