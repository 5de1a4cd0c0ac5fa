"""The terminal dashboard: a Textual app that watches a run and never slows it.

``state`` folds events into a snapshot (pure: no clock, no I/O), ``widgets`` render snapshots, ``app`` wires them
to an event stream with a repaint timer, and ``display`` runs the app next to a pipeline::

    async with open_pipeline(config) as run:
        await run_with_dashboard(run)

This package imports Textual; the rest of judgeflow imports it lazily, only when the dashboard is shown.
"""

from __future__ import annotations

from .app import Controls, DashboardApp
from .display import TextualDisplay, run_with_dashboard
from .state import DashboardState, Eta, PerSecond, Snapshot

__all__ = [
    "Controls",
    "DashboardApp",
    "DashboardState",
    "Eta",
    "PerSecond",
    "Snapshot",
    "TextualDisplay",
    "run_with_dashboard",
]
