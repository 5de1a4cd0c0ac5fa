"""How a run is shown: plain progress lines, or the Textual dashboard; both only observe events.

``display`` is the protocol and the one choice between the two; ``plain`` writes progress lines; ``state`` folds
events into a snapshot (pure: no clock, no I/O), ``widgets`` render snapshots, ``app`` wires them to an event
stream with a repaint timer, and ``dashboard`` runs the app next to a pipeline::

    async with open_pipeline(config) as run:
        await run_with_dashboard(run)

Names are loaded on first use, so the plain display never imports Textual.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Controls, DashboardApp
    from .dashboard import TextualDisplay, run_with_dashboard
    from .display import Display
    from .plain import PlainDisplay
    from .series import Eta, PerSecond
    from .state import DashboardState
    from .views import Snapshot

_HOMES = {
    "Controls": "app",
    "DashboardApp": "app",
    "TextualDisplay": "dashboard",
    "run_with_dashboard": "dashboard",
    "Display": "display",
    "PlainDisplay": "plain",
    "DashboardState": "state",
    "Eta": "series",
    "PerSecond": "series",
    "Snapshot": "views",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "Controls",
    "DashboardApp",
    "DashboardState",
    "Display",
    "Eta",
    "PerSecond",
    "PlainDisplay",
    "Snapshot",
    "TextualDisplay",
    "run_with_dashboard",
]
