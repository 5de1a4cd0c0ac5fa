"""Helpers for tests of the fake server's Batch API: batch input lines, and reading output and error files."""

from __future__ import annotations

import json
from typing import Any

import openai

__all__ = ["batch_file", "chat_line", "judge_body", "read_results", "upload_batch"]


def judge_body(index: int, model: str = "gpt-4o") -> dict[str, Any]:
    """A judge request whose reply (a score, then a sentence) depends on ``index``."""
    answer = " ".join(["Paris", "is", "the", "capital", "of", "France"][: 1 + index % 6])
    user = (
        f"## Question\nWhat is the capital of France? ({index})\n\n"
        "## Reference Answer\nParis is the capital of France.\n\n"
        f"## Generated Answer\n{answer}"
    )
    return {
        "model": model,
        "messages": [{"role": "system", "content": "Grade 1-5."}, {"role": "user", "content": user}],
    }


def chat_line(custom_id: str, body: dict[str, Any], url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def batch_file(lines: list[dict[str, Any]] | list[str], name: str = "batch.jsonl") -> tuple[str, bytes]:
    """``lines`` as JSONL (a string line is written as it is, to make a broken file)."""
    raw = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    return name, ("\n".join(raw) + "\n").encode()


async def upload_batch(client: openai.AsyncOpenAI, lines: list[dict[str, Any]] | list[str]) -> openai.types.Batch:
    uploaded = await client.files.create(file=batch_file(lines), purpose="batch")
    return await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


async def read_results(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """The lines of a batch output or error file, in file order ([] for no file)."""
    if file_id is None:
        return []
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines() if line.strip()]
