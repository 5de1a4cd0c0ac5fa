"""An OpenAI-compatible HTTP server for tests, benchmarks and demos (needs aiohttp).

The real ``openai.AsyncOpenAI`` client talks to it unmodified: the wire formats of chat completions, embeddings,
files, models, fine-tuning jobs (with events and cancel) and the Batch API (``/v1/batches`` through
``validating`` .. ``completed``, ``failed``, ``expired`` and ``cancelled``, with output and error files) follow
the OpenAI API reference, errors come
as ``{"error": {"message", "type", "param", "code"}}``, and 429s carry ``Retry-After`` / ``retry-after-ms`` and
``x-ratelimit-*`` headers. It runs inside the caller's asyncio event loop (anyio's asyncio backend)::

    async with serve_openai(FakeOpenAI(latency_s=0.01, fault_500=0.1)) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-local")
        ...
        assert server.stats.served_500 > 0

or as a process, for demos and benchmarks, until it is killed::

    python -m judgeflow.testing.openai_server --port 8000 --latency 0.2 --rpm 600 --fault-429 0.1

This module is the entry point: the command line, and the public names, which are implemented in

* `openai_config` - `FakeOpenAI` (how it behaves; mutable, read afresh by every request), `ServerStats`;
* `openai_replies` - `reply_for`: deterministic judge / question-writer / answerer replies, and embeddings;
* `openai_chat` - a chat completion or embeddings body to its reply, for the online endpoints and batches alike;
* `openai_faults` - scripted failures, the per-model RPM window and seeded random faults;
* `openai_files` - uploaded and server-made files;
* `openai_jobs` and `openai_finetuning` - the fine-tuning job state machine;
* `openai_batch_input`, `openai_batch_state` and `openai_batches` - the Batch API;
* `openai_app` - `OpenAIServer` (routes and the per-request frame) and `serve_openai`.

``latency_s`` is slept at the start of every request, before faults apply.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import get_args

import anyio

from .openai_app import OpenAIServer, serve_openai
from .openai_config import FakeOpenAI, JudgeFormat, ReplyFn, RequestRecord, ServerStats
from .openai_replies import reply_for

__all__ = [
    "FakeOpenAI",
    "JudgeFormat",
    "OpenAIServer",
    "ReplyFn",
    "RequestRecord",
    "ServerStats",
    "main",
    "reply_for",
    "serve_openai",
]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m judgeflow.testing.openai_server",
        description="Serve a fake OpenAI-compatible API until killed (for demos, benchmarks and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute and model")
    parser.add_argument("--fault-429", type=float, default=0.0)
    parser.add_argument("--fault-500", type=float, default=0.0)
    parser.add_argument("--fault-malformed", type=float, default=0.0)
    parser.add_argument("--fault-timeout", type=float, default=0.0)
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N requests with a 500")
    parser.add_argument("--fine-tune-step", type=float, default=0.2, help="seconds per fine-tuning phase")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--judge-format", default="score-first", choices=list(get_args(JudgeFormat)))
    parser.add_argument("--garbage-rate", type=float, default=0.0, help="share of judge replies without a score")
    parser.add_argument("--ft-noise", type=float, default=0.0, help="share of fine-tuned judge scores moved")
    parser.add_argument("--seed", type=int, default=0)
    refusals = parser.add_argument_group("refusals, as OpenAI answers them")
    refusals.add_argument("--api-key", help="answer 401 invalid_api_key to any other key")
    refusals.add_argument(
        "--known-models-only", action="store_true", help="answer 404 model_not_found to a model not in the list"
    )
    refusals.add_argument("--context-tokens", type=int, help="answer 400 context_length_exceeded to longer prompts")
    batch = parser.add_argument_group("Batch API (server-clock seconds)")
    batch.add_argument("--batch-validate", type=float, default=0.1, help="seconds a batch stays validating")
    batch.add_argument("--batch-run", type=float, default=0.5, help="seconds a batch stays in_progress")
    batch.add_argument("--batch-request", type=float, default=0.0, help="extra in_progress seconds per request")
    batch.add_argument("--batch-finalize", type=float, default=0.1, help="seconds a batch stays finalizing")
    batch.add_argument("--batch-window", type=float, default=86_400.0, help="seconds before a batch expires")
    batch.add_argument("--batch-fault", type=float, default=0.0, help="share of batch requests answered 500")
    batch.add_argument("--batch-max-requests", type=int, default=50_000, help="requests allowed per batch")
    return parser.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    config = FakeOpenAI(
        latency_s=args.latency,
        rpm=args.rpm,
        fault_429=args.fault_429,
        fault_500=args.fault_500,
        fault_malformed=args.fault_malformed,
        fault_timeout=args.fault_timeout,
        fail_first_n=args.fail_first,
        fine_tune_step_s=args.fine_tune_step,
        embedding_dim=args.embedding_dim,
        judge_format=args.judge_format,
        judge_garbage_rate=args.garbage_rate,
        ft_judge_noise=args.ft_noise,
        seed=args.seed,
        api_key=args.api_key,
        known_models_only=args.known_models_only,
        context_tokens=args.context_tokens,
        batch_validate_s=args.batch_validate,
        batch_run_s=args.batch_run,
        batch_request_s=args.batch_request,
        batch_finalize_s=args.batch_finalize,
        batch_window_s=args.batch_window,
        batch_fault_rate=args.batch_fault,
        batch_max_requests=args.batch_max_requests,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_openai(config, host=args.host, port=args.port) as server:
            print(server.base_url, flush=True)
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        anyio.run(_serve_forever, args, backend="asyncio")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
