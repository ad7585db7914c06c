"""A plugin module whose import fails (loaded only through a fake entry point)."""

from __future__ import annotations

raise RuntimeError("broken plugin: missing configuration")
