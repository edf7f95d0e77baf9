"""How deep a JSON value nests: stored documents are refused past a depth, because
copying, validating or serializing them recurses."""

from __future__ import annotations

from collections.abc import Mapping


def nesting(value: object) -> int:
    """Nesting depth of a JSON value (a scalar is 1), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(node, Mapping):
            pending.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, level + 1) for child in node)
    return deepest
