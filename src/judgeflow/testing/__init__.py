"""Test helpers that ship with judgeflow: a fake OpenAI-compatible server on aiohttp.

``judgeflow.testing`` is importable only when aiohttp is installed (it is in the ``test`` extra:
``pip install 'judgeflow[test]'``); nothing else in judgeflow imports it. The names below are loaded on first use,
so that ``python -m judgeflow.testing.openai_server`` does not import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

try:
    import aiohttp as _aiohttp  # noqa: F401  (fail here, with a clear message, rather than on first use)
except ImportError as err:  # pragma: no cover - exercised only without the test extra
    raise ImportError("judgeflow.testing needs aiohttp: pip install 'judgeflow[test]'") from err

if TYPE_CHECKING:
    from .openai_server import (
        FakeOpenAI,
        JudgeFormat,
        OpenAIServer,
        ReplyFn,
        RequestRecord,
        ServerStats,
        reply_for,
        serve_openai,
    )

__all__ = [
    "FakeOpenAI",
    "JudgeFormat",
    "OpenAIServer",
    "ReplyFn",
    "RequestRecord",
    "ServerStats",
    "reply_for",
    "serve_openai",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".openai_server", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
