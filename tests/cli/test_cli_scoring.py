"""``judgeflow judge`` and ``judgeflow run`` with scoring modes, fallbacks and loud failures, against a fake server.

The command runs in a worker thread (its own event loop, as from a shell) while the fake OpenAI server runs in the
test's; every path that used to exit 0 having measured nothing exits 1 here, with one line naming the stage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from judgeflow.cli import main
from judgeflow.testing import FakeOpenAI, serve_openai

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _items(path: Path, n: int) -> Path:
    rows = [
        {
            "id": f"i{i}",
            "question": f"When did bridge {i} open?",
            "reference": f"Bridge {i} opened in {1900 + i} after six years of work.",
            "answer": f"It opened in {1900 + i}." if i % 2 else "It never opened.",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def _main(argv: Sequence[str]) -> int:
    return await anyio.to_thread.run_sync(main, list(argv))


async def test_judge_with_logprobs_writes_the_distribution_and_its_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items, out = _items(tmp_path / "items.jsonl", 6), tmp_path / "out.jsonl"
    async with serve_openai() as server:
        status = await _main(
            ["judge", str(items), "--out", str(out), "--judge", "openai:gpt-4o", "--base-url", server.base_url,
             "--scoring", "logprobs", "--no-tui"]
        )  # fmt: skip
    assert status == 0
    lines = _lines(out)
    assert len(lines) == 6
    for line in lines:
        assert line["status"] == "ok"
        assert sum(line["probs"]) == pytest.approx(1.0)
        assert line["score"] == pytest.approx(sum(k * p for k, p in zip(range(1, 6), line["probs"], strict=True)))
        assert line["likely_score"] == 1 + max(range(5), key=lambda i: line["probs"][i])
        assert json.loads(line["raw"])["score"] in (1, 2, 3, 4, 5)
    assert "openai:gpt-4o: 6 scored of 6 replies (100%), 0 unparsed, 0 failed" in capsys.readouterr().out


async def test_judge_reports_the_fallback_a_llama_cpp_like_server_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items, out = _items(tmp_path / "items.jsonl", 4), tmp_path / "out.jsonl"
    config = FakeOpenAI(response_formats=frozenset({"json_object"}), format_refusal="llamacpp")
    async with serve_openai(config) as server:
        status = await _main(
            ["judge", str(items), "--out", str(out), "--judge", "openai:smollm2", "--base-url", server.base_url,
             "--scoring", "json", "--no-tui"]
        )  # fmt: skip
        assert server.stats.responses[500] == 1
    assert status == 0
    printed = capsys.readouterr().out
    assert "openai:smollm2: the server refused json_schema" in printed
    assert "asked with json_object instead" in printed


async def test_a_judge_that_scores_nothing_ends_judge_with_exit_1_and_a_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items, out = _items(tmp_path / "items.jsonl", 5), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(judge_format="garbage")) as server:
        status = await _main(
            ["judge", str(items), "--out", str(out), "--judge", "openai:gpt-4o", "--base-url", server.base_url,
             "--no-tui"]
        )  # fmt: skip
    assert status == 1
    printed = capsys.readouterr().err
    err = [line for line in printed.splitlines() if line.startswith("judgeflow: error:")]
    assert len(err) == 1
    assert err[0].startswith(
        "judgeflow: error: stage judge openai:gpt-4o produced no scored verdict (5 replies, 0 usable"
    )
    assert "a sample reply (i" in err[0]
    assert "continue it with: judgeflow judge" in printed
    # Everything it was paid for is written: every item, unparsed, with its raw reply.
    assert [line["status"] for line in _lines(out)] == ["unparsed"] * 5


def _config(path: Path, base_url: str, **teacher: str) -> Path:
    extra = "".join(f'{key} = "{value}"\n' for key, value in teacher.items())
    text = f"""
questions_per_doc = 4
n_resamples = 100
cities = ["Paris", "Tokyo"]

[roles.question_writer]
provider = "openai"
model = "gpt-4o"
base_url = "{base_url}"

