"""One spelling per JSON value, so that equal data hashes and compares equal (request hashes, stored configs)."""

from __future__ import annotations

import json

__all__ = ["canonical_json"]


def canonical_json(data: object) -> str:
    """Sorted keys, no spaces, unicode kept: the same text on every machine and Python version."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
