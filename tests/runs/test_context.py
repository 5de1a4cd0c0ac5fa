"""The one run context of `run` and `judge`: when a folder may be claimed, resumed or restarted, and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeflow.calls.cache import request_hash
from judgeflow.inputs.config import ConfigError
from judgeflow.protocol.calls import ChatRequest, ChatResult
from judgeflow.protocol.messages import ChatMessage, Usage
from judgeflow.runs.context import CACHE_FILENAME, open_run
from judgeflow.runs.store import ConfigMismatch

pytestmark = pytest.mark.anyio

CONFIG = {"seed": 0, "workers": {"teacher": 8}}
REQUEST = ChatRequest((ChatMessage("user", "Grade this."),), max_tokens=10)
RESULT = ChatResult("4\nfine", "gpt-4o-mini", Usage(10, 3))


async def _do_work(folder: Path, **options: object) -> None:
    async with open_run(folder, CONFIG, **options) as run:  # type: ignore[arg-type]
        await run.cache.remember("openai", "gpt-4o-mini", REQUEST, RESULT, 0.01)


async def test_a_fresh_folder_is_claimed_and_remembers_its_config(tmp_path: Path) -> None:
    async with open_run(tmp_path / "run", CONFIG) as run:
        assert run.folder == tmp_path / "run"
        assert not await run.store.holds_work()
    # The config is on record: resuming with another one is refused, naming the key.
    await _do_work(tmp_path / "run", resume=True)
    with pytest.raises(ConfigMismatch) as caught:
        async with open_run(tmp_path / "run", {**CONFIG, "seed": 1}, resume=True):
            pass
    assert caught.value.keys == ["seed"]


async def test_a_folder_that_holds_work_needs_resume_or_restart(tmp_path: Path) -> None:
    await _do_work(tmp_path)
    with pytest.raises(ConfigError, match="already holds a run: use --resume to continue it or --restart"):
        async with open_run(tmp_path, CONFIG):
            pass
    async with open_run(tmp_path, CONFIG, resume=True) as run:
        assert await run.store.get_call(request_hash("openai", "gpt-4o-mini", REQUEST)) is not None
    async with open_run(tmp_path, CONFIG, restart=True) as run:
        assert not await run.store.holds_work()


async def test_the_refusal_names_what_the_user_knows(tmp_path: Path) -> None:
    await _do_work(tmp_path, filename="out.jsonl.store.sqlite")
    with pytest.raises(ConfigError, match=r"out\.jsonl already holds a run"):
        async with open_run(tmp_path, CONFIG, filename="out.jsonl.store.sqlite", holder="out.jsonl"):
            pass


async def test_a_store_without_work_starts_afresh_with_the_new_config(tmp_path: Path) -> None:
    async with open_run(tmp_path, CONFIG):
        pass  # stopped before doing anything (a bad input line, say)
    async with open_run(tmp_path, {**CONFIG, "seed": 7}) as run:
        assert not await run.store.holds_work()
    # The new config is the one on record now.
    async with open_run(tmp_path, {**CONFIG, "seed": 7}, resume=True):
        pass


async def test_resume_may_change_the_keys_it_is_told_to_ignore(tmp_path: Path) -> None:
    await _do_work(tmp_path)
    changed = {**CONFIG, "workers": {"teacher": 32}}
    async with open_run(tmp_path, changed, resume=True, ignore=("workers",)):
        pass


async def test_restart_also_forgets_the_files_it_is_given(tmp_path: Path) -> None:
    await _do_work(tmp_path)
    job = tmp_path / "finetune" / "job.json"
    job.parent.mkdir()
    job.write_text("{}", encoding="utf-8")
    async with open_run(tmp_path, CONFIG, restart=True, forget=[job]):
        pass
    assert not job.exists()


async def test_a_shared_cache_serves_a_second_run_that_pays_nothing(tmp_path: Path) -> None:
    shared = tmp_path / "cache"
    await _do_work(tmp_path / "run1", cache_dir=shared)
    assert (shared / CACHE_FILENAME).is_file()
    async with open_run(tmp_path / "run2", CONFIG, cache_dir=shared) as run:
        assert await run.cache.lookup("openai", "gpt-4o-mini", REQUEST) == RESULT
        costs = await run.costs()
    assert costs["cached_calls"] == 1
    assert costs["total_usd"] == 0.0  # the second run's own store holds no paid call


async def test_costs_count_each_distinct_paid_call_once(tmp_path: Path) -> None:
    await _do_work(tmp_path)
    await _do_work(tmp_path, resume=True)  # the same call again: already paid for
    async with open_run(tmp_path, CONFIG, resume=True) as run:
        costs = await run.costs()
    assert costs["total_usd"] == pytest.approx(0.01)
    assert costs["models"]["gpt-4o-mini"] == {"calls": 1, "input_tokens": 10, "output_tokens": 3, "cost_usd": 0.01}