[roles.teacher]
provider = "openai"
model = "gpt-4o"
base_url = "{base_url}"
{extra}"""
    path.write_text(text, encoding="utf-8")
    return path


async def test_run_with_a_writer_that_writes_no_question_exits_1_naming_the_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def sentence(model: str, messages: Sequence[tuple[str, str]]) -> str:
        return "Paris has a long and interesting history."

    async with serve_openai(FakeOpenAI(reply_fn=sentence)) as server:
        config = _config(tmp_path / "c.toml", server.base_url)
        status = await _main(["run", "--no-tui", "--config", str(config), "--out", str(tmp_path / "run")])
    assert status == 1
    err = capsys.readouterr().err
    message = next(line for line in err.splitlines() if line.startswith("judgeflow: error:"))
    assert "stage question_writer produced no question" in message
    # Asked for JSON, the server sent a list with nothing in it: that reply is the sample.
    assert """a sample reply (paris#""" in message
    assert """'{"questions": []}'""" in message
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["failure"]["stage"] == "question_writer"
    writer = report["stages"]["question_writer"]
    assert writer["usable"] == 0
    assert writer["replies"] > 0
    assert writer["parse_rate"] == 0.0
    kept = _lines(tmp_path / "run" / "unusable_replies.jsonl")
    assert len(kept) == writer["replies"]
    assert kept[0]["raw"] == '{"questions": []}'
    # Two rounds of four chunks per document gave nothing: the writer gives up on it (each chunk asked twice).
    assert writer["replies"] == 2 * 2 * 4 * 2


async def test_run_whose_teacher_scores_nothing_exits_1_and_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve_openai(FakeOpenAI(judge_format="garbage")) as server:
        config = _config(tmp_path / "c.toml", server.base_url, scoring="json")
        status = await _main(["run", "--no-tui", "--config", str(config), "--out", str(tmp_path / "run")])
    assert status == 1
    assert "stage teacher produced no scored verdict on a held-out answer" in capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["stages"]["teacher"]["parse_rate"] == 0.0
    assert report["stages"]["teacher"]["sample_unusable"]["reason"] == "no score in the JSON reply"
    assert report["missing"]["agreement.student_base"] == "the teacher scored no held-out answer"
    assert report["agreement"]["student_base"]["n"] == 0
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "The run failed at stage teacher</b>" in page
    assert "agreement.student_base: the teacher scored no held-out answer" in page


async def test_run_with_logprobs_scoring_keeps_the_recipe_format_for_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve_openai() as server:
        config = _config(tmp_path / "c.toml", server.base_url)
        out = tmp_path / "run"
        status = await _main(["run", "--no-tui", "--config", str(config), "--out", str(out), "--scoring", "logprobs"])
    assert status == 0, capsys.readouterr().err
    teacher = [line for line in _lines(out / "judgements.jsonl") if line["judge"] == "teacher"]
    assert teacher
    assert all("probs" in line for line in teacher)
    for example in _lines(out / "train.jsonl"):
        reply = example["messages"][-1]["content"]
        first, _, _ = reply.partition("\n")
        assert float(first) >= 1.0  # the recipe's reply: the score alone on the first line, not JSON
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["scoring"]["asked"] == {"teacher": "logprobs"}
    assert report["stages"]["teacher"]["parse_rate"] == 1.0
    assert report["failure"] is None


async def test_batch_mode_asks_and_reads_in_the_scoring_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The Batch API gets the same requests the online judge sends (JSON schema, logprobs) and its replies are read
    # by the same parser: every line carries its distribution.
    items, out = _items(tmp_path / "items.jsonl", 4), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(batch_validate_s=0.02, batch_run_s=0.05)) as server:
        status = await _main(
            ["judge", str(items), "--out", str(out), "--judge", "openai:gpt-4o", "--base-url", server.base_url,
             "--scoring", "logprobs", "--batch", "--batch-poll", "0.05", "--no-tui"]
        )  # fmt: skip
        assert server.stats.requests["chat.completions"] == 0  # every request went through the batch
    assert status == 0, capsys.readouterr().err
    lines = _lines(out)
    assert len(lines) == 4
    for line in lines:
        assert line["status"] == "ok"
        assert line["score"] == pytest.approx(sum(k * p for k, p in zip(range(1, 6), line["probs"], strict=True)))
