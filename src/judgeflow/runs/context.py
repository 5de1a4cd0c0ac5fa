"""One run context for both entry points: claim or resume the folder, check the config, open the store and cache.

`judgeflow run` keeps its work in a run folder (``DIR/store.sqlite``), `judgeflow judge` beside its output file
(``OUT.store.sqlite``); both follow the same rule, written here once:

- a store that holds work (an item or a paid call) belongs to a run: continuing it needs ``resume``, starting over
  needs ``restart`` (which forgets the store and whatever else the entry point names), anything else is refused;
- a store that holds no work is started afresh, resumed or not, so a run that stopped before doing anything (a
  bad input line, a config error, a model name the server does not know) is simply run again, fixed;
- a resumed run must have the same configuration, except the keys the entry point lets change (``ignore``);
  `judgeflow.runs.store.ConfigMismatch` names the keys that differ.

The context also holds the response cache (the run's own store first, then an optional cache shared across runs)
and reports what the run spent: every distinct paid call counted once, across every attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.calls.cache import ResponseCache
from judgeflow.inputs.config import ConfigError
from judgeflow.runs.store import STORE_FILENAME, RunStore

__all__ = ["CACHE_FILENAME", "RunContext", "open_run"]

CACHE_FILENAME = "cache.sqlite"
"""The file of a response cache shared across runs (``--cache DIR``)."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """What an entry point runs in: its folder, its store, and the response cache over it."""

    folder: Path
    store: RunStore
    cache: ResponseCache

    async def costs(self) -> dict[str, Any]:
        """Spending of the whole run (across resumes): every distinct paid call counted once."""
        by_model = await self.store.cost_by_model()
        return {
            "total_usd": round(sum(entry.cost_usd for entry in by_model.values()), 6),
            "cached_calls": self.cache.stats.hits,
            "models": {
                model: {
                    "calls": entry.calls,
                    "input_tokens": entry.input_tokens,
                    "output_tokens": entry.output_tokens,
                    "cost_usd": round(entry.cost_usd, 6),
                }
                for model, entry in by_model.items()
            },
        }


@asynccontextmanager
async def open_run(
    folder: Path,
    config: Mapping[str, Any],
    *,
    filename: str = STORE_FILENAME,
    resume: bool = False,
    restart: bool = False,
    ignore: Collection[str] = (),
    forget: Sequence[Path] = (),
    cache_dir: Path | None = None,
    holder: str | None = None,
) -> AsyncIterator[RunContext]:
    """Claim ``folder`` (its store ``filename``) for a run of ``config``; close everything on the way out.

    ``forget`` names files besides the store that ``restart`` deletes (a fine-tuning job record). ``holder``
    names what the user sees in the refusal (the run folder, or the output file of a judge run).
    """
    if restart:
        _forget(folder, filename, forget)
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(await RunStore.open(folder, filename=filename))
        work = await store.holds_work()
        if not resume and work:
            shown = holder or str(folder)
            raise ConfigError(f"{shown} already holds a run: use --resume to continue it or --restart to start over")
        if not work:
            # Nothing was done (a run stopped before its first result, by a wrong model or URL): whatever the
            # store remembers (an earlier config) can go, so a resume with the mistake fixed is a fresh start.
            await store.aclose()
            _forget(folder, filename, forget)
            store = await stack.enter_async_context(await RunStore.open(folder, filename=filename))
        await store.check_config(config, ignore=ignore)
        shared: tuple[RunStore, ...] = ()
        if cache_dir is not None:
            shared = (await stack.enter_async_context(await RunStore.open(cache_dir, filename=CACHE_FILENAME)),)
        yield RunContext(folder, store, ResponseCache(store, *shared))


def _forget(folder: Path, filename: str, also: Sequence[Path]) -> None:
    for path in [*folder.glob(f"{filename}*"), *also]:
        path.unlink(missing_ok=True)
