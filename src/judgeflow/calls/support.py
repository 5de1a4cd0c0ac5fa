"""What each server and model of a run refused (constrained output, log probabilities), learnt once per run.

The state behind `judgeflow.calls.structured`: kept on the run's `judgeflow.calls.context.CallContext`, so every role
calling the same (server, model) shares it, and the report lists its ``fallbacks``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal

import anyio

from judgeflow.protocol.calls import Feature

__all__ = ["Fallback", "OutputSupport", "Plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How one request asks: constrained output of ``output`` kind (None: plain text), with ``logprobs`` or not."""

    output: Literal["json_schema", "json_object"] | None
    logprobs: bool

    @property
    def json_reply(self) -> bool:
        return self.output is not None

    def describe(self) -> str:
        asked = self.output or "text"
        return f"{asked} with logprobs" if self.logprobs else asked


@dataclass(frozen=True, slots=True)
class Fallback:
    """One refusal: ``role`` asked ``model`` on ``server`` for ``feature`` and now asks ``instead``."""

    role: str
    server: str
    model: str
    feature: Feature
    instead: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "role": self.role,
            "server": self.server,
            "model": self.model,
            "feature": self.feature,
            "instead": self.instead,
            "detail": self.detail,
        }


@dataclass(slots=True)
class OutputSupport:
    """What each (server, model) refused in this run, and the fallbacks that followed (see the module docstring)."""

    refused: dict[str, set[Feature]] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    _answered: set[str] = field(default_factory=set)
    _locks: dict[str, anyio.Lock] = field(default_factory=dict)

    def plan(self, key: str, *, json_reply: bool, logprobs: bool) -> Plan:
        """The best request the server behind ``key`` has not refused."""
        refused = self.refused.get(key, set())
        output: Literal["json_schema", "json_object"] | None = None
        if json_reply and "json_schema" not in refused:
            output = "json_schema"
        elif json_reply and "json_object" not in refused:
            output = "json_object"
        return Plan(output, logprobs and "logprobs" not in refused)

    def refuse(self, key: str, feature: Feature) -> bool:
        """Remember a refusal; False when it was known already."""
        features = self.refused.setdefault(key, set())
        if feature in features:
            return False
        features.add(feature)
        return True

    def first_call(self, key: str) -> AbstractAsyncContextManager[object]:
        """Held around a call until the server behind ``key`` has answered once (one call at a time until then)."""
        if key in self._answered:
            return nullcontext()
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        return lock

    def answered(self, key: str) -> None:
        self._answered.add(key)
        self._locks.pop(key, None)
