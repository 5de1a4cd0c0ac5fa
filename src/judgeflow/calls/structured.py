"""Asking for constrained output and token probabilities, and falling back, once, where a server refuses them.

A role that wants JSON asks for OpenAI's structured output (``json_schema``, strict) first; a server that refuses
it (llama.cpp answers with a 500, others with a 400 or 422: the provider raises `UnsupportedFeature`) is asked
with JSON mode and the schema (``json_object``) instead, and one that refuses that too gets the plain text
request. Log probabilities are dropped the same way, and a server that answers without them (Ollama before
0.12.11 drops the field silently) is noted too; its reply is still used.

What a server refused is learnt once per (server, model) and remembered for the whole run by the run's
`OutputSupport` (on the `CallContext`): every role on that server and model asks the right way from then on, each
refusal is published once as an `OutputFallback` event and listed in the report. Until a server and model have
answered once, their calls go one at a time, so a run with sixteen workers learns a refusal from one failed
request, not sixteen.
"""

from __future__ import annotations

from collections.abc import Callable

from judgeflow.calls.context import CallContext, Completion, server_of
from judgeflow.calls.support import Fallback, Plan
from judgeflow.protocol.calls import ChatRequest, Feature, UnsupportedFeature
from judgeflow.protocol.events import OutputFallback
from judgeflow.protocol.models import ChatModel

__all__ = ["complete_structured", "support_key"]


def support_key(chat: ChatModel) -> str:
    """What a refusal is remembered under: the server and the model."""
    return f"{server_of(chat)}|{chat.name}"


_DETAIL_CHARS = 200


async def complete_structured(
    context: CallContext,
    chat: ChatModel,
    build: Callable[[Plan], ChatRequest],
    *,
    json_reply: bool,
    logprobs: bool,
    role: str,
) -> tuple[Completion, Plan]:
    """One call asking ``chat`` for what the role wants (``build`` makes the request for a plan), falling back as
    the server refuses features; returns the completion and the plan it was made with."""
    support = context.support
    key = support_key(chat)
    async with support.first_call(key):
        while True:
            plan = support.plan(key, json_reply=json_reply, logprobs=logprobs)
            try:
                done = await context.complete(chat, build(plan))
            except UnsupportedFeature as refusal:
                asked = refusal.feature == plan.output or (refusal.feature == "logprobs" and plan.logprobs)
                if not asked or not support.refuse(key, refusal.feature):
                    raise
                _report(context, key, chat, role, refusal.feature, refusal.detail, json_reply, logprobs)
                continue
            if plan.logprobs and done.result.logprobs is None and support.refuse(key, "logprobs"):
                detail = "the server answered without logprobs"
                _report(context, key, chat, role, "logprobs", detail, json_reply, logprobs)
            support.answered(key)
            return done, plan


def _report(
    context: CallContext,
    key: str,
    chat: ChatModel,
    role: str,
    feature: Feature,
    detail: str,
    json_reply: bool,
    logprobs: bool,
) -> None:
    instead = context.support.plan(key, json_reply=json_reply, logprobs=logprobs).describe()
    server = server_of(chat)
    # One line, however the server wrote it (llama.cpp sends a validation error with a traceback).
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= _DETAIL_CHARS else detail[: _DETAIL_CHARS - 1] + "…"
    fallback = Fallback(role, server, chat.name, feature, instead, detail)
    context.support.fallbacks.append(fallback)
    context.publish(OutputFallback(role, chat.name, server, feature, instead, detail))
