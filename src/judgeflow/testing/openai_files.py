"""The fake OpenAI server's files: upload, list, retrieve, download and delete, shared by fine-tuning and batches.

A training file and a batch's input, output and error files live in one store, as on the real API, so a client
that lists its files (to find an upload it made before a crash) sees all of them. Uploads are checked per
purpose by a validator the owning API registers (fine-tuning checks its chat examples at upload time).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from ._http import json_response
from .openai_config import FakeOpenAI, cursor_page, openai_error
from .openai_replies import estimate_tokens

__all__ = ["UPLOAD_PURPOSES", "FileStore", "StoredFile", "Validator"]

UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})

Validator = Callable[[bytes], tuple[str, int]]
"""``data -> (problem, examples)``: a non-empty problem refuses the upload with a 400."""


@dataclass(slots=True)
class StoredFile:
    """An uploaded (or server-made) file; ``tokens`` and ``examples`` are what fine-tuning trains on."""

    id: str
    data: bytes
    filename: str
    purpose: str
    created_at: int
    tokens: int
    examples: int

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


class FileStore:
    """The files, their ids, and the ``/v1/files`` route handlers ``(request, body) -> response``."""

    def __init__(self, config: Callable[[], FakeOpenAI]) -> None:
        self._config = config
        self._files: dict[str, StoredFile] = {}
        self._ids: Counter[str] = Counter()
        self.validators: dict[str, tuple[Validator, str]] = {}
        """purpose -> (validator, error message prefix)."""

    def new_id(self, kind: str) -> str:
        """A fresh hex id for ``kind`` (file, job, batch...), fixed by the seed and how many came before."""
        self._ids[kind] += 1
        digest = hashlib.blake2b(f"{self._config().seed}:{kind}:{self._ids[kind]}".encode(), digest_size=12)
        return digest.hexdigest()

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def add(self, data: bytes, *, filename: str, purpose: str, examples: int = 0) -> StoredFile:
        """Store ``data`` as a new file; the server makes batch output and error files this way."""
        record = StoredFile(
            id=f"file-{self.new_id('file')[:22]}",
            data=data,
            filename=filename,
            purpose=purpose,
            created_at=int(self._config().clock()),
            tokens=estimate_tokens(data.decode("utf-8", "replace")),
            examples=examples,
        )
        self._files[record.id] = record
        return record

    # -- handlers ----------------------------------------------------------------------------------------------

    async def create(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/"):
            return openai_error(400, "Uploads must be multipart/form-data.", param="file")
        # Read the parts into memory ourselves: request.post() spools files to temporary files nobody closes.
        reader = await request.multipart()
        data: bytes | None = None
        filename = "upload.jsonl"
        purpose = ""
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                data = await part.read()
                filename = part.filename or filename
            elif part.name == "purpose":
                purpose = (await part.text()).strip()
            else:
                await part.release()
        if data is None:
            return openai_error(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in UPLOAD_PURPOSES:
            return openai_error(400, f"'{purpose}' is not a valid purpose.", param="purpose")
        examples = 0
        if purpose in self.validators:
            validate, prefix = self.validators[purpose]
            problem, examples = validate(data)
            if problem:
                return openai_error(400, f"{prefix} {problem}", param="file", code="invalid_file_format")
        return json_response(self.add(data, filename=filename, purpose=purpose, examples=examples).as_json())

    def _file_or_404(self, request: web.Request) -> StoredFile | web.Response:
        file_id = request.match_info["file_id"]
        record = self._files.get(file_id)
        if record is None:
            return openai_error(404, f"No such File object: {file_id}", param="id")
        return record

    async def retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        return found if isinstance(found, web.Response) else json_response(found.as_json())

    async def content(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        if isinstance(found, web.Response):
            return found
        return web.Response(body=found.data, content_type="application/octet-stream")

    async def delete(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        if isinstance(found, web.Response):
            return found
        del self._files[found.id]
        return json_response({"id": found.id, "object": "file", "deleted": True})

    async def list_files(self, request: web.Request, body: Any) -> web.StreamResponse:
        """Newest first unless ``order=asc``; ``purpose`` filters; up to 10,000 a page."""
        purpose = request.query.get("purpose")
        files = [f.as_json() for f in self._files.values() if purpose is None or f.purpose == purpose]
        if request.query.get("order", "desc") != "asc":
            files.reverse()
        return json_response(cursor_page(files, request, default_limit=10_000, max_limit=10_000))
