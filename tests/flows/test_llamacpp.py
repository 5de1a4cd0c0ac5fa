"""judgeflow against a real LLM server: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

Marked ``llamacpp``: skipped (with the install line) where llama.cpp's server or the model is missing, run by CI
(`.ci/run` installs both and runs ``python -m pytest -m llamacpp``). Slow on purpose: a real model on a CPU,
about 2-6 s a judgement. SmolLM2 is a very weak judge (it gives 4 to nearly everything); these tests check that
judgeflow reads whatever it says, falls back where llama.cpp refuses, and never ends a run silently with nothing
measured, not that SmolLM2 judges well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judgeflow.calls.context import CallContext
from judgeflow.calls.roles import LLMJudge
from judgeflow.cli import main
from judgeflow.protocol.messages import JudgeInput
from judgeflow.protocol.verdicts import Scored
from judgeflow.providers.openai.provider import OpenAIChat
from llamacpp_server import MODEL_ALIAS, llama_server, recording_proxy

pytestmark = [pytest.mark.llamacpp, pytest.mark.timeout(1200)]

ITEMS = Path(__file__).with_name("llamacpp_items.jsonl")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llama-cpp.toml"
MAX_TOKENS = "96"  # the score comes first: a reasoning cut short costs nothing, and every token costs seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llamacpp") / "server.log") as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("mode", ["json", "logprobs", "reply"])
def test_judge_in_each_scoring_mode_over_the_same_30_items(
    mode: str, server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{mode}.jsonl"
    status = main(
        ["judge", str(ITEMS), "--out", str(out), "--judge", f"openai:{MODEL_ALIAS}", "--base-url", server,
         "--scoring", mode, "--max-tokens", MAX_TOKENS, "--concurrency", "2", "--no-tui"]
    )  # fmt: skip
    printed = capsys.readouterr()
    lines = _lines(out)
    assert len(lines) == 30
    scored = [line for line in lines if line["status"] == "ok"]
    # The parse rate is reported, whatever it is.
    assert f"openai:{MODEL_ALIAS}: {len(scored)} scored of " in printed.out or status == 1
    if mode == "reply":
        # SmolLM2 seldom opens with a score: whatever share it manages is reported, and none at all is loud.
        if scored:
            assert status == 0
        else:
            assert status == 1
            assert "stage judge openai:smollm2 produced no scored verdict" in printed.err
        return
    assert status == 0, printed.err
    assert len(scored) == 30, [line.get("reason") for line in lines if line["status"] != "ok"]
    # llama.cpp refuses json_schema (a 500), once; the run asks with JSON mode and the schema instead.
    assert "the server refused json_schema" in printed.out
    assert "asked with json_object" in printed.out
    if mode == "logprobs":
        for line in scored:
            assert sum(line["probs"]) == pytest.approx(1.0)
            assert line["score"] == pytest.approx(sum(k * p for k, p in zip(range(1, 6), line["probs"], strict=True)))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_logprobs_score_is_the_weighted_mean_of_the_raw_response(server: str) -> None:
    items = [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines()[:3]]
    async with (
        recording_proxy(server) as (proxy, responses),
        OpenAIChat(MODEL_ALIAS, base_url=proxy, timeout_s=300.0) as chat,
    ):
        judge = LLMJudge(chat, context=CallContext.create(), scoring="logprobs", max_tokens=int(MAX_TOKENS))
        verdicts = [(await judge.judge(JudgeInput(i["question"], i["reference"], i["answer"]))).verdict for i in items]
    # The mean computed here from each raw response the judge read: the score token's top_logprobs, "1".."5"
    # only (" 4" counts as "4"), renormalised.
    replies = [r for r in responses if r["choices"][0].get("logprobs")]
    assert len(replies) == len(items)
    for verdict, raw in zip(verdicts, replies, strict=True):
        choice = raw["choices"][0]
        score = str(json.loads(choice["message"]["content"], strict=False)["score"])
        entry = next(t for t in choice["logprobs"]["content"] if t["token"].strip() == score)
        mass = [0.0] * 5
        for token, logprob in {a["token"]: a["logprob"] for a in entry["top_logprobs"]}.items():
            if token.strip() in {"1", "2", "3", "4", "5"}:
                mass[int(token) - 1] += math.exp(logprob)
        probs = [m / sum(mass) for m in mass]
        assert isinstance(verdict, Scored)
        assert verdict.probs == pytest.approx(probs, rel=1e-9)
        assert verdict.score == pytest.approx(sum((k + 1) * p for k, p in enumerate(probs)), rel=1e-9)


def test_the_llama_cpp_example_runs_and_measures_or_fails_loudly(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # examples/llama-cpp.toml as a user runs it, pointed at this test's server.
    example = EXAMPLE.read_text(encoding="utf-8").replace("http://127.0.0.1:8080/v1", server)
    config = tmp_path / "llama-cpp.toml"
    config.write_text(example, encoding="utf-8")
    out = tmp_path / "run"
    status = main(["run", "--no-tui", "--config", str(config), "--out", str(out)])
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["stages"]["question_writer"]["replies"] > 0
    assert report["scoring"]["asked"] == {"teacher": "logprobs", "student_base": "json"}
    assert any(f["feature"] == "json_schema" for f in report["scoring"]["fallbacks"])
    if status == 0:
        assert report["failure"] is None
        assert any(entry["n"] > 0 for entry in report["agreement"].values())
    else:
        # Where the small model cannot do a stage, the run says which, with counts and a sample reply.
        assert status == 1
        errors = [line for line in printed.err.splitlines() if line.startswith("judgeflow: error:")]
        assert len(errors) == 1
        assert report["failure"]["stage"] in errors[0]
