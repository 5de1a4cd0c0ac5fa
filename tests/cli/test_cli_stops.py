"""``judgeflow judge`` and ``judgeflow run`` as a user runs them, against a server that refuses the model or the key,
is not there, or goes away mid-run: real processes, judgeflow's fake OpenAI server in the test's event loop.

Nothing asserts on time (the README and the changelog give measured figures); outages last until the process has
said it is waiting.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

N = 3000
SECRET = "sk-stops-test-0123456789abcdef"


def items(path: Path, n: int = N, *, long: int | None = None) -> Path:
    rows = (
        {
            "id": f"item-{i}",
            "question": f"When did event {i} happen?",
            "reference": f"In {1800 + i}.",
            "answer": ("and then " * 300 if i == long else "") + f"It happened in {1800 + i}.",
        }
        for i in range(n)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def every_file(folder: Path) -> str:
    return "".join(path.read_bytes().decode("utf-8", "replace") for path in folder.iterdir())


def judge_command(items_path: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return judgeflow_command(
        "judge",
        items_path,
        "--out",
        out,
        "--no-tui",
        "--judge",
        "openai:gpt-4o-mini",
        "--base-url",
        base_url,
        *extra,
    )


def env(key: str | None = SECRET) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return base if key is None else {**base, "OPENAI_API_KEY": key}


async def run(command: list[str], environment: dict[str, str]) -> tuple[int, str, str]:
    done = await anyio.run_process(command, env=environment, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_a_model_the_server_does_not_have_stops_at_once_and_resume_judges_every_item(tmp_path: Path) -> None:
    source, out = items(tmp_path / "items.jsonl"), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(known_models_only=True, models=())) as server:
        code, stdout, stderr = await run(judge_command(source, out, server.base_url), env())
        asked, written = server.stats.requests["chat.completions"], lines(out)
        server.config.models = ("gpt-4o-mini",)  # fixed: the server has the model now
        resumed = await run(judge_command(source, out, server.base_url, "--resume"), env())
    assert code == 1, stderr
    assert "Judged" not in stdout
    assert (
        "judgeflow: error: openai:gpt-4o-mini: " + server.base_url + " answered NotFoundError: Error code: 404 - "
        "The model `gpt-4o-mini` does not exist or you do not have access to it. (code model_not_found)"
    ) in stderr
    assert "continue it with: " in stderr
    assert "--resume" in stderr.splitlines()[-1]
    assert asked <= 8  # the calls in flight when the first answer came back
    assert written == []  # no item was written failed: all 3,000 are pending
    assert resumed[0] == 0, resumed[2]
    judged = lines(out)
    assert sorted(str(line["id"]) for line in judged) == sorted(f"item-{i}" for i in range(N))
    assert all(line["status"] == "ok" for line in judged)


async def test_a_rejected_key_says_which_variable_it_came_from_and_never_shows_it(tmp_path: Path) -> None:
    source, out = items(tmp_path / "items.jsonl"), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(api_key="sk-the-right-one-0000")) as server:
        code, stdout, stderr = await run(judge_command(source, out, server.base_url), env())
        resumed = await run(judge_command(source, out, server.base_url, "--resume"), env("sk-the-right-one-0000"))
    assert code == 1, stderr
    assert "AuthenticationError: Error code: 401 - Incorrect API key provided" in stderr
    assert "(the key came from OPENAI_API_KEY)" in stderr
    assert resumed[0] == 0, resumed[2]
    assert len(lines(out)) == N
    everything = stdout + stderr + resumed[1] + resumed[2]
    everything += every_file(tmp_path)
    assert SECRET not in everything
    assert SECRET[-8:] not in everything


async def test_a_closed_port_stops_the_run_within_the_grace(tmp_path: Path) -> None:
    source, out = items(tmp_path / "items.jsonl", 200), tmp_path / "out.jsonl"
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code, _, stderr = await run(judge_command(source, out, url, "--grace", "1"), env(None))
    assert code == 1, stderr
    assert f"judgeflow: error: openai:gpt-4o-mini: nothing answered at {url} for " in stderr
    assert "Cannot connect to host" in stderr
    assert "server unreachable since " in stderr
    assert lines(out) == []


async def read_into(buffer: list[str], process: Process) -> None:
    assert process.stderr is not None
    async for chunk in process.stderr:
        buffer.append(chunk.decode("utf-8", "replace"))


async def test_a_server_stopped_mid_run_and_started_again_loses_nothing_and_fails_nothing(tmp_path: Path) -> None:
    source, out = items(tmp_path / "items.jsonl"), tmp_path / "out.jsonl"
    stderr: list[str] = []
    async with serve_openai(FakeOpenAI(latency_s=0.01)) as server:
        process = await anyio.open_process(judge_command(source, out, server.base_url), env=env())
        async with process, anyio.create_task_group() as tg:
            tg.start_soon(read_into, stderr, process)
            with anyio.fail_after(120):
                while len(lines(out)) < N // 3:  # noqa: ASYNC110 - another process writes the file
                    await anyio.sleep(0.02)
                await server.go_down()
                while "tried 3 times" not in "".join(stderr):  # noqa: ASYNC110 - it says so on stderr
                    await anyio.sleep(0.02)
                await server.come_back()
                code = await process.wait()
    said = "".join(stderr)
    assert code == 0, said
    judged = lines(out)
    assert sorted(str(line["id"]) for line in judged) == sorted(f"item-{i}" for i in range(N))
    assert [line for line in judged if line["status"] != "ok"] == []
    assert "server unreachable since " in said
    assert f", retrying: {server.base_url}" in said


async def test_a_request_the_server_refuses_fails_that_item_only(tmp_path: Path) -> None:
    source, out = items(tmp_path / "items.jsonl", 100, long=42), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(context_tokens=500)) as server:
        code, stdout, stderr = await run(judge_command(source, out, server.base_url), env())
    assert code == 0, stderr
    assert "Judged 100 items" in stdout
    failed = [line for line in lines(out) if line["status"] == "failed"]
    assert [line["id"] for line in failed] == ["item-42"]
    assert "maximum context length" in str(failed[0]["error"])


async def test_run_stops_naming_the_role_whose_model_the_server_does_not_have(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(known_models_only=True, models=("gpt-4o-mini",))) as server:
        config = tmp_path / "run.toml"
        roles = "".join(
            f'[roles.{role}]\nprovider = "openai"\nmodel = "{model}"\nbase_url = "{server.base_url}"\n\n'
            for role, model in (("question_writer", "gpt-4o-mini"), ("answerer", "gpt-4o-mini"), ("teacher", "gpt-5"))
        )
        config.write_text(f'questions_per_doc = 2\ncities = ["Paris"]\n\n{roles}', encoding="utf-8")
        folder = tmp_path / "run"
        command = judgeflow_command("run", "--no-tui", "--config", config)
        code, _, stderr = await run([*command, "--out", str(folder)], env())
    assert code == 1, stderr
    assert "judgeflow: error: teacher (openai:gpt-5): " in stderr
    assert "The model `gpt-5` does not exist or you do not have access to it." in stderr
    assert f"continue it with: judgeflow run --resume {folder}" in stderr
    assert "failed" not in (folder / "judgements.jsonl").read_text(encoding="utf-8")
