"""The canonical JSON encoding that identities and history hashes are computed over.

Sorted keys, compact separators, UTF-8 without escapes, no NaN or infinity, and integral numbers written as
integers. The last rule matters because protobuf's ``Struct`` carries every number as a double: ``1`` sent
from one language must hash the same as ``1.0`` from another. docs/identity.md specifies the encoding for
other languages.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_SAFE_INTEGER = 2**53


def normalize(value: Any) -> Any:
    """Return ``value`` with integral floats turned into ints and tuples into lists, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinity have no JSON encoding")
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {_key(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON encoding")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError("object keys must be strings")
    return key


def canonical_json(value: Any) -> str:
    return json.dumps(
        normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def depth(value: Any) -> int:
    """Nesting depth of a JSON value: 0 for a scalar, 1 for a flat object or list."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest
