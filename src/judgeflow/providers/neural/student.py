"""The neural student as a judge: a fine-tuned MiniLM cross-encoder (`model.CrossEncoder`) run on a CPU.

It is trained by `judgeflow.providers.neural.training` (`train_minilm_student`), by the ``minilm`` trainer
backend (`judgeflow.providers.neural.backend`) and by ``judgeflow distill``. A trained student is a folder:
``neural_student.json`` (format, shape, training summary), ``model.safetensors`` (every weight, the encoder's
included) and the ``tokenizer.json`` it was trained with, so loading it needs torch, safetensors and tokenizers,
but not the weights package.

It reads each item whole, up to ``max_tokens`` word pieces, in windows of ``window`` tokens (`windows`).
Judging is throughput work: a batch is tokenised, sorted by length and run in micro-batches padded only to
their own longest window, with one torch thread by default and in bfloat16 where the CPU has it natively
(`runtime.resolve_precision`).
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio.to_thread
import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load_file, save_file

from judgeflow.core.parsing import scored_reply
from judgeflow.protocol.messages import JudgeInput, JudgeReply
from judgeflow.providers.local.lexical import FEATURE_NAMES
from judgeflow.providers.local.student import read_model_file

from ._format import CONFIG_FILE, FORMAT, VERSION, WEIGHTS_FILE
from .encoder import EncoderConfig, PairTokenizer, token_batches
from .model import MATCH_NAMES, CrossEncoder, distribution_mean, encode_inputs, to_distribution
from .runtime import DTYPES, Precision, resolve_precision, torch_threads
from .windows import batch_windows

__all__ = ["TOKENIZER_FILE", "MiniLMStudentJudge"]

TOKENIZER_FILE = "tokenizer.json"
Array = npt.NDArray[np.float64]


class MiniLMStudentJudge:
    """A trained MiniLM cross-encoder as a judge.

    Implements :class:`~judgeflow.protocol.models.JudgeModel` and
    :class:`~judgeflow.protocol.models.BatchJudgeModel`. A batch is tokenised, sorted by length and run in
    micro-batches of ``batch_size`` with ``threads`` torch threads (one by default: a judge should not take
    every core from the rest of the pipeline); calls from several threads run one at a time. ``precision``:
    ``"auto"`` (bfloat16 on CPUs that compute it natively, else float32), ``"float32"`` or ``"bfloat16"``;
    bfloat16 is about twice as fast and differs in the last digits. Replies carry the score to two decimals.
    """

    def __init__(
        self,
        model: CrossEncoder,
        tokenizer: PairTokenizer,
        *,
        name: str = "student_trained",
        threads: int = 1,
        batch_size: int = 32,
        precision: str = "auto",
        info: Mapping[str, object] | None = None,
        window: int = 256,
        max_tokens: int = 512,
    ) -> None:
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be >= 1")
        if not 16 <= window <= model.encoder.config.max_positions or max_tokens < 16:
            raise ValueError(f"window must be from 16 to 512 and max_tokens >= 16, got {window} and {max_tokens}")
        self.name = name
        self.window = window
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.threads = threads
        self.batch_size = batch_size
        self.precision: Precision = resolve_precision(precision)
        self.info: dict[str, object] = dict(info or {})
        if any(p.dtype != torch.float32 for p in model.parameters()):
            model = copy.deepcopy(model).float()
        self._trained = model.eval()
        # The judge's copy runs in the chosen precision; the float32 original is what `save` writes.
        # Only the encoder and the projection change precision: the small heads and the standardisation stay in
        # float32, where they cost nothing and keep the lexical features' digits.
        self.model = model if self.precision == "float32" else copy.deepcopy(model)
        self.model.encoder.to(DTYPES[self.precision])
        self.model.project.to(DTYPES[self.precision])
        self.model.eval()
        self._lock = threading.Lock()

    @property
    def network(self) -> CrossEncoder:
        """The trained network in float32 (what `save` writes; `model` is the copy that judges)."""
        return self._trained

    @property
    def n_train(self) -> int:
        value = self.info.get("n_train", 0)
        return value if isinstance(value, int) else 0

    def predict(self, items: Sequence[JudgeInput]) -> Array:
        """The student's continuous scores in [1, 5] (the mean of its distribution), in the order of ``items``."""
        return distribution_mean(self.predict_distribution(items))

    def predict_distribution(self, items: Sequence[JudgeInput]) -> Array:
        """The student's probabilities of the scores 1..5, one row per item."""
        if not items:
            return np.zeros((0, 5), dtype=np.float64)
        inputs = encode_inputs(self.tokenizer, items, window=self.window, max_tokens=self.max_tokens)
        out = np.zeros((len(inputs), 5), dtype=np.float64)
        with self._lock, torch_threads(self.threads), torch.inference_mode():
            for batch in token_batches(inputs.lengths, max_items=self.batch_size, max_tokens=64 * self.window):
                windows = batch_windows([inputs.items[i] for i in batch], pad=self.tokenizer.pad_id)
                logits = self.model(windows, inputs.lexical[batch])
                out[batch] = to_distribution(logits, self.model.cuts)
        return out

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]:
        return [
            scored_reply(round(float(score), 2), self._reasoning(float(score)), self.name)
            for score in self.predict(items)
        ]

    async def judge(self, item: JudgeInput) -> JudgeReply:
        # A forward pass takes milliseconds to tens of milliseconds: too long to hold the event loop.
        replies = await anyio.to_thread.run_sync(self.judge_batch, [item])
        return replies[0]

    def _reasoning(self, score: float) -> str:
        leaning = "correct" if score >= 3.0 else "incorrect"
        return (
            f"MiniLM student estimate {score:.3f}: the answer reads as {leaning} against the reference "
            f"(a cross-encoder distilled from {self.n_train} teacher judgements)."
        )

    def save(self, folder: Path) -> Path:
        """Write the student into ``folder`` (created if needed); returns the folder."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().contiguous() for key, value in self._trained.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        if self.tokenizer.path.resolve() != (folder / TOKENIZER_FILE).resolve():
            shutil.copyfile(self.tokenizer.path, folder / TOKENIZER_FILE)
        config = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "encoder": self._trained.encoder.config.to_dict(),
            "window": self.window,
            "max_tokens": self.max_tokens,
            "pooling": "mean over tokens, then over the item's windows",
            "lexical_features": list(FEATURE_NAMES),
            "matching_features": list(MATCH_NAMES),
            "reference": "the alternative the answer matches best",
            "head": "z = linear(pooled) + linear(matching) + linear(lexical); score = 1 + sum_k sigmoid(z - cut_k)",
            **{key: value for key, value in self.info.items() if key not in ("format", "version", "name")},
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        name: str | None = None,
        threads: int = 1,
        batch_size: int = 32,
        precision: str = "auto",
    ) -> MiniLMStudentJudge:
        """Read a student saved by :meth:`save`; a missing or malformed folder is a ``ValueError`` naming it."""
        path = folder / CONFIG_FILE
        data = read_model_file(path, what="MiniLM student", label="MiniLM student", form=FORMAT, version=VERSION)
        if data.get("lexical_features") != list(FEATURE_NAMES):
            raise ValueError(f"{path}: the model's lexical features do not match this version of judgeflow")
        try:
            encoder = data["encoder"]
            if not isinstance(encoder, dict):
                raise TypeError("'encoder' must be a table")
            config = EncoderConfig.from_dict(encoder)
            window, max_tokens = int(data["window"]), int(data["max_tokens"])
            model = CrossEncoder(config)
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
            tokenizer = PairTokenizer(folder / TOKENIZER_FILE)
        except FileNotFoundError as exc:
            raise ValueError(f"{folder}: the MiniLM student is incomplete ({exc})") from None
        except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
            raise ValueError(f"{folder}: bad MiniLM student ({exc})") from None
        skip = ("encoder", "window", "max_tokens", "lexical_features", "matching_features")
        info = {key: value for key, value in data.items() if key not in skip}
        return cls(
            model,
            tokenizer,
            name=name if name is not None else str(data.get("name", "student_trained")),
            threads=threads,
            batch_size=batch_size,
            precision=precision,
            info=info,
            window=window,
            max_tokens=max_tokens,
        )
