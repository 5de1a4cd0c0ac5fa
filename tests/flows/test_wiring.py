"""Building a run's models from its config, and naming judges: local, OpenAI-compatible and TGI, over real HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from judgeflow.calls.gate import Limits
from judgeflow.calls.index import EmbeddingIndex
from judgeflow.calls.roles import LLMAnswerer, LLMJudge, LLMQuestionWriter
from judgeflow.core.parsing import parse_judge_reply
from judgeflow.flows.components import build_components
from judgeflow.flows.wiring import JudgeSpecError, resolve_judge, resolve_judges
from judgeflow.inputs.config import (
    BudgetConfig,
    ConfigError,
    DocumentsConfig,
    JudgingConfig,
    PipelineConfig,
    RoleConfig,
    RolesConfig,
    TrainerConfig,
)
from judgeflow.protocol.calls import LimitKey
from judgeflow.protocol.events import CallFinished, Event
from judgeflow.protocol.messages import JudgeInput, StudentReady
from judgeflow.protocol.verdicts import Scored
from judgeflow.providers.local import (
    BM25Index,
    LocalExtractiveAnswerer,
    LocalQuestionWriter,
    LocalStudentJudge,
    LocalTeacherJudge,
    LocalTrainerBackend,
)
from judgeflow.testing import FakeOpenAI, serve_openai
from judgeflow.testing.mediawiki_server import serve_mediawiki
from judgeflow.testing.tgi_server import DEFAULT_MODEL_ID, serve_tgi

pytestmark = pytest.mark.anyio

KEY = "sk-test-FactoryKey0123456789"
ITEM = JudgeInput(
    question="When did Edo become the capital?",
    reference="Edo became the capital in 1868.",
    answer="It became the capital in 1868.",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def openai_role(base_url: str, model: str, **changes: Any) -> RoleConfig:
    return RoleConfig(provider="openai", model=model, base_url=base_url, **changes)


def all_openai(base_url: str, **changes: Any) -> PipelineConfig:
    roles = RolesConfig(
        question_writer=openai_role(base_url, "gpt-4o-mini", max_tokens=200),
        retriever=openai_role(base_url, "text-embedding-3-small"),
        answerer=openai_role(base_url, "gpt-4o-mini", max_tokens=100, concurrency=3),
        teacher=openai_role(base_url, "gpt-4o", max_tokens=60, rpm=6000, tpm=1_000_000, concurrency=5),
        student=openai_role(base_url, "gpt-3.5-turbo", max_tokens=60),
    )
    return PipelineConfig(cities=("Tokyo", "Paris"), roles=roles, **changes)


async def test_local_config_builds_the_offline_stand_ins(tmp_path: Path) -> None:
    events: list[Event] = []
    components, resources = await build_components(PipelineConfig(), publish=events.append, cache_dir=tmp_path)
    async with resources:
        assert len(components.documents) == 8
        assert isinstance(components.writer, LocalQuestionWriter)
        assert isinstance(components.index, BM25Index)
        assert isinstance(components.answerer, LocalExtractiveAnswerer)
        assert isinstance(components.teacher, LocalTeacherJudge)
        assert isinstance(components.trainer, LocalTrainerBackend)
        assert isinstance(components.base_student, LocalStudentJudge)
        assert components.base_student.name == "student_base"
        assert resources.budget.max_usd is None
        assert resources.registry.gates() == []
    assert events == []


async def test_all_openai_config_runs_every_role_through_one_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    events: list[Event] = []
    async with serve_openai(FakeOpenAI(api_key=KEY)) as server:
        config = all_openai(server.base_url, budget=BudgetConfig(max_cost_usd=5.0))
        components, resources = await build_components(config, publish=events.append, cache_dir=tmp_path)
        async with resources:
            assert isinstance(components.writer, LLMQuestionWriter)
            assert isinstance(components.index, EmbeddingIndex)
            assert isinstance(components.answerer, LLMAnswerer)
            assert isinstance(components.teacher, LLMJudge)
            assert isinstance(components.base_student, LLMJudge)
            assert isinstance(components.trainer, LocalTrainerBackend)
            assert server.stats.requests["embeddings"] >= 1  # the index was built
            tokyo = components.documents[0]
            pairs = await components.writer.write(tokyo, max_questions=2)
            assert len(pairs) == 2
            # The reference is a sentence of its chunk: dense retrieval finds the chunk.
            passages = await components.index.search(pairs[0].reference, k=2)
            assert passages[0].text == pairs[0].source_text
            answer = await components.answerer.answer(pairs[0].question, passages)
            item = JudgeInput(pairs[0].question, pairs[0].reference, answer.text)
            for judge in (components.teacher, components.base_student):
                assert isinstance(parse_judge_reply((await judge.judge(item)).text), Scored)
            ledger = resources.ledger
            assert {"gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo", "text-embedding-3-small"} <= set(ledger.models)
            assert resources.budget.max_usd == 5.0
            assert resources.budget.spent_usd == pytest.approx(ledger.total_usd)
            teacher = resources.registry.gate(LimitKey("openai", "chat.completions", "gpt-4o", server.base_url)).limits
            assert (teacher.rpm, teacher.tpm, teacher.max_in_flight) == (6000, 1_000_000, 5)
            # The writer and the answerer share gpt-4o-mini: one gate with the stricter cap.
            shared = resources.registry.gate(
                LimitKey("openai", "chat.completions", "gpt-4o-mini", server.base_url)
            ).limits
            assert shared.max_in_flight == 3
        assert server.stats.responses[401] == 0


async def test_a_whole_pipeline_runs_on_openai_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from judgeflow.flows.pipeline import open_pipeline

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    build_events: list[Event] = []
    async with serve_openai(FakeOpenAI(api_key=KEY)) as server:
        config = all_openai(server.base_url, questions_per_doc=6, out_dir=tmp_path / "run")
        components, resources = await build_components(config, publish=build_events.append, cache_dir=tmp_path)
        async with resources, open_pipeline(config, components=components) as run:
            report = await run.wait()
    assert report["agreement"]["student_base"]["failed"] == 0
    assert resources.ledger.get("gpt-4o").calls == run.counts["train"] + run.counts["test"]
    assert (tmp_path / "run" / "report.json").is_file()
    # Role events go to the publish the components were built with (the writer's calls, the index's embeddings).
    assert {e.actor for e in build_events if isinstance(e, CallFinished)} == {"question_writer", "retriever"}


async def test_hf_answerer_against_a_tgi_server(tmp_path: Path) -> None:
    async with serve_tgi() as server:
        roles = RolesConfig(answerer=RoleConfig(provider="hf", model=DEFAULT_MODEL_ID, base_url=server.base_url))
        config = PipelineConfig(cities=("Tokyo",), roles=roles)
        components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
        async with resources:
            assert isinstance(components.answerer, LLMAnswerer)
            passages = await components.index.search("When did Edo become the capital of Japan?", k=2)
            reply = await components.answerer.answer("When did Edo become the capital of Japan?", passages)
        assert server.requests["chat"] == 1
    assert reply.model == DEFAULT_MODEL_ID
    assert reply.text != "I don't know."
    assert resources.ledger.get(DEFAULT_MODEL_ID).calls == 1


async def test_hf_retriever_embeds_through_a_tgi_server(tmp_path: Path) -> None:
    async with serve_tgi() as server:
        roles = RolesConfig(retriever=RoleConfig(provider="hf", model=server.base_url))
        config = PipelineConfig(cities=("Paris",), roles=roles)
        components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
        async with resources:
            assert isinstance(components.index, EmbeddingIndex)
            assert len(await components.index.search("the Seine", k=2)) == 2
        assert server.requests["embed"] >= 2


async def test_files_documents(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Apples\n\nApples grow on trees in orchards.\n", encoding="utf-8")
    (folder / "b.txt").write_text("Bananas grow in bunches on large plants.\n", encoding="utf-8")
    config = PipelineConfig(documents=DocumentsConfig(source="files", path=folder))
    components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
    async with resources:
        assert [(d.id, d.title) for d in components.documents] == [("a.md", "Apples"), ("b.txt", "b")]
        passages = await components.index.search("Where do bananas grow?", k=1)
        assert passages[0].doc_id == "b.txt"


@pytest.fixture
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.mark.usefixtures("_no_proxy")
async def test_wikipedia_documents_are_fetched_into_the_cache(tmp_path: Path) -> None:
    pages = {"History of Paris": "Paris grew on an island in the Seine.\n\nThe Romans called it Lutetia."}
    async with serve_mediawiki(pages) as server:
        documents = DocumentsConfig(source="wikipedia", titles=("History of Paris",), api_url=server.api_url)
        components, resources = await build_components(
            PipelineConfig(documents=documents), publish=lambda _e: None, cache_dir=tmp_path
        )
        await resources.aclose()
    assert [d.id for d in components.documents] == ["history_of_paris"]
    assert (tmp_path / "wikipedia" / "history_of_paris.json").is_file()


async def test_prompt_and_price_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    seen: list[str] = []

    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str:
        seen.append(messages[0][1])
        return "3\nAverage."

    async with serve_openai(FakeOpenAI(reply_fn=reply)) as server:
        roles = RolesConfig(teacher=openai_role(server.base_url, "my-judge"))
        config = PipelineConfig(
            roles=roles, prompts={"judge_system": "Grade it, 1 to 5."}, prices={"my-judge": [1000.0, 1000.0]}
        )
        components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
        async with resources:
            reply_ = await components.teacher.judge(ITEM)
    assert seen == ["Grade it, 1 to 5."]
    assert reply_.usage is not None
    assert reply_.cost_usd == pytest.approx((reply_.usage.input_tokens + reply_.usage.output_tokens) * 1e-3)


async def test_bad_prompts_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        await build_components(
            PipelineConfig(prompts={"judge_rubric": "x"}), publish=lambda _e: None, cache_dir=tmp_path
        )
    config = PipelineConfig(prompts={"judge_user": "{question} {answer}"})
    with pytest.raises(ConfigError, match=r"prompts\.judge_user"):
        await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)


async def test_bad_prices_and_missing_keys_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prices"):
        await build_components(PipelineConfig(prices={"gpt-4o": [1.0]}), publish=lambda _e: None, cache_dir=tmp_path)
    roles = RolesConfig(teacher=openai_role("https://api.example.invalid/v1", "gpt-4o"))
    with pytest.raises(ConfigError, match=r"roles\.teacher: no OpenAI API key"):
        await build_components(PipelineConfig(roles=roles), publish=lambda _e: None, cache_dir=tmp_path)


def test_shared_keys_take_the_stricter_limits() -> None:
    merged = Limits(rpm=100, max_in_flight=8).stricter(Limits(rpm=50, tpm=1000, max_in_flight=16))
    assert (merged.rpm, merged.tpm, merged.max_in_flight) == (50, 1000, 8)


async def test_openai_trainer_fine_tunes_the_student_model_on_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judgeflow.providers.openai.finetune import OpenAIFineTuner

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with serve_openai(FakeOpenAI(api_key=KEY)) as server:
        roles = RolesConfig(student=openai_role(server.base_url, "gpt-4o-mini", concurrency=2))
        config = PipelineConfig(roles=roles, trainer=TrainerConfig(backend="openai", epochs=2))
        components, resources = await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)
        async with resources:
            tuner = components.trainer
            assert isinstance(tuner, OpenAIFineTuner)
            assert (tuner.base_model, tuner.epochs) == ("gpt-4o-mini", 2)
            # A fresh client per job (the fine-tuner closes it), on the student's server.
            client, other = tuner.client_factory(), tuner.client_factory()
            assert client is not other
            assert str(client.base_url).rstrip("/") == server.base_url
            await client.close()
            await other.close()
            ft_id = "ft:gpt-4o-mini:judgeflow-test:judgeflow:abc123"
            judge = tuner.load(StudentReady("student_trained", ft_id, 10))
            reply = await judge.judge(ITEM)
            assert reply.model == ft_id
            assert isinstance(parse_judge_reply(reply.text), Scored)
            gate = resources.registry.gate(LimitKey("openai", "chat.completions", ft_id, server.base_url))
            assert gate.limits.max_in_flight == 2
            assert resources.ledger.get(ft_id).cost_usd > 0  # priced as ft:gpt-4o-mini


async def test_openai_trainer_needs_a_student_model(tmp_path: Path) -> None:
    config = PipelineConfig(trainer=TrainerConfig(backend="openai"))
    with pytest.raises(ConfigError, match=r"roles\.student\.model"):
        await build_components(config, publish=lambda _e: None, cache_dir=tmp_path)


# -- resolve_judges ----------------------------------------------------------------------------------------------


async def test_resolve_judges_with_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with serve_openai(FakeOpenAI(api_key=KEY)) as server:
        judges, resources = await resolve_judges(
            ["openai:gpt-4o", "local:teacher"],
            base_url=server.base_url,
            concurrency=3,
            rpm=600,
            max_cost=1.0,
            max_tokens=50,
        )
        async with resources:
            assert [name for name, _ in judges] == ["openai:gpt-4o", "local:teacher"]
            assert isinstance(judges[1][1], LocalTeacherJudge)
            assert isinstance(judges[0][1], LLMJudge)
            assert judges[0][1].max_tokens == 50
            reply = await judges[0][1].judge(ITEM)
            assert isinstance(parse_judge_reply(reply.text), Scored)
            limits = resources.registry.gate(LimitKey("openai", "chat.completions", "gpt-4o", server.base_url)).limits
            assert (limits.max_in_flight, limits.rpm) == (3, 600)
            assert resources.budget.max_usd == 1.0
            assert resources.ledger.get("gpt-4o").calls == 1


async def test_resolve_judges_honours_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serve_openai() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # local: no key needed
        judges, resources = await resolve_judges(["openai:gpt-4o-mini"])
        async with resources:
            await judges[0][1].judge(ITEM)
        assert server.stats.requests["chat.completions"] == 1


async def test_resolve_judges_hf_url() -> None:
    async with serve_tgi(reply_fn=lambda _messages: "4\nClose enough.") as server:
        judges, resources = await resolve_judges([f"hf:{server.base_url}"], base_url="http://ignored.invalid")
        async with resources:
            reply = await judges[0][1].judge(ITEM)
    verdict = parse_judge_reply(reply.text)
    assert isinstance(verdict, Scored)
    assert verdict.score == 4.0


async def test_resolve_judges_errors_name_the_judge() -> None:
    with pytest.raises(JudgeSpecError, match="unknown provider 'nope'"):
        await resolve_judges(["nope:x"])
    with pytest.raises(JudgeSpecError, match=r"^judge 'openai:gpt-4o': no OpenAI API key"):
        await resolve_judges(["openai:gpt-4o"])
    with pytest.raises(JudgeSpecError, match="resolve_judges"):
        resolve_judge("openai:gpt-4o")


def test_scoring_is_checked_where_it_is_configured() -> None:
    with pytest.raises(ConfigError, match="scoring must be one of reply, json, logprobs"):
        RoleConfig(provider="openai", model="m", scoring="probabilities")
    with pytest.raises(ConfigError, match=r"roles\.answerer: scoring is for the teacher and student"):
        RolesConfig(answerer=RoleConfig(provider="openai", model="m", scoring="json"))
    with pytest.raises(ConfigError, match=r"roles\.teacher: scoring = 'json' needs an LLM judge"):
        RolesConfig(teacher=RoleConfig(scoring="json"))
    with pytest.raises(ConfigError, match="output must be json or reply"):
        RoleConfig(output="yaml")
    with pytest.raises(ConfigError, match="--scoring"):
        JudgingConfig(items=Path("i"), out=Path("o"), scoring="x")
    assert "scoring" not in JudgingConfig(items=Path("i"), out=Path("o")).summary()
    assert JudgingConfig(items=Path("i"), out=Path("o"), scoring="json").summary()["scoring"] == "json"
