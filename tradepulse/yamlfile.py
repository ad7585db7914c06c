"""Strict YAML for TradePulse's config files (friction configs, stress scenarios, Tune specs).

:class:`StrictLoader` is ``yaml.SafeLoader`` (no Python tags) that also refuses
a key repeated in one mapping, which plain YAML silently resolves to the last
value: in a config file that is always a mistake worth an error.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

__all__ = ["StrictLoader"]


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Build the mapping of ``node``; raise ``ConstructorError`` on a duplicate key."""
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
