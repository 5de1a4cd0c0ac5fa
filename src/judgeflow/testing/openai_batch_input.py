"""A Batch API input file, read and checked the way the real API validates it before a batch runs.

Pure: ``bytes -> (requests, problems)``. A batch whose file has any problem goes from ``validating`` to
``failed`` with the problems in its ``errors`` (each with OpenAI's ``code``, ``message``, ``line`` and ``param``),
and nothing in it runs. The checks: the file's size and request count (50,000 requests and 200 MB by default),
one JSON object per line, the required ``custom_id`` / ``method`` / ``url`` / ``body``, POST only, every ``url``
equal to the batch's endpoint, a known model that is the same on every line, and unique ``custom_id``s.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_PROBLEMS", "BatchLine", "BatchProblem", "read_batch_input"]

MAX_PROBLEMS = 100
"""A failed batch reports at most this many problems (a broken file would otherwise report one per line)."""


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch: its 1-based line, ``custom_id``, the request body, and its size in tokens."""

    line: int
    custom_id: str
    body: dict[str, Any]
    tokens: int


@dataclass(frozen=True, slots=True)
class BatchProblem:
    """Why a batch failed validation: one entry of the batch's ``errors.data``."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "line": self.line, "param": self.param}


def _check_line(
    number: int, raw: bytes, endpoint: str, known_models: Collection[str]
) -> tuple[BatchLine | None, list[BatchProblem]]:
    try:
        request = json.loads(raw)
    except ValueError:
        return None, [BatchProblem("invalid_json_line", "This line is not parseable as valid JSON.", number)]
    if not isinstance(request, dict):
        return None, [BatchProblem("invalid_json_line", "Each line must be a JSON object.", number)]
    problems: list[BatchProblem] = []
    for name, kind in (("custom_id", str), ("method", str), ("url", str), ("body", dict)):
        if name not in request:
            problems.append(
                BatchProblem("missing_required_parameter", f"Missing required parameter: '{name}'.", number, name)
            )
        elif not isinstance(request[name], kind) or (kind is str and not request[name]):
            what = "a non-empty string" if kind is str else "a JSON object"
            problems.append(BatchProblem("invalid_request", f"'{name}' must be {what}.", number, name))
    if problems:
        return None, problems
    if request["method"].upper() != "POST":
        problems.append(BatchProblem("invalid_request", "Only POST requests can be batched.", number, "method"))
    if request["url"] != endpoint:
        message = f"The url '{request['url']}' does not match the batch's endpoint '{endpoint}'."
        problems.append(BatchProblem("url_mismatch", message, number, "url"))
    body: dict[str, Any] = request["body"]
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.append(
            BatchProblem(
                "missing_required_parameter", "Missing required parameter: 'body.model'.", number, "body.model"
            )
        )
    elif model not in known_models:
        message = f"The model '{model}' does not exist or you do not have access to it."
        problems.append(BatchProblem("model_not_found", message, number, "body.model"))
    if problems:
        return None, problems
    return BatchLine(number, request["custom_id"], body, (len(raw) + 3) // 4), []


def read_batch_input(
    data: bytes, *, endpoint: str, known_models: Collection[str], max_requests: int, max_bytes: int
) -> tuple[list[BatchLine], list[BatchProblem]]:
    """The requests of a batch input file, and its problems (empty when the batch may run)."""
    if len(data) > max_bytes:
        message = f"The input file is {len(data)} bytes; a batch input file may be at most {max_bytes} bytes."
        return [], [BatchProblem("file_too_large", message)]
    lines: list[BatchLine] = []
    problems: list[BatchProblem] = []
    seen: dict[str, int] = {}
    first_model: tuple[str, int] | None = None
    count = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        count += 1
        if len(problems) >= MAX_PROBLEMS:
            continue
        line, found = _check_line(number, raw, endpoint, known_models)
        problems.extend(found)
        if line is None:
            continue
        model = str(line.body["model"])
        if first_model is None:
            first_model = (model, number)
        elif model != first_model[0]:
            message = (
                f"The model '{model}' differs from '{first_model[0]}' on line {first_model[1]}: one model a batch."
            )
            problems.append(BatchProblem("model_mismatch", message, number, "body.model"))
        if line.custom_id in seen:
            message = (
                f"The custom_id '{line.custom_id}' is a duplicate of line {seen[line.custom_id]}: "
                "custom_id must be unique within a batch."
            )
            problems.append(BatchProblem("duplicate_custom_id", message, number, "custom_id"))
        else:
            seen[line.custom_id] = number
            lines.append(line)
    if count == 0:
        return [], [BatchProblem("empty_file", "The input file has no requests.")]
    if count > max_requests:
        message = f"The input file has {count} requests; a batch may have at most {max_requests}."
        problems.insert(0, BatchProblem("too_many_tasks", message))
    return ([], problems[:MAX_PROBLEMS]) if problems else (lines, [])
