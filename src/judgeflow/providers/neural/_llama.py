"""A Llama decoder in plain torch, read from a GGUF file with the ``gguf`` package: weights, shape and tokenizer.

Why not ``transformers.AutoModelForCausalLM.from_pretrained(..., gguf_file=...)``: it works (with ``accelerate``
installed too) and gives the same tokens, but on this 2-core machine it takes ~2.5 s to import and ~17 s to load
SmolLM2-135M, while this module loads the same file in ~4 s and generates a few per cent faster; it also needs
two more dependencies, and its loading path goes through the Hugging Face Hub client, which judgeflow keeps out
of its run time. The forward pass is the standard Llama one (RMS norm, rotary positions, grouped-query
attention, SwiGLU feed-forward, output tied to the embedding) with a key/value cache, written out like
`encoder.MiniLMEncoder` is for BERT.

Two details of the GGUF format matter here:

* llama.cpp's converter permutes the rows of the query and key projections so that its rotary kernel can rotate
  adjacent pairs; `_unpermute` undoes that, so the rotation below is the Hugging Face "rotate half" one and the
  logits match transformers' for the same file;
* the tokenizer is stored as metadata (vocabulary, merges, token kinds). A ``gpt2`` model with the ``smollm``
  pre-tokenizer is byte-level BPE after splitting every digit on its own (llama.cpp's ``smollm`` rule); it is
  rebuilt here with the ``tokenizers`` library.

Decoding is greedy (ties go to the lower token id), so the same prompt always gives the same tokens for a given
thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from gguf import GGUFReader  # type: ignore[import-not-found,unused-ignore]
from gguf.quants import dequantize  # type: ignore[import-not-found,unused-ignore]
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from .runtime import DTYPES, Precision, torch_threads

__all__ = ["GGUFLlama", "LlamaConfig", "load_gguf_llama"]

_CONTROL = 3  # llama.cpp's token type for control tokens such as <|im_start|>


@dataclass(frozen=True, slots=True)
class LlamaConfig:
    """The shape of a Llama decoder, as a GGUF file's ``llama.*`` metadata gives it."""

    vocab_size: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    context_length: int
    rope_base: float
    eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass(frozen=True, slots=True)
class _Layer:
    attn_norm: torch.Tensor
    qkv: torch.Tensor  # the query, key and value projections stacked: one matmul instead of three
    out: torch.Tensor
    ffn_norm: torch.Tensor
    gate_up: torch.Tensor  # the gate and up projections stacked
    down: torch.Tensor


class _Cache:
    """Keys and values of the tokens seen so far, one preallocated (1, kv_heads, capacity, head_dim) pair a layer."""

    def __init__(self, config: LlamaConfig, capacity: int, dtype: torch.dtype) -> None:
        shape = (1, config.kv_heads, capacity, config.head_dim)
        self.keys = [torch.empty(shape, dtype=dtype) for _ in range(config.layers)]
        self.values = [torch.empty(shape, dtype=dtype) for _ in range(config.layers)]
        self.length = 0


