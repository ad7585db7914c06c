"""The pure core never imports Ray, FastAPI or prometheus_client."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import tradepulse

CORE_PACKAGES = (
    "tradepulse.errors",
    "tradepulse.backtest",
    "tradepulse.costs",
    "tradepulse.metrics",
    "tradepulse.executor",
    "tradepulse.stress",
    "tradepulse.yamlfile",
    "tradepulse.golden",
    "tradepulse.sweep",
    "tradepulse.live",
    "tradepulse.data",
    "tradepulse.domain",
    "tradepulse.execution",
    "tradepulse.indicators",
    "tradepulse.strategy",
)
FORBIDDEN = ("ray", "fastapi", "prometheus_client")


def _core_modules() -> list[str]:
    modules = ["tradepulse", "tradepulse.errors"]
    modules.extend(
        info.name
        for info in pkgutil.walk_packages(tradepulse.__path__, prefix="tradepulse.")
        if info.name.startswith(CORE_PACKAGES[1:])
    )
    return sorted(set(modules))


def test_core_module_list_is_not_empty() -> None:
    modules = _core_modules()

    assert "tradepulse.indicators.classic" in modules
    assert "tradepulse.data.loaders" in modules


def test_core_imports_without_ray_fastapi_or_prometheus() -> None:
    # Arrange: a child interpreter where importing a forbidden package fails loudly.
    script = textwrap.dedent(
        f"""
        import importlib, sys
        FORBIDDEN = {FORBIDDEN!r}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in FORBIDDEN:
                    raise ImportError(f"core imported forbidden package {{name}}")
                return None

        sys.meta_path.insert(0, Blocker())
        for module in {_core_modules()!r}:
            importlib.import_module(module)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
        print("LEAKED", leaked)
        """
    )

    # Act
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )

    # Assert
    assert result.returncode == 0, result.stderr
    assert "LEAKED []" in result.stdout
