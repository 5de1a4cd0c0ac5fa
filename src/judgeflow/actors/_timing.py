"""Latency measurement for call events, in one place so that every actor measures the same way."""

from __future__ import annotations

import time

__all__ = ["elapsed_since", "start_timer"]


def start_timer() -> float:
    return time.perf_counter()


def elapsed_since(started: float) -> float:
    return time.perf_counter() - started
