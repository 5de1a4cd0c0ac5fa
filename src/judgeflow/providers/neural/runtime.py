"""How the neural students use the CPU: torch threads, and which number format a judge computes in.

A judge shares the machine with the rest of the pipeline, so it runs with one torch thread unless told
otherwise (`torch_threads`). Its precision is ``"auto"`` by default: bfloat16 where the CPU multiplies bfloat16
natively (AVX512-BF16 or AMX), which is about twice as fast as float32 and judges the same to two decimals
(bench/evouna.py); float32 elsewhere, where emulated bfloat16 would be slower than float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch

from .settings import Precision

__all__ = ["DTYPES", "Precision", "bfloat16_native", "resolve_precision", "torch_threads"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads inside the block (set in the calling thread, restored after).

    The setting is process-wide in torch; it is applied in the thread that does the work because each OpenMP
    thread keeps its own copy once it has run a parallel region.
    """
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@cache
def bfloat16_native() -> bool:
    """Whether this CPU has bfloat16 dot products in hardware (torch's own CPU capability report)."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def resolve_precision(precision: str) -> Precision:
    """``"auto"`` as the precision for this CPU; ``"float32"`` and ``"bfloat16"`` as they are."""
    if precision == "auto":
        return "bfloat16" if bfloat16_native() else "float32"
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "bfloat16"
    raise ValueError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
