"""The user's own documents: one text or Markdown file, a folder of them, or a JSONL file.

``load_documents(path)`` accepts

* a ``.txt`` or ``.md`` file: one document. Its title is the text of the first ATX heading (``# Title``; headings
  inside fenced code do not count), else the file stem. A heading on the first non-blank line is the title, not
  content, so it is left out of the text. Its id is the file name, its source the path as given.
* a folder: every ``.txt`` / ``.md`` file inside it, recursively, in order of relative path; entries whose name
  starts with a dot (``.git``, ``.cache``, editor swap files) are left out. A document's id is its path relative to
  the folder (``notes/paris.md``), unique by construction.
* a ``.jsonl`` file: one ``{"id"?, "title", "text", "source"?}`` object per line; blank lines are skipped. ``id``
  may be a string or an integer; without one, the id is `slugify` of the title. ``source`` defaults to
  ``FILE:LINE``.

Bad input stops with an `judgeflow.inputs.errors.InputError` that names the file and, where there is one, the line
(``docs.jsonl:7: missing field 'text'``): invalid JSON, a missing or mistyped field, bytes that are not UTF-8, an
empty file, a JSONL record with empty text, and an id used twice (the error names both lines).

Empty documents are an error everywhere except in a folder: a folder of notes often holds a placeholder or two,
and refusing the whole folder over one would be unhelpful. There, a file with no text (an empty file, or only a
heading) is skipped; `read_documents` returns the skipped paths and `load_documents` logs how many it skipped
(logger ``judgeflow.inputs.documents``, level WARNING). A folder in which every file is empty is still an error.

`DocumentError` is the error of documents that come from elsewhere (Wikipedia pages) and could not be fetched.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.inputs.errors import InputError
from judgeflow.protocol.messages import Document

__all__ = [
    "TEXT_SUFFIXES",
    "DocumentError",
    "InputError",
    "LoadedDocuments",
    "load_documents",
    "read_documents",
    "slugify",
]

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
JSONL_SUFFIX = ".jsonl"

_log = logging.getLogger(__name__)

# CommonMark ATX heading: up to three spaces, 1-6 '#', then a space and the text, with an optional closing run of '#'.
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_NON_WORD = re.compile(r"\W+")


class DocumentError(Exception):
    """A document could not be fetched; ``str()`` is ``document 'TITLE': what happened``."""

    def __init__(self, title: str, reason: str) -> None:
        self.title = title
        self.reason = reason
        super().__init__(f"document {title!r}: {reason}")


@dataclass(frozen=True, slots=True)
class LoadedDocuments:
    """What `read_documents` found: the documents, and the files it skipped because they hold no text."""

    documents: tuple[Document, ...]
    skipped: tuple[Path, ...] = ()


def slugify(text: str, *, max_length: int = 100) -> str:
    """A lower-case id for a title: runs of anything but letters and digits become ``_`` (``history_of_paris``).

    Letters outside ASCII are kept (``histoire_de_montréal``); the result is cut to ``max_length`` characters.
    """
    return _NON_WORD.sub("_", text.casefold()).strip("_")[:max_length].rstrip("_")


def load_documents(path: Path) -> list[Document]:
    """The documents of a ``.txt`` / ``.md`` / ``.jsonl`` file or a folder; see the module docstring."""
    loaded = read_documents(path)
    if loaded.skipped:
        names = ", ".join(str(skipped) for skipped in loaded.skipped)
        _log.warning("%s: skipped %d file(s) with no text: %s", path, len(loaded.skipped), names)
    return list(loaded.documents)


def read_documents(path: Path) -> LoadedDocuments:
    """Like `load_documents`, but returns the skipped empty files of a folder instead of logging them."""
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise InputError(path, None, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix == JSONL_SUFFIX:
        return LoadedDocuments(tuple(_parse_jsonl(path, _read_bytes(path))))
    if suffix in TEXT_SUFFIXES:
        raw = _read_bytes(path)
        if not raw.strip():
            raise InputError(path, None, "empty file")
        document = _parse_text(path, raw, doc_id=path.name)
        if not document.text:
            raise InputError(path, None, "no text: the file holds only a heading")
        return LoadedDocuments((document,))
    raise InputError(path, None, f"unsupported file type {path.suffix!r}: expected .txt, .md, .jsonl or a folder")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(path, None, f"cannot read ({error.strerror})") from None


def _read_folder(root: Path) -> LoadedDocuments:
    files = sorted(
        (
            candidate
            for candidate in root.rglob("*")
            if candidate.suffix.lower() in TEXT_SUFFIXES
            and not any(part.startswith(".") for part in candidate.relative_to(root).parts)
            and candidate.is_file()
        ),
        key=lambda candidate: candidate.relative_to(root).as_posix(),
    )
    if not files:
        raise InputError(root, None, "no .txt or .md files in this folder")
    documents: list[Document] = []
    skipped: list[Path] = []
    for file in files:
        raw = _read_bytes(file)
        document = _parse_text(file, raw, doc_id=file.relative_to(root).as_posix()) if raw.strip() else None
        if document is None or not document.text:
            skipped.append(file)
        else:
            documents.append(document)
    if not documents:
        raise InputError(root, None, f"no text: all {len(files)} .txt/.md files in this folder are empty")
    return LoadedDocuments(tuple(documents), tuple(skipped))


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(path, line, f"not UTF-8 (byte 0x{raw[error.start]:02x} at column {column})") from None


def _first_heading(lines: list[str]) -> tuple[str, int] | None:
    fence = ""
    for index, line in enumerate(lines):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening["fence"][0] == fence[0] and len(opening["fence"]) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening["fence"]
            continue
        heading = _HEADING.match(line)
        if heading and heading["text"].strip():
            return heading["text"].strip(), index
    return None


def _parse_text(path: Path, raw: bytes, *, doc_id: str) -> Document:
    lines = _decode(path, raw).splitlines()
    title = path.stem
    heading = _first_heading(lines)
    if heading is not None:
        title, index = heading
        if not any(line.strip() for line in lines[:index]):
            lines = lines[index + 1 :]
    return Document(id=doc_id, title=title, text="\n".join(lines).strip(), source=str(path))


def _parse_jsonl(path: Path, raw: bytes) -> list[Document]:
    documents: list[Document] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"not UTF-8 (byte 0x{line[error.start]:02x} at column {error.start + 1})"
            raise InputError(path, number, message) from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        document, derived = _parse_record(text, path=path, line=number)
        if document.id in first_seen:
            how = " (derived from the title: give each line its own 'id')" if derived else ""
            raise InputError(
                path, number, f"duplicate id {document.id!r}{how}: line {first_seen[document.id]} has it too"
            )
        first_seen[document.id] = number
        documents.append(document)
    if not documents:
        raise InputError(path, None, "no documents: the file is empty")
    return documents


def _parse_record(text: str, *, path: Path, line: int) -> tuple[Document, bool]:
    """One JSONL line as a document, and whether its id was derived from the title."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, line, f"invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise InputError(path, line, f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in ("title", "text") if key not in data]
    if missing:
        fields = ", ".join(repr(key) for key in missing)
        raise InputError(path, line, f"missing field{'s' if len(missing) > 1 else ''} {fields}")
    for key in ("title", "text", "source"):
        if key in data and not isinstance(data[key], str):
            raise InputError(path, line, f"field {key!r} must be a string, got {type(data[key]).__name__}")
    if not data["text"].strip():
        raise InputError(path, line, "field 'text' is empty")
    title: str = data["title"].strip()
    derived = "id" not in data
    if derived:
        doc_id = slugify(title)
        if not doc_id:
            raise InputError(path, line, "no 'id', and the title gives none: add an 'id'")
    else:
        raw_id = data["id"]
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            raise InputError(path, line, f"field 'id' must be a string or an integer, got {type(raw_id).__name__}")
        doc_id = str(raw_id).strip()
        if not doc_id:
            raise InputError(path, line, "field 'id' is empty")
    source = data.get("source") or f"{path}:{line}"
    return Document(id=doc_id, title=title or doc_id, text=data["text"].strip(), source=source), derived
