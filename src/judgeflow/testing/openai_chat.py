"""Chat completions and embeddings as pure functions of a request body: ``body -> (HTTP status, JSON body)``.

The online endpoints and the Batch API answer a request with these same functions, so a request judged in a
batch gets the very reply (and usage) it would get online, and a body the online endpoint refuses is refused,
with the same error, on its line of a batch's error file. Constrained output and token log probabilities are
`openai_structured`'s.
"""

from __future__ import annotations

import array
import base64
from collections.abc import Callable
from typing import Any, TypeAlias

from .openai_config import FakeOpenAI, error_body
from .openai_replies import embed, estimate_tokens, reply_for, word_tokens
from .openai_structured import check_features, structured_content, text_score, token_logprobs

__all__ = ["Outcome", "chat_completion", "embeddings", "text_of"]

Outcome: TypeAlias = tuple[int, dict[str, object]]
"""``(HTTP status, JSON body)``: a reply, or an error body with its 4xx/5xx status."""


def text_of(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _model_of(body: Any) -> str | Outcome:
    if not isinstance(body, dict):
        return 400, error_body("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return 400, error_body("You must provide a model parameter.", param="model")
    return model


def chat_completion(body: Any, config: FakeOpenAI, completion_id: Callable[[], str]) -> Outcome:
    """The reply to a ``/v1/chat/completions`` body; ``completion_id()`` is called once, for a reply only."""
    model = _model_of(body)
    if not isinstance(model, str):
        return model
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        return 400, error_body("'messages' must be a non-empty array.", param="messages")
    messages: list[tuple[str, str]] = []
    for item in raw_messages:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return 400, error_body("Each message must be an object with a 'role'.", param="messages")
        messages.append((item["role"], text_of(item.get("content"))))
    if body.get("stream"):
        return 400, error_body("Streaming is not supported by the judgeflow test server.", param="stream")
    refusal = check_features(body, messages, config)
    if refusal is not None:
        return refusal
    prompt_tokens = sum(estimate_tokens(text) + 4 for _, text in messages) + 3
    if config.context_tokens is not None and prompt_tokens > config.context_tokens:
        message = (
            f"This model's maximum context length is {config.context_tokens} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages."
        )
        return 400, error_body(message, param="messages", code="context_length_exceeded")
    content = reply_for(model, messages, config)
    score = text_score(content)
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        content, score = structured_content(content, body)
    finish = "stop"
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if content and isinstance(max_tokens, int) and estimate_tokens(content) > max_tokens > 0:
        content, finish = content[: max_tokens * 4], "length"
    logprobs: dict[str, Any] | None = None
    if body.get("logprobs") and config.logprobs == "full" and content is not None:
        tokens = token_logprobs(content, body.get("top_logprobs") or 0, score, spread=config.logprob_spread)
        logprobs = {"content": tokens, "refusal": None}
    completion_tokens = estimate_tokens(content or "")
    return 200, {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(config.clock()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_judgeflow",
    }


def embeddings(body: Any, config: FakeOpenAI) -> Outcome:
    """The reply to a ``/v1/embeddings`` body."""
    model = _model_of(body)
    if not isinstance(model, str):
        return model
    raw = body.get("input")
    texts: list[str]
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        texts = [" ".join(f"t{t}" for t in raw)]
    elif isinstance(raw, list) and raw and all(isinstance(t, list) and t for t in raw):
        texts = [" ".join(f"t{t}" for t in item) for item in raw]
    else:
        return 400, error_body("'$.input' is invalid. Please check the API reference.", param="input")
    if any(not t for t in texts):
        return 400, error_body("'$.input' is invalid: inputs cannot be empty strings.", param="input")
    dim = body.get("dimensions") or config.embedding_dim
    if not isinstance(dim, int) or dim < 1:
        return 400, error_body("'dimensions' must be a positive integer.", param="dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        return 400, error_body("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    data = []
    for index, text in enumerate(texts):
        vector = embed(text, dim)
        embedding: object = vector
        if fmt == "base64":
            # Little-endian float32, what the SDK decodes with numpy.frombuffer / array("f").
            embedding = base64.b64encode(array.array("f", vector).tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(word_tokens(t)) for t in texts)
    return 200, {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