class GGUFLlama:
    """A Llama decoder and its tokenizer, ready for greedy generation (no autograd: inference only)."""

    def __init__(
        self,
        config: LlamaConfig,
        tensors: dict[str, torch.Tensor],
        tokenizer: Tokenizer,
        *,
        eos_id: int,
        name: str,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.eos_id = eos_id
        self.name = name
        self.embedding = tensors["token_embd.weight"]
        self.output = tensors.get("output.weight", self.embedding)  # small models tie it to the embedding
        self.norm = tensors["output_norm.weight"]
        self.layers: list[_Layer] = []
        for i in range(config.layers):
            t = {key.removeprefix(f"blk.{i}."): value for key, value in tensors.items() if key.startswith(f"blk.{i}.")}
            q = _unpermute(t["attn_q.weight"], config.heads)
            k = _unpermute(t["attn_k.weight"], config.kv_heads)
            self.layers.append(
                _Layer(
                    attn_norm=t["attn_norm.weight"],
                    qkv=torch.cat([q, k, t["attn_v.weight"]]).contiguous(),
                    out=t["attn_output.weight"],
                    ffn_norm=t["ffn_norm.weight"],
                    gate_up=torch.cat([t["ffn_gate.weight"], t["ffn_up.weight"]]).contiguous(),
                    down=t["ffn_down.weight"],
                )
            )
        half = config.head_dim // 2
        inverse = 1.0 / (config.rope_base ** (torch.arange(half, dtype=torch.float64) / half))
        angles = torch.outer(torch.arange(config.context_length, dtype=torch.float64), inverse)
        angles = torch.cat([angles, angles], dim=-1)
        self._cos = angles.cos().to(self.embedding.dtype)
        self._sin = angles.sin().to(self.embedding.dtype)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; control tokens written in it (``<|im_start|>``) stay whole."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def generate(
        self,
        prompt: Sequence[int],
        *,
        max_new_tokens: int,
        stop: Iterable[int] = (),
        threads: int = 1,
        check: Callable[[], None] | None = None,
    ) -> list[int]:
        """The greedy continuation of ``prompt``: at most ``max_new_tokens`` ids, ending before the first
        end-of-sequence (or ``stop``) token, which is not included. Runs with ``threads`` torch threads;
        ``check`` is called before each step and may raise to stop the generation (a cancelled caller)."""
        if not prompt:
            raise ValueError("the prompt is empty")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        capacity = len(prompt) + max_new_tokens
        if capacity > self.config.context_length:
            raise ValueError(
                f"{len(prompt)} prompt tokens + {max_new_tokens} new ones exceed the "
                f"{self.config.context_length}-token context of {self.name}"
            )
        stops = {self.eos_id, *stop}
        cache = _Cache(self.config, capacity, self.embedding.dtype)
        new: list[int] = []
        with torch_threads(threads), torch.inference_mode():
            if check is not None:
                check()
            logits = self._forward(torch.tensor([list(prompt)]), cache)
            while True:
                if check is not None:
                    check()
                token = int(torch.argmax(logits))  # the first maximum: ties go to the lower id
                if token in stops:
                    break
                new.append(token)
                if len(new) == max_new_tokens:
                    break
                logits = self._forward(torch.tensor([[token]]), cache)
        return new

    def _forward(self, ids: torch.Tensor, cache: _Cache) -> torch.Tensor:
        """The next-token logits after ``ids`` (1 x n), appended to what ``cache`` holds."""
        config = self.config
        start, length = cache.length, ids.shape[1]
        end = start + length
        cos, sin = self._cos[start:end], self._sin[start:end]
        heads, kv_heads, head_dim = config.heads, config.kv_heads, config.head_dim
        split = [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]
        x = F.embedding(ids, self.embedding)
        for index, layer in enumerate(self.layers):
            h = _rms_norm(x, layer.attn_norm, config.eps)
            q, k, v = torch.split(F.linear(h, layer.qkv), split, dim=-1)
            q = _rotate(q.view(1, length, heads, head_dim).transpose(1, 2), cos, sin)
            k = _rotate(k.view(1, length, kv_heads, head_dim).transpose(1, 2), cos, sin)
            cache.keys[index][:, :, start:end] = k
            cache.values[index][:, :, start:end] = v.view(1, length, kv_heads, head_dim).transpose(1, 2)
            keys, values = cache.keys[index][:, :, :end], cache.values[index][:, :, :end]
            # Only a prompt that starts the sequence comes in several tokens at once; later tokens come one by
            # one and may see everything before them, so no mask is needed then.
            causal = length > 1
            if causal and start:
                raise ValueError("a multi-token step must start the sequence")
            attended = F.scaled_dot_product_attention(q, keys, values, is_causal=causal, enable_gqa=True)
            x = x + F.linear(attended.transpose(1, 2).reshape(1, length, heads * head_dim), layer.out)
            gate, up = F.linear(_rms_norm(x, layer.ffn_norm, config.eps), layer.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        cache.length = end
        last = _rms_norm(x[0, -1], self.norm, config.eps)  # only the last position's logits are ever used
        return F.linear(last, self.output)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def _unpermute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Undo llama.cpp's query/key row order (pairs interleaved per head) back to Hugging Face's (halves)."""
    rows, columns = weight.shape
    return weight.reshape(heads, rows // heads // 2, 2, columns).transpose(1, 2).reshape(rows, columns)


_MISSING = object()


def _field(reader: GGUFReader, key: str, default: Any = _MISSING) -> Any:
    field = reader.fields.get(key)
    if field is not None:
        return field.contents()
    if default is _MISSING:
        raise ValueError(f"the GGUF file has no {key!r}")
    return default


def _config(reader: GGUFReader) -> LlamaConfig:
    architecture = _field(reader, "general.architecture")
    if architecture != "llama":
        raise ValueError(f"expected a llama model, the GGUF file holds {architecture!r}")
    heads = int(_field(reader, "llama.attention.head_count"))
    return LlamaConfig(
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
        hidden=int(_field(reader, "llama.embedding_length")),
        layers=int(_field(reader, "llama.block_count")),
        heads=heads,
        kv_heads=int(_field(reader, "llama.attention.head_count_kv", heads)),
        intermediate=int(_field(reader, "llama.feed_forward_length")),
        context_length=int(_field(reader, "llama.context_length")),
        rope_base=float(_field(reader, "llama.rope.freq_base")),
        eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
    )


def _tokenizer(reader: GGUFReader) -> Tokenizer:
    kind, pre = _field(reader, "tokenizer.ggml.model"), _field(reader, "tokenizer.ggml.pre")
    if kind != "gpt2" or pre != "smollm":
        raise ValueError(f"only the byte-level BPE of SmolLM is supported, the file has {kind!r}/{pre!r}")
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens")
    kinds: list[int] = _field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(merge.split(" ", 1)) for merge in _field(reader, "tokenizer.ggml.merges")]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    control = [token for token, kind in zip(tokens, kinds, strict=True) if kind == _CONTROL]
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in control])
    return tokenizer


def load_gguf_llama(path: Path, *, name: str, precision: Precision = "float32") -> GGUFLlama:
    """The model and tokenizer a llama GGUF file holds, its quantized tensors expanded to ``precision``."""
    dtype = DTYPES[precision]
    reader = GGUFReader(str(path))
    config = _config(reader)
    tensors: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        values: npt.NDArray[np.float32] = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        # The file lists dimensions fastest first; the data is already laid out as torch's (rows, columns).
        shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        if math.prod(shape) != values.size:
            raise ValueError(f"{path}: tensor {tensor.name} has {values.size} values for shape {shape}")
        tensors[tensor.name] = torch.from_numpy(values.reshape(shape).copy()).to(dtype)
    eos = int(_field(reader, "tokenizer.ggml.eos_token_id"))
    return GGUFLlama(config, tensors, _tokenizer(reader), eos_id=eos, name=name)
