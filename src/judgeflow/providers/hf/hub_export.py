"""Publish a run's fine-tuning set to the Hugging Face Hub as a dataset repository.

The training set is the expensive part of a distillation run (every line is a paid teacher judgement), so it is
worth keeping and sharing apart from the model trained on it. `export_training_set` creates the dataset repo if
needed (private by default: teacher replies may quote documents that are not yours to publish) and uploads
``train.jsonl`` into it, in OpenAI's chat format, which ``datasets.load_dataset("json", ...)`` and TRL's
``SFTTrainer`` read as is.

``huggingface_hub``'s ``HfApi`` is synchronous, so it runs in a worker thread; anyio cannot interrupt a thread,
so a cancelled export returns at once while its upload finishes (or fails) in the background. The token comes
from ``token=``, else ``HF_TOKEN``, else the token saved by ``hf auth login``. ``endpoint`` points at another
Hub (a mirror, or a test server on 127.0.0.1); ``HF_ENDPOINT`` does the same from the environment.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import anyio
from huggingface_hub import HfApi

__all__ = ["export_training_set"]


def _export(train_jsonl: Path, repo_id: str, token: str | None, private: bool, endpoint: str | None) -> str:
    api = HfApi(endpoint=endpoint, token=token)
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_file(
        path_or_fileobj=train_jsonl,
        path_in_repo=train_jsonl.name,
        repo_id=repo_url.repo_id,
        repo_type="dataset",
        commit_message=f"Upload {train_jsonl.name} (judgeflow fine-tuning set)",
    )
    return str(repo_url)


async def export_training_set(
    train_jsonl: Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    endpoint: str | None = None,
) -> str:
    """Upload ``train_jsonl`` to the dataset repo ``repo_id`` (``user/name``), creating it if needed.

    Returns the repository URL (``https://huggingface.co/datasets/user/name``). An existing repo keeps its
    visibility (the Hub ignores ``private`` then). Raises FileNotFoundError before any request when the file
    is missing, and ``huggingface_hub``'s ``HfHubHTTPError`` when the Hub refuses (401 without a usable token).
    """
    if not await anyio.Path(train_jsonl).is_file():
        raise FileNotFoundError(f"no training set to export at {train_jsonl}")
    if repo_id.count("/") > 1 or not repo_id.strip("/"):
        raise ValueError(f"repo_id must be 'name' or 'namespace/name', got {repo_id!r}")
    token = token or os.environ.get("HF_TOKEN") or None
    export = partial(_export, train_jsonl, repo_id, token, private, endpoint)
    return await anyio.to_thread.run_sync(export, abandon_on_cancel=True)
