"""What a saved MiniLM student folder looks like, readable without importing torch (the wiring uses it)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_FILE", "FORMAT", "VERSION", "WEIGHTS_FILE", "has_neural_student"]

CONFIG_FILE = "neural_student.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "judgeflow-minilm-student"
VERSION = 3  # 3: windows over the whole item, a matching unit, ordinal cut points


def has_neural_student(folder: Path) -> bool:
    """True when ``folder`` holds a saved MiniLM student's config (its contents are checked on load)."""
    return (folder / CONFIG_FILE).is_file()
